//! Bad input gets one clear line on stderr and a non-zero exit, never a panic.

use super::*;

fn assert_one_line_error(out: &Run, code: i32, needle: &str) {
    assert_eq!(
        out.code, code,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{}", out.stderr);
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(
        lines[0].contains(needle),
        "{} does not contain {needle}",
        lines[0]
    );
    assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"));
}

#[test]
fn missing_runbook_file() {
    let out = run(triage().args(["run", "no/such/runbook.yaml"]));
    assert_one_line_error(&out, 2, "no/such/runbook.yaml: no such runbook file");
}

#[test]
fn unknown_runbook_id_suggests_the_close_one() {
    let out = run(triage().args(["run", "service-unreachabel"]));
    assert_one_line_error(
        &out,
        2,
        "unknown runbook `service-unreachabel` (did you mean `service-unreachable`?)",
    );
}

#[test]
fn malformed_yaml_points_at_the_place() {
    let path = data("lint/malformed-yaml.yaml");
    let out = run(triage().arg("run").arg(&path));
    assert_one_line_error(&out, 2, &format!("{}:6:12: invalid YAML", path.display()));
}

#[test]
fn bundle_directory_without_bundle_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(triage()
        .args(["run", "service-unreachable", "--bundle"])
        .arg(dir.path()));
    assert_one_line_error(&out, 2, "not a bundle directory (no bundle.yaml in it)");
}

#[test]
fn malformed_bundle_yaml_points_at_the_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bundle.yaml"),
        "calls:\n  - exec: [a]\n    stauts: 0\n",
    )
    .unwrap();
    let out = run(triage()
        .args(["run", "service-unreachable", "--bundle"])
        .arg(dir.path()));
    assert_one_line_error(&out, 2, "bundle.yaml:3:5: calls[0]: unknown field `stauts`");
}

#[test]
fn bundle_side_file_may_not_escape() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bundle.yaml"),
        "calls:\n  - exec: [a]\n    stdout_file: ../../etc/passwd\n",
    )
    .unwrap();
    let out = run(triage()
        .args(["run", "service-unreachable", "--bundle"])
        .arg(dir.path()));
    assert_one_line_error(&out, 2, "must be a relative path inside the bundle");
}

#[test]
fn plugin_file_that_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("junk.wasm"),
        b"\0asm\x01\0\0\0 definitely not a component",
    )
    .unwrap();
    let out = run(triage().arg("--plugins").arg(dir.path()).arg("plugins"));
    assert_skipped_plugin(&out, "junk.wasm: not a loadable WebAssembly component");
}

/// A plugin directory's file that does not load is skipped with one warning line naming
/// it; the command goes on with every other plugin.
fn assert_skipped_plugin(out: &Run, needle: &str) {
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{}", out.stderr);
    assert!(
        lines[0].starts_with("warning: skipped plugin "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(needle),
        "{} does not contain {needle}",
        lines[0]
    );
    assert!(
        out.stdout.contains("iptables"),
        "the built-in plugins are listed"
    );
}

#[test]
fn a_core_module_is_not_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest valid core module: magic and version.
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let out = run(triage().arg("--plugins").arg(dir.path()).arg("plugins"));
    assert_skipped_plugin(&out, "core.wasm: not a loadable WebAssembly component");
}

#[test]
fn wrong_flag_is_a_usage_error() {
    let out = run(triage().args(["run", "service-unreachable", "--frobnicate"]));
    assert_one_line_error(&out, 2, "unexpected argument '--frobnicate'");
    // clap's usage block and --help pointer are left out; its tips and lists are kept.
    let out = run(triage().args(["run", "service-unreachable", "--bundel", "x"]));
    assert_one_line_error(&out, 2, "; tip: a similar argument exists: '--bundle'");
    let out = run(triage().arg("run"));
    assert_one_line_error(&out, 2, "required arguments were not provided: <RUNBOOK>");
    let out = run(triage().args(["run", "x", "--format", "yaml"]));
    assert_one_line_error(
        &out,
        2,
        "[possible values: human, json, markdown, sarif, jsonl]",
    );
    // Help is not an error.
    let out = run(triage().args(["run", "--help"]));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Usage: triage run"));
}

#[test]
fn unknown_input_and_bad_answer_are_usage_errors() {
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--input",
            "vpi=10.0.0.1",
            "--bundle",
        ])
        .arg(&bundle));
    assert_one_line_error(&out, 2, "runbook `service-unreachable` has no input `vpi`");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--input",
            "port=eighty",
            "--bundle",
        ])
        .arg(&bundle));
    assert_one_line_error(&out, 2, "input `port` must be an integer, got `eighty`");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--answer",
            "nope=yes",
            "--bundle",
        ])
        .arg(&bundle));
    assert_one_line_error(&out, 2, "has no step `nope`");
}

#[test]
fn bad_policy_file_points_at_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "allow:\n  exce: []\n").unwrap();
    let out = run(triage()
        .arg("--policy")
        .arg(&policy)
        .args(["run", "service-unreachable"]));
    assert_one_line_error(
        &out,
        2,
        "policy.yaml:2:3: invalid policy: allow: unknown field `exce`",
    );
}

#[test]
fn record_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "precious").unwrap();
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    let out = run(triage()
        .args(["run", "service-unreachable", "--bundle"])
        .arg(&bundle)
        .arg("--record")
        .arg(dir.path()));
    assert_one_line_error(&out, 2, "already exists; --record needs a new directory");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "precious"
    );
}
