//! Mutating admission webhooks, and which sidecar injector they belong to.

use crate::json::{ParseError, list_or_one};
use crate::pods::ObjectMeta;
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

/// Namespace Traffic Director's sidecar injector is installed in (its specs create it; the
/// guide's webhook error names `istio-sidecar-injector.istio-control.svc`).
const TD_INJECTOR_NAMESPACE: &str = "istio-control";

#[derive(Deserialize, Default)]
#[serde(default)]
struct WebhookConfiguration {
    #[serde(deserialize_with = "crate::json::nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "crate::json::nullable")]
    webhooks: Vec<Webhook>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Webhook {
    name: String,
    #[serde(deserialize_with = "crate::json::nullable")]
    client_config: ClientConfig,
    failure_policy: Option<String>,
    timeout_seconds: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ClientConfig {
    service: Option<ServiceReference>,
    url: Option<String>,
}

#[derive(Deserialize, Serialize, JsonSchema, Default, Debug, Clone)]
#[serde(default)]
pub struct ServiceReference {
    /// Service namespace.
    pub namespace: String,
    /// Service name.
    pub name: String,
    /// Service port (Kubernetes defaults it to 443).
    pub port: Option<u16>,
    /// URL path, e.g. "/inject".
    pub path: Option<String>,
}

/// The cluster's mutating webhook configurations.
#[derive(Serialize, JsonSchema, Debug)]
pub struct WebhooksFacts {
    /// Every MutatingWebhookConfiguration.
    pub configurations: Vec<ConfigurationFacts>,
    /// Sidecar injectors with at least one webhook, sorted: "istio", "traffic-director".
    pub injectors: Vec<String>,
    /// Istio's own injector is registered (the guide: it may run instead of Traffic Director's).
    pub istio_injector_active: bool,
    /// Traffic Director's injector is registered.
    pub traffic_director_injector_active: bool,
}

/// One MutatingWebhookConfiguration.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ConfigurationFacts {
    /// Configuration name.
    pub name: String,
    /// Its webhooks.
    pub webhooks: Vec<WebhookFacts>,
}

/// One webhook.
#[derive(Serialize, JsonSchema, Debug)]
pub struct WebhookFacts {
    /// Webhook name, e.g. "sidecar-injector.istio.io".
    pub name: String,
    /// The in-cluster service called, when the webhook uses one.
    pub service: Option<ServiceReference>,
    /// The URL called, when the webhook uses one instead of a service.
    pub url: Option<String>,
    /// "Fail" or "Ignore".
    pub failure_policy: Option<String>,
    /// Call timeout, seconds.
    pub timeout_seconds: Option<i64>,
    /// "traffic-director" when the service is in the `istio-control` namespace or a name
    /// mentions traffic-director / td-sidecar; otherwise "istio" when the webhook or its
    /// configuration is named like Istio's injector (`*sidecar-injector.istio.io`,
    /// `istio-sidecar-injector*`, `istio-revision-tag-*`) or its service is `istiod*` or in
    /// `istio-system`; null for other webhooks.
    pub injector: Option<String>,
}

/// Parses `kubectl get mutatingwebhookconfigurations -o json`.
pub fn parse_webhooks(text: &str) -> Result<WebhooksFacts, ParseError> {
    let raw: Vec<WebhookConfiguration> = list_or_one("mutating webhook configurations", text)?;
    let configurations: Vec<ConfigurationFacts> = raw
        .into_iter()
        .map(|c| {
            let config_name = c.metadata.name;
            let webhooks = c
                .webhooks
                .into_iter()
                .map(|w| WebhookFacts {
                    injector: injector_of(&config_name, &w).map(str::to_string),
                    name: w.name,
                    service: w.client_config.service,
                    url: w.client_config.url,
                    failure_policy: w.failure_policy,
                    timeout_seconds: w.timeout_seconds,
                })
                .collect();
            ConfigurationFacts {
                name: config_name,
                webhooks,
            }
        })
        .collect();
    let mut injectors: Vec<String> = configurations
        .iter()
        .flat_map(|c| c.webhooks.iter().filter_map(|w| w.injector.clone()))
        .collect();
    injectors.sort();
    injectors.dedup();
    Ok(WebhooksFacts {
        istio_injector_active: injectors.iter().any(|i| i == "istio"),
        traffic_director_injector_active: injectors.iter().any(|i| i == "traffic-director"),
        injectors,
        configurations,
    })
}

fn injector_of(config_name: &str, w: &Webhook) -> Option<&'static str> {
    let service = w.client_config.service.as_ref();
    let names = [
        config_name,
        w.name.as_str(),
        service.map_or("", |s| s.name.as_str()),
    ];
    let url = w.client_config.url.as_deref().unwrap_or("");
    let names_mention =
        |needle: &str| names.iter().any(|n| n.contains(needle)) || url.contains(needle);

    let in_td_namespace = service.is_some_and(|s| s.namespace == TD_INJECTOR_NAMESPACE)
        || url.contains(&format!(".{TD_INJECTOR_NAMESPACE}.svc"));
    if in_td_namespace || names_mention("traffic-director") || names_mention("td-sidecar") {
        return Some("traffic-director");
    }
    let istio_named = w.name.ends_with("sidecar-injector.istio.io")
        || config_name.starts_with("istio-sidecar-injector")
        || config_name.starts_with("istio-revision-tag-");
    let istio_service = service
        .is_some_and(|s| s.name.starts_with("istiod") || s.namespace == "istio-system")
        || url.contains(".istio-system.svc");
    (istio_named || istio_service).then_some("istio")
}
