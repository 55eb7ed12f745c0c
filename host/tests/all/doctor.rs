//! `triage doctor`: on bundles made of several scenario bundles (a VM with Envoy's admin
//! port answering, no metadata server and no cluster; a VM whose Envoy runs without an
//! admin endpoint), live in a network namespace with no Envoy, with a team's runbooks that
//! declare `applies:`, and with --target, --record and --output.

use super::*;
use serde_yaml::Value as Yaml;
use std::path::Path;

/// Merges bundles into one (the first answer for a call wins, as in replay).
fn merge_bundles(parts: &[&str], into: &Path) {
    let mut calls = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let dir = root().join(part);
        let bundle: Yaml =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("bundle.yaml")).unwrap())
                .unwrap();
        for call in bundle["calls"].as_sequence().unwrap() {
            let mut call = call.clone();
            for key in ["stdout_file", "stderr_file", "body_file"] {
                if let Some(file) = call.get(key).and_then(Yaml::as_str).map(str::to_string) {
                    let renamed = format!("{n}-{file}");
                    std::fs::copy(dir.join(&file), into.join(&renamed)).unwrap();
                    call[key] = Yaml::from(renamed);
                }
            }
            calls.push(call);
        }
    }
    let mut merged = serde_yaml::Mapping::new();
    merged.insert("target".into(), "merged-vm".into());
    merged.insert("recorded_at".into(), 1610451554.into());
    merged.insert("calls".into(), Yaml::Sequence(calls));
    std::fs::write(
        into.join("bundle.yaml"),
        serde_yaml::to_string(&merged).unwrap(),
    )
    .unwrap();
}

#[test]
fn doctor_detects_runs_what_applies_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    merge_bundles(
        &[
            "runbooks/envoy-version/tests/guide-1.15.1",
            "runbooks/endpoints-mostly-unhealthy/tests/mostly-unhealthy",
            "runbooks/traffic-loop/tests/uid-excluded",
            "examples/service-unreachable/interception-in-place",
        ],
        dir.path(),
    );
    let out = run(triage()
        .args([
            "doctor",
            "--format",
            "json",
            "--input",
            "vip=10.0.0.1",
            "--bundle",
        ])
        .arg(dir.path()));
    let report = out.json();
    assert_eq!(report["schema"], "triage.doctor/v1");
    assert_eq!(report["detected"]["envoy_admin"], true, "{report:#}");
    assert_eq!(report["detected"]["envoy_process"], true, "{report:#}");
    assert_eq!(report["detected"]["metadata_server"], false);
    assert_eq!(report["detected"]["kubernetes"], false);
    let ran: Vec<&str> = report["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ran"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "traffic-loop",
        "unconfigured-service-blackhole",
        "envoy-version",
        "service-unreachable",
        "endpoints-mostly-unhealthy",
    ] {
        assert!(ran.contains(&id), "{id} did not run: {ran:?}");
    }
    for id in ["auto-deploy-bootstrap", "gke-pods-not-starting"] {
        assert!(
            !ran.contains(&id),
            "{id} ran without a metadata server or cluster"
        );
    }
    let merged: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["runbook"].as_str().unwrap().to_string(),
                f["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        merged.contains(&(
            "endpoints-mostly-unhealthy".into(),
            "endpoints-mostly-unhealthy".into()
        )),
        "{merged:?}"
    );
    assert!(
        merged.contains(&("envoy-version".into(), "envoy-version".into())),
        "{merged:?}"
    );
    // Markdown merges the same reports for a ticket.
    let md = run(triage()
        .args([
            "doctor",
            "--format",
            "markdown",
            "--input",
            "vip=10.0.0.1",
            "--bundle",
        ])
        .arg(dir.path()));
    assert!(md.stdout.starts_with("# triage doctor"), "{}", md.stdout);
    assert!(md.stdout.contains("## envoy-version: "), "{}", md.stdout);
}

/// The case: in a network namespace with no Envoy (no process, nothing on the admin
/// port, no interception rules), doctor used to run two runbooks, print "0 finding(s)" and
/// exit 0. The basics always run and Envoy being down is a finding.
#[test]
fn doctor_in_a_namespace_without_envoy_is_never_clean() {
    let Some(ns) = super::netns::Netns::create("doctor") else {
        return;
    };
    let human = ns.triage(&["doctor"]);
    assert_eq!(human.code, 1, "{}\n{}", human.stdout, human.stderr);
    assert!(!human.stdout.contains(" 0 finding(s)"), "{}", human.stdout);
    // The one-screen summary comes before the per-runbook detail.
    let summary_at = human
        .stdout
        .find("Findings\n  ERROR")
        .expect("a summary of findings");
    let detail_at = human
        .stdout
        .find("service-unreachable A service")
        .expect("service-unreachable's own report");
    assert!(summary_at < detail_at, "{}", human.stdout);
    assert!(
        human.stdout.contains("✗ service-unreachable"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("not run (applies with envoy-admin, not detected)"),
        "{}",
        human.stdout
    );

    let json = ns.triage(&["doctor", "--format", "json"]).json();
    assert_eq!(json["detected"]["envoy_process"], false);
    assert_eq!(json["detected"]["envoy_admin"], false);
    let ran: Vec<&str> = json["runbooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ran"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for basic in [
        "service-unreachable",
        "traffic-loop",
        "unconfigured-service-blackhole",
    ] {
        assert!(ran.contains(&basic), "{basic} did not run: {ran:?}");
    }
    let ids: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"envoy-not-running"), "{ids:?}");
    assert!(ids.contains(&"interception-missing"), "{ids:?}");
    // No process, so the silent admin port is explained by envoy-not-running alone.
    assert!(!ids.contains(&"envoy-admin-unreachable"), "{ids:?}");
    assert!(json["summary"]["errors"].as_u64().unwrap() >= 2, "{json:#}");
}

/// Envoy runs (ps shows it) but nothing answers on the admin port: a warning that says
/// so, and the run is not clean.
#[test]
fn doctor_reports_an_admin_endpoint_that_does_not_answer_while_envoy_runs() {
    let dir = tempfile::tempdir().unwrap();
    merge_bundles(
        &[
            "runbooks/traffic-loop/tests/envoy-uid-not-excluded",
            "runbooks/envoy-version/tests/binary-only",
        ],
        dir.path(),
    );
    let out = run(triage()
        .args(["doctor", "--format", "json", "--bundle"])
        .arg(dir.path()));
    let report = out.json();
    assert_eq!(report["detected"]["envoy_process"], true, "{report:#}");
    assert_eq!(report["detected"]["envoy_admin"], false, "{report:#}");
    let admin: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "envoy-admin-unreachable")
        .collect();
    assert_eq!(admin.len(), 1, "{report:#}");
    assert_eq!(admin[0]["runbook"], "doctor-detect");
    assert_eq!(admin[0]["severity"], "warning");
    assert_ne!(out.code, 0, "{}", out.stdout);
}

/// A team's runbooks join doctor by declaring `applies:`; one without it is left out, one
/// whose detection is missing is listed as not run with the reason, and one that declares
/// `applies:` but does not load makes the diagnosis incomplete.
#[test]
fn a_teams_runbooks_join_doctor_through_applies() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = |id: &str, applies: &str| {
        format!(
            "apiVersion: triage/v1\nid: {id}\n{applies}title: {id}\nsteps:\n  - id: hosts\n    title: /etc/hosts is readable\n    probe: {{plugin: host, action: file-stat, with: {{path: /etc/hosts}}}}\n"
        )
    };
    std::fs::write(
        dir.path().join("team-always.yaml"),
        runbook("team-always", "applies: always\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("team-cluster.yaml"),
        runbook("team-cluster", "applies: [kubernetes]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("team-by-name.yaml"),
        runbook("team-by-name", ""),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("team-broken.yaml"),
        "apiVersion: triage/v1\nid: team-broken\napplies: always\ntitle: x\nsteps: []\n",
    )
    .unwrap();
    let bundle = tempfile::tempdir().unwrap();
    merge_bundles(
        &["runbooks/traffic-loop/tests/envoy-uid-not-excluded"],
        bundle.path(),
    );
    let out = run(triage()
        .env("TRIAGE_PATH", dir.path())
        .args(["doctor", "--format", "json", "--bundle"])
        .arg(bundle.path()));
    let report = out.json();
    let outcome = |id: &str| {
        report["runbooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
    };
    assert_eq!(outcome("team-always").unwrap()["ran"], true, "{report:#}");
    let cluster = outcome("team-cluster").unwrap();
    assert_eq!(cluster["ran"], false);
    assert_eq!(cluster["reason"], "applies with kubernetes, not detected");
    assert!(outcome("team-by-name").is_none(), "{report:#}");
    let broken = outcome("team-broken").unwrap();
    assert_eq!(broken["broken"], true, "{broken:#}");
    assert_eq!(report["summary"]["complete"], false);

    // A wrong `applies:` value is a load error with its line and what is accepted.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, runbook("bad", "applies: [vm]\n")).unwrap();
    let lint = run(triage().arg("lint").arg(&bad));
    assert_eq!(lint.code, 2, "{}{}", lint.stdout, lint.stderr);
    let said = format!("{}{}", lint.stdout, lint.stderr);
    assert!(
        said.contains("bad.yaml:3:") && said.contains("metadata-server"),
        "{said}"
    );
}

/// `--record` writes what doctor saw as a bundle that `--bundle` replays to the same
/// verdict; `--output` writes the report too; `--target` takes the run's target specs.
#[test]
fn doctor_records_replays_and_writes_its_report() {
    let Some(ns) = super::netns::Netns::create("doctor-rec") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let written = dir.path().join("doctor.json");
    let live = ns.triage(&[
        "doctor",
        "--target",
        "local",
        "--format",
        "json",
        "--record",
        bundle.to_str().unwrap(),
        "--output",
        written.to_str().unwrap(),
    ]);
    assert_eq!(live.code, 1, "{}", live.stderr);
    let from_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(from_file["findings"], live.json()["findings"]);
    let replay = run(triage()
        .args(["doctor", "--format", "json", "--bundle"])
        .arg(&bundle));
    assert_eq!(replay.code, 1, "{}", replay.stderr);
    let ids = |r: &serde_json::Value| {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&replay.json()), ids(&live.json()));

    let bad = run(triage().args(["doctor", "--target", "ftp://x"]));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
}

/// A bundle recorded by service-unreachable holds Envoy's /config_dump but not /server_info:
/// the admin endpoint answered when it was recorded, so doctor must not call it unreachable
/// (it used to, reading only /server_info), and the runbooks that read the admin endpoint run.
#[test]
fn doctor_on_a_bundle_without_server_info_falls_back_to_the_recorded_config_dump() {
    let out = run(triage()
        .args(["doctor", "--format", "json", "--bundle"])
        .arg(root().join("examples/service-unreachable/interception-in-place")));
    let report = out.json();
    assert_eq!(report["detected"]["envoy_admin"], true, "{report:#}");
    let ids: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"envoy-admin-unreachable"), "{ids:?}");
}

/// When the bundle holds none of the admin endpoint's answers, the warning says which calls
/// the bundle lacks, so the reader knows to record them rather than to look for a dead port.
#[test]
fn doctor_names_the_admin_calls_a_bundle_lacks() {
    let dir = tempfile::tempdir().unwrap();
    merge_bundles(
        &["runbooks/traffic-loop/tests/envoy-uid-not-excluded"],
        dir.path(),
    );
    let out = run(triage()
        .args(["doctor", "--format", "json", "--bundle"])
        .arg(dir.path()));
    let report = out.json();
    let admin = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "envoy-admin-unreachable")
        .cloned()
        .unwrap_or_else(|| panic!("{report:#}"));
    let detail = admin["detail"].as_str().unwrap();
    for call in ["/server_info", "/config_dump", "/clusters"] {
        assert!(detail.contains(call), "{detail}");
    }
    assert!(detail.contains("not captured"), "{detail}");
}
