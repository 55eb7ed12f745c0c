//! Secrets never leave in a bundle or a report, and text from the target never acts on the
//! reader's terminal or becomes markup in a ticket.
//!
//! Real, not mocked: a live process whose command line holds secrets read by the real `ps`;
//! a real HTTP server on loopback answering a real Envoy config dump that carries an
//! authorization header; a real Envoy log in a bundle for what reports show; guided mode in
//! a real pseudo-terminal (`script`).

use super::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

/// A Kubernetes service-account token's shape: header, payload, signature.
pub const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Ik5rM1FfbWJYZ1Z4In0.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50Iiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OmRlZmF1bHQ6ZW52b3kifQ.Xk2bT9q0rJ4mLwQp7sVz1uYc8nHdE3fGa6KiOo5Rt0A";
const DB_PASSWORD: &str = "Tr0ub4dor-and-3-horses";
const SIGNING_SECRET: &str = "8f14e45fceea167a5a36dedd4bea2543";
const AWS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const GCP_TOKEN: &str = "ya29.c.b0AXv0zTPn4s1VdQm9ExampleTokenValue0123456789";
const TEAM_KEY: &str = "acme_live_0123456789abcdef0123456789abcdef";

/// Every file of a bundle directory, as text.
fn bundle_text(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        all.push('\n');
    }
    all
}

fn redacted_counts(dir: &Path) -> Value {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("bundle.yaml")).unwrap()).unwrap();
    let mut counts = serde_json::Map::new();
    for entry in yaml["redacted"].as_sequence().expect("a redacted: list") {
        counts.insert(
            entry["pattern"].as_str().unwrap().to_string(),
            json!(entry["count"].as_u64().unwrap()),
        );
    }
    Value::Object(counts)
}

fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what} holds the secret {secret}:\n{text}"
        );
    }
}

/// A process running as long as the test, with the command line an operator's tools really
/// have: a password flag in two arguments, a token flag with `=`, env-style secrets, an
/// access key id and a team's own key.
struct SecretProcess(std::process::Child);

impl SecretProcess {
    fn start() -> SecretProcess {
        let child = std::process::Command::new("sh")
            .args([
                "-c",
                // Two commands, so the shell stays (a lone command would be exec'd).
                "sleep 60; true",
                "billing-worker",
                "--db-password",
                DB_PASSWORD,
                &format!("--auth-token={JWT}"),
                &format!("SLACK_SIGNING_SECRET={SIGNING_SECRET}"),
                &format!("AWS_ACCESS_KEY_ID={AWS_KEY_ID}"),
                &format!("--license={TEAM_KEY}"),
            ])
            .spawn()
            .unwrap();
        SecretProcess(child)
    }
}

impl Drop for SecretProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn recorded_ps_holds_no_secret_and_says_what_was_redacted() {
    let _process = SecretProcess::start();
    // The premise: ps really shows them.
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args="])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains(DB_PASSWORD) && ps.contains(JWT), "{ps}");

    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("redact.yaml");
    std::fs::write(
        &team,
        "patterns:\n  - name: acme-license\n    regex: 'acme_live_[0-9a-f]{32}'\n",
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    let out = run(triage()
        .args(["probe", "host", "processes", "--record"])
        .arg(&bundle)
        .arg("--redact")
        .arg(&team));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let secrets = [DB_PASSWORD, JWT, SIGNING_SECRET, AWS_KEY_ID, TEAM_KEY];
    let recorded = bundle_text(&bundle);
    assert_no_secret("the bundle", &recorded, &secrets);
    assert_no_secret("the probe's facts", &out.stdout, &secrets);
    // What stands in for each value says why it went, and the names stay.
    for shown in [
        "--db-password [REDACTED:secret-flag]",
        "--auth-token=[REDACTED:jwt]",
        "SLACK_SIGNING_SECRET=[REDACTED:secret-assignment]",
        "AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key-id]",
        "--license=[REDACTED:acme-license]",
        "billing-worker",
    ] {
        assert!(recorded.contains(shown), "{shown} not in:\n{recorded}");
    }
    let counts = redacted_counts(&bundle);
    for pattern in [
        "secret-flag",
        "jwt",
        "secret-assignment",
        "aws-access-key-id",
        "acme-license",
    ] {
        assert!(
            counts[pattern].as_u64().unwrap() >= 1,
            "{pattern}: {counts}"
        );
    }

    // The redacted bundle still replays.
    let replay = run(triage()
        .args(["probe", "host", "processes", "--bundle"])
        .arg(&bundle));
    assert_eq!(replay.code, 0, "{}", replay.stderr);
}

#[test]
fn a_bad_team_patterns_file_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (body, says) in [
        (
            "patterns:\n  - name: bad\n    regex: '(unclosed'\n",
            "invalid regex",
        ),
        (
            "patterns:\n  - name: all\n    regex: 'x*'\n",
            "matches empty text",
        ),
        (
            "patterns:\n  - name: 'no spaces'\n    regex: 'x'\n",
            "a name is",
        ),
        (
            "patterns:\n  - name: a\n    regex: x\n    extra: 1\n",
            "unknown field",
        ),
    ] {
        let file = dir.path().join("redact.yaml");
        std::fs::write(&file, body).unwrap();
        let out = run(triage()
            .args(["run", "envoy-logs", "--bundle"])
            .arg(root().join("runbooks/envoy-logs/tests/vm-healthy"))
            .arg("--redact")
            .arg(&file));
        assert_eq!(out.code, 2, "{body}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(says) && out.stderr.contains("redact.yaml"),
            "{body}: {}",
            out.stderr
        );
    }
}

/// The real Istio dump with what a Traffic Director bootstrap of the time carried: an
/// `authorization` header in the xDS stream's initial metadata and an access token in a
/// google_grpc service's call credentials.
fn config_dump_with_credentials() -> Vec<u8> {
    let path = root().join(
        "fixtures/real/envoy-config-dump/istio-1.6-bookinfo-productpage-sidecar.config_dump.json",
    );
    let mut dump: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let services = dump
        .pointer_mut("/configs/0/bootstrap/dynamic_resources/ads_config/grpc_services")
        .and_then(Value::as_array_mut)
        .unwrap();
    services[0]["initial_metadata"] = json!([
        {"key": "authorization", "value": format!("Bearer {JWT}")}
    ]);
    services.push(json!({
        "google_grpc": {
            "target_uri": "trafficdirector.googleapis.com:443",
            "stat_prefix": "trafficdirector",
            "call_credentials": [{"access_token": GCP_TOKEN}]
        }
    }));
    serde_json::to_vec_pretty(&dump).unwrap()
}

/// Answers every request on loopback with `body` (one connection at a time), but 404 for
/// `/server_info` (config-dump asks it first: an Envoy of unknown version gets one request
/// for the whole dump, so the dump is recorded once).
fn serve_on_loopback(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                line.clear();
            }
            if request_line.contains(" /server_info ") {
                let _ = conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    port
}

#[test]
fn a_recorded_http_answer_loses_its_authorization_header_and_token() {
    let port = serve_on_loopback(config_dump_with_credentials());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let admin = format!("admin_url=http://127.0.0.1:{port}");
    let out = run(triage()
        .args([
            "probe",
            "config-dump",
            "config",
            "--with",
            &admin,
            "--record",
        ])
        .arg(&bundle));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let recorded = bundle_text(&bundle);
    assert_no_secret("the bundle", &recorded, &[JWT, GCP_TOKEN]);
    assert!(
        recorded.contains(r#""value": "Bearer [REDACTED:jwt]""#),
        "{}",
        &recorded[..2000.min(recorded.len())]
    );
    assert!(recorded.contains(r#""access_token": "[REDACTED:metadata-access-token]""#));
    let counts = redacted_counts(&bundle);
    assert_eq!(counts["jwt"], 1, "{counts}");
    assert_eq!(counts["metadata-access-token"], 1, "{counts}");
    // Still the JSON it was: the plugin reads the replayed dump as it read the live one.
    let replay = run(triage()
        .args([
            "probe",
            "config-dump",
            "config",
            "--with",
            &admin,
            "--bundle",
        ])
        .arg(&bundle));
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert_eq!(replay.json()["output"], out.json()["output"]);
}

/// The envoy-logs VM bundle whose td-config-not-found line names a hostile network (control
/// sequences, HTML, a fence) and carries a bearer token in the same line.
pub fn hostile_envoy_log_bundle(dir: &Path) -> std::path::PathBuf {
    let source = root().join("runbooks/envoy-logs/tests/vm-td-config-not-found");
    let bundle = dir.join("hostile");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::copy(source.join("bundle.yaml"), bundle.join("bundle.yaml")).unwrap();
    let log = std::fs::read_to_string(source.join("envoy.err.log")).unwrap();
    let network = "my-net\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\u{9b}31m\u{202e}<img src=x onerror=alert(1)>```";
    let log = log.replacen(
        "Traffic Director configuration was not found for network \"my-network\" in project \"123456789012\".",
        &format!(
            "Traffic Director configuration was not found for network \"{network}\" in project \"123456789012\". authorization: Bearer {JWT}"
        ),
        1,
    );
    assert!(log.contains(JWT));
    std::fs::write(bundle.join("envoy.err.log"), log).unwrap();
    bundle
}

fn envoy_logs(bundle: &Path, format: &str) -> Run {
    let out = run(triage()
        .args([
            "run",
            "envoy-logs",
            "--facts",
            "--format",
            format,
            "--bundle",
        ])
        .arg(bundle));
    assert_eq!(out.code, 1, "{}", out.stderr);
    out
}

#[test]
fn reports_hold_no_secret_from_the_facts() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = hostile_envoy_log_bundle(dir.path());
    let json = envoy_logs(&bundle, "json");
    let evidence = json.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "td-config-not-found")
        .unwrap()["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        evidence.contains("authorization: Bearer [REDACTED:jwt]"),
        "{evidence}"
    );
    for format in ["json", "human", "markdown"] {
        let out = envoy_logs(&bundle, format);
        assert_no_secret(format, &out.stdout, &[JWT]);
    }
}

/// The hostile sequences, raw: none may reach a terminal.
pub const RAW: [&str; 5] = ["\x1b[2J", "\x1b]0;", "\x1b]52;", "\u{9b}", "\u{202e}"];

#[test]
fn human_output_shows_control_characters_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = hostile_envoy_log_bundle(dir.path());
    let out = envoy_logs(&bundle, "human");
    // NO_COLOR is set by the harness: no escape of our own either.
    assert!(
        !out.stdout.contains(['\x1b', '\x07', '\u{9b}', '\u{202e}']),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(r"my-net\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\u{9b}31m\u{202e}"),
        "{}",
        out.stdout
    );
}

#[test]
fn markdown_evidence_cannot_close_its_fence_or_carry_html() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = hostile_envoy_log_bundle(dir.path());
    let md = envoy_logs(&bundle, "markdown").stdout;
    // The evidence holds ``` so it is fenced with four.
    let open = "Evidence:\n\n````\n";
    let start = md.find(open).expect("a four-backtick fence");
    let body = &md[start + open.len()..];
    let end = body.find("\n````\n").expect("the fence closes");
    let evidence = &body[..end];
    assert!(evidence.contains("```"), "{evidence}");
    assert!(evidence.contains("Traffic Director configuration was not found"));
    // Outside the fence (the title and the fix name the network), HTML is escaped.
    let outside = md.replace(evidence, "");
    assert!(!outside.contains("<img"), "{outside}");
    assert!(
        outside.contains("&lt;img src=x onerror=alert(1)>"),
        "{outside}"
    );
    // A ticket read with `cat` is a terminal too.
    assert!(!md.contains(['\x1b', '\x07', '\u{9b}']), "{md:?}");
}

#[test]
fn markdown_shows_nothing_for_empty_evidence() {
    // A runbook whose finding renders empty evidence and detail.
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("empty.yaml");
    std::fs::write(
        &runbook,
        r#"apiVersion: triage/v1
id: empty-evidence
title: Empty evidence shows nothing
steps:
  - id: always
    title: A finding with nothing to show
    findings:
      - id: shown
        when: "true"
        severity: warning
        title: Fired
        detail: "{{ '' }}"
        evidence: "{{ '' }}"
        fix: "Nothing to do"
"#,
    )
    .unwrap();
    let out = run(triage()
        .args(["run", "--format", "markdown"])
        .arg(&runbook)
        .args(["--bundle"])
        .arg(root().join("runbooks/envoy-logs/tests/vm-healthy")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("Evidence"), "{}", out.stdout);
    assert!(!out.stdout.contains("```"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "*warning* · step `always` · help: `triage explain shown`\n\n**Fix:** Nothing to do"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn guided_mode_shows_control_characters_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = hostile_envoy_log_bundle(dir.path());
    let bin = std::env::var_os("TRIAGE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_triage").into());
    // `script` gives guided mode the terminal it needs and hands back every byte written
    // to it; Enter answers "run" to each step.
    let command = format!(
        "{} guide envoy-logs --bundle {} --save-dir {}",
        bin.display(),
        bundle.display(),
        dir.path().display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // Same environment as `triage()` gives the binary.
    let harness = triage();
    for (k, v) in harness.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(root());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for _ in 0..10 {
            std::thread::sleep(std::time::Duration::from_millis(700));
            if stdin.write_all(b"\r").is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("td-config-not-found"),
        "the finding was not shown: {screen}"
    );
    for raw in RAW {
        assert!(
            !screen.contains(raw),
            "{raw:?} reached the terminal: {screen:?}"
        );
    }
    assert!(
        screen.contains(r"my-net\x1b[2J\x1b]0;pwned\x07"),
        "{screen}"
    );
}
