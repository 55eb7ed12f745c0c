//! The Envoy bootstrap: who the node says it is, where it gets its xDS configuration, and
//! the Traffic Director settings carried in its node metadata.
//!
//! The same shape appears inside a config dump (`BootstrapConfigDump.bootstrap`), in a
//! bootstrap file (YAML or JSON) and, for the node alone, in a CSDS response.

use crate::wire::{ParseError, check_input, json_error, lenient_string, lenient_u32};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use triage_sdk::JsonSchema;

/// Bootstrap files are small; anything this big is not one.
pub const MAX_BOOTSTRAP_BYTES: usize = 16 * 1024 * 1024;

const TD_NETWORK_NAME: &str = "TRAFFICDIRECTOR_NETWORK_NAME";
const TD_PROJECT_NUMBER: &str = "TRAFFICDIRECTOR_GCP_PROJECT_NUMBER";
const TD_ACCESS_LOG_PATH: &str = "TRAFFICDIRECTOR_ACCESS_LOG_PATH";
const TD_INTERCEPTION_PORT: &str = "TRAFFICDIRECTOR_INTERCEPTION_PORT";
const TD_INBOUND_BACKEND_PORTS: &str = "TRAFFICDIRECTOR_INBOUND_BACKEND_PORTS";
const TD_HOST: &str = "trafficdirector.googleapis.com";

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct BootstrapWire {
    node: Option<NodeWire>,
    #[serde(alias = "dynamicResources")]
    dynamic_resources: Option<DynamicResources>,
    #[serde(alias = "staticResources")]
    static_resources: Option<StaticResources>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub(crate) struct NodeWire {
    #[serde(deserialize_with = "lenient_string")]
    id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    cluster: Option<String>,
    // Node metadata is a small free-form Struct; it is the one place a Value is worth it.
    metadata: Option<Map<String, Value>>,
    #[serde(alias = "buildVersion", deserialize_with = "lenient_string")]
    build_version: Option<String>,
    #[serde(alias = "userAgentBuildVersion")]
    user_agent_build_version: Option<BuildVersion>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct BuildVersion {
    version: Option<SemanticVersion>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct SemanticVersion {
    #[serde(alias = "majorNumber", deserialize_with = "lenient_u32")]
    major_number: Option<u32>,
    #[serde(alias = "minorNumber", deserialize_with = "lenient_u32")]
    minor_number: Option<u32>,
    #[serde(deserialize_with = "lenient_u32")]
    patch: Option<u32>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct DynamicResources {
    #[serde(alias = "adsConfig")]
    ads_config: Option<ApiConfigSource>,
    #[serde(alias = "ldsConfig")]
    lds_config: Option<ConfigSource>,
    #[serde(alias = "cdsConfig")]
    cds_config: Option<ConfigSource>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct ConfigSource {
    #[serde(alias = "apiConfigSource")]
    api_config_source: Option<ApiConfigSource>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct ApiConfigSource {
    #[serde(alias = "grpcServices")]
    grpc_services: Vec<GrpcService>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct GrpcService {
    #[serde(alias = "envoyGrpc")]
    envoy_grpc: Option<EnvoyGrpc>,
    #[serde(alias = "googleGrpc")]
    google_grpc: Option<GoogleGrpc>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct EnvoyGrpc {
    #[serde(alias = "clusterName")]
    cluster_name: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct GoogleGrpc {
    #[serde(alias = "targetUri")]
    target_uri: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct StaticResources {
    clusters: Vec<StaticCluster>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct StaticCluster {
    name: Option<String>,
    #[serde(alias = "loadAssignment")]
    load_assignment: Option<LoadAssignment>,
    /// Pre-v3 clusters listed their endpoints here.
    hosts: Vec<Address>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct LoadAssignment {
    endpoints: Vec<LocalityEndpoints>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct LocalityEndpoints {
    #[serde(alias = "lbEndpoints")]
    lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct LbEndpoint {
    endpoint: Option<Endpoint>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct Endpoint {
    address: Option<Address>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct Address {
    #[serde(alias = "socketAddress")]
    socket_address: Option<SocketAddress>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct SocketAddress {
    address: Option<String>,
    #[serde(alias = "portValue", deserialize_with = "lenient_u32")]
    port_value: Option<u32>,
}

/// What the bootstrap says about the node and its xDS server.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct BootstrapFacts {
    /// Whether a bootstrap was found at all (a partial config dump may lack it).
    pub present: bool,
    /// The node id sent to the xDS server; for Traffic Director
    /// `projects/<number>/networks/<network>/nodes/<id>`.
    pub node_id: Option<String>,
    /// The node cluster.
    pub node_cluster: Option<String>,
    /// The node metadata, as given (TRAFFICDIRECTOR_* keys live here).
    pub node_metadata: Map<String, Value>,
    /// The xDS (ADS) server as `host:port`, e.g. `trafficdirector.googleapis.com:443`:
    /// a google_grpc target, or the address of the static cluster an envoy_grpc names.
    pub xds_server: Option<String>,
    /// The static cluster named by an envoy_grpc xDS service (e.g. `xds-grpc`), if any.
    pub xds_cluster: Option<String>,
    /// The Envoy release recorded in the node (`user_agent_build_version` or `build_version`).
    pub envoy_version: Option<String>,
}

/// Traffic Director settings from the node metadata and the node id.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
pub struct TrafficDirectorFacts {
    /// Whether this looks like a Traffic Director node: its xDS server is
    /// trafficdirector.googleapis.com, it has TRAFFICDIRECTOR_* metadata, or its id has the
    /// `projects/<n>/networks/<net>/nodes/<id>` form.
    pub detected: bool,
    /// TRAFFICDIRECTOR_NETWORK_NAME, else the network in the node id; null when neither.
    pub network_name: Option<String>,
    /// TRAFFICDIRECTOR_GCP_PROJECT_NUMBER, else the project in the node id; null when neither.
    pub project_number: Option<String>,
    /// TRAFFICDIRECTOR_ACCESS_LOG_PATH; null when absent or empty.
    pub access_log_path: Option<String>,
    /// TRAFFICDIRECTOR_INTERCEPTION_PORT; null when absent, empty or not a port.
    pub interception_port: Option<u16>,
    /// TRAFFICDIRECTOR_INBOUND_BACKEND_PORTS, split on commas; empty when absent.
    pub inbound_backend_ports: Vec<u16>,
    /// The network from the node id form `projects/<n>/networks/<net>/nodes/<id>`.
    pub node_id_network: Option<String>,
    /// The project number from the node id form.
    pub node_id_project_number: Option<String>,
    /// The TRAFFICDIRECTOR_* metadata keys present, sorted.
    pub metadata_keys: Vec<String>,
}

impl BootstrapWire {
    pub(crate) fn facts(&self) -> BootstrapFacts {
        let node = self.node.as_ref();
        let (xds_server, xds_cluster) = self.xds_server();
        BootstrapFacts {
            present: true,
            node_id: node.and_then(|n| n.id.clone()),
            node_cluster: node.and_then(|n| n.cluster.clone()),
            node_metadata: node.and_then(|n| n.metadata.clone()).unwrap_or_default(),
            xds_server,
            xds_cluster,
            envoy_version: node.and_then(NodeWire::envoy_version),
        }
    }

    fn xds_server(&self) -> (Option<String>, Option<String>) {
        let Some(dynamic) = &self.dynamic_resources else {
            return (None, None);
        };
        let sources = [
            dynamic.ads_config.as_ref(),
            dynamic
                .lds_config
                .as_ref()
                .and_then(|c| c.api_config_source.as_ref()),
            dynamic
                .cds_config
                .as_ref()
                .and_then(|c| c.api_config_source.as_ref()),
        ];
        let service = sources
            .into_iter()
            .flatten()
            .flat_map(|s| &s.grpc_services)
            .next();
        let Some(service) = service else {
            return (None, None);
        };
        if let Some(target) = service
            .google_grpc
            .as_ref()
            .and_then(|g| g.target_uri.clone())
        {
            return (Some(target), None);
        }
        let cluster = service
            .envoy_grpc
            .as_ref()
            .and_then(|e| e.cluster_name.clone());
        let server = cluster
            .as_deref()
            .and_then(|name| self.static_cluster_address(name));
        (server, cluster)
    }

    fn static_cluster_address(&self, name: &str) -> Option<String> {
        let cluster = self
            .static_resources
            .as_ref()?
            .clusters
            .iter()
            .find(|c| c.name.as_deref() == Some(name))?;
        let from_assignment = cluster
            .load_assignment
            .iter()
            .flat_map(|a| &a.endpoints)
            .flat_map(|e| &e.lb_endpoints)
            .filter_map(|lb| lb.endpoint.as_ref()?.address.as_ref());
        from_assignment
            .chain(&cluster.hosts)
            .find_map(|a| a.socket_address.as_ref())
            .and_then(|s| {
                let host = s.address.as_deref()?;
                Some(match s.port_value {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_owned(),
                })
            })
    }
}

impl NodeWire {
    fn envoy_version(&self) -> Option<String> {
        let structured = self.user_agent_build_version.as_ref().and_then(|b| {
            let v = b.version.as_ref()?;
            Some(format!(
                "{}.{}.{}",
                v.major_number.unwrap_or(0),
                v.minor_number?,
                v.patch.unwrap_or(0)
            ))
        });
        structured.or_else(|| {
            let raw = self.build_version.as_deref()?;
            crate::version::EnvoyVersion::parse(raw).map(|v| v.to_string())
        })
    }

    pub(crate) fn traffic_director(&self, xds_server: Option<&str>) -> TrafficDirectorFacts {
        traffic_director(self.id.as_deref(), self.metadata.as_ref(), xds_server)
    }
}

/// Derives the Traffic Director facts from a node id, its metadata and the xDS server.
pub(crate) fn traffic_director(
    node_id: Option<&str>,
    metadata: Option<&Map<String, Value>>,
    xds_server: Option<&str>,
) -> TrafficDirectorFacts {
    let meta = |key: &str| -> Option<String> {
        let text = match metadata?.get(key)? {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    };
    let (id_project, id_network) = node_id.map(split_td_node_id).unwrap_or((None, None));
    let metadata_keys: Vec<String> = metadata
        .map(|m| {
            m.keys()
                .filter(|k| k.starts_with("TRAFFICDIRECTOR_"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let detected = xds_server.is_some_and(|s| s.contains(TD_HOST))
        || !metadata_keys.is_empty()
        || id_project.is_some();
    TrafficDirectorFacts {
        detected,
        network_name: meta(TD_NETWORK_NAME).or_else(|| id_network.clone()),
        project_number: meta(TD_PROJECT_NUMBER).or_else(|| id_project.clone()),
        access_log_path: meta(TD_ACCESS_LOG_PATH),
        interception_port: meta(TD_INTERCEPTION_PORT).and_then(|p| p.parse().ok()),
        inbound_backend_ports: meta(TD_INBOUND_BACKEND_PORTS)
            .map(|ports| {
                ports
                    .split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
        node_id_network: id_network,
        node_id_project_number: id_project,
        metadata_keys: {
            let mut keys = metadata_keys;
            keys.sort();
            keys
        },
    }
}

/// Splits `projects/<number>/networks/<network>/nodes/<id>` into (number, network).
fn split_td_node_id(id: &str) -> (Option<String>, Option<String>) {
    let mut parts = id.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("projects"), Some(project), Some("networks"), Some(network), Some("nodes"))
            if !project.is_empty() && !network.is_empty() =>
        {
            (Some(project.to_owned()), Some(network.to_owned()))
        }
        _ => (None, None),
    }
}

/// Facts from a bootstrap file.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct BootstrapFileFacts {
    /// Node and xDS server.
    pub bootstrap: BootstrapFacts,
    /// Traffic Director settings.
    pub traffic_director: TrafficDirectorFacts,
}

/// Parses an Envoy bootstrap file, YAML or JSON (`envoy -c` accepts both).
pub fn parse_bootstrap_file(bytes: &[u8]) -> Result<BootstrapFileFacts, ParseError> {
    let bytes = check_input("the bootstrap file", bytes, MAX_BOOTSTRAP_BYTES)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let wire: BootstrapWire = if first == Some(b'{') {
        serde_json::from_slice(bytes).map_err(|e| json_error("the bootstrap file", &e))?
    } else {
        refuse_bracket_bombs(bytes)?;
        serde_yaml::from_slice(bytes)
            .map_err(|e| ParseError(format!("the bootstrap file is not valid YAML: {e}")))?
    };
    let bootstrap = wire.facts();
    let traffic_director = match &wire.node {
        Some(node) => node.traffic_director(bootstrap.xds_server.as_deref()),
        None => traffic_director(None, None, bootstrap.xds_server.as_deref()),
    };
    Ok(BootstrapFileFacts {
        bootstrap,
        traffic_director,
    })
}

/// The YAML parser's time grows with the square of flow-collection nesting (`[[[[…`): a
/// 16 MiB file of brackets would take hours. Real bootstraps hold a few dozen brackets, so
/// counting them all (quoted or not, which no trick can hide) is a safe bound.
const MAX_YAML_FLOW_BRACKETS: usize = 1024;

fn refuse_bracket_bombs(bytes: &[u8]) -> Result<(), ParseError> {
    let brackets = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
    if brackets > MAX_YAML_FLOW_BRACKETS {
        return Err(ParseError(format!(
            "the bootstrap file has {brackets} `[`/`{{` in YAML; more than {MAX_YAML_FLOW_BRACKETS} is refused (write it as JSON)"
        )));
    }
    Ok(())
}

/// One node of a CSDS `ClientStatusResponse`.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct CsdsNode {
    /// The node id.
    pub node_id: Option<String>,
    /// Traffic Director settings from the node.
    pub traffic_director: TrafficDirectorFacts,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsdsWire {
    config: Vec<CsdsConfig>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsdsConfig {
    node: Option<NodeWire>,
}

/// Reads the nodes of a CSDS `ClientStatusResponse` (JSON), ignoring their xDS configs.
pub fn parse_csds_nodes(bytes: &[u8]) -> Result<Vec<CsdsNode>, ParseError> {
    let bytes = check_input("the CSDS response", bytes, crate::wire::MAX_INPUT_BYTES)?;
    let wire: CsdsWire =
        serde_json::from_slice(bytes).map_err(|e| json_error("the CSDS response", &e))?;
    Ok(wire
        .config
        .into_iter()
        .filter_map(|c| c.node)
        .map(|node| CsdsNode {
            traffic_director: node.traffic_director(None),
            node_id: node.id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_td_node_id() {
        assert_eq!(
            split_td_node_id("projects/123/networks/default/nodes/abc"),
            (Some("123".into()), Some("default".into()))
        );
        assert_eq!(split_td_node_id("sidecar~10.0.0.1~x.y~y.svc"), (None, None));
        assert_eq!(
            split_td_node_id("projects//networks/x/nodes/y"),
            (None, None)
        );
    }
}
