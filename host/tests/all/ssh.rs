//! The ssh target for real: an OpenSSH server on loopback inside a network namespace, with
//! a throwaway host key and client key, and the runbook run through it. The namespace holds
//! the guide's interception rules, so what the runbook sees came over ssh.

use super::netns::{GUIDE_RULES, INTERCEPTION, Netns};
use super::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sshd {
    child: Child,
    port: u16,
    client_config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(ns: &Netns) -> Option<Sshd> {
    if !std::path::Path::new("/usr/sbin/sshd").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("this test needs /usr/sbin/sshd (.ci/run installs openssh-server)");
        }
        eprintln!("skipped: needs /usr/sbin/sshd");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in ["host_key", "client_key"] {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join(key))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen");
    }
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
    // sshd wants its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = 20000 + (std::process::id() % 20000) as u16;
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {}\n",
            d.join("host_key").display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let client_config = d.join("ssh_config");
    std::fs::write(
        &client_config,
        format!(
            "Host 127.0.0.1\n  IdentityFile {}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            d.join("client_key").display()
        ),
    )
    .unwrap();
    ns.sh(&["ip", "link", "set", "lo", "up"]);
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "/usr/sbin/sshd",
            "-D",
            "-e",
            "-f",
        ])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sshd = Sshd {
        child,
        port,
        client_config,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/127.0.0.1/{port}"),
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if probe.success() {
            return Some(sshd);
        }
        assert!(
            Instant::now() < deadline,
            "sshd did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn runbook_through_a_real_ssh_server() {
    let Some(ns) = Netns::create("ssh") else {
        return;
    };
    let Some(sshd) = start_sshd(&ns) else { return };
    for rule in GUIDE_RULES {
        ns.iptables(rule);
    }
    let target = format!("ssh://root@127.0.0.1:{}", sshd.port);
    let env = [("TRIAGE_SSH_CONFIG", sshd.client_config.to_str().unwrap())];
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("over-ssh");
    let out = ns.triage_with_env(
        &[
            "run",
            "service-unreachable",
            "--format",
            "json",
            "--target",
            &target,
            "--input",
            "vip=10.0.0.2",
            "--record",
            bundle.to_str().unwrap(),
        ],
        &env,
    );
    let report = out.json();
    assert_eq!(report["target"], target.as_str(), "{}", out.stderr);
    let interception = step(&report, "interception");
    assert_eq!(interception["status"], "passed", "{report:#}");
    assert_eq!(
        interception["capabilities"][0]["request"],
        "iptables -t nat -S"
    );
    assert_eq!(
        findings_among(&report, INTERCEPTION),
        vec!["vip-not-intercepted"]
    );
    // `ps` ran on the target too, over the same connection.
    assert_eq!(
        step(&report, "envoy-process")["capabilities"][0]["outcome"],
        "ok",
        "{report:#}"
    );

    // The bundle recorded through ssh replays anywhere.
    let replay = run(triage()
        .args([
            "run",
            "service-unreachable",
            "--format",
            "json",
            "--input",
            "vip=10.0.0.2",
            "--bundle",
        ])
        .arg(&bundle));
    assert_eq!(
        findings_among(&replay.json(), INTERCEPTION),
        vec!["vip-not-intercepted"]
    );
}

#[test]
fn an_unreachable_ssh_target_errors_its_steps_with_the_reason() {
    // Nothing listens on port 1: ssh exits 255 and every step says so; the run exits 3.
    let out = run(triage().args([
        "run",
        "service-unreachable",
        "--format",
        "json",
        "--target",
        "ssh://127.0.0.1:1",
    ]));
    assert_eq!(out.code, 3, "{}", out.stderr);
    let report = out.json();
    let reason = step(&report, "interception")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("ssh to ssh://127.0.0.1:1 failed"),
        "{reason}"
    );
}

#[test]
fn a_target_that_could_inject_options_is_refused() {
    let out = run(triage().args([
        "run",
        "service-unreachable",
        "--target",
        "ssh://-oProxyCommand=touch /tmp/x",
    ]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("expected ssh://[user@]host[:port]"),
        "{}",
        out.stderr
    );
}
