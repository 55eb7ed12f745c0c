//! A ConfigMap, and what a sidecar injector's ConfigMap says about where injected proxies
//! get their configuration: the discovery address, the VPC network and the project.

use crate::json::{ParseError, from_json};
use crate::pods::ObjectMeta;
use crate::scan::{node_id_project_networks, setting_values};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use triage_sdk::JsonSchema;

/// Keys holding the VPC network name in Traffic Director's injector config (node metadata,
/// possibly as an `ISTIO_META_` env var, which the key also matches).
const NETWORK_KEYS: [&str; 1] = ["TRAFFICDIRECTOR_NETWORK_NAME"];
/// Keys holding the project number.
const PROJECT_KEYS: [&str; 1] = ["TRAFFICDIRECTOR_GCP_PROJECT_NUMBER"];

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigMap {
    #[serde(deserialize_with = "crate::json::nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "crate::json::nullable")]
    data: BTreeMap<String, String>,
}

/// The ConfigMap's keys and the injector settings found in its values.
#[derive(Serialize, JsonSchema, Debug, Clone)]
pub struct ConfigMapFacts {
    /// ConfigMap name.
    pub name: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// The keys of `data`, sorted.
    pub keys: Vec<String>,
    /// Total size of the `data` values, in bytes.
    pub data_bytes: usize,
    /// The first literal discovery address (`--discoveryAddress X`, `discoveryAddress: X`,
    /// `"discoveryAddress":"X"`); null when absent or only templated (`{{ … }}`).
    pub discovery_address: Option<String>,
    /// Every literal discovery address found, in order, without duplicates.
    pub discovery_addresses: Vec<String>,
    /// A discovery address is set only through a Go template (Istio's own injector computes it).
    pub discovery_address_templated: bool,
    /// `discovery_address` is Traffic Director's, `trafficdirector.googleapis.com:443`.
    pub discovery_address_is_traffic_director: bool,
    /// The VPC network: `TRAFFICDIRECTOR_NETWORK_NAME`, else the network in a node id
    /// `projects/N/networks/NAME/nodes/…`; null when absent or empty.
    pub network: Option<String>,
    /// The project number: `TRAFFICDIRECTOR_GCP_PROJECT_NUMBER`, else the number in a node id;
    /// null when absent or empty.
    pub project: Option<String>,
    /// Which injector the config belongs to: "traffic-director" (mentions Traffic Director's
    /// address or `TRAFFICDIRECTOR_` settings), "istio" (mentions istio otherwise) or "unknown".
    pub injector: String,
}

/// Parses `kubectl get configmap NAME -o json`.
pub fn parse_configmap(text: &str) -> Result<ConfigMapFacts, ParseError> {
    let cm: ConfigMap = from_json("a configmap", text)?;
    let values: Vec<&str> = cm.data.values().map(String::as_str).collect();

    let mut discovery_addresses = Vec::new();
    let mut discovery_address_templated = false;
    for value in values
        .iter()
        .flat_map(|v| setting_values(v, "discoveryAddress"))
    {
        if value.contains("{{") {
            discovery_address_templated = true;
        } else if !value.is_empty() && !discovery_addresses.contains(&value) {
            discovery_addresses.push(value);
        }
    }
    let discovery_address = discovery_addresses.first().cloned();
    discovery_address_templated &= discovery_address.is_none();

    let node_ids: Vec<(String, String)> = values
        .iter()
        .flat_map(|v| node_id_project_networks(v))
        .collect();
    let network =
        first_setting(&values, &NETWORK_KEYS).or_else(|| node_ids.first().map(|(_, n)| n.clone()));
    let project =
        first_setting(&values, &PROJECT_KEYS).or_else(|| node_ids.first().map(|(p, _)| p.clone()));

    let mentions = |needle: &str| values.iter().any(|v| v.contains(needle));
    let discovery_address_is_traffic_director =
        discovery_address.as_deref() == Some(crate::pods::TRAFFIC_DIRECTOR_ADDRESS);
    let injector = if discovery_addresses
        .iter()
        .any(|a| a.starts_with("trafficdirector."))
        || mentions("TRAFFICDIRECTOR_")
    {
        "traffic-director"
    } else if mentions("istio") || cm.metadata.name.contains("istio") {
        "istio"
    } else {
        "unknown"
    };

    Ok(ConfigMapFacts {
        keys: cm.data.keys().cloned().collect(),
        data_bytes: values.iter().map(|v| v.len()).sum(),
        name: cm.metadata.name,
        namespace: cm.metadata.namespace,
        discovery_address,
        discovery_addresses,
        discovery_address_templated,
        discovery_address_is_traffic_director,
        network,
        project,
        injector: injector.into(),
    })
}

fn first_setting(values: &[&str], keys: &[&str]) -> Option<String> {
    values
        .iter()
        .flat_map(|v| keys.iter().flat_map(move |k| setting_values(v, k)))
        .find(|v| !v.is_empty() && !v.contains("{{"))
}
