//! Turning gcloud's JSON into typed values, with errors a runbook reader can act on.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Why gcloud's output could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses one JSON document, saying what was expected when it is empty or not JSON at all.
pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, ParseError> {
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let Some(first) = trimmed.chars().next() else {
        return Err(ParseError(format!(
            "empty output: expected {what} as JSON (gcloud --format=json)"
        )));
    };
    if first != '{' && first != '[' {
        let preview: String = trimmed
            .chars()
            .take(40)
            .filter(|c| !c.is_control())
            .collect();
        return Err(ParseError(format!(
            "expected {what} as JSON (gcloud --format=json), but the output starts with {preview:?}"
        )));
    }
    serde_json::from_str(trimmed).map_err(|e| {
        let kind = if e.is_eof() {
            "truncated JSON"
        } else {
            "unexpected JSON"
        };
        ParseError(format!("{kind} for {what}: {e}"))
    })
}

/// Reads `null` as the type's default (the APIs omit or null empty fields interchangeably).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The last segment of a resource URL or path: `…/global/networks/default` → `default`.
pub fn last_segment(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string()
}
