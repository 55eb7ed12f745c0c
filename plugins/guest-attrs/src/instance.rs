//! What the metadata server knows about the VM that the service-proxy checks need.

use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

/// Metadata server paths read by the `instance` action, under
/// `http://metadata.google.internal/computeMetadata/v1/`.
pub const PATHS: [&str; 11] = [
    "project/project-id",
    "project/numeric-project-id",
    "instance/name",
    "instance/zone",
    "instance/network-interfaces/0/network",
    "instance/service-accounts/default/email",
    "instance/service-accounts/default/scopes",
    "instance/attributes/",
    "instance/attributes/gce-service-proxy",
    "instance/attributes/enable-guest-attributes",
    "project/attributes/enable-guest-attributes",
];

/// The scope Traffic Director needs on the VM's service account.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The metadata server's answers, one per [`PATHS`] entry; `None` where it answered 404.
#[derive(Debug, Default, Clone)]
pub struct MetadataAnswers {
    /// `project/project-id`.
    pub project_id: Option<String>,
    /// `project/numeric-project-id`.
    pub numeric_project_id: Option<String>,
    /// `instance/name`.
    pub name: Option<String>,
    /// `instance/zone`.
    pub zone: Option<String>,
    /// `instance/network-interfaces/0/network`.
    pub network: Option<String>,
    /// `instance/service-accounts/default/email`.
    pub service_account_email: Option<String>,
    /// `instance/service-accounts/default/scopes`.
    pub scopes: Option<String>,
    /// `instance/attributes/` (one key per line).
    pub attribute_keys: Option<String>,
    /// `instance/attributes/gce-service-proxy`.
    pub gce_service_proxy: Option<String>,
    /// `instance/attributes/enable-guest-attributes`.
    pub instance_enable_guest_attributes: Option<String>,
    /// `project/attributes/enable-guest-attributes`.
    pub project_enable_guest_attributes: Option<String>,
}

/// What the `instance` action reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct InstanceFacts {
    /// Project id (`project/project-id`).
    pub project_id: Option<String>,
    /// Project number (`project/numeric-project-id`), the one Traffic Director expects in
    /// the bootstrap's node id.
    pub project_number: Option<String>,
    /// Instance name.
    pub instance: Option<String>,
    /// Zone name, e.g. "us-central1-a" (the last segment of `instance/zone`).
    pub zone: Option<String>,
    /// VPC network name of the first interface, e.g. "default" (the last segment of
    /// `instance/network-interfaces/0/network`).
    pub network: Option<String>,
    /// The network as the metadata server gives it: "projects/NUMBER/networks/NAME".
    pub network_path: Option<String>,
    /// The project number in `network_path` (the network's host project; differs from
    /// `project_number` on a Shared VPC).
    pub network_project_number: Option<String>,
    /// The default service account's email; null when the VM has none.
    pub service_account: Option<String>,
    /// The default service account's OAuth scopes.
    pub scopes: Vec<String>,
    /// Whether the scopes include cloud-platform, which the guide requires; null when the
    /// metadata server has no scope list (404: no service account, or the endpoint absent),
    /// since a list that could not be read says nothing about what it lacks.
    pub has_cloud_platform_scope: Option<bool>,
    /// Custom metadata keys set on the instance.
    pub attribute_keys: Vec<String>,
    /// Whether guest attributes are enabled (`enable-guest-attributes` on the instance, else
    /// on the project); null when neither sets it.
    pub guest_attributes_enabled: Option<bool>,
    /// Whether the `gce-service-proxy` metadata attribute (set by service-proxy-enabled
    /// templates) exists.
    pub service_proxy_configured: bool,
    /// Whether that attribute is valid JSON (copies of the documentation's example often miss
    /// a comma; such values are still read field by field).
    pub service_proxy_json_valid: Option<bool>,
    /// `api-version` of the attribute.
    pub service_proxy_api_version: Option<String>,
    /// `proxy-spec.network`: the network the proxy presents to Traffic Director (empty means
    /// the VM's own network).
    pub service_proxy_network: Option<String>,
    /// `proxy-spec.proxy-port`: where intercepted traffic is redirected.
    pub proxy_port: Option<u16>,
    /// `proxy-spec.access-log`: the access log path Envoy must be able to write.
    pub access_log: Option<String>,
    /// `service.serving-ports`: the ports the workload serves on.
    pub serving_ports: Vec<u16>,
}

/// Builds the facts from the metadata server's answers. Never fails: values are trimmed and
/// an unreadable `gce-service-proxy` attribute gives nulls.
pub fn instance_facts(answers: &MetadataAnswers) -> InstanceFacts {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let network_path = clean(&answers.network);
    let scopes: Vec<String> = answers
        .scopes
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let proxy = answers
        .gce_service_proxy
        .as_deref()
        .map(parse_service_proxy);
    let enabled = clean(&answers.instance_enable_guest_attributes)
        .or_else(|| clean(&answers.project_enable_guest_attributes))
        .map(|v| v.eq_ignore_ascii_case("true"));
    let proxy_fields = proxy.clone().unwrap_or_default();
    InstanceFacts {
        project_id: clean(&answers.project_id),
        project_number: clean(&answers.numeric_project_id),
        instance: clean(&answers.name),
        zone: clean(&answers.zone).and_then(|z| last_segment(&z)),
        network: network_path.as_deref().and_then(last_segment),
        network_project_number: network_path.as_deref().and_then(network_project_number),
        network_path,
        service_account: clean(&answers.service_account_email),
        has_cloud_platform_scope: answers
            .scopes
            .is_some()
            .then(|| scopes.iter().any(|s| s == CLOUD_PLATFORM_SCOPE)),
        scopes,
        attribute_keys: answers
            .attribute_keys
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        guest_attributes_enabled: enabled,
        service_proxy_configured: proxy.is_some(),
        service_proxy_json_valid: proxy.as_ref().map(|p| p.json_valid),
        service_proxy_api_version: proxy_fields.api_version,
        service_proxy_network: proxy_fields.network,
        proxy_port: proxy_fields.proxy_port,
        access_log: proxy_fields.access_log,
        serving_ports: proxy_fields.serving_ports,
    }
}

fn last_segment(path: &str) -> Option<String> {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// "projects/123456789012/networks/default" → "123456789012".
fn network_project_number(path: &str) -> Option<String> {
    let mut segments = path.split('/');
    while let Some(segment) = segments.next() {
        if segment == "projects" {
            return segments.next().filter(|s| !s.is_empty()).map(str::to_owned);
        }
    }
    None
}

/// The fields of the `gce-service-proxy` metadata attribute the checks use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServiceProxySpec {
    /// Whether the value parsed as JSON.
    pub json_valid: bool,
    /// `api-version`.
    pub api_version: Option<String>,
    /// `proxy-spec.network`.
    pub network: Option<String>,
    /// `proxy-spec.proxy-port`.
    pub proxy_port: Option<u16>,
    /// `proxy-spec.access-log`.
    pub access_log: Option<String>,
    /// `service.serving-ports`.
    pub serving_ports: Vec<u16>,
}

#[derive(Deserialize, Default)]
struct ServiceProxyJson {
    #[serde(rename = "api-version")]
    api_version: Option<serde_json::Value>,
    #[serde(rename = "proxy-spec", default)]
    proxy_spec: ProxySpecJson,
    #[serde(default)]
    service: ServiceJson,
}

#[derive(Deserialize, Default)]
struct ProxySpecJson {
    network: Option<String>,
    #[serde(rename = "proxy-port")]
    proxy_port: Option<serde_json::Value>,
    #[serde(rename = "access-log")]
    access_log: Option<String>,
}

#[derive(Deserialize, Default)]
struct ServiceJson {
    #[serde(rename = "serving-ports", default)]
    serving_ports: Vec<serde_json::Value>,
}

/// Reads the `gce-service-proxy` attribute. Valid JSON is read typed; anything else (the
/// documentation's example lacks a comma after `proxy-spec`, and users copy it) is scanned
/// for the `"name": value` pairs, which are unique within the attribute.
pub fn parse_service_proxy(text: &str) -> ServiceProxySpec {
    if let Ok(json) = serde_json::from_str::<ServiceProxyJson>(text) {
        return ServiceProxySpec {
            json_valid: true,
            api_version: json.api_version.as_ref().and_then(scalar_text),
            network: json.proxy_spec.network,
            proxy_port: json.proxy_spec.proxy_port.as_ref().and_then(port_of),
            access_log: json.proxy_spec.access_log,
            serving_ports: json
                .service
                .serving_ports
                .iter()
                .filter_map(port_of)
                .collect(),
        };
    }
    ServiceProxySpec {
        json_valid: false,
        api_version: scan_value(text, "api-version").map(str::to_owned),
        network: scan_value(text, "network").map(str::to_owned),
        proxy_port: scan_value(text, "proxy-port").and_then(|v| v.parse().ok()),
        access_log: scan_value(text, "access-log").map(str::to_owned),
        serving_ports: scan_list(text, "serving-ports")
            .map(|list| {
                list.split(',')
                    .filter_map(|p| unquote(p.trim()).parse().ok())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn port_of(value: &serde_json::Value) -> Option<u16> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The text after `"name":`, up to the next `,`, `}` or newline, quotes removed.
fn scan_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let after = after_name(text, name)?;
    let end = after.find([',', '}', '\n']).unwrap_or(after.len());
    Some(unquote(after[..end].trim()))
}

/// The text between the brackets of `"name": [ ... ]`.
fn scan_list<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let after = after_name(text, name)?.strip_prefix('[')?;
    let end = after.find(']')?;
    Some(&after[..end])
}

fn after_name<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let quoted = format!("\"{name}\"");
    let start = text.find(&quoted)? + quoted.len();
    let after = text[start..].trim_start().strip_prefix(':')?;
    Some(after.trim_start())
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}
