//! One runbook on many targets: bounded concurrency, a deadline per target, an aggregate
//! report; an unreachable or hanging target never blocks the others.

use super::*;
use std::time::{Duration, Instant};

#[test]
fn fleet_of_bundles_with_an_unreachable_and_a_hanging_target() {
    // A TCP listener that accepts and never says a word: ssh waits for a banner forever.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().take(20) {
            held.push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.txt");
    let examples = root().join("examples/service-unreachable");
    std::fs::write(
        &targets,
        format!(
            "# a healthy VM, a broken one, a bundle that is not there, one that hangs\n{}\nbundle:{}\nmissing-bundle\nssh://127.0.0.1:{port}\n",
            examples.join("interception-in-place").display(),
            examples.join("interception-missing").display(),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--format",
            "json",
            "--input",
            "vip=10.0.0.1",
            "--jobs",
            "2",
            "--target-timeout",
            "2s",
            "--targets",
        ])
        .arg(&targets));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the hanging target held the fleet"
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["schema"], "triage.fleet/v1");
    let s = &report["summary"];
    assert_eq!(
        (
            s["targets"].as_u64(),
            s["ok"].as_u64(),
            s["failing"].as_u64()
        ),
        (Some(4), Some(1), Some(1)),
        "{report:#}"
    );
    assert_eq!(s["unreachable"], 1);
    assert_eq!(s["timed_out"], 1, "{report:#}");
    let statuses: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "failing", "unreachable", "timed-out"]);
    let across = &report["findings"]["interception-missing"]["targets"];
    assert_eq!(across.as_array().unwrap().len(), 1);
    assert!(
        across[0]
            .as_str()
            .unwrap()
            .ends_with("interception-missing")
    );
    // Each target keeps its whole report in JSON.
    assert_eq!(report["targets"][1]["report"]["schema"], "triage.report/v2");

    let md = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--format",
            "markdown",
            "--target-timeout",
            "2s",
            "--targets",
        ])
        .arg(&targets));
    assert!(
        md.stdout.contains(
            "| `interception-missing` No traffic interception in the nat table | error | 1 |"
        ),
        "{}",
        md.stdout
    );
}

#[test]
fn an_empty_targets_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.txt");
    std::fs::write(&targets, "# nothing\n\n").unwrap();
    let out = run(triage()
        .args(["run", "service-unreachable", "--targets"])
        .arg(&targets));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no targets in it"), "{}", out.stderr);
}

#[test]
fn several_bundles_on_the_command_line_make_a_fleet() {
    let out = run(triage().args([
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--bundle",
        "examples/service-unreachable/interception-in-place",
        "--bundle",
        "examples/service-unreachable/interception-missing",
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(report["schema"], "triage.fleet/v1");
    assert_eq!(report["summary"]["targets"], 2);
    assert_eq!(
        report["findings"]["interception-missing"]["targets"][0],
        "bundle:examples/service-unreachable/interception-missing"
    );
    // A fleet cannot be recorded into one bundle.
    let out = run(triage().args([
        "run",
        "service-unreachable",
        "--bundle",
        "a",
        "--bundle",
        "b",
        "--record",
        "c",
    ]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("take one target, not a fleet"),
        "{}",
        out.stderr
    );
}

/// Targets are parsed once, up front (`target::Spec`): a line of a targets file that is no
/// target is an error naming the file and line before anything runs, and the same spec
/// reads the same from `--target`, `triage probe` and `doctor`.
#[test]
fn a_bad_target_is_a_one_line_usage_error_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.txt");
    std::fs::write(&targets, "local\n# a comment\nssh://-oProxyCommand=touch\n").unwrap();
    let out = run(triage()
        .args(["run", "service-unreachable", "--targets"])
        .arg(&targets));
    assert_eq!(out.code, 2, "{}", out.stderr);
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains(&format!(
            "{}:3: target `ssh://-oProxyCommand=touch`:",
            targets.display()
        )),
        "{line}"
    );
    for args in [
        &["run", "service-unreachable", "--target", "nowhere"][..],
        &["probe", "host", "processes", "--target", "nowhere"][..],
    ] {
        let out = run(triage().args(args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.trim().ends_with(
                "target `nowhere`: unknown target; use local, local://NAME, bundle:DIR, ssh://…, gcloud://… or kubectl://…"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// Step marks reach the fleet summary: each target's failed, unknown and errored steps by
/// name, the findings with their severity, and `?` for a target that could not be checked
/// completely (here a bundle without the process list: envoy-process errored).
#[test]
fn fleet_summaries_carry_each_targets_step_marks() {
    let args = [
        "run",
        "service-unreachable",
        "--bundle",
        "examples/service-unreachable/interception-missing",
        "--bundle",
        "runbooks/envoy-version/tests/binary-only",
    ];
    let human = run(triage().args(args));
    assert_eq!(human.code, 1, "{}", human.stderr);
    let out = &human.stdout;
    assert!(out.contains("interception-missing (error)"), "{out}");
    assert!(out.contains("✗ interception (error)"), "{out}");
    assert!(
        out.contains("? bundle:runbooks/envoy-version/tests/binary-only"),
        "{out}"
    );
    assert!(out.contains("! envoy-process (errored)"), "{out}");
    let json = run(triage().args(args).args(["--format", "json"])).json();
    let incomplete = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "incomplete")
        .expect("an incomplete target");
    assert_eq!(incomplete["steps"]["complete"], false, "{incomplete:#}");
    assert_eq!(incomplete["steps"]["marked"][0]["status"], "errored");
    let md = run(triage().args(args).args(["--format", "markdown"]));
    assert!(md.stdout.contains("| steps |"), "{}", md.stdout);
}

/// JUnit carries the marks: `triage run --junit` a case per step at its mark and a case that
/// errors when the diagnosis is incomplete; `triage test --junit` each case's step marks.
#[test]
fn junit_carries_step_marks_and_incompleteness() {
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.xml");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--bundle",
            "examples/service-unreachable/interception-missing",
            "--input",
            "vip=10.0.0.1",
            "--junit",
        ])
        .arg(&failing));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let xml = std::fs::read_to_string(&failing).unwrap();
    assert!(
        xml.contains(
            "<failure type=\"error\" message=\"No traffic interception in the nat table\"/>"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<skipped message=\"needs `interception`, which failed\"/>"),
        "{xml}"
    );
    assert!(xml.contains("name=\"diagnosis is complete\"/>"), "{xml}");

    let incomplete = dir.path().join("incomplete.xml");
    let out = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--bundle",
            "runbooks/envoy-version/tests/binary-only",
            "--junit",
        ])
        .arg(&incomplete));
    let xml = std::fs::read_to_string(&incomplete).unwrap();
    assert!(xml.contains("<error type=\"errored\""), "{xml}");
    assert!(
        xml.contains(&format!(
            "<error type=\"incomplete\" message=\"exit code {}: not checked: envoy-process",
            out.code
        )),
        "{xml}"
    );
    assert_eq!(out.code, 3, "{}", out.stdout);

    let cases = dir.path().join("cases.xml");
    let out = run(triage()
        .args(["test", "service-unreachable", "--junit"])
        .arg(&cases));
    assert_eq!(out.code, 0, "{}", out.stdout);
    let xml = std::fs::read_to_string(&cases).unwrap();
    assert!(xml.contains("<system-out>"), "{xml}");
    assert!(xml.contains("✗ interception: failed (error)"), "{xml}");
    assert!(xml.contains("diagnosis: complete"), "{xml}");
}

/// A targets file of `count` bundle targets, each its own name (a link to an example
/// bundle): even positions the broken VM, odd ones the healthy one.
pub(super) fn targets_file(dir: &std::path::Path, count: usize) -> std::path::PathBuf {
    write_targets(dir, (0..count).map(|i| (format!("vm-{i}"), i)))
}

/// A targets file listing, in this order, a link named NAME for each `(NAME, position)`: to
/// the broken example VM for an even position, the healthy one for an odd.
pub(super) fn write_targets(
    dir: &std::path::Path,
    targets: impl Iterator<Item = (String, usize)>,
) -> std::path::PathBuf {
    let examples = root().join("examples/service-unreachable");
    let lines: Vec<String> = targets
        .map(|(name, i)| {
            let case = if i % 2 == 0 {
                "interception-missing"
            } else {
                "interception-in-place"
            };
            let link = dir.join(name);
            std::os::unix::fs::symlink(examples.join(case), &link).unwrap();
            link.display().to_string()
        })
        .collect();
    let path = dir.join("targets.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn fleet(targets: &std::path::Path, extra: &[&str]) -> Run {
    run(triage()
        .args([
            "run",
            "service-unreachable",
            "--input",
            "vip=10.0.0.1",
            "--targets",
        ])
        .arg(targets)
        .args(extra))
}

#[test]
fn jsonl_streams_a_line_per_target_then_the_aggregate_the_json_report_holds() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 7);
    let output = dir.path().join("fleet.jsonl");
    let lines_out = fleet(
        &targets,
        &["-o", "jsonl", "--output", output.to_str().unwrap()],
    );
    let json_out = fleet(&targets, &["-o", "json"]);
    assert_eq!(lines_out.code, 1, "{}", lines_out.stderr);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), lines_out.stdout);
    let lines: Vec<serde_json::Value> = lines_out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 8, "{}", lines_out.stdout);
    let (aggregate, per_target) = lines.split_last().unwrap();
    assert!(
        per_target
            .iter()
            .all(|t| t["target"].is_string() && t.get("schema").is_none())
    );
    assert!(per_target.iter().all(|t| t.get("report").is_none()));
    let whole = json_out.json();
    assert_eq!(aggregate["schema"], "triage.fleet/v1");
    assert_eq!(aggregate["summary"], whole["summary"]);
    assert_eq!(aggregate.get("targets"), None);
    let ids = |v: &serde_json::Value| {
        v["findings"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(aggregate), ids(&whole));
    assert_eq!(
        aggregate["findings"]["interception-missing"]["targets"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn shards_split_a_targets_file_so_each_target_runs_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 10);
    let whole = fleet(&targets, &["-o", "json"]).json();
    let (mut ok, mut failing, mut seen) = (0, 0, 0);
    for i in 1..=4 {
        let out = fleet(&targets, &["-o", "json", "--shard", &format!("{i}/4")]);
        let report = out.json();
        // Targets 0, 4, 8 go to shard 1; 1, 5, 9 to shard 2; 2, 6 to 3; 3, 7 to 4.
        let expected = if i <= 2 { 3 } else { 2 };
        assert_eq!(report["summary"]["targets"], expected, "shard {i}");
        ok += report["summary"]["ok"].as_u64().unwrap();
        failing += report["summary"]["failing"].as_u64().unwrap();
        seen += report["targets"].as_array().unwrap().len();
    }
    assert_eq!(seen, 10);
    assert_eq!(Some(ok), whole["summary"]["ok"].as_u64());
    assert_eq!(Some(failing), whole["summary"]["failing"].as_u64());
}

#[test]
fn a_bad_shard_is_a_one_line_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 2);
    for bad in [
        "0/4",
        "5/4",
        "1/0",
        "x",
        "1/4/2",
        "-1/4",
        "",
        "/",
        "1/4 ",
        "1/18446744073709551616",
        "\u{ff11}/4",
        "1/4\n2/4",
    ] {
        let out = fleet(&targets, &[&format!("--shard={bad}")]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("shard"), "{bad}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    // Without --targets there is no list to split.
    let out = run(triage()
        .args(["run", "service-unreachable", "--shard", "1/2", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-missing")));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// The aggregate line (the last) of a `--format jsonl` output, with each finding's targets
/// sorted: a fleet lists them as they finish, in no fixed order.
pub(super) fn aggregate_of(jsonl: &str) -> serde_json::Value {
    let last = jsonl.lines().last().expect("an aggregate line");
    let mut aggregate: serde_json::Value = serde_json::from_str(last).unwrap();
    for finding in aggregate["findings"].as_object_mut().unwrap().values_mut() {
        finding["targets"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|t| t.as_str().unwrap().to_string());
    }
    aggregate.as_object_mut().unwrap().remove("duration_ms");
    aggregate
}

#[test]
fn four_shard_processes_merged_give_the_aggregate_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 11);
    let whole = fleet(&targets, &["-o", "jsonl", "--jobs", "2"]);
    assert_eq!(whole.code, 1, "{}", whole.stderr);
    // The shards run side by side, as the pods of an Indexed Job do.
    let shards: Vec<_> = (1..=4)
        .map(|i| {
            let out = dir.path().join(format!("shard-{i}.jsonl"));
            let child = triage()
                .args(["run", "service-unreachable", "--input", "vip=10.0.0.1"])
                .arg("--targets")
                .arg(&targets)
                .args(["--shard", &format!("{i}/4"), "-o", "jsonl", "--jobs", "2"])
                .arg("--output")
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    let mut files = Vec::new();
    for (i, (out, child)) in (1..).zip(shards) {
        let ended = child.wait_with_output().unwrap();
        // Shards 1 and 3 hold the even positions, the broken VMs; 2 and 4 the healthy ones.
        assert_eq!(
            ended.status.code(),
            Some(i % 2),
            "{}",
            String::from_utf8_lossy(&ended.stderr)
        );
        files.push(out);
    }
    let merged = run(triage()
        .args(["fleet", "merge", "-o", "jsonl"])
        .args(&files));
    assert_eq!(merged.code, 1, "{}", merged.stderr);
    assert_eq!(merged.stdout.lines().count(), 1, "{}", merged.stdout);
    let one = aggregate_of(&whole.stdout);
    assert_eq!(one["summary"]["targets"], 11);
    assert_eq!(
        one["findings"]["interception-missing"]["targets"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(aggregate_of(&merged.stdout), one);
    // Human output says the same in words, and JSON is the aggregate object.
    let human = run(triage().args(["fleet", "merge"]).args(&files));
    assert!(
        human.stdout.contains("interception-missing on 6 target(s)"),
        "{}",
        human.stdout
    );
    let json = run(triage().args(["fleet", "merge", "-o", "json"]).args(&files)).json();
    assert_eq!(json["summary"], one["summary"]);
}

#[test]
fn merge_refuses_a_shard_twice_an_unfinished_shard_and_mixed_fleets() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 4);
    let shard = |i: usize| {
        let out = dir.path().join(format!("shard-{i}.jsonl"));
        let ran = fleet(
            &targets,
            &[
                "--shard",
                &format!("{i}/2"),
                "-o",
                "jsonl",
                "--output",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(ran.code, (i % 2) as i32, "{}", ran.stderr);
        out
    };
    let (one, two) = (shard(1), shard(2));
    let merge = |files: &[&std::path::Path]| run(triage().args(["fleet", "merge"]).args(files));
    let refused = |out: &Run, says: &str| {
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(says), "wanted {says:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    };
    assert_eq!(merge(&[&one, &two]).code, 1);
    refused(&merge(&[&one, &one]), "the same shard given twice");
    // A shard killed before its end has target lines and no aggregate.
    let text = std::fs::read_to_string(&two).unwrap();
    let cut = dir.path().join("cut.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    refused(&merge(&[&one, &cut]), "did not finish");
    // Another runbook's aggregate.
    let other = dir.path().join("other.jsonl");
    std::fs::write(
        &other,
        text.replace(
            "\"runbook\":\"service-unreachable\"",
            "\"runbook\":\"traffic-loop\"",
        ),
    )
    .unwrap();
    refused(&merge(&[&one, &other]), "not the same fleet");
    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "not json\n").unwrap();
    refused(&merge(&[&garbage]), "garbage.jsonl:1:");
    refused(
        &merge(&[Path::new("/nonexistent/shard.jsonl")]),
        "/nonexistent/shard.jsonl",
    );
    let sarif = run(triage().args(["fleet", "merge", "-o", "sarif"]).arg(&one));
    refused(&sarif, "sarif");
}

#[test]
fn a_shard_past_the_end_runs_nothing_and_a_targets_file_without_lines_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets_file(dir.path(), 3);
    // An Indexed Job with more completions than targets: the extra pods have nothing to do.
    let out = fleet(&targets, &["--shard", "5/8", "-o", "jsonl"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(aggregate_of(&out.stdout)["summary"]["targets"], 0);
    // A file with no line breaks (here /dev/zero, endless) stops at the line cap.
    let out = fleet(Path::new("/dev/zero"), &["-o", "jsonl"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("/dev/zero:1: line longer than"),
        "{}",
        out.stderr
    );
    let binary = dir.path().join("binary.txt");
    std::fs::write(&binary, b"vm-0\n\xff\xfe\n").unwrap();
    let out = fleet(&binary, &["-o", "jsonl"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("binary.txt:2: not UTF-8"),
        "{}",
        out.stderr
    );
}
