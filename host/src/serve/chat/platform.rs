//! What a chat platform is to the server: one type behind [`Platform`]. Everything else
//! (the command grammar, runs, questions, the outbox) is shared.

use super::command;
use super::question::Question;
use crate::report::Report;
use crate::serve::app::App;
use crate::serve::config::ChatSettings;
use crate::serve::outbox;
use crate::serve::runs::RunRequest;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;

/// A chat platform: how its requests prove where they come from, its markup, how a run's
/// result is rendered in it, and the endpoints it calls. A platform sends the slash-command
/// form Slack defined (`text`, `response_url`, `user_id`, …) and takes the same JSON
/// answers; see `chat::command` for what is shared.
pub trait Platform: Send + Sync + 'static {
    /// Its config section, and how the history names its callers (`slack:alice`).
    fn name(&self) -> &'static str;

    /// What its callers may run, and where its results may be posted.
    fn settings(&self) -> &ChatSettings;

    /// Checks that a request comes from the platform (a signature, a token); the error is
    /// the one line a 401 answers.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), String>;

    /// Text from runbooks, targets and callers, made inert in this platform's markup.
    fn escape(&self, text: &str) -> String;

    /// A whole message made safe to post: text that would notify people where it stands
    /// (Mattermost's `@channel`) made inert. Applied to every message, since facts and
    /// inputs reach them through renderers that do not know the platform.
    fn defuse(&self, text: &str) -> String {
        text.to_string()
    }

    /// The run rate every user of this platform shares, when its user ids cannot be trusted
    /// (anyone with Mattermost's command token can claim any `user_id`): `Some(None)` for
    /// the per-caller default, `Some(Some(n))` for a configured one.
    fn shared_rate(&self) -> Option<Option<u32>> {
        None
    }

    /// Bold, in this platform's markup.
    fn bold(&self, text: &str) -> String;

    /// A run's result as the message to post: the report rendered for this platform (by a
    /// renderer in `report/`), and the next question when the run left one.
    fn render(&self, result: &RunResult) -> Value;

    /// The endpoints this platform calls, each answered with this platform.
    fn routes(self: Arc<Self>) -> Router<Arc<App>>;

    /// A plain message for the response URL. `replace_original: false`: the result of an
    /// answer button is a new message under the question, which stays as it was asked.
    fn message(&self, text: String) -> Value {
        json!({"response_type": "in_channel", "replace_original": false, "text": self.defuse(&text)})
    }

    /// An answer only the caller sees.
    fn ephemeral(&self, text: String) -> Response {
        super::ephemeral(self.defuse(&text))
    }

    /// Posts a message to a response URL (one the settings allow).
    fn post<'a>(
        &'a self,
        http: &'a reqwest::Client,
        response_url: &'a str,
        message: &'a Value,
    ) -> BoxFuture<'a, ()> {
        Box::pin(outbox::post(http, response_url, message))
    }

    /// The next question as text: its prompt, and for each choice the command to type.
    fn question_text(&self, question: &Question, request: &RunRequest, slash: &str) -> String {
        let typed: Vec<String> = question
            .choices
            .iter()
            .map(|choice| {
                let again = command::answered(request, &question.step, choice);
                format!(
                    "`{}`",
                    self.escape(&command::text(slash, &again).replace('`', "ˋ"))
                )
            })
            .collect();
        format!(
            "\n{} (step `{}`): {}\nAnswer with {}\n",
            self.bold("Next question"),
            self.escape(&question.step),
            self.escape(&question.prompt),
            typed.join(" or ")
        )
    }
}

/// A run that ended with a report, as a platform renders it.
pub struct RunResult<'a> {
    pub report: &'a Report,
    pub run_id: &'a str,
    /// The first ask step the run left unanswered.
    pub question: Option<&'a Question>,
    /// What was run, for the commands (and buttons) that answer the question.
    pub request: &'a RunRequest,
    /// The slash command as the chat names it (`/triage`).
    pub slash: &'a str,
}
