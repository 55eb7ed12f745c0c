//! Logging through `tracing`: what the program does, for people debugging it and for
//! servers' log collectors, on stderr. The program's own output (reports, `warning:`
//! lines, errors) is not logging and is never filtered by these flags.
//!
//! The level: `RUST_LOG` when set (tracing-subscriber's EnvFilter syntax, e.g.
//! `RUST_LOG=triage=debug,wasmtime=info`), else from the flags: warnings by default
//! (`triage serve`: info, so every request and run is logged), each `-v` one level more,
//! each `-q` one less. Other crates (wasmtime, cranelift, hyper) log only warnings unless
//! RUST_LOG says otherwise.

use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people.
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log collectors.
    Json,
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The filter the flags ask for: `base` is the index in LEVELS of the default level.
pub fn directive(base: usize, verbose: u8, quiet: u8) -> String {
    let level = (base + verbose as usize)
        .saturating_sub(quiet as usize)
        .min(LEVELS.len() - 1);
    let ours = LEVELS[level];
    // Dependencies stay at warn (or less when quieter): cranelift at debug is a flood.
    let theirs = LEVELS[level.min(2)];
    format!("{theirs},triage={ours}")
}

/// Installs the global subscriber. `serve` logs at info by default.
pub fn init(serve: bool, verbose: u8, quiet: u8, format: LogFormat, color: bool) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("warning: RUST_LOG: {e}; using the flags' level\n"),
            );
            EnvFilter::new(directive(if serve { 3 } else { 2 }, verbose, quiet))
        }),
        _ => EnvFilter::new(directive(if serve { 3 } else { 2 }, verbose, quiet)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests that drive cli::main in-process) keeps the first.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(color).try_init(),
    };
}
