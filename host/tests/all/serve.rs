//! `triage serve`: the real server on a loopback port, driven over HTTP.

use super::{root, triage};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub(super) const TOKEN: &str = "test-token-0123456789";
pub(super) const SECRET: &str = "slack-signing-secret";
/// A token that may run only service-unreachable, only on `healthy`.
pub(super) const NARROW_TOKEN: &str = "narrow-token-0123456789";
pub(super) const MATTERMOST_TOKEN: &str = "mattermost-command-token";

/// A running `triage serve`; killed when dropped.
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) base: String,
    /// Everything the server wrote to stderr so far.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub(super) fn start(config: &Path, db: &Path) -> Server {
        Server::start_with(config, db, |_| {})
    }

    /// Like [`Server::start`], with a change to the command first (a lower fd limit).
    pub(super) fn start_with(
        config: &Path,
        db: &Path,
        adjust: impl FnOnce(&mut std::process::Command),
    ) -> Server {
        let mut cmd = triage();
        // TRIAGE_BIN points the tests at another build (the load test's release figures).
        if let Some(bin) = std::env::var_os("TRIAGE_BIN") {
            let mut other = std::process::Command::new(bin);
            other.envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
            other.current_dir(root());
            cmd = other;
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--db")
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("starting triage serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("triage serve did not start:\n{err}");
            }
        };
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        // Drain stderr so the server never blocks on a full pipe; keep it for assertions.
        let pipe = child.stderr.take().unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        Server {
            child,
            base,
            stderr,
        }
    }

    /// Everything the server wrote to stderr so far.
    pub(super) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn signal(&self, sig: &str) {
        // The shell's builtin kill: no procps needed.
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("kill {sig} {}", self.child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit; its exit code.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP server that accepts connections and never answers: an ssh target that hangs.
pub(super) fn silent_port() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
        }
    });
    port
}

pub(super) struct Setup {
    pub(super) _dir: tempfile::TempDir,
    pub(super) config: PathBuf,
    pub(super) db: PathBuf,
}

pub(super) fn setup(limits: &str, slack_prefix: &str) -> Setup {
    // These tests are about other limits: a caller's run rate (whose default depends on the
    // queue) only where a test sets one.
    let limits = if limits.contains("runs_per_minute_per_caller") {
        limits.to_string()
    } else {
        format!("{limits}  runs_per_minute_per_caller: 100000\n")
    };
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples/service-unreachable");
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {TOKEN}\n\
             \x20 - name: narrow\n    token: {NARROW_TOKEN}\n    targets: [healthy]\n    runbooks: [service-unreachable]\n\
             slack:\n  signing_secret: {SECRET}\n  response_url_origins: [\"{slack_prefix}\"]\n\
             mattermost:\n  token: {MATTERMOST_TOKEN}\n  response_url_origins: [\"{slack_prefix}\"]\n\
             targets:\n  healthy: {}\n  broken: {}\n  hangs: ssh://127.0.0.1:{}\n\
             limits:\n{limits}",
            examples.join("interception-in-place").display(),
            examples.join("interception-missing").display(),
            silent_port(),
        ),
    )
    .unwrap();
    Setup {
        db: dir.path().join("history/runs.sqlite3"),
        config,
        _dir: dir,
    }
}

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(super) async fn post_run(c: &reqwest::Client, s: &Server, body: Value) -> (u16, Value) {
    let r = c
        .post(s.url("/v1/runs"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub(super) async fn get_json(c: &reqwest::Client, s: &Server, path: &str) -> (u16, Value) {
    let r = c.get(s.url(path)).bearer_auth(TOKEN).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Follows a run's events to its end; the raw event stream.
async fn follow(c: &reqwest::Client, s: &Server, id: &str) -> String {
    follow_at(c, &s.base, id).await
}

pub(super) async fn follow_at(c: &reqwest::Client, base: &str, id: &str) -> String {
    c.get(format!("{base}/v1/runs/{id}/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub(super) async fn wait_status(c: &reqwest::Client, s: &Server, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let (_, run) = get_json(c, s, &format!("/v1/runs/{id}")).await;
        if run["status"] == want {
            return run;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run {id} never became {want}: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) const DEFAULT_LIMITS: &str =
    "  max_concurrent_runs: 2\n  run_deadline: 30s\n  max_body_bytes: 2048\n";

#[test]
fn api_end_to_end_with_bundle_targets() {
    let setup = setup(DEFAULT_LIMITS, "http://127.0.0.1:9");
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    rt().block_on(async {
        // Health and the OpenAPI document need no token.
        let health: Value = c.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        let text = c
            .get(server.url("/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // docs/openapi.json is the served document, kept current (TRIAGE_BLESS=1 rewrites it).
        let committed = root().join("docs/openapi.json");
        if std::env::var_os("TRIAGE_BLESS").is_some() {
            std::fs::write(&committed, format!("{text}\n")).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(&committed).unwrap_or_default().trim_end(),
            text,
            "docs/openapi.json is stale (TRIAGE_BLESS=1 rewrites it)"
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        for path in ["/v1/runs", "/v1/runs/{id}", "/v1/runs/{id}/events", "/v1/runbooks", "/slack/commands"] {
            assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
        }
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert!(doc["components"]["schemas"]["RunRequest"]["properties"]["target"].is_object());

        let (code, runbooks) = get_json(&c, &server, "/v1/runbooks").await;
        assert_eq!(code, 200);
        let su = runbooks
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "service-unreachable")
            .expect("service-unreachable is served");
        assert!(su["inputs"].as_array().unwrap().iter().any(|i| i["name"] == "vip"));
        let (_, targets) = get_json(&c, &server, "/v1/targets").await;
        assert_eq!(
            targets,
            json!([{"name": "broken", "kind": "bundle"}, {"name": "hangs", "kind": "ssh"}, {"name": "healthy", "kind": "bundle"}])
        );

        // A broken VM: the run is accepted, its events stream, and its report says why.
        let r = c
            .post(server.url("/v1/runs"))
            .bearer_auth(TOKEN)
            .json(&json!({"runbook": "service-unreachable", "target": "broken", "inputs": {"vip": "10.0.0.1"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let accepted: Value = r.json().await.unwrap();
        let id = accepted["id"].as_str().unwrap().to_string();
        assert_eq!(location, format!("/v1/runs/{id}"));
        assert_eq!(accepted["status"], "queued");
        let events = follow(&c, &server, &id).await;
        for name in ["event: queued", "event: started", "event: step", "event: finished"] {
            assert!(events.contains(name), "no {name} in:\n{events}");
        }
        assert!(events.contains("\"interception-missing\""), "{events}");
        assert!(events.trim_end().ends_with('}'), "the stream ends after finished");
        let (_, run) = get_json(&c, &server, &format!("/v1/runs/{id}")).await;
        assert_eq!(run["status"], "failing");
        assert_eq!(run["exit_code"], 1);
        assert_eq!(run["requested_by"], "token:tester");
        assert_eq!(run["inputs"]["vip"], "10.0.0.1");
        assert_eq!(run["report"]["schema"], "triage.report/v2");
        assert_eq!(run["report"]["findings"][0]["id"], "interception-missing");
        let md = c
            .get(server.url(&format!("/v1/runs/{id}?format=markdown")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(md.headers()["content-type"].to_str().unwrap().starts_with("text/markdown"));
        let md = md.text().await.unwrap();
        assert!(md.starts_with("# service-unreachable:"), "{md}");
        assert!(md.contains("interception-missing"));
        // Events of a finished run are replayed from the history.
        let replay = follow(&c, &server, &id).await;
        assert!(replay.contains("event: step") && replay.contains("\"interception-missing\""));

        // A healthy VM.
        let (code, ok) = post_run(&c, &server, json!({"runbook": "service-unreachable", "target": "healthy",
            "inputs": {"vip": "10.0.0.1", "proxy_uid": 1006}})).await;
        assert_eq!(code, 202);
        let ok_id = ok["id"].as_str().unwrap();
        let run = wait_status(&c, &server, ok_id, "ok").await;
        assert_eq!(run["report"]["findings"], json!([]));

        // The history, newest first, in pages.
        let (_, page) = get_json(&c, &server, "/v1/runs?limit=1").await;
        assert_eq!(page["runs"][0]["id"], ok_id);
        assert!(page["runs"][0].get("report").is_none(), "lists leave reports out");
        let next = page["next"].as_str().unwrap().to_string();
        let (_, older) = get_json(&c, &server, &next).await;
        assert_eq!(older["runs"][0]["id"], id.as_str());

        // Requests a bot gets wrong: each a 400 with one line saying what.
        for (body, says) in [
            (json!({"runbook": "nope", "target": "healthy"}), "no runbook `nope`"),
            (json!({"runbook": "service-unreachable", "target": "prod"}), "no target `prod`"),
            (json!({"runbook": "service-unreachable", "target": "healthy", "inputs": {"vpi": "1"}}), "has no input `vpi`"),
            (json!({"runbook": "service-unreachable", "target": "ssh://evil", "inputs": {"vip": "1"}}), "no target `ssh://evil`"),
            (json!({"runbook": "service-unreachable", "target": "healthy", "command": "rm -rf /"}), "unknown field `command`"),
        ] {
            let (code, err) = post_run(&c, &server, body).await;
            assert_eq!(code, 400, "{err}");
            let msg = err["error"].as_str().unwrap();
            assert!(msg.contains(says), "{msg}");
            assert!(!msg.contains('\n'));
        }
        let r = c.post(server.url("/v1/runs")).bearer_auth(TOKEN)
            .header("content-type", "application/json").body("{\"runbook\": ").send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let err: Value = r.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("line 1 column"), "{err}");
        let r = c.post(server.url("/v1/runs")).bearer_auth(TOKEN)
            .body(vec![b' '; 4096]).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 413);
        let (code, err) = get_json(&c, &server, "/v1/runs/r000").await;
        assert_eq!((code, err["error"].as_str()), (404, Some("no run `r000`")));
        let (code, _) = get_json(&c, &server, &format!("/v1/runs/{id}?format=xml")).await;
        assert_eq!(code, 400);
    });
}

#[test]
fn v1_needs_a_known_bearer_token() {
    let setup = setup(DEFAULT_LIMITS, "http://127.0.0.1:9");
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    rt().block_on(async {
        for path in [
            "/v1/runs",
            "/v1/runbooks",
            "/v1/targets",
            "/v1/runs/x",
            "/v1/runs/x/events",
        ] {
            for auth in [
                None,
                Some("Bearer wrong-token-0123456789"),
                Some(&*format!("Basic {TOKEN}")),
                Some("Bearer "),
            ] {
                let mut req = c.get(server.url(path));
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                let r = req.send().await.unwrap();
                assert_eq!(r.status().as_u16(), 401, "{path} with {auth:?}");
                assert_eq!(r.headers()["www-authenticate"], "Bearer");
                let err: Value = r.json().await.unwrap();
                assert!(err["error"].as_str().unwrap().contains("ear"), "{err}");
            }
        }
        let r = c
            .post(server.url("/v1/runs"))
            .json(&json!({"runbook": "service-unreachable", "target": "healthy"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "no run without a token");
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"], json!([]), "nothing ran");
    });
}

/// A loopback HTTP server standing in for Slack's response_url: it hands over each POSTed body.
pub(super) fn response_url_server() -> (u16, mpsc::Receiver<String>) {
    response_url_server_failing(0)
}

/// Like [`response_url_server`], but the first `failures` posts get HTTP 500 (and are still
/// passed on), so the poster has to retry.
fn response_url_server_failing(failures: usize) -> (u16, mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let status = if n < failures { "500 Oops" } else { "200 OK" };
            let _ = conn.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .as_bytes(),
            );
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (port, rx)
}

/// POSTs a form to `path`, signed with SECRET now, as Slack sends commands and clicks.
pub(super) fn signed_slack(
    c: &reqwest::Client,
    server: &Server,
    path: &str,
    form: String,
) -> impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    let ts = now().to_string();
    let sig = triage::serve::chat::slack::signature(SECRET, &ts, form.as_bytes());
    c.post(server.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", sig)
        .body(form)
        .send()
}

pub(super) fn slack_form(text: &str, response_url: &str) -> String {
    chat_form("legacy", text, response_url)
}

pub(super) fn chat_form(token: &str, text: &str, response_url: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "token={}&team_id=T1&user_id=U1&user_name=alice&command=%2Ftriage&text={}&response_url={}",
        enc(token),
        enc(text),
        enc(response_url)
    )
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn slack_commands_are_signed_answered_at_once_and_posted_back() {
    let (port, posted) = response_url_server();
    let setup = setup(DEFAULT_LIMITS, &format!("http://127.0.0.1:{port}/"));
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/commands/T1/123/abc");
    rt().block_on(async {
        let send = |body: String, ts: Option<String>, sig: Option<String>| {
            let mut req = c
                .post(server.url("/slack/commands"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            if let Some(ts) = ts {
                req = req.header("x-slack-request-timestamp", ts);
            }
            if let Some(sig) = sig {
                req = req.header("x-slack-signature", sig);
            }
            req.send()
        };
        let body = slack_form("service-unreachable broken vip=10.0.0.1", &response_url);
        let ts = now().to_string();
        let good = triage::serve::chat::slack::signature(SECRET, &ts, body.as_bytes());

        // Bad, missing and stale signatures: 401, and nothing runs.
        let wrong = triage::serve::chat::slack::signature("not-the-secret", &ts, body.as_bytes());
        let stale_ts = (now() - 400).to_string();
        let stale = triage::serve::chat::slack::signature(SECRET, &stale_ts, body.as_bytes());
        for (ts, sig, says) in [
            (Some(ts.clone()), Some(wrong), "does not match"),
            (Some(ts.clone()), None, "X-Slack-Signature"),
            (None, Some(good.clone()), "X-Slack-Request-Timestamp"),
            (Some(stale_ts), Some(stale), "from the server's clock"),
        ] {
            let r = send(body.clone(), ts, sig).await.unwrap();
            assert_eq!(r.status().as_u16(), 401);
            let err: Value = r.json().await.unwrap();
            assert!(err["error"].as_str().unwrap().contains(says), "{err}");
        }
        // The body signed is the body checked: a tampered body fails.
        let tampered = slack_form("service-unreachable healthy vip=10.0.0.1", &response_url);
        let r = send(tampered, Some(ts.clone()), Some(good.clone()))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"], json!([]), "no unsigned command ran");

        // A good one: answered at once, the result posted to response_url as mrkdwn.
        let r = send(body.clone(), Some(ts.clone()), Some(good))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let reply: Value = r.json().await.unwrap();
        assert_eq!(reply["response_type"], "ephemeral");
        let text = reply["text"].as_str().unwrap();
        assert!(
            text.starts_with("Running `service-unreachable` on `broken`"),
            "{text}"
        );
        let post = posted
            .recv_timeout(Duration::from_secs(60))
            .expect("a post to response_url");
        let post: Value = serde_json::from_str(&post).unwrap();
        assert_eq!(post["response_type"], "in_channel");
        let result = post["text"].as_str().unwrap();
        assert!(result.starts_with(":red_circle: *"), "{result}");
        assert!(
            result.contains("`interception-missing`") && result.contains("*Fix:*"),
            "{result}"
        );
        assert!(!result.contains("**"), "mrkdwn bold is single asterisks");
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"][0]["requested_by"], "slack:alice");

        // list, and a response_url the server does not post to.
        let signed = |text: &str, url: &str| {
            let body = slack_form(text, url);
            let ts = now().to_string();
            let sig = triage::serve::chat::slack::signature(SECRET, &ts, body.as_bytes());
            send(body, Some(ts), Some(sig))
        };
        let reply_text = |reply: Value| reply["text"].as_str().unwrap_or_default().to_string();
        let r = signed("list", &response_url).await.unwrap();
        assert!(reply_text(r.json().await.unwrap()).contains("`service-unreachable`"));
        let r = signed(
            "service-unreachable broken vip=10.0.0.1",
            "http://169.254.169.254/x",
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        // A typo is told to the user, not run.
        let r = signed("service-unreachable nowhere vip=10.0.0.1", &response_url)
            .await
            .unwrap();
        assert!(reply_text(r.json().await.unwrap()).contains("no target `nowhere`"));
    });
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let limits = "  max_concurrent_runs: 1\n  max_queued_runs: 1\n  run_deadline: 2s\n";
    let setup = setup(limits, "http://127.0.0.1:9");
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    rt().block_on(async {
        let hang = json!({"runbook": "service-unreachable", "target": "hangs", "inputs": {"vip": "10.0.0.1"}});
        let (a, first) = post_run(&c, &server, hang.clone()).await;
        let (b, second) = post_run(&c, &server, hang.clone()).await;
        assert_eq!((a, b), (202, 202));
        let r = c.post(server.url("/v1/runs")).bearer_auth(TOKEN).json(&hang).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=3600).contains(&retry));
        let err: Value = r.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("queue is full"));
        // The first run takes the one slot as soon as the run pool gets to it.
        let start = Instant::now();
        loop {
            let health: Value = c.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
            let load = (health["running"].as_u64(), health["queued"].as_u64());
            if load == (Some(1), Some(1)) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "running and queued: {load:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Both admitted runs end at the deadline, and then there is room again.
        for run in [&first, &second] {
            let id = run["id"].as_str().unwrap();
            let done = wait_status(&c, &server, id, "timed-out").await;
            assert!(done["error"].as_str().unwrap().contains("deadline"), "{done}");
        }
        let (code, _) = post_run(&c, &server, json!({"runbook": "service-unreachable", "target": "healthy",
            "inputs": {"vip": "10.0.0.1"}})).await;
        assert_eq!(code, 202);
    });
}

#[test]
fn a_restart_keeps_the_history_and_marks_runs_in_flight_interrupted() {
    let limits = "  max_concurrent_runs: 2\n  run_deadline: 10m\n  shutdown_grace: 1s\n";
    let setup = setup(limits, "http://127.0.0.1:9");
    let c = client();
    let rt = rt();
    let hang =
        json!({"runbook": "service-unreachable", "target": "hangs", "inputs": {"vip": "10.0.0.1"}});

    // A crash (SIGKILL) with one run finished and one running.
    let mut server = Server::start(&setup.config, &setup.db);
    let (finished, crashed) = rt.block_on(async {
        let (_, ok) = post_run(
            &c,
            &server,
            json!({"runbook": "service-unreachable", "target": "broken",
            "inputs": {"vip": "10.0.0.1"}}),
        )
        .await;
        let ok = ok["id"].as_str().unwrap().to_string();
        wait_status(&c, &server, &ok, "failing").await;
        let (_, h) = post_run(&c, &server, hang.clone()).await;
        let h = h["id"].as_str().unwrap().to_string();
        wait_status(&c, &server, &h, "running").await;
        (ok, h)
    });
    server.signal("-KILL");
    server.wait(Duration::from_secs(10));

    // Restarted on the same file: the finished run is whole, the running one interrupted.
    let mut server = Server::start(&setup.config, &setup.db);
    let graceful = rt.block_on(async {
        let (_, run) = get_json(&c, &server, &format!("/v1/runs/{finished}")).await;
        assert_eq!(run["status"], "failing");
        assert_eq!(run["report"]["findings"][0]["id"], "interception-missing");
        let (_, run) = get_json(&c, &server, &format!("/v1/runs/{crashed}")).await;
        assert_eq!(run["status"], "interrupted");
        assert_eq!(
            run["error"],
            "the server stopped while this run was running"
        );
        let events = follow(&c, &server, &crashed).await;
        assert!(events.contains("\"interrupted\""), "{events}");
        let (_, h) = post_run(&c, &server, hang.clone()).await;
        let h = h["id"].as_str().unwrap().to_string();
        wait_status(&c, &server, &h, "running").await;
        h
    });
    // A graceful stop: the running run gets the grace period, then is marked, and the
    // process exits 0.
    server.signal("-TERM");
    assert_eq!(
        server.wait(Duration::from_secs(20)),
        Some(0),
        "serve exits 0 on SIGTERM"
    );

    let server = Server::start(&setup.config, &setup.db);
    rt.block_on(async {
        let (_, run) = get_json(&c, &server, &format!("/v1/runs/{graceful}")).await;
        assert_eq!(run["status"], "interrupted");
        assert!(
            run["error"].as_str().unwrap().contains("grace period"),
            "{run}"
        );
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(
            list["runs"].as_array().unwrap().len(),
            3,
            "nothing lost: {list}"
        );
    });
}

#[test]
fn bad_server_configs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("listen: [1\n", "server.yaml:"),
        ("targets: {a: local}\n", "nobody could call the server"),
        (
            "tokens: [{name: a, token: short}]\ntargets: {a: local}\n",
            "shorter than 16",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh}]\ntargets: {a: ./no-such-bundle}\n",
            "target `a`",
        ),
        (
            "tokens: [{name: a, token_env: TRIAGE_TEST_UNSET_VAR}]\ntargets: {a: local}\n",
            "TRIAGE_TEST_UNSET_VAR is not set",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh}]\ntargets: {a: local}\nbogus: 1\n",
            "unknown field `bogus`",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh}]\ntargets: {a: local}\nrunbooks: [nope]\n",
            "no runbook `nope`",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh, targets: [b]}]\ntargets: {a: local}\n",
            "token `a`: no target `b`",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh, runbooks: [x]}]\ntargets: {a: local}\n",
            "token `a`: no runbook `x`",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh}]\ntargets: {a: local}\ntls: {cert: no.pem, key: no.key}\n",
            "tls cert",
        ),
        (
            "tokens: [{name: a, token: 0123456789abcdefgh, runs_per_minute: 0}]\ntargets: {a: local}\n",
            "token `a`: runs_per_minute: 0 would refuse every run",
        ),
    ];
    for (text, says) in cases {
        let config = dir.path().join("server.yaml");
        std::fs::write(&config, text).unwrap();
        let out = super::run(
            triage()
                .args(["serve", "--listen", "127.0.0.1:0", "--config"])
                .arg(&config)
                .arg("--db")
                .arg(dir.path().join("runs.sqlite3")),
        );
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{text}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

/// 500 runs from 50 concurrent clients on a bundle target: every run completes and is in the
/// history. Prints runs per second and latency (submit to the `finished` event); to measure
/// the release build: `cargo build --release && TRIAGE_BIN=$PWD/target/release/triage
/// cargo test -p triage --test all serve::load -- --nocapture`.
#[test]
fn load_500_runs_from_50_clients() {
    load_500_runs(false);
}

/// The same over HTTPS: 50 clients keeping their connections, as bots do.
#[test]
fn load_500_runs_over_https() {
    load_500_runs(true);
}

fn load_500_runs(https: bool) {
    let limits = "  max_concurrent_runs: 4\n  max_queued_runs: 64\n  run_deadline: 60s\n";
    let setup = setup(limits, "http://127.0.0.1:9");
    let c = if https {
        trusting_with_pool(&with_tls(&setup).0, usize::MAX)
    } else {
        client()
    };
    let server = Server::start(&setup.config, &setup.db);
    let (clients, per_client) = (50, 10);
    let started = Instant::now();
    // Per run: (POST answered with 202, the `finished` event received), both from the POST.
    let latencies: Vec<(Duration, Duration)> = rt().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..clients {
            let (c, url) = (c.clone(), server.base.clone());
            tasks.spawn(async move {
                let mut lat = Vec::new();
                for i in 0..per_client {
                    let target = if (n + i) % 2 == 0 { "healthy" } else { "broken" };
                    let t = Instant::now();
                    let r = c
                        .post(format!("{url}/v1/runs"))
                        .bearer_auth(TOKEN)
                        .json(&json!({"runbook": "service-unreachable", "target": target, "inputs": {"vip": "10.0.0.1"}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 202);
                    let accepted = t.elapsed();
                    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
                    let events = follow_at(&c, &url, &id).await;
                    assert!(events.contains("event: finished"), "{events}");
                    lat.push((accepted, t.elapsed()));
                }
                lat
            });
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.unwrap());
        }
        all
    });
    let elapsed = started.elapsed();
    assert_eq!(latencies.len(), clients * per_client);
    // Every run is in the history, ended, none lost or doubled.
    rt().block_on(async {
        let mut seen = std::collections::HashSet::new();
        let mut next = Some("/v1/runs?limit=200".to_string());
        while let Some(path) = next {
            let (_, page) = get_json(&c, &server, &path).await;
            for r in page["runs"].as_array().unwrap() {
                let status = r["status"].as_str().unwrap();
                assert!(status == "ok" || status == "failing", "{r}");
                assert!(seen.insert(r["id"].as_str().unwrap().to_string()));
            }
            next = page["next"].as_str().map(str::to_string);
        }
        assert_eq!(seen.len(), clients * per_client);
    });
    let percentiles = |mut d: Vec<Duration>| {
        d.sort();
        let at = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)].as_millis();
        format!("p50 {} ms, p99 {} ms", at(0.50), at(0.99))
    };
    println!(
        "serve load{}: {} runs from {clients} clients in {:.2} s = {:.0} runs/s; \
         POST to 202 {}; POST to finished {}",
        if https { " (https)" } else { "" },
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentiles(latencies.iter().map(|l| l.0).collect()),
        percentiles(latencies.iter().map(|l| l.1).collect()),
    );
}

#[test]
fn the_example_bot_runs_a_command_against_the_example_config() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &root().join("examples/slack-bot/server.yaml"),
        &dir.path().join("runs.sqlite3"),
    );
    // cargo test builds the examples beside the test binary's deps directory.
    let bot = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/slack-bot");
    let out = super::run(
        std::process::Command::new(&bot)
            .args([
                "--server",
                &server.base,
                "--secret",
                "dev-signing-secret",
                "--wait",
                "60",
            ])
            .args(["service-unreachable", "demo", "vip=10.0.0.1"]),
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("answered at once (ephemeral):\nRunning `service-unreachable` on `demo`"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("posted to the response_url (in_channel):\n:red_circle:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("`interception-missing`"),
        "{}",
        out.stdout
    );
    let wrong = super::run(std::process::Command::new(&bot).args([
        "--server",
        &server.base,
        "--secret",
        "guessed",
        "list",
    ]));
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("HTTP 401"), "{}", wrong.stderr);
}

#[test]
fn mattermost_commands_need_the_command_token_and_get_markdown_back() {
    let (port, posted) = response_url_server();
    let setup = setup(DEFAULT_LIMITS, &format!("http://127.0.0.1:{port}/"));
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/hooks/commands/abc");
    rt().block_on(async {
        let send = |token: &str| {
            c.post(server.url("/mattermost/commands"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(chat_form(
                    token,
                    "service-unreachable broken vip=10.0.0.1",
                    &response_url,
                ))
                .send()
        };
        for token in ["", "not-the-token", SECRET] {
            let r = send(token).await.unwrap();
            assert_eq!(r.status().as_u16(), 401, "token {token:?}");
        }
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"], json!([]), "nothing ran without the token");

        let r = send(MATTERMOST_TOKEN).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let reply: Value = r.json().await.unwrap();
        assert_eq!(reply["response_type"], "ephemeral");
        assert!(
            reply["text"]
                .as_str()
                .unwrap()
                .starts_with("Running `service-unreachable`")
        );
        let post: Value =
            serde_json::from_str(&posted.recv_timeout(Duration::from_secs(60)).unwrap()).unwrap();
        let text = post["text"].as_str().unwrap();
        // Mattermost renders Markdown: the report as `triage run --format markdown` prints it.
        assert!(text.starts_with("# service-unreachable:"), "{text}");
        assert!(
            text.contains("`interception-missing`") && text.contains("**Fix:**"),
            "{text}"
        );
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"][0]["requested_by"], "mattermost:alice");
        assert!(text.contains(&format!(
            "Run `{}`",
            list["runs"][0]["id"].as_str().unwrap()
        )));
    });
}

#[test]
fn a_scoped_token_runs_only_its_runbooks_on_its_targets() {
    let setup = setup(DEFAULT_LIMITS, "http://127.0.0.1:9");
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    rt().block_on(async {
        let get = |path: &str| c.get(server.url(path)).bearer_auth(NARROW_TOKEN).send();
        let targets: Value = get("/v1/targets").await.unwrap().json().await.unwrap();
        assert_eq!(targets, json!([{"name": "healthy", "kind": "bundle"}]));
        let runbooks: Value = get("/v1/runbooks").await.unwrap().json().await.unwrap();
        let ids: Vec<&str> = runbooks.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["service-unreachable"]);
        let post = |body: Value| {
            c.post(server.url("/v1/runs")).bearer_auth(NARROW_TOKEN).json(&body).send()
        };
        for body in [
            json!({"runbook": "service-unreachable", "target": "broken", "inputs": {"vip": "10.0.0.1"}}),
            json!({"runbook": "traffic-loop", "target": "healthy"}),
        ] {
            let r = post(body).await.unwrap();
            assert_eq!(r.status().as_u16(), 403);
            let err: Value = r.json().await.unwrap();
            assert!(err["error"].as_str().unwrap().starts_with("token:narrow may not run"), "{err}");
        }
        let r = post(json!({"runbook": "service-unreachable", "target": "healthy", "inputs": {"vip": "10.0.0.1"}}))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"].as_array().unwrap().len(), 1, "only the allowed run: {list}");
        assert_eq!(list["runs"][0]["requested_by"], "token:narrow");
        let narrow_run = list["runs"][0]["id"].as_str().unwrap().to_string();

        // Another team's run, on a target outside the narrow scope: the narrow token neither
        // lists it nor reads it, and the 404 is the one an unknown id gets.
        let (code, other) = post_run(
            &c,
            &server,
            json!({"runbook": "service-unreachable", "target": "broken", "inputs": {"vip": "10.0.0.1"}}),
        )
        .await;
        assert_eq!(code, 202);
        let other = other["id"].as_str().unwrap().to_string();
        wait_status(&c, &server, &other, "failing").await;
        let listed: Value = get("/v1/runs").await.unwrap().json().await.unwrap();
        let ids: Vec<&str> = listed["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [narrow_run.as_str()]);
        for path in [format!("/v1/runs/{other}"), format!("/v1/runs/{other}/events")] {
            let r = get(&path).await.unwrap();
            assert_eq!(r.status().as_u16(), 404, "{path}");
            let err: Value = r.json().await.unwrap();
            assert_eq!(err["error"], format!("no run `{other}`"));
        }
        assert_eq!(get(&format!("/v1/runs/{narrow_run}")).await.unwrap().status().as_u16(), 200);

        // Filters, for the unscoped token: by target, by status, and both; the next page
        // keeps them.
        let ids_of = |list: &Value| -> Vec<String> {
            list["runs"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
        };
        let (_, by_target) = get_json(&c, &server, "/v1/runs?target=broken").await;
        assert_eq!(ids_of(&by_target), [other.as_str()]);
        let (_, failing) = get_json(&c, &server, "/v1/runs?status=failing&runbook=service-unreachable").await;
        assert_eq!(ids_of(&failing), [other.as_str()]);
        let (_, none) = get_json(&c, &server, "/v1/runs?status=timed-out").await;
        assert_eq!(ids_of(&none), Vec::<String>::new());
        let (_, page) = get_json(&c, &server, "/v1/runs?limit=1&runbook=service-unreachable").await;
        let next = page["next"].as_str().unwrap().to_string();
        assert!(next.contains("runbook=service-unreachable") && next.contains("limit=1"), "{next}");
        let (_, second) = get_json(&c, &server, &next).await;
        assert_eq!(ids_of(&second), [narrow_run.as_str()]);
        for bad in ["/v1/runs?status=sleeping", "/v1/runs?colour=red"] {
            let (code, err) = get_json(&c, &server, bad).await;
            assert_eq!(code, 400, "{bad}: {err}");
            assert!(err["error"].as_str().is_some_and(|e| !e.contains('\n')), "{err}");
        }
    });
}

/// A fresh self-signed certificate for 127.0.0.1 and localhost: (certificate, key), as PEM.
fn self_signed() -> (String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// Gives the setup's server a fresh self-signed pair (`tls/cert.pem` and `tls/key.pem`,
/// relative to the config file, as the docs show them): (certificate PEM, cert path, key path).
fn with_tls(setup: &Setup) -> (String, PathBuf, PathBuf) {
    let tls_dir = setup.config.parent().unwrap().join("tls");
    std::fs::create_dir(&tls_dir).unwrap();
    let (cert, key) = (tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
    let (cert_pem, key_pem) = self_signed();
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    let mut config = std::fs::read_to_string(&setup.config).unwrap();
    config.push_str("tls:\n  cert: tls/cert.pem\n  key: tls/key.pem\n");
    std::fs::write(&setup.config, config).unwrap();
    (cert_pem, cert, key)
}

/// A client that trusts only `cert` and opens a new connection (a new handshake) each time.
fn trusting(cert: &str) -> reqwest::Client {
    trusting_with_pool(cert, 0)
}

fn trusting_with_pool(cert: &str, idle_per_host: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .pool_max_idle_per_host(idle_per_host)
        .build()
        .unwrap()
}

/// Replaces `path` the way renewal tools do (a new file renamed over the old), dated `ahead`
/// seconds from now so the change shows whatever the file system's timestamp granularity.
fn renew_file(path: &Path, text: &str, ahead: u64) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&next)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(ahead))
        .unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[test]
fn https_from_the_configured_pem_files_reloaded_when_renewed() {
    let setup = setup(DEFAULT_LIMITS, "http://127.0.0.1:9");
    let (first_cert, cert, key) = with_tls(&setup);

    let server = Server::start(&setup.config, &setup.db);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    rt().block_on(async {
        let healthz = |c: reqwest::Client| {
            let url = server.url("/healthz");
            async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
        };
        let c = trusting(&first_cert);
        assert_eq!(healthz(c.clone()).await.unwrap(), 200);
        // A run end to end over HTTPS, the bearer token inside TLS.
        let (code, accepted) = post_run(
            &c,
            &server,
            json!({"runbook": "service-unreachable", "target": "broken", "inputs": {"vip": "10.0.0.1"}}),
        )
        .await;
        assert_eq!(code, 202, "{accepted}");
        let events = follow(&c, &server, accepted["id"].as_str().unwrap()).await;
        assert!(events.contains("\"interception-missing\""), "{events}");

        // Plain HTTP to the HTTPS port gets no HTTP answer, and a client that does not trust
        // the certificate refuses it; neither failed handshake stops the server.
        let plain = server.url("/healthz").replacen("https://", "http://", 1);
        let plain = client().get(plain).send().await;
        assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
        let (stranger, _) = self_signed();
        assert!(healthz(trusting(&stranger)).await.is_err());
        assert_eq!(healthz(c.clone()).await.unwrap(), 200);

        // Renewal: the next connection gets the new pair, without a restart.
        let (second_cert, second_key) = self_signed();
        renew_file(&key, &second_key, 5);
        renew_file(&cert, &second_cert, 5);
        assert_eq!(healthz(trusting(&second_cert)).await.unwrap(), 200);
        assert!(
            healthz(trusting(&first_cert)).await.is_err(),
            "the old certificate is still served"
        );

        // A renewal that does not load keeps the previous pair and is reported once.
        renew_file(&cert, "not a certificate\n", 10);
        for _ in 0..3 {
            assert_eq!(healthz(trusting(&second_cert)).await.unwrap(), 200);
        }
    });
    let log = server.stderr.lock().unwrap().clone();
    assert_eq!(
        log.matches("loaded the renewed certificate").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("still serving the previous certificate")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("tls cert") && log.contains("cert.pem"),
        "{log}"
    );
}

#[test]
fn each_caller_has_its_own_run_rate() {
    let (port, _posted) = response_url_server();
    let dir = tempfile::tempdir().unwrap();
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    let config = dir.path().join("server.yaml");
    // `tester` has no rate of its own and takes the server's default of 1 a minute; `narrow`
    // sets 2; each Slack user gets the Slack section's 1.
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {TOKEN}\n\
             \x20 - name: narrow\n    token: {NARROW_TOKEN}\n    runs_per_minute: 2\n\
             slack:\n  signing_secret: {SECRET}\n  runs_per_minute: 1\n  response_url_origins: [\"http://127.0.0.1:{port}/\"]\n\
             targets:\n  healthy: {}\n\
             limits:\n  runs_per_minute_per_caller: 1\n",
            bundle.display()
        ),
    )
    .unwrap();
    let server = Server::start(&config, &dir.path().join("runs.sqlite3"));
    let c = client();
    rt().block_on(async {
        let run = json!({"runbook": "service-unreachable", "target": "healthy", "inputs": {"vip": "10.0.0.1"}});
        let post = |token: &'static str, body: Value| {
            c.post(server.url("/v1/runs")).bearer_auth(token).json(&body).send()
        };
        // A request that could not run is not charged.
        let bad = json!({"runbook": "service-unreachable", "target": "nowhere"});
        assert_eq!(post(NARROW_TOKEN, bad).await.unwrap().status().as_u16(), 400);
        for _ in 0..2 {
            assert_eq!(post(NARROW_TOKEN, run.clone()).await.unwrap().status().as_u16(), 202);
        }
        let r = post(NARROW_TOKEN, run.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), 429);
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        // 2 a minute: the next start is about 30 s after the first.
        assert!((25..=30).contains(&retry), "Retry-After {retry}");
        let err: Value = r.json().await.unwrap();
        assert!(
            err["error"].as_str().unwrap().starts_with("token:narrow may start 2 run(s) a minute"),
            "{err}"
        );
        // Another token has a bucket of its own, at the server's default.
        assert_eq!(post(TOKEN, run.clone()).await.unwrap().status().as_u16(), 202);
        assert_eq!(post(TOKEN, run.clone()).await.unwrap().status().as_u16(), 429);

        // Slack: one run a minute for each user, told in the ephemeral answer.
        let response_url = format!("http://127.0.0.1:{port}/commands/T1/123/abc");
        let slack = |form: String| signed_slack(&c, &server, "/slack/commands", form);
        let alice = slack_form("service-unreachable healthy vip=10.0.0.1", &response_url);
        let bob = alice.replace("user_id=U1&user_name=alice", "user_id=U2&user_name=bob");
        let said = |r: reqwest::Response| async move {
            let v: Value = r.json().await.unwrap();
            v["text"].as_str().unwrap_or_default().to_string()
        };
        assert!(said(slack(alice.clone()).await.unwrap()).await.starts_with("Running"));
        // Another command (Slack's forms differ by trigger_id), not a replay of the first.
        let refused = said(slack(format!("{alice}&trigger_id=2")).await.unwrap()).await;
        assert!(refused.contains("slack:alice may start 1 run(s) a minute"), "{refused}");
        assert!(said(slack(bob).await.unwrap()).await.starts_with("Running"));

        // Only admitted runs are in the history: 2 + 1 + 2 Slack.
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"].as_array().unwrap().len(), 5, "{list}");
        for run in list["runs"].as_array().unwrap() {
            wait_status(&c, &server, run["id"].as_str().unwrap(), "ok").await;
        }

        // The same story in /metrics, for Prometheus (behind a token, like /v1).
        let url = server.url("/metrics");
        assert_eq!(c.get(&url).send().await.unwrap().status().as_u16(), 401);
        let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let metrics = r.text().await.unwrap();
        for line in [
            "triage_runs_refused_total{reason=\"rate-limited\"} 3",
            "triage_runs_refused_total{reason=\"invalid\"} 1",
            "triage_runs_ended_total{status=\"ok\"} 5",
            "triage_run_duration_seconds_count 5",
            "triage_runs_queued 0",
            "triage_runs_running 0",
        ] {
            assert!(metrics.lines().any(|l| l == line), "no {line:?} in:\n{metrics}");
        }
    });
}

/// Form-encodes one field.
fn form_field(name: &str, value: &str) -> String {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{name}={encoded}")
}

#[test]
fn slack_walks_through_ask_steps_with_answer_buttons() {
    let (port, posted) = response_url_server();
    let dir = tempfile::tempdir().unwrap();
    let bundle = root().join("runbooks/ipv6-modules-missing/tests/console-vm-modules-missing");
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "slack:\n  signing_secret: {SECRET}\n  response_url_origins: [\"http://127.0.0.1:{port}/\"]\n\
             targets:\n  vm: {}\n",
            bundle.display()
        ),
    )
    .unwrap();
    let server = Server::start(&config, &dir.path().join("runs.sqlite3"));
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/commands/T1/123/abc");
    let next_post = || -> Value {
        let text = posted
            .recv_timeout(Duration::from_secs(60))
            .expect("a post to response_url");
        serde_json::from_str(&text).unwrap()
    };
    rt().block_on(async {
        let signed = |path: &str, body: String| signed_slack(&c, &server, path, body);
        // The command leaves the runbook's question unanswered.
        let r = signed("/slack/commands", slack_form("ipv6-modules-missing vm", &response_url))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let first = next_post();
        let text = first["text"].as_str().unwrap();
        assert!(text.contains("ip6tables-unavailable"), "{text}");
        assert!(text.contains("*Next question* (step `created-from-console`): Was the VM created in the Cloud Console?"), "{text}");
        assert!(
            text.contains("`/triage ipv6-modules-missing vm answer:created-from-console=yes`"),
            "the command to type: {text}"
        );
        let blocks = first["blocks"].as_array().expect("blocks with buttons");
        assert!(blocks.iter().all(|b| b["text"]["text"].as_str().is_none_or(|t| t.len() <= 3000)));
        let buttons = blocks.last().unwrap()["elements"].as_array().unwrap();
        let labels: Vec<&str> = buttons.iter().map(|b| b["text"]["text"].as_str().unwrap()).collect();
        assert_eq!(labels, ["yes", "no"]);
        let yes: Value = serde_json::from_str(buttons[0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(yes["answers"], json!({"created-from-console": "yes"}));

        // A click on "yes": a new run with the answer, and the result under the question.
        let click = |action: Value| {
            let payload = json!({
                "type": "block_actions",
                "user": {"id": "U1", "username": "alice"},
                "team": {"id": "T1"},
                "response_url": response_url,
                "actions": [action],
            });
            form_field("payload", &payload.to_string())
        };
        let yes_click = click(json!({"action_id": buttons[0]["action_id"], "value": buttons[0]["value"]}));
        let r = signed("/slack/interactions", yes_click.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let (mut running, mut result) = (None, None);
        for _ in 0..2 {
            let post = next_post();
            if post["response_type"] == "ephemeral" {
                running = Some(post);
            } else {
                result = Some(post);
            }
        }
        let running = running.expect("the clicker is told the run started");
        assert!(running["text"].as_str().unwrap().starts_with("Running `ipv6-modules-missing`"), "{running}");
        let result = result.expect("the result");
        let text = result["text"].as_str().unwrap();
        assert!(text.contains("created in the Cloud Console"), "the answer reached the finding: {text}");
        assert!(!text.contains("Next question"), "nothing left to ask: {text}");
        assert_eq!(result["replace_original"], false);
        assert!(result.get("blocks").is_none());

        // Clicks are signed like commands; a forged or foreign payload runs nothing.
        let r = c
            .post(server.url("/slack/interactions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(yes_click)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let other = click(json!({"action_id": "someone-else", "value": "{}"}));
        assert_eq!(signed("/slack/interactions", other).await.unwrap().status().as_u16(), 400);
        let extra = json!({"runbook": "ipv6-modules-missing", "target": "vm", "command": "rm -rf /"});
        let extra = click(json!({"action_id": "triage-answer:0", "value": extra.to_string()}));
        let r = signed("/slack/interactions", extra).await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let err: Value = r.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("unknown field `command`"), "{err}");
    });
}

#[test]
fn serve_check_validates_the_config_without_serving() {
    let setup = setup(DEFAULT_LIMITS, "http://127.0.0.1:9");
    let check = |listen: &str| {
        super::run(
            triage()
                .args(["serve", "--check", "--listen", listen, "--config"])
                .arg(&setup.config)
                .arg("--db")
                .arg(&setup.db),
        )
    };
    let out = check("127.0.0.1:0");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains(" runbooks, 3 targets, 2 token(s), slack, mattermost, http://127.0.0.1:0"),
        "{}",
        out.stdout
    );
    // A check neither opens nor creates the history (a running server may own it).
    assert!(!setup.db.exists());
    let out = check("not-an-address");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("listen `not-an-address`"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_chat_run_cut_short_by_shutdown_is_still_reported_in_the_chat() {
    // The first post fails, so the result goes out only on the retry, 2 s later: after the
    // server has otherwise finished shutting down.
    let (port, posted) = response_url_server_failing(1);
    let limits = "  max_concurrent_runs: 2\n  run_deadline: 10m\n  shutdown_grace: 1s\n";
    let setup = setup(limits, &format!("http://127.0.0.1:{port}/"));
    let mut server = Server::start(&setup.config, &setup.db);
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/commands/T1/123/abc");
    rt().block_on(async {
        // A run on the target that never answers: still running when the server stops.
        let body = slack_form("service-unreachable hangs vip=10.0.0.1", &response_url);
        let r = signed_slack(&c, &server, "/slack/commands", body)
            .await
            .unwrap();
        let said: Value = r.json().await.unwrap();
        assert!(
            said["text"].as_str().unwrap().starts_with("Running"),
            "{said}"
        );
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        wait_status(
            &c,
            &server,
            list["runs"][0]["id"].as_str().unwrap(),
            "running",
        )
        .await;
    });
    server.signal("-TERM");
    assert_eq!(server.wait(Duration::from_secs(30)), Some(0));
    // The poster was let finish: the chat hears how the run ended.
    let first = posted
        .recv_timeout(Duration::from_secs(1))
        .expect("the failed post");
    let retried = posted
        .try_recv()
        .expect("the retry, before the server exited");
    assert_eq!(first, retried);
    let post: Value = serde_json::from_str(&retried).unwrap();
    let text = post["text"].as_str().unwrap();
    assert!(
        text.contains("ended interrupted") && text.contains("grace period"),
        "{text}"
    );
}

#[test]
fn a_chat_run_lost_in_a_crash_is_reported_in_the_chat_after_the_restart() {
    let (port, posted) = response_url_server();
    let limits = "  max_concurrent_runs: 2\n  run_deadline: 10m\n  shutdown_grace: 1s\n";
    let setup = setup(limits, &format!("http://127.0.0.1:{port}/"));
    let mut server = Server::start(&setup.config, &setup.db);
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/commands/T1/123/abc");
    let id = rt().block_on(async {
        let body = slack_form("service-unreachable hangs vip=10.0.0.1", &response_url);
        let r = signed_slack(&c, &server, "/slack/commands", body)
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        let id = list["runs"][0]["id"].as_str().unwrap().to_string();
        wait_status(&c, &server, &id, "running").await;
        id
    });
    // A crash: no drain, no post.
    server.signal("-KILL");
    server.wait(Duration::from_secs(10));
    assert!(
        posted.try_recv().is_err(),
        "nothing was posted before the crash"
    );

    let restarted = Server::start(&setup.config, &setup.db);
    let post: Value = serde_json::from_str(
        &posted
            .recv_timeout(Duration::from_secs(30))
            .expect("a notice"),
    )
    .unwrap();
    let text = post["text"].as_str().unwrap();
    assert!(
        text.contains("`service-unreachable` on `hangs` ended interrupted") && text.contains(&id),
        "{text}"
    );
    // One notice, for the one run.
    rt().block_on(async {
        wait_status(&c, &restarted, &id, "interrupted").await;
    });
    assert!(posted.recv_timeout(Duration::from_millis(300)).is_err());
}

/// Bundle targets whose side files are a link to /dev/zero, a FIFO nobody writes to and a
/// link to /etc/shadow: before, one run read /dev/zero until the server died. Now each run
/// ends (incomplete: those steps errored), nothing leaks, and the server keeps answering.
#[test]
fn runs_against_hostile_bundles_leave_the_server_up() {
    let dir = tempfile::tempdir().unwrap();
    // service-unreachable runs `ps` and `iptables -t nat -S` independently of each other.
    let bundle = |name: &str, ps: &str, iptables: &str| {
        let bundle = dir.path().join(name);
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("bundle.yaml"),
            format!(
                "calls:\n\
                 \x20 - exec: [ps, -eo, \"pid=,uid=,user=,args=\"]\n    stdout_file: {ps}\n\
                 \x20 - exec: [iptables, -t, nat, -S]\n    stdout_file: {iptables}\n"
            ),
        )
        .unwrap();
        bundle
    };
    let links = bundle("links", "zero.txt", "shadow.txt");
    std::os::unix::fs::symlink("/dev/zero", links.join("zero.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", links.join("shadow.txt")).unwrap();
    let fifo = bundle("fifo", "fifo.txt", "fifo.txt");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(fifo.join("fifo.txt"))
            .status()
            .unwrap()
            .success()
    );
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {TOKEN}\ntargets:\n  links: {}\n  fifo: {}\n\
             limits:\n  max_concurrent_runs: 2\n  run_deadline: 30s\n",
            links.display(),
            fifo.display(),
        ),
    )
    .unwrap();
    let server = Server::start(&config, &dir.path().join("runs.sqlite3"));
    let c = client();
    rt().block_on(async {
        for (target, whys) in [
            (
                "links",
                [
                    "zero.txt: is a link to /dev/zero, outside the bundle",
                    "shadow.txt: is a link to /etc/shadow, outside the bundle",
                ],
            ),
            (
                "fifo",
                [
                    "fifo.txt: is not a regular file (a FIFO)",
                    "fifo.txt: is not a regular file (a FIFO)",
                ],
            ),
        ] {
            let started = Instant::now();
            let (code, accepted) = post_run(
                &c,
                &server,
                json!({"runbook": "service-unreachable", "target": target}),
            )
            .await;
            assert_eq!(code, 202, "{accepted}");
            let id = accepted["id"].as_str().unwrap();
            let run = loop {
                let (_, run) = get_json(&c, &server, &format!("/v1/runs/{id}")).await;
                if run["status"] != "queued" && run["status"] != "running" {
                    break run;
                }
                assert!(started.elapsed() < Duration::from_secs(30), "{run:#}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert_eq!(run["status"], "incomplete", "{run:#}");
            let text = run.to_string();
            assert!(!text.contains("root:"), "/etc/shadow leaked: {text}");
            for why in whys {
                assert!(text.contains(why), "no {why:?} in {run:#}");
            }
            let health = c.get(server.url("/healthz")).send().await.unwrap();
            assert_eq!(health.status().as_u16(), 200);
        }
    });
}

/// Issue 11's repro: an input that would become a command-line option
/// (`pod=--kubeconfig=FILE`, whose kubeconfig runs a script as the server's user) sent
/// through the API and through both chats. The API answers 400 with one line; a chat
/// answers its user with one line (a chat shows an error status only as "the command
/// failed", without the reason); nothing is queued and no code runs.
#[test]
fn inputs_that_would_be_options_are_refused_by_the_api_and_in_chat() {
    use std::os::unix::fs::PermissionsExt;
    let (port, posted) = response_url_server();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("code-ran");
    let script = dir.path().join("credential.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig = dir.path().join("kc");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"https://127.0.0.1:1\"}}\n\
             contexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n\
             users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
             command: {}\n      interactiveMode: Never\n",
            script.display()
        ),
    )
    .unwrap();
    let config = dir.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "tokens:\n  - name: tester\n    token: {TOKEN}\n\
             slack:\n  signing_secret: {SECRET}\n  response_url_origins: [\"http://127.0.0.1:{port}/\"]\n\
             mattermost:\n  token: {MATTERMOST_TOKEN}\n  response_url_origins: [\"http://127.0.0.1:{port}/\"]\n\
             targets:\n  this-host: local\n"
        ),
    )
    .unwrap();
    let server = Server::start(&config, &dir.path().join("runs.sqlite3"));
    let c = client();
    let hostile = format!("--kubeconfig={}", kubeconfig.display());
    let response_url = format!("http://127.0.0.1:{port}/hooks/1");
    rt().block_on(async {
        let (status, body) = post_run(
            &c,
            &server,
            json!({"runbook": "envoy-logs", "target": "this-host", "inputs": {"pod": hostile}}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            !error.contains('\n') && error.contains("input `pod`") && error.contains("RFC 1123"),
            "{error}"
        );

        let text = format!("envoy-logs this-host pod={hostile}");
        let slack = signed_slack(
            &c,
            &server,
            "/slack/commands",
            slack_form(&text, &response_url),
        )
        .await
        .unwrap();
        let mattermost = c
            .post(server.url("/mattermost/commands"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(chat_form(MATTERMOST_TOKEN, &text, &response_url))
            .send()
            .await
            .unwrap();
        for (chat, r) in [("slack", slack), ("mattermost", mattermost)] {
            assert_eq!(r.status().as_u16(), 200, "{chat}");
            let reply: Value = r.json().await.unwrap();
            assert_eq!(reply["response_type"], "ephemeral", "{chat}: {reply}");
            let said = reply["text"].as_str().unwrap();
            assert!(
                !said.contains('\n') && said.contains("input `pod`"),
                "{chat}: {said}"
            );
        }

        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"], json!([]), "a run was queued");
    });
    assert!(
        posted.recv_timeout(Duration::from_millis(500)).is_err(),
        "a result was posted"
    );
    assert!(!marker.exists(), "the kubeconfig's credential plugin ran");
}
