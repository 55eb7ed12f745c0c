//! The ssh target for real: an OpenSSH server on loopback inside a network namespace, with
//! a throwaway host key and client key, and the runbook run through it. The namespace holds
//! the guide's interception rules, so what the runbook sees came over ssh.

use super::netns::{GUIDE_RULES, INTERCEPTION, Netns};
use super::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(super) struct Sshd {
    child: Child,
    pub(super) port: u16,
    pub(super) client_config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(ns: &Netns) -> Option<Sshd> {
    start_sshd_in(Some(ns))
}

/// An sshd in the namespace `ns`, or on this machine's loopback when `None`.
pub(super) fn start_sshd_in(ns: Option<&Netns>) -> Option<Sshd> {
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
    let port = match ns {
        Some(_) => 20000 + (std::process::id() % 20000) as u16,
        // This machine's loopback is shared: a port nothing holds now.
        None => std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
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
    let mut sshd = match ns {
        Some(ns) => {
            ns.sh(&["ip", "link", "set", "lo", "up"]);
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns.name, "/usr/sbin/sshd"]);
            cmd
        }
        None => Command::new("/usr/sbin/sshd"),
    };
    let child = sshd
        .args(["-D", "-e", "-f"])
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
        let listening = match ns {
            Some(ns) => Command::new("ip")
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
                .unwrap()
                .success(),
            None => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        };
        if listening {
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

/// An HTTP server on loopback that answers every request `200 ok` and keeps each
/// connection's raw bytes (everything sent on it, smuggled requests included).
struct RecordingHttp {
    port: u16,
    raw: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingHttp {
    fn start() -> RecordingHttp {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let raw = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = raw.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                // Whatever else the client sends on this connection is recorded too.
                let _ = conn.set_read_timeout(Some(Duration::from_millis(300)));
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&seen).into_owned());
            }
        });
        RecordingHttp { port, raw }
    }

    /// Every request line received, in order.
    fn request_lines(&self) -> Vec<String> {
        self.raw
            .lock()
            .unwrap()
            .iter()
            .flat_map(|raw| raw.split("\r\n").map(String::from).collect::<Vec<_>>())
            .filter(|line| line.ends_with(" HTTP/1.1") && !line.starts_with("HTTP/"))
            .collect()
    }
}

#[test]
fn http_over_a_remote_target_sends_exactly_one_request_as_asked() {
    // sshd on this machine's loopback: curl runs "on the target", which is here.
    let Some(sshd) = start_sshd_in(None) else {
        return;
    };
    let http = RecordingHttp::start();
    let target = format!("ssh://root@127.0.0.1:{}", sshd.port);
    // The built-in policy reads only Envoy's three admin pages; this test's server is not
    // Envoy, and the policy under test is one that allows `/stats**` and nothing else.
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "allow:\n  http: [\"http://127.0.0.1:*/stats**\"]\n",
    )
    .unwrap();
    let probe = |action: &str, url: &str| {
        run(triage()
            .env("TRIAGE_SSH_CONFIG", &sshd.client_config)
            .arg("--policy")
            .arg(&policy)
            .args(["--plugins", test_plugin_dir(), "probe", "hostile", action])
            .args(["--target", &target, "-w"])
            .arg(format!("url={url}")))
    };
    let base = format!("http://127.0.0.1:{}", http.port);

    // `[1-20]` is text in a URL: one request, not twenty.
    let out = probe("http-get", &format!("{base}/stats?[1-20]"));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let outcome: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outcome["facts"]["status"], 200, "{outcome:#}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        http.request_lines(),
        vec!["GET /stats?[1-20] HTTP/1.1".to_string()]
    );

    // A line break in a header value or a method, or a header name that is no token, is
    // refused before anything is sent: no second request reaches the server.
    for (action, why) in [
        ("http-smuggle-header", "bad value of HTTP header X-A"),
        ("http-smuggle-method", "bad HTTP method"),
        ("http-bad-header-name", "bad HTTP header name"),
    ] {
        let out = probe(action, &format!("{base}/stats"));
        let outcome: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{action}: not JSON ({e}): {}\n{}", out.stdout, out.stderr));
        assert_eq!(out.code, 3, "{action}: {outcome:#}");
        let error = outcome["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{action}: {outcome:#}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = http.request_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_lowercase().contains("quitquitquit")),
        "smuggled: {lines:#?}"
    );
    assert_eq!(lines.len(), 1, "{lines:#?}");
}
