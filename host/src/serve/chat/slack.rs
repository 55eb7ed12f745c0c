//! Slack: slash commands at `/slack/commands`, answer buttons at `/slack/interactions`.
//! Every request is signed (`X-Slack-Signature`, an HMAC of the body under the app's signing
//! secret); results are mrkdwn, and a result with an open question gets a button per
//! choice.

use super::command;
use super::platform::{Platform, RunResult};
use super::question::Question;
use super::{ChatCaller, StartError};
use crate::serve::app::App;
use crate::serve::config::{ChatSettings, SlackConfig};
use crate::serve::error::{ApiError, error};
use crate::serve::runs::RunRequest;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use utoipa::OpenApi;

pub struct Slack {
    config: SlackConfig,
    seen: SeenSignatures,
    /// A history shared by several servers, which remembers the signatures every replica
    /// took: a request replayed to another replica is refused there too.
    shared_seen: Option<Arc<dyn crate::serve::store::Store>>,
}

impl Slack {
    pub fn new(config: SlackConfig) -> Slack {
        Slack {
            config,
            seen: SeenSignatures::default(),
            shared_seen: None,
        }
    }

    /// Remembers the signatures taken in `store` as well as in memory.
    pub fn share_seen(&mut self, store: Arc<dyn crate::serve::store::Store>) {
        self.shared_seen = Some(store);
    }
}

/// The signatures of the requests taken in the last [`MAX_SKEW_SECS`]: a signed request
/// stays valid that long, so whoever sees one (a proxy's log, a capture) could otherwise
/// send it again and start the run again. Only requests whose signature checked out are
/// kept, so without the signing secret nobody can fill it.
#[derive(Default)]
pub struct SeenSignatures {
    /// Signature → the request's timestamp.
    seen: Mutex<HashMap<String, i64>>,
}

impl SeenSignatures {
    /// Records a verified request's signature; false if it was taken before.
    pub fn first_time(&self, signature: &str, timestamp: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        // A request older than the window is refused as stale anyway: forget it.
        seen.retain(|_, ts| now - *ts <= MAX_SKEW_SECS);
        match seen.entry(signature.to_ascii_lowercase()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(timestamp);
                true
            }
        }
    }
}

impl Platform for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn settings(&self) -> &ChatSettings {
        &self.config.chat
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let (timestamp, signature) = (
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
        );
        verify(&self.config.signing_secret, timestamp, signature, body, now)
            .map_err(|e| e.to_string())?;
        // verify() parsed both, so neither is missing here.
        let ts = timestamp.and_then(|t| t.parse().ok()).unwrap_or(now);
        let signature = signature.unwrap_or_default().to_ascii_lowercase();
        let replay =
            "this signed request was already received (a replay); Slack signs each request once";
        if !self.seen.first_time(&signature, ts, now) {
            return Err(replay.into());
        }
        if let Some(store) = &self.shared_seen {
            // Kept until the request is stale anyway; a history that cannot answer refuses
            // the request rather than risk running a replay.
            match store.first_time(&format!("slack:{signature}"), ts + MAX_SKEW_SECS) {
                Ok(true) => {}
                Ok(false) => return Err(replay.into()),
                Err(e) => {
                    tracing::warn!("run history: checking a Slack signature: {e}");
                    return Err("the run history cannot be reached; try again".into());
                }
            }
        }
        Ok(())
    }

    fn escape(&self, text: &str) -> String {
        crate::report::slack::escape(text)
    }

    fn bold(&self, text: &str) -> String {
        format!("*{text}*")
    }

    fn render(&self, result: &RunResult) -> Value {
        let mut text = crate::report::slack::render(result.report, result.run_id);
        let Some(question) = result.question else {
            return self.message(text);
        };
        text.push_str(&self.question_text(question, result.request, result.slash));
        self.with_buttons(text, question, result.request)
    }

    fn routes(self: Arc<Self>) -> Router<Arc<App>> {
        Router::new()
            .route("/slack/commands", post(slack_command))
            .route("/slack/interactions", post(slack_interaction))
            .layer(Extension(self))
    }
}

/// The OpenAPI description of Slack's endpoints.
#[derive(OpenApi)]
#[openapi(paths(slack_command, slack_interaction))]
pub struct Doc;

/// How far a Slack request's timestamp may be from our clock (Slack's guidance: 5 minutes).
pub const MAX_SKEW_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    Missing(&'static str),
    Stale,
    BadSignature,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Missing(h) => write!(f, "missing or malformed {h} header"),
            AuthError::Stale => write!(
                f,
                "X-Slack-Request-Timestamp is more than {MAX_SKEW_SECS} s from the server's clock"
            ),
            AuthError::BadSignature => f.write_str("X-Slack-Signature does not match"),
        }
    }
}

/// `v0=` + hex HMAC-SHA256 of `v0:TIMESTAMP:BODY` under the signing secret.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::from("v0=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a Slack request: the timestamp within the window of `now`, then the signature
/// (compared in constant time by the MAC itself).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), AuthError> {
    let timestamp = timestamp.ok_or(AuthError::Missing("X-Slack-Request-Timestamp"))?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| AuthError::Missing("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(AuthError::Missing("X-Slack-Signature"))?;
    let hex = signature
        .strip_prefix("v0=")
        .ok_or(AuthError::Missing("X-Slack-Signature"))?;
    let given = decode_hex(hex).ok_or(AuthError::Missing("X-Slack-Signature"))?;
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(AuthError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| AuthError::BadSignature)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The headers Slack signs every request with (the OpenAPI document's view of them;
/// [`verify`] checks them).
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
#[utoipa::path(post, path = "/slack/commands", tag = "chat",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Slack's slash-command form; `text` is `RUNBOOK TARGET [NAME=VALUE…]`, `list` or `help`"),
    params(SlackSignature),
    responses(
        (status = 200, description = "An ephemeral Slack message; the result follows at response_url"),
        (status = 400, description = "Not a slash command form, or a response_url outside slack.response_url_origins", body = ApiError),
        (status = 401, description = "Missing, stale or wrong signature, or a request already taken (a replay)", body = ApiError),
        (status = 408, description = "The body did not arrive within limits.body_timeout", body = ApiError),
    ))]
async fn slack_command(
    State(app): State<Arc<App>>,
    Extension(slack): Extension<Arc<Slack>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    super::command(&app, slack, &headers, body)
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

#[derive(Default, Deserialize)]
#[serde(default)]
struct InteractionAction {
    action_id: String,
    value: String,
}

/// A click on an answer button under a result (Slack's interactivity request URL): runs the
/// runbook again with that answer added, and posts that result under the question.
#[utoipa::path(post, path = "/slack/interactions", tag = "chat",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Slack's interaction form: `payload`, a block_actions JSON whose action value is a run request"),
    params(SlackSignature),
    responses(
        (status = 200, description = "Taken; the result (or why it was refused) follows at response_url"),
        (status = 400, description = "Not a block_actions payload from a triage answer button, or a response_url outside slack.response_url_origins", body = ApiError),
        (status = 401, description = "Missing, stale or wrong signature, or a request already taken (a replay)", body = ApiError),
        (status = 408, description = "The body did not arrive within limits.body_timeout", body = ApiError),
    ))]
async fn slack_interaction(
    State(app): State<Arc<App>>,
    Extension(slack): Extension<Arc<Slack>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match super::verified_body(&*slack, &headers, body) {
        Ok(body) => body,
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
        slash: "/triage".into(),
        team_id: interaction.team.id,
        user_id: interaction.user.id,
        user_name: if interaction.user.username.is_empty() {
            interaction.user.name
        } else {
            interaction.user.username
        },
        response_url: interaction.response_url,
    };
    let said = match super::start(&app, slack.clone(), &caller, request) {
        Ok(said) => said,
        Err(StartError::Refused(e)) => format!(":warning: {e}"),
        Err(StartError::BadResponseUrl(e)) => return bad(e),
    };
    // A click is answered with an empty 200 (Slack shows nothing of the body), so what there
    // is to say goes to the response_url as a message only the clicker sees.
    let url = caller.response_url;
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": said});
    let http = app.outbox.http().clone();
    app.outbox
        .spawn(async move { slack.post(&http, &url, &body).await });
    StatusCode::OK.into_response()
}

/// Slack's limit on a button's value.
const MAX_BUTTON_VALUE: usize = 2000;
/// Slack's limit on a section block's text, with room to spare.
const MAX_SECTION_CHARS: usize = 2900;
/// The action id of the answer buttons; `/slack/interactions` acts only on these.
const ANSWER_ACTION: &str = "triage-answer";

impl Slack {
    /// The message as blocks: the text in sections, then a button per choice whose value is
    /// the request with that answer added. Where Slack's limits do not allow it (a value over
    /// 2,000 characters, more than 50 blocks), the plain text, which names the commands, is
    /// sent.
    fn with_buttons(&self, text: String, question: &Question, request: &RunRequest) -> Value {
        let mut blocks: Vec<Value> = section_texts(&text)
            .into_iter()
            .map(|chunk| json!({"type": "section", "text": {"type": "mrkdwn", "text": chunk}}))
            .collect();
        let buttons: Option<Vec<Value>> = question
            .choices
            .iter()
            .enumerate()
            .map(|(i, choice)| {
                let value =
                    serde_json::to_string(&command::answered(request, &question.step, choice))
                        .ok()?;
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
        let message = self.message(text);
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

#[cfg(test)]
mod tests {
    use super::super::question::tests::report_with_an_open_question;
    use super::*;
    use crate::serve::config::{ResponseUrls, Scope};

    pub fn slack() -> Slack {
        Slack::new(SlackConfig {
            signing_secret: "s3cret".into(),
            chat: ChatSettings {
                scope: Scope::default(),
                response_urls: ResponseUrls::new(&["https://hooks.slack.com"]).unwrap(),
            },
        })
    }

    #[test]
    fn signatures_check_body_time_and_secret() {
        let body = b"command=%2Ftriage&text=list";
        let sig = signature("s3cret", "1700000000", body);
        let ok = verify(
            "s3cret",
            Some("1700000000"),
            Some(&sig),
            body,
            1_700_000_100,
        );
        assert_eq!(ok, Ok(()));
        let tampered = verify(
            "s3cret",
            Some("1700000000"),
            Some(&sig),
            b"x",
            1_700_000_100,
        );
        assert_eq!(tampered, Err(AuthError::BadSignature));
        let other_secret = verify("other", Some("1700000000"), Some(&sig), body, 1_700_000_100);
        assert_eq!(other_secret, Err(AuthError::BadSignature));
        let stale = verify(
            "s3cret",
            Some("1700000000"),
            Some(&sig),
            body,
            1_700_000_301,
        );
        assert_eq!(stale, Err(AuthError::Stale));
        let missing = verify("s3cret", None, Some(&sig), body, 1_700_000_000);
        assert!(matches!(missing, Err(AuthError::Missing(_))));
        let garbled = verify(
            "s3cret",
            Some("1700000000"),
            Some("v0=zz"),
            body,
            1_700_000_000,
        );
        assert!(matches!(garbled, Err(AuthError::Missing(_))));
    }

    #[test]
    fn a_signature_is_taken_once_within_the_window() {
        let seen = SeenSignatures::default();
        assert!(seen.first_time("v0=ab", 1000, 1000));
        assert!(!seen.first_time("v0=ab", 1000, 1100));
        assert!(
            !seen.first_time("v0=AB", 1000, 1100),
            "hex case is the same signature"
        );
        assert!(seen.first_time("v0=cd", 1000, 1100));
        // Past the window both are forgotten (the timestamp check refuses them by then).
        assert!(seen.first_time("v0=ab", 1400, 1400));
        assert_eq!(seen.seen.lock().unwrap().len(), 1);
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
    fn slack_falls_back_to_text_when_a_button_would_not_fit() {
        let (report, question) = report_with_an_open_question();
        let mut request = RunRequest {
            runbook: "rb".into(),
            target: "vm".into(),
            ..Default::default()
        };
        let render = |request: &RunRequest| {
            slack().render(&RunResult {
                report: &report,
                run_id: "r1",
                question: Some(&question),
                request,
                slash: "/triage",
            })
        };
        let with_buttons = render(&request);
        assert_eq!(
            with_buttons["blocks"].as_array().unwrap().last().unwrap()["type"],
            "actions"
        );
        // An input so long the button's value would pass Slack's 2,000 characters.
        request
            .inputs
            .insert("note".into(), Value::String("x".repeat(MAX_BUTTON_VALUE)));
        let text_only = render(&request);
        assert!(text_only.get("blocks").is_none());
        assert!(
            text_only["text"]
                .as_str()
                .unwrap()
                .contains("answer:console=yes")
        );
    }
}
