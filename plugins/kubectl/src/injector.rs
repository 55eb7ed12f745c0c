//! The sidecar injector, found from what the cluster itself says rather than from a
//! ConfigMap name the user must know: the mutating webhook that injects sidecars → the
//! Service it calls → that Service's endpoints (is an injector pod ready?) → the Deployment
//! whose pods the Service selects → the ConfigMaps that Deployment mounts → the discovery
//! address, VPC network and project those ConfigMaps give the sidecars.
//!
//! Injectors keep their settings in different ConfigMaps: Traffic Director's injector specs
//! (`specs/01-configmap.yaml`), Istio 1.5-era injectors in `istio-control` (`injector-mesh`
//! for the mesh config beside `istio-sidecar-injector` for the template), Istio's own in
//! `istio-system`. Reading the ones the injector's Deployment mounts finds each of them.

use crate::access::KubectlError;
use crate::configmap::{ConfigMapFacts, parse_configmap};
use crate::json::{ParseError, from_json, list_or_one};
use crate::pods::{ObjectMeta, TRAFFIC_DIRECTOR_ADDRESS};
use crate::webhook_failure::InjectorWebhookRef;
use crate::webhooks::{WebhooksFacts, parse_webhooks};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use triage_sdk::{JsonSchema, ProbeError};

/// At most this many injector services are followed (each costs four kubectl calls).
const MAX_INJECTORS: usize = 4;
/// At most this many mounted ConfigMaps are read per injector.
const MAX_CONFIGMAPS: usize = 8;

/// Runs one kubectl argv: its output, or kubectl's refusal.
pub type Kubectl<'a> =
    dyn FnMut(&[String]) -> Result<Result<String, KubectlError>, ProbeError> + 'a;

/// Every sidecar injector the webhooks name, followed to its configuration.
#[derive(Serialize, JsonSchema, Debug, Default)]
pub struct InjectorsFacts {
    /// A sidecar injector webhook is registered.
    pub found: bool,
    /// The injector the runbooks judge: Traffic Director's when one is registered, else the
    /// first one found; null when none is registered.
    pub injector: Option<Injector>,
    /// Every injector found (one per webhook service or URL), Traffic Director's first.
    pub injectors: Vec<Injector>,
    /// Every registered injector webhook, to match failed webhook calls against (the
    /// `events` and `replicasets` actions' `injector_webhooks` param).
    pub webhooks: Vec<InjectorWebhookRef>,
}

/// One sidecar injector.
#[derive(Serialize, JsonSchema, Debug, Clone, Default)]
pub struct Injector {
    /// "traffic-director" (its ConfigMaps point the sidecars at trafficdirector.googleapis.com
    /// or set TRAFFICDIRECTOR_ values), "istio" (they point elsewhere, e.g. istiod), or, when
    /// no ConfigMap could be read, what the webhook's name and namespace suggest.
    pub kind: String,
    /// How `kind` was decided: "configmap" or "webhook".
    pub kind_from: String,
    /// The webhook(s) calling it, as "CONFIGURATION/WEBHOOK".
    pub webhooks: Vec<String>,
    /// The MutatingWebhookConfigurations those webhooks are in (what `kubectl delete
    /// mutatingwebhookconfiguration` takes).
    pub configurations: Vec<String>,
    /// The Service the webhooks call (null for a URL webhook).
    pub service: Option<ServiceFacts>,
    /// The URL the webhooks call instead of a Service.
    pub url: Option<String>,
    /// Ready and not-ready addresses behind the Service (null when not read).
    pub endpoints: Option<EndpointsFacts>,
    /// The Deployment whose pods the Service selects (null when none was found).
    pub deployment: Option<DeploymentFacts>,
    /// The ConfigMaps read: those the Deployment mounts, else every ConfigMap of the
    /// injector's namespace that holds injector settings.
    pub configmaps: Vec<ConfigMapFacts>,
    /// Whether `configmaps` are the Deployment's mounts ("mounted") or a scan of the
    /// namespace ("namespace").
    pub configmaps_from: Option<String>,
    /// Every ConfigMap the Deployment mounts was read (and the Deployment was found): a
    /// setting absent from them is really not set. False when one could not be read, so a
    /// missing setting is unknown, not unset.
    pub configmaps_complete: bool,
    /// The first literal discovery address in those ConfigMaps.
    pub discovery_address: Option<String>,
    /// The ConfigMap it is in.
    pub discovery_address_source: Option<String>,
    /// The discovery address is only a template (`{{ .ProxyConfig.DiscoveryAddress }}`) in
    /// every ConfigMap read: the injector computes it, none could be read literally.
    pub discovery_address_templated: bool,
    /// `discovery_address` is trafficdirector.googleapis.com:443.
    pub discovery_address_is_traffic_director: bool,
    /// TRAFFICDIRECTOR_NETWORK_NAME (or a node id's network) in those ConfigMaps; null when
    /// no ConfigMap sets it.
    pub network: Option<String>,
    /// The ConfigMap it is in.
    pub network_source: Option<String>,
    /// TRAFFICDIRECTOR_GCP_PROJECT_NUMBER (or a node id's project); null when none sets it.
    pub project: Option<String>,
    /// The ConfigMap it is in.
    pub project_source: Option<String>,
    /// What could not be read along the way, and kubectl's reason.
    pub unseen: Vec<Unseen>,
}

/// The injector's Service.
#[derive(Serialize, JsonSchema, Debug, Clone, Default)]
pub struct ServiceFacts {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The Service exists.
    pub found: bool,
    /// Its pod selector.
    pub selector: BTreeMap<String, String>,
}

/// Addresses behind a Service.
#[derive(Serialize, JsonSchema, Debug, Clone, Default)]
pub struct EndpointsFacts {
    /// Ready pod addresses: 0 means no injector pod can answer the webhook.
    pub ready: usize,
    /// Addresses of pods that are not ready.
    pub not_ready: usize,
}

/// The injector's Deployment.
#[derive(Serialize, JsonSchema, Debug, Clone, Default)]
pub struct DeploymentFacts {
    /// Name.
    pub name: String,
    /// Desired replicas.
    pub replicas: i64,
    /// Ready replicas.
    pub ready_replicas: i64,
    /// kubectl's READY column.
    pub ready: String,
    /// The ConfigMaps its pods mount.
    pub configmaps: Vec<String>,
}

/// Something the discovery could not read.
#[derive(Serialize, JsonSchema, Debug, Clone)]
pub struct Unseen {
    /// What, e.g. "configmaps in istio-control".
    pub what: String,
    /// Why.
    pub error: KubectlError,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Service {
    #[serde(deserialize_with = "crate::json::nullable")]
    spec: ServiceSpec,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServiceSpec {
    #[serde(deserialize_with = "crate::json::nullable")]
    selector: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Endpoints {
    #[serde(deserialize_with = "crate::json::nullable")]
    subsets: Vec<Subset>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Subset {
    #[serde(deserialize_with = "crate::json::nullable")]
    addresses: Vec<serde::de::IgnoredAny>,
    #[serde(deserialize_with = "crate::json::nullable")]
    not_ready_addresses: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Deployment {
    #[serde(deserialize_with = "crate::json::nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "crate::json::nullable")]
    spec: DeploymentSpec,
    #[serde(deserialize_with = "crate::json::nullable")]
    status: DeploymentStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeploymentSpec {
    replicas: Option<i64>,
    #[serde(deserialize_with = "crate::json::nullable")]
    template: PodTemplate,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct DeploymentStatus {
    ready_replicas: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PodTemplate {
    #[serde(deserialize_with = "crate::json::nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "crate::json::nullable")]
    spec: TemplateSpec,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TemplateSpec {
    #[serde(deserialize_with = "crate::json::nullable")]
    volumes: Vec<Volume>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Volume {
    config_map: Option<ConfigMapVolume>,
    projected: Option<Projected>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigMapVolume {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Projected {
    #[serde(deserialize_with = "crate::json::nullable")]
    sources: Vec<ProjectedSource>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ProjectedSource {
    config_map: Option<ConfigMapVolume>,
}

/// The argv shapes `discover` runs, with `*` where a name found in the cluster goes; the
/// action declares exactly these.
pub fn argv_patterns(context: Option<&str>) -> Vec<Vec<String>> {
    let named: &[&str] = &["*"];
    [
        (
            vec!["get", "mutatingwebhookconfigurations", "-o", "json"],
            &[][..],
        ),
        (vec!["get", "service", "-n", "*", "-o", "json"], named),
        (vec!["get", "endpoints", "-n", "*", "-o", "json"], named),
        (vec!["get", "deployments", "-n", "*", "-o", "json"], &[]),
        (vec!["get", "configmaps", "-n", "*", "-o", "json"], &[]),
    ]
    .iter()
    .map(|(args, names)| crate::commands::kubectl(context, args, names))
    .collect()
}

/// A Kubernetes object name or namespace (DNS-1123 subdomain). Names come from the cluster
/// (or a bundle) and become kubectl operands, so anything else — an option such as
/// `--kubeconfig=…`, a path, a control character — is refused before it is run.
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// Follows every injector webhook to its configuration. `Ok(Err(_))` when the webhook
/// configurations themselves could not be listed.
pub fn discover(
    kubectl: &mut Kubectl,
    context: Option<&str>,
) -> Result<Result<InjectorsFacts, KubectlError>, ProbeError> {
    let argv = crate::commands::webhooks_argv(context);
    let text = match kubectl(&argv)? {
        Ok(text) => text,
        Err(e) => return Ok(Err(e)),
    };
    let webhooks = parse_webhooks(&text).map_err(bad_input)?;
    let mut facts = InjectorsFacts::default();
    let mut groups: Vec<Injector> = Vec::new();
    for (config, hook) in injector_webhooks(&webhooks) {
        facts.webhooks.push(InjectorWebhookRef {
            name: hook.name.clone(),
            service_namespace: hook.service.as_ref().map(|s| s.namespace.clone()),
            service_name: hook.service.as_ref().map(|s| s.name.clone()),
            url: hook.url.clone(),
        });
        let label = format!("{config}/{}", hook.name);
        let existing = groups
            .iter_mut()
            .find(|g| match (&g.service, &hook.service) {
                (Some(a), Some(b)) => a.namespace == b.namespace && a.name == b.name,
                (None, None) => g.url == hook.url,
                _ => false,
            });
        match existing {
            Some(g) => {
                g.webhooks.push(label);
                if !g.configurations.iter().any(|c| c == config) {
                    g.configurations.push(config.to_string());
                }
            }
            None => groups.push(Injector {
                kind: hook.injector.clone().unwrap_or_else(|| "unknown".into()),
                kind_from: "webhook".into(),
                webhooks: vec![label],
                configurations: vec![config.to_string()],
                service: hook.service.as_ref().map(|s| ServiceFacts {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    ..Default::default()
                }),
                url: hook.url.clone(),
                ..Default::default()
            }),
        }
    }
    facts.found = !groups.is_empty();
    for mut injector in groups.into_iter().take(MAX_INJECTORS) {
        follow(&mut injector, kubectl, context)?;
        facts.injectors.push(injector);
    }
    // Traffic Director's first: it is the one the guide's sections are about.
    facts
        .injectors
        .sort_by_key(|i| i.kind != "traffic-director");
    facts.injector = facts.injectors.first().cloned();
    Ok(Ok(facts))
}

fn bad_input(e: ParseError) -> ProbeError {
    ProbeError::bad_input(e.0)
}

/// Webhooks that inject sidecars: those the webhooks parser attributes to an injector, and
/// any other named like one.
fn injector_webhooks(webhooks: &WebhooksFacts) -> Vec<(&str, &crate::webhooks::WebhookFacts)> {
    webhooks
        .configurations
        .iter()
        .flat_map(|c| c.webhooks.iter().map(move |w| (c.name.as_str(), w)))
        .filter(|(_, w)| w.injector.is_some() || crate::webhook_failure::is_injector_name(&w.name))
        .collect()
}

fn follow(
    injector: &mut Injector,
    kubectl: &mut Kubectl,
    context: Option<&str>,
) -> Result<(), ProbeError> {
    let Some(service) = injector.service.clone() else {
        return Ok(());
    };
    if !is_object_name(&service.namespace) || !is_object_name(&service.name) {
        injector.unseen.push(Unseen {
            what: format!("service {:?} in {:?}", service.name, service.namespace),
            error: KubectlError {
                kind: "other".into(),
                message:
                    "refused: the webhook names a service that is not a Kubernetes object name"
                        .into(),
                status: 0,
            },
        });
        return Ok(());
    }
    let ns = service.namespace.as_str();
    let cmd = |args: &[&str], names: &[&str]| crate::commands::kubectl(context, args, names);

    // The Service and what it selects.
    let mut selector = BTreeMap::new();
    match kubectl(&cmd(
        &["get", "service", "-n", ns, "-o", "json"],
        &[&service.name],
    ))? {
        Ok(text) => {
            let svc: Service = from_json("a service", &text).map_err(bad_input)?;
            selector = svc.spec.selector;
            if let Some(s) = injector.service.as_mut() {
                s.found = true;
                s.selector = selector.clone();
            }
        }
        Err(e) if e.kind == "not-found" => {}
        Err(e) => injector.unseen.push(Unseen {
            what: format!("service {} in {ns}", service.name),
            error: e,
        }),
    }

    // Whether an injector pod is ready behind it.
    match kubectl(&cmd(
        &["get", "endpoints", "-n", ns, "-o", "json"],
        &[&service.name],
    ))? {
        Ok(text) => {
            let ep: Endpoints = from_json("endpoints", &text).map_err(bad_input)?;
            injector.endpoints = Some(EndpointsFacts {
                ready: ep.subsets.iter().map(|s| s.addresses.len()).sum(),
                not_ready: ep.subsets.iter().map(|s| s.not_ready_addresses.len()).sum(),
            });
        }
        // No Endpoints object: nothing behind the Service.
        Err(e) if e.kind == "not-found" => injector.endpoints = Some(EndpointsFacts::default()),
        Err(e) => injector.unseen.push(Unseen {
            what: format!("endpoints {} in {ns}", service.name),
            error: e,
        }),
    }

    // The Deployment whose pod template the Service's selector matches.
    let mut mounted: Option<Vec<String>> = None;
    if !selector.is_empty() {
        match kubectl(&cmd(&["get", "deployments", "-n", ns, "-o", "json"], &[]))? {
            Ok(text) => {
                let deployments: Vec<Deployment> =
                    list_or_one("deployments", &text).map_err(bad_input)?;
                let found = deployments.into_iter().find(|d| {
                    let labels = &d.spec.template.metadata.labels;
                    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                });
                if let Some(d) = found {
                    let configmaps = mounted_configmaps(&d);
                    let replicas = d.spec.replicas.unwrap_or(1);
                    injector.deployment = Some(DeploymentFacts {
                        name: d.metadata.name,
                        replicas,
                        ready_replicas: d.status.ready_replicas,
                        ready: format!("{}/{}", d.status.ready_replicas, replicas),
                        configmaps: configmaps.clone(),
                    });
                    mounted = Some(configmaps);
                }
            }
            Err(e) => injector.unseen.push(Unseen {
                what: format!("deployments in {ns}"),
                error: e,
            }),
        }
    }

    // The ConfigMaps: those mounted, else every one of the namespace that holds settings.
    match kubectl(&cmd(&["get", "configmaps", "-n", ns, "-o", "json"], &[]))? {
        Ok(text) => {
            let all: Vec<serde_json::Value> =
                list_or_one("configmaps", &text).map_err(bad_input)?;
            let mut read = Vec::new();
            for cm in all {
                let name = cm["metadata"]["name"].as_str().unwrap_or("").to_string();
                let facts = parse_configmap(&cm.to_string()).map_err(bad_input)?;
                let keep = match &mounted {
                    Some(names) => names.contains(&name),
                    None => holds_injector_settings(&facts),
                };
                if keep && read.len() < MAX_CONFIGMAPS {
                    read.push(facts);
                }
            }
            // Mounted ones in the order the Deployment lists them.
            if let Some(names) = &mounted {
                read.sort_by_key(|c| names.iter().position(|n| *n == c.name));
                let missing: Vec<&String> = names
                    .iter()
                    .filter(|n| !read.iter().any(|c| &c.name == *n))
                    .collect();
                for name in missing {
                    injector.unseen.push(Unseen {
                        what: format!("configmap {name} in {ns}"),
                        error: KubectlError {
                            kind: "not-found".into(),
                            message: format!(
                                "the Deployment mounts the ConfigMap {name}, which does not exist"
                            ),
                            status: 0,
                        },
                    });
                }
            }
            injector.configmaps_from = Some(
                if mounted.is_some() {
                    "mounted"
                } else {
                    "namespace"
                }
                .into(),
            );
            injector.configmaps_complete = mounted
                .as_ref()
                .is_some_and(|names| names.iter().all(|n| read.iter().any(|c| &c.name == n)));
            injector.configmaps = read;
        }
        Err(e) => injector.unseen.push(Unseen {
            what: format!("configmaps in {ns}"),
            error: e,
        }),
    }
    settle_settings(injector);
    Ok(())
}

fn mounted_configmaps(d: &Deployment) -> Vec<String> {
    let mut names = Vec::new();
    for v in &d.spec.template.spec.volumes {
        if let Some(cm) = &v.config_map {
            names.push(cm.name.clone());
        }
        if let Some(p) = &v.projected {
            names.extend(
                p.sources
                    .iter()
                    .filter_map(|s| s.config_map.as_ref().map(|c| c.name.clone())),
            );
        }
    }
    names.dedup();
    names
}

fn holds_injector_settings(c: &ConfigMapFacts) -> bool {
    c.discovery_address.is_some()
        || c.discovery_address_templated
        || c.network.is_some()
        || c.project.is_some()
}

/// The injector's settings: the first ConfigMap (in mount order) that sets each one.
fn settle_settings(injector: &mut Injector) {
    let first = |get: &dyn Fn(&ConfigMapFacts) -> Option<String>| {
        injector
            .configmaps
            .iter()
            .find_map(|c| get(c).map(|v| (v, c.name.clone())))
            .unzip()
    };
    (
        injector.discovery_address,
        injector.discovery_address_source,
    ) = first(&|c| c.discovery_address.clone());
    (injector.network, injector.network_source) = first(&|c| c.network.clone());
    (injector.project, injector.project_source) = first(&|c| c.project.clone());
    injector.discovery_address_templated = injector.discovery_address.is_none()
        && injector
            .configmaps
            .iter()
            .any(|c| c.discovery_address_templated);
    injector.discovery_address_is_traffic_director =
        injector.discovery_address.as_deref() == Some(TRAFFIC_DIRECTOR_ADDRESS);
    // A literal discovery address says whose sidecars these are; without one, the
    // Traffic Director settings (TRAFFICDIRECTOR_*) do.
    let kind = match injector.discovery_address.as_deref() {
        Some(address) if address.starts_with("trafficdirector.") => Some("traffic-director"),
        Some(_) => Some("istio"),
        None => injector
            .configmaps
            .iter()
            .any(|c| c.injector == "traffic-director")
            .then_some("traffic-director"),
    };
    if let Some(kind) = kind {
        injector.kind = kind.into();
        injector.kind_from = "configmap".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        for ok in [
            "istio-control",
            "istio-sidecar-injector",
            "a",
            "td.injector-1",
        ] {
            assert!(is_object_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-n",
            "--kubeconfig=/tmp/x",
            "a/b",
            "A",
            "x\n",
            "a-",
            ".a",
            &"a".repeat(254),
        ] {
            assert!(!is_object_name(bad), "{bad:?}");
        }
    }
}
