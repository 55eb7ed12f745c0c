//! The runbook's shape. Every struct denies unknown fields, and ids and versions are
//! checked inside deserialisation, so their errors carry serde_yaml's line and column.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use super::applies::{Applies, Detection};
pub use super::input_pattern::InputPattern;

/// A runbook: one section of a troubleshooting guide as a DAG of steps.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Always `triage/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Stable id (lowercase letters, digits, `-`); `triage run ID` finds it.
    pub id: Id,
    pub title: String,
    /// The section of the guide this runbook follows (its heading).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The guide section this runbook follows, in English and in Spanish, with its public
    /// page: reports show it and `triage explain` prints it, so a finding leads back to
    /// the guide's own words even with nothing but the binary at hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guide: Option<GuideRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When `triage doctor` runs this runbook: `always`, or a list of what doctor must have
    /// detected on the target (`envoy-process`, `envoy-admin`, `metadata-server`,
    /// `kubernetes`), all of them. Without it, doctor leaves the runbook out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies: Option<Applies>,
    /// Values the operator passes with `--input NAME=VALUE`.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    pub steps: Vec<Step>,
}

/// The public page of the guide section a runbook follows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuideRef {
    /// The section's heading in English.
    pub title: String,
    /// The section's heading in Spanish (the copy in docs/guide/).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_es: Option<String>,
    /// The public English page (an `https://` URL), with the section's anchor when known.
    pub url: HttpsUrl,
}

/// An `https://` URL with no whitespace or control characters: it is printed in terminals,
/// Markdown and chat posts as a link, so nothing in it may read as markup or a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct HttpsUrl(String);

impl JsonSchema for HttpsUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HttpsUrl".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^https://[^\\s<>()\\[\\]`|*]+$",
            "description": "An https:// URL with no spaces, brackets or backquotes."
        })
    }
}

impl TryFrom<String> for HttpsUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let rest = s.strip_prefix("https://").unwrap_or_default();
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let ok = !host.is_empty()
            && s.len() <= 2048
            && !s.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '<' | '>' | '(' | ')' | '[' | ']' | '`' | '|' | '*')
            });
        if ok {
            Ok(HttpsUrl(s))
        } else {
            Err(format!(
                "invalid URL `{}`: use an https:// URL with a host and no spaces, brackets, \
                 backquotes or control characters",
                s.escape_debug()
            ))
        }
    }
}

impl From<HttpsUrl> for String {
    fn from(u: HttpsUrl) -> String {
        u.0
    }
}

impl HttpsUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A finding's stable code, as istioctl analyze's `IST0101`: two to five capital letters
/// and four digits (`TRG0101`). Once given, a code keeps its meaning; a team's runbooks
/// use their own prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct FindingCode(String);

impl JsonSchema for FindingCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FindingCode".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{2,5}[0-9]{4}$",
            "description": "A stable finding code: 2 to 5 capital letters and 4 digits, e.g. TRG0101."
        })
    }
}

impl TryFrom<String> for FindingCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let letters = s.chars().take_while(char::is_ascii_uppercase).count();
        let digits = &s[letters..];
        if (2..=5).contains(&letters)
            && digits.len() == 4
            && digits.chars().all(|c| c.is_ascii_digit())
        {
            Ok(FindingCode(s))
        } else {
            Err(format!(
                "invalid finding code `{}`: use 2 to 5 capital letters and 4 digits, e.g. `TRG0101`",
                s.escape_debug()
            ))
        }
    }
}

impl From<FindingCode> for String {
    fn from(c: FindingCode) -> String {
        c.0
    }
}

impl FindingCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(into = "String")]
#[schemars(with = "ApiVersionSchema")]
pub struct ApiVersion;

#[derive(JsonSchema)]
#[allow(dead_code)]
enum ApiVersionSchema {
    #[serde(rename = "triage/v1")]
    V1,
}

impl TryFrom<String> for ApiVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "triage/v1" {
            Ok(ApiVersion)
        } else {
            Err(format!(
                "unsupported apiVersion `{s}`; this triage reads `triage/v1`"
            ))
        }
    }
}

impl From<ApiVersion> for String {
    fn from(_: ApiVersion) -> String {
        "triage/v1".into()
    }
}

/// An id of a runbook, step or finding: lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter. Finding ids are a contract: bots and tests key on them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(into = "String")]
#[schemars(with = "String")]
pub struct Id(String);

impl TryFrom<String> for Id {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Id(s))
        } else {
            Err(format!(
                "invalid id `{s}`: use lowercase letters, digits, `-` and `_`, starting with a letter"
            ))
        }
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    #[default]
    String,
    Integer,
    Boolean,
    /// Comma-separated on the command line.
    List,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: InputType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// What a given value must look like (each item, for a list): a named shape such as
    /// `rfc1123` or `gcp-zone`, or a regular expression anchored with `^` and `$`. Checked
    /// before a run is queued or started; values from API callers and chat users are
    /// untrusted, so every input that names an object should declare one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<InputPattern>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: Id,
    pub title: String,
    /// Why this step matters (guided mode shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Steps that must pass before this one starts.
    #[serde(default)]
    pub needs: Vec<Id>,
    /// Steps that must be done first, whatever became of them (passed, failed, skipped or
    /// errored). This joins alternative branches: a step `after: [gke, vm]` reads
    /// `steps.gke.output` or `steps.vm.output`, whichever ran.
    #[serde(default)]
    pub after: Vec<Id>,
    /// A minijinja expression; the step is skipped when it is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// e.g. `30s`, `500ms`, `2m`; default 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<Ask>,
    #[serde(default)]
    pub findings: Vec<FindingSpec>,
    /// When the probe ran but could not see what the step checks (the binary is absent,
    /// the endpoint does not answer, the log is not there), the step is `unknown`, never
    /// `passed`. Evaluated after the findings; a warning or error finding wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<UnknownSpec>,
}

/// One way a step can fail to see its subject.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnknownSpec {
    /// A minijinja expression over `inputs`, `steps`, `output`, `answers`, `target`.
    pub when: String,
    /// A template: what could not be seen, and why.
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeCall {
    pub plugin: String,
    pub action: String,
    /// Params; strings may be minijinja templates. A string that is exactly one
    /// `{{ expression }}` keeps the expression's type (a number stays a number).
    #[serde(default)]
    pub with: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub prompt: String,
    pub choices: Vec<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingSpec {
    pub id: Id,
    /// A stable code (`TRG0101`) that reports show beside the id and `triage explain CODE`
    /// looks up; the built-in runbooks' codes are kept in runbooks/findings.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<FindingCode>,
    /// A page about this finding; without it, reports link the runbook's `guide:` page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<HttpsUrl>,
    /// A minijinja expression over `inputs`, `steps`, `output`, `answers`.
    pub when: String,
    pub severity: Severity,
    /// Templates from here on.
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// Deserialises through `TryFrom<String>` inside the string visitor, so that serde_yaml
/// attaches the value's line and column to the error (it cannot after the fact).
macro_rules! validated_string {
    ($t:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$t, E> {
                        <$t>::try_from(s.to_string()).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

validated_string!(Id, "an id");
validated_string!(ApiVersion, "`triage/v1`");
validated_string!(HttpsUrl, "an https:// URL");
validated_string!(FindingCode, "a finding code such as `TRG0101`");

/// Parses `30s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n * 60),
        "h" => std::time::Duration::from_secs(n * 3600),
        _ => return None,
    })
}
