//! A step's mark is a claim about the system: `unknown` when the probe could not see its
//! subject (never `passed`), a warning or error finding wins over unknown, needs are met by
//! any step that gave facts without an error finding, and an incomplete diagnosis exits 3.

use super::*;

fn verdicts(extra: &[&str]) -> (Run, serde_json::Value) {
    let mut cmd = triage();
    cmd.args(["run"])
        .arg(data("verdicts/runbook.yaml"))
        .arg("--bundle")
        .arg(data("verdicts/gcloud-vm"))
        .args(["--format", "json"])
        .args(extra);
    let out = run(&mut cmd);
    let json = out.json();
    (out, json)
}

#[test]
fn a_step_that_cannot_see_its_subject_is_unknown_and_the_run_is_incomplete() {
    let (out, report) = verdicts(&["--input", "hide=true"]);
    assert_eq!(out.code, 3, "{}", out.stdout);
    let process = step(&report, "process");
    assert_eq!(process["status"], "unknown", "{report:#}");
    assert_eq!(
        process["reason"],
        "the process table of bundle:".to_string()
            + data("verdicts/gcloud-vm").to_str().unwrap()
            + " (gcloud://vm-1?zone=us-central1-a&project=p-1) could not be read"
    );
    // Facts were gathered, so the steps that need them run.
    assert_eq!(step(&report, "dependent")["status"], "passed");
    assert_eq!(report["summary"]["unknown"], 2);
    assert_eq!(report["summary"]["complete"], false);
}

#[test]
fn the_human_report_marks_unknown_and_says_the_verdict_is_incomplete() {
    let mut cmd = triage();
    cmd.args(["run"])
        .arg(data("verdicts/runbook.yaml"))
        .arg("--bundle")
        .arg(data("verdicts/gcloud-vm"))
        .args(["--input", "hide=true"]);
    let out = run(&mut cmd);
    assert_eq!(out.code, 3);
    assert!(out.stdout.contains("  ? process"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Incomplete: not every check could see its subject (process, warned)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_warning_wins_over_unknown_and_does_not_block_what_needs_it() {
    let (out, report) = verdicts(&["--input", "warn=true"]);
    let warned = step(&report, "warned");
    assert_eq!(warned["status"], "failed", "{report:#}");
    assert_eq!(warned["severity"], "warning");
    assert!(warned.get("reason").is_none(), "{warned:#}");
    // Nothing unknown or errored is left, and a warning is below --fail-on error.
    assert_eq!(report["summary"]["complete"], true, "{report:#}");
    assert_eq!(out.code, 0);
    let (out, _) = verdicts(&["--input", "warn=true", "--fail-on", "warning"]);
    assert_eq!(out.code, 1);
}

#[test]
fn templates_see_the_targets_identity() {
    let (_, report) = verdicts(&[]);
    let fix = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "fix-names-the-vm")
        .expect("the identity finding fired");
    assert_eq!(fix["title"], "gcloud compute ssh vm-1 --zone us-central1-a");
    // An info finding leaves the mark at passed, with its severity noted.
    assert_eq!(step(&report, "dependent")["status"], "passed");
    assert_eq!(step(&report, "dependent")["severity"], "info");
}
