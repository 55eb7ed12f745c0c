//! What the Compute Engine runbooks print for a Shared VPC, and (live, in a network namespace)
//! the TCP check to Traffic Director on a VM that intercepts all outbound traffic.

use super::interception_fixes::listener_in;
use super::netns::Netns;
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

/// A namespace set up like a VM that sends all outbound TCP to Envoy (only Envoy's UID 1337
/// excluded, the way Istio-style setups do) and whose firewall blocks egress to 443. The
/// name trafficdirector.googleapis.com resolves (through the namespace's own /etc/hosts,
/// which `ip netns exec` mounts) to an address on loopback; a listener on 15001 stands in
/// for Envoy.
#[test]
fn live_tcp_check_is_unknown_when_roots_traffic_goes_to_envoy() {
    let Some(ns) = Netns::create("tdtcp") else {
        return;
    };
    let etc = std::path::PathBuf::from(format!("/etc/netns/{}", ns.name));
    std::fs::create_dir_all(&etc).unwrap();
    struct RemoveOnDrop(std::path::PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _etc = RemoveOnDrop(etc.clone());
    std::fs::write(
        etc.join("hosts"),
        "127.0.0.1 localhost\n203.0.113.5 trafficdirector.googleapis.com\n",
    )
    .unwrap();
    ns.sh(&["ip", "link", "set", "lo", "up"]);
    ns.sh(&["ip", "addr", "add", "203.0.113.100/24", "dev", "lo"]);
    // Egress to 443 blocked, with a reset so the check does not wait for a timeout.
    ns.sh(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "--dport",
        "443",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
    let proxy_not_connecting = || {
        ns.triage(&[
            "run",
            "proxy-not-connecting",
            "--format",
            "json",
            "--input",
            "proxy_uid=1337",
        ])
        .json()
    };

    // Without interception the check sees the firewall.
    let report = proxy_not_connecting();
    assert_eq!(step(&report, "tcp")["status"], "failed", "{report:#}");
    assert!(finding_ids(&report).contains(&"td-unreachable".to_string()));

    // Intercept everything but Envoy's own traffic: root's connection now lands on "Envoy".
    for rule in [
        "-N ISTIO_OUTPUT",
        "-N ISTIO_REDIRECT",
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
    ] {
        ns.iptables(rule);
    }
    let accepted = listener_in(&ns, 15001);
    let report = proxy_not_connecting();
    let tcp = step(&report, "tcp");
    assert!(
        accepted.try_recv().is_ok(),
        "the check's connection was redirected to the stand-in Envoy"
    );
    // It "connected", but to Envoy: not a pass, and not a firewall verdict either.
    assert_eq!(tcp["status"], "unknown", "{report:#}");
    let reason = tcp["reason"].as_str().unwrap();
    assert!(
        reason.contains("no owner rule excludes root (UID 0)"),
        "{reason}"
    );
    assert!(reason.contains("sudo -u '#1337' curl"), "{reason}");
    assert!(!finding_ids(&report).contains(&"td-unreachable".to_string()));
    assert_eq!(report["summary"]["complete"], false);
}

/// proxy-not-connecting's `role` step on a grant through a group (the guide: the service
/// account needs the Traffic Director client role): triage asks Cloud Identity whether the
/// VM's service account is in each group holding a covering role, and concludes. A member
/// passes, naming the group; a non-member gets `sa-missing-role` with what was checked; a
/// refused check and a grant under an IAM condition are unknown, saying why and what to run.
/// Before, every group grant was unknown with a command to run by hand, and a conditional
/// grant to a group was not seen at all (sa-missing-role fired).
#[test]
fn sa_role_through_a_group_is_checked_with_cloud_identity() {
    let case = |name: &str| {
        let out = run(triage()
            .args([
                "run",
                "proxy-not-connecting",
                "-o",
                "json",
                "--facts",
                "--case",
            ])
            .arg(
                root()
                    .join("runbooks/proxy-not-connecting/tests")
                    .join(name),
            ));
        out.json()
    };
    let check = "gcloud identity groups memberships check-transitive-membership --group-email=mesh-proxies@example.com --member-email=td-vm@td-demo-project.iam.gserviceaccount.com";

    // A member: the role holds through the group, and the facts and the step's capability
    // log name it.
    let report = case("sa-role-via-group");
    let role = step(&report, "role");
    assert_eq!(role["status"], "passed", "{role:#}");
    assert_eq!(role["output"]["access"], "granted", "{role:#}");
    let by = role["output"]["granted_by"].as_str().unwrap();
    assert!(
        by.contains("roles/trafficdirector.client on project td-demo-project")
            && by.contains("group:mesh-proxies@example.com"),
        "{by}"
    );
    assert!(
        role["capabilities"]
            .to_string()
            .contains("check-transitive-membership"),
        "{role:#}"
    );

    // Not a member of the only group: sa-missing-role, its evidence saying what was checked.
    let report = case("sa-not-in-group");
    let missing = finding(&report, "sa-missing-role");
    assert_eq!(missing["severity"], "error");
    let evidence = missing["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("member of mesh-proxies@example.com (roles/trafficdirector.client on project td-demo-project): no")
            && evidence.contains(&format!("`{check}`: hasMembership false")),
        "{evidence}"
    );
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains("none of the groups"),
        "{missing:#}"
    );

    // The check refused (the VM's account may not read groups): unknown with gcloud's
    // words, why, and the command for a workstation.
    let report = case("sa-group-check-denied");
    let role = step(&report, "role");
    assert_eq!(role["status"], "unknown", "{role:#}");
    let reason = role["reason"].as_str().unwrap();
    for needle in [
        "PERMISSION_DENIED: Error(2028)",
        "Groups Reader",
        "from a workstation",
        &format!("`{check}`"),
        "triage probe gcloud td-access --with project=td-demo-project --with member=td-vm@td-demo-project.iam.gserviceaccount.com",
    ] {
        assert!(reason.contains(needle), "no {needle:?} in {reason}");
    }
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );

    // A member, but the grant carries an IAM condition: unknown, showing the condition.
    let report = case("sa-role-conditional");
    let role = step(&report, "role");
    assert_eq!(role["status"], "unknown", "{role:#}");
    let reason = role["reason"].as_str().unwrap();
    assert!(
        reason.contains(r#"under the IAM condition "temporary access" (`request.time < timestamp("2021-02-01T00:00:00Z")`)"#)
            && reason.contains("group:mesh-proxies@example.com"),
        "{reason}"
    );
    assert!(
        report["findings"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
}

/// Inside the VM, with no inputs, serial port 1 (the bootstrap agents' log) is read with the
/// VM's own name, zone and project from the metadata server. It used to be skipped there.
/// When the VM's service account may not read it (403), the step is unknown with the
/// workstation command, and that command, run as written, reads the same VM's serial port.
#[test]
fn serial_port_one_is_read_inside_the_vm_or_unknown_with_the_workstation_command() {
    let case = root().join("runbooks/auto-deploy-bootstrap/tests/in-vm-serial-failed");
    let out = run(triage()
        .args(["run", "auto-deploy-bootstrap", "-o", "json", "--case"])
        .arg(&case));
    let report = out.json();
    assert_eq!(
        step(&report, "serial-output")["status"],
        "passed",
        "{report:#}"
    );
    let failed = finding(&report, "bootstrap-failed");
    let evidence = failed["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("serial port 1:")
            && evidence.contains("ERROR: failed to configure IPv6 traffic interception"),
        "{evidence}"
    );
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("including the ip6tables"),
        "{failed:#}"
    );

    let case = root().join("runbooks/auto-deploy-bootstrap/tests/in-vm-serial-denied");
    let out = run(triage()
        .args(["run", "auto-deploy-bootstrap", "-o", "json", "--case"])
        .arg(&case));
    // Exit 1: the guest attributes say FAILED, an error finding, whatever the serial port.
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(finding_ids(&report), ["bootstrap-failed"], "{report:#}");
    let serial = step(&report, "serial-output");
    assert_eq!(serial["status"], "unknown", "{serial:#}");
    let reason = serial["reason"].as_str().unwrap();
    let command = "triage run auto-deploy-bootstrap --input instance=td-vm-1 --input zone=us-central1-a --input project=td-demo-project";
    assert!(reason.contains(&format!("`{command}`")), "{reason}");
    assert!(
        reason.contains("compute.instances.getSerialPortOutput")
            && reason.contains("123456789012-compute@developer.gserviceaccount.com"),
        "{reason}"
    );

    // The command from a workstation, with a stand-in gcloud on PATH (no test reaches Google
    // Cloud): both reads name that VM, and the serial port is read.
    let dir = tempfile::tempdir().unwrap();
    let tests = root().join("runbooks/auto-deploy-bootstrap/tests");
    let log = super::gcloud_target::answering_gcloud(
        dir.path(),
        &tests.join("workstation-failed/guest-attributes.json"),
        Some(&tests.join("workstation-failed/serial-output.txt")),
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let mut cmd = triage();
    cmd.args(command.split(' ').skip(1))
        .args(["-o", "json"])
        .env("PATH", format!("{}:{path}", dir.path().display()));
    let out = run(&mut cmd);
    let report = out.json();
    assert_eq!(
        step(&report, "serial-output")["status"],
        "passed",
        "{report:#}"
    );
    assert_eq!(finding_ids(&report), ["bootstrap-failed"], "{report:#}");
    let ran = std::fs::read_to_string(&log).unwrap();
    assert!(
        ran.contains(
            "get-serial-port-output\n--zone\nus-central1-a\n--port\n1\n--project\ntd-demo-project\n--\ntd-vm-1\n"
        ),
        "{ran}"
    );
}

/// Inside a VM whose bootstrap FINISHED, serial port 1 is not read: it would decide nothing,
/// and a service account that may not read it (the usual case) left every healthy VM's run
/// incomplete (exit 3). The case's bundle holds that 403; the run is complete, exit 0.
#[test]
fn a_finished_bootstrap_inside_the_vm_does_not_read_the_serial_port() {
    let case = root().join("runbooks/auto-deploy-bootstrap/tests/in-vm-finished-serial-not-read");
    let out = run(triage()
        .args(["run", "auto-deploy-bootstrap", "-o", "json", "--case"])
        .arg(&case));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(
        step(&report, "serial-output")["status"],
        "skipped",
        "{report:#}"
    );
    assert_eq!(report["summary"]["complete"], true, "{report:#}");
}

/// The VM's name comes from the metadata server, which the target controls. A name that
/// reads as a gcloud flag never reaches gcloud as one: the serial-output call is refused
/// before it runs, and the step says so (errored, not passed).
#[test]
fn a_hostile_instance_name_from_the_metadata_server_never_becomes_a_gcloud_flag() {
    let dir = tempfile::tempdir().unwrap();
    let case = root().join("runbooks/auto-deploy-bootstrap/tests/in-vm-serial-denied");
    let bundle = std::fs::read_to_string(case.join("bundle.yaml")).unwrap();
    let hostile = "--impersonate-service-account=owner@evil.example";
    let bundle = bundle.replace("    body: \"td-vm-1\"", &format!("    body: \"{hostile}\""));
    assert!(bundle.contains(hostile));
    std::fs::write(dir.path().join("bundle.yaml"), bundle).unwrap();
    let out = run(triage()
        .args(["run", "auto-deploy-bootstrap", "-o", "json", "--bundle"])
        .arg(dir.path()));
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let serial = step(&report, "serial-output");
    assert_eq!(serial["status"], "errored", "{serial:#}");
    let reason = serial["reason"].as_str().unwrap();
    assert!(reason.contains("begins with `-`"), "{reason}");
    assert_eq!(serial["capabilities"][0]["outcome"], "denied", "{serial:#}");
}
