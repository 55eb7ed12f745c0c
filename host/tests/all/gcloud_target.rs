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
