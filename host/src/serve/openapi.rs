//! The OpenAPI 3.1 document of the server, generated with utoipa from the types and handlers
//! the server uses: the /v1 API and every chat platform's endpoints.

use super::api::{
    self, AskView, Health, InputView, RunAccepted, RunLinks, RunList, RunView, RunbookView,
    TargetView,
};
use super::error::ApiError;
use super::fleets::{self, PostedReport, PostedResult, ReportAccepted};
use super::runs::{EventFinding, RunEvent, RunRequest, RunStatus};
use super::store::RunRecord;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "triage server", description = "Run troubleshooting runbooks from chat bots: start a run on a configured target, follow it, fetch its report."),
    paths(api::create_run, api::get_run, api::list_runs, api::run_events, api::list_runbooks,
          api::list_targets, api::healthz, api::metrics, fleets::post_report, fleets::get_fleet),
    components(schemas(RunRequest, RunAccepted, RunView, RunRecord, RunList, RunLinks, RunEvent, EventFinding,
                       RunStatus, RunbookView, InputView, AskView, TargetView, Health, ApiError,
                       PostedReport, PostedResult, ReportAccepted)),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::chat::registry::openapi());
    doc
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}
