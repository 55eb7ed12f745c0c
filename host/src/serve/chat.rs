//! Chat slash commands, Slack's and Mattermost's: `/triage RUNBOOK TARGET [NAME=VALUE…]
//! [answer:STEP=VALUE…]`, `/triage list`, `/triage help`. Both send the same form and take the
//! same JSON answer; they differ in how a request proves where it comes from (Slack signs the
//! body, Mattermost sends the command's token) and in markup (Slack's mrkdwn, Mattermost's
//! Markdown). A command is answered at once (Slack gives it 3 seconds) and the result is
//! posted to its `response_url` when the run ends.

use super::App;
use super::api::{body_error, error};
use super::config::Scope;
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
    /// Mattermost's proof of origin (Slack's form has a deprecated one, not used).
    token: String,
    command: String,
    text: String,
    response_url: String,
    /// Slack's workspace (Mattermost's team); with `user_id`, whose run rate a run counts to.
    team_id: String,
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
    let (slack, body) = match checked_body(Chat::Slack, app.config.slack.as_ref(), body) {
        Ok(found) => found,
        Err(response) => return *response,
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
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    answer(
        &app,
        Chat::Slack,
        &slack.response_url_prefixes,
        &slack.scope,
        form,
    )
}

/// A Mattermost slash command (form-encoded, carrying the command's token).
#[utoipa::path(post, path = "/mattermost/commands",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Mattermost's slash-command form; `token` is the command's token; `text` as for Slack"),
    responses(
        (status = 200, description = "An ephemeral message; the result follows at response_url"),
        (status = 401, description = "Missing or wrong token", body = super::api::ApiError),
    ))]
pub async fn mattermost_command(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let checked = checked_body(Chat::Mattermost, app.config.mattermost.as_ref(), body)
        .and_then(|(config, body)| Ok((config, parse_form(&body)?)));
    let (mattermost, form) = match checked {
        Ok(found) => found,
        Err(response) => return *response,
    };
    if !super::auth::same_secret(&mattermost.token, &form.token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "the command's token is not this server's mattermost token",
        );
    }
    answer(
        &app,
        Chat::Mattermost,
        &mattermost.response_url_prefixes,
        &mattermost.scope,
        form,
    )
}

/// The chat's config and the request body, if this chat is configured and the body arrived
/// whole.
fn checked_body<C>(
    chat: Chat,
    config: Option<&C>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(&C, Bytes), Box<Response>> {
    let config = config.ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            format!("this server has no `{}:` configured", chat.name()),
        ))
    })?;
    let body = body.map_err(|rejection| Box::new(body_error(rejection)))?;
    Ok((config, body))
}

fn parse_form(body: &[u8]) -> Result<SlashCommand, Box<Response>> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("slash command form: {e}"),
        ))
    })
}

/// Which chat a command came from: how results are marked up, and what the history calls
/// the caller.
#[derive(Clone, Copy)]
enum Chat {
    Slack,
    Mattermost,
}

impl Chat {
    fn name(self) -> &'static str {
        match self {
            Chat::Slack => "slack",
            Chat::Mattermost => "mattermost",
        }
    }

    fn escape(self, s: &str) -> String {
        match self {
            Chat::Slack => crate::report::slack::escape(s),
            Chat::Mattermost => s.replace('`', "ˋ"),
        }
    }

    fn render(self, report: &crate::report::Report, run_id: &str) -> String {
        match self {
            Chat::Slack => crate::report::slack::render(report, run_id),
            Chat::Mattermost => format!(
                "{}\nRun `{run_id}`.\n",
                crate::report::markdown::render(report)
            ),
        }
    }
}

/// The command after its origin was checked: help, list, or a run whose result is posted to
/// the response_url when it ends.
fn answer(
    app: &App,
    chat: Chat,
    prefixes: &[String],
    scope: &Scope,
    form: SlashCommand,
) -> Response {
    let command = if form.command.is_empty() {
        "/triage"
    } else {
        form.command.as_str()
    };
    let request = match parse_command(&form.text) {
        Ok(Command::Help) => return ephemeral(help(command)),
        Ok(Command::List) => return ephemeral(list(app, chat, scope)),
        Ok(Command::Run(r)) => r,
        Err(e) => return ephemeral(format!("{e}\n{}", help(command))),
    };
    if !prefixes
        .iter()
        .any(|p| form.response_url.starts_with(p.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "response_url is not one this server posts to ({}.response_url_prefixes)",
                chat.name()
            ),
        );
    }
    let who = if form.user_name.is_empty() {
        &form.user_id
    } else {
        &form.user_name
    };
    // Each chat user has a rate of their own: the stable user id, not the changeable name.
    let rate_key = format!(
        "{}:{}:{}",
        chat.name(),
        form.team_id,
        if form.user_id.is_empty() {
            who
        } else {
            &form.user_id
        }
    );
    let (runbook, target) = (request.runbook.clone(), request.target.clone());
    match app
        .runs
        .submit(request, format!("{}:{who}", chat.name()), &rate_key, scope)
    {
        Ok((id, live)) => {
            let (http, url) = (app.http.clone(), form.response_url.clone());
            let run_id = id.clone();
            let said = format!(
                "Running `{}` on `{}` (run `{id}`); the result will be posted here.",
                chat.escape(&runbook),
                chat.escape(&target),
            );
            tokio::spawn(async move {
                let (last, report) = live.finished().await;
                let text = match (&report, &last) {
                    (Some(report), _) => chat.render(report, &run_id),
                    (None, RunEvent::Finished { status, error, .. }) => format!(
                        "`{}` on `{}` ended {}: {} (run `{}`)",
                        chat.escape(&runbook),
                        chat.escape(&target),
                        status.as_str(),
                        chat.escape(error.as_deref().unwrap_or("no report")),
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
            Ok(r) => eprintln!("warning: posting to the response_url: HTTP {}", r.status()),
            Err(e) => eprintln!("warning: posting to the response_url: {e}"),
        }
    }
}

fn help(command: &str) -> String {
    format!(
        "`{command} RUNBOOK TARGET [NAME=VALUE…] [answer:STEP=VALUE…]` runs a runbook; \
         `{command} list` shows the runbooks and targets."
    )
}

fn list(app: &App, chat: Chat, scope: &Scope) -> String {
    let mut out = String::from("*Runbooks:*\n");
    for l in app
        .runs
        .runbooks
        .values()
        .filter(|l| scope.allows_runbook(&l.runbook.id.to_string()))
    {
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
            chat.escape(&l.runbook.title)
        ));
    }
    out.push_str("*Targets:* ");
    let names: Vec<String> = app
        .runs
        .targets
        .keys()
        .filter(|n| scope.allows_target(n))
        .map(|n| format!("`{n}`"))
        .collect();
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
