//! The one shape of every error the server answers, `{"error": "one line"}`, with a status
//! code that says whose fault it is.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error body.
#[derive(Serialize, ToSchema)]
pub struct ApiError {
    /// One line saying what is wrong and, where it helps, what to do.
    pub error: String,
}

pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

/// A body that did not arrive whole: over the size cap (413), or cut off.
pub fn body_error(rejection: BytesRejection) -> Response {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is over the server's size cap".to_string()
    } else {
        format!("request body: {}", rejection.body_text())
    };
    error(status, message)
}
