//! `triage probe`: one plugin action, its facts as JSON.

use super::{root, run, triage};
use serde_json::Value;

#[test]
fn probe_prints_one_actions_facts_from_a_bundle() {
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    let out = run(triage()
        .args(["probe", "iptables", "rules", "--bundle"])
        .arg(&bundle)
        .args([
            "-w",
            "command=spec",
            "-w",
            "vip=10.0.0.1",
            "--with",
            "port=80",
        ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outcome["status"], "passed");
    // --with values read as YAML: the port is a number, as the action's schema wants.
    assert_eq!(outcome["params"]["port"], 80);
    assert_eq!(outcome["facts"]["vip_intercepted"], true);
    assert_eq!(outcome["capabilities"][0]["request"], "iptables -t nat -S");
    assert_eq!(outcome["capabilities"][0]["outcome"], "ok");

    // What the bundle did not record (any form of the filter table; the rules action would
    // take whichever of iptables-save, -S or -L of a table the bundle holds): the step
    // errors (exit 3) and says why.
    let out = run(triage()
        .args(["probe", "iptables", "rules", "--bundle"])
        .arg(&bundle)
        .args(["-w", "table=filter"]));
    assert_eq!(out.code, 3, "{}", out.stdout);
    let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outcome["status"], "errored");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("the bundle holds none of `iptables-save -t filter`"),
        "{outcome}"
    );
}

#[test]
fn probe_runs_live_and_records_a_bundle_that_replays_the_same() {
    // The host plugin's process list, from the real `ps` here, recorded.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ps-bundle");
    let out = run(triage()
        .args(["probe", "host", "processes", "--record"])
        .arg(&bundle));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let live: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        live["facts"]["process_count"].as_u64().unwrap() > 0,
        "{live}"
    );
    assert_eq!(live["capabilities"][0]["capability"], "exec");
    assert!(bundle.join("bundle.yaml").is_file());

    let out = run(triage()
        .args(["probe", "host", "processes", "--bundle"])
        .arg(&bundle));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let replayed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(replayed["facts"], live["facts"]);

    // A second recording never writes into the first.
    let out = run(triage()
        .args(["probe", "host", "processes", "--record"])
        .arg(&bundle));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--record needs a new directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn probe_mistakes_are_one_line_errors() {
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    for (args, says) in [
        (vec!["nope", "x"], "no plugin `nope` (there are: "),
        (
            vec!["iptables", "rulez"],
            "plugin `iptables` has no action `rulez` (it has: rules",
        ),
        (
            vec!["iptables", "rules", "-w", "bogus=1"],
            "unknown param `bogus` (expected one of: command,",
        ),
        (
            vec!["iptables", "rules", "-w", "port=eighty"],
            "with.port: expected integer or null, got string \"eighty\"",
        ),
        (
            vec!["iptables", "rules", "-w", "port=1", "-w", "port=2"],
            "--with port: given twice",
        ),
        (vec!["iptables", "rules", "-w", "noequals"], "NAME=VALUE"),
    ] {
        let out = run(triage()
            .arg("probe")
            .args(&args)
            .arg("--bundle")
            .arg(&bundle));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
}
