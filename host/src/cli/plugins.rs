//! `triage plugins`: the plugins, their actions, and the capabilities each action asks for.

use super::{Cli, CliResult};

pub fn run(cli: &Cli) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    for p in runtime.plugins() {
        let m = &p.manifest;
        println!(
            "{} {} ({}) — {}",
            m.name, m.version, p.origin, m.description
        );
        for a in &m.actions {
            println!("  {:<22} {}", a.name, a.description);
            for c in &a.capabilities {
                println!("  {:<22}   {}", "", c.display(None));
            }
        }
    }
    Ok(0)
}
