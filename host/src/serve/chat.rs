//! Chat slash commands: `/triage RUNBOOK TARGET [NAME=VALUE…] [answer:STEP=VALUE…]`,
//! `/triage list`, `/triage help`. Every platform sends the same form and takes the same JSON
//! answer; a platform differs only in how a request proves where it comes from, its markup,
//! and how a result is rendered in it ([`platform::Platform`]). A command is answered at once
//! (Slack gives it 3 seconds) and the result is posted to its `response_url` when the run
//! ends.
//!
//! - [`platform`]: the trait a chat platform implements
//! - [`slack`], [`mattermost`]: the platforms; [`registry`] lists them
//! - [`command`]: the command grammar
//! - [`question`]: the next unanswered question a result offers

pub mod command;
pub mod mattermost;
pub mod platform;
pub mod question;
pub mod registry;
pub mod slack;

use super::app::App;
use super::config::Scope;
use super::error::{body_error, error};
use super::runs::{Ended, Origin, RateBucket, RunRequest};
use super::store::InterruptedRun;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use command::Command;
use platform::{Platform, RunResult};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// The form fields of a slash command that triage uses (Slack sends more).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SlashCommand {
    /// Mattermost's proof of origin (Slack's form has a deprecated one, not used).
    pub token: String,
    pub command: String,
    pub text: String,
    pub response_url: String,
    /// Slack's workspace (Mattermost's team); with `user_id`, whose run rate a run counts to.
    pub team_id: String,
    pub user_id: String,
    pub user_name: String,
}

/// A slash command's form, or the 400 that says why it is not one.
pub fn parse_form(body: &[u8]) -> Result<SlashCommand, Box<Response>> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("slash command form: {e}"),
        ))
    })
}

/// An answer only the caller sees.
pub fn ephemeral(text: String) -> Response {
    Json(json!({"response_type": "ephemeral", "text": text})).into_response()
}

/// The body of a request from `platform`, once it is whole and shown to come from there.
pub fn verified_body(
    platform: &dyn Platform,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    let body = body.map_err(|rejection| Box::new(body_error(rejection)))?;
    platform
        .verify(headers, &body)
        .map_err(|e| Box::new(error(StatusCode::UNAUTHORIZED, e)))?;
    Ok(body)
}

/// A slash command from `platform`: checked, then help, list, or a run whose result is
/// posted to the response_url when it ends.
pub fn command(
    app: &App,
    platform: Arc<dyn Platform>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = match verified_body(&*platform, headers, body).and_then(|b| parse_form(&b)) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let slash = if form.command.is_empty() {
        "/triage"
    } else {
        form.command.as_str()
    };
    let scope = &platform.settings().scope;
    let request = match command::parse(&form.text) {
        Ok(Command::Help) => return platform.ephemeral(command::help(slash)),
        Ok(Command::List) => return platform.ephemeral(list(app, &*platform, scope)),
        Ok(Command::Run(r)) => r,
        Err(e) => return platform.ephemeral(format!("{e}\n{}", command::help(slash))),
    };
    let caller = ChatCaller {
        slash: slash.to_string(),
        team_id: form.team_id,
        user_id: form.user_id,
        user_name: form.user_name,
        response_url: form.response_url,
    };
    match start(app, platform.clone(), &caller, request) {
        Ok(said) => platform.ephemeral(said),
        Err(StartError::Refused(e)) => platform.ephemeral(format!(":warning: {e}")),
        Err(StartError::BadResponseUrl(e)) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// Who asked, and where the result goes.
pub struct ChatCaller {
    /// The slash command as the chat names it (`/triage`), for the typed answers it suggests.
    pub slash: String,
    pub team_id: String,
    pub user_id: String,
    pub user_name: String,
    pub response_url: String,
}

impl ChatCaller {
    /// The name the history records.
    fn requested_by(&self, platform: &dyn Platform) -> String {
        let who = if self.user_name.is_empty() {
            &self.user_id
        } else {
            &self.user_name
        };
        format!("{}:{who}", platform.name())
    }

    /// The run rates a run counts against: the user's (by the stable user id, not the
    /// changeable name), and the whole chat's where user ids can be forged.
    fn rates(&self, platform: &dyn Platform) -> Vec<RateBucket> {
        let who = if self.user_id.is_empty() {
            &self.user_name
        } else {
            &self.user_id
        };
        let mut rates = vec![RateBucket {
            key: format!("{}:{}:{who}", platform.name(), self.team_id),
            per_minute: platform.settings().scope.runs_per_minute,
            who: self.requested_by(platform),
        }];
        if let Some(per_minute) = platform.shared_rate() {
            rates.push(RateBucket {
                key: platform.name().to_string(),
                per_minute,
                who: format!("every {} user together", platform.name()),
            });
        }
        rates
    }
}

pub enum StartError {
    /// Told to the user in the chat (bad input, scope, rate, full queue).
    Refused(String),
    /// The response_url is not one this server posts to: a misconfigured or forged request.
    BadResponseUrl(String),
}

/// Submits the run and, when it ends, posts its result (and the next unanswered question,
/// if the runbook has one) to the caller's response_url. Says what to answer at once.
pub fn start(
    app: &App,
    platform: Arc<dyn Platform>,
    caller: &ChatCaller,
    request: RunRequest,
) -> Result<String, StartError> {
    let settings = platform.settings();
    if !settings.response_urls.allows(&caller.response_url) {
        return Err(StartError::BadResponseUrl(format!(
            "response_url is not one this server posts to ({}.response_url_origins)",
            platform.name()
        )));
    }
    let (id, _) = app
        .runs
        .submit(
            request.clone(),
            Origin {
                requested_by: caller.requested_by(&*platform),
                rates: caller.rates(&*platform),
                scope: &settings.scope,
                notify: serde_json::to_string(&ChatNotice {
                    chat: platform.name().to_string(),
                    response_url: caller.response_url.clone(),
                    slash: Some(caller.slash.clone()),
                    request: Some(request.clone()),
                })
                .ok(),
            },
        )
        .map_err(|e| StartError::Refused(e.to_string()))?;
    let said = format!(
        "Running `{}` on `{}` (run `{id}`); the result will be posted here.",
        platform.escape(&request.runbook),
        platform.escape(&request.target),
    );
    // The result is posted when the run ends, by the server that ran it ([`post_end`]).
    Ok(said)
}

/// Where a chat run's end is to be posted, as the history keeps it: with a shared history
/// the server that runs it may not be the one the chat asked.
#[derive(Debug, Serialize, Deserialize)]
struct ChatNotice {
    chat: String,
    response_url: String,
    /// The slash command as the chat named it, for the typed answers a result suggests.
    #[serde(default)]
    slash: Option<String>,
    /// What was asked, for the answer buttons (absent in rows of an earlier triage).
    #[serde(default)]
    request: Option<RunRequest>,
}

/// Posts a run's result (and the next unanswered question, if the runbook has one) to the
/// chat that started it. Called once per run, by the server that recorded its end.
pub fn post_end(app: &App, platforms: &[Arc<dyn Platform>], ended: Ended) {
    let Some(notice) = serde_json::from_str::<ChatNotice>(&ended.notify).ok() else {
        return;
    };
    let Some(poster) = platforms.iter().find(|p| p.name() == notice.chat).cloned() else {
        return;
    };
    // The config may have changed since the run was asked for: post only where it allows.
    if !poster.settings().response_urls.allows(&notice.response_url) {
        return;
    }
    let request = notice.request.unwrap_or_else(|| RunRequest {
        runbook: ended.runbook.clone(),
        target: ended.target.clone(),
        ..RunRequest::default()
    });
    let slash = notice.slash.unwrap_or_else(|| "/triage".to_string());
    let id = &ended.id;
    let message = match &ended.report {
        Some(report) => {
            let question = app
                .runs
                .runbooks
                .get(&ended.runbook)
                .and_then(|l| question::next(&l.runbook, report));
            poster.render(&RunResult {
                report: &question::for_chat(report),
                run_id: id,
                question: question.as_ref(),
                request: &request,
                slash: &slash,
            })
        }
        None => poster.message(format!(
            "`{}` on `{}` ended {}: {} (run `{id}`)",
            poster.escape(&request.runbook),
            poster.escape(&request.target),
            ended.status.as_str(),
            poster.escape(ended.error.as_deref().unwrap_or("no report")),
        )),
    };
    let (http, url) = (app.outbox.http().clone(), notice.response_url);
    app.outbox.spawn(async move {
        poster.post(&http, &url, &message).await;
    });
}

/// Tells the chats of runs that a crash cut short (found by the history at start) how they
/// ended, so nobody waits for a result that will not come. Slack's response URLs last 30
/// minutes, so after a long outage the post fails and is only logged.
pub fn report_interrupted(app: &App, platforms: &[Arc<dyn Platform>], runs: &[InterruptedRun]) {
    for run in runs {
        let Some(notice) = run
            .notify
            .as_deref()
            .and_then(|n| serde_json::from_str::<ChatNotice>(n).ok())
        else {
            continue;
        };
        let Some(platform) = platforms.iter().find(|p| p.name() == notice.chat) else {
            continue;
        };
        // The config may have changed since: post only where it still allows.
        if !platform
            .settings()
            .response_urls
            .allows(&notice.response_url)
        {
            continue;
        }
        let message = platform.message(format!(
            "`{}` on `{}` ended interrupted: the server stopped while it ran; run it again (run `{}`)",
            platform.escape(&run.runbook),
            platform.escape(&run.target),
            run.id
        ));
        let (platform, http) = (platform.clone(), app.outbox.http().clone());
        app.outbox.spawn(async move {
            platform.post(&http, &notice.response_url, &message).await;
        });
    }
}

fn list(app: &App, platform: &dyn Platform, scope: &Scope) -> String {
    let mut out = format!("{}\n", platform.bold("Runbooks:"));
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
            platform.escape(&l.runbook.title)
        ));
    }
    out.push_str(&platform.bold("Targets:"));
    out.push(' ');
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
