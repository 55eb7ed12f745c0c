//! Probe: Envoy's admin API (`/server_info`, `/config_dump`, `/clusters?format=json`) and
//! Envoy bootstrap files, turned into facts. The parsers are plain functions in their own
//! modules so they can be tested and benchmarked natively.

mod bootstrap;
mod clusters;
mod dump;
mod live;
mod version;
mod wire;

pub use bootstrap::{
    BootstrapFacts, BootstrapFileFacts, CsdsNode, MAX_BOOTSTRAP_BYTES, TrafficDirectorFacts,
    parse_bootstrap_file, parse_csds_nodes,
};
pub use clusters::{ClusterHealth, ClustersFacts, parse_clusters};
pub use dump::{
    ConfigFacts, FilterChainFacts, ListenerError, ListenerFacts, Piece, PiecesRead, Query,
    VipMatch, cidr_contains, is_whole_dump, parse_config_dump, parse_config_dump_limited,
    parse_config_pieces,
};
pub use live::{ALL_SECTIONS, FILTERED_SINCE, Section, plan, section_of};
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
    /// The parts of the facts the step reads: `counts`, `listeners`, `routes`, `bootstrap`
    /// (default: all). Facts of the other parts are null. From a live Envoy ≥ 1.20 only
    /// what these need is asked for (`/config_dump?resource=…&mask=…`); older Envoys, and
    /// `path`, give the whole dump.
    #[serde(default)]
    pub sections: Option<Vec<Section>>,
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
            // The whole dump, or filtered (`?resource=…&mask=…`): the query only, never
            // another admin path (`/config_dump**` would also grant `/config_dumpx`).
            .http("{admin_url}/config_dump")
            .http("{admin_url}/config_dump?**")
            // Whether the Envoy takes filters safely (live::FILTERED_SINCE).
            .http("{admin_url}/server_info")
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
                let sections = p.sections.clone().unwrap_or_else(|| ALL_SECTIONS.to_vec());
                if sections.is_empty() {
                    return Err(ProbeError::invalid_params(
                        "sections is empty: name at least one of counts, listeners, routes, bootstrap, or leave it out for all",
                    ));
                }
                let facts = match p.path.as_deref().filter(|p| !p.trim().is_empty()) {
                    Some(_) => {
                        let (source, bytes) =
                            fetch(&p.admin_url, "/config_dump", p.path.as_deref())?;
                        parse_config_dump(&bytes, &query).map_err(|e| bad_input(&source, &e))?
                    }
                    None => {
                        check_admin_url(&p.admin_url)?;
                        live::live_config(&p.admin_url, &sections, &query)?
                    }
                };
                Facts::new(&only_sections(&facts, &sections)?)
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
    check_admin_url(admin_url)?;
    let url = format!("{admin_url}{endpoint}");
    let body = triage_sdk::http_get(&url, &[])?;
    Ok((format!("GET {url}"), body))
}

fn check_admin_url(admin_url: &str) -> Result<(), ProbeError> {
    if admin_url.ends_with('/') {
        // The declared capability is `{admin_url}/…`; a trailing slash would make a URL
        // that neither matches it nor is what Envoy serves.
        return Err(ProbeError::invalid_params(format!(
            "admin_url `{admin_url}` must not end with `/`"
        )));
    }
    if admin_url.contains(['?', '#']) {
        // `http://h:15000/quitquitquit?` + `/config_dump` would be another admin page with
        // a query; the admin URL is a base, scheme, host, port and at most a path prefix.
        return Err(ProbeError::invalid_params(format!(
            "admin_url `{admin_url}` must not hold a query or fragment"
        )));
    }
    Ok(())
}

/// The facts with those of the sections not asked for set to null.
fn only_sections(
    facts: &ConfigFacts,
    sections: &[Section],
) -> Result<serde_json::Value, ProbeError> {
    let mut value = serde_json::to_value(facts)
        .map_err(|e| ProbeError::failed(format!("facts to JSON: {e}")))?;
    if let serde_json::Value::Object(map) = &mut value {
        for (key, fact) in map.iter_mut() {
            if section_of(key).is_some_and(|s| !sections.contains(&s)) {
                *fact = serde_json::Value::Null;
            }
        }
    }
    Ok(value)
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
        assert!(manifest.contains("\"{admin_url}/config_dump\""));
        assert!(manifest.contains("\"{admin_url}/config_dump?**\""));
        assert!(!manifest.contains("config_dump**"));
    }

    #[test]
    fn sections_plan_only_what_they_need() {
        let queries = |sections: &[Section]| -> Vec<&str> {
            plan(sections).into_iter().map(|(_, q)| q).collect()
        };
        assert_eq!(queries(&[Section::Bootstrap]), ["mask=bootstrap"]);
        let counts = queries(&[Section::Counts]);
        assert!(
            counts.iter().all(|q| q.starts_with("resource=")),
            "{counts:?}"
        );
        // Counts never ask for a listener's or cluster's definition.
        assert!(
            !counts.contains(&"resource=dynamic_listeners"),
            "{counts:?}"
        );
        assert!(
            counts
                .iter()
                .filter(|q| q.contains("clusters"))
                .all(|q| q.contains("&mask="))
        );
        let listeners = queries(&[Section::Listeners]);
        assert_eq!(
            listeners,
            ["resource=dynamic_listeners", "resource=static_listeners"]
        );
        // Masks stay inside what every Envoy >= 1.20 accepts: no path indexes through a
        // repeated field (those crashed Envoy before 1.19).
        for (_, q) in plan(&ALL_SECTIONS) {
            assert!(!q.contains("filter_chains"), "{q}");
        }
        let p: ConfigParams = Params::from_json(r#"{"sections": ["counts", "bootstrap"]}"#)
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.sections, Some(vec![Section::Counts, Section::Bootstrap]));
        assert!(
            Params::from_json(r#"{"sections": ["everything"]}"#)
                .parse::<ConfigParams>()
                .is_err()
        );
        for fact in [
            "listeners",
            "dynamic_cluster_count",
            "route_config_names",
            "bootstrap",
        ] {
            assert!(section_of(fact).is_some(), "{fact}");
        }
        assert_eq!(section_of("vip"), None);
    }

    #[test]
    fn pieces_are_read_as_their_field_and_a_whole_dump_is_told_apart() {
        let listeners = br#"{"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
             "name": "a", "active_state": {"last_updated": "2026-01-01T00:00:00Z"}},
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener",
             "name": "b", "warming_state": {"last_updated": "2026-01-01T00:00:00Z"},
             "error_state": {"details": "no such file"}}]}"#;
        let clusters = br#"{"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster"},
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster"}]}"#;
        let empty = b"{}";
        let read = parse_config_pieces(
            &[
                (Piece::DynamicListeners, listeners.as_slice()),
                (Piece::ActiveClusters, clusters.as_slice()),
                (Piece::WarmingClusters, empty.as_slice()),
            ],
            &Query::default(),
        );
        let Ok(PiecesRead::Facts(facts)) = read else {
            panic!("{read:?}");
        };
        assert_eq!(facts.dynamic_listener_count, 1);
        assert_eq!(facts.warming_listener_count, 1);
        assert_eq!(facts.dynamic_cluster_count, 2);
        assert_eq!(facts.listener_errors.len(), 1);
        assert!(facts.has_dynamic_resources);

        let whole =
            br#"{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
            "dynamic_listeners": []}]}"#;
        assert!(is_whole_dump(whole));
        assert!(!is_whole_dump(listeners));
        assert!(!is_whole_dump(empty));
        let read = parse_config_pieces(
            &[
                (Piece::ActiveClusters, clusters.as_slice()),
                (Piece::DynamicListeners, whole.as_slice()),
            ],
            &Query::default(),
        );
        assert!(matches!(read, Ok(PiecesRead::WholeDump(1))), "{read:?}");
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
