//! SARIF 2.1.0, for code-scanning dashboards and CI annotations: one log with one run of
//! `triage`, one rule per finding id (its title, its fix, the runbook and guide section it
//! comes from) and one result per finding that fired, located at the target it fired on.
//!
//! A target is not a file, so results carry a logical location (kind `resource`, named
//! after the target) and no physical one. What could not be checked (unknown and errored
//! steps, unreachable targets, runbooks that do not load) goes into the invocation's
//! notifications, and `executionSuccessful` is false then: a dashboard that shows no result
//! must not read as "nothing wrong" when triage could not look.
//!
//! The document is built from serde-sarif's types (generated from the OASIS schema), never
//! as hand-written JSON; tests/all/sarif.rs validates it against the 2.1.0 schema.

use super::doctor::DoctorReport;
use super::fleet::FleetReport;
use super::human::terminal_safe;
use super::{FindingReport, Report, RunbookInfo, StepStatus};
use crate::runbook::Severity;
use serde_json::{Value, json};
use serde_sarif::sarif;
use std::collections::BTreeMap;

/// The schema's canonical address (SchemaStore's; the OASIS copy has the same content).
const SCHEMA_URL: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A finding that fired, with where (target) and which runbook fired it.
struct Fired<'a> {
    target: &'a str,
    runbook: &'a RunbookInfo,
    finding: &'a FindingReport,
}

/// Something that could not be checked, with why.
struct Unchecked {
    target: String,
    /// `unknown`, `errored`, `unreachable`, `timed-out`, `not-loaded`: the notification's id.
    kind: String,
    text: String,
}

#[derive(Default)]
struct Log<'a> {
    fired: Vec<Fired<'a>>,
    unchecked: Vec<Unchecked>,
}

impl<'a> Log<'a> {
    fn add_findings(&mut self, report: &'a Report, target: &'a str) {
        self.fired
            .extend(report.findings.iter().map(|finding| Fired {
                target,
                runbook: &report.runbook,
                finding,
            }));
    }

    fn add_report(&mut self, report: &'a Report, target: &'a str) {
        self.add_findings(report, target);
        for step in &report.steps {
            if matches!(step.status, StepStatus::Unknown | StepStatus::Errored) {
                let why = step.reason.as_deref().unwrap_or("no reason given");
                self.unchecked.push(Unchecked {
                    target: target.to_string(),
                    kind: step.status.as_str().to_string(),
                    text: format!(
                        "{}: step `{}` is {}: {why}",
                        report.runbook.id,
                        step.id,
                        step.status.as_str()
                    ),
                });
            }
        }
    }
}

/// The SARIF log of one run.
pub fn run(report: &Report) -> String {
    let mut log = Log::default();
    log.add_report(report, &report.target);
    render(log)
}

/// The SARIF log of `triage doctor`: the detection's findings and every runbook's, at the
/// one target; a runbook that applied but does not load is a notification.
pub fn doctor(report: &DoctorReport) -> String {
    let mut log = Log::default();
    // Detection steps that find nothing (no cluster, no metadata server) only choose
    // runbooks; as in the doctor's own summary they leave the diagnosis complete.
    log.add_findings(&report.detection, &report.target);
    for outcome in &report.runbooks {
        if let Some(run) = &outcome.report {
            log.add_report(run, &report.target);
        } else if outcome.broken {
            log.unchecked.push(Unchecked {
                target: report.target.clone(),
                kind: "not-loaded".into(),
                text: format!(
                    "{}: applies but was not run: {}",
                    outcome.id,
                    outcome.reason.as_deref().unwrap_or("it does not load")
                ),
            });
        }
    }
    render(log)
}

/// The SARIF log of a fleet run: each target's findings at that target; a target that
/// could not be reached (or timed out) is a notification. Needs each target's whole report
/// (see `Format::needs_whole_reports`).
pub fn fleet(report: &FleetReport) -> String {
    let mut log = Log::default();
    for t in &report.targets {
        match &t.report {
            Some(run) => log.add_report(run, &t.target),
            None => log.unchecked.push(Unchecked {
                target: t.target.clone(),
                kind: t.status.as_str().to_string(),
                text: format!(
                    "{}: {}",
                    t.status.as_str(),
                    t.error.as_deref().unwrap_or("no report")
                ),
            }),
        }
    }
    render(log)
}

fn level(severity: Severity) -> sarif::ResultLevel {
    match severity {
        Severity::Error => sarif::ResultLevel::Error,
        Severity::Warning => sarif::ResultLevel::Warning,
        Severity::Info => sarif::ResultLevel::Note,
    }
}

/// Text from the target can hold escape sequences and bidi overrides; a SARIF viewer may be
/// a terminal, so they are shown as escapes here as in every other format.
fn safe(text: &str) -> String {
    terminal_safe(text).into_owned()
}

fn text(s: impl AsRef<str>) -> sarif::MultiformatMessageString {
    sarif::MultiformatMessageString::builder()
        .text(safe(s.as_ref()))
        .build()
}

fn bag(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> sarif::PropertyBag {
    sarif::PropertyBag::builder()
        .additional_properties(
            pairs
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>(),
        )
        .build()
}

/// One rule per finding id, in the order the ids first fired. Its help is the fix when every
/// result of the id has the same fix; a fix rendered with each target's own values differs
/// between targets, and then the help says to read each result's.
fn rules(fired: &[Fired]) -> Vec<sarif::ReportingDescriptor> {
    let mut ids: Vec<&str> = Vec::new();
    for f in fired {
        if !ids.contains(&f.finding.id.as_str()) {
            ids.push(&f.finding.id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let all: Vec<&Fired> = fired.iter().filter(|f| f.finding.id == id).collect();
            let first = all[0];
            let fixes: Vec<Option<&str>> = all.iter().map(|f| f.finding.fix.as_deref()).collect();
            let fix = match fixes[0] {
                Some(fix) if fixes.iter().all(|f| *f == Some(fix)) => format!("Fix: {fix}"),
                Some(_) => {
                    "Fix: it depends on the target's values; each result gives its own.".to_string()
                }
                None => "No fix is given for this finding.".to_string(),
            };
            let runbook = first.runbook;
            let mut help = format!(
                "{fix}\n\nRunbook `{}` ({}): `triage guide {}` walks through it step by step.",
                runbook.id, runbook.title, runbook.id
            );
            if let Some(section) = &runbook.source {
                help.push_str(&format!("\nGuide section: {section}"));
            }
            sarif::ReportingDescriptor::builder()
                .id(id)
                .short_description(text(&first.finding.title))
                .help(text(help))
                .default_configuration(
                    sarif::ReportingConfiguration::builder()
                        .level(json!(level(first.finding.severity)))
                        .build(),
                )
                .properties(bag([
                    ("runbook", json!(runbook.id)),
                    ("guideSection", json!(runbook.source)),
                    ("severity", json!(first.finding.severity)),
                ]))
                .build()
        })
        .collect()
}

fn at_target(target: &str) -> sarif::Location {
    sarif::Location::builder()
        .logical_locations(vec![
            sarif::LogicalLocation::builder()
                .name(safe(target))
                .fully_qualified_name(safe(target))
                .kind("resource")
                .build(),
        ])
        .build()
}

fn result(f: &Fired, rule_index: usize) -> sarif::Result {
    let finding = f.finding;
    let mut message = finding.title.clone();
    if let Some(detail) = finding.detail.as_deref().filter(|d| !d.trim().is_empty()) {
        message.push('\n');
        message.push_str(detail);
    }
    if let Some(fix) = finding.fix.as_deref().filter(|d| !d.trim().is_empty()) {
        message.push_str("\nFix: ");
        message.push_str(fix);
    }
    sarif::Result::builder()
        .rule_id(finding.id.clone())
        .rule_index(rule_index as i64)
        .level(level(finding.severity))
        .message(sarif::Message::builder().text(safe(&message)).build())
        .locations(vec![at_target(f.target)])
        // Code-scanning services match a result across runs by these: the same finding on
        // the same target and step is the same alert.
        .partial_fingerprints(BTreeMap::from([(
            "triageFinding/v1".to_string(),
            safe(&format!(
                "{}/{}/{}/{}",
                f.target, f.runbook.id, finding.step, finding.id
            )),
        )]))
        .properties(bag([
            ("runbook", json!(f.runbook.id)),
            ("step", json!(finding.step)),
            ("target", json!(safe(f.target))),
            (
                "evidence",
                json!(
                    finding
                        .evidence
                        .as_deref()
                        .filter(|e| !e.trim().is_empty())
                        .map(safe)
                ),
            ),
        ]))
        .build()
}

fn render(log: Log) -> String {
    let rules = rules(&log.fired);
    let results: Vec<sarif::Result> = log
        .fired
        .iter()
        .map(|f| {
            let index = rules
                .iter()
                .position(|r| r.id == f.finding.id)
                .expect("every fired id has a rule");
            result(f, index)
        })
        .collect();
    let notifications: Vec<sarif::Notification> = log
        .unchecked
        .iter()
        .map(|u| {
            sarif::Notification::builder()
                .level(json!("warning"))
                .descriptor(
                    sarif::ReportingDescriptorReference::builder()
                        .id(u.kind.clone())
                        .build(),
                )
                .message(sarif::Message::builder().text(safe(&u.text)).build())
                .locations(vec![at_target(&u.target)])
                .build()
        })
        .collect();
    let complete = notifications.is_empty();
    let mut invocation = sarif::Invocation::builder()
        .execution_successful(complete)
        .properties(bag([("complete", json!(complete))]))
        .build();
    if !complete {
        invocation.tool_execution_notifications = Some(notifications);
    }
    let driver = sarif::ToolComponent::builder()
        .name("triage")
        .version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    let log = sarif::Sarif::builder()
        .schema(SCHEMA_URL)
        .version(json!("2.1.0"))
        .runs(vec![
            sarif::Run::builder()
                .tool(sarif::Tool::builder().driver(driver).build())
                .invocations(vec![invocation])
                .results(results)
                .build(),
        ])
        .build();
    serde_json::to_string_pretty(&log).expect("a SARIF log always serialises") + "\n"
}
