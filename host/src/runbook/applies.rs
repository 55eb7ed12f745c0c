//! `applies:`, a runbook's own statement of when `triage doctor` runs it: `always`, or the
//! list of what doctor must have detected on the target. Declared in the runbook rather
//! than listed in doctor, so that a team's runbooks (in TRIAGE_PATH and the other user
//! directories) join doctor by saying so.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What `triage doctor` detects before it chooses runbooks (each is a step of its built-in
/// detection, `host/src/cli/doctor-detect.yaml`, that passed).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Detection {
    /// An Envoy process runs on the target.
    EnvoyProcess,
    /// Envoy's admin endpoint (input `admin_url`, default http://localhost:15000) answers.
    EnvoyAdmin,
    /// A Compute Engine metadata server answers: the target is a Compute Engine VM.
    MetadataServer,
    /// kubectl reaches a Kubernetes cluster.
    Kubernetes,
}

impl Detection {
    pub const ALL: [Detection; 4] = [
        Detection::EnvoyProcess,
        Detection::EnvoyAdmin,
        Detection::MetadataServer,
        Detection::Kubernetes,
    ];

    /// The name in `applies:` and the id of the detection step that decides it.
    pub fn as_str(self) -> &'static str {
        match self {
            Detection::EnvoyProcess => "envoy-process",
            Detection::EnvoyAdmin => "envoy-admin",
            Detection::MetadataServer => "metadata-server",
            Detection::Kubernetes => "kubernetes",
        }
    }
}

/// When `triage doctor` runs the runbook. A runbook without `applies:` is run only by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applies {
    /// On every target: the basic checks that must never be skipped quietly.
    Always,
    /// Only when doctor detected every one of these.
    Detected(Vec<Detection>),
}

impl Applies {
    /// The detections missing from `detected` for this runbook to apply (empty: it applies).
    pub fn missing(&self, detected: &[Detection]) -> Vec<Detection> {
        match self {
            Applies::Always => Vec::new(),
            Applies::Detected(needed) => needed
                .iter()
                .copied()
                .filter(|d| !detected.contains(d))
                .collect(),
        }
    }
}

impl Serialize for Applies {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Applies::Always => s.serialize_str("always"),
            Applies::Detected(list) => list.serialize(s),
        }
    }
}

/// Through a visitor, not `untagged`, so that a wrong value keeps serde_yaml's line and
/// column and the message says what is accepted.
impl<'de> Deserialize<'de> for Applies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Applies;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "`always` or a list of what doctor must have detected ({})",
                    Detection::ALL.map(Detection::as_str).join(", ")
                )
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Applies, E> {
                if s == "always" {
                    Ok(Applies::Always)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(s), &self))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Applies, A::Error> {
                let mut list = Vec::new();
                while let Some(d) = seq.next_element::<Detection>()? {
                    if !list.contains(&d) {
                        list.push(d);
                    }
                }
                if list.is_empty() {
                    return Err(serde::de::Error::custom(
                        "an empty `applies:` list: write `applies: always` for a runbook doctor always runs",
                    ));
                }
                Ok(Applies::Detected(list))
            }
        }
        d.deserialize_any(V)
    }
}

// What editors see: the same two shapes the loader accepts. (Its doc comment would become
// the schema's description, so the description is on the `applies` field.)
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum AppliesSchema {
    Always(AlwaysSchema),
    Detected(Vec<Detection>),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum AlwaysSchema {
    #[serde(rename = "always")]
    Always,
}

impl JsonSchema for Applies {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Applies".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        AppliesSchema::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_always_and_lists_and_refuses_the_rest_saying_what_is_known() {
        let a: Applies = serde_yaml::from_str("always").unwrap();
        assert_eq!(a, Applies::Always);
        let a: Applies = serde_yaml::from_str("[envoy-admin, kubernetes]").unwrap();
        assert_eq!(
            a,
            Applies::Detected(vec![Detection::EnvoyAdmin, Detection::Kubernetes])
        );
        assert_eq!(
            a.missing(&[Detection::EnvoyAdmin]),
            vec![Detection::Kubernetes]
        );
        let e = serde_yaml::from_str::<Applies>("sometimes")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`always` or a list") && e.contains("metadata-server"),
            "{e}"
        );
        let e = serde_yaml::from_str::<Applies>("[vm]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("envoy-admin"), "{e}");
        assert!(serde_yaml::from_str::<Applies>("[]").is_err());
    }
}
