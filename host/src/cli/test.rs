//! Scenario tests of runbooks: `triage test`.
//!
//! A runbook's cases live beside it: `runbooks/<id>/tests/<case>/case.yaml`, with the bundle
//! the case replays in the same directory (or at `bundle:`, relative to the case):
//!
//! ```yaml
//! description: the VM's nat table has no interception rules
//! inputs: {vip: 10.0.0.1}
//! answers: {created-from-console: "yes"}
//! findings: [interception-missing]      # exactly these fire (order does not matter)
//! steps: {vip-interception: skipped}    # optional: statuses some steps must end with
//! ```

use super::{Cli, CliResult, OrExit};
use crate::catalog;
use crate::engine::{self, RunOptions, inputs};
use crate::report::Report;
use crate::runbook::LoadedRunbook;
use crate::runtime::Runtime;
use crate::target::bundle::BundleTarget;
use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Runbook ids or paths (default: every runbook `triage list` shows that is not shadowed).
    runbooks: Vec<String>,
    /// Also write the results as JUnit XML (one suite per runbook) for CI systems.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &TestArgs) -> CliResult {
    let (ids, junit) = (&args.runbooks, args.junit.as_deref());
    let runtime = super::load_runtime(cli)?;
    let policy = Arc::new(super::load_policy(cli)?);
    let sources: Vec<catalog::RunbookSource> = if ids.is_empty() {
        catalog::runnable_with_current_dir()
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    } else {
        let mut warnings = Vec::new();
        let resolved = ids
            .iter()
            .map(|id| catalog::resolve(id, &mut warnings))
            .collect::<Result<Vec<_>, _>>();
        for w in warnings {
            eprintln!("warning: {w}");
        }
        resolved.or_usage()?
    };
    let rt = super::tokio_runtime()?;
    let (mut passed, mut failed) = (0, 0);
    let mut results = Vec::new();
    for source in &sources {
        let loaded = source.load(&runtime).or_usage()?;
        let cases = cases(&source.file()).or_usage()?;
        for case in &cases {
            let started = std::time::Instant::now();
            let outcome = rt.block_on(run_case(&loaded, &runtime, case, policy.clone()));
            let name = format!("{}/{}", loaded.runbook.id, case.name);
            if outcome.passed {
                passed += 1;
                println!("PASS {name}");
            } else {
                failed += 1;
                println!("FAIL {name}: {}", outcome.message);
            }
            results.push(CaseResult {
                runbook: loaded.runbook.id.to_string(),
                case: case.name.clone(),
                failure: (!outcome.passed).then_some(outcome.message),
                duration: started.elapsed(),
                marks: outcome.report.as_ref().map(step_marks_text),
            });
        }
    }
    println!("{passed} passed, {failed} failed");
    if let Some(path) = junit {
        crate::files::write_atomic(path, junit_xml(&results).as_bytes())
            .with_context(|| path.display().to_string())
            .or_usage()?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

pub const CASE_FILE: &str = "case.yaml";

/// `case.yaml`: one scenario test case of a runbook (`runbooks/ID/tests/CASE/`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Case")]
pub struct CaseSpec {
    /// What the case is about.
    #[serde(default)]
    pub description: Option<String>,
    /// The bundle to replay, relative to the case directory; default: the case directory.
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    /// The runbook's inputs, by name (a list input takes a list).
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// Answers to the runbook's ask steps, by step id.
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// Exactly the finding ids that must fire (order does not matter).
    pub findings: Vec<String>,
    /// Statuses some steps must end with: passed, failed, unknown, skipped or errored. A
    /// step that ends unknown or errored must be listed.
    #[serde(default)]
    pub steps: BTreeMap<String, StepMark>,
}

/// A step status a case can expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepMark {
    Passed,
    Failed,
    Unknown,
    Skipped,
    Errored,
}

impl StepMark {
    pub fn as_str(self) -> &'static str {
        match self {
            StepMark::Passed => "passed",
            StepMark::Failed => "failed",
            StepMark::Unknown => "unknown",
            StepMark::Skipped => "skipped",
            StepMark::Errored => "errored",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub spec: CaseSpec,
    /// Where each key of case.yaml is, so that lint's errors point at it.
    pub map: Arc<crate::yaml::source_map::SourceMap>,
}

impl Case {
    pub fn bundle_dir(&self) -> PathBuf {
        match &self.spec.bundle {
            Some(b) => self.dir.join(b),
            None => self.dir.clone(),
        }
    }

    pub fn input_pairs(&self) -> Vec<(String, String)> {
        self.spec
            .inputs
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| i.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}

/// Why a runbook's scenario cases could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, nested too deep, or not a case: every error, one a line, each
    /// `FILE:LINE:COLUMN: message`.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl CaseError {
    /// How many errors it holds (lint counts them).
    pub fn count(&self) -> usize {
        match self {
            CaseError::Read { .. } => 1,
            CaseError::Invalid(lines) => lines
                .iter()
                .filter(|l| !l.ends_with(crate::yaml::collect::CUT_NOTICE))
                .count(),
        }
    }
}

/// A case file is a few lines; anything near this is not one (and is not read further).
pub const MAX_CASE_FILE_BYTES: u64 = 1 << 20;

/// The cases of the runbook whose file is `runbook_file`, sorted by name. Errors name the file.
/// A case directory that is a link must lead to a place inside the runbook's directory:
/// cases come with the runbook, and a link out of it would make `triage test` read (and
/// `triage lint` report on) whatever it points at.
pub fn cases(runbook_file: &Path) -> Result<Vec<Case>, CaseError> {
    cases_each(runbook_file)?.into_iter().collect()
}

/// [`cases`], each case read on its own, so that lint reports every broken case file and
/// not only the first.
pub fn cases_each(runbook_file: &Path) -> Result<Vec<Result<Case, CaseError>>, CaseError> {
    let Some(dir) = runbook_file.parent() else {
        return Ok(Vec::new());
    };
    let tests = dir.join("tests");
    let Ok(entries) = std::fs::read_dir(&tests) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let real_runbook_dir = crate::target::files::resolve(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
    .map_err(|source| CaseError::Read {
        file: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for case_dir in dirs {
        if case_dir.is_symlink() {
            let real =
                crate::target::files::resolve(&case_dir).map_err(|source| CaseError::Read {
                    file: case_dir.clone(),
                    source,
                })?;
            if !real.starts_with(&real_runbook_dir) {
                out.push(Err(CaseError::Invalid(vec![format!(
                    "{}: is a link to {}, outside the runbook's directory",
                    crate::report::human::one_line(&case_dir.display().to_string()),
                    crate::report::human::one_line(&real.display().to_string())
                )])));
                continue;
            }
        }
        out.push(load_case(&case_dir));
    }
    Ok(out)
}

/// Reads one case: `DIR/case.yaml`, a regular file inside DIR (links followed, but not out
/// of it), at most [`MAX_CASE_FILE_BYTES`], checked for nesting and parsed. `triage test`,
/// `triage lint` and `triage run --case` all read cases here.
pub fn load_case(case_dir: &Path) -> Result<Case, CaseError> {
    use crate::target::files;
    let file = case_dir.join(CASE_FILE);
    let shown = |why: String| {
        CaseError::Invalid(vec![format!(
            "{}: {why}",
            crate::report::human::one_line(&file.display().to_string())
        )])
    };
    let real_dir = files::resolve(case_dir).map_err(|source| CaseError::Read {
        file: case_dir.to_path_buf(),
        source,
    })?;
    let real = files::resolve(&file).map_err(|source| CaseError::Read {
        file: file.clone(),
        source,
    })?;
    if !real.starts_with(&real_dir) {
        return Err(shown(format!(
            "is a link to {}, outside the case directory",
            crate::report::human::one_line(&real.display().to_string())
        )));
    }
    let bytes = files::open_resolved(&real)
        .and_then(|f| files::read_whole(f, MAX_CASE_FILE_BYTES))
        .map_err(|e| shown(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| shown("is not UTF-8 text".into()))?;
    crate::yaml::depth::check_file(&text, &file).map_err(|e| CaseError::Invalid(vec![e]))?;
    let spec: CaseSpec = crate::yaml::collect::all_errors(&text)
        .map_err(|errors| CaseError::Invalid(crate::yaml::collect::lines(&file, &errors)))?;
    let map = crate::yaml::source_map::SourceMap::build(&text).unwrap_or_default();
    let name = case_dir
        .file_name()
        .or_else(|| real_dir.file_name())
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok(Case {
        name,
        dir: case_dir.to_path_buf(),
        spec,
        map: Arc::new(map),
    })
}

/// What `triage lint` checks in a case without running it: finding ids and step ids exist,
/// inputs and answers fit the runbook, the bundle opens. Every problem, each
/// `FILE:LINE:COLUMN: message` at the key or value it is about, in the file's words
/// (`inputs.vip`), not the command line's.
pub fn check_case(loaded: &LoadedRunbook, case: &Case) -> Vec<String> {
    use crate::yaml::collect::escape_controls;
    let rb = &loaded.runbook;
    let file = escape_controls(&case.dir.join(CASE_FILE).display().to_string());
    let mut problems: Vec<((usize, usize), String)> = Vec::new();
    let mut at = |(line, column): (usize, usize), message: String| {
        problems.push(((line, column), message));
    };
    let known: BTreeSet<&str> = rb
        .steps
        .iter()
        .flat_map(|s| s.findings.iter().map(|f| f.id.as_str()))
        .collect();
    for (i, id) in case.spec.findings.iter().enumerate() {
        if !known.contains(id.as_str()) {
            at(
                case.map.value(&format!("findings.{i}")),
                format!(
                    "findings[{i}]: runbook `{}` has no finding `{id}`{}",
                    rb.id,
                    crate::runbook::validate::suggest(id, known.iter().copied())
                ),
            );
        }
    }
    for step in case.spec.steps.keys() {
        if !rb.steps.iter().any(|s| s.id.as_str() == step) {
            at(
                case.map.key(&format!("steps.{step}")),
                format!(
                    "steps.{step}: runbook `{}` has no step `{step}`{}",
                    rb.id,
                    crate::runbook::validate::suggest(step, rb.steps.iter().map(|s| s.id.as_str()))
                ),
            );
        }
    }
    for (name, raw) in case.input_pairs() {
        if let Err(e) = inputs::check_one(rb, &name, &raw) {
            let path = format!("inputs.{name}");
            let place = if rb.inputs.contains_key(&name) {
                case.map.value(&path)
            } else {
                case.map.key(&path)
            };
            at(place, format!("{path}: {e}"));
        }
    }
    for (name, spec) in inputs::missing_required(rb, &case.spec.inputs) {
        at(
            case.map.key("inputs"),
            format!(
                "inputs: runbook `{}` needs input `{name}`{}; give it under `inputs:`",
                rb.id,
                spec.description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        );
    }
    for (step_id, answer) in &case.spec.answers {
        let path = format!("answers.{step_id}");
        match rb.steps.iter().find(|s| s.id.as_str() == step_id) {
            None => at(
                case.map.key(&path),
                format!("{path}: runbook `{}` has no step `{step_id}`", rb.id),
            ),
            Some(step) => match &step.ask {
                None => at(
                    case.map.key(&path),
                    format!("{path}: step `{step_id}` is not an ask step"),
                ),
                Some(ask) if !ask.choices.iter().any(|c| c == answer) => at(
                    case.map.value(&path),
                    format!(
                        "{path}: {} is not one of the choices ({})",
                        inputs::quoted(answer),
                        ask.choices.join(", ")
                    ),
                ),
                Some(_) => {}
            },
        }
    }
    if let Err(e) = BundleTarget::open(&case.bundle_dir()) {
        let place = if case.spec.bundle.is_some() {
            case.map.value("bundle")
        } else {
            (1, 1)
        };
        at(place, format!("bundle: {e}"));
    }
    problems.sort_by_key(|(place, _)| *place);
    problems
        .into_iter()
        .map(|((line, column), message)| {
            format!("{file}:{line}:{column}: {}", escape_controls(&message))
        })
        .collect()
}

/// One case's result, for `triage test --junit`.
pub struct CaseResult {
    pub runbook: String,
    pub case: String,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
    pub duration: std::time::Duration,
    /// Each step's mark in the replayed run, one a line (the case's `<system-out>`).
    pub marks: Option<String>,
}

/// Each step's mark, one a line (`✗ interception: failed (error)`), and whether the
/// diagnosis was complete (the run's exit code would be 3 when not).
fn step_marks_text(report: &Report) -> String {
    use crate::report::StepStatus;
    let mut out = String::new();
    for s in &report.steps {
        let mark = match (s.status, s.severity) {
            (StepStatus::Passed, _) => "✓",
            (StepStatus::Failed, Some(crate::runbook::Severity::Error)) => "✗",
            (StepStatus::Failed, _) => "⚠",
            (StepStatus::Unknown, _) => "?",
            (StepStatus::Skipped, _) => "-",
            (StepStatus::Errored, _) => "!",
        };
        out.push_str(&format!("{mark} {}: {}", s.id, s.status.as_str()));
        if let Some(sev) = s.severity {
            out.push_str(&format!(" ({})", sev.as_str()));
        }
        if let Some(r) = &s.reason
            && s.status != StepStatus::Passed
        {
            out.push_str(&format!(" — {r}"));
        }
        out.push('\n');
    }
    out.push_str(if report.summary.complete {
        "diagnosis: complete\n"
    } else {
        "diagnosis: incomplete (exit 3 unless a finding at --fail-on fired)\n"
    });
    out
}

/// One run (`triage run --junit`) as JUnit XML: a suite for the runbook on its target, a
/// case per step with its mark (failed → `<failure>` with the severity as its type; unknown
/// and errored → `<error>`; skipped → `<skipped>`), and a case `diagnosis is complete` that
/// is an `<error type="incomplete">` when something that decides it could not be seen.
pub fn run_junit_xml(report: &Report, fail_on: Option<crate::runbook::Severity>) -> String {
    use crate::report::StepStatus;
    use std::fmt::Write;
    let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let failures = report.summary.failed;
    let errors =
        report.summary.unknown + report.summary.errored + usize::from(!report.summary.complete);
    let suite = xml_escape(&report.runbook.id);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"triage\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        report.steps.len() + 1,
        seconds(report.duration_ms)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" hostname=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{}\" time=\"{}\">",
        xml_escape(&report.target),
        report.steps.len() + 1,
        report.summary.skipped,
        seconds(report.duration_ms)
    );
    for s in &report.steps {
        let open = format!(
            "    <testcase classname=\"{suite}\" name=\"{}: {}\" time=\"{}\"",
            xml_escape(&s.id),
            xml_escape(&s.title),
            seconds(s.duration_ms)
        );
        let titles: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.step == s.id)
            .map(|f| f.title.as_str())
            .collect();
        // Each finding's code and where to read about it, beside the failure CI shows.
        let help: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.step == s.id)
            .map(|f| {
                let link = f
                    .help
                    .as_deref()
                    .map(|u| format!(" · {u}"))
                    .unwrap_or_default();
                format!(
                    "{}{}: {}{link}",
                    f.code
                        .as_deref()
                        .map(|c| format!("{c} "))
                        .unwrap_or_default(),
                    f.id,
                    f.explain_command()
                )
            })
            .collect();
        let reason = xml_escape(s.reason.as_deref().unwrap_or(""));
        let body = match s.status {
            StepStatus::Passed => None,
            StepStatus::Failed => Some(format!(
                "<failure type=\"{}\" message=\"{}\"/>\n      <system-out>{}</system-out>",
                s.severity.map(|v| v.as_str()).unwrap_or("error"),
                xml_escape(&titles.join("; ")),
                xml_escape(&help.join("\n"))
            )),
            StepStatus::Unknown => Some(format!("<error type=\"unknown\" message=\"{reason}\"/>")),
            StepStatus::Errored => Some(format!("<error type=\"errored\" message=\"{reason}\"/>")),
            StepStatus::Skipped => Some(format!("<skipped message=\"{reason}\"/>")),
        };
        match body {
            None => {
                let _ = writeln!(out, "{open}/>");
            }
            Some(body) => {
                let _ = writeln!(out, "{open}>\n      {body}\n    </testcase>");
            }
        }
    }
    let verdict = format!("    <testcase classname=\"{suite}\" name=\"diagnosis is complete\"");
    if report.summary.complete {
        let _ = writeln!(out, "{verdict}/>");
    } else {
        let unseen: Vec<&str> = report
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Unknown | StepStatus::Errored))
            .map(|s| s.id.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{verdict}>\n      <error type=\"incomplete\" message=\"exit code {}: not checked: {}\"/>\n    </testcase>",
            report.exit_code(fail_on),
            xml_escape(&unseen.join(", "))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The results as JUnit XML, the format CI systems (GitLab, Jenkins, GitHub's test
/// reporters) read: a `<testsuite>` per runbook, a `<testcase>` per case, a `<failure>` with
/// the same one line `triage test` prints.
pub fn junit_xml(results: &[CaseResult]) -> String {
    use std::fmt::Write;
    let seconds = |d: std::time::Duration| format!("{:.3}", d.as_secs_f64());
    let failures = |cases: &[&CaseResult]| cases.iter().filter(|c| c.failure.is_some()).count();
    let mut suites: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
    for r in results {
        match suites.last_mut() {
            Some((name, cases)) if *name == r.runbook => cases.push(r),
            _ => suites.push((&r.runbook, vec![r])),
        }
    }
    let all: Vec<&CaseResult> = results.iter().collect();
    let total: std::time::Duration = results.iter().map(|r| r.duration).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"triage\" tests=\"{}\" failures=\"{}\" time=\"{}\">",
        all.len(),
        failures(&all),
        seconds(total)
    );
    for (name, cases) in &suites {
        let time: std::time::Duration = cases.iter().map(|c| c.duration).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{}\">",
            xml_escape(name),
            cases.len(),
            failures(cases),
            seconds(time)
        );
        for c in cases {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                xml_escape(name),
                xml_escape(&c.case),
                seconds(c.duration)
            );
            let marks = c
                .marks
                .as_deref()
                .map(|m| format!("\n      <system-out>{}</system-out>", xml_escape(m)))
                .unwrap_or_default();
            match &c.failure {
                None if marks.is_empty() => {
                    let _ = writeln!(out, "{open}/>");
                }
                None => {
                    let _ = writeln!(out, "{open}>{marks}\n    </testcase>");
                }
                Some(message) => {
                    let message = xml_escape(message);
                    let _ = writeln!(
                        out,
                        "{open}>\n      <failure message=\"{message}\">{message}</failure>{marks}\n    </testcase>"
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML content and attributes; characters XML 1.0 cannot hold at all (most
/// control characters, which a plugin's error text may carry) become U+FFFD.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub struct Outcome {
    pub passed: bool,
    /// Why it failed, one line.
    pub message: String,
    pub report: Option<Report>,
}

/// Replays one case and compares what fired with what it expects.
pub async fn run_case(
    loaded: &LoadedRunbook,
    runtime: &Runtime,
    case: &Case,
    policy: Arc<crate::capability::Policy>,
) -> Outcome {
    let fail = |m: String| Outcome {
        passed: false,
        message: m,
        report: None,
    };
    let problems = check_case(loaded, case);
    if let Some(first) = problems.into_iter().next() {
        return fail(first);
    }
    let target = match BundleTarget::open(&case.bundle_dir()) {
        Ok(t) => Arc::new(t),
        Err(e) => return fail(e.to_string()),
    };
    let resolved = match inputs::resolve(&loaded.runbook, &case.input_pairs()) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let options = RunOptions {
        inputs: resolved,
        answers: case.spec.answers.clone(),
        target,
        policy,
        on_step: None,
        interaction: None,
        // What a case's report shows is what any report shows.
        redact: Default::default(),
    };
    let report = engine::run(loaded, runtime, options).await;
    let fired: BTreeSet<&str> = report.findings.iter().map(|f| f.id.as_str()).collect();
    let expected: BTreeSet<&str> = case.spec.findings.iter().map(String::as_str).collect();
    let mut why = Vec::new();
    if fired != expected {
        let missing: Vec<&str> = expected.difference(&fired).copied().collect();
        let extra: Vec<&str> = fired.difference(&expected).copied().collect();
        if !missing.is_empty() {
            why.push(format!("did not fire [{}]", missing.join(", ")));
        }
        if !extra.is_empty() {
            why.push(format!("also fired [{}]", extra.join(", ")));
        }
    }
    for (step, want) in &case.spec.steps {
        if let Some(s) = report.steps.iter().find(|s| &s.id == step)
            && s.status.as_str() != want.as_str()
        {
            why.push(format!(
                "step `{step}` {} ({}), expected {}",
                s.status.as_str(),
                s.reason.as_deref().unwrap_or(""),
                want.as_str()
            ));
        }
    }
    // A case may not hide an errored step, nor one that could not see its subject: a
    // verdict that is clean because nothing was seen must be expected in so many words.
    for s in &report.steps {
        let unseen = matches!(
            s.status,
            crate::report::StepStatus::Errored | crate::report::StepStatus::Unknown
        );
        if unseen && !case.spec.steps.contains_key(&s.id) {
            why.push(format!(
                "step `{}` {}: {}",
                s.id,
                s.status.as_str(),
                s.reason.as_deref().unwrap_or("")
            ));
        }
    }
    Outcome {
        passed: why.is_empty(),
        message: why.join("; "),
        report: Some(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_keeps_text_and_drops_what_xml_cannot_hold() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\tok\u{1b}[31m"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\tok\u{FFFD}[31m"
        );
    }
}
