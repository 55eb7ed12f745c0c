//! `triage serve` attacked from outside (issue 11, "The server"): forged response URLs,
//! empty chat secrets, slow connections, replayed Slack requests, callers who forge user ids,
//! addresses in chat posts and mentions in Mattermost posts. Each against the real server on
//! loopback.

use super::serve::{
    DEFAULT_LIMITS, MATTERMOST_TOKEN, SECRET, Server, TOKEN, client, get_json, post_run,
    response_url_server, rt, setup, signed_slack, slack_form,
};
use super::{root, triage};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use triage::serve::config::ResponseUrls;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let config = dir.join("server.yaml");
    std::fs::write(&config, text).unwrap();
    config
}

/// `triage serve --check` on a config: (exit code, stderr).
fn check(config: &Path) -> (i32, String) {
    let out = super::run(
        triage()
            .args(["serve", "--check", "--listen", "127.0.0.1:0", "--config"])
            .arg(config),
    );
    (out.code, out.stderr)
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Mattermost slash command from `user_id`, which anyone holding the token may claim.
fn mattermost_form(user_id: &str, text: &str, response_url: &str) -> String {
    format!(
        "token={}&team_id=T1&user_id={user_id}&user_name={user_id}&command=%2Ftriage&text={}&response_url={}",
        form_encode(MATTERMOST_TOKEN),
        form_encode(text),
        form_encode(response_url)
    )
}

async fn mattermost(c: &reqwest::Client, server: &Server, form: String) -> (u16, String) {
    let r = c
        .post(server.url("/mattermost/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A listener on another loopback address standing in for an internal service: it reports
/// every connection it gets.
fn internal_service() -> (String, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
            let _ = tx.send(());
        }
    });
    (addr, rx)
}

#[test]
fn response_urls_are_matched_by_exact_origin_never_by_prefix() {
    let urls = ResponseUrls::new(&["http://127.0.0.1:8080", "https://hooks.slack.com/"]).unwrap();
    for allowed in [
        "http://127.0.0.1:8080/commands/T1/1/x",
        "HTTPS://HOOKS.SLACK.COM/commands/x",
        "https://hooks.slack.com:443/commands/x",
    ] {
        assert!(urls.allows(allowed), "{allowed}");
    }
    for refused in [
        // The repro: a "http://127.0.0.1:" prefix matched this URL for host 10.99.0.2.
        "http://127.0.0.1:@10.99.0.2:9999/x",
        "http://127.0.0.1:8080@10.99.0.2:9999/x",
        "http://user:pw@127.0.0.1:8080/x",
        "http://127.0.0.1:8081/x",
        "https://127.0.0.1:8080/x",
        "http://127.0.0.1:8080.evil.example/x",
        "https://hooks.slack.com.evil.example/x",
        "https://hooks.slack.com:8443/x",
        "ftp://127.0.0.1:8080/x",
        "//127.0.0.1:8080/x",
        "not a url",
    ] {
        assert!(!urls.allows(refused), "{refused}");
    }

    // Config entries that are not origins are one-line errors at load, and so is the old
    // prefix form, with the origins it converts to.
    let dir = tempfile::tempdir().unwrap();
    let callers = format!("tokens: [{{name: a, token: {TOKEN}}}]\ntargets: {{a: local}}\n");
    for (section, says) in [
        (
            "slack: {signing_secret: s3cret, response_url_prefixes: [\"http://127.0.0.1:\", \"https://hooks.slack.com/\"]}",
            "slack.response_url_prefixes is replaced by response_url_origins (scheme://host[:port], compared exactly), e.g. response_url_origins: [\"https://hooks.slack.com\"]",
        ),
        (
            "mattermost: {token: 0123456789abcdefgh, response_url_prefixes: [\"https://chat.example.com/hooks/\"]}",
            "mattermost.response_url_prefixes is replaced by response_url_origins",
        ),
        (
            "slack: {signing_secret: s3cret, response_url_origins: [\"http://127.0.0.1:\"]}",
            "slack.response_url_origins: `http://127.0.0.1:`: empty port",
        ),
        (
            "slack: {signing_secret: s3cret, response_url_origins: [\"https://hooks.slack.com/commands/\"]}",
            "no path",
        ),
        (
            "mattermost: {token: 0123456789abcdefgh, response_url_origins: [\"http://u:p@chat.example.com\"]}",
            "no user or password",
        ),
        (
            "mattermost: {token: 0123456789abcdefgh}",
            "mattermost: give response_url_origins",
        ),
    ] {
        let config = write_config(dir.path(), &format!("{callers}{section}\n"));
        let (code, stderr) = check(&config);
        assert_eq!(code, 2, "{section}: {stderr}");
        assert!(stderr.contains(says), "{section}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }

    // The real server, signed requests and a good token: a response URL whose userinfo
    // looks like the allowed origin is refused, and nothing reaches the other host.
    let (port, posted) = response_url_server();
    let (internal, reached) = internal_service();
    let setup = setup(DEFAULT_LIMITS, &format!("http://127.0.0.1:{port}"));
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    rt().block_on(async {
        let forged = format!("http://127.0.0.1:{port}@{internal}/x");
        let text = "service-unreachable healthy vip=10.0.0.1";
        let r = signed_slack(&c, &server, "/slack/commands", slack_form(text, &forged))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("response_url_origins"),
            "{body}"
        );
        let (status, body) = mattermost(&c, &server, mattermost_form("U1", text, &forged)).await;
        assert_eq!(status, 400, "{body}");
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"], json!([]), "nothing ran");
        assert!(
            reached.recv_timeout(Duration::from_secs(2)).is_err(),
            "the server connected to {internal}"
        );
        // The allowed origin still gets its result.
        let good = format!("http://127.0.0.1:{port}/commands/T1/1/x");
        let r = signed_slack(&c, &server, "/slack/commands", slack_form(text, &good))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(posted.recv_timeout(Duration::from_secs(60)).is_ok());
    });
}

#[test]
fn empty_chat_secrets_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let origins = "response_url_origins: [\"https://chat.example.com\"]";
    let cases = [
        (
            "slack: {signing_secret: \"\"}".to_string(),
            "slack: the secret (written inline) is empty",
        ),
        (
            "slack: {signing_secret_env: TRIAGE_TEST_EMPTY_SECRET}".to_string(),
            "slack: the secret (from TRIAGE_TEST_EMPTY_SECRET) is empty",
        ),
        (
            format!("mattermost: {{token: \"\", {origins}}}"),
            "mattermost: the secret (written inline) is empty",
        ),
        (
            format!("mattermost: {{token: \"   \", {origins}}}"),
            "mattermost: the secret (written inline) is empty",
        ),
        (
            format!("mattermost: {{token: abc, {origins}}}"),
            "mattermost: the command token is shorter than 16 characters",
        ),
    ];
    for (section, says) in cases {
        let config = write_config(dir.path(), &format!("{section}\ntargets: {{a: local}}\n"));
        let out = super::run(
            triage()
                .args(["serve", "--check", "--listen", "127.0.0.1:0", "--config"])
                .arg(&config)
                .env("TRIAGE_TEST_EMPTY_SECRET", ""),
        );
        assert_eq!(out.code, 2, "{section}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(says), "{section}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

/// Whether the server has closed this connection (reading gives EOF or a reset rather than
/// waiting).
fn closed_by_server(mut conn: &TcpStream) -> bool {
    conn.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 512];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The repro, bounded: a server limited to 256 file descriptors (as a small
/// systemd unit might be) gets 400 connections that send half a header and stop. Before,
/// they filled its descriptors and `/healthz` stopped answering; now the oldest idle ones
/// make room, every one is closed by the header deadline, and /healthz answers at once.
/// Prints the figures (`-- --nocapture`).
#[test]
fn slow_connections_leave_healthz_answering() {
    const SLOW: usize = 400;
    const FD_LIMIT: u64 = 256;
    let dir = tempfile::tempdir().unwrap();
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    let config = write_config(
        dir.path(),
        &format!(
            "tokens: [{{name: t, token: {TOKEN}}}]\ntargets: {{healthy: {}}}\n\
             limits:\n  max_connections: 64\n  header_timeout: 3s\n  body_timeout: 3s\n",
            bundle.display()
        ),
    );
    let server = Server::start_with(&config, &dir.path().join("runs.sqlite3"), |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let limit = rustix::process::Rlimit {
                    current: Some(FD_LIMIT),
                    maximum: Some(FD_LIMIT),
                };
                rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
                    .map_err(std::io::Error::from)
            });
        }
    });
    let pid = server.child.id();
    let addr = server.base.trim_start_matches("http://").to_string();
    let fds_idle = open_fds(pid);

    let started = Instant::now();
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..SLOW {
        let Ok(mut conn) = TcpStream::connect(&addr) else {
            continue;
        };
        let _ = conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Never: ");
        slow.push(conn);
    }
    let opened_in = started.elapsed();
    // Let the server take every one of them in.
    std::thread::sleep(Duration::from_millis(300));
    let fds_flooded = open_fds(pid);

    let c = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut latencies = Vec::new();
    rt().block_on(async {
        for _ in 0..20 {
            let asked = Instant::now();
            let r = c.get(server.url("/healthz")).send().await;
            let r = r.unwrap_or_else(|e| panic!("/healthz under {SLOW} slow connections: {e}"));
            assert_eq!(r.status().as_u16(), 200);
            latencies.push(asked.elapsed());
        }
    });
    latencies.sort();
    let (median, worst) = (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );

    // A body that never finishes is answered 408 at the body deadline.
    let mut body_conn = TcpStream::connect(&addr).unwrap();
    body_conn
        .write_all(
            format!(
                "POST /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"runbook\""
            )
            .as_bytes(),
        )
        .unwrap();
    let asked = Instant::now();
    body_conn
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = [0u8; 64];
    let n = body_conn.read(&mut answer).unwrap_or(0);
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    let body_answered_in = asked.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");

    // Every slow connection is closed by the header deadline (3 s) if not before.
    let wait = Duration::from_secs(3) + Duration::from_millis(1500);
    std::thread::sleep(wait.saturating_sub(started.elapsed() - opened_in));
    let still_open = slow.iter().filter(|c| !closed_by_server(c)).count();
    let fds_after = open_fds(pid);
    println!(
        "{} slow connections opened in {opened_in:?} against a server limited to {FD_LIMIT} fds \
         and 64 connections: server fds {fds_idle} idle, {fds_flooded} flooded, {fds_after} after \
         the header deadline; /healthz median {median:?}, worst {worst:?} (20 fresh \
         connections); a stalled body answered 408 in {body_answered_in:?}",
        slow.len(),
    );
    assert_eq!(
        slow.len(),
        SLOW,
        "every slow connection was taken by the kernel"
    );
    assert!(
        worst < Duration::from_secs(2),
        "/healthz took {worst:?} under load"
    );
    assert!(
        fds_flooded < fds_idle + 64 + 16,
        "the server holds {fds_flooded} fds with 64 connections allowed (idle: {fds_idle})"
    );
    assert_eq!(
        still_open, 0,
        "slow connections outlived the header deadline"
    );
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(6)).contains(&body_answered_in),
        "{body_answered_in:?}"
    );
}

#[test]
fn a_signed_slack_request_is_taken_once() {
    let (port, _posted) = response_url_server();
    let setup = setup(DEFAULT_LIMITS, &format!("http://127.0.0.1:{port}"));
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    let form = slack_form(
        "service-unreachable healthy vip=10.0.0.1",
        &format!("http://127.0.0.1:{port}/commands/T1/1/x"),
    );
    let ts = super::serve::now().to_string();
    let sig = triage::serve::chat::slack::signature(SECRET, &ts, form.as_bytes());
    rt().block_on(async {
        let send = || {
            c.post(server.url("/slack/commands"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", &ts)
                .header("x-slack-signature", &sig)
                .body(form.clone())
                .send()
        };
        let first = send().await.unwrap();
        assert_eq!(first.status().as_u16(), 200);
        // The same bytes again, well within the 5-minute window: a replay.
        let again = send().await.unwrap();
        assert_eq!(again.status().as_u16(), 401);
        let err: Value = again.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("replay"), "{err}");
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");
    });
}

#[test]
fn every_caller_has_a_rate_by_default_and_forged_mattermost_users_share_the_tokens() {
    let (port, _posted) = response_url_server();
    let dir = tempfile::tempdir().unwrap();
    let bundle = root().join("examples/service-unreachable/interception-in-place");
    // One run slot and nine queued: a caller gets half, 5 a minute, by default.
    let config = write_config(
        dir.path(),
        &format!(
            "tokens: [{{name: tester, token: {TOKEN}}}]\n\
             mattermost:\n  token: {MATTERMOST_TOKEN}\n  runs_per_minute: 1\n  token_runs_per_minute: 2\n\
             \x20 response_url_origins: [\"http://127.0.0.1:{port}\"]\n\
             targets: {{healthy: {}}}\nlimits:\n  max_concurrent_runs: 1\n  max_queued_runs: 9\n",
            bundle.display()
        ),
    );
    let server = Server::start(&config, &dir.path().join("runs.sqlite3"));
    let c = client();
    let text = "service-unreachable healthy vip=10.0.0.1";
    let response_url = format!("http://127.0.0.1:{port}/hooks/1");
    rt().block_on(async {
        let run = json!({"runbook": "service-unreachable", "target": "healthy", "inputs": {"vip": "10.0.0.1"}});
        for n in 0..5 {
            let (status, body) = post_run(&c, &server, run.clone()).await;
            assert_eq!(status, 202, "run {n}: {body}");
        }
        let (status, body) = post_run(&c, &server, run.clone()).await;
        assert_eq!(status, 429, "{body}");
        assert!(
            body["error"].as_str().unwrap().starts_with("token:tester may start 5 run(s) a minute"),
            "{body}"
        );

        // Each user's own rate still holds…
        let (_, said) = mattermost(&c, &server, mattermost_form("U1", text, &response_url)).await;
        assert!(said.contains("Running"), "{said}");
        let (_, said) = mattermost(&c, &server, mattermost_form("U1", text, &response_url)).await;
        assert!(said.contains("mattermost:U1 may start 1 run(s) a minute"), "{said}");
        // …and a new user_id, which anyone with the token can claim, does not buy more
        // than the token's.
        let (_, said) = mattermost(&c, &server, mattermost_form("U2", text, &response_url)).await;
        assert!(said.contains("Running"), "{said}");
        let (_, said) = mattermost(&c, &server, mattermost_form("U3", text, &response_url)).await;
        assert!(
            said.contains("every mattermost user together may start 2 run(s) a minute"),
            "{said}"
        );
    });
}

/// A bundle whose nat table carries a rule comment that mentions the whole channel; the
/// finding quotes it as evidence.
fn bundle_with_mentions(dir: &Path) -> PathBuf {
    let from = root().join("examples/service-unreachable/interception-missing");
    let to = dir.join("recorded-on-192.0.2.10");
    std::fs::create_dir_all(&to).unwrap();
    for file in ["bundle.yaml", "config_dump.json"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    let yaml = std::fs::read_to_string(to.join("bundle.yaml")).unwrap();
    let yaml = yaml.replacen(
        "      -P POSTROUTING ACCEPT\n",
        "      -P POSTROUTING ACCEPT\n      -A OUTPUT -m comment --comment \"@channel @here @all @alice\" -j RETURN\n",
        1,
    );
    assert!(yaml.contains("@channel"));
    std::fs::write(to.join("bundle.yaml"), yaml).unwrap();
    to
}

#[test]
fn chat_posts_name_targets_never_their_address_and_ping_nobody() {
    let (port, posted) = response_url_server();
    let dir = tempfile::tempdir().unwrap();
    let mentions = bundle_with_mentions(dir.path());
    let gone = dir.path().join("deleted-bundle");
    std::fs::create_dir_all(&gone).unwrap();
    for file in ["bundle.yaml", "config_dump.json"] {
        std::fs::copy(mentions.join(file), gone.join(file)).unwrap();
    }
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(
        dir.path(),
        &format!(
            "tokens: [{{name: tester, token: {TOKEN}}}]\n\
             slack:\n  signing_secret: {SECRET}\n  response_url_origins: [\"http://127.0.0.1:{port}\"]\n\
             mattermost:\n  token: {MATTERMOST_TOKEN}\n  response_url_origins: [\"http://127.0.0.1:{port}\"]\n\
             targets:\n  edge: {}\n  gone: {}\n  web-1: ssh://ops@127.0.0.1:{closed}\n\
             limits:\n  run_deadline: 60s\n",
            mentions.display(),
            gone.display()
        ),
    );
    let server = Server::start(&config, &dir.path().join("runs.sqlite3"));
    std::fs::remove_dir_all(&gone).unwrap();
    let c = client();
    let response_url = format!("http://127.0.0.1:{port}/hooks/1");
    let addresses = [
        dir.path().display().to_string(),
        "recorded-on-192.0.2.10".to_string(),
        "vm-interception-missing".to_string(),
        "ops@127.0.0.1".to_string(),
        format!("127.0.0.1:{closed}"),
    ];
    let no_address = |what: &str, text: &str| {
        for address in &addresses {
            assert!(
                !text.contains(address.as_str()),
                "{what} shows {address}:\n{text}"
            );
        }
    };
    rt().block_on(async {
        let mut seen = Vec::new();
        for (target, chat) in [
            ("edge", "mattermost"),
            ("gone", "mattermost"),
            ("web-1", "slack"),
        ] {
            let text = format!("service-unreachable {target} vip=10.0.0.1");
            if chat == "mattermost" {
                let (status, said) =
                    mattermost(&c, &server, mattermost_form("U1", &text, &response_url)).await;
                assert_eq!(status, 200, "{said}");
            } else {
                let r = signed_slack(
                    &c,
                    &server,
                    "/slack/commands",
                    slack_form(&text, &response_url),
                )
                .await
                .unwrap();
                assert_eq!(r.status().as_u16(), 200);
            }
            let post: Value =
                serde_json::from_str(&posted.recv_timeout(Duration::from_secs(90)).unwrap())
                    .unwrap();
            let post = post["text"].as_str().unwrap().to_string();
            no_address(&format!("the {chat} post for {target}"), &post);
            seen.push((target, post));
        }
        let (_, edge) = &seen[0];
        assert!(edge.contains("Target: `edge`"), "{edge}");
        // The fact is there, its mentions made inert: a zero-width space after each `@`.
        for mention in ["@channel", "@here", "@all", "@alice"] {
            assert!(!edge.contains(mention), "{mention} in:\n{edge}");
            let inert = mention.replacen('@', "@\u{200B}", 1);
            assert!(edge.contains(&inert), "{inert} missing in:\n{edge}");
        }
        let (_, gone_post) = &seen[1];
        assert!(
            gone_post.contains("`gone` ended unreachable"),
            "{gone_post}"
        );

        // The history and the API show names too: the JSON report, its Markdown, the error.
        let (_, list) = get_json(&c, &server, "/v1/runs").await;
        for run in list["runs"].as_array().unwrap() {
            let id = run["id"].as_str().unwrap();
            let target = run["target"].as_str().unwrap();
            let (_, full) = get_json(&c, &server, &format!("/v1/runs/{id}")).await;
            no_address(&format!("GET /v1/runs/{id}"), &full.to_string());
            if let Some(report) = full.get("report").filter(|r| !r.is_null()) {
                assert_eq!(report["target"], target, "{report}");
            }
            let md = c
                .get(server.url(&format!("/v1/runs/{id}?format=markdown")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            no_address(&format!("the Markdown of run {id}"), &md);
        }
    });
}

/// `serve --check` lists every error of a config, not only the first: every key or value of
/// the wrong shape, each at its line and column; then, once the shape is right, every check
/// of what the file says.
#[test]
fn check_reports_every_error_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "tokens:\n  - name: a\n    token: 0123456789abcdef\n    colour: red\nlimits:\n  max_queued_runs: many\n  speed: 3\ntargets: {a: local}\n",
    );
    let (code, stderr) = check(&config);
    assert_eq!(code, 2, "{stderr}");
    let file = config.display().to_string();
    let lines: Vec<&str> = stderr.trim().lines().collect();
    let expected = [
        (4, 5, "tokens[0]: unknown field `colour`"),
        (
            6,
            20,
            "limits.max_queued_runs: invalid type: string \"many\"",
        ),
        (7, 3, "limits: unknown field `speed`"),
    ];
    assert_eq!(lines.len(), expected.len(), "{stderr}");
    for (line, (l, c, says)) in lines.iter().zip(expected) {
        assert!(
            line.contains(&format!("{file}:{l}:{c}: ")) && line.contains(says),
            "expected {l}:{c} {says}, got {line}\n{stderr}"
        );
    }

    let config = write_config(
        dir.path(),
        "tokens:\n  - {name: a, token: short}\n  - {name: b, token: 0123456789abcdef, targets: [nowhere]}\ntargets: {\"bad name\": local, b: local}\nlimits: {run_deadline: soon, runs_per_minute_per_caller: 0}\n",
    );
    let (code, stderr) = check(&config);
    assert_eq!(code, 2, "{stderr}");
    for says in [
        "token `a` is shorter than 16 characters",
        "target name `bad name`",
        "no target `nowhere` in `targets:`",
        "limits.run_deadline: `soon`",
        "limits.runs_per_minute_per_caller: 0 would refuse every run",
    ] {
        assert!(stderr.contains(says), "lacks {says}:\n{stderr}");
    }
    assert_eq!(stderr.trim().lines().count(), 5, "{stderr}");
}
