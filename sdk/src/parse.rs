//! Helpers for the parsing half of a plugin: an error type that says what was expected, and
//! reading a command's JSON output with messages a runbook reader can act on.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Raw output that does not have the expected shape. Converts into
/// [`ProbeError::BadInput`](crate::ProbeError::BadInput).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for crate::ProbeError {
    fn from(e: ParseError) -> Self {
        crate::ProbeError::BadInput(e.0)
    }
}

/// Parses one JSON document printed by `command` (e.g. `kubectl -o json`), saying what was
/// expected when the output is empty, not JSON at all (an error message, a table), or cut.
pub fn from_json<T: DeserializeOwned>(
    what: &str,
    command: &str,
    text: &str,
) -> Result<T, ParseError> {
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let Some(first) = trimmed.chars().next() else {
        return Err(ParseError(format!(
            "empty output: expected {what} as JSON ({command})"
        )));
    };
    if first != '{' && first != '[' {
        let preview: String = trimmed
            .chars()
            .take(40)
            .filter(|c| !c.is_control())
            .collect();
        return Err(ParseError(format!(
            "expected {what} as JSON ({command}), but the output starts with {preview:?}"
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

/// A `deserialize_with` that reads `null` as the type's default: APIs omit or null empty
/// fields interchangeably.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
