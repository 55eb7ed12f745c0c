//! `ps -eo pid=,uid=,user=,args=`: which processes run, and whether Envoy is one of them.

use serde::Serialize;
use triage_sdk::JsonSchema;

use crate::ParseError;

/// The argv the `processes` action runs: no header, and the full command line last so that
/// spaces in it cannot shift the other columns.
pub const PS_ARGV: [&str; 3] = ["ps", "-eo", "pid=,uid=,user=,args="];

/// What `ps` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProcessFacts {
    /// Whether a process whose executable is named `envoy` runs.
    pub envoy_running: bool,
    /// The Envoy processes.
    pub envoy: Vec<Process>,
    /// The distinct UIDs Envoy runs as (the UID netfilter must exclude from interception).
    pub envoy_uids: Vec<u32>,
    /// Processes listed.
    pub process_count: u64,
    /// Lines that were not `pid uid user args` (skipped).
    pub unparsed_lines: u64,
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Real user id.
    pub uid: u32,
    /// User name (ps truncates long ones with '+', and shows the UID when there is no name).
    pub user: String,
    /// The full command line.
    pub args: String,
}

/// Parses the output of [`PS_ARGV`].
pub fn parse_ps(text: &str) -> Result<ProcessFacts, ParseError> {
    let mut facts = ProcessFacts {
        envoy_running: false,
        envoy: Vec::new(),
        envoy_uids: Vec::new(),
        process_count: 0,
        unparsed_lines: 0,
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some(process) = parse_line(line) else {
            facts.unparsed_lines += 1;
            continue;
        };
        facts.process_count += 1;
        if is_envoy(&process.args) {
            if !facts.envoy_uids.contains(&process.uid) {
                facts.envoy_uids.push(process.uid);
            }
            facts.envoy.push(process);
        }
    }
    if facts.process_count == 0 {
        return Err(ParseError(if text.trim().is_empty() {
            "ps printed nothing".to_owned()
        } else {
            format!(
                "no `pid uid user args` line in ps output: {:?}",
                text.chars().take(80).collect::<String>()
            )
        }));
    }
    facts.envoy_running = !facts.envoy.is_empty();
    Ok(facts)
}

fn parse_line(line: &str) -> Option<Process> {
    let (pid, rest) = next_word(line)?;
    let (uid, rest) = next_word(rest)?;
    let (user, args) = next_word(rest)?;
    Some(Process {
        pid: pid.parse().ok()?,
        uid: uid.parse().ok()?,
        user: user.to_owned(),
        args: args.trim().to_owned(),
    })
    .filter(|p| !p.args.is_empty())
}

fn next_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (end > 0).then(|| (&text[..end], &text[end..]))
}

/// The executable's base name is `envoy` (not `grep envoy`, not `envoy-agent`).
pub(crate) fn is_envoy(args: &str) -> bool {
    let executable = args.split_whitespace().next().unwrap_or_default();
    executable.rsplit('/').next() == Some("envoy")
}
