//! The report of `triage doctor`: what was detected on the target, each runbook that applied
//! (or why it did not run) with its whole report, and every finding merged. Its human and
//! Markdown forms open with a one-screen summary (each runbook's mark, what fired, what could
//! not be checked), then each runbook's report in full.

use super::{FindingReport, Report, StepStatus};
use crate::runbook::Severity;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    pub envoy_process: bool,
    pub envoy_admin: bool,
    pub metadata_server: bool,
    pub kubernetes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookOutcome {
    pub id: String,
    pub ran: bool,
    /// Why it did not run: what it `applies:` with that was not detected, a required input
    /// not given, or a runbook that does not load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// It applied but could not be run (it does not load): the diagnosis is incomplete.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub broken: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergedFinding {
    pub runbook: String,
    #[serde(flatten)]
    pub finding: FindingReport,
}

/// A step that could not see its subject or gave no facts, in any runbook doctor ran.
#[derive(Debug, Clone, Serialize)]
pub struct Unchecked {
    pub runbook: String,
    pub step: String,
    pub status: StepStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorSummary {
    pub ran: usize,
    pub not_run: usize,
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    /// False when a runbook that ran is incomplete or one that applied does not load.
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub schema: &'static str,
    pub target: String,
    pub detected: Detected,
    /// The detection run itself (its steps, and the findings it may fire about Envoy).
    pub detection: Report,
    pub runbooks: Vec<RunbookOutcome>,
    /// Every finding of every runbook (and of the detection), errors first.
    pub findings: Vec<MergedFinding>,
    pub unchecked: Vec<Unchecked>,
    pub summary: DoctorSummary,
}

impl DoctorReport {
    /// Builds the merged findings, what was not checked and the summary from the parts.
    pub fn new(
        target: String,
        detected: Detected,
        detection: Report,
        runbooks: Vec<RunbookOutcome>,
    ) -> Self {
        let mut findings: Vec<MergedFinding> = Vec::new();
        let mut unchecked = Vec::new();
        let merge = |id: &str, report: &Report, findings: &mut Vec<MergedFinding>| {
            findings.extend(report.findings.iter().map(|f| MergedFinding {
                runbook: id.to_string(),
                finding: f.clone(),
            }))
        };
        merge(&detection.runbook.id, &detection, &mut findings);
        for r in &runbooks {
            if let Some(report) = &r.report {
                merge(&r.id, report, &mut findings);
                unchecked.extend(
                    report
                        .steps
                        .iter()
                        .filter(|s| matches!(s.status, StepStatus::Unknown | StepStatus::Errored))
                        .map(|s| Unchecked {
                            runbook: r.id.clone(),
                            step: s.id.clone(),
                            status: s.status,
                            reason: s.reason.clone(),
                        }),
                );
            }
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.finding.severity));
        let count = |s: Severity| findings.iter().filter(|f| f.finding.severity == s).count();
        let summary = DoctorSummary {
            ran: runbooks.iter().filter(|r| r.ran).count(),
            not_run: runbooks.iter().filter(|r| !r.ran).count(),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
            complete: runbooks
                .iter()
                .all(|r| !r.broken && r.report.as_ref().is_none_or(|rep| rep.summary.complete)),
        };
        DoctorReport {
            schema: "triage.doctor/v1",
            target,
            detected,
            detection,
            runbooks,
            findings,
            unchecked,
            summary,
        }
    }

    /// 1 when a finding (of any runbook, or of the detection) is at or above `fail_on`, else
    /// 3 when the diagnosis is incomplete, else 0. Detection steps that find nothing (no
    /// cluster, no metadata server) do not make it incomplete: they only choose runbooks.
    pub fn exit_code(&self, fail_on: Option<Severity>) -> i32 {
        if let Some(level) = fail_on
            && self.findings.iter().any(|f| f.finding.severity >= level)
        {
            return 1;
        }
        if self.summary.complete { 0 } else { 3 }
    }

    /// One line: how many runbooks ran, what fired, whether every check saw its subject.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{} runbook(s) run, {} not run · {} finding(s): {} error(s), {} warning(s), {} info · {}",
            s.ran,
            s.not_run,
            self.findings.len(),
            s.errors,
            s.warnings,
            s.infos,
            if s.complete {
                "complete".to_string()
            } else {
                format!(
                    "incomplete: {} check(s) could not see their subject",
                    self.unchecked.len()
                )
            }
        )
    }

    /// The runbooks that did not run (and are not broken), grouped by why, in order.
    fn not_run_by_reason(&self) -> Vec<(String, Vec<&str>)> {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for r in self.runbooks.iter().filter(|r| !r.ran && !r.broken) {
            let reason = r.reason.clone().unwrap_or_default();
            match groups.iter_mut().find(|(why, _)| *why == reason) {
                Some((_, ids)) => ids.push(&r.id),
                None => groups.push((reason, vec![&r.id])),
            }
        }
        groups
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises") + "\n"
    }

    /// The terminal form: the one-screen summary, then each runbook's report.
    pub fn human(&self, color: bool) -> String {
        let mut out = self.screen(color);
        for r in &self.runbooks {
            if let Some(run) = &r.report {
                out.push('\n');
                out.push_str(&super::human::render(run, color));
            }
        }
        out.push('\n');
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// The summary that fits one screen: what was detected, one line per runbook with its
    /// mark and step marks, the findings (one line each), and what could not be checked.
    pub fn screen(&self, color: bool) -> String {
        let paint = |code: &str, t: &str| {
            if color {
                format!("\x1b[{code}m{t}\x1b[0m")
            } else {
                t.to_string()
            }
        };
        let d = &self.detected;
        let yes = |b: bool| if b { "yes" } else { "no" };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} · target: {}\ndetected: Envoy process {} · Envoy admin {} · metadata server {} · Kubernetes {}\n",
            paint("1", "triage doctor"),
            plain(&self.target),
            yes(d.envoy_process),
            yes(d.envoy_admin),
            yes(d.metadata_server),
            yes(d.kubernetes)
        );
        let width = self.runbooks.iter().map(|r| r.id.len()).max().unwrap_or(0);
        for r in self.runbooks.iter().filter(|r| r.ran || r.broken) {
            let (mark, note) = match &r.report {
                Some(rep) => {
                    let (mark, code) = runbook_mark(rep);
                    (paint(code, mark), step_marks(rep))
                }
                None => (
                    paint("33;1", "!"),
                    format!("not run: {}", r.reason.as_deref().unwrap_or("")),
                ),
            };
            let _ = writeln!(out, "  {mark} {:<width$}  {}", r.id, plain(&note));
        }
        for (reason, ids) in self.not_run_by_reason() {
            let _ = writeln!(
                out,
                "  {} {}",
                paint("2", "-"),
                plain(&format!("not run ({reason}): {}", ids.join(", ")))
            );
        }
        if !self.findings.is_empty() {
            let _ = writeln!(out, "\n{}", paint("1", "Findings"));
            for f in &self.findings {
                let (label, code) = match f.finding.severity {
                    Severity::Error => ("ERROR  ", "31;1"),
                    Severity::Warning => ("WARNING", "33;1"),
                    Severity::Info => ("INFO   ", "34;1"),
                };
                let _ = writeln!(
                    out,
                    "  {} {} ({})  {}",
                    paint(code, label),
                    f.finding.id,
                    f.runbook,
                    plain(&f.finding.title)
                );
            }
        }
        if !self.unchecked.is_empty() {
            let _ = writeln!(out, "\n{}", paint("35;1", "Not checked"));
            for u in &self.unchecked {
                let _ = writeln!(
                    out,
                    "  {} {}/{}: {}",
                    if u.status == StepStatus::Unknown {
                        "?"
                    } else {
                        "!"
                    },
                    u.runbook,
                    u.step,
                    plain(first_line(u.reason.as_deref().unwrap_or(u.status.as_str())))
                );
            }
        }
        let _ = writeln!(out, "\n{}", self.summary_line());
        out
    }

    /// Markdown for a ticket: the summary as tables, then each runbook one heading down.
    pub fn markdown(&self) -> String {
        let d = &self.detected;
        let yes = |b: bool| if b { "yes" } else { "no" };
        let cell = |s: &str| plain(s).replace('|', "\\|");
        let mut out = String::new();
        let _ = write!(
            out,
            "# triage doctor\n\nTarget: `{}`  \nEnvoy process: {} · Envoy admin: {} · metadata server: {} · Kubernetes: {}\n\n{}\n\n",
            cell(&self.target).replace('`', "'"),
            yes(d.envoy_process),
            yes(d.envoy_admin),
            yes(d.metadata_server),
            yes(d.kubernetes),
            self.summary_line()
        );
        out.push_str("| runbook | mark | steps |\n|---|---|---|\n");
        for r in self.runbooks.iter().filter(|r| r.ran || r.broken) {
            let (mark, note) = match &r.report {
                Some(rep) => (runbook_mark(rep).0, step_marks(rep)),
                None => (
                    "!",
                    format!("not run: {}", r.reason.as_deref().unwrap_or("")),
                ),
            };
            let _ = writeln!(out, "| {} | {mark} | {} |", r.id, cell(&note));
        }
        for (reason, ids) in self.not_run_by_reason() {
            let _ = writeln!(
                out,
                "| {} | - | not run: {} |",
                ids.join(", "),
                cell(&reason)
            );
        }
        if !self.findings.is_empty() {
            out.push_str("\n| finding | severity | runbook | title |\n|---|---|---|---|\n");
            for f in &self.findings {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    f.finding.id,
                    f.finding.severity.as_str(),
                    f.runbook,
                    cell(&f.finding.title)
                );
            }
        }
        if !self.unchecked.is_empty() {
            out.push_str("\nNot checked:\n\n");
            for u in &self.unchecked {
                let _ = writeln!(
                    out,
                    "- `{}/{}` {}: {}",
                    u.runbook,
                    u.step,
                    u.status.as_str(),
                    cell(first_line(u.reason.as_deref().unwrap_or("")))
                );
            }
        }
        out.push('\n');
        for r in &self.runbooks {
            if let Some(run) = &r.report {
                out.push_str(&super::markdown::render(run).replacen("# ", "## ", 1));
                out.push('\n');
            }
        }
        out
    }
}

/// A runbook's mark, like a step's: ✗ an error fired, ⚠ a warning, ? it could not see
/// everything it checks, ✓ every check holds. With the terminal colour code.
pub fn runbook_mark(report: &Report) -> (&'static str, &'static str) {
    let s = &report.summary;
    if s.errors > 0 {
        ("✗", "31;1")
    } else if s.warnings > 0 {
        ("⚠", "33;1")
    } else if !s.complete {
        ("?", "35;1")
    } else {
        ("✓", "32")
    }
}

/// `3 ✓ 1 ✗ error 1 ? 2 -`: how its steps ended, the ones that matter named.
pub fn step_marks(report: &Report) -> String {
    let s = &report.summary;
    let mut parts = vec![format!("{} passed", s.passed)];
    let named = |status: StepStatus| -> Vec<String> {
        report
            .steps
            .iter()
            .filter(|st| st.status == status)
            .map(|st| match (status, st.severity) {
                (StepStatus::Failed, Some(sev)) => format!("{} ({})", st.id, sev.as_str()),
                _ => st.id.clone(),
            })
            .collect()
    };
    for (status, n) in [
        (StepStatus::Failed, s.failed),
        (StepStatus::Unknown, s.unknown),
        (StepStatus::Errored, s.errored),
    ] {
        if n > 0 {
            parts.push(format!(
                "{} {}: {}",
                n,
                status.as_str(),
                named(status).join(", ")
            ));
        }
    }
    if s.skipped > 0 {
        parts.push(format!("{} skipped", s.skipped));
    }
    parts.join(" · ")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Text from the target on one line, without the control characters a terminal would obey.
fn plain(s: &str) -> String {
    // The same escapes as every other rendering (visible, so a reader sees something was
    // there), on one line.
    super::human::terminal_safe(s).replace(['\n', '\t'], " ")
}
