//! `exec`: run a program with an argv, never through a shell.

use super::pattern::{Pattern, Subject};
use super::{Call, CapResult, Kind, shell_words, yaml_scalar};

pub const NAME: &str = "exec";
pub const BUNDLE_KEY: &str = "exec";

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub struct Request {
    pub argv: Vec<String>,
}

impl super::Request for Request {
    const KIND: Kind = Kind::Exec;

    fn subject(&self) -> Subject<'_> {
        Subject::Argv(&self.argv)
    }

    fn display(&self) -> String {
        shell_words(&self.argv)
    }

    fn policy_entry(&self) -> String {
        let items: Vec<String> = self.argv.iter().map(|a| yaml_scalar(a)).collect();
        format!("exec: [[{}]]", items.join(", "))
    }
}

/// The executable of a running process, the one program pattern with a wildcard.
pub const RUNNING_EXECUTABLE: &str = "/proc/*/exe";

/// One entry under `allow.exec` in a policy file: an argv pattern, checked as it is read
/// so a bad entry's error points at the entry.
#[derive(serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct PolicyEntry(Pattern);

impl TryFrom<Vec<String>> for PolicyEntry {
    type Error = String;

    /// The program an entry allows is fixed: a command name, found in the PATH of triage
    /// (or of the remote login), which the operator controls, or an absolute path. A
    /// wildcard or a `{param}` there would let whoever chooses the argv choose the program
    /// (`["/**/envoy", --version]` ran `/tmp/x/envoy`), and a relative path would depend on
    /// the working directory.
    fn try_from(entry: Vec<String>) -> Result<Self, String> {
        let Some(program) = entry.first() else {
            return Err("an exec entry needs at least the program".into());
        };
        // `/proc/*/exe` is the executable of a running process (found through ps): the one
        // wildcard a program may hold, matched within one path segment (see pattern.rs).
        let fixed = program == RUNNING_EXECUTABLE
            || !program.is_empty()
                && !program.contains(['*', '{', '}'])
                && (!program.contains('/')
                    || (program.starts_with('/')
                        && !program.split('/').any(|p| p == ".." || p == ".")));
        if !fixed {
            return Err(format!(
                "exec entry {entry:?}: the program {program:?} must be a command name (found in PATH) or an absolute path, without wildcards"
            ));
        }
        Ok(PolicyEntry(Pattern::argv(&entry)))
    }
}

pub fn policy_pattern(entry: PolicyEntry) -> Result<Pattern, String> {
    Ok(entry.0)
}

pub async fn exec(call: &mut Call<'_>, argv: Vec<String>) -> CapResult<ExecOutput> {
    let request = Request { argv };
    let started = call.admit(&request)?;
    let result = call.target.exec(&request.argv, call.timeout).await;
    call.record(&request, started, result.as_ref());
    result
}
