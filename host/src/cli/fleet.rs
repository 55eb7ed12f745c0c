//! Fleet runs: one runbook on many targets at once, with bounded concurrency and a deadline
//! per target, and an aggregate report: per target what fired, and across the fleet each
//! finding id with the targets it fired on. One unreachable or hanging target never blocks
//! the others: each runs in its own task under its own deadline.

use super::{CliResult, OrExit};
use crate::capability::Policy;
use crate::report::fleet::{FleetReport, FleetTally, StepMarks, TargetFinding, TargetResult};
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
    let runbook = loaded.runbook.id.as_str().to_string();
    let (loaded, runtime) = (Arc::new(loaded), Arc::new(runtime));
    let finish_bars = || {
        if let Some((done, failing, running)) = &progress {
            for b in [done, failing, running] {
                b.finish_and_clear();
            }
        }
    };
    if format == Format::Jsonl {
        // Streamed: each target's line is written as it finishes and then dropped, so
        // memory holds the aggregate only, whatever the fleet's size.
        let mut sink = JsonLines::new(output)?;
        let (tally, duration) = rt.block_on(run_all(loaded, runtime, specs, options, |_, t| {
            sink.line(&crate::report::fleet::target_json_line(&t))
        }));
        finish_bars();
        let report = FleetReport::from_tally(&runbook, duration, tally, Vec::new());
        sink.line(&report.aggregate_json_line());
        sink.finish()?;
        return Ok(report.exit_code());
    }
    let mut kept: Vec<Option<TargetResult>> = Vec::new();
    let (tally, duration) = rt.block_on(run_all(loaded, runtime, specs, options, |index, t| {
        if kept.len() <= index {
            kept.resize_with(index + 1, || None);
        }
        kept[index] = Some(t);
    }));
    finish_bars();
    let targets = kept.into_iter().flatten().collect();
    let report = FleetReport::from_tally(&runbook, duration, tally, targets);
    let text = report.render(format, &RenderOptions::default());
    print!("{text}");
    if let Some(path) = output {
        crate::files::write_atomic(path, text.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
    }
    Ok(report.exit_code())
}

/// Where `--format jsonl` lines go: stdout as they come, and with `--output` a temporary
/// file beside FILE that replaces it when the run is over (atomically, as every written
/// file), so a reader of FILE never sees half a fleet.
struct JsonLines {
    stdout: std::io::Stdout,
    file: Option<(tempfile::NamedTempFile, std::path::PathBuf)>,
}

impl JsonLines {
    fn new(output: Option<&Path>) -> Result<Self, super::Failure> {
        let file = match output {
            Some(path) => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let temp = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| path.display().to_string())
                    .or_run()?;
                Some((temp, path.to_path_buf()))
            }
            None => None,
        };
        Ok(JsonLines {
            stdout: std::io::stdout(),
            file,
        })
    }

    /// Writes one line. A closed stdout (`| head`) stops only the printing; the file, if
    /// any, still gets every line.
    fn line(&mut self, line: &str) {
        use std::io::Write;
        let mut out = self.stdout.lock();
        let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
        if let Some((temp, _)) = &mut self.file {
            let _ = temp.write_all(line.as_bytes());
        }
    }

    fn finish(self) -> Result<(), super::Failure> {
        if let Some((temp, path)) = self.file {
            temp.as_file()
                .sync_all()
                .and_then(|_| temp.persist(&path).map(drop).map_err(|e| e.error))
                .with_context(|| path.display().to_string())
                .or_run()?;
        }
        Ok(())
    }
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

/// Runs every target, at most `options.jobs` at once, and hands each result to `sink`
/// (with the target's index in `specs`) as it finishes; returns the counts across the
/// fleet and how long it took. Tasks are started as others end, never all at once, so a
/// fleet of 100,000 targets holds `jobs` runs in memory, not 100,000 waiting ones.
pub async fn run_all(
    loaded: Arc<LoadedRunbook>,
    runtime: Arc<Runtime>,
    specs: Vec<Spec>,
    options: FleetOptions,
    mut sink: impl FnMut(usize, TargetResult),
) -> (FleetTally, Duration) {
    let started = Instant::now();
    let total = specs.len();
    let jobs = options.jobs.max(1);
    let options = Arc::new(options);
    let mut tally = FleetTally::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut pending = specs.into_iter().enumerate();
    let (mut done, mut failing) = (0, 0);
    loop {
        while tasks.len() < jobs {
            let Some((index, spec)) = pending.next() else {
                break;
            };
            let (loaded, runtime, options) = (loaded.clone(), runtime.clone(), options.clone());
            tasks.spawn(async move { (index, run_one(&loaded, &runtime, spec, &options).await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
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
        tally.add(&result);
        sink(index, result);
    }
    (tally, started.elapsed())
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
