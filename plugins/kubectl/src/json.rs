//! Turning kubectl's JSON into typed objects, with errors a runbook reader can act on.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

/// Why kubectl's output could not be read.
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
            "empty output: expected {what} as JSON (kubectl -o json)"
        )));
    };
    if first != '{' && first != '[' {
        let preview: String = trimmed
            .chars()
            .take(40)
            .filter(|c| !c.is_control())
            .collect();
        return Err(ParseError(format!(
            "expected {what} as JSON (kubectl -o json), but the output starts with {preview:?}"
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

/// Reads `null` as the type's default: kubectl prints `null` for some empty fields
/// (e.g. a template's `metadata`, `creationTimestamp`).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    items: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct List<T> {
    #[serde(default = "Vec::new", deserialize_with = "nullable")]
    items: Vec<T>,
}

/// Parses either a `List` (what `kubectl get <kind> -o json` prints) or a single object
/// (what `kubectl get <kind> <name> -o json` prints) into a list of objects.
pub fn list_or_one<T: DeserializeOwned>(what: &str, text: &str) -> Result<Vec<T>, ParseError> {
    let head: Head = from_json(what, text)?;
    let is_list = head.items.is_some() || head.kind.as_deref().is_some_and(|k| k.ends_with("List"));
    if is_list {
        Ok(from_json::<List<T>>(what, text)?.items)
    } else {
        Ok(vec![from_json::<T>(what, text)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Named {
        name: String,
    }

    #[test]
    fn empty_and_non_json_say_what_was_expected() {
        let e = from_json::<Named>("a pod", "  \n").unwrap_err();
        assert!(e.0.contains("empty output"), "{e}");
        let e = from_json::<Named>("a pod", "error: the server doesn't have a resource type")
            .unwrap_err();
        assert!(e.0.contains("starts with"), "{e}");
        let e = from_json::<Named>("a pod", "{\"name\": \"x").unwrap_err();
        assert!(e.0.contains("truncated"), "{e}");
    }

    #[test]
    fn list_and_single_object_both_read() {
        let many: Vec<Named> = list_or_one(
            "names",
            r#"{"kind":"List","items":[{"name":"a"},{"name":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        let one: Vec<Named> = list_or_one("names", r#"{"kind":"Pod","name":"a"}"#).unwrap();
        assert_eq!(one[0].name, "a");
    }
}
