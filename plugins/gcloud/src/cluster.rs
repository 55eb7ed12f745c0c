//! A GKE cluster: whether it is private and the control plane's range, which a firewall
//! rule must let reach the nodes on TCP 9443.

use crate::json::{ParseError, from_json, last_segment, nullable};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Cluster {
    name: String,
    location: Option<String>,
    status: Option<String>,
    endpoint: Option<String>,
    current_master_version: Option<String>,
    network: Option<String>,
    subnetwork: Option<String>,
    network_config: Option<NetworkConfig>,
    private_cluster_config: Option<PrivateClusterConfig>,
    /// Deprecated top-level fields of early private clusters.
    private_cluster: Option<bool>,
    master_ipv4_cidr_block: Option<String>,
    #[serde(deserialize_with = "nullable")]
    node_pools: Vec<NodePool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NetworkConfig {
    network: Option<String>,
    subnetwork: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PrivateClusterConfig {
    enable_private_nodes: Option<bool>,
    enable_private_endpoint: Option<bool>,
    master_ipv4_cidr_block: Option<String>,
    private_endpoint: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodePool {
    name: String,
}

/// One GKE cluster.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ClusterFacts {
    /// Cluster name.
    pub name: String,
    /// Zone or region.
    pub location: Option<String>,
    /// e.g. "RUNNING".
    pub status: Option<String>,
    /// Nodes have only internal IPs (`privateClusterConfig.enablePrivateNodes`).
    pub private: bool,
    /// The control plane is reachable only privately.
    pub private_endpoint: bool,
    /// The control plane's range, e.g. "172.16.0.0/28": the source of the webhook calls.
    pub master_ipv4_cidr: Option<String>,
    /// The control plane's private IP.
    pub private_endpoint_ip: Option<String>,
    /// Public endpoint IP.
    pub endpoint: Option<String>,
    /// Control plane version.
    pub master_version: Option<String>,
    /// VPC network short name.
    pub network: Option<String>,
    /// Subnetwork short name.
    pub subnetwork: Option<String>,
    /// Node pool names.
    pub node_pools: Vec<String>,
}

/// Parses `gcloud container clusters describe CLUSTER --zone Z --format=json`.
pub fn parse_cluster(text: &str) -> Result<ClusterFacts, ParseError> {
    let c: Cluster = from_json("a GKE cluster", text)?;
    let private_config = c.private_cluster_config.unwrap_or_default();
    let network_config = c.network_config.unwrap_or_default();
    Ok(ClusterFacts {
        name: c.name,
        location: c.location,
        status: c.status,
        private: private_config
            .enable_private_nodes
            .or(c.private_cluster)
            .unwrap_or(false),
        private_endpoint: private_config.enable_private_endpoint.unwrap_or(false),
        master_ipv4_cidr: private_config
            .master_ipv4_cidr_block
            .or(c.master_ipv4_cidr_block),
        private_endpoint_ip: private_config.private_endpoint,
        endpoint: c.endpoint,
        master_version: c.current_master_version,
        network: c
            .network
            .or(network_config.network)
            .as_deref()
            .map(last_segment),
        subnetwork: c
            .subnetwork
            .or(network_config.subnetwork)
            .as_deref()
            .map(last_segment),
        node_pools: c.node_pools.into_iter().map(|p| p.name).collect(),
    })
}
