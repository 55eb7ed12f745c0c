//! The HTTP API under /v1, and /healthz. Every error is `{"error": "one line"}` with a status
//! code that says whose fault it is. The OpenAPI document is generated from these types.

use super::app::App;
use super::config::{Permission, Scope};
use super::error::{ApiError, body_error, error};
use super::runs::{EventFinding, Origin, RateBucket, RunEvent, RunRequest, RunStatus, SubmitError};
use super::store::RunRecord;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use utoipa::ToSchema;

/// Who is calling, as the history records it (`token:NAME`), and what it may run.
#[derive(Clone)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
    /// The only fleets it may post reports to (`None`: any).
    pub fleets: Option<Vec<String>>,
}

/// Bearer-token check for everything under /v1 except the OpenAPI document and
/// `POST /v1/reports`: the token needs the `runs` scope.
pub async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    authorize(&app, Permission::Runs, request, next).await
}

/// Bearer-token check for `POST /v1/reports`: the token needs the `report` scope.
pub async fn require_report_token(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    authorize(&app, Permission::Report, request, next).await
}

async fn authorize(app: &App, needed: Permission, mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = given.and_then(|g| super::auth::bearer(&app.config.tokens, g.trim())) else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            if given.is_none() {
                "missing `Authorization: Bearer TOKEN`"
            } else {
                "the bearer token is not one of the server's tokens"
            },
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    if !token.may(needed) {
        let has: Vec<&str> = token.permissions.iter().map(|p| p.as_str()).collect();
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "this token's scopes are [{}]; this endpoint needs `{}`",
                has.join(", "),
                needed.as_str()
            ),
        );
    }
    let caller = Caller {
        name: format!("token:{}", token.name),
        scope: token.scope.clone(),
        fleets: token.fleets.clone(),
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[derive(Serialize, ToSchema)]
pub struct RunLinks {
    /// GET: status and report (JSON).
    pub run: String,
    /// GET: the report as Markdown.
    pub markdown: String,
    /// GET: progress as server-sent events.
    pub events: String,
}

fn links(id: &str) -> RunLinks {
    RunLinks {
        run: format!("/v1/runs/{id}"),
        markdown: format!("/v1/runs/{id}?format=markdown"),
        events: format!("/v1/runs/{id}/events"),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RunAccepted {
    pub id: String,
    pub status: RunStatus,
    pub links: RunLinks,
}

/// Start a runbook on a configured target. The run is queued and starts when a slot is free.
#[utoipa::path(post, path = "/v1/runs", request_body = RunRequest,
    responses(
        (status = 202, description = "Queued", body = RunAccepted,
            headers(("Location" = String, description = "The run's URL"))),
        (status = 400, description = "Bad JSON, unknown runbook or target, bad input", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "The token may not run that runbook or use that target", body = ApiError),
        (status = 408, description = "The body did not arrive within limits.body_timeout", body = ApiError),
        (status = 413, description = "Body over the size cap", body = ApiError),
        (status = 429, description = "The run queue is full, or the caller started its runs_per_minute", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Shutting down", body = ApiError),
    ),
    security(("bearer" = [])))]
pub async fn create_run(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_error(rejection),
    };
    let request: RunRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("request body: {e}")),
    };
    let origin = Origin {
        requested_by: caller.name.clone(),
        rates: vec![RateBucket {
            key: caller.name.clone(),
            per_minute: caller.scope.runs_per_minute,
            who: caller.name,
        }],
        scope: &caller.scope,
        notify: None,
    };
    match app.runs.submit(request, origin) {
        Ok((id, _)) => {
            let mut response = (
                StatusCode::ACCEPTED,
                Json(RunAccepted {
                    status: RunStatus::Queued,
                    links: links(&id),
                    id: id.clone(),
                }),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/v1/runs/{id}")) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => submit_error(e),
    }
}

pub fn submit_error(e: SubmitError) -> Response {
    let message = e.to_string();
    match e {
        SubmitError::Invalid(_) => error(StatusCode::BAD_REQUEST, message),
        SubmitError::Forbidden(_) => error(StatusCode::FORBIDDEN, message),
        SubmitError::Busy { retry_after } | SubmitError::RateLimited { retry_after, .. } => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, message);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        SubmitError::ShuttingDown => error(StatusCode::SERVICE_UNAVAILABLE, message),
        SubmitError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// A run as the history holds it, with its report once it has ended with one.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    #[serde(flatten)]
    pub run: RunRecord,
    /// The `triage.report/v2` report (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
    pub links: RunLinks,
}

impl RunView {
    fn from_record(run: RunRecord) -> RunView {
        RunView {
            links: links(&run.id),
            report: run
                .report
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            run,
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct FormatQuery {
    /// `json` (the default) or `markdown`; without it, `Accept: text/markdown` asks for
    /// Markdown too.
    format: Option<String>,
}

/// Whether an `Accept` header prefers Markdown to JSON: `text/markdown` has a higher weight
/// than `application/json` (a wildcard range gives its weight to both, and a range named
/// exactly wins over a wildcard, as RFC 9110 §12.5.1 says). Anything else, a missing header
/// or one that is not text, means JSON, the API's default.
///
/// Every range is read, in one pass and without allocating: the header is the caller's text,
/// but hyper already bounds its bytes, so a header of a thousand ranges costs microseconds and
/// still means what it says.
fn accept_prefers_markdown(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Per media type: (specificity, weight) of the most specific range that matched.
    let mut markdown: (u8, f32) = (0, 0.0);
    let mut json: (u8, f32) = (0, 0.0);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|p| {
                let (name, value) = p.split_once('=')?;
                name.trim().eq_ignore_ascii_case("q").then(|| value.trim())
            })
            .find_map(|q| q.parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)))
            .unwrap_or(1.0);
        let Some((ty, subtype)) = media.split_once('/') else {
            continue;
        };
        let consider = |kind_ty: &str, kind_sub: &str, best: &mut (u8, f32)| {
            let specificity = if ty.eq_ignore_ascii_case(kind_ty) {
                if subtype.eq_ignore_ascii_case(kind_sub) {
                    3
                } else if subtype == "*" {
                    2
                } else {
                    return;
                }
            } else if ty == "*" && subtype == "*" {
                1
            } else {
                return;
            };
            if specificity > best.0 {
                *best = (specificity, weight);
            }
        };
        consider("text", "markdown", &mut markdown);
        consider("application", "json", &mut json);
    }
    markdown.1 > json.1
}

/// The run, if the caller's scope covers its runbook and target. A run outside the scope
/// is answered as if it did not exist, so a scoped token learns nothing of other teams' runs.
fn find(app: &App, caller: &Caller, id: &str) -> Result<RunRecord, Box<Response>> {
    let in_scope = |r: &RunRecord| {
        caller.scope.allows_runbook(&r.runbook) && caller.scope.allows_target(&r.target)
    };
    match app.runs.store.get(id) {
        Ok(Some(r)) if in_scope(&r) => Ok(r),
        Ok(_) => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!("no run `{id}`"),
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the run history: {e}"),
        ))),
    }
}

/// A run's status, and its report once it has ended.
#[utoipa::path(get, path = "/v1/runs/{id}", params(("id" = String, Path), FormatQuery),
    responses(
        (status = 200, description = "The run (JSON), or its report as Markdown", body = RunView,
            content_type = "application/json"),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError),
    ),
    security(("bearer" = [])))]
pub async fn get_run(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let record = match find(&app, &caller, &id) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    // `?format=` names what the caller wants outright; the Accept header only chooses
    // between the two when it is absent.
    let format = q
        .format
        .as_deref()
        .or_else(|| accept_prefers_markdown(headers.get(header::ACCEPT)).then_some("markdown"));
    let mut response = match format {
        None | Some("json") => Json(RunView::from_record(record)).into_response(),
        Some("markdown") => {
            let text = record.markdown.clone().unwrap_or_else(|| {
                format!(
                    "# {} on `{}`\n\nRun `{}`: **{}**{}\n",
                    record.runbook,
                    record.target,
                    record.id,
                    record.status,
                    record
                        .error
                        .as_deref()
                        .map(|e| format!(" — {e}"))
                        .unwrap_or_default()
                )
            });
            (
                [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                text,
            )
                .into_response()
        }
        Some(other) => error(
            StatusCode::BAD_REQUEST,
            format!("format `{other}`: use json or markdown"),
        ),
    };
    // A cache between caller and server must not hand one caller's Markdown to another
    // who asked for JSON.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

#[derive(Deserialize, Serialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// How many runs (1–200, default 20).
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<i64>,
    /// Only runs of this runbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    runbook: Option<String>,
    /// Only runs on this target.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// Only runs with this status (`queued`, `running`, `ok`, `failing`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<RunStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    /// Newest first, without reports.
    pub runs: Vec<RunView>,
    /// The URL of the next (older) page, if there may be one.
    pub next: Option<String>,
}

/// The run history, newest first, optionally of one runbook, target or status; a scoped
/// token sees only the runs its scope covers.
#[utoipa::path(get, path = "/v1/runs", params(PageQuery),
    responses((status = 200, body = RunList), (status = 400, body = ApiError),
        (status = 401, body = ApiError)),
    security(("bearer" = [])))]
pub async fn list_runs(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(mut q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = q.limit.unwrap_or(20).clamp(1, 200);
    let filter = super::store::RunFilter {
        runbook: q.runbook.clone(),
        target: q.target.clone(),
        status: q.status.map(|s| s.as_str().to_string()),
        runbooks_in: caller.scope.runbooks.clone(),
        targets_in: caller.scope.targets.clone(),
    };
    match app.runs.store.list(limit, q.before, &filter) {
        Ok(records) => {
            let next = (records.len() == limit)
                .then(|| records.last().map(|r| r.seq))
                .flatten()
                .map(|seq| {
                    // The next page keeps the filters.
                    q.limit = Some(limit);
                    q.before = Some(seq);
                    format!(
                        "/v1/runs?{}",
                        serde_urlencoded::to_string(&q).unwrap_or_default()
                    )
                });
            Json(RunList {
                runs: records.into_iter().map(RunView::from_record).collect(),
                next,
            })
            .into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the run history: {e}"),
        ),
    }
}

/// A run's progress as server-sent events (`queued`, `started`, one `step` per step,
/// `finished`); the stream ends after `finished`. A run that has already ended replays its
/// steps from the history.
#[utoipa::path(get, path = "/v1/runs/{id}/events", params(("id" = String, Path)),
    responses(
        (status = 200, description = "text/event-stream; each event's data is a RunEvent",
            body = RunEvent, content_type = "text/event-stream"),
        (status = 401, body = ApiError), (status = 404, body = ApiError),
    ),
    security(("bearer" = [])))]
pub async fn run_events(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    // The history has every run from its submission on, live or not: the scope check first.
    let record = match find(&app, &caller, &id) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let to_sse = |e: RunEvent| {
        Ok::<_, Infallible>(
            Event::default()
                .event(e.name())
                .json_data(&e)
                .unwrap_or_default(),
        )
    };
    if let Some(live) = app.runs.live(&id) {
        let stream =
            futures::stream::unfold((live, 0usize, false), |(live, from, done)| async move {
                if done {
                    return None;
                }
                let batch = live.next_events(from).await;
                if batch.is_empty() {
                    return None;
                }
                let finished = matches!(batch.last(), Some(RunEvent::Finished { .. }));
                let next = from + batch.len();
                Some((futures::stream::iter(batch), (live, next, finished)))
            })
            .flatten()
            .map(to_sse);
        return Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response();
    }
    if matches!(
        RunStatus::from_stored(&record.status),
        RunStatus::Queued | RunStatus::Running
    ) {
        // Queued in a shared history, or running on another server: follow it through the
        // history, and replay its events once it has ended.
        let store = app.runs.store.clone();
        let ended = futures::stream::once(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let (store, id) = (store.clone(), id.clone());
                let read = tokio::task::spawn_blocking(move || store.get(&id)).await;
                match read {
                    Ok(Ok(Some(r)))
                        if !matches!(
                            RunStatus::from_stored(&r.status),
                            RunStatus::Queued | RunStatus::Running
                        ) =>
                    {
                        return replayed_events(&r);
                    }
                    Ok(Ok(Some(_))) => continue,
                    _ => return Vec::new(),
                }
            }
        });
        let stream = futures::stream::iter([RunEvent::Queued {
            run: record.id.clone(),
        }])
        .chain(
            ended
                .map(|events| futures::stream::iter(events.into_iter().skip(1)))
                .flatten(),
        )
        .map(to_sse);
        return Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response();
    }
    let events = replayed_events(&record);
    Sse::new(futures::stream::iter(events).map(to_sse)).into_response()
}

/// The events of a run that has ended, rebuilt from its stored report.
fn replayed_events(r: &RunRecord) -> Vec<RunEvent> {
    let mut events = vec![RunEvent::Queued { run: r.id.clone() }];
    if let Some(at) = &r.started_at {
        events.push(RunEvent::Started {
            run: r.id.clone(),
            at: at.clone(),
        });
    }
    let report: Option<Value> = r
        .report
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok());
    if let Some(report) = &report {
        let findings = report["findings"].as_array().cloned().unwrap_or_default();
        for s in report["steps"].as_array().into_iter().flatten() {
            let step = s["id"].as_str().unwrap_or_default();
            events.push(RunEvent::Step {
                run: r.id.clone(),
                step: step.to_string(),
                title: s["title"].as_str().unwrap_or_default().to_string(),
                status: s["status"].as_str().unwrap_or_default().to_string(),
                duration_ms: s["duration_ms"].as_u64().unwrap_or(0),
                reason: s["reason"].as_str().map(str::to_string),
                findings: findings
                    .iter()
                    .filter(|f| f["step"] == step)
                    .map(|f| EventFinding {
                        id: f["id"].as_str().unwrap_or_default().to_string(),
                        severity: f["severity"].as_str().unwrap_or_default().to_string(),
                        title: f["title"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect(),
            });
        }
    }
    let status = RunStatus::from_stored(&r.status);
    events.push(RunEvent::Finished {
        run: r.id.clone(),
        status,
        exit_code: r.exit_code.map(|c| c as i32),
        error: r.error.clone(),
    });
    events
}

#[derive(Serialize, ToSchema)]
pub struct RunbookView {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// The guide section it follows.
    pub source: Option<String>,
    pub inputs: Vec<InputView>,
    /// Ask steps: the `answers` a run may give, by step id.
    pub asks: Vec<AskView>,
}

#[derive(Serialize, ToSchema)]
pub struct InputView {
    pub name: String,
    /// string, integer, boolean or list.
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AskView {
    pub step: String,
    pub prompt: String,
    pub choices: Vec<String>,
}

/// The runbooks this token may run, with their inputs.
#[utoipa::path(get, path = "/v1/runbooks",
    responses((status = 200, body = Vec<RunbookView>), (status = 401, body = ApiError)),
    security(("bearer" = [])))]
pub async fn list_runbooks(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Json<Vec<RunbookView>> {
    Json(
        app.runs
            .runbooks
            .values()
            .filter(|l| caller.scope.allows_runbook(&l.runbook.id.to_string()))
            .map(|l| {
                let rb = &l.runbook;
                RunbookView {
                    id: rb.id.to_string(),
                    title: rb.title.clone(),
                    description: rb.description.clone(),
                    source: rb.source.clone(),
                    inputs: rb
                        .inputs
                        .iter()
                        .map(|(name, spec)| InputView {
                            name: name.clone(),
                            kind: serde_json::to_value(spec.kind)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            required: spec.required,
                            default: spec.default.clone(),
                            description: spec.description.clone(),
                        })
                        .collect(),
                    asks: rb
                        .steps
                        .iter()
                        .filter_map(|s| {
                            s.ask.as_ref().map(|a| AskView {
                                step: s.id.to_string(),
                                prompt: a.prompt.clone(),
                                choices: a.choices.clone(),
                            })
                        })
                        .collect(),
                }
            })
            .collect(),
    )
}

#[derive(Serialize, ToSchema)]
pub struct TargetView {
    pub name: String,
    /// local, bundle, ssh, gcloud or kubectl (the address itself stays on the server).
    pub kind: String,
}

/// The targets this token may name.
#[utoipa::path(get, path = "/v1/targets",
    responses((status = 200, body = Vec<TargetView>), (status = 401, body = ApiError)),
    security(("bearer" = [])))]
pub async fn list_targets(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Json<Vec<TargetView>> {
    Json(
        app.runs
            .targets
            .iter()
            .filter(|(name, _)| caller.scope.allows_target(name))
            .map(|(name, spec)| TargetView {
                name: name.clone(),
                kind: spec.kind().to_string(),
            })
            .collect(),
    )
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `shutting-down`.
    pub status: String,
    pub queued: usize,
    pub running: usize,
    pub version: String,
}

/// Liveness and load; no token needed.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz(State(app): State<Arc<App>>) -> Json<Health> {
    let (queued, running) = app.runs.load();
    Json(Health {
        status: if app.runs.is_shutting_down() {
            "shutting-down"
        } else {
            "ok"
        }
        .into(),
        queued,
        running,
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// The server's counters in Prometheus' text format (any configured token).
#[utoipa::path(get, path = "/metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
        (status = 401, description = "No valid bearer token", body = ApiError),
    ),
    security(("bearer" = [])))]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (queued, running) = app.runs.load();
    let limits = &app.runs.limits;
    let text = app.runs.metrics.render(&super::metrics::Now {
        queued,
        running,
        slots: limits.max_concurrent_runs,
        queue_capacity: limits.max_queued_runs,
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefers(accept: &str) -> bool {
        accept_prefers_markdown(Some(&HeaderValue::from_str(accept).unwrap()))
    }

    #[test]
    fn accept_chooses_markdown_only_when_it_weighs_more_than_json() {
        assert!(prefers("text/markdown"));
        assert!(prefers("text/markdown, application/json;q=0.5"));
        assert!(prefers("text/*"));
        assert!(prefers("TEXT/Markdown; charset=utf-8"));
        assert!(!prefers("application/json"));
        assert!(!prefers("*/*"));
        assert!(!prefers("text/markdown;q=0.5, application/json"));
        assert!(!prefers("text/markdown;q=0, */*"));
        assert!(!prefers("text/html"));
        assert!(!prefers(""));
        assert!(!accept_prefers_markdown(None));
        assert!(!prefers("markdown, json, ;;;, /, q=2"));
        assert!(prefers("text/markdown;Q=0.9, application/json;q=0.8"));
        // A hostile header: every range is read, and the last one decides.
        let huge = format!("{}text/markdown", "x/y;q=0.5, ".repeat(100_000));
        let started = std::time::Instant::now();
        assert!(prefers(&huge));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
