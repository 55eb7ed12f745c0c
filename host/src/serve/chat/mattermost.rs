//! Mattermost: slash commands at `/mattermost/commands`. A request proves its origin only by
//! carrying the command's token (no signature), and results are Markdown: the report as
//! `triage run --format markdown` prints it.

use super::platform::{Platform, RunResult};
use crate::serve::app::App;
use crate::serve::config::{ChatSettings, MattermostConfig};
use crate::serve::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::Value;
use std::sync::Arc;
use utoipa::OpenApi;

pub struct Mattermost {
    config: MattermostConfig,
}

impl Mattermost {
    pub fn new(config: MattermostConfig) -> Mattermost {
        Mattermost { config }
    }
}

impl Platform for Mattermost {
    fn name(&self) -> &'static str {
        "mattermost"
    }

    fn settings(&self) -> &ChatSettings {
        &self.config.chat
    }

    fn verify(&self, _headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        // The token is a field of the form; a body that is no form carries no token.
        let token = super::parse_form(body)
            .map(|form| form.token)
            .unwrap_or_default();
        if crate::serve::auth::same_secret(&self.config.token, &token) {
            Ok(())
        } else {
            Err("the command's token is not this server's mattermost token".into())
        }
    }

    fn escape(&self, text: &str) -> String {
        text.replace('`', "ˋ")
    }

    fn defuse(&self, text: &str) -> String {
        defuse_mentions(text)
    }

    fn shared_rate(&self) -> Option<Option<u32>> {
        Some(self.config.token_runs_per_minute)
    }

    fn bold(&self, text: &str) -> String {
        format!("**{text}**")
    }

    fn render(&self, result: &RunResult) -> Value {
        let mut text = format!(
            "{}\nRun `{}`.\n",
            crate::report::Render::render(
                result.report,
                crate::report::Format::Markdown,
                &Default::default()
            ),
            result.run_id
        );
        if let Some(question) = result.question {
            text.push_str(&self.question_text(question, result.request, result.slash));
        }
        self.message(text)
    }

    fn routes(self: Arc<Self>) -> Router<Arc<App>> {
        Router::new()
            .route("/mattermost/commands", post(mattermost_command))
            .layer(Extension(self))
    }
}

/// Mattermost notifies whoever a post names with `@`: `@channel`, `@here` and `@all` ping
/// everybody, `@alice` pings Alice, wherever they stand in the text (a fact from a target, an
/// input a user typed). A zero-width space after each `@` that starts a name leaves the text
/// readable and names nobody: Mattermost reads a mention only as `@` followed directly by
/// letters, digits, `.`, `-` or `_`.
pub fn defuse_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '@'
            && chars
                .peek()
                .is_some_and(|next| next.is_alphanumeric() || "._-".contains(*next))
        {
            out.push('\u{200B}');
        }
    }
    out
}

/// The OpenAPI description of Mattermost's endpoint.
#[derive(OpenApi)]
#[openapi(paths(mattermost_command))]
pub struct Doc;

/// A Mattermost slash command (form-encoded, carrying the command's token).
#[utoipa::path(post, path = "/mattermost/commands", tag = "chat",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Mattermost's slash-command form; `token` is the command's token; `text` as for Slack"),
    responses(
        (status = 200, description = "An ephemeral message; the result follows at response_url"),
        (status = 400, description = "Not a slash command form, or a response_url outside mattermost.response_url_origins", body = ApiError),
        (status = 401, description = "Missing or wrong token", body = ApiError),
        (status = 408, description = "The body did not arrive within limits.body_timeout", body = ApiError),
    ))]
async fn mattermost_command(
    State(app): State<Arc<App>>,
    Extension(mattermost): Extension<Arc<Mattermost>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    super::command(&app, mattermost, &headers, body)
}

#[cfg(test)]
mod tests {
    use super::super::question::tests::report_with_an_open_question;
    use super::*;
    use crate::serve::config::{ResponseUrls, Scope};
    use crate::serve::runs::RunRequest;

    fn mattermost() -> Mattermost {
        Mattermost::new(MattermostConfig {
            token: "command-token".into(),
            chat: ChatSettings {
                scope: Scope::default(),
                response_urls: ResponseUrls::new(&["https://chat.example.com"]).unwrap(),
            },
            token_runs_per_minute: None,
        })
    }

    #[test]
    fn mentions_ping_nobody() {
        let defused = defuse_mentions("pod=@channel @here,@all (@alice.b) ops@example.com @ 1");
        assert!(!defused.contains("@channel") && !defused.contains("@here"));
        assert!(!defused.contains("@all") && !defused.contains("@alice"));
        assert_eq!(
            defused.replace('\u{200B}', ""),
            "pod=@channel @here,@all (@alice.b) ops@example.com @ 1"
        );
    }

    #[test]
    fn mattermost_gets_the_question_as_commands_to_type_and_no_buttons() {
        let (report, question) = report_with_an_open_question();
        let request = RunRequest {
            runbook: "rb".into(),
            target: "vm".into(),
            ..Default::default()
        };
        let message = mattermost().render(&RunResult {
            report: &report,
            run_id: "r1",
            question: Some(&question),
            request: &request,
            slash: "/td",
        });
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
}
