//! Fleets across machines: `triage run … --report-to URL --fleet-id ID` posts each target's
//! result to `POST /v1/reports`, and `GET /v1/fleets/{id}` adds them up into the
//! `triage.fleet/v1` report a local fleet run over the same targets prints, with the same
//! aggregation code (`report::fleet`).
//!
//! A target's identity in a fleet is its name as the fleet run gives it (the `target` of its
//! `targets[]` entry: `ssh://web-1`, a bundle's path, `local`): a second post for the same
//! fleet and target replaces the first, so a retried Job pod is counted once. Nothing from a
//! post is trusted beyond what it can prove: the findings and step marks are read from the
//! report itself, the status must agree with it, and the fleet id, target and report are
//! checked before anything is stored.

use super::api::Caller;
use super::app::App;
use super::error::{ApiError, body_error, error};
use super::store::{FleetEntry, PutReport};
use crate::report::fleet::{FleetReport, StepMarks, TargetFinding, TargetResult};
use crate::report::{StepStatus, Summary};
use crate::run::Status;
use crate::runbook::Severity;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use utoipa::ToSchema;

/// Longest fleet id: room for a Job name and a date, short enough for a URL and a log line.
pub const MAX_FLEET_ID: usize = 128;
/// Longest target name (a bundle's path, a URL): PATH_MAX.
pub const MAX_TARGET: usize = 4096;

/// A fleet id: 1 to 128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit (so never
/// `..`, a path, an option or anything a log or a URL would read otherwise).
pub fn check_fleet_id(id: &str) -> Result<(), String> {
    let shown: String = id
        .chars()
        .take(40)
        .collect::<String>()
        .escape_debug()
        .to_string();
    let ellipsis = if id.chars().count() > 40 { "…" } else { "" };
    if id.is_empty() || id.len() > MAX_FLEET_ID {
        return Err(format!(
            "fleet id `{shown}{ellipsis}`: 1 to {MAX_FLEET_ID} characters ({} given)",
            id.len()
        ));
    }
    let first_ok = id.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !first_ok
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "fleet id `{shown}{ellipsis}`: only letters, digits, `.`, `_` and `-`, starting with a letter or digit"
        ));
    }
    Ok(())
}

/// A target's name in a fleet: not empty, at most 4096 bytes, no control characters (it is
/// shown in terminals, Markdown and logs).
pub fn check_target(target: &str) -> Result<(), String> {
    if target.is_empty() || target.len() > MAX_TARGET {
        return Err(format!(
            "result.target: 1 to {MAX_TARGET} bytes ({} given)",
            target.len()
        ));
    }
    if target.chars().any(char::is_control) {
        return Err(format!(
            "result.target `{}`: control characters are not allowed",
            target.chars().take(80).collect::<String>().escape_debug()
        ));
    }
    Ok(())
}

/// `POST /v1/reports`: one target's result in a fleet, as `triage run --report-to` sends it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostedReport {
    /// The fleet (`--fleet-id`): 1 to 128 of `A-Z a-z 0-9 . _ -`.
    pub fleet: String,
    /// The runbook's id; every result of a fleet has the same.
    pub runbook: String,
    /// The target's place in the list the run was given (the targets file's, counted from
    /// 0): the fleet lists its targets in that order, those without a place last by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub result: PostedResult,
}

/// A target's entry of `triage.fleet/v1` (`targets[]`), less what is read from its report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostedResult {
    /// Its identity in the fleet: a second post for the same target replaces the first.
    pub target: String,
    /// ok, failing, incomplete (with a report), unreachable or timed-out (without).
    #[schema(value_type = String)]
    pub status: Status,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The target's `triage.report/v2` report (absent for unreachable and timed-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<Box<RawValue>>,
}

/// What the server reads of a posted report to check it and to list its findings and
/// marks; the report itself is kept as it was posted.
#[derive(Deserialize)]
struct ReportView {
    schema: String,
    runbook: RunbookView,
    summary: Summary,
    steps: Vec<StepView>,
    findings: Vec<FindingView>,
}

#[derive(Deserialize)]
struct RunbookView {
    id: String,
}

#[derive(Deserialize)]
struct StepView {
    id: String,
    status: StepStatus,
    severity: Option<Severity>,
}

#[derive(Deserialize)]
struct FindingView {
    id: String,
    severity: Severity,
    title: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReportAccepted {
    pub fleet: String,
    pub target: String,
    /// `added`, or `replaced` when the fleet already held this target's result.
    pub outcome: String,
    /// GET: the fleet's aggregate.
    pub fleet_url: String,
}

/// The checked result, ready to store: the `targets[]` entry with its report as posted.
fn checked(posted: PostedReport) -> Result<(PostedReport, String), String> {
    check_fleet_id(&posted.fleet)?;
    check_target(&posted.result.target)?;
    let r = &posted.result;
    let (findings, steps) = match (&r.report, r.status) {
        (Some(raw), Status::Ok | Status::Failing | Status::Incomplete) => {
            let view: ReportView = serde_json::from_str(raw.get())
                .map_err(|e| format!("result.report is not a triage.report/v2 report: {e}"))?;
            if view.schema != crate::report::SCHEMA {
                return Err(format!(
                    "result.report: schema `{}` is not {}",
                    view.schema
                        .chars()
                        .take(80)
                        .collect::<String>()
                        .escape_debug(),
                    crate::report::SCHEMA
                ));
            }
            if view.runbook.id != posted.runbook {
                return Err(format!(
                    "result.report is of runbook `{}`, not `{}`",
                    view.runbook
                        .id
                        .chars()
                        .take(80)
                        .collect::<String>()
                        .escape_debug(),
                    posted
                        .runbook
                        .chars()
                        .take(80)
                        .collect::<String>()
                        .escape_debug()
                ));
            }
            // The status is the only verdict the report cannot give by itself (it depends
            // on the run's --fail-on); it must still be one the report allows.
            let agrees = match r.status {
                Status::Ok => view.summary.complete,
                Status::Failing => !view.findings.is_empty(),
                _ => !view.summary.complete,
            };
            if !agrees {
                return Err(format!(
                    "result.status `{}` does not agree with its report ({} findings, complete: {})",
                    r.status.as_str(),
                    view.findings.len(),
                    view.summary.complete
                ));
            }
            let findings = view
                .findings
                .into_iter()
                .map(|f| TargetFinding {
                    id: f.id,
                    severity: f.severity,
                    title: f.title,
                })
                .collect();
            let steps = StepMarks::from_steps(
                &view.summary,
                view.steps.into_iter().map(|s| (s.id, s.status, s.severity)),
            );
            (findings, Some(steps))
        }
        (None, Status::Unreachable | Status::TimedOut) => {
            if r.error.is_none() {
                return Err(format!(
                    "result: a {} target needs its `error`",
                    r.status.as_str()
                ));
            }
            (Vec::new(), None)
        }
        (Some(_), status) => {
            return Err(format!(
                "result: a {} target has no report",
                status.as_str()
            ));
        }
        (None, status) => {
            return Err(format!(
                "result: a {} target needs its `report`",
                status.as_str()
            ));
        }
    };
    let entry = TargetResult {
        target: r.target.clone(),
        status: r.status,
        duration_ms: r.duration_ms,
        error: r.error.clone(),
        findings,
        steps,
        report: r.report.as_deref(),
    };
    let text = serde_json::to_string(&entry).map_err(|e| e.to_string())?;
    Ok((posted, text))
}

/// Post one target's finished result into a fleet (a token with the `report` scope).
#[utoipa::path(post, path = "/v1/reports", request_body = PostedReport,
    responses(
        (status = 201, description = "Added to the fleet", body = ReportAccepted),
        (status = 200, description = "Replaced this target's earlier result in the fleet", body = ReportAccepted),
        (status = 400, description = "Bad JSON, fleet id or target; a report that is not triage.report/v2 or disagrees with its status", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "The token has no `report` scope, or may not post to that fleet or runbook", body = ApiError),
        (status = 408, description = "The body did not arrive within limits.body_timeout", body = ApiError),
        (status = 409, description = "The fleet holds results of another runbook", body = ApiError),
        (status = 413, description = "Body over limits.max_body_bytes", body = ApiError),
    ),
    security(("bearer" = [])))]
pub async fn post_report(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_error(rejection),
    };
    let posted: PostedReport = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("request body: {e}")),
    };
    let (posted, result) = match checked(posted) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Some(fleets) = &caller.fleets
        && !fleets.contains(&posted.fleet)
    {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "this token may post only to the fleets {}, not `{}`",
                fleets.join(", "),
                posted.fleet
            ),
        );
    }
    if !caller.scope.allows_runbook(&posted.runbook) {
        return error(
            StatusCode::FORBIDDEN,
            "this token may not post results of that runbook",
        );
    }
    let entry = FleetEntry {
        fleet: &posted.fleet,
        target: &posted.result.target,
        runbook: &posted.runbook,
        position: posted.position.and_then(|p| i64::try_from(p).ok()),
        result: &result,
        posted_by: &caller.name,
        received_at: &crate::report::rfc3339(SystemTime::now()),
    };
    let (status, outcome) = match app.runs.store.put_report(&entry) {
        Ok(PutReport::Added) => (StatusCode::CREATED, "added"),
        Ok(PutReport::Replaced) => (StatusCode::OK, "replaced"),
        Ok(PutReport::OtherRunbook(other)) => {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "fleet `{}` holds results of runbook `{other}`; a fleet is one runbook: give this run another --fleet-id",
                    posted.fleet
                ),
            );
        }
        Err(e) => {
            tracing::error!(fleet = %posted.fleet, "storing a fleet report: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the history could not be written",
            );
        }
    };
    (
        status,
        Json(ReportAccepted {
            fleet_url: format!("/v1/fleets/{}", posted.fleet),
            fleet: posted.fleet,
            target: posted.result.target,
            outcome: outcome.to_string(),
        }),
    )
        .into_response()
}

/// The fleet's `triage.fleet/v1` report: what a local fleet run over the same targets
/// prints with `--format json` (its `duration_ms` is the slowest target's: the server does
/// not see when the runs started).
#[utoipa::path(get, path = "/v1/fleets/{id}",
    params(("id" = String, Path, description = "The fleet id the runs were given (--fleet-id)")),
    responses(
        (status = 200, description = "The fleet's triage.fleet/v1 report, each target's whole report included", body = Object),
        (status = 400, description = "Not a fleet id", body = ApiError),
        (status = 401, description = "No or wrong bearer token", body = ApiError),
        (status = 403, description = "The token has no `runs` scope", body = ApiError),
        (status = 404, description = "No such fleet (or not in the token's scope)", body = ApiError),
    ),
    security(("bearer" = [])))]
pub async fn get_fleet(
    State(app): State<Arc<App>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = check_fleet_id(&id) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let rows = match app.runs.store.fleet(&id) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(fleet = %id, "reading a fleet: {e}");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the history could not be read",
            );
        }
    };
    let not_found = || error(StatusCode::NOT_FOUND, format!("no fleet `{id}`"));
    // A fleet's targets are not the server's targets: a token limited to some of those
    // sees no fleet; one limited to some runbooks sees the fleets of those.
    let Some(first) = rows.first() else {
        return not_found();
    };
    if caller.scope.targets.is_some() || !caller.scope.allows_runbook(&first.runbook) {
        return not_found();
    }
    let runbook = first.runbook.clone();
    let mut targets: Vec<TargetResult<Box<RawValue>>> = Vec::with_capacity(rows.len());
    for row in rows {
        match serde_json::from_str(&row.result) {
            Ok(t) => targets.push(t),
            Err(e) => {
                tracing::error!(fleet = %id, target = %row.target, "a stored fleet result does not read: {e}");
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the history holds a result that does not read",
                );
            }
        }
    }
    let slowest = targets.iter().map(|t| t.duration_ms).max().unwrap_or(0);
    let report = FleetReport::new(&runbook, Duration::from_millis(slowest), targets);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        report_json(&report),
    )
        .into_response()
}

fn report_json(report: &FleetReport<Box<RawValue>>) -> String {
    serde_json::to_string_pretty(report).expect("a report serialises") + "\n"
}
