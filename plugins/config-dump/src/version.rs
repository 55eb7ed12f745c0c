//! Envoy version strings and the admin `/server_info` document.

use crate::wire::{ParseError, check_input, json_error, lenient_string};
use serde::{Deserialize, Serialize};
use std::fmt;
use triage_sdk::JsonSchema;

/// A release number `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvoyVersion {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number (0 when the string had only two parts).
    pub patch: u32,
}

impl EnvoyVersion {
    /// Finds the release number in any of Envoy's spellings: the build string
    /// `sha/1.15.1-dev/Clean/RELEASE/BoringSSL`, `envoy --version`'s
    /// `envoy  version: sha/1.26.0/Clean/RELEASE/BoringSSL`, `envoy 1.26.0`, `v1.9.1`, `1.9`.
    ///
    /// The first `/`- or space-separated word that starts with `N.N` wins, so a hex SHA
    /// (never containing a dot) is skipped.
    pub fn parse(text: &str) -> Option<EnvoyVersion> {
        text.split(|c: char| c == '/' || c.is_whitespace())
            .find_map(EnvoyVersion::parse_word)
    }

    fn parse_word(word: &str) -> Option<EnvoyVersion> {
        let word = word.strip_prefix(['v', 'V']).unwrap_or(word);
        let numeric_len = word
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(word.len());
        let numeric = word.get(..numeric_len)?.trim_end_matches('.');
        let mut parts = numeric.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(EnvoyVersion {
            major,
            minor,
            patch,
        })
    }

    /// Whether this release is `min` or newer.
    pub fn at_least(&self, min: &EnvoyVersion) -> bool {
        self >= min
    }
}

impl fmt::Display for EnvoyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Option<String> {
        EnvoyVersion::parse(text).map(|v| v.to_string())
    }

    #[test]
    fn finds_the_release_in_every_spelling() {
        assert_eq!(
            v("dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL")
                .as_deref(),
            Some("1.15.1")
        );
        assert_eq!(v("1.9.1").as_deref(), Some("1.9.1"));
        assert_eq!(v("envoy 1.26.0").as_deref(), Some("1.26.0"));
        assert_eq!(
            v("envoy  version: 7b8baff1758f0a584dcc3cb657b5032000bcb3d7/1.16.0/Clean/RELEASE/BoringSSL")
                .as_deref(),
            Some("1.16.0")
        );
        assert_eq!(v("0/1.7.0-dev//RELEASE").as_deref(), Some("1.7.0"));
        assert_eq!(v("v1.30.2").as_deref(), Some("1.30.2"));
        assert_eq!(v("1.12").as_deref(), Some("1.12.0"));
        assert_eq!(v("12345/abc"), None);
        assert_eq!(v(""), None);
        assert_eq!(v("99999999999.1.1"), None);
    }

    #[test]
    fn orders_numerically() {
        let min = EnvoyVersion::parse("1.9.1").unwrap_or(EnvoyVersion {
            major: 9,
            minor: 9,
            patch: 9,
        });
        let check = |s: &str| EnvoyVersion::parse(s).map(|v| v.at_least(&min));
        assert_eq!(check("1.10.0"), Some(true));
        assert_eq!(check("1.9.1"), Some(true));
        assert_eq!(check("1.9.0"), Some(false));
        assert_eq!(check("1.8.99"), Some(false));
        assert_eq!(check("2.0"), Some(true));
    }
}
