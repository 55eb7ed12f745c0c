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

/// One entry under `allow.exec` in a policy file: an argv pattern.
pub type PolicyEntry = Vec<String>;

pub fn policy_pattern(entry: PolicyEntry) -> Pattern {
    Pattern::argv(&entry)
}

pub async fn exec(call: &mut Call<'_>, argv: Vec<String>) -> CapResult<ExecOutput> {
    let request = Request { argv };
    let started = call.admit(&request)?;
    let result = call.target.exec(&request.argv, call.timeout).await;
    call.record(&request, started, result.as_ref());
    result
}
