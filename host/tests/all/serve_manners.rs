//! The server's manners toward callers and operators: content negotiation, errors that point
//! at documentation an installed binary has, every config error at once, chat posts without
//! empty blocks. Each test runs the real server on loopback.

use super::serve::{DEFAULT_LIMITS, Server, TOKEN, client, post_run, rt, setup, wait_status};
use serde_json::{Value, json};

#[test]
fn accept_text_markdown_gets_the_markdown_report() {
    let setup = setup(DEFAULT_LIMITS, "http://127.0.0.1:9");
    let server = Server::start(&setup.config, &setup.db);
    let c = client();
    rt().block_on(async {
        let (code, run) = post_run(
            &c,
            &server,
            json!({"runbook": "service-unreachable", "target": "broken", "inputs": {"vip": "10.0.0.1"}}),
        )
        .await;
        assert_eq!(code, 202, "{run}");
        let id = run["id"].as_str().unwrap().to_string();
        wait_status(&c, &server, &id, "failing").await;
        let get = |query: &'static str, accept: Option<String>| {
            let mut r = c
                .get(server.url(&format!("/v1/runs/{id}{query}")))
                .bearer_auth(TOKEN);
            if let Some(accept) = accept {
                r = r.header("accept", accept);
            }
            async move {
                let r = r.send().await.unwrap();
                let status = r.status().as_u16();
                let kind = r.headers()["content-type"].to_str().unwrap().to_string();
                let vary = r.headers().get("vary").map(|v| v.to_str().unwrap().to_string());
                (status, kind, vary, r.text().await.unwrap())
            }
        };
        let (_, _, _, markdown) = get("?format=markdown", None).await;
        assert!(markdown.starts_with("# service-unreachable:"), "{markdown}");

        for accept in [
            "text/markdown".to_string(),
            "text/markdown; charset=utf-8".to_string(),
            "application/json;q=0.2, text/markdown".to_string(),
            "text/*".to_string(),
            // A thousand media ranges: every one is read, and the last decides.
            format!("{}text/markdown", "x/y;q=0.9, ".repeat(1000)),
        ] {
            let (status, kind, vary, body) = get("", Some(accept.clone())).await;
            let accept = &accept[..accept.len().min(40)];
            assert_eq!(status, 200, "{accept}: {body}");
            assert!(kind.starts_with("text/markdown"), "{accept}: {kind}");
            assert_eq!(body, markdown, "{accept}");
            assert_eq!(vary.as_deref(), Some("accept"));
        }
        // JSON stays the default, and `?format=` wins over the header.
        for (query, accept) in [
            ("", None),
            ("", Some("application/json".to_string())),
            ("", Some("*/*".to_string())),
            ("", Some("text/markdown;q=0.1, application/json".to_string())),
            ("?format=json", Some("text/markdown".to_string())),
            // A thousand ranges of junk: JSON, the default.
            ("", Some(format!("{}\tx;q=zz, */*", "text/ markdown, ;;q=, /, ".repeat(1000)))),
            // Bytes that are not ASCII (obs-text, which HTTP lets through): JSON.
            ("", Some("text/markdown; x=\u{e9}".to_string())),
        ] {
            let shown = accept.as_deref().map(|a| &a[..a.len().min(40)]).map(str::to_string);
            let (status, kind, vary, body) = get(query, accept).await;
            assert_eq!(status, 200, "{query} {shown:?}: {body}");
            assert!(kind.starts_with("application/json"), "{query} {shown:?}: {kind}");
            let view: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(view["id"], id.as_str());
            assert_eq!(vary.as_deref(), Some("accept"));
        }
    });
}

/// Someone with only the installed binary is pointed at `triage serve --help`, never at
/// docs/serve.md of a source tree, and the config that help shows passes `serve --check`.
#[test]
fn errors_point_at_help_an_installed_binary_has() {
    let home = tempfile::tempdir().unwrap();
    let out = super::run(
        super::triage()
            .args(["serve", "--check"])
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config")),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("`triage serve --help`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("docs/"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);

    let help = super::run(super::triage().args(["serve", "--help"]));
    assert_eq!(help.code, 0, "{}", help.stderr);
    let example: String = help
        .stdout
        .split("A config to start from")
        .nth(1)
        .expect("serve --help shows a config")
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("  "))
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    assert!(example.contains("tokens:"), "{example}");
    let config = home.path().join("server.yaml");
    std::fs::write(&config, &example).unwrap();
    let check = super::run(
        super::triage()
            .args(["serve", "--check", "--config"])
            .arg(&config)
            .env("TRIAGE_OPS_BOT_TOKEN", "a-token-of-at-least-16-chars"),
    );
    assert_eq!(check.code, 0, "{example}\n{}", check.stderr);
}
