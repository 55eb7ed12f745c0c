//! Files that others control: a bundle's side files and `read_file` on this machine never
//! lead triage out of what it may read, never block it, and are never read whole when the
//! call asks for less.

use super::{run, triage};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "TOPSECRET-not-for-plugins";

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A bundle answering the envoy-logs plugin's read of `/var/log/envoy/envoy.err.log` from
/// the side file `log.txt`, and `ps` from `ps.txt`; the test makes those files hostile.
fn bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("bundle.yaml"),
        "calls:\n\
         \x20 - read: /var/log/envoy/envoy.err.log\n    body_file: log.txt\n\
         \x20 - exec: [ps, -eo, \"pid=,uid=,user=,args=\"]\n    stdout_file: ps.txt\n",
    )
    .unwrap();
    bundle
}

/// `triage probe envoy-logs file` on a bundle, stopped (and failed) if it outlives `limit`.
fn probe_log(bundle: &Path, max_bytes: u64, limit: Duration) -> (i32, Value, Duration) {
    let started = Instant::now();
    let mut child = triage()
        .args(["probe", "envoy-logs", "file", "--bundle"])
        .arg(bundle)
        .args(["-w", "path=/var/log/envoy/envoy.err.log"])
        .arg("-w")
        .arg(format!("max_bytes={max_bytes}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("triage probe still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let outcome: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), outcome, started.elapsed())
}

fn capability_detail(outcome: &Value) -> String {
    outcome["capabilities"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_side_file_linking_out_of_the_bundle_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, SECRET).unwrap();
    let bundle = bundle(dir.path());
    std::os::unix::fs::symlink(&secret, bundle.join("log.txt")).unwrap();

    let (_, outcome, _) = probe_log(&bundle, 1000, Duration::from_secs(60));
    assert!(!outcome.to_string().contains(SECRET), "{outcome:#}");
    assert_eq!(
        outcome["capabilities"][0]["outcome"], "failed",
        "{outcome:#}"
    );
    let detail = capability_detail(&outcome);
    assert!(
        detail.contains("log.txt: is a link to") && detail.contains("outside the bundle"),
        "{detail}"
    );

    // A link that stays inside the bundle is fine.
    std::fs::remove_file(bundle.join("log.txt")).unwrap();
    std::fs::write(bundle.join("real.txt"), "an ordinary log line\n").unwrap();
    std::os::unix::fs::symlink("real.txt", bundle.join("log.txt")).unwrap();
    let (code, outcome, _) = probe_log(&bundle, 1000, Duration::from_secs(60));
    assert_eq!(code, 0, "{outcome:#}");
    assert_eq!(outcome["capabilities"][0]["outcome"], "ok", "{outcome:#}");

    // bundle.yaml itself may not lead out either.
    let other = dir.path().join("elsewhere.yaml");
    std::fs::rename(bundle.join("bundle.yaml"), &other).unwrap();
    std::os::unix::fs::symlink(&other, bundle.join("bundle.yaml")).unwrap();
    let out = run(triage()
        .args(["probe", "envoy-logs", "file", "--bundle"])
        .arg(&bundle)
        .args(["-w", "path=/var/log/envoy/envoy.err.log"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("bundle.yaml: is a link to") && out.stderr.trim().lines().count() == 1,
        "{}",
        out.stderr
    );
}

#[test]
fn a_fifo_side_file_fails_its_step_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle(dir.path());
    // Nothing ever writes to it: before, the read blocked past every deadline.
    mkfifo(&bundle.join("log.txt"));
    let (_, outcome, took) = probe_log(&bundle, 1000, Duration::from_secs(60));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        outcome["capabilities"][0]["outcome"], "failed",
        "{outcome:#}"
    );
    assert!(
        capability_detail(&outcome).contains("is not a regular file (a FIFO)"),
        "{outcome:#}"
    );
}

#[test]
fn devices_and_huge_side_files_are_never_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle(dir.path());

    // A link to /dev/zero leads out of the bundle, and is no regular file anyway.
    std::os::unix::fs::symlink("/dev/zero", bundle.join("log.txt")).unwrap();
    let (_, outcome, took) = probe_log(&bundle, 100, Duration::from_secs(60));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        outcome["capabilities"][0]["outcome"], "failed",
        "{outcome:#}"
    );

    // A 4 GB sparse file: a read of 100 bytes reads 100 bytes...
    std::fs::remove_file(bundle.join("log.txt")).unwrap();
    let big = std::fs::File::create(bundle.join("log.txt")).unwrap();
    big.set_len(4 << 30).unwrap();
    let (code, outcome, took) = probe_log(&bundle, 100, Duration::from_secs(60));
    assert_eq!(code, 0, "{outcome:#}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(outcome["facts"]["truncated"], true, "{outcome:#}");

    // ...and a command's recorded output of 4 GB is refused, not loaded.
    std::fs::rename(bundle.join("log.txt"), bundle.join("ps.txt")).unwrap();
    let out = run(triage()
        .args(["probe", "host", "processes", "--bundle"])
        .arg(&bundle));
    let outcome: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    assert!(
        capability_detail(&outcome)
            .contains("ps.txt: is 4294967296 bytes, over the 268435456-byte limit"),
        "{outcome:#}"
    );
}

/// A directory under /var/log (the default policy's `read_file` grant), removed on drop.
struct LogDir(PathBuf);

impl LogDir {
    fn new() -> LogDir {
        let dir = PathBuf::from(format!("/var/log/triage-files-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        LogDir(dir)
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn probe_local(path: &Path) -> (i32, Value, Duration) {
    let started = Instant::now();
    let out = run(triage()
        .args(["probe", "envoy-logs", "file", "-w"])
        .arg(format!("path={}", path.display())));
    let outcome: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    (out.code, outcome, started.elapsed())
}

#[test]
fn read_file_on_this_machine_checks_where_links_lead() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("shadow");
    std::fs::write(&secret, SECRET).unwrap();
    let logs = LogDir::new();

    // /var/log/…/x -> a file outside /var/log: the grant is /var/log/**, the file is not.
    let link = logs.0.join("envoy.err.log");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let (_, outcome, _) = probe_local(&link);
    assert!(!outcome.to_string().contains(SECRET), "{outcome:#}");
    assert_eq!(
        outcome["capabilities"][0]["outcome"], "denied",
        "{outcome:#}"
    );
    let detail = capability_detail(&outcome);
    assert!(
        detail.contains(&format!(
            "`{}` resolves to `{}`: read_file `{}` is not allowed by the policy",
            link.display(),
            secret.display(),
            secret.display()
        )),
        "{detail}"
    );

    // A directory link out of the grant is the same.
    let dir_link = logs.0.join("dir");
    std::os::unix::fs::symlink(outside.path(), &dir_link).unwrap();
    let (_, outcome, _) = probe_local(&dir_link.join("shadow"));
    assert_eq!(
        outcome["capabilities"][0]["outcome"], "denied",
        "{outcome:#}"
    );

    // A link that stays under /var/log is read.
    let real = logs.0.join("real.log");
    std::fs::write(&real, "an ordinary log line\n").unwrap();
    let inside = logs.0.join("inside.log");
    std::os::unix::fs::symlink(&real, &inside).unwrap();
    let (code, outcome, _) = probe_local(&inside);
    assert_eq!(code, 0, "{outcome:#}");
    assert_eq!(outcome["capabilities"][0]["outcome"], "ok", "{outcome:#}");

    // A FIFO is refused at once, not waited on.
    let fifo = logs.0.join("fifo.log");
    mkfifo(&fifo);
    let (_, outcome, took) = probe_local(&fifo);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        capability_detail(&outcome).contains("is not a regular file (a FIFO)"),
        "{outcome:#}"
    );

    // A 4 GB sparse file: only the bytes asked for are read.
    let big = logs.0.join("big.log");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let started = Instant::now();
    let out = run(triage()
        .args(["probe", "envoy-logs", "file", "-w"])
        .arg(format!("path={}", big.display()))
        .args(["-w", "max_bytes=100"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let outcome: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outcome["facts"]["truncated"], true, "{outcome:#}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
