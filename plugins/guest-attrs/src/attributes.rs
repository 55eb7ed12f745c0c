//! The gce-service-proxy guest attributes and what they say about the bootstrap and agent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

use crate::timestamp::parse_heartbeat;
use triage_envoy::EnvoyVersion;

/// Output that is not guest attributes.
pub use triage_sdk::parse::ParseError;

/// The namespace the service proxy's bootstrap scripts and agent write to.
pub const NAMESPACE: &str = "gce-service-proxy";

/// The attributes the guide reads.
pub const KEYS: [&str; 5] = [
    "bootstrap-status",
    "bootstrap-last-failure",
    "proxy-version",
    "agent-heartbeat",
    "agent-last-failure",
];

/// What the gce-service-proxy guest attributes say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct GuestAttributeFacts {
    /// Every attribute of the namespace that was found, key → value.
    pub attributes: BTreeMap<String, String>,
    /// `bootstrap-status`: "none" when the attribute is absent or empty (the guide's
    /// `[none]`: installation has not started), else its value: "IN PROGRESS", "FAILED",
    /// "FINISHED".
    pub bootstrap_status: String,
    /// Whether `bootstrap-status` is FINISHED (anything else means Envoy is not set up yet).
    pub bootstrap_finished: bool,
    /// `bootstrap-status` read the one way every runbook judges it: the guide's four values,
    /// whatever their case or spacing, and `other` for any value the guide does not name
    /// (which, the guide says, also means Envoy is not set up).
    pub bootstrap_state: BootstrapState,
    /// `bootstrap-last-failure`: why the bootstrap failed, if it did.
    pub bootstrap_last_failure: Option<String>,
    /// `proxy-version`: Envoy's build version, e.g.
    /// "dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL".
    pub proxy_version: Option<String>,
    /// The X.Y.Z in `proxy_version`, e.g. "1.15.1".
    pub proxy_version_number: Option<String>,
    /// The release `meets_minimum` compares with (the `min_version` param).
    pub min_version: String,
    /// Whether `proxy_version_number` is at least `min_version`; null without a version.
    pub meets_minimum: Option<bool>,
    /// `agent-heartbeat` as written: when the VM agent last acted or checked.
    pub agent_heartbeat: Option<String>,
    /// The heartbeat in Unix seconds; null when absent or in a form not understood (RFC 3339,
    /// Go time text and Unix seconds or milliseconds are understood).
    pub agent_heartbeat_unix: Option<i64>,
    /// Seconds from the heartbeat to `now` (negative when the heartbeat is ahead of this clock).
    pub agent_heartbeat_age_seconds: Option<i64>,
    /// Whether the heartbeat is older than `max_heartbeat_age_seconds` (the guide: more than
    /// five minutes means the agent is stuck); null when there is no usable heartbeat.
    pub agent_heartbeat_stale: Option<bool>,
    /// `agent-last-failure`: the agent's last error.
    pub agent_last_failure: Option<String>,
    /// The clock the age was computed against (Unix seconds; the recording's when replaying).
    pub now: i64,
}

/// What `bootstrap-status` says, in the guide's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BootstrapState {
    /// `[none]`: absent or empty; the installation has not started.
    NotStarted,
    /// `IN PROGRESS`: installing and configuring.
    InProgress,
    /// `FAILED`: a component failed to install or configure.
    Failed,
    /// `FINISHED`: installed and configured without error.
    Finished,
    /// A value the guide does not name: not FINISHED, so not set up.
    Other,
}

impl BootstrapState {
    /// Reads a `bootstrap-status` value ("none" when absent). Case, surrounding blanks and
    /// `_`/`-` for the space are not told apart: the guide writes the values in prose, and a
    /// check that missed "In progress" would call a VM that is still installing broken.
    pub fn of(status: &str) -> Self {
        let words: Vec<String> = status
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        match words.join(" ").as_str() {
            "" | "NONE" => Self::NotStarted,
            "IN PROGRESS" | "INPROGRESS" => Self::InProgress,
            "FAILED" => Self::Failed,
            "FINISHED" => Self::Finished,
            _ => Self::Other,
        }
    }
}

/// Builds the facts from the attributes found. `now` is Unix seconds.
pub fn guest_attribute_facts(
    attributes: BTreeMap<String, String>,
    now: i64,
    max_heartbeat_age_seconds: u64,
    min_version: &EnvoyVersion,
) -> GuestAttributeFacts {
    let value = |key: &str| {
        attributes
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let bootstrap_status = value("bootstrap-status").unwrap_or_else(|| "none".to_owned());
    let proxy_version = value("proxy-version");
    let proxy_release = proxy_version.as_deref().and_then(EnvoyVersion::parse_build);
    let agent_heartbeat = value("agent-heartbeat");
    let agent_heartbeat_unix = agent_heartbeat.as_deref().and_then(parse_heartbeat);
    let agent_heartbeat_age_seconds = agent_heartbeat_unix.map(|at| now.saturating_sub(at));
    let max_age = i64::try_from(max_heartbeat_age_seconds).unwrap_or(i64::MAX);
    GuestAttributeFacts {
        bootstrap_finished: BootstrapState::of(&bootstrap_status) == BootstrapState::Finished,
        bootstrap_state: BootstrapState::of(&bootstrap_status),
        bootstrap_status,
        bootstrap_last_failure: value("bootstrap-last-failure"),
        proxy_version_number: proxy_release.map(|v| v.to_string()),
        meets_minimum: proxy_release.map(|v| v.at_least(min_version)),
        min_version: min_version.to_string(),
        proxy_version,
        agent_heartbeat_stale: agent_heartbeat_age_seconds.map(|age| age > max_age),
        agent_heartbeat_age_seconds,
        agent_heartbeat_unix,
        agent_heartbeat,
        agent_last_failure: value("agent-last-failure"),
        attributes,
        now,
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum GcloudJson {
    Items(Vec<Item>),
    Api(ApiResponse),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResponse {
    query_value: Option<QueryValue>,
    variable_key: Option<String>,
    variable_value: Option<String>,
}

#[derive(Deserialize)]
struct QueryValue {
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    namespace: Option<String>,
    key: String,
    #[serde(default)]
    value: String,
}

/// Parses `gcloud compute instances get-guest-attributes` output: `--format=json` (a list of
/// `{namespace, key, value}`), the raw API shape (`{queryValue: {items: [...]}}` or
/// `{variableKey, variableValue}`), or the default table (`NAMESPACE KEY VALUE`). Keeps only
/// the gce-service-proxy namespace.
pub fn parse_gcloud_output(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        // gcloud prints nothing when a table or query has no rows.
        return Ok(BTreeMap::new());
    }
    if trimmed.starts_with(['[', '{']) {
        return parse_json(trimmed);
    }
    parse_table(trimmed)
}

fn parse_json(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let parsed: GcloudJson = serde_json::from_str(text).map_err(|e| {
        ParseError(format!("guest attributes JSON is neither a list of {{namespace, key, value}} nor the API's GuestAttributes: {e}"))
    })?;
    let items = match parsed {
        GcloudJson::Items(items) => items,
        GcloudJson::Api(api) => {
            let mut items = api.query_value.map(|q| q.items).unwrap_or_default();
            if let Some(path) = api.variable_key {
                // variableKey is "namespace/key".
                let (namespace, key) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
                items.push(Item {
                    namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
                    key: key.to_owned(),
                    value: api.variable_value.unwrap_or_default(),
                });
            }
            items
        }
    };
    Ok(items
        .into_iter()
        .filter(|item| item.namespace.as_deref().is_none_or(|ns| ns == NAMESPACE))
        .map(|item| (item.key, item.value))
        .collect())
}

/// gcloud's table: a header row, then `namespace key value` rows whose value may hold spaces
/// ("IN PROGRESS") or be empty.
fn parse_table(text: &str) -> Result<BTreeMap<String, String>, ParseError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if header != ["NAMESPACE", "KEY", "VALUE"] {
        return Err(ParseError(format!(
            "expected gcloud's JSON or a NAMESPACE KEY VALUE table, got {:?}",
            first_chars(text, 80)
        )));
    }
    let mut attributes = BTreeMap::new();
    for line in lines {
        let line = line.trim();
        let (namespace, rest) = split_word(line);
        let (key, value) = split_word(rest);
        if key.is_empty() {
            return Err(ParseError(format!(
                "table row without a key: {:?}",
                first_chars(line, 80)
            )));
        }
        if namespace == NAMESPACE {
            attributes.insert(key.to_owned(), value.to_owned());
        }
    }
    Ok(attributes)
}

fn split_word(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim()),
        None => (text, ""),
    }
}

fn first_chars(text: &str, count: usize) -> String {
    text.chars().take(count).collect()
}
