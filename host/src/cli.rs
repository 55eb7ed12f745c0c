//! The `triage` command line: a front end over the core (runbook, engine, runtime,
//! capability, target, report), like `serve` is. One file per subcommand under `cli/`;
//! this file holds what they share: the global flags, the dispatch, how the runtime and
//! the policy are loaded, and how a failure ends.
//!
//! Every error ends as one line on stderr and an exit code: 0 nothing at or above
//! --fail-on, 1 such findings, 2 invalid runbook, input or arguments, 3 the diagnosis is
//! incomplete (or the run itself failed).

pub mod completions;
pub mod doctor;
pub mod explain;
pub mod fleet;
pub mod graph;
pub mod guide;
pub mod lint;
pub mod list;
pub mod log;
pub mod new;
pub mod plugins;
pub mod probe;
pub mod record;
pub mod report_to;
pub mod run;
pub mod schema;
pub mod serve;
pub mod test;

use crate::capability::Policy;
use crate::catalog;
use crate::engine::inputs;
use crate::redact::Redactor;
use crate::report::Format;
use crate::runbook::{self, Severity};
use crate::runtime::{Runtime, RuntimeOptions};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;
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
    /// When to colour human output: auto (on a terminal, unless NO_COLOR is set), always,
    /// never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    /// Also redact what the patterns in FILE match, besides the built-in ones (secrets in
    /// recorded answers, reports and chat posts; see docs/security.md).
    #[arg(long = "redact", value_name = "FILE", global = true)]
    redact: Option<PathBuf>,
    /// Log more: -v info, -vv debug, -vvv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log less: -q only errors, -qq nothing (the report and its warnings still print).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
    /// How log lines look on stderr: text for people, json (one object a line) for log
    /// collectors.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = log::LogFormat::Text, global = true)]
    log_format: log::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a runbook (a built-in or user runbook id, or a path to a YAML file).
    Run(run::RunArgs),
    /// Walk through a runbook step by step in the terminal (`run --interactive`).
    Guide(run::GuideArgs),
    /// List the runbooks: the user's, then the built-in ones.
    List(list::ListArgs),
    /// Check runbooks without running them (all of them when no file is given).
    Lint(lint::LintArgs),
    /// List the plugins, their actions and the capabilities each action asks for.
    Plugins(plugins::PluginsArgs),
    /// Call one plugin action on one target and print its facts as JSON (for writing
    /// plugins and runbook conditions).
    Probe(probe::ProbeArgs),
    /// Run runbooks' scenario tests (all runbooks when none is given): each case replays its
    /// bundle and must fire exactly the findings it expects.
    Test(test::TestArgs),
    /// Detect what can be probed (Envoy admin port, metadata server, Kubernetes), run every
    /// runbook that applies with the same inputs, and merge their reports.
    Doctor(doctor::DoctorArgs),
    /// Explain a finding by its code (TRG0403) or id: what it means, where it is checked,
    /// the fix and the guide section, offline from the runbooks in the binary.
    Explain(explain::ExplainArgs),
    /// Print the JSON Schema of runbooks, or of scenario cases or bundles (for editors: see
    /// the README's modeline).
    Schema(schema::SchemaArgs),
    /// Draw a runbook's DAG, with the conditions on the edges.
    Graph(graph::GraphArgs),
    /// Work on fleet runs' outputs: `fleet merge` adds up the jsonl outputs of a fleet's
    /// shards (`run --shard I/N`).
    Fleet(fleet::FleetArgs),
    /// Serve the HTTP API and the Slack and Mattermost slash commands for chat bots
    /// (`triage serve --help` shows a config to start from).
    #[command(after_long_help = serve::CONFIG_HELP)]
    Serve(serve::ServeArgs),
    /// Scaffold a runbook (with a passing test) or a plugin crate (that builds).
    New(new::NewArgs),
    /// Print a shell's completion script (see the README for where to put it).
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one per subcommand into a directory.
    Man(completions::ManArgs),
}

/// `--color`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set.
    Auto,
    /// Colour even into a pipe or a file (and whatever NO_COLOR says).
    Always,
    /// Never colour.
    Never,
}

/// What `run`, `guide` and `doctor` are given besides the target.
#[derive(clap::Args, Debug, Clone)]
pub struct Given {
    /// A runbook input, NAME=VALUE (repeatable; lists are comma-separated; doctor gives each
    /// runbook the ones it declares).
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE", value_parser = inputs::parse_pair)]
    pub inputs: Vec<(String, String)>,
    /// The answer to an ask step, STEP=VALUE (repeatable).
    #[arg(long = "answer", short = 'a', value_name = "STEP=VALUE", value_parser = inputs::parse_pair)]
    pub answers: Vec<(String, String)>,
    /// How to print the report.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// The lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
}

/// The report formats, as `--format` takes them: the names and their help come from the
/// report module, so a format added there is offered here without an edit.
impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &Format::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.about()))
    }
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum FailOn {
    /// Exit 1 when an error finding fired.
    Error,
    /// Exit 1 when a warning or error finding fired.
    Warning,
    /// Exit 1 when any finding fired.
    Info,
    /// Never exit 1 for findings.
    Never,
}

impl FailOn {
    pub fn severity(self) -> Option<Severity> {
        match self {
            FailOn::Error => Some(Severity::Error),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Info => Some(Severity::Info),
            FailOn::Never => None,
        }
    }
}

/// How a command failed: the error with its context (printed `context: cause`, one
/// `error:` line per line of it) and the exit code it ends with. Library modules return
/// their own typed errors; this is the edge where they meet an exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

impl Failure {
    /// Exit 2: what was given is wrong (arguments, runbook, input, bundle, plugin, config).
    pub fn usage(message: impl std::fmt::Display + Send + Sync + 'static) -> Self {
        anyhow::Error::msg(message.to_string()).exit(2)
    }
    /// Exit 3: the run itself could not be carried out.
    pub fn run(message: impl std::fmt::Display + Send + Sync + 'static) -> Self {
        anyhow::Error::msg(message.to_string()).exit(3)
    }
}

trait ExitWith {
    fn exit(self, code: i32) -> Failure;
}

impl ExitWith for anyhow::Error {
    fn exit(self, code: i32) -> Failure {
        Failure { code, error: self }
    }
}

/// Sorting a library error into its exit code, at the edge: `.or_usage()?` (2) or
/// `.or_run()?` (3), usually after anyhow's `.context(…)`.
pub trait OrExit<T> {
    fn or_usage(self) -> Result<T, Failure>;
    fn or_run(self) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_usage(self) -> Result<T, Failure> {
        self.map_err(|e| e.into().exit(2))
    }
    fn or_run(self) -> Result<T, Failure> {
        self.map_err(|e| e.into().exit(3))
    }
}

pub type CliResult = Result<i32, Failure>;

pub fn main() -> i32 {
    // A bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        if is_closed_pipe(&msg) {
            // `triage plugins | head -1`: the reader has all it wanted. Unix tools end
            // quietly there; Rust ignores SIGPIPE, so print! panics instead, and this is
            // where every print! in the program comes to.
            std::process::exit(0);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error: {msg}{at} (this is a bug in triage)"
        );
    }));
    // The background compile a run leaves behind (runtime.rs): the program's own business,
    // so not a subcommand that help, completions and man pages would show.
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new(crate::runtime::OPTIMIZE_COMMAND)) {
        let names: Vec<String> = args.filter_map(|a| a.into_string().ok()).collect();
        return match crate::runtime::compile_builtins_in_background(&names) {
            Ok(()) => 0,
            Err(_) => 3,
        };
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "{}",
                one_line_usage_error(&e.render().to_string())
            );
            return 2;
        }
    };
    let result = std::panic::catch_unwind(|| dispatch(cli));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(f)) => {
            // Not eprintln!: a closed stderr must not turn a failure's exit code into 0.
            let mut stderr = std::io::stderr().lock();
            for line in format!("{:#}", f.error).lines() {
                let _ = writeln!(stderr, "error: {line}");
            }
            f.code
        }
        Err(_) => 3,
    }
}

fn dispatch(cli: Cli) -> CliResult {
    match cli.color {
        ColorChoice::Auto => {}
        ColorChoice::Always => crate::report::human::force_color(true),
        ColorChoice::Never => crate::report::human::force_color(false),
    }
    log::init(
        matches!(cli.command, Command::Serve(_)),
        cli.verbose,
        cli.quiet,
        cli.log_format,
        crate::report::human::use_color(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    );
    // Needing no config: they describe the program, and a broken config file must not keep
    // a shell from loading its completions.
    if !matches!(cli.command, Command::Completions(_) | Command::Man(_)) {
        crate::paths::user_config().or_usage()?;
    }
    match &cli.command {
        Command::Run(args) => run::run(&cli, args),
        Command::Guide(args) => run::run(&cli, &args.clone().into_run_args()),
        Command::List(args) => list::run(args),
        Command::Lint(args) => lint::run(&cli, args),
        Command::Plugins(args) => plugins::run(&cli, args),
        Command::Probe(args) => probe::run(&cli, args),
        Command::Test(args) => test::run(&cli, args),
        Command::Doctor(args) => doctor::run(&cli, args),
        Command::Explain(args) => explain::run(args),
        Command::Serve(args) => serve::run(&cli, args),
        Command::Fleet(args) => fleet::command(args),
        Command::Schema(args) => schema::run(&cli, args),
        Command::Graph(args) => graph::run(&cli, args),
        Command::New(args) => new::run(&cli, args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}

/// The built-in plugins, the user's, the config's `plugin_paths` and `--plugins` dirs.
pub fn load_runtime(cli: &Cli) -> Result<Runtime, Failure> {
    let mut plugin_dirs = Vec::new();
    if let Some(user) = crate::paths::user_plugin_dir().filter(|d| d.is_dir()) {
        plugin_dirs.push(user);
    }
    for dir in crate::paths::user_config().or_usage()?.plugin_paths {
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
    let mut runtime = Runtime::new(RuntimeOptions {
        cache_dir: crate::paths::cache_dir(),
        builtin: true,
        plugin_dirs,
    })
    .or_usage()?;
    // A first run compiles the plugins it calls, which takes a second or more: say so on a
    // terminal, unless asked to be quiet or logging for a collector.
    use std::io::IsTerminal as _;
    // A command's first run compiles its plugins with Winch, and Cranelift takes over in
    // the background; a server starts once and keeps Cranelift's code from the start.
    runtime.set_quick_first_compile(!matches!(cli.command, Command::Serve(_)));
    runtime.set_progress(
        std::io::stderr().is_terminal() && cli.quiet == 0 && cli.log_format == log::LogFormat::Text,
    );
    for w in &runtime.warnings {
        eprintln!("warning: {w}");
    }
    Ok(runtime)
}

/// The runbook `triage run ARG` means (an id or a path), loaded; warnings go to stderr.
pub fn load_runbook(arg: &str, runtime: &Runtime) -> Result<runbook::LoadedRunbook, Failure> {
    let mut warnings = Vec::new();
    let loaded = catalog::load(arg, runtime, &mut warnings);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    loaded.or_usage()
}

/// `--policy FILE`, else the user's policy file, else the built-in policy.
pub fn load_policy(cli: &Cli) -> Result<Policy, Failure> {
    if let Some(path) = &cli.policy {
        return Policy::load(path).or_usage();
    }
    match crate::paths::policy_file().filter(|p| p.is_file()) {
        Some(path) => Policy::load(&path).or_usage(),
        None => Ok(Policy::builtin()),
    }
}

/// The built-in redaction patterns, and the team's from `--redact FILE`.
pub fn load_redactor(cli: &Cli) -> Result<Arc<Redactor>, Failure> {
    Redactor::load(cli.redact.as_deref())
        .map(Arc::new)
        .or_usage()
}

/// One thread is enough for one target: plugin calls and capability I/O all await.
pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .or_run()
}

/// The panic print! and eprintln! raise when the other end of the pipe is gone (EPIPE is
/// errno 32 on Linux; the message is the C locale's, which Rust programs never change).
fn is_closed_pipe(panic_message: &str) -> bool {
    panic_message.starts_with("failed printing to std")
        && (panic_message.contains("Broken pipe") || panic_message.contains("os error 32"))
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
