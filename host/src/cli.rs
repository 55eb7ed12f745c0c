//! The `triage` command line. Every error ends as one line on stderr and an exit code:
//! 0 nothing at or above --fail-on, 1 such findings, 2 invalid runbook, input or
//! arguments, 3 the run itself failed.

use crate::capability::Policy;
use crate::catalog;
use crate::engine::{self, RunOptions, inputs};
use crate::report::{self, Report};
use crate::runbook::{self, Severity};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::target::{Target, bundle::BundleTarget, local::LocalTarget, record::RecordingTarget};
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "triage",
    version,
    about = "Runs troubleshooting runbooks whose probes are sandboxed WebAssembly plugins"
)]
pub struct Cli {
    /// Also load the *.wasm plugins in DIR (repeatable; later ones shadow earlier ones).
    #[arg(long = "plugins", value_name = "DIR", global = true)]
    plugin_dirs: Vec<PathBuf>,
    /// The operator policy (default: ~/.config/triage/policy.yaml if present, else the built-in one).
    #[arg(long, value_name = "FILE", global = true)]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a runbook (a built-in or user runbook id, or a path to a YAML file).
    Run(RunArgs),
    /// Walk through a runbook step by step in the terminal (`run --interactive`).
    Guide(RunArgs),
    /// List the runbooks: the user's, then the built-in ones.
    List,
    /// Check runbooks without running them (all of them when no file is given).
    Lint { files: Vec<PathBuf> },
    /// List the plugins, their actions and the capabilities each action asks for.
    Plugins,
    /// Call one plugin action on one target and print its facts as JSON (for writing
    /// plugins and runbook conditions).
    Probe(ProbeArgs),
    /// Run runbooks' scenario tests (all runbooks when none is given): each case replays its
    /// bundle and must fire exactly the findings it expects.
    Test {
        runbooks: Vec<String>,
        /// Also write the results as JUnit XML (one suite per runbook) for CI systems.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Detect what can be probed (Envoy admin port, metadata server, Kubernetes), run every
    /// runbook that applies with the same inputs, and merge their reports.
    Doctor(DoctorArgs),
    /// Print the JSON Schema of runbooks (for editors: see the README's modeline).
    Schema,
    /// Draw a runbook's DAG, with the conditions on the edges.
    Graph {
        runbook: String,
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Mermaid)]
        format: GraphFormatArg,
    },
    /// Serve the HTTP API and the Slack slash command for chat bots (see docs/serve.md).
    Serve(ServeArgs),
    /// Scaffold a runbook (with a passing test) or a plugin crate (that builds).
    New {
        #[arg(value_enum)]
        kind: NewKind,
        /// The runbook id or plugin name.
        name: String,
        /// Where to create it (default: the current directory).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    runbook: String,
    /// Guided mode: show each step and what it will touch, and ask before running it.
    #[arg(long)]
    interactive: bool,
    /// Guided mode: where the session's report is saved (JSON and Markdown).
    #[arg(long, value_name = "DIR", default_value = ".")]
    save_dir: PathBuf,
    /// Replay a recorded bundle instead of probing this machine (repeatable: several make
    /// a fleet run).
    #[arg(long, value_name = "DIR")]
    bundle: Vec<PathBuf>,
    /// Where to probe: `local` (this machine, the default), `ssh://[user@]host[:port]`,
    /// `gcloud://INSTANCE?zone=Z[&project=P]` or `kubectl://[namespace/]pod[/container]`
    /// (repeatable: several make a fleet run).
    #[arg(long)]
    target: Vec<String>,
    /// Run on every target listed in FILE (one a line: local, ssh://…, gcloud://…,
    /// kubectl://…, or a bundle directory) and print an aggregate report.
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    targets: Option<PathBuf>,
    /// With --targets: how many targets run at once.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// With --targets: how long one target may take, e.g. 120s or 5m.
    #[arg(long, default_value = "5m", value_parser = parse_duration_arg)]
    target_timeout: std::time::Duration,
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

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// The server's config: tokens, Slack secret, named targets, limits (default:
    /// ~/.config/triage/server.yaml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to listen, HOST:PORT (overrides the config's `listen`; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The run history, a SQLite file (default: the config's `db`, else
    /// ~/.local/share/triage/runs.sqlite3).
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Check the config (secrets, targets, scopes, TLS files, runbooks) and exit without
    /// serving; the history is not opened, so a running server is not disturbed.
    #[arg(long)]
    check: bool,
}

#[derive(clap::Args, Debug)]
struct ProbeArgs {
    /// The plugin (`triage plugins` lists them).
    plugin: String,
    /// One of its actions.
    action: String,
    /// A param, NAME=VALUE (repeatable); the value reads as YAML, so 300 is a number and
    /// [80, 443] a list, as in a runbook's `with:`.
    #[arg(long = "with", short = 'w', value_name = "NAME=VALUE", value_parser = inputs::parse_pair)]
    with: Vec<(String, String)>,
    /// Replay a recorded bundle instead of probing this machine.
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    bundle: Option<PathBuf>,
    /// Where to probe: `local` (the default), `ssh://…`, `gcloud://…` or `kubectl://…`.
    #[arg(long)]
    target: Option<String>,
    /// Record the action's capability calls into a new bundle directory (test data for a
    /// plugin or a runbook case).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct DoctorArgs {
    /// Replay a recorded bundle instead of probing this machine.
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    given: Given,
}

/// What `run`, `guide` and `doctor` are given besides the target.
#[derive(clap::Args, Debug, Clone)]
struct Given {
    /// A runbook input, NAME=VALUE (repeatable; lists are comma-separated; doctor gives each
    /// runbook the ones it declares).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE", value_parser = inputs::parse_pair)]
    inputs: Vec<(String, String)>,
    /// The answer to an ask step, STEP=VALUE (repeatable).
    #[arg(long = "answer", short = 'a', value_name = "STEP=VALUE", value_parser = inputs::parse_pair)]
    answers: Vec<(String, String)>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// The lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Markdown,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum GraphFormatArg {
    Mermaid,
    Dot,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum NewKind {
    Runbook,
    Plugin,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

impl FailOn {
    fn severity(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    pub fn run(message: impl Into<String>) -> Self {
        Failure {
            code: 3,
            message: message.into(),
        }
    }
}

type CliResult = Result<i32, Failure>;

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    runbook::parse_duration(s).ok_or_else(|| format!("`{s}`: write e.g. 30s, 500ms or 5m"))
}

pub fn main() -> i32 {
    // A bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {msg}{at} (this is a bug in triage)");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            eprintln!("{}", one_line_usage_error(&e.render().to_string()));
            return 2;
        }
    };
    let result = std::panic::catch_unwind(|| dispatch(cli));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(f)) => {
            for line in f.message.lines() {
                eprintln!("error: {line}");
            }
            f.code
        }
        Err(_) => 3,
    }
}

fn dispatch(cli: Cli) -> CliResult {
    crate::paths::user_config().map_err(Failure::usage)?;
    match &cli.command {
        Command::Run(args) => cmd_run(&cli, args),
        Command::Guide(args) => {
            let mut args = args.clone();
            args.interactive = true;
            cmd_run(&cli, &args)
        }
        Command::List => cmd_list(),
        Command::Lint { files } => cmd_lint(&cli, files),
        Command::Plugins => cmd_plugins(&cli),
        Command::Probe(args) => cmd_probe(&cli, args),
        Command::Test { runbooks, junit } => cmd_test(&cli, runbooks, junit.as_deref()),
        Command::Doctor(args) => cmd_doctor(&cli, args),
        Command::Serve(args) => cmd_serve(&cli, args),
        Command::Schema => {
            print!("{}", crate::authoring::runbook_schema(&load_runtime(&cli)?));
            Ok(0)
        }
        Command::Graph { runbook, format } => cmd_graph(&cli, runbook, *format),
        Command::New { kind, name, dir } => {
            let made = match kind {
                NewKind::Runbook => crate::authoring::new_runbook(name, dir, &load_runtime(&cli)?),
                NewKind::Plugin => crate::authoring::new_plugin(name, dir),
            }
            .map_err(Failure::usage)?;
            println!("created {}", made.display());
            Ok(0)
        }
    }
}

fn load_runtime(cli: &Cli) -> Result<Runtime, Failure> {
    let mut plugin_dirs = Vec::new();
    if let Some(user) = crate::paths::user_plugin_dir().filter(|d| d.is_dir()) {
        plugin_dirs.push(user);
    }
    for dir in crate::paths::user_config()
        .map_err(Failure::usage)?
        .plugin_paths
    {
        if !dir.is_dir() {
            return Err(Failure::usage(format!(
                "{}: plugin_paths in the config file needs a directory",
                dir.display()
            )));
        }
        plugin_dirs.push(dir);
    }
    for dir in &cli.plugin_dirs {
        if !dir.is_dir() {
            return Err(Failure::usage(format!(
                "{}: --plugins needs a directory",
                dir.display()
            )));
        }
        plugin_dirs.push(dir.clone());
    }
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: crate::paths::cache_dir(),
        builtin: true,
        plugin_dirs,
    })
    .map_err(|e| Failure::usage(format!("{e:#}")))?;
    for w in &runtime.warnings {
        eprintln!("warning: {w}");
    }
    Ok(runtime)
}

fn load_policy(cli: &Cli) -> Result<Policy, Failure> {
    if let Some(path) = &cli.policy {
        return Policy::load(path).map_err(|e| Failure::usage(e.to_string()));
    }
    match crate::paths::policy_file().filter(|p| p.is_file()) {
        Some(path) => Policy::load(&path).map_err(|e| Failure::usage(e.to_string())),
        None => Ok(Policy::builtin()),
    }
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::run(format!("cannot start the async runtime: {e}")))
}

fn cmd_run(cli: &Cli, args: &RunArgs) -> CliResult {
    let runtime = load_runtime(cli)?;
    let mut warnings = Vec::new();
    let source = catalog::resolve(&args.runbook, &mut warnings).map_err(Failure::usage)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let text = source
        .text()
        .map_err(|e| Failure::usage(format!("{}: {e}", source.origin())))?;
    let loaded = runbook::load_str(&text, &source.origin(), &runtime)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut given = args.given.inputs.clone();
    if args.interactive {
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            return Err(Failure::usage(
                "guided mode needs a terminal; use `triage run` in scripts",
            ));
        }
        crate::guided::ask_missing_inputs(&loaded, &mut given).map_err(Failure::run)?;
    }
    let inputs = inputs::resolve(&loaded.runbook, &given).map_err(Failure::usage)?;
    let answers: BTreeMap<String, String> = args.given.answers.iter().cloned().collect();
    inputs::check_answers(&loaded.runbook, &answers).map_err(Failure::usage)?;
    let policy = Arc::new(load_policy(cli)?);
    // Several targets (a file, or more than one --bundle/--target) make a fleet run.
    let mut specs: Vec<String> = match &args.targets {
        Some(file) => crate::fleet::read_targets_file(file).map_err(Failure::usage)?,
        None => Vec::new(),
    };
    specs.extend(
        args.bundle
            .iter()
            .map(|b| format!("bundle:{}", b.display())),
    );
    specs.extend(args.target.iter().cloned());
    if args.targets.is_some() || specs.len() > 1 {
        if args.record.is_some() || args.interactive {
            return Err(Failure::usage(
                "--record and guided mode take one target, not a fleet",
            ));
        }
        return run_fleet(runtime, loaded, inputs, answers, policy, specs, args);
    }

    let base: Arc<dyn Target> = match specs.first().map(String::as_str) {
        None | Some("local") => Arc::new(LocalTarget::new()),
        Some(spec) => crate::fleet::open_target(spec).map_err(Failure::usage)?,
    };
    let (target, recorder) = recording(base, args.record.as_deref())?;

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
    if args.interactive {
        crate::guided::print_plan(&loaded, &target.name());
        let (hooks, printer) = crate::guided::session(target.name());
        interaction = Some(hooks);
        on_step = Some(printer);
    }
    let options = RunOptions {
        inputs,
        answers,
        target,
        policy,
        on_step,
        interaction,
    };
    let report = tokio_runtime()?.block_on(engine::run(&loaded, &runtime, options));
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    if let (Some(recorder), Some(dir)) = (&recorder, &args.record) {
        write_recording(recorder, dir)?;
    }
    if args.interactive {
        let stem = format!(
            "triage-{}-{}",
            report.runbook.id,
            report.started_at.replace(':', "")
        );
        for (ext, text) in [
            ("json", report.to_json(true)),
            ("md", report::markdown::render(&report)),
        ] {
            let path = args.save_dir.join(format!("{stem}.{ext}"));
            write_atomic(&path, text.as_bytes())
                .map_err(|e| Failure::run(format!("{}: {e}", path.display())))?;
            println!("saved {}", path.display());
        }
    }
    let rendered = render(
        &report,
        args.given.format,
        args.facts,
        std::io::stdout().is_terminal(),
    );
    print!("{rendered}");
    if let Some(path) = &args.output {
        let plain = render(&report, args.given.format, args.facts, false);
        write_atomic(path, plain.as_bytes())
            .map_err(|e| Failure::run(format!("{}: {e}", path.display())))?;
    }
    Ok(report.exit_code(args.given.fail_on.severity()))
}

fn run_fleet(
    runtime: Runtime,
    loaded: runbook::LoadedRunbook,
    inputs: serde_json::Map<String, serde_json::Value>,
    answers: BTreeMap<String, String>,
    policy: Arc<crate::capability::Policy>,
    specs: Vec<String>,
    args: &RunArgs,
) -> CliResult {
    // On a terminal: one bar per count (done, failing, running), redrawn as targets finish.
    let total = specs.len() as u64;
    let bars = (args.given.format == Format::Human && std::io::stderr().is_terminal()).then(|| {
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
        running.set_position(total.min(args.jobs as u64));
        (multi, done, failing, running)
    });
    let progress = bars
        .as_ref()
        .map(|(_, d, f, r)| (d.clone(), f.clone(), r.clone()));
    let jobs = args.jobs;
    let on_target: Option<crate::fleet::OnTargetDone> =
        progress
            .clone()
            .map(|(done_bar, failing_bar, running_bar)| {
                Box::new(move |done: usize, failing: usize, total: usize| {
                    done_bar.set_position(done as u64);
                    failing_bar.set_position(failing as u64);
                    running_bar.set_position((total - done).min(jobs) as u64);
                }) as _
            });
    let options = crate::fleet::FleetOptions {
        inputs,
        answers,
        policy,
        jobs: args.jobs,
        deadline: args.target_timeout,
        fail_on: args.given.fail_on.severity(),
        keep_reports: args.given.format == Format::Json,
        on_target,
    };
    // Targets run as tasks on both cores; plugin calls yield, so a slow target never holds one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::run(format!("cannot start the async runtime: {e}")))?;
    let report = rt.block_on(crate::fleet::run(
        Arc::new(loaded),
        Arc::new(runtime),
        specs,
        options,
    ));
    if let Some((done, failing, running)) = progress {
        for b in [done, failing, running] {
            b.finish_and_clear();
        }
    }
    let text = match args.given.format {
        Format::Json => report.to_json(),
        Format::Markdown => report.to_text(true),
        Format::Human => report.to_text(false),
    };
    print!("{text}");
    if let Some(path) = &args.output {
        write_atomic(path, text.as_bytes())
            .map_err(|e| Failure::run(format!("{}: {e}", path.display())))?;
    }
    Ok(report.exit_code())
}

fn progress_bar(format: Format) -> Option<indicatif::ProgressBar> {
    if format != Format::Human || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(bar)
}

fn render(report: &Report, format: Format, facts: bool, terminal: bool) -> String {
    match format {
        Format::Human => report::human::render(report, report::human::use_color(terminal)),
        Format::Json => report.to_json(facts),
        Format::Markdown => report::markdown::render(report),
    }
}

/// Writes a file via a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn cmd_serve(cli: &Cli, args: &ServeArgs) -> CliResult {
    let path = args
        .config
        .clone()
        .or_else(crate::paths::server_config_file)
        .ok_or_else(|| Failure::usage("no home directory; pass --config FILE"))?;
    if args.config.is_none() && !path.is_file() {
        return Err(Failure::usage(format!(
            "{}: no server config; write one (see docs/serve.md) or pass --config FILE",
            path.display()
        )));
    }
    let config = crate::serve::config::ServerConfig::load(&path).map_err(Failure::usage)?;
    let db = args
        .db
        .clone()
        .or_else(|| config.db.clone())
        .or_else(crate::paths::history_db)
        .ok_or_else(|| Failure::usage("no home directory; pass --db FILE"))?;
    let runtime = load_runtime(cli)?;
    let policy = load_policy(cli)?;
    let runbooks = crate::serve::load_runbooks(&config, &runtime).map_err(Failure::usage)?;
    if args.check {
        let listen = args.listen.as_deref().unwrap_or(&config.listen);
        std::net::ToSocketAddrs::to_socket_addrs(listen)
            .map_err(|e| Failure::usage(format!("{}: listen `{listen}`: {e}", path.display())))?;
        println!(
            "{}: ok: {} runbooks, {} targets, {} token(s){}{}, {}, history {}",
            path.display(),
            runbooks.len(),
            config.targets.len(),
            config.tokens.len(),
            if config.slack.is_some() {
                ", slack"
            } else {
                ""
            },
            if config.mattermost.is_some() {
                ", mattermost"
            } else {
                ""
            },
            if config.tls.is_some() {
                format!("https://{listen}")
            } else {
                format!("http://{listen}")
            },
            db.display()
        );
        return Ok(0);
    }
    let (store, interrupted) = crate::serve::store::Store::open(&db).map_err(Failure::usage)?;
    if !interrupted.is_empty() {
        eprintln!(
            "marked {} run(s) interrupted: they were in flight when the server last stopped",
            interrupted.len()
        );
    }
    crate::serve::serve(
        runtime,
        policy,
        crate::serve::ServeOptions {
            config,
            runbooks,
            store,
            listen: args.listen.clone(),
            db,
            interrupted,
        },
    )
    .map_err(Failure::run)
}

fn cmd_list() -> CliResult {
    for (id, source, shadowed) in catalog::all() {
        let title = source
            .text()
            .ok()
            .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
            .and_then(|v| v.get("title").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default();
        let note = if shadowed { "  (shadowed)" } else { "" };
        println!("{id:<36} {title}  [{}]{note}", source.origin());
    }
    Ok(0)
}

fn cmd_lint(cli: &Cli, files: &[PathBuf]) -> CliResult {
    let runtime = load_runtime(cli)?;
    let sources: Vec<catalog::RunbookSource> = if files.is_empty() {
        catalog::all()
            .into_iter()
            .filter(|(_, _, shadowed)| !shadowed)
            .map(|(_, s, _)| s)
            .collect()
    } else {
        files
            .iter()
            .map(|f| {
                if f.is_dir() {
                    catalog::RunbookSource::File(f.join("runbook.yaml"))
                } else {
                    catalog::RunbookSource::File(f.clone())
                }
            })
            .collect()
    };
    let mut errors = 0;
    for source in &sources {
        let origin = source.origin();
        let result = match source.text() {
            Ok(text) => runbook::load_str(&text, &origin, &runtime),
            Err(e) => Err(runbook::LoadErrors(vec![runbook::LoadError {
                file: origin.clone(),
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }])),
        };
        match result {
            Err(e) => {
                errors += e.0.len();
                for err in e.0 {
                    eprintln!("{err}");
                }
            }
            Ok(loaded) => match crate::testing::cases(&source.file()) {
                Err(e) => {
                    errors += 1;
                    eprintln!("{e}");
                }
                Ok(cases) => {
                    for case in &cases {
                        for problem in crate::testing::check_case(&loaded, case) {
                            errors += 1;
                            eprintln!("{problem}");
                        }
                    }
                }
            },
        }
    }
    eprintln!("{} runbook(s) checked, {errors} error(s)", sources.len());
    Ok(if errors > 0 { 2 } else { 0 })
}

fn cmd_test(cli: &Cli, ids: &[String], junit: Option<&Path>) -> CliResult {
    let runtime = load_runtime(cli)?;
    let policy = Arc::new(load_policy(cli)?);
    let sources: Vec<catalog::RunbookSource> = if ids.is_empty() {
        catalog::all()
            .into_iter()
            .filter(|(_, _, shadowed)| !shadowed)
            .map(|(_, s, _)| s)
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
        resolved.map_err(Failure::usage)?
    };
    let rt = tokio_runtime()?;
    let (mut passed, mut failed) = (0, 0);
    let mut results = Vec::new();
    for source in &sources {
        let origin = source.origin();
        let text = source
            .text()
            .map_err(|e| Failure::usage(format!("{origin}: {e}")))?;
        let loaded = runbook::load_str(&text, &origin, &runtime)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let cases = crate::testing::cases(&source.file()).map_err(Failure::usage)?;
        for case in &cases {
            let started = std::time::Instant::now();
            let outcome = rt.block_on(crate::testing::run_case(
                &loaded,
                &runtime,
                case,
                policy.clone(),
            ));
            let name = format!("{}/{}", loaded.runbook.id, case.name);
            if outcome.passed {
                passed += 1;
                println!("PASS {name}");
            } else {
                failed += 1;
                println!("FAIL {name}: {}", outcome.message);
            }
            results.push(crate::testing::CaseResult {
                runbook: loaded.runbook.id.to_string(),
                case: case.name.clone(),
                failure: (!outcome.passed).then_some(outcome.message),
                duration: started.elapsed(),
            });
        }
    }
    println!("{passed} passed, {failed} failed");
    if let Some(path) = junit {
        write_atomic(path, crate::testing::junit_xml(&results).as_bytes())
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

type Recorder = Arc<RecordingTarget>;

/// The target to run on: `base`, or with `--record DIR` a recorder in front of it (after
/// checking DIR may take a new bundle).
fn recording(
    base: Arc<dyn Target>,
    record: Option<&Path>,
) -> Result<(Arc<dyn Target>, Option<Recorder>), Failure> {
    let Some(dir) = record else {
        return Ok((base, None));
    };
    check_record_dir(dir)?;
    let recorder = Arc::new(RecordingTarget::new(base));
    Ok((recorder.clone(), Some(recorder)))
}

fn write_recording(recorder: &RecordingTarget, dir: &Path) -> Result<(), Failure> {
    recorder
        .write(dir)
        .map_err(|e| Failure::run(format!("writing the bundle: {e:#}")))?;
    eprintln!("recorded {}", dir.display());
    Ok(())
}

/// `--record` makes a new bundle: it never writes into a directory that has files.
fn check_record_dir(dir: &Path) -> Result<(), Failure> {
    let has_files = dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if has_files {
        return Err(Failure::usage(format!(
            "{}: already exists; --record needs a new directory",
            dir.display()
        )));
    }
    Ok(())
}

/// clap's error as one line: everything before its usage block ("error: …", the missing
/// arguments it lists, its tips), without the usage and the pointer to --help.
fn one_line_usage_error(rendered: &str) -> String {
    let mut out = String::new();
    for line in rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
    {
        if !out.is_empty() {
            out.push_str(if line.starts_with("tip:") { "; " } else { " " });
        }
        out.push_str(line);
    }
    if out.is_empty() {
        "error: bad arguments (see --help)".to_string()
    } else {
        out
    }
}

fn cmd_probe(cli: &Cli, args: &ProbeArgs) -> CliResult {
    let runtime = load_runtime(cli)?;
    let policy = Arc::new(load_policy(cli)?);
    let spec = match (&args.bundle, &args.target) {
        (Some(dir), _) => format!("bundle:{}", dir.display()),
        (None, Some(target)) => target.clone(),
        (None, None) => "local".to_string(),
    };
    let base = crate::fleet::open_target(&spec).map_err(Failure::usage)?;
    let (target, recorder) = recording(base, args.record.as_deref())?;
    let mut params = serde_json::Map::new();
    for (name, value) in &args.with {
        if params
            .insert(name.clone(), crate::probe::param_value(value))
            .is_some()
        {
            return Err(Failure::usage(format!("--with {name}: given twice")));
        }
    }
    let outcome = tokio_runtime()?
        .block_on(crate::probe::probe(
            &runtime,
            policy,
            target,
            &args.plugin,
            &args.action,
            params,
        ))
        .map_err(Failure::usage)?;
    let text = serde_json::to_string_pretty(&outcome).map_err(|e| Failure::run(e.to_string()))?;
    println!("{text}");
    if let (Some(recorder), Some(dir)) = (&recorder, &args.record) {
        write_recording(recorder, dir)?;
    }
    // Like a run: 3 when the step errored (the facts could not be gathered).
    Ok(if outcome.status == "passed" { 0 } else { 3 })
}

fn cmd_doctor(cli: &Cli, args: &DoctorArgs) -> CliResult {
    let runtime = load_runtime(cli)?;
    let policy = Arc::new(load_policy(cli)?);
    let target: Arc<dyn Target> = match &args.bundle {
        Some(dir) => Arc::new(BundleTarget::open(dir).map_err(|e| Failure::usage(e.to_string()))?),
        None => Arc::new(LocalTarget::new()),
    };
    let answers: BTreeMap<String, String> = args.given.answers.iter().cloned().collect();
    let report = tokio_runtime()?
        .block_on(crate::doctor::run(
            &runtime,
            target,
            policy,
            &args.given.inputs,
            &answers,
        ))
        .map_err(Failure::usage)?;
    let text = match args.given.format {
        Format::Json => report.to_json(),
        Format::Markdown => report.to_text(true, false),
        Format::Human => report.to_text(
            false,
            report::human::use_color(std::io::stdout().is_terminal()),
        ),
    };
    print!("{text}");
    Ok(report.exit_code(args.given.fail_on.severity()))
}

fn cmd_graph(cli: &Cli, id: &str, format: GraphFormatArg) -> CliResult {
    let runtime = load_runtime(cli)?;
    let mut warnings = Vec::new();
    let source = catalog::resolve(id, &mut warnings).map_err(Failure::usage)?;
    let text = source
        .text()
        .map_err(|e| Failure::usage(format!("{}: {e}", source.origin())))?;
    let loaded = runbook::load_str(&text, &source.origin(), &runtime)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let format = match format {
        GraphFormatArg::Mermaid => crate::authoring::GraphFormat::Mermaid,
        GraphFormatArg::Dot => crate::authoring::GraphFormat::Dot,
    };
    print!("{}", crate::authoring::graph(&loaded.runbook, format));
    Ok(0)
}

fn cmd_plugins(cli: &Cli) -> CliResult {
    let runtime = load_runtime(cli)?;
    for p in runtime.plugins() {
        let m = &p.manifest;
        println!(
            "{} {} ({}) — {}",
            m.name, m.version, p.origin, m.description
        );
        for a in &m.actions {
            println!("  {:<22} {}", a.name, a.description);
            for c in &a.capabilities {
                println!("  {:<22}   {}", "", c.display(None));
            }
        }
    }
    Ok(0)
}
