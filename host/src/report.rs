//! The reports (of a run, here; of a fleet run, `fleet`; of `triage doctor`, `doctor`) and the
//! formats each writes itself in (`format`): human (colour only on a terminal and without
//! NO_COLOR), JSON (`triage.report/v2`, the contract bots read) and Markdown; and Slack's
//! mrkdwn for a run posted to chat.

pub mod doctor;
pub mod fleet;
pub mod format;
pub mod human;
pub mod markdown;
pub mod sarif;
pub mod slack;
pub mod status;

pub use format::{Format, Render, RenderOptions};
pub use status::Status;

use crate::capability::{CapabilityUse, PluginLog};
use crate::runbook::Severity;
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};

/// v2 (from v1): steps may be `unknown`; `failed` covers warning findings too and the step
/// carries the `severity` that fired; the summary counts `unknown` and says whether the
/// diagnosis is `complete`. See docs/report.md.
pub const SCHEMA: &str = "triage.report/v2";

/// A step's mark: a claim about the system, not about the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// The check holds (an info finding may have fired).
    Passed,
    /// A warning or error finding fired; the step's `severity` says which.
    Failed,
    /// The probe ran but could not see what the step checks.
    Unknown,
    Skipped,
    /// No facts: the plugin failed, trapped, ran out of time or was denied.
    Errored,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Unknown => "unknown",
            StepStatus::Skipped => "skipped",
            StepStatus::Errored => "errored",
        }
    }
}

/// Why a step was skipped, where a program acts on it (the step's `reason` is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Skip {
    /// An ask step nobody answered: running again with its answer goes on from there.
    Unanswered,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookInfo {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The guide section's English and Spanish headings and its public page (added in v2
    /// without a version bump: readers ignore fields they do not know).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guide: Option<crate::runbook::GuideRef>,
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub id: String,
    pub title: String,
    pub status: StepStatus,
    /// The highest severity of the findings this step fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Set when a program needs to know why the step was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<Skip>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Every capability the step's plugin used (or was refused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<CapabilityUse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<PluginLog>,
    /// The facts; only serialised with `--facts` (they can be large).
    #[serde(skip)]
    pub output: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingReport {
    pub id: String,
    /// The finding's stable code (`TRG0101`), when its runbook gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Where to read about it: the finding's own page, else its runbook's guide page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    pub step: String,
    pub severity: Severity,
    pub title: String,
    pub detail: Option<String>,
    pub fix: Option<String>,
    pub evidence: Option<String>,
}

impl FindingReport {
    /// What a person runs to read about this finding offline: `triage explain CODE` (or the
    /// id, for a finding without a code).
    pub fn explain_command(&self) -> String {
        format!(
            "triage explain {}",
            self.code.as_deref().unwrap_or(&self.id)
        )
    }

    /// The two pieces of a finding's header that every chat and ticket format shows, written
    /// with that format's escapers so the rules live in one place: the code after the id
    /// (`" CODE"` as a code span, or nothing) and the help line's value (the explain command
    /// as a code span, then ` · ` and a link to the guide section when the runbook gave one).
    pub fn code_and_help(
        &self,
        code_span: impl Fn(&str) -> String,
        guide_link: impl Fn(&str) -> String,
    ) -> (String, String) {
        let finding_code = self
            .code
            .as_deref()
            .map(|c| format!(" {}", code_span(c)))
            .unwrap_or_default();
        let mut help = code_span(&self.explain_command());
        if let Some(url) = self.help.as_deref() {
            help.push_str(" · ");
            help.push_str(&guide_link(url));
        }
        (finding_code, help)
    }
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub skipped: usize,
    pub errored: usize,
    /// False when a step errored or could not see its subject: the verdict may be missing
    /// something, and the exit code is 3 unless a finding at `--fail-on` fired.
    pub complete: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub runbook: RunbookInfo,
    pub target: String,
    pub inputs: Map<String, Value>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub summary: Summary,
    pub steps: Vec<StepReport>,
    pub findings: Vec<FindingReport>,
}

impl Report {
    pub fn new(
        runbook: RunbookInfo,
        target: String,
        inputs: Map<String, Value>,
        steps: Vec<StepReport>,
        findings: Vec<FindingReport>,
        started_at: SystemTime,
        duration: Duration,
    ) -> Self {
        let mut summary = Summary::default();
        for f in &findings {
            match f.severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Info => summary.infos += 1,
            }
        }
        for s in &steps {
            match s.status {
                StepStatus::Passed => summary.passed += 1,
                StepStatus::Failed => summary.failed += 1,
                StepStatus::Unknown => summary.unknown += 1,
                StepStatus::Skipped => summary.skipped += 1,
                StepStatus::Errored => summary.errored += 1,
            }
        }
        summary.complete = summary.errored == 0 && summary.unknown == 0;
        Report {
            schema: SCHEMA,
            runbook,
            target,
            inputs,
            started_at: rfc3339(started_at),
            duration_ms: duration.as_millis() as u64,
            summary,
            steps,
            findings,
        }
    }

    /// JSON; with `facts`, each step carries its output too.
    pub fn to_json(&self, facts: bool) -> String {
        let mut value = serde_json::to_value(self).expect("a report always serialises");
        if facts && let Some(steps) = value.get_mut("steps").and_then(Value::as_array_mut) {
            for (s, report) in steps.iter_mut().zip(&self.steps) {
                if let Some(out) = &report.output {
                    s["output"] = out.clone();
                }
            }
        }
        serde_json::to_string_pretty(&value).expect("a report always serialises") + "\n"
    }

    /// The exit code: 1 when a finding is at or above `fail_on`, else 3 when a step
    /// errored or is unknown (the diagnosis is incomplete), else 0.
    pub fn exit_code(&self, fail_on: Option<Severity>) -> i32 {
        if let Some(level) = fail_on
            && self.findings.iter().any(|f| f.severity >= level)
        {
            return 1;
        }
        if self.summary.complete { 0 } else { 3 }
    }
}

/// Formats a time as RFC 3339 in UTC (civil-from-days, no time-zone database needed).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report of one error finding with these detail, evidence and fix, as a runbook whose
    /// templates rendered them would produce; for the renderers' tests.
    pub(crate) fn one_finding(
        detail: Option<&str>,
        evidence: Option<&str>,
        fix: Option<&str>,
    ) -> Report {
        let finding = FindingReport {
            id: "interception-missing".into(),
            code: Some("TRG0101".into()),
            help: Some("https://example.com/guide#interception".into()),
            step: "interception".into(),
            severity: Severity::Error,
            title: "No interception chain".into(),
            detail: detail.map(Into::into),
            fix: fix.map(Into::into),
            evidence: evidence.map(Into::into),
        };
        let step = StepReport {
            id: "interception".into(),
            title: "Interception rules are in place".into(),
            status: StepStatus::Failed,
            severity: Some(Severity::Error),
            reason: None,
            skip: None,
            duration_ms: 1,
            plugin: None,
            capabilities: Vec::new(),
            logs: Vec::new(),
            output: None,
        };
        let runbook = RunbookInfo {
            id: "service-unreachable".into(),
            title: "Service unreachable".into(),
            source: None,
            guide: None,
            origin: "built-in".into(),
        };
        Report::new(
            runbook,
            "vm-1".into(),
            Map::new(),
            vec![step],
            vec![finding],
            SystemTime::UNIX_EPOCH,
            Duration::from_millis(1),
        )
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_610_451_554);
        assert_eq!(rfc3339(t), "2021-01-12T11:39:14Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // leap day
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }
}
