//! Fleet runs: one runbook on many targets at once, with bounded concurrency and a deadline
//! per target, and an aggregate report: per target what fired, and across the fleet each
//! finding id with the targets it fired on. One unreachable or hanging target never blocks
//! the others: each runs in its own task under its own deadline.

use super::{CliResult, OrExit};
use crate::capability::Policy;
use crate::report::fleet::{FleetReport, StepMarks, TargetFinding, TargetResult};
use crate::report::{Format, Render, RenderOptions};
use crate::run::Status;
use crate::runbook::{LoadedRunbook, Severity};
use crate::runtime::Runtime;
use crate::target::Spec;
use anyhow::Context;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `triage run` with several targets: the fleet run, with a progress view on a terminal
/// (human output only), its report printed in `format` and with `--output` written too.
pub fn run(
    runtime: Runtime,
    loaded: LoadedRunbook,
    specs: Vec<Spec>,
    mut options: FleetOptions,
    format: Format,
    output: Option<&Path>,
) -> CliResult {
    // On a terminal: one bar per count (done, failing, running), redrawn as targets finish.
    let total = specs.len() as u64;
    let bars = (format == Format::Human && std::io::stderr().is_terminal()).then(|| {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len}")
            .expect("a valid template")
            .progress_chars("=> ");
        let bar = |name: &str| {
            let b = multi.add(indicatif::ProgressBar::new(total));
            b.set_style(style.clone());
            b.set_prefix(name.to_string());
            b
        };
        let (done, failing, running) = (bar("done"), bar("failing"), bar("running"));
        running.set_position(total.min(options.jobs as u64));
        (multi, done, failing, running)
    });
    let progress = bars
        .as_ref()
        .map(|(_, d, f, r)| (d.clone(), f.clone(), r.clone()));
    let jobs = options.jobs;
    options.on_target = progress
        .clone()
        .map(|(done_bar, failing_bar, running_bar)| {
            Box::new(move |done: usize, failing: usize, total: usize| {
                done_bar.set_position(done as u64);
                failing_bar.set_position(failing as u64);
                running_bar.set_position((total - done).min(jobs) as u64);
            }) as _
        });
    // Targets run as tasks on both cores; plugin calls yield, so a slow target never holds one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .or_run()?;
    let report = rt.block_on(run_all(Arc::new(loaded), Arc::new(runtime), specs, options));
    if let Some((done, failing, running)) = progress {
        for b in [done, failing, running] {
            b.finish_and_clear();
        }
    }
    let text = report.render(format, &RenderOptions::default());
    print!("{text}");
    if let Some(path) = output {
        crate::files::write_atomic(path, text.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
    }
    Ok(report.exit_code())
}

/// Reads a targets file: one target a line (`local`, `ssh://…`, `gcloud://…`,
/// `kubectl://…`, or a bundle directory, optionally written `bundle:DIR`, relative to the
/// file); blank lines and `#` comments are skipped. A line that is no target is an error
/// naming the file and line.
pub fn read_targets_file(path: &Path) -> anyhow::Result<Vec<Spec>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let spec = Spec::in_file(line, base)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), number + 1))?;
        out.push(spec);
    }
    if out.is_empty() {
        anyhow::bail!("{}: no targets in it", path.display());
    }
    Ok(out)
}

/// Progress callback: (targets done, of those failing, total).
pub type OnTargetDone = Box<dyn Fn(usize, usize, usize) + Send + Sync>;

pub struct FleetOptions {
    pub inputs: Map<String, Value>,
    pub answers: BTreeMap<String, String>,
    pub policy: Arc<Policy>,
    pub redact: Arc<crate::redact::Redactor>,
    pub jobs: usize,
    pub deadline: Duration,
    pub fail_on: Option<Severity>,
    /// Keep each target's whole report (for JSON).
    pub keep_reports: bool,
    /// Called after each target finishes.
    pub on_target: Option<OnTargetDone>,
}

pub async fn run_all(
    loaded: Arc<LoadedRunbook>,
    runtime: Arc<Runtime>,
    specs: Vec<Spec>,
    options: FleetOptions,
) -> FleetReport {
    let started = Instant::now();
    let total = specs.len();
    let permits = Arc::new(tokio::sync::Semaphore::new(options.jobs.max(1)));
    let options = Arc::new(options);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, spec) in specs.into_iter().enumerate() {
        let (loaded, runtime, permits, options) = (
            loaded.clone(),
            runtime.clone(),
            permits.clone(),
            options.clone(),
        );
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            (index, run_one(&loaded, &runtime, spec, &options).await)
        });
    }
    let mut results: Vec<Option<TargetResult>> = (0..total).map(|_| None).collect();
    let (mut done, mut failing) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        let Ok((index, result)) = joined else {
            continue;
        };
        done += 1;
        if result.status != Status::Ok {
            failing += 1;
        }
        if let Some(cb) = &options.on_target {
            cb(done, failing, total);
        }
        results[index] = Some(result);
    }
    let targets: Vec<TargetResult> = results.into_iter().flatten().collect();
    FleetReport::new(loaded.runbook.id.as_str(), started.elapsed(), targets)
}

async fn run_one(
    loaded: &LoadedRunbook,
    runtime: &Runtime,
    spec: Spec,
    options: &FleetOptions,
) -> TargetResult {
    let outcome = crate::run::run(crate::run::Job {
        loaded,
        runtime,
        target: &spec,
        target_label: None,
        inputs: options.inputs.clone(),
        answers: options.answers.clone(),
        policy: options.policy.clone(),
        redact: options.redact.clone(),
        deadline: options.deadline,
        fail_on: options.fail_on,
        on_step: None,
    })
    .await;
    let findings = outcome
        .report
        .iter()
        .flat_map(|r| &r.findings)
        .map(|f| TargetFinding {
            id: f.id.clone(),
            severity: f.severity,
            title: f.title.clone(),
        })
        .collect();
    // An incomplete run's one line: why its first unknown or errored step could not see
    // its subject.
    let error = outcome.error.or_else(|| {
        let report = outcome.report.as_ref()?;
        (outcome.status == Status::Incomplete).then(|| {
            report
                .steps
                .iter()
                .find(|s| {
                    matches!(
                        s.status,
                        crate::report::StepStatus::Errored | crate::report::StepStatus::Unknown
                    )
                })
                .and_then(|s| s.reason.clone())
                .unwrap_or_default()
        })
    });
    TargetResult {
        target: spec.to_string(),
        status: outcome.status,
        duration_ms: outcome.duration.as_millis() as u64,
        error,
        findings,
        steps: outcome.report.as_ref().map(StepMarks::of),
        report: outcome.report.filter(|_| options.keep_reports),
    }
}
