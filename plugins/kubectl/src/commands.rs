//! Each action's params and the kubectl argv they turn into. `describe` declares the same
//! argv built from `{param}` placeholders, so what is declared is exactly what runs.

use crate::webhook_failure::InjectorWebhookRef;
use serde::Deserialize;
use triage_sdk::{JsonSchema, ProbeError};

/// Placeholders for `describe`.
pub const CONTEXT: &str = "{context}";

fn default_namespace() -> String {
    "default".into()
}
fn default_injector_namespace() -> String {
    "istio-control".into()
}
fn default_injector_configmap() -> String {
    "istio-sidecar-injector".into()
}
fn default_container() -> String {
    "envoy".into()
}
fn default_tail() -> u32 {
    500
}

/// `kubectl ARGS… [--context C] [-- NAMES…]`. The context follows the options so the verb
/// stays second, where operator policies match it (`[kubectl, get, …]`); object names come
/// last, after `--`, so that no name (a pod called `--kubeconfig=…`) is read as an option.
pub fn kubectl(context: Option<&str>, args: &[&str], names: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = std::iter::once("kubectl")
        .chain(args.iter().copied())
        .map(str::to_string)
        .collect();
    if let Some(context) = context {
        argv.extend(["--context".to_string(), context.to_string()]);
    }
    if !names.is_empty() {
        argv.push("--".to_string());
        argv.extend(names.iter().map(|n| n.to_string()));
    }
    argv
}

/// How a list is narrowed: nothing, a label selector, or `app=NAME`.
#[derive(Clone, Copy)]
pub enum Selector<'a> {
    All,
    Labels(&'a str),
    App(&'a str),
}

impl Selector<'_> {
    /// Every form, with placeholders, for `describe`.
    pub const PATTERNS: [Selector<'static>; 3] = [
        Selector::All,
        Selector::Labels("{selector}"),
        Selector::App("{app}"),
    ];
}

/// `kubectl get RESOURCE -n NS [-l SELECTOR] -o json`.
pub fn list_argv(
    resource: &str,
    context: Option<&str>,
    namespace: &str,
    selector: Selector,
) -> Vec<String> {
    let label;
    let mut args = vec!["get", resource, "-n", namespace];
    match selector {
        Selector::All => {}
        Selector::Labels(s) => args.extend(["-l", s]),
        Selector::App(app) => {
            label = format!("app={app}");
            args.extend(["-l", label.as_str()]);
        }
    }
    args.extend(["-o", "json"]);
    kubectl(context, &args, &[])
}

/// Params of `pods`, `deployments` and `replicasets`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Namespace to list.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
    /// Label selector, e.g. "app=busybox" or "run=client".
    #[serde(default)]
    pub selector: Option<String>,
    /// Shorthand for the selector "app=APP" (the runbooks' `app` input); not with `selector`.
    #[serde(default)]
    pub app: Option<String>,
    /// The sidecar injector's registered webhooks (the `injector` action's `webhooks`):
    /// failed webhook calls are marked `injector` when they match one by name and service.
    /// Without it, by the webhook's name alone.
    #[serde(default)]
    pub injector_webhooks: Option<Vec<InjectorWebhookRef>>,
}

impl ListParams {
    pub fn argv(&self, resource: &str) -> Result<Vec<String>, ProbeError> {
        let selector = match (&self.selector, &self.app) {
            (Some(_), Some(_)) => {
                return Err(ProbeError::invalid_params(
                    "give `selector` or `app`, not both",
                ));
            }
            (Some(s), None) => Selector::Labels(s),
            (None, Some(app)) => Selector::App(app),
            (None, None) => Selector::All,
        };
        Ok(list_argv(
            resource,
            self.context.as_deref(),
            &self.namespace,
            selector,
        ))
    }
}

/// `kubectl get KIND -n NS -o json -- NAME`.
pub fn get_argv(kind: &str, context: Option<&str>, name: &str, namespace: &str) -> Vec<String> {
    kubectl(
        context,
        &["get", kind, "-n", namespace, "-o", "json"],
        &[name],
    )
}

/// Params of `pod`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodParams {
    /// Pod name.
    pub pod: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// A destination address: `interception.vip_intercepted` says whether the pod's
    /// connections to it go to the proxy.
    #[serde(default)]
    pub vip: Option<String>,
    /// A destination port (with `vip`, or alone: to any intercepted destination).
    #[serde(default)]
    pub port: Option<u16>,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// Params of `deployment`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentParams {
    /// Deployment name, e.g. "busybox".
    pub deployment: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// Params of `events`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Namespace (ignored with `all_namespaces`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Every namespace, like the guide's `kubectl get events --all-namespaces`.
    #[serde(default)]
    pub all_namespaces: bool,
    /// The sidecar injector's registered webhooks (the `injector` action's `webhooks`):
    /// failed webhook calls are marked `injector` when they match one by name and service.
    /// Without it, by the webhook's name alone.
    #[serde(default)]
    pub injector_webhooks: Option<Vec<InjectorWebhookRef>>,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// `kubectl get events (-n NS | --all-namespaces) -o json`.
pub fn events_argv(context: Option<&str>, namespace: Option<&str>) -> Vec<String> {
    match namespace {
        Some(ns) => kubectl(context, &["get", "events", "-n", ns, "-o", "json"], &[]),
        None => kubectl(
            context,
            &["get", "events", "--all-namespaces", "-o", "json"],
            &[],
        ),
    }
}

/// Params of `logs`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Pod name.
    pub pod: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Container: "envoy" (Traffic Director's injector) or "istio-proxy".
    #[serde(default = "default_container")]
    pub container: String,
    /// How many lines from the end.
    #[serde(default = "default_tail")]
    pub tail: u32,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// `kubectl logs -n NS -c CONTAINER --tail N -- POD`.
pub fn logs_argv(
    context: Option<&str>,
    pod: &str,
    namespace: &str,
    container: &str,
    tail: &str,
) -> Vec<String> {
    kubectl(
        context,
        &["logs", "-n", namespace, "-c", container, "--tail", tail],
        &[pod],
    )
}

/// Params of `configmap`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapParams {
    /// ConfigMap name; Traffic Director's injector config by default.
    #[serde(default = "default_injector_configmap")]
    pub name: String,
    /// Namespace; where Traffic Director's injector is installed by default.
    #[serde(default = "default_injector_namespace")]
    pub namespace: String,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// Params of `webhooks`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhooksParams {
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// `kubectl get mutatingwebhookconfigurations -o json`.
pub fn webhooks_argv(context: Option<&str>) -> Vec<String> {
    kubectl(
        context,
        &["get", "mutatingwebhookconfigurations", "-o", "json"],
        &[],
    )
}
