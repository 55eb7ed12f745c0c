//! Fleet runs: one runbook on many targets at once, with bounded concurrency and a deadline
//! per target, and an aggregate report: per target what fired, and across the fleet each
//! finding id with the targets it fired on. One unreachable or hanging target never blocks
//! the others: each runs in its own task under its own deadline.

use super::{CliResult, OrExit};
use crate::capability::Policy;
use crate::report::fleet::{FleetReport, FleetTally, TargetResult};
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
    let reporter = options.reporter.as_ref().map(|(r, _)| r.clone());
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
        let report: FleetReport = FleetReport::from_tally(&runbook, duration, tally, Vec::new());
        sink.line(&report.aggregate_json_line());
        sink.finish()?;
        return Ok(posted(&reporter, report.exit_code()));
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
    Ok(posted(&reporter, report.exit_code()))
}

/// The exit code, once the results are posted (`--report-to`): 4 when a post failed.
fn posted(reporter: &Option<Arc<super::report_to::Reporter>>, code: i32) -> i32 {
    reporter.as_ref().map_or(code, |r| r.exit_code(code))
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

/// A targets file's line longer than this is refused (a target is a path or a URL): a
/// file with no line breaks, or `/dev/zero`, is an error on its first line, not a read
/// that fills memory.
const MAX_TARGET_LINE_BYTES: u64 = 64 << 10;

/// Reads a targets file: one target a line (`local`, `ssh://…`, `gcloud://…`,
/// `kubectl://…`, or a bundle directory, optionally written `bundle:DIR`, relative to the
/// file); blank lines and `#` comments are skipped. A line that is no target is an error
/// naming the file and line. With `shard` (I, N), only the targets at positions I-1,
/// I-1+N, … (counted from 0 over the file's targets) are kept, as they are read, so each
/// of N processes holds only its part of a big file. Returns the targets kept and how
/// many the file lists in all.
pub fn read_targets_file(
    path: &Path,
    shard: Option<(usize, usize)>,
) -> anyhow::Result<(Vec<Spec>, usize)> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut reader = std::io::BufReader::new(file);
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let (mut total, mut number) = (0, 0);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        number += 1;
        let read = (&mut reader)
            .take(MAX_TARGET_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("{}:{number}", path.display()))?;
        if read == 0 {
            break;
        }
        if buf.len() as u64 > MAX_TARGET_LINE_BYTES {
            anyhow::bail!(
                "{}:{number}: line longer than {MAX_TARGET_LINE_BYTES} bytes: not a targets file",
                path.display()
            );
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| anyhow::anyhow!("{}:{number}: not UTF-8 text", path.display()))?;
        let line = text.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let position = total;
        total += 1;
        if shard.is_some_and(|(index, count)| position % count != index - 1) {
            continue;
        }
        let spec = Spec::in_file(line, base)
            .map_err(|e| anyhow::anyhow!("{}:{number}: {e}", path.display()))?;
        out.push(spec);
    }
    if total == 0 {
        anyhow::bail!("{}: no targets in it", path.display());
    }
    Ok((out, total))
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
    /// `--report-to`: where each target's result is posted as it finishes, with each
    /// target's place in the whole list (by index in the specs).
    pub reporter: Option<(Arc<super::report_to::Reporter>, Vec<usize>)>,
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
            tasks.spawn(async move {
                (
                    index,
                    run_one(&loaded, &runtime, spec, index, &options).await,
                )
            });
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
    index: usize,
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
    let mut result = TargetResult::of(
        spec.to_string(),
        outcome.status,
        outcome.duration,
        outcome.error,
        outcome.report,
    );
    // Posted with its report as soon as it is known, within the --jobs bound.
    if let Some((reporter, positions)) = &options.reporter {
        reporter.post(positions.get(index).copied(), &result).await;
    }
    if !options.keep_reports {
        result.report = None;
    }
    result
}

/// `triage fleet …`: work on fleet runs' outputs.
#[derive(clap::Args, Debug)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum FleetCommand {
    /// Merge the `--format jsonl` outputs of the shards of one fleet (`run --shard I/N`)
    /// into the aggregate one process over every target would have given.
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' `--format jsonl` outputs (each ends with its aggregate line).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// How to print the merged aggregate: human, json or markdown (the aggregate without
    /// per-target sections, which the shards' lines hold), or jsonl (the aggregate line).
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Also write it to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

pub fn command(args: &FleetArgs) -> CliResult {
    match &args.command {
        FleetCommand::Merge(merge) => merge_command(merge),
    }
}

/// A line of a jsonl fleet output longer than this is refused: an aggregate line lists
/// each failing target's name once per finding, so even a million targets stay far below.
const MAX_LINE_BYTES: u64 = 256 << 20;

fn merge_command(args: &MergeArgs) -> CliResult {
    if args.format == Format::Sarif {
        return Err(super::Failure::usage(
            "fleet merge cannot write sarif: it needs each target's report, which the jsonl lines do not hold; run the fleet with --format sarif instead",
        ));
    }
    let report = merge_files(&args.files).or_usage()?;
    let text = match args.format {
        Format::Jsonl | Format::Json => {
            let line = report.aggregate_json_line();
            if args.format == Format::Jsonl {
                line
            } else {
                let value: Value = serde_json::from_str(&line).expect("our own JSON parses");
                serde_json::to_string_pretty(&value).expect("a JSON value serialises") + "\n"
            }
        }
        format => report.render(format, &RenderOptions::default()),
    };
    print!("{text}");
    if let Some(path) = &args.output {
        crate::files::write_atomic(path, text.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
    }
    Ok(report.exit_code())
}

/// The aggregate line of a jsonl fleet output, as `FleetReport::aggregate_json_line`
/// writes it.
#[derive(serde::Deserialize)]
struct AggregateLine {
    runbook: String,
    duration_ms: u64,
    summary: crate::report::fleet::FleetSummary,
    findings: BTreeMap<String, crate::report::fleet::FindingAcrossFleet>,
}

/// What merge needs of a line: the aggregate has `schema`, a target's line `target`.
#[derive(serde::Deserialize)]
struct LineKind {
    schema: Option<String>,
    target: Option<String>,
}

/// Merges the shards' outputs. Each file must end with its aggregate line (a shard that
/// died before the end has none, and merging without it would undercount the fleet); the
/// runbooks must agree; a target listed by two files means a shard was given twice (or
/// two fleets were mixed), which is refused rather than counted twice. The merged run took
/// as long as its slowest shard (shards run side by side).
pub fn merge_files(files: &[std::path::PathBuf]) -> anyhow::Result<FleetReport> {
    use std::io::{BufRead, Read};
    let mut tally = FleetTally::default();
    let mut runbook: Option<(String, &Path)> = None;
    let mut duration_ms = 0;
    // Every target's name and the file that listed it, to catch a target counted twice.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (file_index, path) in files.iter().enumerate() {
        let name = path.display();
        let file = std::fs::File::open(path).with_context(|| name.to_string())?;
        let mut reader = std::io::BufReader::new(file);
        let mut aggregate: Option<(usize, AggregateLine)> = None;
        let mut buf = Vec::new();
        let mut number = 0;
        loop {
            buf.clear();
            number += 1;
            let read = (&mut reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("{name}:{number}"))?;
            if read == 0 {
                break;
            }
            if buf.len() as u64 > MAX_LINE_BYTES {
                anyhow::bail!("{name}:{number}: line longer than {MAX_LINE_BYTES} bytes");
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Some((at, _)) = &aggregate {
                anyhow::bail!(
                    "{name}:{number}: a line after the aggregate (line {at}): not one fleet run's jsonl output"
                );
            }
            let kind: LineKind = serde_json::from_slice(&buf)
                .map_err(|e| anyhow::anyhow!("{name}:{number}: not a fleet jsonl line: {e}"))?;
            match (kind.schema, kind.target) {
                (Some(schema), _) => {
                    if schema != "triage.fleet/v1" {
                        anyhow::bail!(
                            "{name}:{number}: schema `{}` is not triage.fleet/v1",
                            schema.escape_debug()
                        );
                    }
                    let line: AggregateLine = serde_json::from_slice(&buf).map_err(|e| {
                        anyhow::anyhow!("{name}:{number}: not a fleet aggregate: {e}")
                    })?;
                    aggregate = Some((number, line));
                }
                (None, Some(target)) => {
                    if let Some(other) = seen.insert(target.clone(), file_index) {
                        anyhow::bail!(
                            "{name}:{number}: target `{}` is also in {}: the same shard given twice, or two fleets mixed",
                            target.escape_debug(),
                            files[other].display()
                        );
                    }
                }
                (None, None) => {
                    anyhow::bail!("{name}:{number}: neither a target's line nor the aggregate")
                }
            }
        }
        let Some((_, line)) = aggregate else {
            anyhow::bail!(
                "{name}: no aggregate line at the end: that shard did not finish (or the file is not a fleet run's --format jsonl output)"
            );
        };
        match &runbook {
            Some((id, first)) if *id != line.runbook => anyhow::bail!(
                "{name}: runbook `{}`, but {} ran `{}`: not the same fleet",
                line.runbook.escape_debug(),
                first.display(),
                id.escape_debug()
            ),
            Some(_) => {}
            None => runbook = Some((line.runbook.clone(), path)),
        }
        duration_ms = duration_ms.max(line.duration_ms);
        tally.merge(&line.summary, line.findings);
    }
    let runbook = runbook.map(|(id, _)| id).unwrap_or_default();
    Ok(FleetReport::from_tally(
        &runbook,
        Duration::from_millis(duration_ms),
        tally,
        Vec::new(),
    ))
}
