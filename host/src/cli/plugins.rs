//! `triage plugins`: the plugins, their actions, and the capabilities each action asks for.

use super::list::ListFormat;
use super::{Cli, CliResult};

#[derive(clap::Args, Debug)]
pub struct PluginsArgs {
    /// text: a block per plugin; json: `{"schema": "triage.plugins/v1", "plugins": [...]}`
    /// with each action's params and facts as JSON Schemas.
    #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

pub fn run(cli: &Cli, args: &PluginsArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    if args.format == ListFormat::Json {
        let plugins: Vec<serde_json::Value> = runtime
            .plugins()
            .map(|p| {
                let m = &p.manifest;
                serde_json::json!({
                    "name": m.name,
                    "version": m.version,
                    "sdk_version": m.sdk_version,
                    "origin": p.origin.to_string(),
                    "description": m.description,
                    "actions": m.actions.iter().map(|a| serde_json::json!({
                        "name": a.name,
                        "description": a.description,
                        "capabilities": a.capabilities.iter().map(|c| c.display(None)).collect::<Vec<_>>(),
                        "params": a.params_schema,
                        "facts": a.output_schema,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({"schema": "triage.plugins/v1", "plugins": plugins});
        println!("{doc:#}");
        return Ok(0);
    }
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
