//! Turning gcloud's JSON into typed values, with errors a runbook reader can act on.

use serde::de::DeserializeOwned;

pub use triage_sdk::parse::{ParseError, nullable};

/// Parses one JSON document, saying what was expected when it is empty or not JSON at all.
pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, ParseError> {
    triage_sdk::parse::from_json(what, "gcloud --format=json", text)
}

/// The last segment of a resource URL or path: `…/global/networks/default` → `default`.
pub fn last_segment(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}
