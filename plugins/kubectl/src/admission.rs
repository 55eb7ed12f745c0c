//! The admission of a pod, tried with a **server-side dry run**: `kubectl run
//! triage-admission-check --image=IMAGE --restart=Never --dry-run=server -n NAMESPACE -o json`.
//!
//! Why: a standalone pod (`kubectl apply` of a Pod, `kubectl run`) that the sidecar injector's
//! webhook blocks is refused by the API server at once, and the error (`Error from server
//! (InternalError): Internal error occurred: failed calling webhook
//! "sidecar-injector.istio.io": … context deadline exceeded`) is printed to the user's terminal
//! and kept in no object or event. A dry run makes the same admission call again: the API
//! server runs the mutating and validating admission webhooks (those whose `sideEffects` are
//! None or NoneOnDryRun, as the injectors' are) and answers with the pod as it would have been
//! stored, with the injected sidecar, or with the same refusal; nothing is persisted.
//!
//! The verb is `run` (a write verb): the request is visible in the cluster's audit log, needs
//! RBAC `create` on pods, and is refused outright by the API server when a matching webhook
//! declares side effects (`sideEffects: Unknown/Some`). Each of those is said, never guessed.

use crate::access::{Answer, KubectlError};
use crate::commands::kubectl;
use crate::events::WebhookFailure;
use crate::json::ParseError;
use crate::pods::{SidecarFacts, parse_pod};
use crate::webhook_failure::{InjectorWebhookRef, mark_injector_calls, parse_webhook_failures};
use serde::{Deserialize, Serialize};
use triage_sdk::{JsonSchema, ProbeError};

/// The name of the pod that is never created. Fixed, so no input is ever an operand of `run`
/// (after `--`, `kubectl run` reads the container's command, not the name).
pub const CHECK_POD: &str = "triage-admission-check";

/// The longest image reference taken (a digest reference is ~150 characters).
const MAX_IMAGE: usize = 255;

fn default_namespace() -> String {
    "default".into()
}
fn default_image() -> String {
    "busybox".into()
}

/// Params of `admission`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmissionParams {
    /// Namespace to try the pod in: the application's (its namespace's labels decide whether
    /// the injector's webhook applies).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The check pod's image; never pulled (nothing is created). Give one the cluster's
    /// image policy admits if it has one.
    #[serde(default = "default_image")]
    pub image: String,
    /// The sidecar injector's registered webhooks (the `injector` action's `webhooks`): a
    /// failed call is marked `injector` when it matches one by name and service. Without it,
    /// by the webhook's name alone.
    #[serde(default)]
    pub injector_webhooks: Option<Vec<InjectorWebhookRef>>,
    /// kubeconfig context; the current one when unset.
    #[serde(default)]
    pub context: Option<String>,
}

/// `kubectl run triage-admission-check --image=IMAGE --restart=Never --dry-run=server -n NS
/// -o json`. `--dry-run=server` is part of the one shape declared and granted: no form of
/// this action creates anything.
pub fn admission_argv(context: Option<&str>, namespace: &str, image: &str) -> Vec<String> {
    let image = format!("--image={image}");
    kubectl(
        context,
        &[
            "run",
            CHECK_POD,
            &image,
            "--restart=Never",
            "--dry-run=server",
            "-n",
            namespace,
            "-o",
            "json",
        ],
        &[],
    )
}

/// A Kubernetes namespace name (an RFC 1123 label): nothing else reaches `-n`.
fn check_namespace(namespace: &str) -> Result<(), ProbeError> {
    let ok = !namespace.is_empty()
        && namespace.len() <= 63
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !namespace.starts_with('-')
        && !namespace.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ProbeError::invalid_params(format!(
            "namespace {namespace:?} is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)"
        )))
    }
}

/// An image reference's characters (`registry/path:tag@sha256:…`): no option, no space, no
/// control character, bounded.
fn check_image(image: &str) -> Result<(), ProbeError> {
    let ok = !image.is_empty()
        && image.len() <= MAX_IMAGE
        && image.as_bytes()[0].is_ascii_alphanumeric()
        && image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ProbeError::invalid_params(format!(
            "image {:?} is not an image reference (letters, digits and . _ - / : @, starting with a letter or digit, at most {MAX_IMAGE})",
            image.chars().take(80).collect::<String>()
        )))
    }
}

impl AdmissionParams {
    /// The argv, once namespace and image are known to be a name and an image reference.
    pub fn argv(&self) -> Result<Vec<String>, ProbeError> {
        check_namespace(&self.namespace)?;
        check_image(&self.image)?;
        Ok(admission_argv(
            self.context.as_deref(),
            &self.namespace,
            &self.image,
        ))
    }
}

/// What the API server said to the dry run.
#[derive(Serialize, JsonSchema, Debug)]
pub struct AdmissionFacts {
    /// The namespace the pod was tried in.
    pub namespace: String,
    /// The API server admitted the pod (nothing was created: a dry run).
    pub admitted: bool,
    /// The admitted pod carries an Envoy sidecar (`envoy` or `istio-proxy`, a container or a
    /// native sidecar) that the check pod did not have: a sidecar injector's webhook was
    /// called and mutated it. False when refused.
    pub injected: bool,
    /// The injected sidecar, as the `pod` action reports it.
    pub sidecar: Option<SidecarFacts>,
    /// The admitted pod's containers and init containers, by name.
    pub containers: Vec<String>,
    /// The admitted pod's `sidecar.istio.io/status` annotation (the injector's record of what
    /// it added), when present.
    pub injection_status: Option<String>,
    /// The failed admission webhook calls that refused the pod, classified as the events'
    /// are (`cause`, `timeout`, `injector`); empty when admitted.
    pub webhook_failures: Vec<WebhookFailure>,
    /// The API server's refusal, as kubectl printed it (first error line, at most 400
    /// characters); null when admitted.
    pub message: Option<String>,
}

/// Reads kubectl's answer to the dry run: the admitted pod, a refusal by failed webhook calls
/// (facts: what the step judges), or any other refusal (`error`: RBAC, a webhook without
/// dry-run support, a policy that denies the check pod, an unreachable API server).
pub fn judge(
    namespace: &str,
    status: i32,
    stdout: &str,
    stderr: &str,
    injector: Option<&[InjectorWebhookRef]>,
) -> Result<Answer<AdmissionFacts>, ParseError> {
    if status == 0 {
        let pod = parse_pod(stdout)?;
        let containers = pod
            .init_containers
            .iter()
            .chain(&pod.containers)
            .map(|c| c.name.clone())
            .collect();
        return Ok(Answer::seen(AdmissionFacts {
            namespace: namespace.to_string(),
            admitted: true,
            injected: pod.sidecar.is_some(),
            injection_status: pod.annotations.get("sidecar.istio.io/status").cloned(),
            sidecar: pod.sidecar,
            containers,
            webhook_failures: Vec::new(),
            message: None,
        }));
    }
    let mut calls = parse_webhook_failures(stderr);
    if calls.is_empty() {
        return Ok(Answer::unseen(KubectlError::from_stderr(status, stderr)));
    }
    mark_injector_calls(&mut calls, injector);
    let refusal = KubectlError::from_stderr(status, stderr);
    Ok(Answer::seen(AdmissionFacts {
        namespace: namespace.to_string(),
        admitted: false,
        injected: false,
        sidecar: None,
        containers: Vec::new(),
        injection_status: None,
        webhook_failures: calls
            .into_iter()
            .map(|call| WebhookFailure {
                call,
                object: format!("Pod/{CHECK_POD} (server-side dry run)"),
                namespace: Some(namespace.to_string()),
                count: 1,
                last_timestamp: None,
            })
            .collect(),
        message: Some(refusal.message),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: &str = "Error from server (InternalError): Internal error occurred: failed calling webhook \"sidecar-injector.istio.io\": failed to call webhook: Post \"https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s\": context deadline exceeded\n";

    fn params(json: &str) -> AdmissionParams {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_argv_is_the_dry_run_and_only_it() {
        let argv = params("{}").argv().unwrap();
        assert_eq!(
            argv,
            [
                "kubectl",
                "run",
                "triage-admission-check",
                "--image=busybox",
                "--restart=Never",
                "--dry-run=server",
                "-n",
                "default",
                "-o",
                "json"
            ]
        );
        let argv = params(
            r#"{"namespace":"shop","image":"gcr.io/p/app@sha256:ab12","context":"gke_p_z_c"}"#,
        )
        .argv()
        .unwrap();
        assert_eq!(argv[3], "--image=gcr.io/p/app@sha256:ab12");
        assert_eq!(&argv[6..8], ["-n", "shop"]);
        assert_eq!(&argv[10..], ["--context", "gke_p_z_c"]);
    }

    /// Hostile values: an option, a control character, a space, a gigabyte-ish string. None
    /// becomes an argument.
    #[test]
    fn hostile_namespaces_and_images_are_refused() {
        let long_namespace = "a".repeat(64);
        let long_image = "b".repeat(10_000);
        for namespace in [
            "-n",
            "--as=system:admin",
            "--kubeconfig=/tmp/kc",
            "default\n--as=x",
            "default\u{1b}[2J",
            "Default",
            "a b",
            "",
            "x-",
            long_namespace.as_str(),
        ] {
            let p = AdmissionParams {
                namespace: namespace.into(),
                image: "busybox".into(),
                injector_webhooks: None,
                context: None,
            };
            let err = p.argv().unwrap_err();
            assert!(
                matches!(err, ProbeError::InvalidParams(ref m) if m.contains("namespace")),
                "{namespace:?}: {err:?}"
            );
        }
        for image in [
            "--overrides={\"spec\":{\"hostNetwork\":true}}",
            "-x",
            "busybox --privileged",
            "busybox\n",
            "busy\u{0}box",
            "",
            long_image.as_str(),
        ] {
            let p = AdmissionParams {
                namespace: "default".into(),
                image: image.into(),
                injector_webhooks: None,
                context: None,
            };
            let err = p.argv().unwrap_err();
            assert!(
                matches!(err, ProbeError::InvalidParams(ref m) if m.contains("image") && m.len() < 400),
                "{image:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_webhook_timeout_is_a_classified_failure() {
        let answer = judge("default", 1, "", TIMEOUT, None).unwrap();
        let facts = answer.facts.unwrap();
        assert!(!facts.admitted);
        let f = &facts.webhook_failures[0];
        assert_eq!(f.call.webhook, "sidecar-injector.istio.io");
        assert_eq!(f.call.cause, "timeout");
        assert!(f.call.injector);
        assert_eq!(f.call.service_namespace.as_deref(), Some("istio-control"));
        assert_eq!(f.object, "Pod/triage-admission-check (server-side dry run)");
        assert!(
            facts
                .message
                .unwrap()
                .starts_with("Error from server (InternalError)")
        );
        // Another webhook fails: it is not the injector's.
        let gatekeeper = "Error from server (InternalError): Internal error occurred: failed calling webhook \"validation.gatekeeper.sh\": failed to call webhook: Post \"https://gatekeeper-webhook-service.gatekeeper-system.svc:443/v1/admit?timeout=3s\": dial tcp 10.96.1.2:443: connect: connection refused";
        let facts = judge("default", 1, "", gatekeeper, None)
            .unwrap()
            .facts
            .unwrap();
        assert!(!facts.webhook_failures[0].call.injector);
        assert_eq!(facts.webhook_failures[0].call.cause, "connection-refused");
    }

    #[test]
    fn other_refusals_are_errors_with_their_kind() {
        for (stderr, kind) in [
            (
                "Error from server (Forbidden): pods \"triage-admission-check\" is forbidden: User \"triage\" cannot create resource \"pods\" in API group \"\" in the namespace \"default\"",
                "forbidden",
            ),
            (
                "Error from server (BadRequest): admission webhook \"audit.example.com\" does not support dry run",
                "dry-run-unsupported",
            ),
            (
                "Error from server (Forbidden): admission webhook \"validation.gatekeeper.sh\" denied the request: [must-have-owner] you must provide labels: {\"owner\"}",
                "denied",
            ),
            (
                "Error from server (Forbidden): pods \"triage-admission-check\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false",
                "denied",
            ),
            (
                "Error from server (AlreadyExists): pods \"triage-admission-check\" already exists",
                "already-exists",
            ),
        ] {
            let answer = judge("default", 1, "", stderr, None).unwrap();
            assert!(answer.facts.is_none(), "{stderr}");
            assert_eq!(answer.error.unwrap().kind, kind, "{stderr}");
        }
    }

    #[test]
    fn an_admitted_pod_says_whether_it_was_injected() {
        let plain = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"triage-admission-check","namespace":"default"},
            "spec":{"containers":[{"name":"triage-admission-check","image":"busybox"}]},"status":{"phase":"Pending"}}"#;
        let facts = judge("default", 0, plain, "", None).unwrap().facts.unwrap();
        assert!(facts.admitted && !facts.injected);
        assert_eq!(facts.containers, ["triage-admission-check"]);
        let injected = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"triage-admission-check","namespace":"default",
            "annotations":{"sidecar.istio.io/status":"{\"containers\":[\"envoy\"]}"}},
            "spec":{"initContainers":[{"name":"istio-init","image":"gcr.io/gke-release/istio/proxy_init:1.1.16-gke.0"}],
                    "containers":[{"name":"triage-admission-check","image":"busybox"},
                                  {"name":"envoy","image":"gcr.io/gke-release/istio/proxyv2:1.1.16-gke.0"}]},"status":{}}"#;
        let facts = judge("default", 0, injected, "", None)
            .unwrap()
            .facts
            .unwrap();
        assert!(facts.admitted && facts.injected);
        assert_eq!(facts.sidecar.unwrap().name, "envoy");
        assert_eq!(
            facts.containers,
            ["istio-init", "triage-admission-check", "envoy"]
        );
        assert!(facts.injection_status.is_some());
        assert!(judge("default", 0, "not json", "", None).is_err());
    }
}
