//! A pod's own nat table, read with `kubectl exec` into its Envoy sidecar container.
//!
//! All the containers of a pod share one network namespace, so the sidecar sees the rules
//! the injector's init container wrote. Reading them needs `iptables-save` (or `iptables`) in
//! the container and the NET_ADMIN capability, which the Envoy sidecar usually lacks: then
//! kubectl exec answers "Permission denied (you must be root)". That refusal is a fact about
//! the pod (`error`), not a failure of the probe, so a runbook can say the rules could not be
//! seen and judge from the pod's annotations instead.

use crate::facts::{Query, RulesFacts, parse_rules};
use serde::{Deserialize, Serialize};
use triage_sdk::{CapabilityError, JsonSchema, ProbeError};

/// The longest message kept from kubectl's standard error.
const MAX_MESSAGE: usize = 400;

fn default_namespace() -> String {
    "default".into()
}
fn default_container() -> String {
    "envoy".into()
}

/// Params of `pod-rules`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodRulesParams {
    /// The pod.
    pub pod: String,
    /// Its namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The container to run the command in: the Envoy sidecar ("envoy" with Traffic
    /// Director's injector, "istio-proxy" with Istio's).
    #[serde(default = "default_container")]
    pub container: String,
    /// A destination to check interception for, e.g. a service VIP `10.0.0.1`.
    #[serde(default)]
    pub vip: Option<String>,
    /// A destination port: `port_intercepted` says whether a connection to `vip` (or, without
    /// it, to an address the rules intercept) on this port goes to the proxy.
    #[serde(default)]
    pub port: Option<u16>,
    /// The UID the proxy runs as (the sidecar's runAsUser), to check it is excluded.
    #[serde(default)]
    pub proxy_uid: Option<u32>,
}

/// The commands tried, in order: the second only when the first is not in the container.
pub fn pod_argvs<'a>(pod: &'a str, namespace: &'a str, container: &'a str) -> [Vec<&'a str>; 2] {
    let exec = [
        "kubectl", "exec", "-n", namespace, "-c", container, pod, "--",
    ];
    let save = exec.iter().copied().chain(["iptables-save", "-t", "nat"]);
    let spec = exec.iter().copied().chain(["iptables", "-t", "nat", "-S"]);
    [save.collect(), spec.collect()]
}

/// Why the pod's rules could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct PodRulesError {
    /// "permission-denied" (the container may not read the rules: no NET_ADMIN, not root),
    /// "no-command" (no iptables-save nor iptables in the container), "not-running" (the
    /// container has not started or has exited), "not-found" (no such pod or container),
    /// "forbidden" (RBAC: no `create` on pods/exec), "unauthorized", "unreachable" (no API
    /// server answered), "no-cluster" (no kubeconfig or context), or "other".
    pub kind: String,
    /// The first line that says what went wrong (at most 400 characters).
    pub message: String,
    /// kubectl's exit status.
    pub status: i32,
}

/// Facts of `pod-rules`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PodRulesFacts {
    /// The pod, its namespace and the container the command ran in.
    pub pod: String,
    pub namespace: String,
    pub container: String,
    /// True when the nat table was read; `rules` then holds its facts.
    pub readable: bool,
    /// The command that answered, or the last one that failed.
    pub command: String,
    /// Why the rules could not be read; null when they were.
    pub error: Option<PodRulesError>,
    /// The nat table's facts, as the `rules` action gives them (with `vip` and `proxy_uid`).
    pub rules: Option<RulesFacts>,
    /// With `port`: whether a connection to `vip`, or without it to `probe_address` (an
    /// address the rules intercept), on that port is sent to the proxy. Null without `port`,
    /// when the rules were not read, or when the walk could not decide.
    pub port_intercepted: Option<bool>,
    /// The address `port_intercepted` was checked at when no `vip` was given.
    pub probe_address: Option<String>,
}

/// Reads the pod's nat table through `exec` (the SDK's, or a stand-in in tests).
pub fn read_pod_rules(
    p: &PodRulesParams,
    exec: &mut dyn FnMut(&[&str]) -> Result<triage_sdk::ExecOutput, CapabilityError>,
) -> Result<PodRulesFacts, ProbeError> {
    let query = Query {
        table: "nat".into(),
        ipv6: false,
        vip: parse_vip(p.vip.as_deref())?,
        port: p.port,
        proxy_uid: p.proxy_uid,
        serving_ports: Vec::new(),
    };
    let mut facts = PodRulesFacts {
        pod: p.pod.clone(),
        namespace: p.namespace.clone(),
        container: p.container.clone(),
        readable: false,
        command: String::new(),
        error: None,
        rules: None,
        port_intercepted: None,
        probe_address: None,
    };
    let argvs = pod_argvs(&p.pod, &p.namespace, &p.container);
    let mut not_captured = Vec::new();
    for argv in &argvs {
        facts.command = argv.join(" ");
        let out = match exec(argv) {
            Ok(out) => out,
            Err(CapabilityError::NotCaptured(_)) => {
                not_captured.push(format!("`{}`", facts.command));
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        if out.status == 0 {
            let text = out.stdout_text();
            let rules =
                parse_rules(&text, &query).map_err(|e| ProbeError::bad_input(e.to_string()))?;
            facts.readable = true;
            facts.error = None;
            facts.port_intercepted = port_intercepted(&text, &query, &rules, &mut facts);
            facts.rules = Some(rules);
            return Ok(facts);
        }
        let error = classify(out.status, &out.stderr_text());
        let try_next = error.kind == "no-command";
        facts.error = Some(error);
        if !try_next {
            return Ok(facts);
        }
    }
    if facts.error.is_none() {
        return Err(CapabilityError::NotCaptured(format!(
            "the bundle holds none of {}",
            not_captured.join(", ")
        ))
        .into());
    }
    Ok(facts)
}

fn parse_vip(vip: Option<&str>) -> Result<Option<std::net::IpAddr>, ProbeError> {
    match vip.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| ProbeError::invalid_params(format!("vip `{text}` is not an IP address"))),
    }
}

/// The port's answer: at the VIP when one was given, else at an address the rules send to
/// the proxy (any outside address when everything is intercepted, else the first
/// intercepted range), so that "is 3306 intercepted" means something without a VIP.
fn port_intercepted(
    text: &str,
    query: &Query,
    rules: &RulesFacts,
    facts: &mut PodRulesFacts,
) -> Option<bool> {
    query.port?;
    if query.vip.is_some() {
        return rules.vip_intercepted;
    }
    let address = match rules.outbound.mode.as_str() {
        "all" => rules
            .outbound
            .probe
            .rsplit_once(':')
            .map(|(a, _)| a.to_string()),
        "cidrs" => rules
            .outbound
            .cidrs
            .first()
            .map(|c| c.split('/').next().unwrap_or(c).to_string()),
        _ => return Some(false),
    }?;
    let at = Query {
        vip: address.parse().ok(),
        ..query.clone()
    };
    facts.probe_address = Some(address);
    parse_rules(text, &at).ok()?.vip_intercepted
}

/// Reads what kubectl, or the command it ran in the container, printed on failure.
pub fn classify(status: i32, stderr: &str) -> PodRulesError {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // kubectl adds "command terminated with exit code N" after the command's own words,
    // which say more.
    let line = lines
        .iter()
        .find(|l| !l.starts_with("command terminated with exit code") && !l.starts_with("Warning:"))
        .or(lines.first())
        .copied()
        .unwrap_or("kubectl exited without a message");
    let mut message: String = line.chars().take(MAX_MESSAGE).collect();
    if line.chars().count() > MAX_MESSAGE {
        message.push('…');
    }
    let has = |needle: &str| stderr.contains(needle);
    let kind = if has("executable file not found")
        || has("exit code 126")
        || has("exit code 127")
        || has("no such file or directory")
    {
        "no-command"
    } else if has("Permission denied") || has("you must be root") || has("Operation not permitted")
    {
        "permission-denied"
    } else if has("is waiting to start")
        || has("ContainerCreating")
        || has("cannot exec into a container in a completed pod")
        || has("is not running")
    {
        "not-running"
    } else if has("(NotFound)") || has("not found") || has("is not valid for pod") {
        "not-found"
    } else if has("(Forbidden)") || has("forbidden") {
        "forbidden"
    } else if has("Unauthorized") {
        "unauthorized"
    } else if has("no configuration has been provided")
        || has("current-context is not set")
        || has("no context exists")
    {
        "no-cluster"
    } else if has("Unable to connect to the server")
        || has("The connection to the server")
        || has("connection refused")
        || has("i/o timeout")
        || has("no such host")
    {
        "unreachable"
    } else {
        "other"
    };
    PodRulesError {
        kind: kind.into(),
        message,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_exec_refusals_are_told_apart() {
        for (stderr, kind) in [
            (
                "iptables-save v1.8.7 (legacy): Cannot initialize: Permission denied (you must be root)\ncommand terminated with exit code 1",
                "permission-denied",
            ),
            (
                "iptables-save v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\ncommand terminated with exit code 1",
                "permission-denied",
            ),
            (
                "error: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"0f\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"iptables-save\": executable file not found in $PATH: unknown",
                "no-command",
            ),
            (
                "Error from server (Forbidden): pods \"web-1\" is forbidden: User \"dev@example.com\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"shop\"",
                "forbidden",
            ),
            (
                "Error from server (BadRequest): container \"envoy\" in pod \"web-1\" is waiting to start: ContainerCreating",
                "not-running",
            ),
            (
                "Error from server (NotFound): pods \"web-1\" not found",
                "not-found",
            ),
            (
                "error: container envoy is not valid for pod web-1",
                "not-found",
            ),
            (
                "The connection to the server localhost:8080 was refused - did you specify the right host or port?",
                "unreachable",
            ),
        ] {
            let e = classify(1, stderr);
            assert_eq!(e.kind, kind, "{stderr}");
            assert!(!e.message.starts_with("command terminated"), "{e:?}");
        }
        let long = format!("error: {}", "x".repeat(5000));
        assert_eq!(classify(1, &long).message.chars().count(), MAX_MESSAGE + 1);
    }

    /// Istio's CNI golden output: every outbound destination to 15001, UID 1337 excluded.
    const INTERCEPT_ALL: &str =
        include_str!("../../../fixtures/real/iptables/istio-cni-plugin-basic.golden.txt");
    /// Only 9.9.0.0/16 intercepted.
    const ONE_RANGE: &str =
        include_str!("../../../fixtures/real/iptables/istio-iptables-capture-ip-range.golden.txt");

    fn answer(status: i32, stdout: &str, stderr: &str) -> triage_sdk::ExecOutput {
        triage_sdk::ExecOutput {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    fn params(json: &str) -> PodRulesParams {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn readable_rules_are_judged_like_a_vms() {
        let mut calls = Vec::new();
        let p = params(r#"{"pod":"web-1","namespace":"shop","proxy_uid":1337,"port":3306}"#);
        let facts = read_pod_rules(&p, &mut |argv| {
            calls.push(argv.join(" "));
            Ok(answer(0, INTERCEPT_ALL, ""))
        })
        .unwrap();
        assert_eq!(
            calls,
            ["kubectl exec -n shop -c envoy web-1 -- iptables-save -t nat"]
        );
        assert!(facts.readable && facts.error.is_none());
        let rules = facts.rules.as_ref().unwrap();
        assert!(rules.intercepts_all_outbound);
        assert_eq!(rules.proxy_uid_excluded, Some(true));
        assert_eq!(facts.port_intercepted, Some(true));
        // The proxy's UID is not the one the rules exclude: its traffic loops.
        let p = params(r#"{"pod":"web-1","proxy_uid":1000}"#);
        let facts = read_pod_rules(&p, &mut |_| Ok(answer(0, INTERCEPT_ALL, ""))).unwrap();
        assert_eq!(facts.rules.unwrap().proxy_uid_excluded, Some(false));
        // Only a range: 3306 is intercepted there, and not at an address outside it.
        let p = params(r#"{"pod":"web-1","port":3306}"#);
        let facts = read_pod_rules(&p, &mut |_| Ok(answer(0, ONE_RANGE, ""))).unwrap();
        assert_eq!(facts.probe_address.as_deref(), Some("9.9.0.0"));
        assert_eq!(facts.port_intercepted, Some(true));
        let p = params(r#"{"pod":"web-1","port":3306,"vip":"8.8.8.8"}"#);
        let facts = read_pod_rules(&p, &mut |_| Ok(answer(0, ONE_RANGE, ""))).unwrap();
        assert_eq!(facts.port_intercepted, Some(false));
    }

    #[test]
    fn a_refusal_is_the_answer_and_a_missing_binary_tries_the_other_form() {
        let p = params(r#"{"pod":"web-1"}"#);
        let denied = "iptables-save v1.8.7 (legacy): Cannot initialize: Permission denied (you must be root)\ncommand terminated with exit code 1";
        let mut calls = 0;
        let facts = read_pod_rules(&p, &mut |_| {
            calls += 1;
            Ok(answer(1, "", denied))
        })
        .unwrap();
        // Permission is not a matter of which binary: one call, and the refusal kept.
        assert_eq!(calls, 1);
        assert!(!facts.readable && facts.rules.is_none());
        let e = facts.error.unwrap();
        assert_eq!(e.kind, "permission-denied");
        assert!(e.message.starts_with("iptables-save v1.8.7"), "{e:?}");

        let missing = "error: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"1\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"iptables-save\": executable file not found in $PATH: unknown";
        let mut calls = Vec::new();
        let facts = read_pod_rules(&p, &mut |argv| {
            calls.push(argv[8..].join(" "));
            Ok(if argv[8] == "iptables-save" {
                answer(1, "", missing)
            } else {
                answer(0, INTERCEPT_ALL, "")
            })
        })
        .unwrap();
        assert_eq!(calls, ["iptables-save -t nat", "iptables -t nat -S"]);
        assert!(facts.readable);
        assert!(facts.command.ends_with("iptables -t nat -S"));

        // A bundle holding neither form fails the step, naming both.
        let err = read_pod_rules(&p, &mut |_| {
            Err(CapabilityError::NotCaptured("not captured".into()))
        })
        .unwrap_err();
        let text = format!("{err:?}");
        assert!(
            text.contains("iptables-save -t nat") && text.contains("-t nat -S"),
            "{text}"
        );
        // A VIP that is not an address is the caller's mistake, before anything runs.
        let bad = params(r#"{"pod":"web-1","vip":"10.0.0.1; rm -rf /"}"#);
        assert!(read_pod_rules(&bad, &mut |_| unreachable!()).is_err());
    }

    #[test]
    fn the_argv_puts_the_pod_where_kubectl_takes_it() {
        let [save, spec] = pod_argvs("web-1", "shop", "envoy");
        assert_eq!(
            save,
            [
                "kubectl",
                "exec",
                "-n",
                "shop",
                "-c",
                "envoy",
                "web-1",
                "--",
                "iptables-save",
                "-t",
                "nat"
            ]
        );
        assert_eq!(&spec[8..], ["iptables", "-t", "nat", "-S"]);
    }
}
