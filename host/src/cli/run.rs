//! `triage run RUNBOOK` (and `triage guide`, which is `run --interactive`): one runbook on
//! one target, or with several targets a fleet run (`fleet.rs`).

use super::{Cli, CliResult, Failure, Given, OrExit};
use crate::engine::{self, RunOptions, inputs};
use crate::report::{self, Format, Render, RenderOptions, Report};
use crate::runbook;
use crate::target::Spec;
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The runbook: an id (`service-unreachable`; `triage list` shows them) or a path to a
    /// YAML file.
    runbook: String,
    /// Guided mode: show each step and what it will touch, and ask before running it.
    #[arg(long)]
    pub interactive: bool,
    /// Guided mode: where the session's report is saved (JSON and Markdown).
    #[arg(long, value_name = "DIR", default_value = ".")]
    save_dir: PathBuf,
    /// Replay a recorded bundle instead of probing this machine (repeatable: several make
    /// a fleet run).
    #[arg(long, value_name = "DIR")]
    bundle: Vec<PathBuf>,
    /// Where to probe: `local` (this machine, the default), `local://NAME` (this machine,
    /// named NAME in reports and on a server: a node's name), `ssh://[user@]host[:port]`,
    /// `gcloud://INSTANCE?zone=Z[&project=P]` or `kubectl://[namespace/]pod[/container]`
    /// (repeatable: several make a fleet run).
    #[arg(long)]
    target: Vec<String>,
    /// Run on every target listed in FILE (one a line: local, local://NAME, ssh://…,
    /// gcloud://…, kubectl://…, or a bundle directory) and print an aggregate report.
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    targets: Option<PathBuf>,
    /// With --targets: run only shard I of N (1 ≤ I ≤ N): the targets whose position in
    /// the list, counted from 0, leaves I-1 when divided by N. N processes given 1/N … N/N
    /// run every target exactly once (a Kubernetes Indexed Job: JOB_COMPLETION_INDEX + 1).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "targets")]
    shard: Option<(usize, usize)>,
    /// With --targets: how many targets run at once.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// With --targets: how long one target may take, e.g. 120s or 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg)]
    target_timeout: std::time::Duration,
    /// Record every capability call and answer into a new bundle directory.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Run a scenario test case (`runbooks/ID/tests/CASE`, as `triage test` does): its
    /// bundle, inputs and answers; --input and --answer add to them or replace them.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bundle", "target", "targets", "record"])]
    case: Option<PathBuf>,
    #[command(flatten)]
    pub given: Given,
    /// Include every step's facts in the JSON report.
    #[arg(long)]
    facts: bool,
    /// Also write the report to FILE (atomically), in the chosen format.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also write the run as JUnit XML to FILE for a CI system: a test case per step
    /// (failed at its severity, unknown and errored as errors, skipped as skipped), and one
    /// that fails when the diagnosis is incomplete.
    #[arg(long, value_name = "FILE", conflicts_with = "targets")]
    junit: Option<PathBuf>,
    /// Post each target's finished result to the triage server at URL (its
    /// `POST /v1/reports`), into the fleet --fleet-id; the bearer token (scope `report`) is
    /// read from TRIAGE_REPORT_TOKEN. A failed post: the report is printed still, and the
    /// exit code is 4.
    #[arg(long, value_name = "URL", requires = "fleet_id")]
    report_to: Option<String>,
    /// With --report-to: the fleet the results go into (`GET /v1/fleets/ID` adds them up);
    /// letters, digits, `.`, `_` and `-`, at most 128.
    #[arg(long, value_name = "ID", requires = "report_to")]
    fleet_id: Option<String>,
}

/// `triage guide`: only the flags guided mode honours (one target, never a fleet), so its
/// `--help` promises nothing it ignores.
#[derive(clap::Args, Debug, Clone)]
pub struct GuideArgs {
    /// The runbook: an id (`service-unreachable`; `triage list` shows them) or a path to a
    /// YAML file.
    runbook: String,
    /// Where the session's report is saved (JSON and Markdown).
    #[arg(long, value_name = "DIR", default_value = ".")]
    save_dir: PathBuf,
    /// Walk through a recorded bundle (a customer's capture, say) instead of this machine.
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    bundle: Option<PathBuf>,
    /// Where to probe: `local` (this machine, the default), `local://NAME` (this machine,
    /// named NAME), `ssh://[user@]host[:port]`, `gcloud://INSTANCE?zone=Z[&project=P]` or
    /// `kubectl://[namespace/]pod[/container]`.
    #[arg(long)]
    target: Option<String>,
    /// Record every capability call and answer into a new bundle directory.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    #[command(flatten)]
    given: Given,
    /// Include every step's facts in the JSON report.
    #[arg(long)]
    facts: bool,
    /// Also write the report to FILE (atomically), in the chosen format.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

impl GuideArgs {
    pub fn into_run_args(self) -> RunArgs {
        RunArgs {
            runbook: self.runbook,
            interactive: true,
            save_dir: self.save_dir,
            bundle: self.bundle.into_iter().collect(),
            target: self.target.into_iter().collect(),
            targets: None,
            shard: None,
            // Fleet settings: unused with one target.
            jobs: 1,
            target_timeout: std::time::Duration::from_secs(300),
            record: self.record,
            case: None,
            given: self.given,
            facts: self.facts,
            output: self.output,
            junit: None,
            report_to: None,
            fleet_id: None,
        }
    }
}

/// A case's pairs with the command line's: a name given on the command line replaces the
/// case's value for it.
fn with_case(case: Vec<(String, String)>, flags: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = case
        .into_iter()
        .filter(|(name, _)| !flags.iter().any(|(n, _)| n == name))
        .collect();
    out.extend(flags.iter().cloned());
    out
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    runbook::parse_duration(s).ok_or_else(|| format!("`{s}`: write e.g. 30s, 500ms or 5m"))
}

pub fn run(cli: &Cli, args: &RunArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let loaded = super::load_runbook(&args.runbook, &runtime)?;
    // A scenario case gives the bundle, inputs and answers; the flags add to them.
    let case = match &args.case {
        Some(dir) => Some(super::test::load_case(dir).or_usage()?),
        None => None,
    };
    let mut given = with_case(
        case.as_ref().map(|c| c.input_pairs()).unwrap_or_default(),
        &args.given.inputs,
    );
    if args.interactive {
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            return Err(Failure::usage(
                "guided mode needs a terminal; use `triage run` in scripts",
            ));
        }
        super::guide::ask_missing_inputs(&loaded, &mut given).or_run()?;
    }
    let inputs = inputs::resolve(&loaded.runbook, &given).map_err(Failure::usage)?;
    let answers: BTreeMap<String, String> = with_case(
        case.as_ref()
            .map(|c| c.spec.answers.clone().into_iter().collect())
            .unwrap_or_default(),
        &args.given.answers,
    )
    .into_iter()
    .collect();
    inputs::check_answers(&loaded.runbook, &answers).map_err(Failure::usage)?;
    let policy = Arc::new(super::load_policy(cli)?);
    let redact = super::load_redactor(cli)?;
    let reporter = match (&args.report_to, &args.fleet_id) {
        (Some(url), Some(fleet)) => Some(Arc::new(super::report_to::Reporter::new(
            url,
            fleet,
            loaded.runbook.id.as_str(),
        )?)),
        _ => None,
    };
    // Several targets (a file, or more than one --bundle/--target) make a fleet run.
    // `--shard I/N` counts positions over the whole list: the targets file's first (split
    // as it is read, so a shard never holds the whole file), then --bundle and --target.
    let in_shard = |position: usize| {
        args.shard
            .is_none_or(|(index, count)| position % count == index - 1)
    };
    let (mut specs, mut position) = match &args.targets {
        Some(file) => super::fleet::read_targets_file(file, args.shard).or_usage()?,
        None => (Vec::new(), 0),
    };
    // Each target's place in the whole list, which a fleet on a server is ordered by.
    let mut positions: Vec<usize> = (0..specs.len())
        .map(|k| match args.shard {
            Some((index, count)) => index - 1 + k * count,
            None => k,
        })
        .collect();
    let mut more = Vec::new();
    for dir in &args.bundle {
        more.push(Spec::bundle(dir).or_usage()?);
    }
    if let Some(case) = &case {
        more.push(Spec::bundle(&case.bundle_dir()).or_usage()?);
    }
    for target in &args.target {
        more.push(Spec::parse(target).or_usage()?);
    }
    for spec in more {
        if in_shard(position) {
            specs.push(spec);
            positions.push(position);
        }
        position += 1;
    }
    if args.targets.is_some() || specs.len() > 1 {
        if args.record.is_some() || args.interactive {
            return Err(Failure::usage(
                "--record and guided mode take one target, not a fleet",
            ));
        }
        let options = super::fleet::FleetOptions {
            inputs,
            answers,
            policy,
            redact,
            jobs: args.jobs,
            deadline: args.target_timeout,
            fail_on: args.given.fail_on.severity(),
            keep_reports: args.given.format.needs_whole_reports(),
            on_target: None,
            reporter: reporter.map(|r| (r, positions)),
        };
        return super::fleet::run(
            runtime,
            loaded,
            specs,
            options,
            args.given.format,
            args.output.as_deref(),
        );
    }

    let spec = specs.first().cloned().unwrap_or(Spec::Local);
    let base = spec.open().or_usage()?;
    let (target, recorder) =
        super::record::recording(base, args.record.as_deref(), redact.clone())?;

    let mut interaction = None;
    let progress = if args.interactive {
        None
    } else {
        progress_bar(args.given.format)
    };
    let mut on_step: Option<engine::StepCallback> = progress.clone().map(|bar| {
        Box::new(move |s: &report::StepReport, _: &[report::FindingReport]| {
            bar.set_message(format!("{} {}", s.id, s.status.as_str()));
            bar.tick();
        }) as _
    });
    let mut session = None;
    if args.interactive {
        super::guide::print_plan(&loaded, &target.name());
        let (hooks, printer, record) = super::guide::session(target.name());
        interaction = Some(hooks);
        on_step = Some(printer);
        session = Some(record);
    }
    let options = RunOptions {
        inputs,
        answers,
        target,
        policy,
        on_step,
        interaction,
        redact,
    };
    let mut report = super::tokio_runtime()?.block_on(engine::run(&loaded, &runtime, options));
    // Guided mode: what the person skipped or quit before makes the diagnosis incomplete.
    let unchecked = session.and_then(|s| s.finish(&loaded, &mut report));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    if let (Some(recorder), Some(dir)) = (&recorder, &args.record) {
        super::record::write_recording(recorder, dir)?;
    }
    if args.interactive {
        super::guide::save_session(&report, &args.save_dir)?;
    }
    let rendered = render(
        &report,
        args.given.format,
        args.facts,
        std::io::stdout().is_terminal(),
    );
    print!("{rendered}");
    if let Some(note) = &unchecked {
        println!("{note}");
    }
    if let Some(path) = &args.junit {
        let xml = super::test::run_junit_xml(&report, args.given.fail_on.severity());
        crate::files::write_atomic(path, xml.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
    }
    if let Some(path) = &args.output {
        let plain = render(&report, args.given.format, args.facts, false);
        crate::files::write_atomic(path, plain.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
    }
    let code = report.exit_code(args.given.fail_on.severity());
    if let Some(reporter) = reporter {
        let fail_on = args.given.fail_on.severity();
        let duration = std::time::Duration::from_millis(report.duration_ms);
        let result = crate::report::fleet::TargetResult::of(
            spec.to_string(),
            crate::run::Status::of_report(&report, fail_on),
            duration,
            None,
            Some(report),
        );
        super::tokio_runtime()?.block_on(reporter.post(None, &result));
        return Ok(reporter.exit_code(code));
    }
    Ok(code)
}

/// A spinner on stderr naming the step that just ended (human output on a terminal only).
fn progress_bar(format: Format) -> Option<indicatif::ProgressBar> {
    if format != Format::Human || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(bar)
}

fn render(report: &Report, format: Format, facts: bool, terminal: bool) -> String {
    let options = RenderOptions {
        color: report::human::use_color(terminal),
        facts,
    };
    report.render(format, &options)
}

/// `--shard I/N`: both whole numbers, 1 ≤ I ≤ N.
fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    match parsed {
        Some((i, n)) if (1..=n).contains(&i) => Ok((i, n)),
        _ => Err(format!(
            "`{}` is not a shard: write I/N with 1 <= I <= N, e.g. 2/4",
            text.escape_debug()
        )),
    }
}
