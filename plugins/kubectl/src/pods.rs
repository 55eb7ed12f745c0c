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

/// Annotations naming the outbound destinations that are intercepted (TD's injector: by
/// default every one, "*"), and those that are not.
const INCLUDE_OUTBOUND_CIDR_ANNOTATIONS: [&str; 2] = [
    "cloud.google.com/includeOutboundCIDRs",
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
];
const EXCLUDE_OUTBOUND_CIDR_ANNOTATIONS: [&str; 2] = [
    "cloud.google.com/excludeOutboundCIDRs",
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
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
    security_context: Option<SecurityContext>,
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
    security_context: Option<SecurityContext>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SecurityContext {
    run_as_user: Option<i64>,
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
    #[serde(deserialize_with = "crate::json::nullable")]
    last_state: BTreeMap<String, StateDetail>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StateDetail {
    reason: Option<String>,
    #[serde(rename = "finishedAt")]
    finished_at: Option<String>,
    #[serde(rename = "startedAt")]
    started_at: Option<String>,
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
    /// Outbound interception from the annotations; null without a sidecar.
    pub interception: Option<InterceptionFacts>,
    /// The Deployment that created the pod: its ReplicaSet owner's name without the
    /// `pod-template-hash` suffix; null for a standalone pod or another owner.
    pub deployment: Option<String>,
}

/// What to ask of the interception: a destination and a port.
#[derive(Default, Clone, Copy)]
pub struct InterceptionQuery<'a> {
    pub vip: Option<&'a str>,
    pub port: Option<u16>,
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
    /// When the current run started (`state.running.startedAt`).
    pub started_at: Option<String>,
    /// Why the previous run ended (`lastState.terminated.reason`, e.g. "OOMKilled", "Error").
    pub last_termination_reason: Option<String>,
    /// When the previous run ended.
    pub last_finished_at: Option<String>,
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
    /// The UID the proxy runs as (`securityContext.runAsUser` of the container, else of the
    /// pod); null when neither sets it (the image's user).
    pub run_as_user: Option<i64>,
    /// How often the proxy container restarted (the guide's traffic loop: "the proxy process
    /// may fail").
    pub restart_count: u64,
    /// Why its previous run ended, e.g. "OOMKilled", "Error".
    pub last_termination_reason: Option<String>,
}

/// Outbound interception as the injector sets it up from the pod's annotations
/// (`cloud.google.com/includeOutboundCIDRs`, `excludeOutboundCIDRs`, `excludeOutboundPorts`,
/// and Istio's `traffic.sidecar.istio.io/…` equivalents). Without an include annotation
/// every destination is intercepted: Traffic Director's documented default.
#[derive(Serialize, JsonSchema, Debug)]
pub struct InterceptionFacts {
    /// Intercepted destination ranges; `["*"]` for all.
    pub include_outbound_cidrs: Vec<String>,
    /// Where the include list came from: an annotation's name, or "default".
    pub include_source: String,
    /// Destination ranges that bypass the proxy.
    pub exclude_outbound_cidrs: Vec<String>,
    /// Ports that bypass the proxy.
    pub exclude_outbound_ports: Vec<u16>,
    /// Every outbound destination goes to the proxy (include is "*" or 0.0.0.0/0).
    pub intercepts_all_outbound: bool,
    /// The `vip` param (with `port`) would be sent to the proxy; null without `vip`.
    pub vip_intercepted: Option<bool>,
    /// A connection to the `port` param, to some intercepted destination, would be sent to
    /// the proxy; null without `port`.
    pub port_intercepted: Option<bool>,
    /// UIDs whose traffic the injector's init container keeps away from the proxy (its
    /// `istio-iptables` arguments `-u`/`--proxy-uid`); empty when no init container says.
    pub excluded_uids: Vec<String>,
    /// The init container `excluded_uids` was read from; null when none sets up interception.
    pub init_container: Option<String>,
    /// The sidecar's `run_as_user` is among `excluded_uids`: its own connections are not
    /// sent back to it. Null when either is not in the pod's spec.
    pub proxy_uid_excluded: Option<bool>,
}

/// What the init container that set up the pod's interception (Istio's and Traffic
/// Director's `istio-init`, running `istio-iptables`) was told, from its arguments. These are
/// what the rules were made from when the pod started; annotations can be edited later.
struct InitSetup {
    name: String,
    /// `-u`/`--proxy-uid`.
    uids: Vec<String>,
    /// `-i`/`--istio-service-cidr`: the intercepted destinations ("*" for all, "" for none).
    include: Option<Vec<String>>,
    /// `-x`/`--istio-service-exclude-cidr`.
    exclude: Option<Vec<String>>,
    /// `-o`/`--outbound-ports-exclude`.
    exclude_ports: Option<Vec<u16>>,
}

fn comma_list(v: String) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// The value of `short VALUE`, `long VALUE` or `long=VALUE`, the last one given.
fn flag_value(argv: &[&str], short: &str, long: &str) -> Option<String> {
    let eq = format!("{long}=");
    let mut found = None;
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        if let Some(v) = arg.strip_prefix(eq.as_str()) {
            found = Some(v.to_string());
        } else if (*arg == short || *arg == long)
            && let Some(v) = it.next()
        {
            found = Some(v.to_string());
        }
    }
    found
}

fn init_setup(spec: &PodSpec) -> Option<InitSetup> {
    spec.init_containers
        .iter()
        .filter(|c| !is_always(&c.restart_policy))
        .find_map(|c| {
            let argv: Vec<&str> = c
                .command
                .iter()
                .chain(&c.args)
                .map(String::as_str)
                .collect();
            let sets_up = c.name == "istio-init"
                || argv.iter().any(|a| a.ends_with("istio-iptables"))
                || argv.contains(&"-u") && argv.contains(&"-p");
            if !sets_up {
                return None;
            }
            Some(InitSetup {
                name: c.name.clone(),
                uids: flag_value(&argv, "-u", "--proxy-uid")
                    .map(comma_list)
                    .unwrap_or_default(),
                include: flag_value(&argv, "-i", "--istio-service-cidr")
                    .map(comma_list)
                    .filter(|list| list.is_empty() || list.iter().any(|c| is_destination(c))),
                exclude: flag_value(&argv, "-x", "--istio-service-exclude-cidr").map(comma_list),
                exclude_ports: flag_value(&argv, "-o", "--outbound-ports-exclude").map(|v| {
                    comma_list(v)
                        .iter()
                        .filter_map(|p| p.parse().ok())
                        .collect()
                }),
            })
        })
}

/// Parses `kubectl get pods -o json` (a List, or one Pod).
pub fn parse_pods(text: &str) -> Result<PodsFacts, ParseError> {
    let pods: Vec<Pod> = list_or_one("pods", text)?;
    let pods: Vec<PodFacts> = pods
        .into_iter()
        .map(|p| pod_facts(p, InterceptionQuery::default()))
        .collect();
    Ok(PodsFacts {
        pod_count: pods.len(),
        ready_pods: pods.iter().filter(|p| p.pod_ready).count(),
        sidecar_pods: pods.iter().filter(|p| p.sidecar.is_some()).count(),
        pods,
    })
}

/// Parses `kubectl get pod NAME -o json`.
pub fn parse_pod(text: &str) -> Result<PodFacts, ParseError> {
    parse_pod_with(text, InterceptionQuery::default())
}

/// Parses `kubectl get pod NAME -o json`, answering `query` about its interception.
pub fn parse_pod_with(text: &str, query: InterceptionQuery) -> Result<PodFacts, ParseError> {
    from_json::<Pod>("a pod", text).map(|p| pod_facts(p, query))
}

fn pod_facts(pod: Pod, query: InterceptionQuery) -> PodFacts {
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

    let deployment = metadata
        .owner_references
        .iter()
        .find(|o| o.kind == "ReplicaSet")
        .and_then(|o| {
            let hash = metadata.labels.get("pod-template-hash")?;
            o.name
                .strip_suffix(hash.as_str())?
                .strip_suffix('-')
                .map(str::to_string)
        });
    let sidecar = find_sidecar(&spec, &metadata.annotations, &containers, &init_containers);
    let exclude_ports = exclude_outbound_ports(&metadata.annotations);
    let init = init_setup(&spec);
    let interception = sidecar.as_ref().map(|sidecar| {
        let mut facts = interception(&metadata.annotations, &exclude_ports, query, init.as_ref());
        if let Some(init) = &init {
            facts.proxy_uid_excluded = match (sidecar.run_as_user, init.uids.is_empty()) {
                (Some(uid), false) => Some(init.uids.iter().any(|u| *u == uid.to_string())),
                _ => None,
            };
            facts.excluded_uids = init.uids.clone();
            facts.init_container = Some(init.name.clone());
        }
        facts
    });
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
        exclude_outbound_ports: exclude_ports,
        interception,
        deployment,
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
        started_at: state.and_then(|(_, d)| d.started_at.clone()),
        last_termination_reason: status
            .and_then(|s| s.last_state.get("terminated"))
            .and_then(|d| d.reason.clone()),
        last_finished_at: status
            .and_then(|s| s.last_state.get("terminated"))
            .and_then(|d| d.finished_at.clone()),
        args: c.args.clone(),
        command: c.command.clone(),
        restart_policy: c.restart_policy.clone(),
    }
}

fn find_sidecar(
    spec: &PodSpec,
    annotations: &BTreeMap<String, String>,
    containers: &[ContainerFacts],
    init_containers: &[ContainerFacts],
) -> Option<SidecarFacts> {
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
    let status = containers
        .iter()
        .chain(init_containers)
        .find(|c| c.name == container.name);
    Some(SidecarFacts {
        run_as_user: container
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_user)
            .or_else(|| spec.security_context.as_ref().and_then(|s| s.run_as_user)),
        restart_count: status.map_or(0, |s| s.restart_count),
        last_termination_reason: status.and_then(|s| s.last_termination_reason.clone()),
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

fn annotation_list(
    annotations: &BTreeMap<String, String>,
    keys: &[&str],
) -> Option<(Vec<String>, String)> {
    keys.iter().find_map(|key| {
        let value = annotations.get(*key)?;
        let items = value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        Some((items, key.to_string()))
    })
}

fn interception(
    annotations: &BTreeMap<String, String>,
    exclude_ports: &[u16],
    query: InterceptionQuery,
    init: Option<&InitSetup>,
) -> InterceptionFacts {
    // The init container's arguments are what the rules were built from; the annotations
    // are what the injector was asked for, and may have been edited since.
    let from_init =
        init.and_then(|i| Some((i.include.clone()?, format!("init-container {} -i", i.name))));
    let (include, include_source) = from_init
        .or_else(|| annotation_list(annotations, &INCLUDE_OUTBOUND_CIDR_ANNOTATIONS))
        .unwrap_or_else(|| (vec!["*".to_string()], "default".to_string()));
    let exclude = init
        .and_then(|i| i.exclude.clone())
        .or_else(|| {
            annotation_list(annotations, &EXCLUDE_OUTBOUND_CIDR_ANNOTATIONS).map(|(v, _)| v)
        })
        .unwrap_or_default();
    let mut exclude_ports = exclude_ports.to_vec();
    if let Some(ports) = init.and_then(|i| i.exclude_ports.as_ref()) {
        exclude_ports.extend(ports);
        exclude_ports.sort_unstable();
        exclude_ports.dedup();
    }
    let exclude_ports = exclude_ports.as_slice();
    let all = include.iter().any(|c| c == "*" || c == "0.0.0.0/0");
    let port_excluded = query.port.is_some_and(|p| exclude_ports.contains(&p));
    let vip_intercepted = query.vip.map(|vip| {
        !port_excluded
            && !exclude.iter().any(|c| cidr_contains(c, vip))
            && (all || include.iter().any(|c| cidr_contains(c, vip)))
    });
    let port_intercepted = query.port.map(|_| !port_excluded && !include.is_empty());
    InterceptionFacts {
        intercepts_all_outbound: all,
        include_outbound_cidrs: include,
        include_source,
        exclude_outbound_cidrs: exclude,
        exclude_outbound_ports: exclude_ports.to_vec(),
        vip_intercepted,
        port_intercepted,
        excluded_uids: Vec::new(),
        init_container: None,
        proxy_uid_excluded: None,
    }
}

/// "*", or an IPv4 CIDR or address: a value istio-iptables can have been given (a sample
/// spec's `REPLACE_ME_VIP` is not, and says nothing about the pod's rules).
fn is_destination(text: &str) -> bool {
    let net = text.split_once('/').map_or(text, |(n, _)| n);
    text == "*" || net.trim().parse::<std::net::Ipv4Addr>().is_ok()
}

/// An IPv4 CIDR (or a bare address) holds `ip`; anything unparsable holds nothing.
fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let parse = |s: &str| s.trim().parse::<std::net::Ipv4Addr>().ok().map(u32::from);
    let (net, len) = match cidr.split_once('/') {
        Some((n, l)) => (n, l.trim().parse::<u32>().ok()),
        None => (cidr, Some(32)),
    };
    match (parse(net), len, parse(ip)) {
        (Some(net), Some(len), Some(ip)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            net & mask == ip & mask
        }
        _ => false,
    }
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
    fn interception_from_the_injectors_annotations() {
        let sidecar = r#""spec":{"containers":[{"name":"app"},{"name":"envoy","securityContext":{"runAsUser":1337}}]},
            "status":{"containerStatuses":[{"name":"envoy","restartCount":4,"lastState":{"terminated":{"reason":"OOMKilled","finishedAt":"2020-03-04T10:20:00Z"}},"state":{"running":{"startedAt":"2020-03-04T10:21:00Z"}}}]}"#;
        // No annotation: Traffic Director's default, everything.
        let pod = format!(r#"{{"kind":"Pod","metadata":{{"name":"p"}},{sidecar}}}"#);
        let q = InterceptionQuery {
            vip: Some("10.7.240.20"),
            port: Some(3306),
        };
        let facts = parse_pod_with(&pod, q).unwrap();
        let i = facts.interception.unwrap();
        assert!(i.intercepts_all_outbound);
        assert_eq!(i.include_source, "default");
        assert_eq!(
            (i.vip_intercepted, i.port_intercepted),
            (Some(true), Some(true))
        );
        // No init container in this pod: nothing says which UID is excluded.
        assert_eq!(i.proxy_uid_excluded, None);
        let s = facts.sidecar.unwrap();
        assert_eq!((s.run_as_user, s.restart_count), (Some(1337), 4));
        assert_eq!(s.last_termination_reason.as_deref(), Some("OOMKilled"));
        // Only the service range, 3306 excluded, one range excluded.
        let pod = format!(
            r#"{{"kind":"Pod","metadata":{{"name":"p","annotations":{{
            "cloud.google.com/includeOutboundCIDRs":"10.7.240.0/20",
            "cloud.google.com/excludeOutboundCIDRs":"10.7.241.0/24",
            "cloud.google.com/excludeOutboundPorts":"3306"}}}},{sidecar}}}"#
        );
        let at = |vip, port| {
            parse_pod_with(
                &pod,
                InterceptionQuery {
                    vip: Some(vip),
                    port: Some(port),
                },
            )
            .unwrap()
            .interception
            .unwrap()
            .vip_intercepted
        };
        assert_eq!(at("10.7.240.20", 3306), Some(false));
        assert_eq!(at("10.7.240.20", 5432), Some(true));
        assert_eq!(at("10.7.241.9", 5432), Some(false));
        assert_eq!(at("8.8.8.8", 5432), Some(false));
        assert!(
            !parse_pod(&pod)
                .unwrap()
                .interception
                .unwrap()
                .intercepts_all_outbound
        );
        let owned = r#"{"kind":"Pod","metadata":{"name":"busybox-6b8b7c6c9f-4xk2p","labels":{"pod-template-hash":"6b8b7c6c9f"},
            "ownerReferences":[{"kind":"ReplicaSet","name":"busybox-6b8b7c6c9f"}]}}"#;
        assert_eq!(
            parse_pod(owned).unwrap().deployment.as_deref(),
            Some("busybox")
        );
        // No sidecar: nothing is intercepted, so no interception facts.
        let bare =
            r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}}"#;
        assert!(parse_pod(bare).unwrap().interception.is_none());
    }

    #[test]
    fn the_init_containers_uid_exclusion_against_the_proxys_user() {
        let pod = |uid_args: &str, run_as: &str| {
            format!(
                r#"{{"kind":"Pod","metadata":{{"name":"p"}},"spec":{{
                "initContainers":[{{"name":"istio-init","args":["-p","15001",{uid_args}"-m","REDIRECT","-i","*"]}}],
                "containers":[{{"name":"app"}},{{"name":"envoy"{run_as}}}]}}}}"#
            )
        };
        let i = |text: String| parse_pod(&text).unwrap().interception.unwrap();
        let from_init = i(pod(r#""-u","1337","#, ""));
        assert!(from_init.intercepts_all_outbound);
        assert_eq!(from_init.include_source, "init-container istio-init -i");
        let excluded = i(pod(
            r#""-u","1337","#,
            r#","securityContext":{"runAsUser":1337}"#,
        ));
        assert_eq!(excluded.excluded_uids, ["1337"]);
        assert_eq!(excluded.init_container.as_deref(), Some("istio-init"));
        assert_eq!(excluded.proxy_uid_excluded, Some(true));
        let other = i(pod(
            r#""--proxy-uid=1000","#,
            r#","securityContext":{"runAsUser":1337}"#,
        ));
        assert_eq!(other.proxy_uid_excluded, Some(false));
        // The proxy's user is the image's: not in the spec, so not known.
        assert_eq!(i(pod(r#""-u","1337","#, "")).proxy_uid_excluded, None);
        // The init container excludes no UID at all: the proxy's traffic loops.
        let none = i(pod("", r#","securityContext":{"runAsUser":1337}"#));
        assert_eq!(none.proxy_uid_excluded, None);
        assert!(none.excluded_uids.is_empty());
    }

    #[test]
    fn the_init_containers_arguments_win_over_the_annotations() {
        // Traffic Director's injector as the guide's sample left it: only 10.0.0.1/32, and
        // 3306 excluded by the annotation and by -o.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/pods-busybox-td-injected.json"
        ))
        .unwrap();
        let pods: serde_json::Value = serde_json::from_str(&text).unwrap();
        let one = serde_json::to_string(&pods["items"][0]).unwrap();
        let at = |vip, port| {
            parse_pod_with(
                &one,
                InterceptionQuery {
                    vip: Some(vip),
                    port: Some(port),
                },
            )
            .unwrap()
            .interception
            .unwrap()
        };
        let i = at("10.0.0.1", 80);
        assert_eq!(i.include_outbound_cidrs, ["10.0.0.1/32"]);
        assert_eq!(i.include_source, "init-container istio-init -i");
        assert!(!i.intercepts_all_outbound);
        assert_eq!(i.vip_intercepted, Some(true));
        assert_eq!(at("10.0.0.1", 3306).vip_intercepted, Some(false));
        assert_eq!(at("10.0.0.2", 80).vip_intercepted, Some(false));
        assert_eq!(i.excluded_uids, ["1337"]);
        assert_eq!(i.proxy_uid_excluded, Some(true));
        // An empty -i: nothing outbound is intercepted.
        let none = one.replace("\"-i\",\"10.0.0.1/32\"", "\"-i\",\"\"");
        assert_ne!(none, one);
        let i = parse_pod(&none).unwrap().interception.unwrap();
        assert!(i.include_outbound_cidrs.is_empty() && !i.intercepts_all_outbound);
        // A sample spec's placeholder says nothing: the annotations (here none) decide.
        let sample = one.replace("10.0.0.1/32", "REPLACE_ME_VIP");
        let i = parse_pod(&sample).unwrap().interception.unwrap();
        assert_eq!(i.include_source, "default");
    }

    #[test]
    fn cidrs() {
        assert!(cidr_contains("0.0.0.0/0", "1.2.3.4"));
        assert!(cidr_contains("10.0.0.1", "10.0.0.1"));
        assert!(!cidr_contains("10.0.0.1/32", "10.0.0.2"));
        assert!(!cidr_contains("10.0.0.0/33", "10.0.0.2"));
        assert!(!cidr_contains("bogus", "10.0.0.2"));
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
