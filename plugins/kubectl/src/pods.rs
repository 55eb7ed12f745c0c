//! Pods: readiness, containers, the Envoy sidecar and its discovery address, and the
//! annotations that steer traffic interception.

use crate::json::{ParseError, from_json, list_or_one};
use crate::scan::setting_values;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use triage_sdk::JsonSchema;

/// Traffic Director's xDS endpoint, the value the guide says `discoveryAddress` must have.
pub const TRAFFIC_DIRECTOR_ADDRESS: &str = "trafficdirector.googleapis.com:443";

/// Container names the Traffic Director and Istio injectors give the proxy.
const SIDECAR_NAMES: [&str; 2] = ["envoy", "istio-proxy"];

/// Annotations listing outbound ports that bypass the proxy (the guide names the first one
/// for server-first protocols such as MySQL).
const EXCLUDE_OUTBOUND_ANNOTATIONS: [&str; 2] = [
    "cloud.google.com/excludeOutboundPorts",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
];

/// Annotations that may carry the proxy config, discovery address included.
const PROXY_CONFIG_ANNOTATIONS: [&str; 2] =
    ["proxy.istio.io/config", "sidecar.istio.io/discoveryAddress"];

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ObjectMeta {
    pub name: String,
    pub namespace: Option<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    pub owner_references: Vec<OwnerReference>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct OwnerReference {
    pub kind: String,
    pub name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Pod {
    #[serde(deserialize_with = "crate::json::nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "crate::json::nullable")]
    spec: PodSpec,
    #[serde(deserialize_with = "crate::json::nullable")]
    status: PodStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PodSpec {
    #[serde(deserialize_with = "crate::json::nullable")]
    containers: Vec<Container>,
    #[serde(deserialize_with = "crate::json::nullable")]
    init_containers: Vec<Container>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Container {
    name: String,
    image: Option<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    command: Vec<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    args: Vec<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    env: Vec<EnvVar>,
    restart_policy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EnvVar {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PodStatus {
    phase: Option<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    conditions: Vec<Condition>,
    #[serde(deserialize_with = "crate::json::nullable")]
    container_statuses: Vec<ContainerStatus>,
    #[serde(deserialize_with = "crate::json::nullable")]
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    #[serde(deserialize_with = "crate::json::nullable")]
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    ready: bool,
    restart_count: u64,
    #[serde(deserialize_with = "crate::json::nullable")]
    state: BTreeMap<String, StateDetail>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StateDetail {
    reason: Option<String>,
}

/// Every pod the query matched.
#[derive(Serialize, JsonSchema, Debug)]
pub struct PodsFacts {
    /// The pods, in kubectl's order.
    pub pods: Vec<PodFacts>,
    /// How many pods matched (0 when a webhook failure kept the ReplicaSet from creating any).
    pub pod_count: usize,
    /// Pods whose `Ready` condition is `True`.
    pub ready_pods: usize,
    /// Pods with an Envoy sidecar (`envoy` or `istio-proxy`), as a container or an init container.
    pub sidecar_pods: usize,
}

/// One pod.
#[derive(Serialize, JsonSchema, Debug)]
pub struct PodFacts {
    /// Pod name.
    pub name: String,
    /// Namespace, when kubectl printed it.
    pub namespace: Option<String>,
    /// `status.phase`: Pending, Running, Succeeded, Failed, Unknown.
    pub phase: Option<String>,
    /// kubectl's READY column, "ready/total", counting native sidecars like kubectl does.
    pub ready: String,
    /// Ready containers (regular containers plus native sidecars).
    pub ready_count: usize,
    /// Regular containers plus native sidecars (init containers with `restartPolicy: Always`).
    pub container_count: usize,
    /// The pod's `Ready` condition is `True` (without conditions: running with every container ready).
    pub pod_ready: bool,
    /// `spec.containers`, with their status.
    pub containers: Vec<ContainerFacts>,
    /// `spec.initContainers`, with their status (native sidecars included).
    pub init_containers: Vec<ContainerFacts>,
    /// The Envoy sidecar, if the pod has one.
    pub sidecar: Option<SidecarFacts>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Ports from `cloud.google.com/excludeOutboundPorts` and
    /// `traffic.sidecar.istio.io/excludeOutboundPorts`, sorted, without duplicates.
    pub exclude_outbound_ports: Vec<u16>,
}

/// One container of a pod.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ContainerFacts {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: Option<String>,
    /// Ready according to the container status (false when there is no status yet).
    pub ready: bool,
    /// Restarts according to the container status.
    pub restart_count: u64,
    /// Current state: "running", "waiting" or "terminated"; null before the kubelet reports.
    pub state: Option<String>,
    /// Reason of the current state, e.g. "CrashLoopBackOff".
    pub state_reason: Option<String>,
    /// `args`.
    pub args: Vec<String>,
    /// `command`.
    pub command: Vec<String>,
    /// `restartPolicy` (set to "Always" only on native sidecars).
    pub restart_policy: Option<String>,
}

/// The proxy container injected next to the application.
#[derive(Serialize, JsonSchema, Debug)]
pub struct SidecarFacts {
    /// "envoy" or "istio-proxy".
    pub name: String,
    /// "container" (in `spec.containers`), "native-sidecar" (an init container with
    /// `restartPolicy: Always`) or "init-container" (an init container without it).
    pub kind: String,
    /// Image reference.
    pub image: Option<String>,
    /// `args`.
    pub args: Vec<String>,
    /// The xDS server the proxy is told to use: `--discoveryAddress` in the args, else a
    /// `discoveryAddress` in an env value (e.g. PROXY_CONFIG), else in the
    /// `proxy.istio.io/config` or `sidecar.istio.io/discoveryAddress` annotation.
    pub discovery_address: Option<String>,
    /// Where `discovery_address` came from: "args", "env" or "annotation".
    pub discovery_address_source: Option<String>,
    /// The discovery address is Traffic Director's, `trafficdirector.googleapis.com:443`.
    pub discovery_address_is_traffic_director: bool,
}

/// Parses `kubectl get pods -o json` (a List, or one Pod).
pub fn parse_pods(text: &str) -> Result<PodsFacts, ParseError> {
    let pods: Vec<Pod> = list_or_one("pods", text)?;
    let pods: Vec<PodFacts> = pods.into_iter().map(pod_facts).collect();
    Ok(PodsFacts {
        pod_count: pods.len(),
        ready_pods: pods.iter().filter(|p| p.pod_ready).count(),
        sidecar_pods: pods.iter().filter(|p| p.sidecar.is_some()).count(),
        pods,
    })
}

/// Parses `kubectl get pod NAME -o json`.
pub fn parse_pod(text: &str) -> Result<PodFacts, ParseError> {
    from_json::<Pod>("a pod", text).map(pod_facts)
}

fn pod_facts(pod: Pod) -> PodFacts {
    let Pod {
        metadata,
        spec,
        status,
    } = pod;
    let containers: Vec<ContainerFacts> = spec
        .containers
        .iter()
        .map(|c| container_facts(c, &status.container_statuses))
        .collect();
    let init_containers: Vec<ContainerFacts> = spec
        .init_containers
        .iter()
        .map(|c| container_facts(c, &status.init_container_statuses))
        .collect();

    let native_sidecars = init_containers
        .iter()
        .filter(|c| is_always(&c.restart_policy));
    let counted: Vec<&ContainerFacts> = containers.iter().chain(native_sidecars).collect();
    let container_count = counted.len();
    let ready_count = counted.iter().filter(|c| c.ready).count();

    let pod_ready = match status.conditions.iter().find(|c| c.kind == "Ready") {
        Some(c) => c.status == "True",
        None => {
            status.phase.as_deref() == Some("Running")
                && container_count > 0
                && ready_count == container_count
        }
    };

    let sidecar = find_sidecar(&spec, &metadata.annotations);
    PodFacts {
        name: metadata.name,
        namespace: metadata.namespace,
        phase: status.phase,
        ready: format!("{ready_count}/{container_count}"),
        ready_count,
        container_count,
        pod_ready,
        containers,
        init_containers,
        sidecar,
        exclude_outbound_ports: exclude_outbound_ports(&metadata.annotations),
        annotations: metadata.annotations,
        labels: metadata.labels,
    }
}

fn is_always(policy: &Option<String>) -> bool {
    policy.as_deref() == Some("Always")
}

fn container_facts(c: &Container, statuses: &[ContainerStatus]) -> ContainerFacts {
    let status = statuses.iter().find(|s| s.name == c.name);
    let state = status.and_then(|s| s.state.iter().next());
    ContainerFacts {
        name: c.name.clone(),
        image: c.image.clone(),
        ready: status.is_some_and(|s| s.ready),
        restart_count: status.map_or(0, |s| s.restart_count),
        state: state.map(|(k, _)| k.clone()),
        state_reason: state.and_then(|(_, d)| d.reason.clone()),
        args: c.args.clone(),
        command: c.command.clone(),
        restart_policy: c.restart_policy.clone(),
    }
}

fn find_sidecar(spec: &PodSpec, annotations: &BTreeMap<String, String>) -> Option<SidecarFacts> {
    let is_proxy = |c: &&Container| SIDECAR_NAMES.contains(&c.name.as_str());
    let (container, kind) = match spec.containers.iter().find(is_proxy) {
        Some(c) => (c, "container"),
        None => {
            let c = spec.init_containers.iter().find(is_proxy)?;
            (
                c,
                if is_always(&c.restart_policy) {
                    "native-sidecar"
                } else {
                    "init-container"
                },
            )
        }
    };
    let (discovery_address, source) = discovery_address(container, annotations).unzip();
    Some(SidecarFacts {
        name: container.name.clone(),
        kind: kind.into(),
        image: container.image.clone(),
        args: container.args.clone(),
        discovery_address_is_traffic_director: discovery_address
            .as_deref()
            .is_some_and(|a| a == crate::pods::TRAFFIC_DIRECTOR_ADDRESS),
        discovery_address,
        discovery_address_source: source.map(str::to_string),
    })
}

fn discovery_address(
    c: &Container,
    annotations: &BTreeMap<String, String>,
) -> Option<(String, &'static str)> {
    let argv = c.command.iter().chain(&c.args);
    let mut previous_was_flag = false;
    for arg in argv {
        if previous_was_flag {
            return Some((arg.clone(), "args"));
        }
        let arg = arg.trim_start_matches('-');
        if let Some(value) = arg.strip_prefix("discoveryAddress=") {
            return Some((value.to_string(), "args"));
        }
        previous_was_flag = arg == "discoveryAddress";
    }
    let from_env = c
        .env
        .iter()
        .filter_map(|e| e.value.as_deref())
        .find_map(literal_discovery_address);
    if let Some(address) = from_env {
        return Some((address, "env"));
    }
    PROXY_CONFIG_ANNOTATIONS.iter().find_map(|key| {
        let value = annotations.get(*key)?;
        let address = if key.ends_with("discoveryAddress") {
            Some(value.trim().to_string()).filter(|v| !v.is_empty())
        } else {
            literal_discovery_address(value)
        };
        address.map(|a| (a, "annotation"))
    })
}

fn literal_discovery_address(text: &str) -> Option<String> {
    setting_values(text, "discoveryAddress")
        .into_iter()
        .find(|v| !v.is_empty() && !v.contains("{{"))
}

fn exclude_outbound_ports(annotations: &BTreeMap<String, String>) -> Vec<u16> {
    let mut ports: Vec<u16> = EXCLUDE_OUTBOUND_ANNOTATIONS
        .iter()
        .filter_map(|key| annotations.get(*key))
        .flat_map(|value| {
            value
                .split(',')
                .filter_map(|p| p.trim().parse::<u16>().ok())
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_blocked_deployment_has_no_pods() {
        let facts = parse_pods(
            r#"{"apiVersion":"v1","items":[],"kind":"List","metadata":{"resourceVersion":""}}"#,
        )
        .unwrap();
        assert_eq!(facts.pod_count, 0);
        assert_eq!(facts.ready_pods, 0);
    }

    #[test]
    fn discovery_address_from_proxy_config_env_json() {
        let pod = r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"istio-proxy",
            "env":[{"name":"PROXY_CONFIG","value":"{\"discoveryAddress\":\"trafficdirector.googleapis.com:443\",\"concurrency\":2}"}]}]}}"#;
        let facts = parse_pod(pod).unwrap();
        let sidecar = facts.sidecar.unwrap();
        assert_eq!(
            sidecar.discovery_address.as_deref(),
            Some("trafficdirector.googleapis.com:443")
        );
        assert_eq!(sidecar.discovery_address_source.as_deref(), Some("env"));
        assert!(sidecar.discovery_address_is_traffic_director);
    }

    #[test]
    fn exclude_outbound_ports_merge_both_annotations() {
        let pod = r#"{"kind":"Pod","metadata":{"name":"p","annotations":{
            "cloud.google.com/excludeOutboundPorts":"3306, 6379,x",
            "traffic.sidecar.istio.io/excludeOutboundPorts":"3306,99999,5432"}}}"#;
        assert_eq!(
            parse_pod(pod).unwrap().exclude_outbound_ports,
            vec![3306, 5432, 6379]
        );
    }
}
