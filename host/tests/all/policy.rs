//! The default policy is read-only in fact (issue 11): HTTP methods are granted by name,
//! wildcards never stand for options, the program an exec entry allows is fixed, and a
//! plugin that declares a hostile command line for itself is stopped by the policy before
//! anything runs. Real processes throughout: a real HTTP server on loopback, the real
//! `triage` binary and plugins; `kubectl` and `gcloud` are stand-in scripts (see
//! `stand_ins`), since the point is whether triage starts them at all.

use crate::{Run, run, test_plugin_dir, triage};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An HTTP server on loopback that answers 200 to everything and keeps each request line.
struct RecordingHttp {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RecordingHttp {
    fn start() -> RecordingHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&seen).into_owned();
                let line = text.lines().next().unwrap_or_default().to_string();
                let answer: &[u8] = if line.starts_with("HEAD ") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                };
                let _ = conn.write_all(answer);
                kept.lock().unwrap().push(line);
            }
        });
        RecordingHttp { port, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `triage probe hostile ACTION -w K=V...`, with the policy file if any.
fn hostile(policy: Option<&Path>, action: &str, with: &[String]) -> Run {
    let mut cmd = triage();
    if let Some(policy) = policy {
        cmd.arg("--policy").arg(policy);
    }
    cmd.args(["--plugins", test_plugin_dir(), "probe", "hostile", action]);
    for w in with {
        cmd.arg("-w").arg(w);
    }
    run(&mut cmd)
}

/// The probe's error line ("" when it gave facts).
fn error_of(out: &Run) -> String {
    let outcome: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
    outcome["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_http_grant_allows_get_and_head_and_other_methods_only_by_name() {
    let http = RecordingHttp::start();
    let url = format!("http://127.0.0.1:{}/quitquitquit", http.port);
    let dir = tempfile::tempdir().unwrap();
    // The operator allows every URL of the loopback port, without naming methods.
    let any_url = write_policy(dir.path(), "allow:\n  http: [\"http://127.0.0.1:*/**\"]\n");
    let any = |method: &str, policy: &Path| {
        hostile(
            Some(policy),
            "http-any",
            &[format!("url={url}"), format!("method={method}")],
        )
    };

    // A plugin that declared `http: "**"` sends POST /quitquitquit to Envoy: denied, by the
    // plugin's own declaration (which names no method) before the policy is asked.
    for method in ["POST", "PUT", "DELETE", "post"] {
        let out = any(method, &any_url);
        let error = error_of(&out);
        assert_eq!(out.code, 3, "{method}: {}", out.stdout);
        assert!(
            error.contains(&format!(
                "http `{} {url}` was not declared",
                method.to_uppercase()
            )),
            "{method}: {error}"
        );
    }
    // GET and HEAD of the same URL still work.
    for method in ["GET", "HEAD"] {
        let out = any(method, &any_url);
        assert_eq!(out.code, 0, "{method}: {}\n{}", out.stdout, out.stderr);
    }

    // A plugin that declares POST still needs the operator to name it.
    let post = |policy: &Path| hostile(Some(policy), "http-post", &[format!("url={url}")]);
    let out = post(&any_url);
    let error = error_of(&out);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(
        error.contains(&format!("http `POST {url}` is not allowed by the policy"))
            && error.contains(r#"add `http: ["POST http://127.0.0.1:"#),
        "{error}"
    );

    // Both name it: the POST is sent (so the server would have seen the ones refused above).
    let named = write_policy(
        dir.path(),
        "allow:\n  http: [\"POST http://127.0.0.1:*/quitquitquit\"]\n",
    );
    let out = post(&named);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    // The built-in policy alone reads Envoy's three admin pages and nothing else.
    let out = hostile(
        None,
        "http-any",
        &[format!("url={url}"), "method=GET".into()],
    );
    assert!(
        error_of(&out).contains("is not allowed by the policy (built-in default policy)"),
        "{}",
        out.stdout
    );
    let info = format!("http://127.0.0.1:{}/server_info", http.port);
    let out = hostile(
        None,
        "http-any",
        &[format!("url={info}"), "method=GET".into()],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        http.lines(),
        [
            "GET /quitquitquit HTTP/1.1",
            "HEAD /quitquitquit HTTP/1.1",
            "POST /quitquitquit HTTP/1.1",
            "GET /server_info HTTP/1.1",
        ]
    );
}

/// `kubectl` and `gcloud` stand-ins that append their argv to `ran.log` and print `{}`: a
/// mock, because what is tested is whether triage starts them (the real kubectl with a
/// hostile kubeconfig is in `security.rs`). Returns (bin dir, log file).
fn stand_ins(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("ran.log");
    for name in ["kubectl", "gcloud"] {
        let path = bin.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{}'\necho '{{}}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, log)
}

#[test]
fn command_lines_a_plugin_declares_for_itself_are_refused_by_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, log) = stand_ins(dir.path());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let command_line = |which: &str| {
        run(triage()
            .env("PATH", &path)
            .args([
                "--plugins",
                test_plugin_dir(),
                "probe",
                "hostile",
                "command-line",
            ])
            .arg("-w")
            .arg(format!("which={which}")))
    };

    // The stand-in records what runs: a command line the policy allows does run.
    let out = command_line("kubectl-pods");
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "kubectl get pods -n default -o json\n"
    );

    for (which, shown) in [
        ("ps-environment", "ps eww"),
        ("kubectl-secrets", "kubectl get secrets -A -o yaml"),
        (
            "kubectl-kubeconfig",
            "kubectl get pods -n default -o json --kubeconfig=/tmp/kc",
        ),
        (
            "kubectl-as",
            "kubectl get pods -n default -o json --as system:admin",
        ),
        ("kubectl-yaml", "kubectl get pods -n default -o yaml"),
        (
            "gcloud-flags-file",
            "gcloud projects get-iam-policy --format=json --flags-file=/tmp/f -- p",
        ),
        (
            "gcloud-impersonate",
            "gcloud projects get-iam-policy --format=json --impersonate-service-account=sa@p.iam.gserviceaccount.com -- p",
        ),
        (
            "gcloud-configuration",
            "gcloud services list --enabled --format=json --configuration=other",
        ),
    ] {
        let out = command_line(which);
        let error = error_of(&out);
        assert_eq!(out.code, 3, "{which}: {}", out.stdout);
        assert!(
            error.contains(&format!("exec `{shown}` is not allowed by the policy")),
            "{which}: {error}"
        );
    }
    // Nothing but the allowed command line ran.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "kubectl get pods -n default -o json\n"
    );
}

#[test]
fn an_envoy_binary_is_run_only_from_a_place_the_policy_names() {
    let dir = tempfile::tempdir().unwrap();
    // `/tmp/…/x/envoy`: anyone who can write /tmp can put one there.
    let envoy = dir.path().join("x/envoy");
    let marker = dir.path().join("ran");
    std::fs::create_dir_all(envoy.parent().unwrap()).unwrap();
    std::fs::write(
        &envoy,
        format!(
            "#!/bin/sh\ntouch '{}'\necho 'envoy  version: 0/1.15.1/Clean/RELEASE/BoringSSL'\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&envoy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let version = |policy: Option<&Path>| {
        let mut cmd = triage();
        if let Some(policy) = policy {
            cmd.arg("--policy").arg(policy);
        }
        run(cmd
            .args(["probe", "host", "envoy-version", "-w"])
            .arg(format!("binary={}", envoy.display())))
    };

    let out = version(None);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        error_of(&out).contains(&format!(
            "exec `{} --version` is not allowed by the policy",
            envoy.display()
        )),
        "{}",
        out.stdout
    );
    assert!(!marker.exists(), "{} ran", envoy.display());

    // A policy that wants the old reach with a wildcard is refused when it loads, with where.
    let wild = write_policy(
        dir.path(),
        "allow:\n  exec:\n    - [\"/**/envoy\", --version]\n",
    );
    let out = version(Some(&wild));
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("policy.yaml:3:")
            && first.contains("must be a command name (found in PATH) or an absolute path"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists());

    // Named by its absolute path, it runs.
    let named = write_policy(
        dir.path(),
        &format!(
            "allow:\n  exec:\n    - [\"{}\", --version]\n",
            envoy.display()
        ),
    );
    let out = version(Some(&named));
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(marker.exists());
}

#[test]
fn lint_refuses_an_expression_holding_template_delimiters_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("delims.yaml");
    // `a }} b` panicked minijinja's lexer (found by the runbook_loader fuzz target).
    std::fs::write(
        &file,
        "apiVersion: triage/v1\nid: delims\ntitle: Delimiters\nsteps:\n  - id: s\n    title: S\n    when: \"inputs.a }} b\"\n    ask: {prompt: \"?\", choices: [yes, no]}\n",
    )
    .unwrap();
    let out = run(triage().arg("lint").arg(&file));
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("panicked"), "{all}");
    let line = all
        .lines()
        .find(|l| l.contains("template delimiter"))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(line.contains("delims.yaml:7:"), "{all}");
}

/// `/proc/PID/exe --version` is in the default policy so the version check finds the
/// running Envoy wherever it was installed. Any local user can start a process whose
/// command line says `envoy` from a file of their own; triage (root here) must not run
/// that file. A real process: a copy of `sleep` named `envoy`, owned by nobody (65534).
#[test]
fn a_running_envoy_is_run_for_its_version_only_from_a_root_owned_file() {
    use std::os::unix::fs::chown;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let envoy = dir.path().join("envoy");
    std::fs::copy("/bin/sleep", &envoy).unwrap();
    std::fs::set_permissions(&envoy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let version_attempts = || {
        // The default binary (/usr/local/bin/envoy) is absent here, so the running
        // process's executable is tried next.
        let out = run(triage().args(["probe", "host", "envoy-version"]));
        let facts: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr));
        facts.to_string()
    };
    let start = || {
        std::process::Command::new(&envoy)
            .arg("300")
            .spawn()
            .unwrap()
    };

    chown(&envoy, Some(65534), Some(65534)).unwrap();
    let mut process = start();
    let seen = version_attempts();
    process.kill().unwrap();
    process.wait().unwrap();
    let pid = process.id();
    assert!(
        seen.contains(&format!("/proc/{pid}/exe is owned by uid 65534")),
        "{seen}"
    );
    assert!(!seen.contains("coreutils"), "the user's file ran: {seen}");

    // The same file owned by root and writable by nobody else runs (it is `sleep`, so it
    // answers with coreutils' version, which is not an Envoy's: what matters is that it ran).
    chown(&envoy, Some(0), Some(0)).unwrap();
    let mut process = start();
    let seen = version_attempts();
    process.kill().unwrap();
    process.wait().unwrap();
    assert!(!seen.contains("is owned by uid"), "{seen}");
    assert!(
        seen.contains(&format!("/proc/{}/exe", process.id())),
        "{seen}"
    );
}
