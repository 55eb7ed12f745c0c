//! `triage list`: the runbooks, the user's first, then the built-in ones.

use super::CliResult;
use crate::catalog;

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// text: a line per runbook; json: `{"schema": "triage.list/v1", "runbooks": [{id,
    /// title, origin, shadowed}]}` for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// The formats of `list` and `plugins`: they describe what is installed, not a run, so
/// they have no report formats.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

pub fn run(args: &ListArgs) -> CliResult {
    let runbooks: Vec<serde_json::Value> = catalog::all_with_current_dir()
        .into_iter()
        .map(|(id, source, shadowed)| {
            let title = source
                .text()
                .ok()
                .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
                .and_then(|v| v.get("title").and_then(|t| t.as_str()).map(str::to_string))
                .unwrap_or_default();
            serde_json::json!({
                "id": id,
                "title": title,
                "origin": source.origin(),
                "shadowed": shadowed,
            })
        })
        .collect();
    match args.format {
        ListFormat::Json => {
            let doc = serde_json::json!({"schema": "triage.list/v1", "runbooks": runbooks});
            println!("{doc:#}");
        }
        ListFormat::Text => {
            for r in &runbooks {
                let note = if r["shadowed"] == true {
                    "  (shadowed)"
                } else {
                    ""
                };
                println!(
                    "{:<36} {}  [{}]{note}",
                    r["id"].as_str().unwrap_or_default(),
                    r["title"].as_str().unwrap_or_default(),
                    r["origin"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(0)
}
