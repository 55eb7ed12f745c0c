//! The admin `/clusters?format=json` document: endpoint health per cluster.

use crate::wire::{MAX_INPUT_BYTES, ParseError, check_input, json_error};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

/// Facts from `/clusters?format=json`.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ClustersFacts {
    /// Every cluster, in Envoy's order.
    pub clusters: Vec<ClusterHealth>,
    /// Names of clusters with hosts of which at least `unhealthy_threshold_percent` % are
    /// unhealthy (the guide's "most endpoints unhealthy" case, where Envoy spreads traffic
    /// over all endpoints, healthy or not).
    pub mostly_unhealthy: Vec<String>,
    /// The threshold used, in percent.
    pub unhealthy_threshold_percent: f64,
    /// Number of clusters.
    pub cluster_count: usize,
    /// Hosts in all clusters.
    pub host_count: usize,
    /// Healthy hosts in all clusters.
    pub healthy_host_count: usize,
    /// Unhealthy hosts in all clusters.
    pub unhealthy_host_count: usize,
    /// Degraded hosts in all clusters.
    pub degraded_host_count: usize,
}

/// Host health of one cluster.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ClusterHealth {
    /// Cluster name, e.g. `outbound|9080||reviews.default.svc.cluster.local`.
    pub name: String,
    /// Whether the cluster came over xDS.
    pub added_via_api: bool,
    /// Number of hosts.
    pub hosts: usize,
    /// Hosts neither unhealthy nor degraded.
    pub healthy: usize,
    /// Hosts failing active health checks, ejected as outliers, timed out, or reported by
    /// EDS as UNHEALTHY, DRAINING or TIMEOUT.
    pub unhealthy: usize,
    /// Hosts degraded (EDS DEGRADED or degraded by active health checks) and not unhealthy.
    pub degraded: usize,
    /// `unhealthy` as a percentage of `hosts`; 0 when the cluster has no hosts.
    pub unhealthy_percent: f64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClustersWire {
    #[serde(alias = "clusterStatuses")]
    cluster_statuses: Option<Vec<ClusterStatus>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClusterStatus {
    name: Option<String>,
    #[serde(alias = "addedViaApi")]
    added_via_api: bool,
    #[serde(alias = "hostStatuses")]
    host_statuses: Vec<HostStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HostStatus {
    #[serde(alias = "healthStatus")]
    health_status: HostHealth,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HostHealth {
    #[serde(alias = "edsHealthStatus")]
    eds_health_status: Option<String>,
    #[serde(alias = "failedActiveHealthCheck")]
    failed_active_health_check: bool,
    #[serde(alias = "failedOutlierCheck")]
    failed_outlier_check: bool,
    #[serde(alias = "failedActiveDegradedCheck")]
    failed_active_degraded_check: bool,
    #[serde(alias = "activeHcTimeout")]
    active_hc_timeout: bool,
}

enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

impl HostHealth {
    /// Mirrors Envoy's own rule: any failure flag or an EDS UNHEALTHY/DRAINING/TIMEOUT makes
    /// a host unhealthy; otherwise a degraded flag makes it degraded. EDS UNKNOWN is healthy.
    fn classify(&self) -> Health {
        let eds = self.eds_health_status.as_deref().unwrap_or("UNKNOWN");
        if self.failed_active_health_check
            || self.failed_outlier_check
            || self.active_hc_timeout
            || matches!(eds, "UNHEALTHY" | "DRAINING" | "TIMEOUT")
        {
            Health::Unhealthy
        } else if self.failed_active_degraded_check || eds == "DEGRADED" {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
}

/// Parses `/clusters?format=json` (snake_case or camelCase keys), or istioctl's bare list
/// of cluster statuses.
pub fn parse_clusters(
    bytes: &[u8],
    unhealthy_threshold_percent: f64,
) -> Result<ClustersFacts, ParseError> {
    let bytes = check_input("the clusters document", bytes, MAX_INPUT_BYTES)?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    // istioctl saves the bare list of cluster statuses; Envoy wraps it in an object.
    let statuses = if first == Some(b'[') {
        serde_json::from_slice::<Vec<ClusterStatus>>(bytes)
            .map_err(|e| json_error("the clusters document", &e))?
    } else {
        let wire: ClustersWire =
            serde_json::from_slice(bytes).map_err(|e| json_error("the clusters document", &e))?;
        wire.cluster_statuses.ok_or_else(|| {
            ParseError(
                "the clusters document has no `cluster_statuses`; ask for /clusters?format=json"
                    .into(),
            )
        })?
    };
    let clusters: Vec<ClusterHealth> = statuses.into_iter().map(cluster_health).collect();
    let mostly_unhealthy = clusters
        .iter()
        .filter(|c| c.hosts > 0 && c.unhealthy_percent >= unhealthy_threshold_percent)
        .map(|c| c.name.clone())
        .collect();
    Ok(ClustersFacts {
        mostly_unhealthy,
        unhealthy_threshold_percent,
        cluster_count: clusters.len(),
        host_count: clusters.iter().map(|c| c.hosts).sum(),
        healthy_host_count: clusters.iter().map(|c| c.healthy).sum(),
        unhealthy_host_count: clusters.iter().map(|c| c.unhealthy).sum(),
        degraded_host_count: clusters.iter().map(|c| c.degraded).sum(),
        clusters,
    })
}

fn cluster_health(status: ClusterStatus) -> ClusterHealth {
    let (mut healthy, mut unhealthy, mut degraded) = (0, 0, 0);
    for host in &status.host_statuses {
        match host.health_status.classify() {
            Health::Healthy => healthy += 1,
            Health::Degraded => degraded += 1,
            Health::Unhealthy => unhealthy += 1,
        }
    }
    let hosts = status.host_statuses.len();
    ClusterHealth {
        name: status.name.unwrap_or_default(),
        added_via_api: status.added_via_api,
        hosts,
        healthy,
        unhealthy,
        degraded,
        unhealthy_percent: percent(unhealthy, hosts),
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Host counts are far below 2^52, so the conversions are exact.
    (part as f64) * 100.0 / (whole as f64)
}
