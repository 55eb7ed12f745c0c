//! The example bundles under examples/, replayed: each gives the findings its scenario is about.

use super::*;

fn replay(bundle: &str, inputs: &[&str]) -> (Run, serde_json::Value) {
    let mut cmd = triage();
    cmd.args(["run", "service-unreachable", "--format", "json", "--bundle"])
        .arg(root().join(bundle));
    for i in inputs {
        cmd.args(["--input", i]);
    }
    let out = run(&mut cmd);
    let json = out.json();
    (out, json)
}

#[test]
fn interception_in_place_is_healthy() {
    let (out, report) = replay(
        "examples/service-unreachable/interception-in-place",
        &["vip=10.0.0.1", "proxy_uid=1006"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(report["schema"], "triage.report/v2");
    assert!(finding_ids(&report).is_empty(), "{report:#}");
    assert_eq!(step(&report, "interception")["status"], "passed");
    assert_eq!(step(&report, "vip-interception")["status"], "passed");
}

#[test]
fn a_vip_outside_the_rules_is_not_intercepted() {
    let (out, report) = replay(
        "examples/service-unreachable/interception-in-place",
        &["vip=10.0.0.2", "port=80"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(finding_ids(&report), vec!["vip-not-intercepted"]);
    let f = &report["findings"][0];
    assert_eq!(f["severity"], "error");
    assert!(f["title"].as_str().unwrap().contains("10.0.0.2"));
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("-d 10.0.0.2/32 -j ISTIO_REDIRECT"),
        "{f:#}"
    );
    assert!(
        f["detail"].as_str().unwrap().contains("10.0.0.1/32"),
        "{f:#}"
    );
}

#[test]
fn interception_missing() {
    let (out, report) = replay(
        "examples/service-unreachable/interception-missing",
        &["vip=10.0.0.1"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(finding_ids(&report), vec!["interception-missing"]);
    let vip = step(&report, "vip-interception");
    assert_eq!(vip["status"], "skipped");
    assert_eq!(vip["reason"], "needs `interception`, which failed");
}

#[test]
fn no_vip_skips_the_vip_check_with_the_reason() {
    let (out, report) = replay("examples/service-unreachable/interception-in-place", &[]);
    assert_eq!(out.code, 0);
    let vip = step(&report, "vip-interception");
    assert_eq!(vip["status"], "skipped");
    assert_eq!(vip["reason"], "`when: inputs.vip` is false");
}

#[test]
fn markdown_and_human_reports() {
    let bundle = root().join("examples/service-unreachable/interception-missing");
    let md = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--format",
            "markdown",
            "--bundle",
        ])
        .arg(&bundle));
    assert_eq!(md.code, 1);
    assert!(
        md.stdout.starts_with("# service-unreachable: "),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains(
        "### 🔴 `interception-missing` `TRG0403` — No traffic interception in the nat table"
    ));
    assert!(
        md.stdout
            .contains("| `vip-interception` The service VIP is redirected to Envoy | skipped |")
    );
    let human = run(triage()
        .args(["run", "service-unreachable", "--bundle"])
        .arg(&bundle));
    assert!(
        human.stdout.contains("ERROR   interception-missing"),
        "{}",
        human.stdout
    );
    assert!(!human.stdout.contains('\x1b'), "colour on a pipe");
}

#[test]
fn fail_on_changes_the_exit_code() {
    let bundle = root().join("examples/service-unreachable/interception-missing");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--fail-on",
            "never",
            "--bundle",
        ])
        .arg(&bundle));
    assert_eq!(out.code, 0);
}

#[test]
fn a_call_missing_from_the_bundle_is_not_captured() {
    // The bundle holds `iptables -t nat -S` and nothing of the filter table (the rules
    // action falls back between the recorded forms of one table, not between tables).
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("save.yaml");
    std::fs::write(
        &runbook,
        "apiVersion: triage/v1\nid: save\ntitle: Save\nsteps:\n  - id: a\n    title: A\n    probe: {plugin: iptables, action: rules, with: {command: save, table: filter}}\n",
    )
    .unwrap();
    let out = run(triage()
        .arg("run")
        .arg(&runbook)
        .args(["--format", "json", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-in-place")));
    assert_eq!(out.code, 3);
    let a = step(&out.json(), "a").clone();
    assert_eq!(a["status"], "errored");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("not captured: the bundle holds none of `iptables-save -t filter`"),
        "{a:#}"
    );
}
