//! A big Envoy log read from its end, for real: a file over 16 MiB on this machine whose
//! only current error is its last line, read through the local target and through a real
//! sshd on loopback. Before read-file-tail, the plugin read the first 16 MiB and never saw
//! that line.

use super::ssh::start_sshd_in;
use super::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// A directory under /var/log (the default policy's `read_file` grant), removed on drop.
struct LogDir(PathBuf);

impl LogDir {
    fn new(name: &str) -> LogDir {
        let dir = PathBuf::from(format!("/var/log/triage-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        LogDir(dir)
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A UTC time in Envoy's log format, from the real `date` (`-d` relative, e.g. "2 days ago").
fn envoy_time(when: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", when, "+%Y-%m-%d %H:%M:%S.000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn td_error(at: &str, network: &str) -> String {
    format!(
        "[{at}][12][warning][config] [source/common/config/grpc_stream.h:101] StreamAggregatedResources gRPC config stream closed: 5, Traffic Director configuration was not found for network \"{network}\" in project \"123456789012\".\n"
    )
}

/// envoy.err.log of 17 MiB: an old error on its first line (never read: it is more than
/// 16 MiB from the end), two days of routine lines, one old error within the last 16 MiB,
/// and the current error as its last line.
fn big_log(dir: &Path) -> PathBuf {
    let path = dir.join("envoy.err.log");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let old = envoy_time("2 days ago");
    out.write_all(td_error(&old, "net-at-the-start").as_bytes())
        .unwrap();
    let routine = format!(
        "[{old}][12][info][upstream] [source/common/upstream/cds_api_impl.cc:74] cds: add 3 cluster(s), remove 0 cluster(s)\n"
    );
    let mut written = 0u64;
    while written < 17 * MIB {
        if written >= 8 * MIB && written < 8 * MIB + routine.len() as u64 {
            out.write_all(td_error(&old, "old-net").as_bytes()).unwrap();
        }
        out.write_all(routine.as_bytes()).unwrap();
        written += routine.len() as u64;
    }
    out.write_all(td_error(&envoy_time("now"), "my-network").as_bytes())
        .unwrap();
    out.flush().unwrap();
    path
}

fn probe(path: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Run, Value) {
    let mut cmd = triage();
    cmd.args(["probe", "envoy-logs", "file", "-w"])
        .arg(format!("path={}", path.display()))
        .args(["-w", "window_seconds=3600"])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    let outcome = out.json();
    (out, outcome)
}

/// What the end of the big log must show, however it was read.
fn assert_tail_facts(outcome: &Value) {
    let facts = &outcome["facts"];
    assert_eq!(facts["found"], true, "{outcome:#}");
    assert_eq!(facts["truncated"], true, "{facts:#}");
    assert!(facts["size"].as_u64().unwrap() > 17 * MIB, "{facts:#}");
    assert_eq!(facts["bytes_read"], 16 * MIB, "{facts:#}");
    // What was read reaches back two days, past the one-hour window: complete.
    assert_eq!(facts["covers_cutoff"], true, "{facts:#}");
    // Its stream closed with code 5 too: xds-stream-closed, which no runbook reports.
    assert_eq!(
        facts["current_kinds"],
        serde_json::json!(["td-config-not-found", "xds-stream-closed"])
    );
    let m = &facts["matches"]["td-config-not-found"];
    assert_eq!(m["current_count"], 1, "{m:#}");
    assert_eq!(m["earlier_count"], 1, "{m:#}");
    assert_eq!(
        m["networks"],
        serde_json::json!(["old-net", "my-network"]),
        "the first line is more than 16 MiB from the end and must not be read: {m:#}"
    );
    assert!(
        m["current_sample"]
            .as_str()
            .unwrap()
            .contains("\"my-network\""),
        "{m:#}"
    );
}

#[test]
fn a_big_logs_current_error_at_its_end_is_seen_locally() {
    let dir = LogDir::new("log-tail");
    let log = big_log(&dir.0);
    let started = Instant::now();
    let (out, outcome) = probe(&log, &[], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_tail_facts(&outcome);
    assert!(started.elapsed() < Duration::from_secs(60));

    // The runbook, with no admin interface (the one-hour window decides): the current
    // error fires, and the scan is not unknown although the log was cut.
    let out = run(triage()
        .args(["run", "envoy-logs", "--format", "json", "--input"])
        .arg(format!("log_path={}", log.display()))
        .args(["--input", "admin_url=http://127.0.0.1:1"]));
    let report = out.json();
    assert_eq!(out.code, 1, "{report:#}");
    assert_eq!(finding_ids(&report), ["td-config-not-found"], "{report:#}");
    assert_eq!(step(&report, "scan")["status"], "failed", "{report:#}");
    let detail = report["findings"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("1 time(s)"), "{detail}");
}

#[test]
fn a_big_logs_current_error_at_its_end_is_seen_over_ssh() {
    let Some(sshd) = start_sshd_in(None) else {
        return;
    };
    let dir = LogDir::new("log-tail-ssh");
    let log = big_log(&dir.0);
    let target = format!("ssh://root@127.0.0.1:{}", sshd.port);
    let env = [("TRIAGE_SSH_CONFIG", sshd.client_config.to_str().unwrap())];
    let (out, outcome) = probe(&log, &["--target", &target], &env);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_tail_facts(&outcome);

    // The same defences as read_file over ssh: a FIFO is refused at once, not waited on,
    // and a link out of /var/log is denied, its bytes never reaching the plugin.
    let fifo = dir.0.join("fifo.log");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let (_, outcome) = probe(&fifo, &["--target", &target], &env);
    assert!(started.elapsed() < Duration::from_secs(20));
    let detail = outcome["capabilities"][0]["detail"].as_str().unwrap_or("");
    assert!(detail.contains("not a regular file"), "{outcome:#}");

    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("shadow");
    std::fs::write(&secret, "TOPSECRET-tail").unwrap();
    let link = dir.0.join("link.log");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let (_, outcome) = probe(&link, &["--target", &target], &env);
    assert!(!outcome.to_string().contains("TOPSECRET"), "{outcome:#}");
    assert_eq!(
        outcome["capabilities"][0]["outcome"], "denied",
        "{outcome:#}"
    );

    let zero = dir.0.join("zero.log");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let started = Instant::now();
    let (_, outcome) = probe(&zero, &["--target", &target], &env);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_ne!(outcome["capabilities"][0]["outcome"], "ok", "{outcome:#}");
}
