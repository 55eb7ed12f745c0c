//! Envoy's log found from the running Envoy, for real: a process named `envoy` (a copy of
//! sleep) started with its stderr on a file of a LOG_DIR that is not the guide's example, on
//! /etc/shadow, on a socket (journald's shape) and on a file with a hostile name, and the
//! envoy-logs runbook run live beside it with the built-in policy. Each runs in its own PID
//! namespace (`unshare --pid --mount-proc`), so `ps` there sees this test's Envoy and no other
//! test's.

use super::*;
use serde_json::Value;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A directory under /var/log (the built-in policy's read grant), removed on drop.
struct LogDir(PathBuf);

impl LogDir {
    fn new(name: &str) -> LogDir {
        let dir = PathBuf::from(format!(
            "/var/log/triage-logpath-{name}-{}/custom",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        LogDir(dir)
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

/// Runs `triage run envoy-logs ARGS` in a new PID namespace beside an `envoy` whose stderr is
/// `redirect` (bash syntax, `$1` being `target`) or, without one, `envoy_stderr`. Waits until
/// the envoy runs its own executable before triage looks.
fn run_beside_envoy(
    redirect: &str,
    target: &str,
    envoy_stderr: Stdio,
    args: &[&str],
) -> Option<Run> {
    let dir = tempfile::tempdir().unwrap();
    let envoy = dir.path().join("envoy");
    std::fs::copy("/bin/sleep", &envoy).unwrap();
    let triage_cmd = triage();
    let mut cmd = Command::new("unshare");
    for (key, value) in triage_cmd.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let script = format!(
        "\"$0\" 30 {redirect} & envoy=$!\n\
         while [ \"$(readlink /proc/$envoy/exe)\" != \"$0\" ]; do sleep 0.02; done\n\
         \"$2\" run envoy-logs \"${{@:3}}\" 2>/dev/null; rc=$?\n\
         kill $envoy; exit $rc"
    );
    cmd.current_dir(root())
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--",
            "bash",
            "-c",
            &script,
        ])
        .arg(&envoy)
        .arg(target)
        .arg(triage_cmd.get_program())
        .args(args)
        .stderr(envoy_stderr);
    let out = run(&mut cmd);
    if out.code != 0 && out.stdout.is_empty() {
        // Not root, or no PID namespaces here: nothing to say about the runbook.
        eprintln!("skipped: unshare --pid failed (exit {})", out.code);
        return None;
    }
    Some(out)
}

fn td_error_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S.000"])
        .output()
        .unwrap();
    let now = String::from_utf8(out.stdout).unwrap();
    format!(
        "[{}][12][warning][config] [source/common/config/grpc_stream.h:101] StreamAggregatedResources gRPC config stream closed: 5, Traffic Director configuration was not found for network \"custom-net\" in project \"123456789012\".\n",
        now.trim()
    )
}

const NO_ADMIN: [&str; 4] = [
    "--format",
    "json",
    "--input",
    "admin_url=http://127.0.0.1:1",
];

fn json_with_facts(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = NO_ADMIN.iter().map(|s| s.to_string()).collect();
    args.push("--facts".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn envoy_logs_reads_the_file_envoys_stderr_is_open_on() {
    let dir = LogDir::new("stderr");
    let log = dir.0.join("envoy.err.log");
    std::fs::write(&log, td_error_now()).unwrap();
    let args = json_with_facts(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `2>>`: appending, as the file already holds the error.
    let Some(out) = run_beside_envoy("2>>\"$1\"", log.to_str().unwrap(), Stdio::null(), &args)
    else {
        return;
    };
    let report: Value = out.json();
    assert_eq!(out.code, 1, "{report:#}");
    assert_eq!(
        finding_ids(&report),
        ["envoy-log-location", "td-config-not-found"],
        "{report:#}"
    );
    let locate = &step(&report, "locate")["output"];
    assert_eq!(locate["log_path"], log.to_str().unwrap(), "{locate:#}");
    assert_eq!(locate["source"], "stderr", "{locate:#}");
    let vm = &step(&report, "vm")["output"];
    assert_eq!(vm["path"], log.to_str().unwrap(), "{vm:#}");
    assert_eq!(vm["found"], true, "{vm:#}");
    assert!(
        report["findings"][0]["title"]
            .as_str()
            .unwrap()
            .contains("the file Envoy's stderr is open on"),
        "{report:#}"
    );

    // An explicit log_path still wins, and locate does not run.
    let args = json_with_facts(&["--input", "log_path=/var/log/envoy/no-such.err.log"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_beside_envoy("2>>\"$1\"", log.to_str().unwrap(), Stdio::null(), &args).unwrap();
    let report = out.json();
    assert_eq!(step(&report, "locate")["status"], "skipped", "{report:#}");
    assert_eq!(finding_ids(&report), ["envoy-log-not-found"], "{report:#}");
}

#[test]
fn a_stderr_on_etc_shadow_is_refused_by_the_read_grant() {
    let secret = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let args = json_with_facts(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Opened for reading only: nothing is written to /etc/shadow.
    let Some(out) = run_beside_envoy("2<\"$1\"", "/etc/shadow", Stdio::null(), &args) else {
        return;
    };
    let report = out.json();
    assert_eq!(out.code, 3, "{report:#}");
    assert_eq!(
        step(&report, "locate")["output"]["log_path"],
        "/etc/shadow",
        "{report:#}"
    );
    let vm = step(&report, "vm");
    assert_eq!(vm["status"], "errored", "{vm:#}");
    let reason = vm["reason"].as_str().unwrap();
    assert!(reason.contains("read_file `/etc/shadow`"), "{reason}");
    assert!(reason.contains("not allowed by the policy"), "{reason}");
    assert_eq!(
        finding_ids(&report),
        ["envoy-log-location", "envoy-log-not-found"]
    );
    // Not a byte of the file: each line's hash (second field) is absent from the report.
    for line in secret.lines() {
        if let Some(hash) = line.split(':').nth(1).filter(|h| h.len() > 2) {
            assert!(!out.stdout.contains(hash), "a hash of /etc/shadow leaked");
        }
    }
}

#[test]
fn a_stderr_on_a_socket_is_journald_and_read_nowhere() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let args: Vec<&str> = NO_ADMIN.to_vec();
    // No redirect: the envoy's stderr is the namespace's, a socket as under systemd.
    let Some(out) = run_beside_envoy(
        "",
        "",
        Stdio::from(std::os::fd::OwnedFd::from(theirs)),
        &args,
    ) else {
        return;
    };
    drop(ours);
    let report = out.json();
    assert_eq!(out.code, 3, "{report:#}");
    let locate = step(&report, "locate");
    assert_eq!(locate["status"], "unknown", "{locate:#}");
    let reason = locate["reason"].as_str().unwrap();
    assert!(reason.contains("is a socket (socket:["), "{reason}");
    assert!(reason.contains("sudo journalctl _PID="), "{reason}");
    assert_eq!(step(&report, "vm")["status"], "skipped", "{report:#}");
    assert_eq!(step(&report, "scan")["status"], "unknown", "{report:#}");
    assert!(finding_ids(&report).is_empty(), "{report:#}");
}

#[test]
fn a_hostile_log_file_name_is_shown_escaped_and_not_read() {
    let dir = LogDir::new("hostile");
    let evil = dir.0.join("x\n\u{1b}[2Jfake.log");
    std::fs::write(&evil, td_error_now()).unwrap();
    for format in ["json", "human"] {
        let args = [
            "--format",
            format,
            "--input",
            "admin_url=http://127.0.0.1:1",
        ];
        let Some(out) = run_beside_envoy("2>>\"$1\"", evil.to_str().unwrap(), Stdio::null(), &args)
        else {
            return;
        };
        assert_eq!(out.code, 3, "{}", out.stdout);
        assert!(!out.stdout.contains('\u{1b}'), "{}", out.stdout);
        assert!(out.stdout.contains("control characters"), "{}", out.stdout);
        if format == "json" {
            let report = out.json();
            assert_eq!(step(&report, "locate")["status"], "unknown", "{report:#}");
            assert_eq!(step(&report, "vm")["status"], "skipped", "{report:#}");
        }
    }
}
