//! When kubectl runs but cannot show what was asked: the cluster is not reachable, the
//! caller lacks the RBAC permission, the object does not exist. These are answers about the
//! cluster, not failures of the probe, so they become facts (`error`), and runbooks mark the
//! step *unknown* with kubectl's own words instead of passing it or erroring it.

use serde::Serialize;
use triage_sdk::{JsonSchema, ProbeError};

/// The longest message kept from kubectl's standard error.
const MAX_MESSAGE: usize = 400;

/// Why kubectl could not show the object.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct KubectlError {
    /// "not-found" (no such object, namespace or container), "forbidden" (RBAC),
    /// "unauthorized" (no valid credentials), "unreachable" (no API server answered),
    /// "no-cluster" (no kubeconfig or current context), "unknown-resource" (the API server
    /// does not serve that kind), "not-running" (the container has not started or has
    /// exited, so it cannot be exec'd into or has no log yet), "no-command" (the command to run
    /// in the container is not there), "permission-denied" (it ran but may not read what was
    /// asked, e.g. iptables without NET_ADMIN), "dry-run-unsupported" (a matching admission
    /// webhook declares side effects, so the API server refuses a dry run), "denied" (an
    /// admission webhook or Pod Security answered and refused the object), "already-exists",
    /// or "other".
    pub kind: String,
    /// kubectl's first error line (at most 400 characters).
    pub message: String,
    /// kubectl's exit status.
    pub status: i32,
}

impl KubectlError {
    /// Reads kubectl's standard error.
    pub fn from_stderr(status: i32, stderr: &str) -> KubectlError {
        let message = first_error_line(stderr);
        KubectlError {
            kind: classify(&message, stderr).into(),
            message,
            status,
        }
    }
}

fn first_error_line(stderr: &str) -> String {
    // kubectl prints warnings ("Warning: ...", klog "W0101 ...") before the error; the error
    // line is the one that says so.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .find(|l| {
            l.starts_with("Error from server")
                || l.starts_with("error:")
                || l.starts_with("Unable to connect")
                || l.starts_with("The connection to the server")
                || l.starts_with("E0") // klog error lines
        })
        .or(lines.first())
        .copied()
        .unwrap_or("kubectl exited without a message");
    let mut message: String = line.chars().take(MAX_MESSAGE).collect();
    if line.chars().count() > MAX_MESSAGE {
        message.push('…');
    }
    message
}

fn classify(line: &str, all: &str) -> &'static str {
    let has = |needle: &str| line.contains(needle) || all.contains(needle);
    // Admission's answers first, read from the error line alone: a webhook's or a policy's
    // own words (which may say "not found" or "forbidden") follow them.
    if line.contains("does not support dry run") {
        "dry-run-unsupported"
    } else if line.contains("denied the request") || line.contains("violates PodSecurity") {
        "denied"
    } else if line.contains("(AlreadyExists)") {
        "already-exists"
    } else if has("executable file not found") || has("exit code 126") || has("exit code 127") {
        "no-command"
    } else if has("Permission denied") || has("you must be root") || has("Operation not permitted")
    {
        "permission-denied"
    } else if has("(NotFound)") || has("not found") {
        "not-found"
    } else if has("(Forbidden)") || has("forbidden") {
        "forbidden"
    } else if has("(Unauthorized)") || has("Unauthorized") {
        "unauthorized"
    } else if has("doesn't have a resource type")
        || has("the server could not find the requested resource")
    {
        "unknown-resource"
    } else if has("no configuration has been provided")
        || has("current-context is not set")
        || (has("context") && has("does not exist"))
        || has("no context exists")
    {
        "no-cluster"
    } else if has("is waiting to start")
        || has("ContainerCreating")
        || has("cannot exec into a container in a completed pod")
        || has("is not running")
    {
        "not-running"
    } else if has("Unable to connect to the server")
        || has("The connection to the server")
        || has("connection refused")
        || has("i/o timeout")
        || has("no such host")
        || has("context deadline exceeded")
        || has("TLS handshake timeout")
    {
        "unreachable"
    } else {
        "other"
    }
}

/// Runs kubectl: its standard output, or why it showed nothing. Only a capability failure
/// (denied by policy, not captured in a bundle, kubectl not installed) is a probe error.
pub fn run(argv: &[String]) -> Result<Result<String, KubectlError>, ProbeError> {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = triage_sdk::exec(&argv)?;
    if out.status == 0 {
        Ok(Ok(out.stdout_text()))
    } else {
        Ok(Err(KubectlError::from_stderr(
            out.status,
            &out.stderr_text(),
        )))
    }
}

/// An action's facts, or kubectl's reason for having none. Serialized flat: the facts'
/// fields plus `error` (null when kubectl answered).
#[derive(Serialize, JsonSchema, Debug)]
pub struct Answer<T> {
    /// The facts, when kubectl answered.
    #[serde(flatten)]
    pub facts: Option<T>,
    /// Why kubectl showed nothing; runbooks mark the step unknown on it.
    pub error: Option<KubectlError>,
}

impl<T> Answer<T> {
    pub fn seen(facts: T) -> Self {
        Answer {
            facts: Some(facts),
            error: None,
        }
    }
    pub fn unseen(error: KubectlError) -> Self {
        Answer {
            facts: None,
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectls_real_messages_are_classified() {
        let cases = [
            (
                "Error from server (NotFound): configmaps \"istio-sidecar-injector\" not found",
                "not-found",
            ),
            (
                "Error from server (NotFound): namespaces \"istio-control\" not found",
                "not-found",
            ),
            (
                "Error from server (Forbidden): events is forbidden: User \"system:serviceaccount:default:triage\" cannot list resource \"events\" in API group \"\" at the cluster scope",
                "forbidden",
            ),
            (
                "error: You must be logged in to the server (Unauthorized)",
                "unauthorized",
            ),
            (
                "The connection to the server localhost:8080 was refused - did you specify the right host or port?",
                "unreachable",
            ),
            (
                "Unable to connect to the server: dial tcp 34.1.2.3:443: i/o timeout",
                "unreachable",
            ),
            (
                "error: the server doesn't have a resource type \"mutatingwebhookconfigurations\"",
                "unknown-resource",
            ),
            ("error: context \"gke_p_z_c\" does not exist", "no-cluster"),
            (
                "error: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"0f\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"iptables-save\": executable file not found in $PATH: unknown",
                "no-command",
            ),
            (
                "iptables-save v1.8.7 (legacy): Cannot initialize: Permission denied (you must be root)",
                "permission-denied",
            ),
            (
                "Error from server (BadRequest): container \"envoy\" in pod \"busybox-1\" is waiting to start: ContainerCreating",
                "not-running",
            ),
            ("error: current-context is not set", "no-cluster"),
        ];
        for (stderr, kind) in cases {
            let e = KubectlError::from_stderr(1, stderr);
            assert_eq!(e.kind, kind, "{stderr}");
            assert_eq!(e.message, stderr);
        }
    }

    #[test]
    fn the_error_line_is_found_after_warnings_and_cut() {
        let stderr = "Warning: v1 ComponentStatus is deprecated\n\nError from server (Forbidden): pods is forbidden\n";
        let e = KubectlError::from_stderr(1, stderr);
        assert_eq!(
            e.message,
            "Error from server (Forbidden): pods is forbidden"
        );
        let long = format!("error: {}", "x".repeat(5000));
        let e = KubectlError::from_stderr(1, &long);
        assert_eq!(e.message.chars().count(), MAX_MESSAGE + 1);
        assert_eq!(
            KubectlError::from_stderr(1, "").message,
            "kubectl exited without a message"
        );
    }

    #[test]
    fn an_answer_is_flat() {
        #[derive(Serialize)]
        struct F {
            count: u32,
        }
        let seen = serde_json::to_value(Answer::seen(F { count: 2 })).unwrap();
        assert_eq!(seen, serde_json::json!({"count": 2, "error": null}));
        let unseen = serde_json::to_value(Answer::<F>::unseen(KubectlError::from_stderr(
            1,
            "Error from server (Forbidden): x",
        )))
        .unwrap();
        assert_eq!(unseen["error"]["kind"], "forbidden");
        assert!(unseen.get("count").is_none());
    }
}
