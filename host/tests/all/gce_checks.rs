//! What the Compute Engine runbooks print for a Shared VPC.

use super::*;

fn finding<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id}: {report:#}"))
}

/// On a Shared VPC the VM's project (222222222222, where the forwarding rules are here) and
/// its network's project (111111111111, the host) differ. The fix for a missing project
/// number names the project whose number it tells you to look up, and the host's only as
/// the alternative; it used to set the host's number while describing the VM's project.
#[test]
fn shared_vpc_project_number_fix_names_the_project_it_describes() {
    let out = run(triage().args([
        "run",
        "td-config-not-found",
        "--bundle",
        "runbooks/td-config-not-found/tests/shared-vpc-project-number-missing",
        "--format",
        "json",
    ]));
    let report = out.json();
    let fix = finding(&report, "project-number-missing")["fix"]
        .as_str()
        .unwrap();
    assert!(
        fix.contains(r#"TRAFFICDIRECTOR_GCP_PROJECT_NUMBER: "222222222222""#),
        "{fix}"
    );
    assert!(
        !fix.contains(r#"TRAFFICDIRECTOR_GCP_PROJECT_NUMBER: "111111111111""#),
        "{fix}"
    );
    assert!(
        fix.contains("gcloud projects describe td-service-project"),
        "{fix}"
    );
    assert!(
        fix.contains(r#"use its number "111111111111" instead"#),
        "{fix}"
    );
}
