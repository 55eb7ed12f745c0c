//! The report of a fleet run (`triage run` on many targets): per target its status and what
//! fired, and across the fleet each finding id with the targets it fired on.

use super::Status;
use super::{Report, StepStatus};
use crate::runbook::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetFinding {
    pub id: String,
    pub severity: Severity,
    pub title: String,
}

/// One target's result. `R` is the target's report: the report itself in a fleet run, the
/// report as posted (JSON text, checked) in a server's fleet (`POST /v1/reports`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetResult<R = Report> {
    pub target: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub findings: Vec<TargetFinding>,
    /// How its steps ended (absent when it produced no report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<StepMarks>,
    /// The whole report of that target (`--format json` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<R>,
}

impl TargetResult {
    /// A target's result from how its run ended: the findings and step marks are read from
    /// its report, and an incomplete run's `error` is why its first unknown or errored step
    /// could not see its subject.
    pub fn of(
        target: String,
        status: Status,
        duration: Duration,
        error: Option<String>,
        report: Option<Report>,
    ) -> Self {
        let error = error.or_else(|| {
            let report = report.as_ref()?;
            (status == Status::Incomplete).then(|| {
                report
                    .steps
                    .iter()
                    .find(|s| matches!(s.status, StepStatus::Errored | StepStatus::Unknown))
                    .and_then(|s| s.reason.clone())
                    .unwrap_or_default()
            })
        });
        TargetResult {
            target,
            status,
            duration_ms: duration.as_millis() as u64,
            error,
            findings: report
                .iter()
                .flat_map(|r| &r.findings)
                .map(|f| TargetFinding {
                    id: f.id.clone(),
                    severity: f.severity,
                    title: f.title.clone(),
                })
                .collect(),
            steps: report.as_ref().map(StepMarks::of),
            report,
        }
    }
}

/// A step that did not pass, with its mark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepMark {
    pub id: String,
    pub status: StepStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// How a target's steps ended: the counts, and every step that did not pass by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepMarks {
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub skipped: usize,
    pub errored: usize,
    pub complete: bool,
    /// The failed, unknown and errored steps (skipped ones are counted only).
    pub marked: Vec<StepMark>,
}

impl StepMarks {
    pub fn of(report: &Report) -> Self {
        StepMarks::from_steps(
            &report.summary,
            report
                .steps
                .iter()
                .map(|st| (st.id.clone(), st.status, st.severity)),
        )
    }

    /// From a report's summary and its steps (id, mark, severity), as a report read back
    /// from JSON gives them.
    pub fn from_steps(
        s: &super::Summary,
        steps: impl Iterator<Item = (String, StepStatus, Option<Severity>)>,
    ) -> Self {
        StepMarks {
            passed: s.passed,
            failed: s.failed,
            unknown: s.unknown,
            skipped: s.skipped,
            errored: s.errored,
            complete: s.complete,
            marked: steps
                .filter(|(_, status, _)| {
                    matches!(
                        status,
                        StepStatus::Failed | StepStatus::Unknown | StepStatus::Errored
                    )
                })
                .map(|(id, status, severity)| StepMark {
                    id,
                    status,
                    severity,
                })
                .collect(),
        }
    }

    /// `3 ✓ · ✗ interception (error) · ? dynamic-config · ! logs · 1 skipped`
    pub fn line(&self) -> String {
        let mut parts = vec![format!("{} ✓", self.passed)];
        for m in &self.marked {
            parts.push(match (m.status, m.severity) {
                (StepStatus::Failed, Some(Severity::Error)) => format!("✗ {} (error)", m.id),
                (StepStatus::Failed, _) => format!("⚠ {} (warning)", m.id),
                (StepStatus::Unknown, _) => format!("? {} (unknown)", m.id),
                _ => format!("! {} (errored)", m.id),
            });
        }
        if self.skipped > 0 {
            parts.push(format!("{} skipped", self.skipped));
        }
        parts.join(" · ")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingAcrossFleet {
    pub severity: Severity,
    pub title: String,
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FleetSummary {
    pub targets: usize,
    pub ok: usize,
    pub failing: usize,
    pub incomplete: usize,
    pub unreachable: usize,
    pub timed_out: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport<R = Report> {
    pub schema: &'static str,
    pub runbook: String,
    pub duration_ms: u64,
    pub summary: FleetSummary,
    /// Each finding id that fired anywhere, with the targets it fired on (by name, so the
    /// aggregate is the same whatever order the targets finished or arrived in).
    pub findings: BTreeMap<String, FindingAcrossFleet>,
    pub targets: Vec<TargetResult<R>>,
}

/// What a fleet run keeps while its targets finish: the counts, and each finding id with
/// the targets it fired on. Each target's result can be written out and dropped as soon as
/// it is added (`--format jsonl`), so a fleet's memory does not grow with its reports.
#[derive(Debug, Clone, Default)]
pub struct FleetTally {
    pub summary: FleetSummary,
    pub findings: BTreeMap<String, FindingAcrossFleet>,
}

impl FleetTally {
    pub fn add<R>(&mut self, t: &TargetResult<R>) {
        let summary = &mut self.summary;
        summary.targets += 1;
        match t.status {
            Status::Ok => summary.ok += 1,
            Status::Failing => summary.failing += 1,
            Status::Incomplete => summary.incomplete += 1,
            Status::Unreachable => summary.unreachable += 1,
            Status::TimedOut => summary.timed_out += 1,
        }
        for f in &t.findings {
            let entry = self
                .findings
                .entry(f.id.clone())
                .or_insert_with(|| FindingAcrossFleet {
                    severity: f.severity,
                    title: f.title.clone(),
                    targets: Vec::new(),
                });
            // A finding's targets are appended as targets finish; one that fired twice on
            // a target is listed once (the last entry is that target's, if any).
            if entry.targets.last() != Some(&t.target) {
                entry.targets.push(t.target.clone());
            }
        }
    }
}

impl FleetTally {
    /// Adds another part of the same fleet (a shard's aggregate): the counts add up and
    /// each finding's targets are appended to those it already had.
    pub fn merge(
        &mut self,
        summary: &FleetSummary,
        findings: BTreeMap<String, FindingAcrossFleet>,
    ) {
        let s = &mut self.summary;
        s.targets += summary.targets;
        s.ok += summary.ok;
        s.failing += summary.failing;
        s.incomplete += summary.incomplete;
        s.unreachable += summary.unreachable;
        s.timed_out += summary.timed_out;
        for (id, finding) in findings {
            match self.findings.get_mut(&id) {
                Some(entry) => entry.targets.extend(finding.targets),
                None => {
                    self.findings.insert(id, finding);
                }
            }
        }
    }
}

impl<R: Serialize> FleetReport<R> {
    /// The report of a fleet run from each target's result, in the order given.
    pub fn new(runbook: &str, duration: Duration, targets: Vec<TargetResult<R>>) -> Self {
        let mut tally = FleetTally::default();
        for t in &targets {
            tally.add(t);
        }
        FleetReport::from_tally(runbook, duration, tally, targets)
    }

    /// The report whose counts were kept as its targets finished; `targets` holds the
    /// results that were kept (none when they were streamed out).
    pub fn from_tally(
        runbook: &str,
        duration: Duration,
        mut tally: FleetTally,
        targets: Vec<TargetResult<R>>,
    ) -> Self {
        // Targets finish in any order (and shards or posted reports arrive in any order):
        // each finding's targets are listed by name, once, so every way of running the same
        // fleet gives the same aggregate.
        for finding in tally.findings.values_mut() {
            finding.targets.sort_unstable();
            finding.targets.dedup();
        }
        FleetReport {
            schema: "triage.fleet/v1",
            runbook: runbook.to_string(),
            duration_ms: duration.as_millis() as u64,
            summary: tally.summary,
            findings: tally.findings,
            targets,
        }
    }

    /// `--format jsonl`: one line a target, then the aggregate line (the report without
    /// its `targets`, which the lines before it gave).
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for t in &self.targets {
            out += &target_json_line(t);
        }
        out + &self.aggregate_json_line()
    }

    /// The last line of `--format jsonl`: `schema`, `runbook`, `duration_ms`, `summary`
    /// and `findings`, as in the JSON report, without `targets`.
    pub fn aggregate_json_line(&self) -> String {
        #[derive(Serialize)]
        struct Aggregate<'a> {
            schema: &'a str,
            runbook: &'a str,
            duration_ms: u64,
            summary: &'a FleetSummary,
            findings: &'a BTreeMap<String, FindingAcrossFleet>,
        }
        let line = Aggregate {
            schema: self.schema,
            runbook: &self.runbook,
            duration_ms: self.duration_ms,
            summary: &self.summary,
            findings: &self.findings,
        };
        serde_json::to_string(&line).expect("a report serialises") + "\n"
    }

    pub fn exit_code(&self) -> i32 {
        if self.summary.failing > 0 {
            1
        } else if self.summary.incomplete + self.summary.unreachable + self.summary.timed_out > 0 {
            3
        } else {
            0
        }
    }

    /// One line: how many targets ended how, and how long the whole run took.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{} targets: {} ok, {} failing, {} incomplete, {} unreachable, {} timed out · {} ms",
            s.targets, s.ok, s.failing, s.incomplete, s.unreachable, s.timed_out, self.duration_ms
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises") + "\n"
    }
}

/// One target's line of `--format jsonl` (its `report` is left out: the line is the
/// target's result as the fleet report lists it).
pub fn target_json_line<R: Serialize>(t: &TargetResult<R>) -> String {
    serde_json::to_string(t).expect("a result serialises") + "\n"
}
