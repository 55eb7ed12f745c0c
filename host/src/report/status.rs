//! How a run on one target ended: what a fleet report gives each target and what the server
//! records for each run. It lives with the reports, below the run path (`crate::run`) that
//! produces it, so that reports never depend on how runs are carried out.

use super::Report;
use crate::runbook::Severity;
use serde::{Deserialize, Serialize};

/// How a run on one target ended. `ok`, `failing` and `incomplete` come with a report and
/// mean what the CLI's exit codes 0, 1 and 3 mean; the others are runs without a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Nothing at or above the fail-on severity fired.
    Ok,
    /// A finding at or above the fail-on severity fired.
    Failing,
    /// Something that decides the diagnosis could not be seen (a step errored or is unknown).
    Incomplete,
    /// The target could not be opened (a bad spec, a missing bundle).
    Unreachable,
    /// The run passed its deadline.
    TimedOut,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Ok,
        Status::Failing,
        Status::Incomplete,
        Status::Unreachable,
        Status::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failing => "failing",
            Status::Incomplete => "incomplete",
            Status::Unreachable => "unreachable",
            Status::TimedOut => "timed-out",
        }
    }

    /// The status of a run that produced a report, from the report's exit code.
    pub fn of_report(report: &Report, fail_on: Option<Severity>) -> Status {
        match report.exit_code(fail_on) {
            0 => Status::Ok,
            1 => Status::Failing,
            _ => Status::Incomplete,
        }
    }
}
