//! The report of `triage doctor`: what was detected on the target, each runbook that ran
//! (or why it did not) with its whole report, and every finding merged.

use super::{FindingReport, Report};
use crate::runbook::Severity;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    pub envoy_admin: bool,
    pub metadata_server: bool,
    pub kubernetes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookOutcome {
    pub id: String,
    pub ran: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergedFinding {
    pub runbook: String,
    #[serde(flatten)]
    pub finding: FindingReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub schema: &'static str,
    pub target: String,
    pub detected: Detected,
    pub runbooks: Vec<RunbookOutcome>,
    /// Every finding of every runbook, errors first.
    pub findings: Vec<MergedFinding>,
}

impl DoctorReport {
    pub fn exit_code(&self, fail_on: Option<Severity>) -> i32 {
        let mut code = 0;
        for r in self.runbooks.iter().filter_map(|r| r.report.as_ref()) {
            code = match (code, r.exit_code(fail_on)) {
                (1, _) | (_, 1) => 1,
                (a, b) => a.max(b),
            };
        }
        code
    }

    /// One line: how many runbooks ran and what fired.
    pub fn summary_line(&self) -> String {
        let errors = self
            .findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Error)
            .count();
        format!(
            "{} runbook(s) run, {} finding(s), {errors} error(s)",
            self.runbooks.iter().filter(|r| r.ran).count(),
            self.findings.len()
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises") + "\n"
    }
}
