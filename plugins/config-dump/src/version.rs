//! Envoy version strings and the admin `/server_info` document.

use crate::wire::{ParseError, check_input, json_error, lenient_string};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

pub use triage_envoy::EnvoyVersion;

/// Facts from `/server_info`.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ServerInfo {
    /// The raw version string, e.g.
    /// `dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL`.
    pub version: Option<String>,
    /// The release number found in `version`, e.g. `1.15.1`; null when none was found.
    pub version_number: Option<String>,
    /// Major release number.
    pub major: Option<u32>,
    /// Minor release number.
    pub minor: Option<u32>,
    /// Patch release number.
    pub patch: Option<u32>,
    /// Server state: `LIVE`, `DRAINING`, `PRE_INITIALIZING` or `INITIALIZING`.
    pub state: Option<String>,
    /// Hot-restart compatibility version, e.g. `11.104`.
    pub hot_restart_version: Option<String>,
    /// Seconds since this Envoy process started (`uptime_current_epoch`).
    pub uptime_seconds: Option<u64>,
    /// The node id Envoy presents to its xDS server (newer Envoys only).
    pub node_id: Option<String>,
    /// The node cluster (newer Envoys only).
    pub node_cluster: Option<String>,
    /// The minimum version checked against (the `min_version` param).
    pub min_version: String,
    /// Whether the version is at least `min_version`; null when the version is unknown.
    pub meets_minimum: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServerInfoWire {
    #[serde(deserialize_with = "lenient_string")]
    version: Option<String>,
    #[serde(deserialize_with = "server_state")]
    state: Option<String>,
    #[serde(alias = "hotRestartVersion", deserialize_with = "lenient_string")]
    hot_restart_version: Option<String>,
    #[serde(alias = "uptimeCurrentEpoch")]
    uptime_current_epoch: Option<Duration>,
    node: Option<NodeWire>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodeWire {
    #[serde(deserialize_with = "lenient_string")]
    id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    cluster: Option<String>,
}

/// A protobuf Duration: `"123s"`, `"1.5s"`, or `{"seconds": 123}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Duration {
    Text(String),
    Parts {
        #[serde(default, deserialize_with = "lenient_string")]
        seconds: Option<String>,
    },
}

impl Duration {
    fn whole_seconds(&self) -> Option<u64> {
        let text = match self {
            Duration::Text(t) => t.trim().trim_end_matches('s'),
            Duration::Parts { seconds } => seconds.as_deref()?,
        };
        text.split('.').next()?.parse().ok()
    }
}

/// Envoy renders the state enum by name; some encoders use its number.
fn server_state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let raw = lenient_string(d)?;
    Ok(raw.map(|s| match s.as_str() {
        "0" => "LIVE".to_owned(),
        "1" => "DRAINING".to_owned(),
        "2" => "PRE_INITIALIZING".to_owned(),
        "3" => "INITIALIZING".to_owned(),
        _ => s,
    }))
}

/// Parses `/server_info`: the JSON of Envoy ≥ 1.8, or the one-line text of older ones
/// (`envoy <version> <state> <uptime-current> <uptime-all> <epoch>`).
pub fn parse_server_info(
    bytes: &[u8],
    min_version: &EnvoyVersion,
) -> Result<ServerInfo, ParseError> {
    let bytes = check_input("server_info", bytes, crate::wire::MAX_INPUT_BYTES)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let wire = if first == Some(b'{') {
        serde_json::from_slice::<ServerInfoWire>(bytes)
            .map_err(|e| json_error("server_info", &e))?
    } else {
        legacy_server_info(bytes)?
    };
    let number = wire.version.as_deref().and_then(EnvoyVersion::parse);
    Ok(ServerInfo {
        version_number: number.map(|v| v.to_string()),
        major: number.map(|v| v.major),
        minor: number.map(|v| v.minor),
        patch: number.map(|v| v.patch),
        meets_minimum: number.map(|v| v.at_least(min_version)),
        min_version: min_version.to_string(),
        version: wire.version,
        state: wire.state,
        hot_restart_version: wire.hot_restart_version,
        uptime_seconds: wire
            .uptime_current_epoch
            .as_ref()
            .and_then(Duration::whole_seconds),
        node_id: wire.node.as_ref().and_then(|n| n.id.clone()),
        node_cluster: wire.node.and_then(|n| n.cluster),
    })
}

fn legacy_server_info(bytes: &[u8]) -> Result<ServerInfoWire, ParseError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ParseError("server_info is neither JSON nor text".into()))?;
    let mut words = text.split_whitespace();
    if words.next() != Some("envoy") {
        return Err(ParseError(
            "server_info is neither JSON nor the legacy `envoy <version> <state> …` line".into(),
        ));
    }
    let version = words.next().map(str::to_owned);
    let state = words.next().map(str::to_ascii_uppercase);
    let uptime = words.next().map(|s| Duration::Text(s.to_owned()));
    Ok(ServerInfoWire {
        version,
        state,
        hot_restart_version: None,
        uptime_current_epoch: uptime,
        node: None,
    })
}
