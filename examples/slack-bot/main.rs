//! A stand-in for Slack: sends `/triage TEXT` to a `triage serve` as Slack would (form body,
//! `X-Slack-Request-Timestamp`, `X-Slack-Signature`), prints the immediate answer, then
//! listens on a loopback response_url and prints what the server posts back.
//!
//! ```text
//! cargo run -q --example slack-bot -- --server http://127.0.0.1:7878 \
//!     --secret dev-signing-secret service-unreachable demo vip=10.0.0.1
//! ```
//!
//! The signing is written out here (not taken from triage) so it doubles as a check that the
//! server follows Slack's scheme: `v0=` + hex HMAC-SHA256 over `v0:TIMESTAMP:BODY`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Args {
    server: String,
    /// Where the bot takes the result: its response_url's host and port.
    listen: String,
    secret: String,
    wait: Duration,
    text: String,
}

fn parse_args() -> Result<Args, String> {
    let mut server = "http://127.0.0.1:7878".to_string();
    let mut listen = "127.0.0.1:7879".to_string();
    let mut secret = std::env::var("SLACK_SIGNING_SECRET").ok();
    let mut wait = Duration::from_secs(120);
    let mut words = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" => server = args.next().ok_or("--server needs a URL")?,
            "--listen" => listen = args.next().ok_or("--listen needs HOST:PORT")?,
            "--secret" => secret = Some(args.next().ok_or("--secret needs a value")?),
            "--wait" => {
                let secs: u64 = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--wait needs seconds")?;
                wait = Duration::from_secs(secs);
            }
            "-h" | "--help" => {
                return Err(
                    "usage: slack-bot [--server URL] [--listen HOST:PORT] [--secret S] [--wait SECS] TEXT…".into(),
                );
            }
            _ => words.push(a),
        }
    }
    Ok(Args {
        server: server.trim_end_matches('/').to_string(),
        listen,
        secret: secret.ok_or("give --secret or set SLACK_SIGNING_SECRET")?,
        wait,
        text: words.join(" "),
    })
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

/// Waits for one POST on the listener and returns its body.
fn receive_post(listener: &TcpListener, wait: Duration) -> Result<String, String> {
    let deadline = SystemTime::now() + wait;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if SystemTime::now() > deadline {
                    return Err(format!("nothing posted back within {} s", wait.as_secs()));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    conn.set_nonblocking(false).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().map_err(|_| "bad content-length")?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    String::from_utf8(body).map_err(|e| e.to_string())
}

async fn run(args: Args) -> Result<(), String> {
    // Slack would give a hooks.slack.com URL; this bot listens on loopback instead, on a
    // port the server's slack.response_url_origins lists (origins are compared exactly).
    let listener = TcpListener::bind(&args.listen).map_err(|e| format!("{}: {e}", args.listen))?;
    let response_url = format!(
        "http://127.0.0.1:{}/commands/T0/1/x",
        listener.local_addr().map_err(|e| e.to_string())?.port()
    );
    let body = format!(
        "team_id=T0&channel_id=C0&user_id=U0&user_name=example-bot&command=%2Ftriage&text={}&response_url={}",
        form_encode(&args.text),
        form_encode(&response_url)
    );
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs()
        .to_string();
    let reply = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?
        .post(format!("{}/slack/commands", args.server))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &timestamp)
        .header("x-slack-signature", sign(&args.secret, &timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{}: {e}", args.server))?;
    let status = reply.status();
    let reply: serde_json::Value = reply.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            reply["error"].as_str().unwrap_or("?")
        ));
    }
    let text = reply["text"].as_str().unwrap_or_default();
    println!(
        "answered at once ({}):\n{text}\n",
        reply["response_type"].as_str().unwrap_or("?")
    );
    if !text.starts_with("Running ") {
        return Ok(()); // help, list or a mistake: nothing will be posted
    }
    let wait = args.wait;
    let posted = tokio::task::spawn_blocking(move || receive_post(&listener, wait))
        .await
        .map_err(|e| e.to_string())??;
    let posted: serde_json::Value = serde_json::from_str(&posted).map_err(|e| e.to_string())?;
    println!(
        "posted to the response_url ({}):\n{}",
        posted["response_type"].as_str().unwrap_or("?"),
        posted["text"].as_str().unwrap_or_default()
    );
    Ok(())
}

fn main() {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(args))
    });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
