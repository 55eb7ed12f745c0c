//! The GKE pod side of traffic-loop and unconfigured-service-blackhole, and the firewall
//! step of gke-pods-not-starting: what the reports say, beyond the marks the scenario cases
//! assert (a case cannot check a step's reason or a finding's text).
//!
//! These cases replay recorded `kubectl exec` answers (their argv checked exactly, as the
//! default policy grants it). The live path, the real kubectl exec'ing over WebSocket into a
//! stand-in API server that runs the command in a network namespace with real iptables
//! rules, is `kubectl_exec.rs`.

use super::*;

fn case_report(runbook: &str, case: &str) -> (Run, serde_json::Value) {
    let dir = root().join(format!("runbooks/{runbook}/tests/{case}"));
    let out = run(triage()
        .args(["run", runbook, "-o", "json", "--fail-on", "never", "--case"])
        .arg(&dir));
    let json = out.json();
    (out, json)
}

fn step<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}: {report}"))
}

fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id}: {report}"))
}

/// Refused exec, spec decides: complete, the info finding says where the verdict came from,
/// why the live table was not read and how to read it.
#[test]
fn a_refused_exec_with_a_deciding_spec_is_judged_from_the_spec_and_complete() {
    let (out, report) = case_report("traffic-loop", "pod-spec-uid-excluded");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(report["summary"]["complete"], true, "{report}");
    assert_eq!(step(&report, "pod-rules")["status"], "passed");
    let f = finding(&report, "pod-judged-from-spec");
    assert_eq!(f["severity"], "info");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("Judged from the pod spec; the live nat table could not be read: "),
        "{detail}"
    );
    assert!(
        detail.contains("Permission denied (you must be root)"),
        "{detail}"
    );
    let fix = f["fix"].as_str().unwrap();
    assert!(
        fix.contains("kubectl debug -it -n default orders-api-7c9f8d6b5-k2m4q --profile=netadmin"),
        "{fix}"
    );
}

/// Refused exec, spec silent: unknown, exit 3, the reason names the refusal and the command.
#[test]
fn a_refused_exec_with_a_silent_spec_is_unknown() {
    for (runbook, judging) in [
        ("traffic-loop", "pod-loop"),
        ("unconfigured-service-blackhole", "pod-outbound"),
    ] {
        let dir = root().join(format!("runbooks/{runbook}/tests/pod-refused-no-spec-info"));
        let out = run(triage()
            .args(["run", runbook, "-o", "json", "--case"])
            .arg(&dir));
        assert_eq!(out.code, 3, "{runbook}: {}", out.stderr);
        let report = out.json();
        let rules = step(&report, "pod-rules");
        assert_eq!(rules["status"], "unknown", "{runbook}");
        let reason = rules["reason"].as_str().unwrap();
        assert!(reason.starts_with("Neither source decides"), "{reason}");
        assert!(reason.contains("Permission denied"), "{reason}");
        assert!(reason.contains("kubectl debug"), "{reason}");
        assert_eq!(step(&report, judging)["status"], "unknown", "{runbook}");
        assert!(
            report["findings"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }
}

/// An undecidable rule (an ipset) is named in the reason of the step it leaves unknown.
#[test]
fn an_undecided_iptables_verdict_is_unknown_and_names_the_rule() {
    for (runbook, case, rule) in [
        (
            "traffic-loop",
            "proxy-exclusion-undecided",
            "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -m set --match-set mesh-endpoints dst -j RETURN",
        ),
        (
            "unconfigured-service-blackhole",
            "catch-all-undecided",
            "-A ISTIO_OUTPUT -m set --match-set no-proxy dst -j RETURN",
        ),
    ] {
        let (out, report) = case_report(runbook, case);
        assert_eq!(out.code, 3, "{runbook}: {}", out.stderr);
        let s = step(&report, "interception");
        assert_eq!(s["status"], "unknown", "{runbook}");
        let reason = s["reason"].as_str().unwrap();
        assert!(reason.contains(rule), "{runbook}: {reason}");
        assert!(
            report["findings"].as_array().unwrap().is_empty(),
            "{report}"
        );
    }
}

/// Without `cluster`, the firewall check the guide's timeout case needs is unknown and the
/// reason names the inputs to give.
#[test]
fn the_firewall_check_without_a_cluster_is_unknown_and_names_the_input() {
    let (out, report) = case_report("gke-pods-not-starting", "no-cluster-given");
    assert_eq!(report["summary"]["complete"], false, "{}", out.stderr);
    let s = step(&report, "cluster-named");
    assert_eq!(s["status"], "unknown");
    let reason = s["reason"].as_str().unwrap();
    assert!(reason.contains("--input cluster=NAME"), "{reason}");
    assert!(reason.contains("--input zone=ZONE"), "{reason}");
}
