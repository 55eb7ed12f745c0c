//! `triage list`: the runbooks, the user's first, then the built-in ones.

use super::CliResult;
use crate::catalog;

pub fn run() -> CliResult {
    for (id, source, shadowed) in catalog::all() {
        let title = source
            .text()
            .ok()
            .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
            .and_then(|v| v.get("title").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        let note = if shadowed { "  (shadowed)" } else { "" };
        println!("{id:<36} {title}  [{}]{note}", source.origin());
    }
    Ok(0)
}
