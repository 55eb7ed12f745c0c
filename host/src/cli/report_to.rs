//! `triage run … --report-to URL --fleet-id ID`: each target's finished result is posted to
//! a triage server's `POST /v1/reports`, which adds up a fleet run on many machines
//! (`GET /v1/fleets/{id}`). The bearer token comes from `TRIAGE_REPORT_TOKEN` only: a flag
//! would show in `ps` and in shell history.
//!
//! A post that fails does not change the run: its report is printed as usual, each failed
//! post gets a line on stderr, and the exit code is 4 (see [`EXIT_NOT_POSTED`]).

use super::Failure;
use crate::report::Report;
use crate::report::fleet::TargetResult;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The environment variable that holds the bearer token.
pub const TOKEN_ENV: &str = "TRIAGE_REPORT_TOKEN";

/// The exit code of a run whose results did not all reach the server: distinct from the
/// run's own 0, 1 and 3 (which it takes precedence over), so a Job can retry just that.
pub const EXIT_NOT_POSTED: i32 = 4;

/// Tries per post; between them 1 s, then 2 s. Only what may pass on its own is retried:
/// no answer, 408, 429 and 5xx. A 4xx says the post itself is wrong, and is not.
const TRIES: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Reporter {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    token: String,
    fleet: String,
    runbook: String,
    failed: AtomicUsize,
}

impl Reporter {
    /// Checks everything before anything runs: the URL, the fleet id and the token.
    pub fn new(url: &str, fleet: &str, runbook: &str) -> Result<Reporter, Failure> {
        let base = reqwest::Url::parse(url)
            .map_err(|e| Failure::usage(format!("--report-to `{url}`: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || !base.has_host() {
            return Err(Failure::usage(format!(
                "--report-to `{url}`: give the server's http:// or https:// URL"
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Failure::usage(format!(
                "--report-to: no user or password in the URL; the token goes in {TOKEN_ENV}"
            )));
        }
        crate::serve::fleets::check_fleet_id(fleet)
            .map_err(|e| Failure::usage(format!("--fleet-id: {e}")))?;
        let token = std::env::var(TOKEN_ENV).unwrap_or_default();
        if token.trim().is_empty() {
            return Err(Failure::usage(format!(
                "--report-to needs the server's bearer token (with the `report` scope) in the environment variable {TOKEN_ENV}"
            )));
        }
        // The server's /v1/reports under whatever path the URL gives (a proxy's prefix).
        let mut endpoint = base.clone();
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let path = format!("{}/v1/reports", base.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Failure::run(format!("--report-to: {e}")))?;
        Ok(Reporter {
            client,
            endpoint,
            token: token.trim().to_string(),
            fleet: fleet.to_string(),
            runbook: runbook.to_string(),
            failed: AtomicUsize::new(0),
        })
    }

    /// Posts one target's result (with its report, if it has one); a failure is told on
    /// stderr and counted, never returned: the run goes on.
    pub async fn post(&self, position: Option<usize>, result: &TargetResult<Report>) {
        let body = serde_json::json!({
            "fleet": self.fleet,
            "runbook": self.runbook,
            "position": position,
            "result": {
                "target": result.target,
                "status": result.status,
                "duration_ms": result.duration_ms,
                "error": result.error,
                "report": result.report,
            },
        });
        let mut last = String::new();
        for attempt in 1..=TRIES {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 2))).await;
            }
            let sent = self
                .client
                .post(self.endpoint.clone())
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    let status = response.status();
                    let said = response
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                        .unwrap_or_default();
                    last = format!("{status}: {}", said.escape_debug());
                    let retried = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    if !retried {
                        break;
                    }
                }
                Err(e) => last = without_url(&e),
            }
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "error: the result of `{}` was not posted to {}: {last}",
            result.target.escape_debug(),
            self.endpoint
        );
    }

    /// How many results did not reach the server.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }

    /// The run's exit code once every post is done: [`EXIT_NOT_POSTED`] when any failed,
    /// after a line that says how many.
    pub fn exit_code(&self, run_code: i32) -> i32 {
        match self.failed() {
            0 => run_code,
            n => {
                eprintln!(
                    "error: {n} result(s) did not reach {} (fleet `{}`); exit {EXIT_NOT_POSTED}",
                    self.endpoint, self.fleet
                );
                EXIT_NOT_POSTED
            }
        }
    }
}

/// reqwest's error with its causes (its own text says only "error sending request").
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
