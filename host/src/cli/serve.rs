//! `triage serve`: the HTTP API and the chat commands (the server itself is `crate::serve`).

use super::{Cli, CliResult, Failure};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The server's config: tokens, Slack secret, named targets, limits (default:
    /// ~/.config/triage/server.yaml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to listen, HOST:PORT (overrides the config's `listen`; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The run history: a SQLite file, or a postgres:// URL shared by several servers
    /// (default: the config's `db`, else ~/.local/share/triage/runs.sqlite3).
    #[arg(long, value_name = "FILE|URL")]
    db: Option<String>,
    /// Check the config (secrets, targets, scopes, TLS files, runbooks) and exit without
    /// serving; the history is not opened, so a running server is not disturbed.
    #[arg(long)]
    check: bool,
}

/// The end of `triage serve --help`: a config that works as written, so that someone with
/// only the installed binary can start a server; error messages point here rather than at
/// docs/serve.md, which only a source checkout has. A test checks it with `serve --check`.
pub const CONFIG_HELP: &str = "\
A config to start from (~/.config/triage/server.yaml):

  listen: 127.0.0.1:7878
  tokens:                          # bearer tokens for /v1
    - name: ops-bot
      token_env: TRIAGE_OPS_BOT_TOKEN    # 16 characters or more
  targets:                         # the only targets a caller may name
    this-host: local
    # web-1: ssh://ops@web-1.internal
    # demo: bundle:/srv/triage/bundles/demo

Optional sections: slack, mattermost (slash commands), runbooks (an allowlist of ids), db,
limits, tls, redact. `triage serve --check` checks a config without serving. Every key is
described in docs/serve.md of triage's source.";

pub fn run(cli: &Cli, args: &ServeArgs) -> CliResult {
    let path = args
        .config
        .clone()
        .or_else(crate::paths::server_config_file)
        .ok_or_else(|| Failure::usage("no home directory; pass --config FILE"))?;
    if args.config.is_none() && !path.is_file() {
        return Err(Failure::usage(format!(
            "{}: no server config; write one (`triage serve --help` shows one to start from) or pass --config FILE",
            path.display()
        )));
    }
    let config = crate::serve::config::ServerConfig::load(&path).map_err(Failure::usage)?;
    let db = match (&args.db, &config.db) {
        (Some(text), _) => crate::serve::store::Db::parse(text, std::path::Path::new(""))
            .map_err(|e| Failure::usage(format!("--{e}")))?,
        (None, Some(db)) => db.clone(),
        (None, None) => crate::serve::store::Db::Sqlite(
            crate::paths::history_db()
                .ok_or_else(|| Failure::usage("no home directory; pass --db FILE"))?,
        ),
    };
    let runtime = super::load_runtime(cli)?;
    let policy = super::load_policy(cli)?;
    let mut redact = (*super::load_redactor(cli)?).clone();
    if let Some(patterns) = &config.redact {
        redact
            .add_file(patterns)
            .map_err(|e| Failure::usage(format!("{}: redact: {e}", path.display())))?;
    }
    let runbooks = crate::serve::load_runbooks(&config, &runtime).map_err(Failure::usage)?;
    if args.check {
        let listen = args.listen.as_deref().unwrap_or(&config.listen);
        std::net::ToSocketAddrs::to_socket_addrs(listen)
            .map_err(|e| Failure::usage(format!("{}: listen `{listen}`: {e}", path.display())))?;
        let chats: String = crate::serve::chat::registry::configured(&config, None)
            .iter()
            .map(|chat| format!(", {}", chat.name()))
            .collect();
        println!(
            "{}: ok: {} runbooks, {} targets, {} token(s){chats}, {}, history {}",
            path.display(),
            runbooks.len(),
            config.targets.len(),
            config.tokens.len(),
            if config.tls.is_some() {
                format!("https://{listen}")
            } else {
                format!("http://{listen}")
            },
            db
        );
        return Ok(0);
    }
    let (store, interrupted) =
        crate::serve::store::open(&db, config.limits.run_lease).map_err(Failure::usage)?;
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
            redact: std::sync::Arc::new(redact),
        },
    )
    .map_err(Failure::run)
}
