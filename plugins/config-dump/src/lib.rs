//! Probe: Envoy's admin API (`/server_info`, `/config_dump`, `/clusters?format=json`) and
//! Envoy bootstrap files, turned into facts. The parsers are plain functions in their own
//! modules so they can be tested and benchmarked natively.

mod bootstrap;
mod clusters;
mod dump;
mod version;
mod wire;

pub use bootstrap::{
    BootstrapFacts, BootstrapFileFacts, CsdsNode, MAX_BOOTSTRAP_BYTES, TrafficDirectorFacts,
    parse_bootstrap_file, parse_csds_nodes,
};
pub use clusters::{ClusterHealth, ClustersFacts, parse_clusters};
pub use dump::{
    ConfigFacts, FilterChainFacts, ListenerError, ListenerFacts, Query, VipMatch, cidr_contains,
    parse_config_dump, parse_config_dump_limited,
};
pub use version::{EnvoyVersion, ServerInfo, parse_server_info};
pub use wire::{MAX_INPUT_BYTES, ParseError};

use serde::Deserialize;
use triage_envoy::{default_min_version, min_version_param};
use triage_sdk::register_probe;
use triage_sdk::{Action, Facts, JsonSchema, Manifest, Params, Probe, ProbeError};

fn default_admin_url() -> String {
    "http://localhost:15000".to_owned()
}

fn default_unhealthy_threshold() -> f64 {
    99.0
}

/// Params of `server-info`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerInfoParams {
    /// Envoy admin base URL, without a trailing slash.
    #[serde(default = "default_admin_url")]
    pub admin_url: String,
    /// Read the same JSON from this file instead of the admin API.
    #[serde(default)]
    pub path: Option<String>,
    /// The oldest acceptable Envoy version (Traffic Director needs 1.9.1).
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

/// Params of `config`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigParams {
    /// Envoy admin base URL, without a trailing slash.
    #[serde(default = "default_admin_url")]
    pub admin_url: String,
    /// Read the dump from this file instead of the admin API.
    #[serde(default)]
    pub path: Option<String>,
    /// A service VIP to look for in the listeners (sets `vip_listener`, `vip_in_listeners`).
    #[serde(default)]
    pub vip: Option<String>,
    /// The service port that goes with `vip`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Ports the workload serves; sets `inbound_listener_missing_ports`.
    #[serde(default)]
    pub serving_ports: Option<Vec<u16>>,
    /// Also return `listeners`: every active listener with its filter chains. Off by
    /// default: on a big dump that list is most of the facts, and the counts, route and
    /// access-log names, `vip_listener` and the inbound ports are there without it.
    #[serde(default)]
    pub include_listeners: bool,
}

/// Params of `clusters`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClustersParams {
    /// Envoy admin base URL, without a trailing slash.
    #[serde(default = "default_admin_url")]
    pub admin_url: String,
    /// Read the `/clusters?format=json` JSON from this file instead of the admin API.
    #[serde(default)]
    pub path: Option<String>,
    /// A cluster is "mostly unhealthy" at or above this percentage of unhealthy hosts.
    #[serde(default = "default_unhealthy_threshold")]
    pub unhealthy_threshold_percent: f64,
}

/// Params of `bootstrap`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapParams {
    /// The Envoy bootstrap file (YAML or JSON), e.g. /etc/envoy/bootstrap.yaml.
    pub path: String,
}

/// The probe; public so native tests can call `describe` and `run`.
pub struct ConfigDumpProbe;

impl Probe for ConfigDumpProbe {
    fn describe() -> Manifest {
        Manifest::new(
            "config-dump",
            env!("CARGO_PKG_VERSION"),
            "Envoy admin API (server_info, config_dump, clusters) and bootstrap files",
        )
        .action(
            Action::new::<ServerInfoParams, ServerInfo>(
                "server-info",
                "Envoy's version, state and uptime from GET {admin_url}/server_info (or a file)",
            )
            .http("{admin_url}/server_info")
            .read_file("{path}"),
        )
        .action(
            Action::new::<ConfigParams, ConfigFacts>(
                "config",
                "Listeners, filter chains, route names, counts and node metadata from GET {admin_url}/config_dump (or a file)",
            )
            .http("{admin_url}/config_dump**")
            .read_file("{path}"),
        )
        .action(
            Action::new::<ClustersParams, ClustersFacts>(
                "clusters",
                "Endpoint health per cluster from GET {admin_url}/clusters?format=json (or a file)",
            )
            .http("{admin_url}/clusters**")
            .read_file("{path}"),
        )
        .action(
            Action::new::<BootstrapParams, BootstrapFileFacts>(
                "bootstrap",
                "Node id, node metadata (TRAFFICDIRECTOR_*) and xDS server from an Envoy bootstrap file",
            )
            .read_file("{path}"),
        )
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        match action {
            "server-info" => {
                let p: ServerInfoParams = params.parse()?;
                let min = min_version_param(&p.min_version)?;
                let (source, bytes) = fetch(&p.admin_url, "/server_info", p.path.as_deref())?;
                Facts::new(&parse_server_info(&bytes, &min).map_err(|e| bad_input(&source, &e))?)
            }
            "config" => {
                let p: ConfigParams = params.parse()?;
                let query = config_query(&p)?;
                let (source, bytes) = fetch(&p.admin_url, "/config_dump", p.path.as_deref())?;
                Facts::new(&parse_config_dump(&bytes, &query).map_err(|e| bad_input(&source, &e))?)
            }
            "clusters" => {
                let p: ClustersParams = params.parse()?;
                if !p.unhealthy_threshold_percent.is_finite() {
                    return Err(ProbeError::invalid_params(
                        "unhealthy_threshold_percent must be a number",
                    ));
                }
                let (source, bytes) =
                    fetch(&p.admin_url, "/clusters?format=json", p.path.as_deref())?;
                let facts = parse_clusters(&bytes, p.unhealthy_threshold_percent)
                    .map_err(|e| bad_input(&source, &e))?;
                Facts::new(&facts)
            }
            "bootstrap" => {
                let p: BootstrapParams = params.parse()?;
                let bytes = read_capped(&p.path, MAX_BOOTSTRAP_BYTES)?;
                Facts::new(&parse_bootstrap_file(&bytes).map_err(|e| bad_input(&p.path, &e))?)
            }
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

fn config_query(p: &ConfigParams) -> Result<Query, ProbeError> {
    let vip = match p.vip.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse().map_err(|_| {
            ProbeError::invalid_params(format!("vip `{text}` is not an IP address"))
        })?),
    };
    Ok(Query {
        vip,
        port: p.port,
        serving_ports: p.serving_ports.clone(),
        include_listeners: p.include_listeners,
    })
}

/// The raw document, from `path` when one is given (an empty one counts as none, so
/// runbooks can pass an unset input straight through), else from the admin API.
/// Returns where it came from, for error messages.
fn fetch(
    admin_url: &str,
    endpoint: &str,
    path: Option<&str>,
) -> Result<(String, Vec<u8>), ProbeError> {
    if let Some(path) = path.filter(|p| !p.trim().is_empty()) {
        return Ok((path.to_owned(), read_capped(path, MAX_INPUT_BYTES)?));
    }
    if admin_url.ends_with('/') {
        // The declared capability is `{admin_url}/…`; a trailing slash would make a URL
        // that neither matches it nor is what Envoy serves.
        return Err(ProbeError::invalid_params(format!(
            "admin_url `{admin_url}` must not end with `/`"
        )));
    }
    let url = format!("{admin_url}{endpoint}");
    let body = triage_sdk::http_get(&url, &[])?;
    Ok((format!("GET {url}"), body))
}

fn read_capped(path: &str, limit: usize) -> Result<Vec<u8>, ProbeError> {
    // One byte over the limit tells a file that fits from one that was cut.
    let bytes = triage_sdk::read_file(path, limit as u64 + 1)?;
    if bytes.len() > limit {
        return Err(ProbeError::bad_input(format!(
            "{path} is larger than the {limit}-byte limit"
        )));
    }
    Ok(bytes)
}

fn bad_input(source: &str, e: &ParseError) -> ProbeError {
    ProbeError::bad_input(format!("{source}: {e}"))
}

register_probe!(ConfigDumpProbe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_declares_every_action() {
        // describe() builds wit records, which works natively too.
        let manifest = format!("{:?}", ConfigDumpProbe::describe());
        for action in ["server-info", "config", "clusters", "bootstrap"] {
            assert!(
                manifest.contains(&format!("name: \"{action}\"")),
                "{action} missing"
            );
        }
        assert!(manifest.contains("{admin_url}/config_dump**"));
    }

    #[test]
    fn params_defaults_and_vip_validation() {
        let p: ConfigParams = Params::from_json("{}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.admin_url, "http://localhost:15000");
        assert!(config_query(&p).is_ok_and(|q| q.vip.is_none()));
        let p: ConfigParams = Params::from_json(r#"{"vip": "10.0.0.1", "port": 80}"#)
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(config_query(&p).is_ok_and(|q| q.vip.is_some() && q.port == Some(80)));
        let p: ConfigParams = Params::from_json(r#"{"vip": "nope"}"#)
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(config_query(&p).is_err());
        assert!(
            Params::from_json(r#"{"bogus": 1}"#)
                .parse::<ConfigParams>()
                .is_err()
        );
        let p: ServerInfoParams = Params::from_json("{}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.min_version, "1.9.1");
        let p: ClustersParams = Params::from_json("{}")
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.unhealthy_threshold_percent, 99.0);
    }
}
