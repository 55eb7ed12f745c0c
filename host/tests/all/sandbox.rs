//! Hostile plugins in the real host: each misbehaviour fails its own step, is reported, and
//! the other steps still run.

use super::*;

fn hostile_run() -> serde_json::Value {
    let out = run(triage()
        .args(["--plugins", test_plugin_dir(), "--policy"])
        .arg(data("sandbox/tight-policy.yaml"))
        .args(["run"])
        .arg(data("sandbox/hostile.yaml"))
        .args(["--format", "json"]));
    // Steps errored and no error finding fired: the run is incomplete.
    assert_eq!(out.code, 3, "stderr: {}", out.stderr);
    out.json()
}

#[test]
fn each_misbehaviour_fails_only_its_own_step() {
    let report = hostile_run();
    let reason = |id: &str| {
        let s = step(&report, id);
        assert_eq!(s["status"], "errored", "{id}: {s:#}");
        s["reason"].as_str().unwrap().to_string()
    };

    let spin = step(&report, "spin");
    assert!(
        reason("spin").contains("stopped at the CPU deadline (300 ms"),
        "{spin:#}"
    );
    // Stopped within its deadline: 300 ms of guest CPU, far below the 10 s wall limit.
    assert!(spin["duration_ms"].as_u64().unwrap() < 3000, "{spin:#}");

    assert!(reason("allocate").contains("stopped at the memory cap (128 MiB)"));
    assert!(reason("trap").contains("trapped: wasm trap: wasm `unreachable` instruction executed"));
    assert!(
        reason("huge").contains("output of")
            && reason("huge").contains("over the 1048576-byte cap")
    );

    let slow = step(&report, "slow");
    assert!(
        reason("slow").contains("stopped at the wall-clock deadline (1500 ms)"),
        "{slow:#}"
    );
    assert!(slow["duration_ms"].as_u64().unwrap() < 5000);

    // Denied by the policy: the reason names the capability and the YAML that would allow it.
    let denied = reason("denied");
    assert!(
        denied.contains("denied: exec `rm -rf /tmp/triage-hostile` is not allowed by the policy"),
        "{denied}"
    );
    assert!(
        denied.contains(r#"add `exec: [["rm", "-rf", "/tmp/triage-hostile"]]` under `allow:`"#),
        "{denied}"
    );
    let caps = step(&report, "denied")["capabilities"].as_array().unwrap();
    assert_eq!(caps[0]["outcome"], "denied");

    // Not declared in the manifest: refused even though the policy is not consulted.
    assert!(
        reason("undeclared").contains(
            "read_file `/etc/shadow` was not declared by hostile action `undeclared-read`"
        )
    );
    assert!(reason("http").contains("http `GET http://example.com/` was not declared"));

    // The well-behaved step ran, after and beside all of that.
    assert_eq!(step(&report, "fine")["status"], "passed");
    assert_eq!(finding_ids(&report), vec!["fine-fired"]);
}

#[test]
fn a_denied_call_never_reaches_the_target() {
    let marker = std::path::Path::new("/tmp/triage-hostile");
    std::fs::create_dir_all(marker).unwrap();
    let _ = hostile_run();
    assert!(marker.exists(), "the denied rm ran");
}
