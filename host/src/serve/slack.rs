//! The Slack slash command: `/triage RUNBOOK TARGET [NAME=VALUE…] [answer:STEP=VALUE…]`,
//! `/triage list`, `/triage help`. The request is checked against Slack's signature, answered
//! at once (Slack gives a command 3 seconds), and the result is posted to the command's
//! `response_url` as mrkdwn when the run ends.

use super::App;
use super::api::{body_error, error};
use super::runs::{RunEvent, RunRequest};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The form fields of a slash command that triage uses (Slack sends more).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SlashCommand {
    command: String,
    text: String,
    response_url: String,
    user_id: String,
    user_name: String,
}

/// What the command text asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    List,
    Run(RunRequest),
}

pub fn parse_command(text: &str) -> Result<Command, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [] | ["help"] => return Ok(Command::Help),
        ["list"] => return Ok(Command::List),
        [_] => return Err("give a runbook and a target: `RUNBOOK TARGET [NAME=VALUE…]`".into()),
        _ => {}
    }
    let mut request = RunRequest {
        runbook: words[0].to_string(),
        target: words[1].to_string(),
        ..Default::default()
    };
    for word in &words[2..] {
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}`: write inputs as NAME=VALUE"))?;
        match name.strip_prefix("answer:") {
            Some(step) => {
                request.answers.insert(step.to_string(), value.to_string());
            }
            None => {
                request
                    .inputs
                    .insert(name.to_string(), Value::String(value.to_string()));
            }
        }
    }
    Ok(Command::Run(request))
}

fn ephemeral(text: String) -> Response {
    Json(json!({"response_type": "ephemeral", "text": text})).into_response()
}

/// A Slack slash command (form-encoded, signed by Slack).
#[utoipa::path(post, path = "/slack/commands",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Slack's slash-command form; `text` is `RUNBOOK TARGET [NAME=VALUE…]`, `list` or `help`"),
    params(
        ("X-Slack-Request-Timestamp" = String, Header, description = "Unix seconds; within 5 minutes"),
        ("X-Slack-Signature" = String, Header, description = "v0= + hex HMAC-SHA256 of v0:TIMESTAMP:BODY"),
    ),
    responses(
        (status = 200, description = "An ephemeral Slack message; the result follows at response_url"),
        (status = 401, description = "Missing, stale or wrong signature", body = super::api::ApiError),
    ))]
pub async fn slack_command(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(slack) = &app.config.slack else {
        return error(
            StatusCode::NOT_FOUND,
            "this server has no `slack:` configured",
        );
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_error(rejection),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    if let Err(e) = super::auth::verify_slack(
        &slack.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    ) {
        return error(StatusCode::UNAUTHORIZED, e.to_string());
    }
    let form: SlashCommand = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("slash command form: {e}")),
    };
    let command = if form.command.is_empty() {
        "/triage"
    } else {
        form.command.as_str()
    };
    let request = match parse_command(&form.text) {
        Ok(Command::Help) => return ephemeral(help(command)),
        Ok(Command::List) => return ephemeral(list(&app)),
        Ok(Command::Run(r)) => r,
        Err(e) => return ephemeral(format!("{e}\n{}", help(command))),
    };
    if !slack
        .response_url_prefixes
        .iter()
        .any(|p| form.response_url.starts_with(p.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "response_url is not one this server posts to (slack.response_url_prefixes)",
        );
    }
    let who = if form.user_name.is_empty() {
        &form.user_id
    } else {
        &form.user_name
    };
    let (runbook, target) = (request.runbook.clone(), request.target.clone());
    match app.runs.submit(request, format!("slack:{who}")) {
        Ok((id, live)) => {
            let (http, url) = (app.http.clone(), form.response_url.clone());
            let run_id = id.clone();
            let said = format!(
                "Running `{}` on `{}` (run `{id}`); the result will be posted here.",
                crate::report::slack::escape(&runbook),
                crate::report::slack::escape(&target),
            );
            tokio::spawn(async move {
                let (last, report) = live.finished().await;
                let text = match (&report, &last) {
                    (Some(report), _) => crate::report::slack::render(report, &run_id),
                    (None, RunEvent::Finished { status, error, .. }) => format!(
                        ":grey_question: *{}* on `{}` ended {}: {} (run `{}`)",
                        crate::report::slack::escape(&runbook),
                        crate::report::slack::escape(&target),
                        status.as_str(),
                        crate::report::slack::escape(error.as_deref().unwrap_or("no report")),
                        run_id
                    ),
                    _ => return,
                };
                post_result(&http, &url, &text).await;
            });
            ephemeral(said)
        }
        Err(e) => ephemeral(format!(":warning: {e}")),
    }
}

/// Posts the result; Slack's response URLs take 5 posts in 30 minutes, so a failure is
/// retried twice with a pause, then logged.
async fn post_result(http: &reqwest::Client, url: &str, text: &str) {
    let body = json!({"response_type": "in_channel", "text": text});
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(attempt * 2)).await;
        }
        match http.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => eprintln!(
                "warning: posting to the Slack response_url: HTTP {}",
                r.status()
            ),
            Err(e) => eprintln!("warning: posting to the Slack response_url: {e}"),
        }
    }
}

fn help(command: &str) -> String {
    format!(
        "`{command} RUNBOOK TARGET [NAME=VALUE…] [answer:STEP=VALUE…]` runs a runbook; \
         `{command} list` shows the runbooks and targets."
    )
}

fn list(app: &App) -> String {
    let mut out = String::from("*Runbooks:*\n");
    for l in app.runs.runbooks.values() {
        let inputs: Vec<String> = l
            .runbook
            .inputs
            .iter()
            .map(|(n, s)| {
                if s.required {
                    format!("{n}=…")
                } else {
                    format!("[{n}=…]")
                }
            })
            .collect();
        out.push_str(&format!(
            "• `{}` {} — {}\n",
            l.runbook.id,
            inputs.join(" "),
            crate::report::slack::escape(&l.runbook.title)
        ));
    }
    out.push_str("*Targets:* ");
    let names: Vec<String> = app.runs.targets.keys().map(|n| format!("`{n}`")).collect();
    out.push_str(&names.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_text_is_runbook_target_inputs_and_answers() {
        assert_eq!(parse_command("").unwrap(), Command::Help);
        assert_eq!(parse_command(" list ").unwrap(), Command::List);
        let Command::Run(r) =
            parse_command("service-unreachable demo vip=10.0.0.1 answer:where=vm").unwrap()
        else {
            panic!("a run")
        };
        assert_eq!(r.runbook, "service-unreachable");
        assert_eq!(r.target, "demo");
        assert_eq!(r.inputs["vip"], "10.0.0.1");
        assert_eq!(r.answers["where"], "vm");
        assert!(
            parse_command("rb")
                .unwrap_err()
                .contains("runbook and a target")
        );
        assert!(
            parse_command("rb t novalue")
                .unwrap_err()
                .contains("NAME=VALUE")
        );
    }
}
