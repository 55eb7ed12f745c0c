//! Probe plugin: Kubernetes objects through `kubectl … -o json`, for the guide's GKE
//! sections (pods not starting after auto-injection, connection refused after setup,
//! server-first protocols, Envoy logs).

pub mod access;
pub mod admission;
mod commands;
pub mod configmap;
pub mod events;
pub mod injector;
pub mod json;
pub mod logs;
pub mod pods;
mod scan;
pub mod webhook_failure;
pub mod webhooks;
pub mod workloads;

use access::Answer;
use commands::{
    CONTEXT, ConfigMapParams, DeploymentParams, EventsParams, ListParams, LogsParams, PodParams,
    Selector, WebhooksParams, events_argv, get_argv, list_argv, logs_argv, webhooks_argv,
};
use triage_sdk::register_probe;
use triage_sdk::{Action, Facts, Manifest, Params, Probe, ProbeError};

/// Declares `argv_for(context)` both without and with a trailing `--context {context}`.
fn with_context(mut action: Action, argv_for: impl Fn(Option<&str>) -> Vec<String>) -> Action {
    for context in [None, Some(CONTEXT)] {
        let argv = argv_for(context);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        action = action.exec(&argv);
    }
    action
}

fn list_action<O: triage_sdk::JsonSchema>(
    name: &str,
    resource: &'static str,
    description: &str,
) -> Action {
    let mut action = Action::new::<ListParams, O>(name, description);
    for selector in Selector::PATTERNS {
        action = with_context(action, |context| {
            list_argv(resource, context, "{namespace}", selector)
        });
    }
    action
}

fn bad_input(e: json::ParseError) -> ProbeError {
    ProbeError::bad_input(e.0)
}

/// Runs kubectl and parses what it printed; kubectl's own refusal (not found, forbidden,
/// unreachable) becomes the answer's `error`, a parse failure of its output a probe error.
fn answer<T: serde::Serialize>(
    argv: &[String],
    parse: impl FnOnce(&str) -> Result<T, json::ParseError>,
) -> Result<Facts, ProbeError> {
    let answer = match access::run(argv)? {
        Ok(text) => Answer::seen(parse(&text).map_err(bad_input)?),
        Err(e) => Answer::unseen(e),
    };
    Facts::new(&answer)
}

/// The probe; public so native tests can call `describe` and `run`.
pub struct KubectlProbe;

impl Probe for KubectlProbe {
    fn describe() -> Manifest {
        Manifest::new(
            "kubectl",
            env!("CARGO_PKG_VERSION"),
            "Kubernetes pods, workloads, events, logs, the sidecar injector's ConfigMap and webhooks, via kubectl -o json",
        )
        .action(list_action::<Answer<pods::PodsFacts>>(
            "pods",
            "pods",
            "Pods with readiness, containers, the Envoy sidecar (container or native sidecar) and its discovery address, and excluded outbound ports",
        ))
        .action(with_context(
            Action::new::<PodParams, Answer<pods::PodFacts>>("pod", "One pod, with the same facts as `pods`"),
            |context| get_argv("pod", context, "{pod}", "{namespace}"),
        ))
        .action(list_action::<Answer<workloads::WorkloadsFacts>>(
            "deployments",
            "deployments",
            "Deployments: desired, ready and available replicas",
        ))
        .action(with_context(
            Action::new::<DeploymentParams, Answer<workloads::WorkloadFacts>>(
                "deployment",
                "One Deployment: desired, ready and available replicas, conditions",
            ),
            |context| get_argv("deployment", context, "{deployment}", "{namespace}"),
        ))
        .action(list_action::<Answer<workloads::WorkloadsFacts>>(
            "replicasets",
            "replicasets",
            "ReplicaSets: replicas and the ReplicaFailure condition, with webhook failures parsed from it",
        ))
        .action(with_context(
            with_context(
                Action::new::<EventsParams, Answer<events::EventsFacts>>(
                    "events",
                    "Events of a namespace or all namespaces, with failed admission webhook calls parsed from the messages",
                ),
                |context| events_argv(context, Some("{namespace}")),
            ),
            |context| events_argv(context, None),
        ))
        .action(with_context(
            Action::new::<LogsParams, Answer<logs::LogFacts>>("logs", "The last lines of a container's log, unclassified"),
            |context| logs_argv(context, "{pod}", "{namespace}", "{container}", "{tail}"),
        ))
        .action(with_context(
            Action::new::<ConfigMapParams, Answer<configmap::ConfigMapFacts>>(
                "configmap",
                "A ConfigMap's keys and the sidecar injector settings in it: discovery address, network, project",
            ),
            |context| get_argv("configmap", context, "{name}", "{namespace}"),
        ))
        .action({
            let mut action = Action::new::<WebhooksParams, Answer<injector::InjectorsFacts>>(
                "injector",
                "The sidecar injector found from its webhook: the Service it calls, that Service's ready endpoints, the Deployment behind it, the ConfigMaps it mounts, and the discovery address, network and project they give the sidecars",
            );
            for context in [None, Some(CONTEXT)] {
                for argv in injector::argv_patterns(context) {
                    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                    action = action.exec(&argv);
                }
            }
            action
        })
        .action(with_context(
            Action::new::<admission::AdmissionParams, Answer<admission::AdmissionFacts>>(
                "admission",
                "A pod's admission, tried with a server-side dry run (`kubectl run triage-admission-check --dry-run=server`, nothing is created): admitted, with the sidecar the injector added, or refused, with the failed webhook calls classified as in `events`",
            ),
            |context| admission::admission_argv(context, "{namespace}", "{image}"),
        ))
        .action(with_context(
            Action::new::<WebhooksParams, Answer<webhooks::WebhooksFacts>>(
                "webhooks",
                "Mutating webhook configurations and which sidecar injectors (Istio, Traffic Director) are registered",
            ),
            webhooks_argv,
        ))
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        match action {
            "pods" => {
                let p: ListParams = params.parse()?;
                answer(&p.argv("pods")?, pods::parse_pods)
            }
            "pod" => {
                let p: PodParams = params.parse()?;
                let argv = get_argv("pod", p.context.as_deref(), &p.pod, &p.namespace);
                let query = pods::InterceptionQuery {
                    vip: p.vip.as_deref().filter(|v| !v.is_empty()),
                    port: p.port,
                };
                answer(&argv, |text| pods::parse_pod_with(text, query))
            }
            "deployments" | "replicasets" => {
                let p: ListParams = params.parse()?;
                answer(&p.argv(action)?, |text| {
                    workloads::parse_workloads(text, p.injector_webhooks.as_deref())
                })
            }
            "deployment" => {
                let p: DeploymentParams = params.parse()?;
                let argv = get_argv(
                    "deployment",
                    p.context.as_deref(),
                    &p.deployment,
                    &p.namespace,
                );
                answer(&argv, workloads::parse_workload)
            }
            "events" => {
                let p: EventsParams = params.parse()?;
                let namespace = (!p.all_namespaces).then_some(p.namespace.as_str());
                answer(&events_argv(p.context.as_deref(), namespace), |text| {
                    events::parse_events(text, p.injector_webhooks.as_deref())
                })
            }
            "logs" => {
                let p: LogsParams = params.parse()?;
                let tail = p.tail.to_string();
                let argv = logs_argv(
                    p.context.as_deref(),
                    &p.pod,
                    &p.namespace,
                    &p.container,
                    &tail,
                );
                answer(&argv, |text| Ok(logs::parse_logs(text)))
            }
            "configmap" => {
                let p: ConfigMapParams = params.parse()?;
                let argv = get_argv("configmap", p.context.as_deref(), &p.name, &p.namespace);
                answer(&argv, configmap::parse_configmap)
            }
            "webhooks" => {
                let p: WebhooksParams = params.parse()?;
                answer(
                    &webhooks_argv(p.context.as_deref()),
                    webhooks::parse_webhooks,
                )
            }
            "injector" => {
                let p: WebhooksParams = params.parse()?;
                let answer = match injector::discover(&mut access::run, p.context.as_deref())? {
                    Ok(facts) => Answer::seen(facts),
                    Err(e) => Answer::unseen(e),
                };
                Facts::new(&answer)
            }
            "admission" => {
                let p: admission::AdmissionParams = params.parse()?;
                let argv: Vec<String> = p.argv()?;
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                let out = triage_sdk::exec(&argv)?;
                let answer = admission::judge(
                    &p.namespace,
                    out.status,
                    &out.stdout_text(),
                    &out.stderr_text(),
                    p.injector_webhooks.as_deref(),
                )
                .map_err(bad_input)?;
                Facts::new(&answer)
            }
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

register_probe!(KubectlProbe);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_declares_every_command_with_and_without_context() {
        let manifest = format!("{:?}", KubectlProbe::describe());
        for needle in [
            r#"["kubectl", "get", "pods", "-n", "{namespace}", "-l", "app={app}", "-o", "json"]"#,
            r#"["kubectl", "get", "pods", "-n", "{namespace}", "-l", "{selector}", "-o", "json", "--context", "{context}"]"#,
            r#"["kubectl", "get", "events", "--all-namespaces", "-o", "json"]"#,
            r#"["kubectl", "logs", "-n", "{namespace}", "-c", "{container}", "--tail", "{tail}", "--", "{pod}"]"#,
            r#"["kubectl", "get", "pod", "-n", "{namespace}", "-o", "json", "--context", "{context}", "--", "{pod}"]"#,
            r#"["kubectl", "get", "configmap", "-n", "{namespace}", "-o", "json", "--", "{name}"]"#,
            r#"["kubectl", "get", "mutatingwebhookconfigurations", "-o", "json", "--context", "{context}"]"#,
            r#"["kubectl", "run", "triage-admission-check", "--image={image}", "--restart=Never", "--dry-run=server", "-n", "{namespace}", "-o", "json"]"#,
        ] {
            assert!(manifest.contains(needle), "missing {needle}");
        }
    }

    #[test]
    fn unknown_action_and_bad_params_are_refused() {
        assert!(matches!(
            KubectlProbe::run("nope", Params::from_json("{}")),
            Err(ProbeError::UnknownAction(_))
        ));
        let both = Params::from_json(r#"{"selector":"app=a","app":"a"}"#);
        assert!(matches!(
            KubectlProbe::run("pods", both),
            Err(ProbeError::InvalidParams(_))
        ));
        let unknown = Params::from_json(r#"{"namespce":"x"}"#);
        assert!(matches!(
            KubectlProbe::run("pods", unknown),
            Err(ProbeError::InvalidParams(_))
        ));
    }
}
