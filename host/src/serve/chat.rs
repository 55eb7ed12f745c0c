//! Chat slash commands, Slack's and Mattermost's: `/triage RUNBOOK TARGET [NAME=VALUE…]
//! [answer:STEP=VALUE…]`, `/triage list`, `/triage help`. Both send the same form and take the
//! same JSON answer; they differ in how a request proves where it comes from (Slack signs the
//! body, Mattermost sends the command's token) and in markup (Slack's mrkdwn, Mattermost's
//! Markdown). A command is answered at once (Slack gives it 3 seconds) and the result is
//! posted to its `response_url` when the run ends.

use super::App;
use super::api::{body_error, error};
use super::config::{Scope, SlackConfig};
use super::runs::{Origin, RunEvent, RunRequest};
use super::store::InterruptedRun;
use crate::report::{Report, StepStatus};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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

/// The headers Slack signs every request with (the OpenAPI document's view of them;
/// `signed_by_slack` checks them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct SlackSignature {
    /// Unix seconds; within 5 minutes
    #[param(rename = "X-Slack-Request-Timestamp")]
    timestamp: String,
    /// v0= + hex HMAC-SHA256 of v0:TIMESTAMP:BODY
    #[param(rename = "X-Slack-Signature")]
    signature: String,
}

/// A Slack slash command (form-encoded, signed by Slack).
#[utoipa::path(post, path = "/slack/commands",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Slack's slash-command form; `text` is `RUNBOOK TARGET [NAME=VALUE…]`, `list` or `help`"),
    params(SlackSignature),
    responses(
        (status = 200, description = "An ephemeral Slack message; the result follows at response_url"),
        (status = 401, description = "Missing, stale or wrong signature", body = super::api::ApiError),
    ))]
pub async fn slack_command(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let checked = signed_by_slack(&app, &headers, body)
        .and_then(|(slack, body)| Ok((slack, parse_form(&body)?)));
    let (slack, form) = match checked {
        Ok(found) => found,
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

/// The Slack config and the body, if Slack is configured and the body carries a good
/// signature from the last 5 minutes.
fn signed_by_slack<'a>(
    app: &'a App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(&'a SlackConfig, Bytes), Box<Response>> {
    let (slack, body) = checked_body(Chat::Slack, app.config.slack.as_ref(), body)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    super::auth::verify_slack(
        &slack.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    )
    .map_err(|e| Box::new(error(StatusCode::UNAUTHORIZED, e.to_string())))?;
    Ok((slack, body))
}

/// What Slack sends to the app's interactivity URL: a form with one field, `payload`, JSON.
#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

/// The parts of a `block_actions` payload that triage uses.
#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    response_url: String,
    #[serde(default)]
    user: InteractionUser,
    #[serde(default)]
    team: InteractionTeam,
    #[serde(default)]
    actions: Vec<InteractionAction>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct InteractionUser {
    id: String,
    username: String,
    name: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct InteractionTeam {
    id: String,
}

#[derive(Deserialize)]
#[serde(default)]
#[derive(Default)]
struct InteractionAction {
    action_id: String,
    value: String,
}

/// A click on an answer button under a result (Slack's interactivity request URL): runs the
/// runbook again with that answer added, and posts that result under the question.
#[utoipa::path(post, path = "/slack/interactions",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Slack's interaction form: `payload`, a block_actions JSON whose action value is a run request"),
    params(SlackSignature),
    responses(
        (status = 200, description = "Taken; the result (or why it was refused) follows at response_url"),
        (status = 400, description = "Not a block_actions payload from a triage answer button", body = super::api::ApiError),
        (status = 401, description = "Missing, stale or wrong signature", body = super::api::ApiError),
    ))]
pub async fn slack_interaction(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (slack, body) = match signed_by_slack(&app, &headers, body) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let bad = |what: String| error(StatusCode::BAD_REQUEST, what);
    let interaction: Interaction = match serde_urlencoded::from_bytes::<InteractionForm>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| serde_json::from_str(&f.payload).map_err(|e| e.to_string()))
    {
        Ok(i) => i,
        Err(e) => return bad(format!("interaction payload: {e}")),
    };
    if interaction.kind != "block_actions" {
        return bad(format!(
            "interaction type `{}`: only answer buttons (block_actions) are handled",
            interaction.kind
        ));
    }
    let Some(action) = interaction
        .actions
        .iter()
        .find(|a| a.action_id.starts_with(ANSWER_ACTION))
    else {
        return bad("no triage answer button in the interaction".into());
    };
    // The value is the request the button stands for; it goes through the same checks
    // (scope, inputs, answers, rate) as a typed command.
    let request: RunRequest = match serde_json::from_str(&action.value) {
        Ok(r) => r,
        Err(e) => return bad(format!("answer button value: {e}")),
    };
    let caller = ChatCaller {
        chat: Chat::Slack,
        command: "/triage".into(),
        team_id: interaction.team.id,
        user_id: interaction.user.id,
        user_name: if interaction.user.username.is_empty() {
            interaction.user.name
        } else {
            interaction.user.username
        },
        response_url: interaction.response_url,
    };
    let said = match start(
        &app,
        &caller,
        &slack.response_url_prefixes,
        &slack.scope,
        request,
    ) {
        Ok(said) => said,
        Err(StartError::Refused(e)) => format!(":warning: {e}"),
        Err(StartError::BadResponseUrl(e)) => return bad(e),
    };
    // A click is answered with an empty 200 (Slack shows nothing of the body), so what there
    // is to say goes to the response_url as a message only the clicker sees.
    let (http, url) = (app.http.clone(), caller.response_url);
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": said});
    app.posts
        .spawn(async move { post_result(&http, &url, &body).await });
    StatusCode::OK.into_response()
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

    /// A plain message for the response_url. `replace_original: false`: the result of an
    /// answer button is a new message under the question, which stays as it was asked.
    fn message(self, text: String) -> Value {
        json!({"response_type": "in_channel", "replace_original": false, "text": text})
    }

    /// The run's result, and the next question when the run left one unanswered: both chats
    /// get the command to type for each choice; Slack also gets a button for each.
    fn result(
        self,
        report: &Report,
        run_id: &str,
        question: Option<&Question>,
        request: &RunRequest,
        command: &str,
    ) -> Value {
        let mut text = match self {
            Chat::Slack => crate::report::slack::render(report, run_id),
            Chat::Mattermost => format!(
                "{}\nRun `{run_id}`.\n",
                crate::report::markdown::render(report)
            ),
        };
        let Some(question) = question else {
            return self.message(text);
        };
        let bold = match self {
            Chat::Slack => "*",
            Chat::Mattermost => "**",
        };
        let typed: Vec<String> = question
            .choices
            .iter()
            .map(|choice| {
                let again = answered(request, &question.step, choice);
                format!(
                    "`{}`",
                    self.escape(&command_text(command, &again).replace('`', "ˋ"))
                )
            })
            .collect();
        text.push_str(&format!(
            "\n{bold}Next question{bold} (step `{}`): {}\nAnswer with {}\n",
            self.escape(&question.step),
            self.escape(&question.prompt),
            typed.join(" or ")
        ));
        match self {
            Chat::Slack => slack_blocks(text, question, request),
            Chat::Mattermost => self.message(text),
        }
    }
}

/// The Slack message as blocks: the text in sections, then a button per choice whose value is
/// the request with that answer added. Where Slack's limits do not allow it (a value over
/// 2,000 characters, more than 50 blocks), the plain text, which names the commands, is sent.
fn slack_blocks(text: String, question: &Question, request: &RunRequest) -> Value {
    let mut blocks: Vec<Value> = section_texts(&text)
        .into_iter()
        .map(|chunk| json!({"type": "section", "text": {"type": "mrkdwn", "text": chunk}}))
        .collect();
    let buttons: Option<Vec<Value>> = question
        .choices
        .iter()
        .enumerate()
        .map(|(i, choice)| {
            let value = serde_json::to_string(&answered(request, &question.step, choice)).ok()?;
            let label: String = choice.chars().take(75).collect();
            (value.len() <= MAX_BUTTON_VALUE).then(|| {
                json!({
                    "type": "button",
                    "action_id": format!("{ANSWER_ACTION}:{i}"),
                    "text": {"type": "plain_text", "text": label},
                    "value": value,
                })
            })
        })
        .collect();
    let message = Chat::Slack.message(text);
    let Some(buttons) = buttons.filter(|b| !b.is_empty() && b.len() <= 25) else {
        return message;
    };
    blocks.push(json!({"type": "actions", "elements": buttons}));
    if blocks.len() > 50 {
        return message;
    }
    let mut message = message;
    message["blocks"] = Value::Array(blocks);
    message
}

/// Cuts text into pieces that fit a section block, at line ends where it can.
fn section_texts(text: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    for line in text.lines() {
        let mut line = line;
        loop {
            let current = pieces.last_mut().expect("never empty");
            let room = MAX_SECTION_CHARS.saturating_sub(current.chars().count() + 1);
            if line.chars().count() <= room {
                if !current.is_empty() {
                    current.push('\n');
                }
                current.push_str(line);
                break;
            }
            if current.is_empty() {
                // One line longer than a section: cut it at a character boundary.
                let cut = line
                    .char_indices()
                    .nth(MAX_SECTION_CHARS)
                    .map_or(line.len(), |(at, _)| at);
                current.push_str(&line[..cut]);
                line = &line[cut..];
            }
            pieces.push(String::new());
        }
    }
    pieces.retain(|p| !p.is_empty());
    pieces
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
    let caller = ChatCaller {
        chat,
        command: command.to_string(),
        team_id: form.team_id,
        user_id: form.user_id,
        user_name: form.user_name,
        response_url: form.response_url,
    };
    match start(app, &caller, prefixes, scope, request) {
        Ok(said) => ephemeral(said),
        Err(StartError::Refused(e)) => ephemeral(format!(":warning: {e}")),
        Err(StartError::BadResponseUrl(e)) => error(StatusCode::BAD_REQUEST, e),
    }
}

/// Who asked, in which chat, and where the result goes.
struct ChatCaller {
    chat: Chat,
    /// The slash command as the chat names it (`/triage`), for the typed answers it suggests.
    command: String,
    team_id: String,
    user_id: String,
    user_name: String,
    response_url: String,
}

impl ChatCaller {
    /// The name the history records.
    fn requested_by(&self) -> String {
        let who = if self.user_name.is_empty() {
            &self.user_id
        } else {
            &self.user_name
        };
        format!("{}:{who}", self.chat.name())
    }

    /// Whose run rate a run counts against: the stable user id, not the changeable name.
    fn rate_key(&self) -> String {
        let who = if self.user_id.is_empty() {
            &self.user_name
        } else {
            &self.user_id
        };
        format!("{}:{}:{who}", self.chat.name(), self.team_id)
    }
}

enum StartError {
    /// Told to the user in the chat (bad input, scope, rate, full queue).
    Refused(String),
    /// The response_url is not one this server posts to: a misconfigured or forged request.
    BadResponseUrl(String),
}

/// Submits the run and, when it ends, posts its result (and the next unanswered question,
/// if the runbook has one) to the caller's response_url. Says what to answer at once.
fn start(
    app: &App,
    caller: &ChatCaller,
    prefixes: &[String],
    scope: &Scope,
    request: RunRequest,
) -> Result<String, StartError> {
    let chat = caller.chat;
    if !prefixes
        .iter()
        .any(|p| caller.response_url.starts_with(p.as_str()))
    {
        return Err(StartError::BadResponseUrl(format!(
            "response_url is not one this server posts to ({}.response_url_prefixes)",
            chat.name()
        )));
    }
    let (id, live) = app
        .runs
        .submit(
            request.clone(),
            Origin {
                requested_by: caller.requested_by(),
                rate_key: caller.rate_key(),
                scope,
                notify: serde_json::to_string(&ChatNotice {
                    chat: chat.name().to_string(),
                    response_url: caller.response_url.clone(),
                })
                .ok(),
            },
        )
        .map_err(|e| StartError::Refused(e.to_string()))?;
    let said = format!(
        "Running `{}` on `{}` (run `{id}`); the result will be posted here.",
        chat.escape(&request.runbook),
        chat.escape(&request.target),
    );
    let (http, url) = (app.http.clone(), caller.response_url.clone());
    let runbook = app.runs.runbooks.get(&request.runbook).cloned();
    let command = caller.command.clone();
    app.posts.spawn(async move {
        let (last, report) = live.finished().await;
        let message = match (&report, &last) {
            (Some(report), _) => {
                let question = runbook
                    .as_deref()
                    .and_then(|l| next_question(&l.runbook, report));
                chat.result(report, &id, question.as_ref(), &request, &command)
            }
            (None, RunEvent::Finished { status, error, .. }) => chat.message(format!(
                "`{}` on `{}` ended {}: {} (run `{id}`)",
                chat.escape(&request.runbook),
                chat.escape(&request.target),
                status.as_str(),
                chat.escape(error.as_deref().unwrap_or("no report")),
            )),
            _ => return,
        };
        post_result(&http, &url, &message).await;
    });
    Ok(said)
}

/// Where a chat run's end is to be posted, as the history keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct ChatNotice {
    chat: String,
    response_url: String,
}

/// Tells the chats of runs that a crash cut short (found by the history at start) how they
/// ended, so nobody waits for a result that will not come. Slack's response URLs last 30
/// minutes, so after a long outage the post fails and is only logged.
pub fn report_interrupted(app: &App, runs: &[InterruptedRun]) {
    for run in runs {
        let Some(notice) = run
            .notify
            .as_deref()
            .and_then(|n| serde_json::from_str::<ChatNotice>(n).ok())
        else {
            continue;
        };
        let (chat, prefixes) = match notice.chat.as_str() {
            "slack" => (
                Chat::Slack,
                app.config.slack.as_ref().map(|s| &s.response_url_prefixes),
            ),
            "mattermost" => (
                Chat::Mattermost,
                app.config
                    .mattermost
                    .as_ref()
                    .map(|m| &m.response_url_prefixes),
            ),
            _ => continue,
        };
        // The config may have changed since: post only where it still allows.
        if !prefixes.is_some_and(|p| {
            p.iter()
                .any(|p| notice.response_url.starts_with(p.as_str()))
        }) {
            continue;
        }
        let message = chat.message(format!(
            "`{}` on `{}` ended interrupted: the server stopped while it ran; run it again (run `{}`)",
            chat.escape(&run.runbook),
            chat.escape(&run.target),
            run.id
        ));
        let (http, url) = (app.http.clone(), notice.response_url);
        app.posts
            .spawn(async move { post_result(&http, &url, &message).await });
    }
}

/// An ask step the run left unanswered: the question the result offers next.
#[derive(Debug, PartialEq, Eq)]
struct Question {
    step: String,
    prompt: String,
    choices: Vec<String>,
}

/// The first ask step (in the report's order) skipped for want of an answer. One question at
/// a time: each answer is a new run, so the person is walked through the runbook.
fn next_question(runbook: &crate::runbook::Runbook, report: &Report) -> Option<Question> {
    report
        .steps
        .iter()
        .filter(|s| {
            s.status == StepStatus::Skipped
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(crate::engine::UNANSWERED))
        })
        .find_map(|s| {
            let step = runbook.steps.iter().find(|st| st.id.as_str() == s.id)?;
            let ask = step.ask.as_ref()?;
            Some(Question {
                step: s.id.clone(),
                prompt: ask.prompt.clone(),
                choices: ask.choices.clone(),
            })
        })
}

/// The same request with one more answer: what a choice's button (or typed command) runs.
fn answered(request: &RunRequest, step: &str, choice: &str) -> RunRequest {
    let mut next = request.clone();
    next.answers.insert(step.to_string(), choice.to_string());
    next
}

/// The slash command that runs `request` again, for typing: inputs as NAME=VALUE, answers as
/// answer:STEP=VALUE.
fn command_text(command: &str, request: &RunRequest) -> String {
    let mut words = vec![
        command.to_string(),
        request.runbook.clone(),
        request.target.clone(),
    ];
    for (name, value) in &request.inputs {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        words.push(format!("{name}={value}"));
    }
    for (step, answer) in &request.answers {
        words.push(format!("answer:{step}={answer}"));
    }
    words.join(" ")
}

/// The chat posts not yet done (each waits for its run, then posts), so shutdown can let
/// them finish: a run interrupted by the shutdown is still reported in the chat.
#[derive(Debug)]
pub struct Posts {
    pending: watch::Sender<usize>,
}

impl Default for Posts {
    fn default() -> Self {
        Posts {
            pending: watch::Sender::new(0),
        }
    }
}

impl Posts {
    fn spawn(&self, post: impl Future<Output = ()> + Send + 'static) {
        self.pending.send_modify(|n| *n += 1);
        let pending = self.pending.clone();
        tokio::spawn(async move {
            post.await;
            pending.send_modify(|n| *n -= 1);
        });
    }

    /// Waits up to `limit` for every post to be done; how many were not.
    pub async fn settle(&self, limit: Duration) -> usize {
        let mut pending = self.pending.subscribe();
        let _ = tokio::time::timeout(limit, pending.wait_for(|n| *n == 0)).await;
        *self.pending.borrow()
    }
}

/// Slack's limit on a button's value.
const MAX_BUTTON_VALUE: usize = 2000;
/// Slack's limit on a section block's text, with room to spare.
const MAX_SECTION_CHARS: usize = 2900;
/// The action id of the answer buttons; `/slack/interactions` acts only on these.
const ANSWER_ACTION: &str = "triage-answer";

/// Posts the result; Slack's response URLs take 5 posts in 30 minutes, so a failure is
/// retried twice with a pause, then logged.
async fn post_result(http: &reqwest::Client, url: &str, body: &Value) {
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(attempt * 2)).await;
        }
        match http.post(url).json(body).send().await {
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

    #[test]
    fn sections_fit_slacks_limit_and_keep_every_character() {
        let long_line = "é".repeat(MAX_SECTION_CHARS + 10);
        let text = format!("first\n{}\n{long_line}\nlast", "x".repeat(2000));
        let pieces = section_texts(&text);
        assert!(
            pieces
                .iter()
                .all(|p| p.chars().count() <= MAX_SECTION_CHARS)
        );
        assert_eq!(pieces.concat().replace('\n', ""), text.replace('\n', ""));
        assert_eq!(section_texts("short"), ["short"]);
    }

    #[test]
    fn the_typed_answer_repeats_inputs_and_earlier_answers() {
        let Command::Run(request) =
            parse_command("service-unreachable demo vip=10.0.0.1 answer:a=1").unwrap()
        else {
            panic!("a run")
        };
        let again = answered(&request, "b", "no");
        assert_eq!(
            command_text("/td", &again),
            "/td service-unreachable demo vip=10.0.0.1 answer:a=1 answer:b=no"
        );
        // What the command line gives back parses to the same request.
        let typed = command_text("/td", &again);
        let Command::Run(parsed) = parse_command(typed.trim_start_matches("/td")).unwrap() else {
            panic!("a run")
        };
        assert_eq!(parsed, again);
    }

    fn report_with_an_open_question() -> (Report, Question) {
        use crate::report::{RunbookInfo, StepReport};
        let step = StepReport {
            id: "console".into(),
            title: "How the VM was created".into(),
            status: StepStatus::Skipped,
            severity: None,
            reason: Some(format!(
                "{} (pass --answer console=<yes|no>)",
                crate::engine::UNANSWERED
            )),
            duration_ms: 0,
            plugin: None,
            capabilities: vec![],
            logs: vec![],
            output: None,
        };
        let report = Report::new(
            RunbookInfo {
                id: "rb".into(),
                title: "A runbook".into(),
                source: None,
                origin: "built-in".into(),
            },
            "vm".into(),
            Default::default(),
            vec![step],
            vec![],
            std::time::SystemTime::UNIX_EPOCH,
            Duration::ZERO,
        );
        let question = Question {
            step: "console".into(),
            prompt: "Was the VM created in the Cloud Console?".into(),
            choices: vec!["yes".into(), "no".into()],
        };
        (report, question)
    }

    #[test]
    fn mattermost_gets_the_question_as_commands_to_type_and_no_buttons() {
        let (report, question) = report_with_an_open_question();
        let request = RunRequest {
            runbook: "rb".into(),
            target: "vm".into(),
            ..Default::default()
        };
        let message = Chat::Mattermost.result(&report, "r1", Some(&question), &request, "/td");
        let text = message["text"].as_str().unwrap();
        assert!(
            text.contains(
                "**Next question** (step `console`): Was the VM created in the Cloud Console?"
            ),
            "{text}"
        );
        assert!(
            text.contains("`/td rb vm answer:console=yes` or `/td rb vm answer:console=no`"),
            "{text}"
        );
        assert!(message.get("blocks").is_none());
    }

    #[test]
    fn slack_falls_back_to_text_when_a_button_would_not_fit() {
        let (report, question) = report_with_an_open_question();
        let mut request = RunRequest {
            runbook: "rb".into(),
            target: "vm".into(),
            ..Default::default()
        };
        let with_buttons = Chat::Slack.result(&report, "r1", Some(&question), &request, "/triage");
        assert_eq!(
            with_buttons["blocks"].as_array().unwrap().last().unwrap()["type"],
            "actions"
        );
        // An input so long the button's value would pass Slack's 2,000 characters.
        request
            .inputs
            .insert("note".into(), Value::String("x".repeat(MAX_BUTTON_VALUE)));
        let text_only = Chat::Slack.result(&report, "r1", Some(&question), &request, "/triage");
        assert!(text_only.get("blocks").is_none());
        assert!(
            text_only["text"]
                .as_str()
                .unwrap()
                .contains("answer:console=yes")
        );
    }
}
