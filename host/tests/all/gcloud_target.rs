//! The gcloud:// target through the CLI: a workstation run given only `instance` and `zone`
//! names the `--target gcloud://…` command that runs the VM-side checks, and hostile
//! instance names are refused in one line before any gcloud runs.
//!
//! **`gcloud` here is a stand-in**: a script put first on PATH that records its argv and
//! answers as gcloud does when the login is refused. No test may reach Google Cloud.

use super::*;
use std::path::Path;

/// A directory holding the stand-in `gcloud`, which appends each argument on its own line
/// to `ran.log` beside it and fails as `gcloud compute ssh` does when ssh refuses the key.
fn stand_in_gcloud(dir: &Path) -> PathBuf {
    let log = dir.join("ran.log");
    let script = dir.join("gcloud");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\necho 'alice@203.0.113.7: Permission denied (publickey).' >&2\n\
             echo 'ERROR: (gcloud.compute.ssh) [/usr/bin/ssh] exited with return code [255].' >&2\nexit 255\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

fn with_stand_in(cmd: &mut Command, dir: &Path) {
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", dir.display()));
}

/// From a workstation (instance and zone, no target), steps 2-3 are unknown, never skipped in
/// silence, and the reason's command, run as written, goes to that VM through gcloud.
#[test]
fn a_workstation_run_names_the_gcloud_target_that_runs_the_vm_checks() {
    let case =
        root().join("runbooks/service-proxy-template-unreachable/tests/workstation-agent-stale");
    let out = run(triage()
        .args([
            "run",
            "service-proxy-template-unreachable",
            "-o",
            "json",
            "--case",
        ])
        .arg(&case));
    let report = out.json();
    let on_vm = step(&report, "on-the-vm");
    assert_eq!(on_vm["status"], "unknown", "{on_vm:#}");
    assert_eq!(report["summary"]["complete"], false);
    let reason = on_vm["reason"].as_str().unwrap();
    let command = "triage run service-proxy-template-unreachable --target 'gcloud://td-vm-1?zone=us-central1-a' --input vip=10.7.240.20 --input port=80";
    assert!(reason.contains(&format!("`{command}`")), "{reason}");

    // The command as a shell reads it, run here: gcloud (the stand-in) is asked to ssh to
    // td-vm-1 in us-central1-a, and the refused login is reported, not passed.
    let dir = tempfile::tempdir().unwrap();
    let log = stand_in_gcloud(dir.path());
    let mut cmd = triage();
    cmd.args([
        "run",
        "service-proxy-template-unreachable",
        "--target",
        "gcloud://td-vm-1?zone=us-central1-a",
        "--input",
        "vip=10.7.240.20",
        "--input",
        "port=80",
        "-o",
        "json",
    ]);
    with_stand_in(&mut cmd, dir.path());
    let out = run(&mut cmd);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let ran = std::fs::read_to_string(&log).unwrap();
    assert!(
        ran.starts_with("compute\nssh\ntd-vm-1\n--zone\nus-central1-a\n--quiet\n--command\n"),
        "{ran}"
    );
    let report = out.json();
    let bootstrap = step(&report, "bootstrap");
    assert_eq!(bootstrap["status"], "unknown", "{bootstrap:#}");
    assert!(
        bootstrap["reason"]
            .as_str()
            .unwrap()
            .contains("Permission denied (publickey)"),
        "{bootstrap:#}"
    );
}

/// Hostile instance names, as a target or as inputs: one line naming the problem, exit 2,
/// and no gcloud process at all.
#[test]
fn hostile_gcloud_instance_names_are_refused_before_gcloud_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = stand_in_gcloud(dir.path());
    let long = "a".repeat(10_000);
    for name in [
        "-oProxyCommand=touch /tmp/triage-owned",
        "--command=id",
        "vm;id",
        "vm\nid",
        long.as_str(),
    ] {
        let target = format!("gcloud://{name}?zone=us-central1-a");
        let as_input = format!("instance={name}");
        for args in [
            vec!["run", "inbound-interception", "--target", target.as_str()],
            vec!["probe", "iptables", "rules", "--target", target.as_str()],
            vec![
                "run",
                "inbound-interception",
                "--input",
                as_input.as_str(),
                "--input",
                "zone=us-central1-a",
            ],
            vec![
                "run",
                "envoy-version",
                "--input",
                as_input.as_str(),
                "--input",
                "zone=us-central1-a",
            ],
        ] {
            let mut cmd = triage();
            cmd.args(&args);
            with_stand_in(&mut cmd, dir.path());
            let out = run(&mut cmd);
            let shown: String = name.chars().take(40).collect();
            assert_eq!(out.code, 2, "{shown:?} {args:?}: {}", out.stderr);
            let lines: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect();
            assert_eq!(lines.len(), 1, "{shown:?} {args:?}: {}", out.stderr);
            assert!(
                lines[0].contains("instance") && !lines[0].contains("panicked"),
                "{shown:?} {args:?}: {}",
                lines[0]
            );
            assert!(!log.exists(), "gcloud ran for {shown:?} {args:?}");
        }
    }
}

/// A directory holding a stand-in `gcloud` for the `td-access` action (no test may reach
/// Google Cloud, and the real command needs Google credentials): it appends each argument
/// on its own line to `ran.log`, prints `policy.json` for `projects get-ancestors-iam-policy`
/// and says "not a member" for every `identity groups memberships check-transitive-membership`.
fn stand_in_gcloud_for_iam(dir: &Path, policy: &str) -> PathBuf {
    let log = dir.join("ran.log");
    std::fs::write(dir.join("policy.json"), policy).unwrap();
    let script = dir.join("gcloud");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{log}'\ncase \"$1 $2\" in\n\
             'projects get-ancestors-iam-policy') cat '{policy}' ;;\n\
             'identity groups') echo '{{}}' ;;\n\
             *) echo 'ERROR: (gcloud) not in this stand-in' >&2; exit 2 ;;\nesac\n",
            log = log.display(),
            policy = dir.join("policy.json").display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

/// Group names come from the target's IAM policy and become gcloud arguments. Names that
/// would be read as options (`--flags-file=…` makes gcloud read more flags from a file) are
/// never passed: the plugin checks only plain e-mail addresses and says which it did not,
/// and, were a plugin to try, the declared pattern and the default policy refuse them.
#[test]
fn hostile_group_names_in_an_iam_policy_never_reach_gcloud() {
    let sa = "td-vm@td-demo-project.iam.gserviceaccount.com";
    let policy = r#"[{"id": "td-demo-project", "type": "project", "policy": {"bindings": [
        {"role": "roles/trafficdirector.client", "members": [
            "group:--flags-file=/tmp/triage-evil.yaml", "group:-evil@example.com",
            "group:mesh-proxies@example.com", "domain:example.com"]}]}}]"#;
    let dir = tempfile::tempdir().unwrap();
    let log = stand_in_gcloud_for_iam(dir.path(), policy);
    let mut cmd = triage();
    cmd.args([
        "probe",
        "gcloud",
        "td-access",
        "--with",
        "project=td-demo-project",
        "--with",
        &format!("member={sa}"),
    ]);
    with_stand_in(&mut cmd, dir.path());
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let outcome: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let facts = &outcome["facts"];

    let ran = std::fs::read_to_string(&log).unwrap();
    assert!(
        !ran.contains("flags-file") && !ran.contains("-evil@"),
        "{ran}"
    );
    assert!(
        ran.contains(&format!(
            "check-transitive-membership\n--group-email\nmesh-proxies@example.com\n--member-email\n{sa}\n--format=json\n"
        )),
        "{ran}"
    );
    let not_run: Vec<&str> = facts["group_checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["not_run"].is_string())
        .map(|c| c["group"].as_str().unwrap())
        .collect();
    assert_eq!(
        not_run,
        ["--flags-file=/tmp/triage-evil.yaml", "-evil@example.com"],
        "{facts:#}"
    );
    // Unchecked groups leave the verdict open; the domain grant never covers a service account.
    assert_eq!(facts["access"], "unknown", "{facts:#}");
    assert_eq!(
        facts["domain_grants"][0],
        "domain:example.com: roles/trafficdirector.client on project td-demo-project"
    );

    // The host's half: the argv a plugin would build from such a name is neither declared
    // by the action (`--group-email *`) nor allowed by the default policy, since `*` never
    // matches an argument that begins with `-`.
    use triage::capability::{DeclaredCapability, Grants, Policy, exec};
    let argv = |group: &str| -> Vec<String> {
        [
            "gcloud",
            "identity",
            "groups",
            "memberships",
            "check-transitive-membership",
            "--group-email",
            group,
            "--member-email",
            sa,
            "--format=json",
        ]
        .map(String::from)
        .to_vec()
    };
    let declared = DeclaredCapability::Exec(argv("*"));
    let policy = std::sync::Arc::new(Policy::builtin());
    let grants = Grants::new(
        "gcloud",
        "td-access",
        &[declared],
        &serde_json::json!({}),
        policy.clone(),
    );
    let plain = exec::Request {
        argv: argv("mesh-proxies@example.com"),
    };
    assert!(grants.check(&plain).is_ok());
    for hostile in ["--flags-file=/tmp/triage-evil.yaml", "-evil@example.com"] {
        let request = exec::Request {
            argv: argv(hostile),
        };
        assert!(grants.check(&request).is_err(), "{hostile}");
        assert!(!policy.allows(&request), "{hostile}");
    }
}

/// A stand-in `gcloud` that logs its argv to `ran.log` and answers `get-guest-attributes`
/// with `guest-attributes.json` and `get-serial-port-output` with `serial-output.txt` (files
/// put beside it), as gcloud does for a VM the account may read.
pub fn answering_gcloud(dir: &Path, guest_attributes: &Path, serial: Option<&Path>) -> PathBuf {
    let log = dir.join("ran.log");
    std::fs::copy(guest_attributes, dir.join("guest-attributes.json")).unwrap();
    if let Some(serial) = serial {
        std::fs::copy(serial, dir.join("serial-output.txt")).unwrap();
    }
    let d = dir.display();
    let script = dir.join("gcloud");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\ncase \"$3\" in\n\
             get-guest-attributes) cat '{d}/guest-attributes.json' ;;\n\
             get-serial-port-output) cat '{d}/serial-output.txt' ;;\n\
             *) echo 'ERROR: (gcloud) unexpected command' >&2; exit 2 ;;\nesac\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

/// Every capability call of a JSON report, as "capability request".
pub fn capability_calls(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["capabilities"].as_array().cloned().unwrap_or_default())
        .map(|c| format!("{} {}", c["capability"], c["request"]))
        .collect()
}

/// The guide reads an automatic deployment's Envoy version from a workstation with
/// `gcloud compute instances get-guest-attributes … --query-path=gce-service-proxy/proxy-version`,
/// without SSH. With `instance` and `zone` envoy-version does that, and never reads this
/// machine's own Envoy (binary or admin port) as if it were the VM's: those steps are skipped,
/// and when the attribute gives no version the run is incomplete with the `--target
/// gcloud://…` command that reads them on the VM.
#[test]
fn envoy_version_from_a_workstation_reads_the_vms_attribute_not_the_local_envoy() {
    // Recorded: the workstation has an Envoy 1.12.0 of its own; the VM's attribute is 1.15.1.
    let case = root().join("runbooks/envoy-version/tests/workstation-guide-1.15.1");
    let out = run(triage()
        .args(["run", "envoy-version", "-o", "json", "--case"])
        .arg(&case));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(finding_ids(&report), ["envoy-version"], "{report:#}");
    let version = &report["findings"][0];
    assert_eq!(version["title"], "Envoy 1.15.1");
    let detail = version["detail"].as_str().unwrap();
    assert!(
        detail
            .contains("gcloud compute instances get-guest-attributes td-vm-1 --zone us-central1-a"),
        "{detail}"
    );
    assert!(
        detail
            .contains("`triage run envoy-version --target 'gcloud://td-vm-1?zone=us-central1-a'`"),
        "{detail}"
    );
    assert!(!out.stdout.contains("1.12.0"), "{}", out.stdout);

    // No version in the attribute: unknown, with the command that reads the VM itself.
    let case = root().join("runbooks/envoy-version/tests/workstation-no-attribute");
    let out = run(triage()
        .args(["run", "envoy-version", "-o", "json", "--case"])
        .arg(&case));
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let report = out.json();
    let on_vm = step(&report, "on-the-vm");
    assert_eq!(on_vm["status"], "unknown", "{on_vm:#}");
    let reason = on_vm["reason"].as_str().unwrap();
    assert!(
        reason
            .contains("`triage run envoy-version --target 'gcloud://td-vm-1?zone=us-central1-a'`"),
        "{reason}"
    );
    assert!(!out.stdout.contains("1.12.0"), "{}", out.stdout);

    // Live, with a stand-in gcloud on PATH: the guide's gcloud call for that VM, and no call
    // to an Envoy binary or admin port on this machine.
    let dir = tempfile::tempdir().unwrap();
    let log = answering_gcloud(
        dir.path(),
        &root().join("runbooks/envoy-version/tests/workstation-guide-1.15.1/guest-attributes.json"),
        None,
    );
    let mut cmd = triage();
    cmd.args([
        "run",
        "envoy-version",
        "--input",
        "instance=td-vm-1",
        "--input",
        "zone=us-central1-a",
        "--input",
        "project=my-project",
        "-o",
        "json",
    ]);
    with_stand_in(&mut cmd, dir.path());
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        ran,
        "compute\ninstances\nget-guest-attributes\n--zone\nus-central1-a\n--project\nmy-project\n\
         --query-path=gce-service-proxy/\n--format=json\n--\ntd-vm-1\n"
    );
    let report = out.json();
    assert_eq!(finding_ids(&report), ["envoy-version"], "{report:#}");
    for id in ["attrs", "binary", "admin"] {
        assert_eq!(step(&report, id)["status"], "skipped", "{report:#}");
    }
    let calls = capability_calls(&report);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains("get-guest-attributes"), "{calls:?}");
}
