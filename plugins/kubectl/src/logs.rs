//! Container logs, kept as lines; the envoy-logs plugin classifies them.

use serde::Serialize;
use triage_sdk::JsonSchema;

/// The tail of a container's log.
#[derive(Serialize, JsonSchema, Debug)]
pub struct LogFacts {
    /// The lines, oldest first, without line endings.
    pub lines: Vec<String>,
    /// How many lines.
    pub line_count: usize,
}

/// Splits `kubectl logs` output into lines.
pub fn parse_logs(text: &str) -> LogFacts {
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    LogFacts {
        line_count: lines.len(),
        lines,
    }
}
