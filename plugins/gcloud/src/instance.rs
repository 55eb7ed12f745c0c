//! A VM: its service account scopes (the guide: cloud-platform), metadata (the
//! `gce-service-proxy` spec of automatic Envoy deployment) and network.

use crate::json::{ParseError, from_json, last_segment, nullable};
use crate::service_proxy::{ServiceProxyFacts, parse_service_proxy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use triage_sdk::JsonSchema;

const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const SERVICE_PROXY_KEY: &str = "gce-service-proxy";

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Instance {
    name: String,
    status: Option<String>,
    zone: Option<String>,
    machine_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    service_accounts: Vec<ServiceAccount>,
    #[serde(deserialize_with = "nullable")]
    metadata: Items<MetadataItem>,
    #[serde(deserialize_with = "nullable")]
    network_interfaces: Vec<NetworkInterface>,
    #[serde(deserialize_with = "nullable")]
    tags: Items<String>,
    #[serde(deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(default, bound(deserialize = "T: Deserialize<'de>"))]
struct Items<T> {
    #[serde(deserialize_with = "nullable")]
    items: Vec<T>,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items { items: Vec::new() }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MetadataItem {
    key: String,
    value: Option<String>,
}

#[derive(Deserialize, Serialize, JsonSchema, Default, Debug)]
#[serde(default)]
pub struct ServiceAccount {
    /// e.g. "123456789012-compute@developer.gserviceaccount.com".
    pub email: String,
    /// OAuth scopes granted to the VM.
    #[serde(deserialize_with = "nullable")]
    pub scopes: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NetworkInterface {
    network: Option<String>,
    subnetwork: Option<String>,
    #[serde(rename = "networkIP")]
    network_ip: Option<String>,
}

/// One VM.
#[derive(Serialize, JsonSchema, Debug)]
pub struct InstanceFacts {
    /// Instance name.
    pub name: String,
    /// e.g. "RUNNING".
    pub status: Option<String>,
    /// Zone short name.
    pub zone: Option<String>,
    /// Machine type short name.
    pub machine_type: Option<String>,
    /// Service accounts and their scopes.
    pub service_accounts: Vec<ServiceAccount>,
    /// A service account has the cloud-platform scope (full access to Google Cloud APIs),
    /// which the guide requires for the proxy to reach Traffic Director.
    pub has_cloud_platform_scope: bool,
    /// Metadata items, key to value.
    pub metadata: BTreeMap<String, String>,
    /// The parsed `gce-service-proxy` metadata item, if the VM has one.
    pub service_proxy: Option<ServiceProxyFacts>,
    /// Metadata `enable-guest-attributes` is "true" (needed for the bootstrap status attributes).
    pub guest_attributes_enabled: bool,
    /// nic0's network, short name.
    pub network: Option<String>,
    /// nic0's subnetwork, short name.
    pub subnetwork: Option<String>,
    /// nic0's internal IP.
    pub network_ip: Option<String>,
    /// Network tags.
    pub tags: Vec<String>,
    /// Labels (automatic Envoy deployment sets `gce-service-proxy: on`).
    pub labels: BTreeMap<String, String>,
}

/// Parses `gcloud compute instances describe INSTANCE --zone Z --format=json`.
pub fn parse_instance(text: &str) -> Result<InstanceFacts, ParseError> {
    let vm: Instance = from_json("an instance", text)?;
    let metadata: BTreeMap<String, String> = vm
        .metadata
        .items
        .into_iter()
        .map(|i| (i.key, i.value.unwrap_or_default()))
        .collect();
    let nic0 = vm.network_interfaces.into_iter().next().unwrap_or_default();
    Ok(InstanceFacts {
        name: vm.name,
        status: vm.status,
        zone: vm.zone.as_deref().map(last_segment),
        machine_type: vm.machine_type.as_deref().map(last_segment),
        has_cloud_platform_scope: vm
            .service_accounts
            .iter()
            .any(|sa| sa.scopes.iter().any(|s| s == CLOUD_PLATFORM_SCOPE)),
        service_accounts: vm.service_accounts,
        service_proxy: metadata
            .get(SERVICE_PROXY_KEY)
            .map(|v| parse_service_proxy(v)),
        guest_attributes_enabled: metadata
            .get("enable-guest-attributes")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        metadata,
        network: nic0.network.as_deref().map(last_segment),
        subnetwork: nic0.subnetwork.as_deref().map(last_segment),
        network_ip: nic0.network_ip,
        tags: vm.tags.items,
        labels: vm.labels,
    })
}
