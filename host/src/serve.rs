//! `triage serve`: an HTTP API and chat slash commands (Slack, Mattermost) for chat bots,
//! with a run history.
//!
//! - [`config`]: the config file (tokens, chat secrets, named targets, limits)
//! - [`app`]: what every handler sees
//! - [`runs`]: admission (bounded queue), execution (bounded concurrency, deadline), events
//! - [`rate`]: each caller's runs per minute
//! - [`metrics`]: `GET /metrics` for Prometheus
//! - [`store`]: the SQLite run history
//! - [`fleets`]: `POST /v1/reports` and `GET /v1/fleets/{id}`, fleets across machines
//! - [`api`]: the /v1 handlers; [`openapi`]: their OpenAPI document; [`error`]: the error body
//! - [`chat`]: slash commands, one file per chat platform
//! - [`outbox`]: chat results waiting to be posted
//! - [`auth`]: bearer tokens
//! - [`http`]: the accept loop: a connection cap, header and body deadlines
//! - [`tls`]: HTTPS from the config's PEM files, reloaded when they are renewed
//!
//! A caller names a runbook and a target from the config; it never passes a command, a path
//! or a URL of its own, so what the server can touch is fixed by whoever wrote its config.

pub mod api;
pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod error;
pub mod fleets;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod rate;
pub mod runs;
pub mod store;
pub mod tls;

use crate::capability::Policy;
use crate::runbook::LoadedRunbook;
use crate::runtime::Runtime;
use app::App;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chat::platform::Platform;
use config::ServerConfig;
use runs::Runs;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// How long shutdown waits for chat results still being posted.
const CHAT_POST_GRACE: Duration = Duration::from_secs(20);

pub struct ServeOptions {
    pub config: ServerConfig,
    /// From [`load_runbooks`].
    pub runbooks: BTreeMap<String, Arc<LoadedRunbook>>,
    /// The history (from [`store::sqlite::SqliteStore::open`]).
    pub store: Arc<dyn store::Store>,
    /// The runs opening the history marked interrupted; their chats are told.
    pub interrupted: Vec<store::InterruptedRun>,
    /// Overrides the config's `listen`.
    pub listen: Option<String>,
    /// The history (the config's `db`, else `~/.local/share/triage/runs.sqlite3`), for the
    /// start-up line (a URL's password is not shown).
    pub db: store::Db,
    /// The built-in redaction patterns, `--redact FILE`'s and the config's `redact:` file's.
    pub redact: Arc<crate::redact::Redactor>,
}

/// Every endpoint: the /v1 API (behind a bearer token), the OpenAPI document, /healthz, and
/// the endpoints of each configured chat platform.
pub fn router(app: Arc<App>, chats: &[Arc<dyn Platform>]) -> Router {
    let body_timeout = app.config.limits.connections.body_timeout;
    let max_body_bytes = app.config.limits.max_body_bytes;
    let v1 = Router::new()
        .route("/v1/runs", post(api::create_run).get(api::list_runs))
        .route("/v1/runs/{id}", get(api::get_run))
        .route("/v1/runs/{id}/events", get(api::run_events))
        .route("/v1/runbooks", get(api::list_runbooks))
        .route("/v1/targets", get(api::list_targets))
        .route("/metrics", get(api::metrics))
        .route("/v1/fleets/{id}", get(fleets::get_fleet))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::require_token,
        ));
    let reports = Router::new()
        .route("/v1/reports", post(fleets::post_report))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::require_report_token,
        ));
    let mut router = Router::new()
        .merge(v1)
        .merge(reports)
        .route("/v1/openapi.json", get(openapi::openapi))
        .route("/healthz", get(api::healthz));
    for chat in chats {
        router = router.merge(chat.clone().routes());
    }
    router
        .fallback(|uri: axum::http::Uri| async move {
            let first = uri.path().trim_start_matches('/').split('/').next();
            match first.filter(|name| chat::registry::NAMES.contains(name)) {
                Some(name) => error::error(
                    StatusCode::NOT_FOUND,
                    format!("this server has no `{name}:` configured"),
                ),
                None => error::error(
                    StatusCode::NOT_FOUND,
                    "no such endpoint (see /v1/openapi.json)",
                ),
            }
        })
        .layer(DefaultBodyLimit::max(app.config.limits.max_body_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            http::read_body_in_time(body_timeout, max_body_bytes, request, next)
        }))
        // Outermost, so the line has the status whatever layer answered.
        .layer(axum::middleware::from_fn(log_request))
        .with_state(app)
}

/// One log line per request: method, path (never the query string, which may carry a
/// chat platform's token), status and time taken.
async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

/// Loads the runbooks a caller may run: the config's allowlist, or every runbook that loads.
pub fn load_runbooks(
    config: &ServerConfig,
    runtime: &Runtime,
) -> Result<BTreeMap<String, Arc<LoadedRunbook>>, String> {
    let mut out = BTreeMap::new();
    let mut warnings = Vec::new();
    for (id, source) in crate::catalog::runnable() {
        let wanted = config.runbooks.as_ref().is_none_or(|ids| ids.contains(&id));
        if !wanted {
            continue;
        }
        match source.load(runtime).map_err(|e| e.to_string()) {
            Ok(l) => {
                out.insert(id, Arc::new(l));
            }
            // An explicitly allowed runbook must load; others are skipped with a warning.
            Err(e) if config.runbooks.is_some() => return Err(e),
            Err(e) => warnings.push(e),
        }
    }
    for w in warnings {
        eprintln!("warning: skipping a runbook that does not load: {w}");
    }
    if let Some(ids) = &config.runbooks
        && let Some(missing) = ids.iter().find(|id| !out.contains_key(*id))
    {
        return Err(format!("runbooks: no runbook `{missing}`"));
    }
    for (who, scope) in config.scopes() {
        if let Some(missing) = scope
            .runbooks
            .iter()
            .flatten()
            .find(|id| !out.contains_key(*id))
        {
            return Err(format!("{who}: no runbook `{missing}` among those served"));
        }
    }
    Ok(out)
}

/// Runs the server until SIGINT or SIGTERM, then drains: no new runs, running ones get the
/// grace period, and whatever is left is marked interrupted in the history.
pub fn serve(runtime: Runtime, policy: Policy, options: ServeOptions) -> Result<i32, String> {
    let (runbooks, store) = (options.runbooks, options.store);
    let config = options.config;
    let listen = options.listen.unwrap_or_else(|| config.listen.clone());
    let grace = config.limits.shutdown_grace;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime_with = |threads: usize, name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))
    };
    // Two runtimes: one answers HTTP, the other runs runbooks, so a burst of runs busy in
    // their plugins never holds up an answer.
    let api = runtime_with(cores.clamp(1, 4), "triage-api")?;
    let run_pool = runtime_with(
        config.limits.max_concurrent_runs.clamp(1, cores),
        "triage-run",
    )?;
    let executor = run_pool.handle().clone();
    let result = api.block_on(async move {
        let runs = Runs::new(
            store,
            runbooks,
            config.targets.clone(),
            Arc::new(runtime),
            Arc::new(policy),
            config.limits.clone(),
            options.redact,
            executor,
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let tls = match &config.tls {
            Some(files) => Some(tls::server_config(files)?),
            None => None,
        };
        let chats = chat::registry::configured(&config, Some(runs.store.clone()));
        let app = Arc::new(App {
            config,
            runs: runs.clone(),
            outbox: outbox::Outbox::new(http),
        });
        let posting = app.clone();
        let (weak, posters) = (Arc::downgrade(&app), chats.clone());
        runs.set_on_end(Box::new(move |ended| {
            if let Some(app) = weak.upgrade() {
                chat::post_end(&app, &posters, ended);
            }
        }));
        chat::report_interrupted(&app, &chats, &options.interrupted);
        runs.start_workers();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("listen on {listen}: {e}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!(
            "triage serve: listening on {scheme}://{addr} ({} runbooks, {} targets, history {})",
            runs.runbooks.len(),
            runs.targets.len(),
            options.db
        );
        let _ = std::io::stdout().flush();
        if tls.is_none() && !addr.ip().is_loopback() {
            eprintln!(
                "warning: plain HTTP on {addr}: bearer tokens cross the network in clear; \
                 add `tls:` to the config or put an HTTPS proxy in front"
            );
        }
        let draining = runs.clone();
        let stop = async move {
            wait_for_signal().await;
            eprintln!(
                "shutting down: no new runs; waiting up to {} s for running ones",
                grace.as_secs()
            );
            // Drain before the listener closes, so callers can still read results meanwhile.
            let left = draining.shutdown(grace).await;
            if left > 0 {
                eprintln!("marked {left} run(s) interrupted");
            }
        };
        // Two listener types, one server: the accept loop is generic over the listener.
        let bounds = app.config.limits.connections.clone();
        match tls {
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config)
                    .map_err(|e| format!("listen on {listen}: {e}"))?;
                http::serve(listener, router(app, &chats), bounds, stop).await;
            }
            None => http::serve(listener, router(app, &chats), bounds, stop).await,
        }
        // The drain ended every run, so every chat post can go out now; it gets a bound
        // (a post is 10 s at most, plus the retries' pauses) rather than the process's life.
        let unsent = posting.outbox.settle(CHAT_POST_GRACE).await;
        if unsent > 0 {
            eprintln!("warning: {unsent} chat result(s) not posted before exit");
        }
        eprintln!("stopped");
        Ok(0)
    });
    // Anything still on the run pool was marked interrupted by the drain.
    run_pool.shutdown_background();
    result
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server runs until killed; the history still survives.
        return futures::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
