//! Recording a live run and replaying the bundle gives the same report.

use super::netns::{GUIDE_RULES, INTERCEPTION, Netns};
use super::*;
use serde_json::Value;

/// The report without what legitimately differs between two runs: times and the target.
fn comparable(mut report: Value) -> Value {
    let obj = report.as_object_mut().unwrap();
    for key in ["started_at", "duration_ms", "target"] {
        obj.remove(key);
    }
    for step in obj["steps"].as_array_mut().unwrap() {
        step.as_object_mut().unwrap().remove("duration_ms");
        if let Some(caps) = step.get_mut("capabilities").and_then(Value::as_array_mut) {
            for c in caps {
                c.as_object_mut().unwrap().remove("duration_ms");
            }
        }
    }
    report
}

#[test]
fn record_then_replay_gives_the_same_report() {
    let Some(ns) = Netns::create("record") else {
        return;
    };
    for rule in GUIDE_RULES {
        ns.iptables(rule);
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let bundle_arg = bundle.to_str().unwrap();
    let args = [
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--facts",
        "--input",
        "vip=10.0.0.2",
    ];
    let mut live_args = args.to_vec();
    live_args.extend(["--record", bundle_arg]);
    let live = ns.triage(&live_args);
    assert_eq!(live.code, 1, "{}", live.stderr);
    assert!(bundle.join("bundle.yaml").is_file());
    // Nothing half-written is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    // Replayed outside the namespace: the bundle alone answers.
    let mut replay_cmd = triage();
    replay_cmd.args(args).arg("--bundle").arg(&bundle);
    let replay = run(&mut replay_cmd);
    assert_eq!(replay.code, live.code);
    assert_eq!(comparable(replay.json()), comparable(live.json()));
    assert_eq!(
        findings_among(&replay.json(), INTERCEPTION),
        vec!["vip-not-intercepted"]
    );
}
