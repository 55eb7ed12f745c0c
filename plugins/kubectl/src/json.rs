//! Turning kubectl's JSON into typed objects, with errors a runbook reader can act on.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

pub use triage_sdk::parse::{ParseError, nullable};

/// Parses one JSON document, saying what was expected when it is empty or not JSON at all.
pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, ParseError> {
    triage_sdk::parse::from_json(what, "kubectl -o json", text)
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
