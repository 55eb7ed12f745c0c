//! `triage doctor` on a bundle made of several scenario bundles: a VM with Envoy's admin
//! port answering, no metadata server and no cluster.

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
