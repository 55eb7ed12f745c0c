//! The server's config file: who may call it, which targets a bot may name, and the limits.
//!
//! ```yaml
//! listen: 127.0.0.1:7878
//! tokens:                      # bearer tokens for /v1 (each a name, for the run history)
//!   - name: ops-bot
//!     token_env: TRIAGE_OPS_BOT_TOKEN
//!     targets: [demo]          # optional: what this token may run, on what
//!     runbooks: [service-unreachable]
//! slack:
//!   signing_secret_env: SLACK_SIGNING_SECRET
//! mattermost:
//!   token_env: MATTERMOST_COMMAND_TOKEN
//!   response_url_prefixes: ["https://chat.example.com/hooks/commands/"]
//! targets:                     # the only targets a caller may name
//!   demo: examples/service-unreachable/interception-missing   # a bundle, relative to this file
//!   web-1: ssh://ops@web-1.internal
//! runbooks: [service-unreachable, inbound-interception]        # optional allowlist
//! limits:
//!   max_concurrent_runs: 4
//!   max_queued_runs: 64
//!   run_deadline: 5m
//!   max_body_bytes: 65536
//!   shutdown_grace: 30s
//!   runs_per_minute_per_caller: 30  # optional; a token or chat may set its own runs_per_minute
//! tls:                         # optional: serve HTTPS (PEM files, relative to this file)
//!   cert: tls/fullchain.pem
//!   key: tls/privkey.pem
//! ```
//!
//! Secrets may be written inline (`token:`, `signing_secret:`) or read from the environment
//! (`token_env:`, `signing_secret_env:`); the environment keeps them out of files in git.

use crate::target::Spec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    #[serde(default)]
    tokens: Vec<RawToken>,
    slack: Option<RawSlack>,
    mattermost: Option<RawMattermost>,
    #[serde(default)]
    targets: BTreeMap<String, String>,
    runbooks: Option<Vec<String>>,
    #[serde(default)]
    limits: RawLimits,
    db: Option<PathBuf>,
    tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    token: Option<String>,
    token_env: Option<String>,
    runbooks: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    runs_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    signing_secret: Option<String>,
    signing_secret_env: Option<String>,
    runbooks: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    runs_per_minute: Option<u32>,
    /// Where results may be posted; Slack's response URLs by default.
    response_url_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMattermost {
    token: Option<String>,
    token_env: Option<String>,
    runbooks: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    runs_per_minute: Option<u32>,
    /// Where results may be posted: the Mattermost server's URL. Required, since every
    /// Mattermost server has its own.
    response_url_prefixes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_concurrent_runs: Option<usize>,
    max_queued_runs: Option<usize>,
    run_deadline: Option<String>,
    max_body_bytes: Option<usize>,
    shutdown_grace: Option<String>,
    runs_per_minute_per_caller: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: String,
    pub tokens: Vec<Token>,
    pub slack: Option<SlackConfig>,
    pub mattermost: Option<MattermostConfig>,
    /// Name → target spec (`local`, `bundle:DIR` with DIR made absolute, `ssh://…`, …).
    pub targets: BTreeMap<String, Spec>,
    pub runbooks: Option<Vec<String>>,
    pub limits: Limits,
    pub db: Option<PathBuf>,
    /// Serve HTTPS with these PEM files (paths resolved against the config file's folder).
    pub tls: Option<super::tls::TlsFiles>,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
    pub scope: Scope,
}

/// What one caller (a token, or a chat) may run, and how often: runbook ids and target
/// names, where `None` is everything the server offers.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub runbooks: Option<Vec<String>>,
    pub targets: Option<Vec<String>>,
    /// Runs this caller may start a minute (each chat user counts apart); `None` falls back
    /// to `limits.runs_per_minute_per_caller`.
    pub runs_per_minute: Option<u32>,
}

impl Scope {
    pub fn allows_runbook(&self, id: &str) -> bool {
        self.runbooks
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|r| r == id))
    }

    pub fn allows_target(&self, name: &str) -> bool {
        self.targets
            .as_ref()
            .is_none_or(|names| names.iter().any(|t| t == name))
    }
}

#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub signing_secret: String,
    pub chat: ChatSettings,
}

#[derive(Debug, Clone)]
pub struct MattermostConfig {
    /// The slash command's token, which Mattermost sends in every request.
    pub token: String,
    pub chat: ChatSettings,
}

/// What every chat's section says besides its secret: what its users may run, and where
/// its results may be posted.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub scope: Scope,
    pub response_urls: ResponseUrls,
}

/// Where a chat's results may be posted (`response_url_prefixes`), so that a request with a
/// good signature or token still cannot make the server post to an address of its choosing.
#[derive(Debug, Clone)]
pub struct ResponseUrls {
    prefixes: Vec<String>,
}

impl ResponseUrls {
    pub fn new(prefixes: Vec<String>) -> ResponseUrls {
        ResponseUrls { prefixes }
    }

    /// Whether the server may post to `url`.
    pub fn allows(&self, url: &str) -> bool {
        self.prefixes.iter().any(|p| url.starts_with(p.as_str()))
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_runs: usize,
    pub max_queued_runs: usize,
    pub run_deadline: Duration,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// Runs a caller without its own `runs_per_minute` may start a minute; `None`: no limit.
    pub runs_per_minute_per_caller: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_runs: 4,
            max_queued_runs: 64,
            run_deadline: Duration::from_secs(300),
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
            runs_per_minute_per_caller: None,
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
pub const SLACK_RESPONSE_URL_PREFIX: &str = "https://hooks.slack.com/";

impl ServerConfig {
    /// Every caller's scope, named as the config names the caller.
    pub fn scopes(&self) -> impl Iterator<Item = (String, &Scope)> {
        let tokens = self
            .tokens
            .iter()
            .map(|t| (format!("token `{}`", t.name), &t.scope));
        let slack = self
            .slack
            .iter()
            .map(|s| ("slack".to_string(), &s.chat.scope));
        let mattermost = self
            .mattermost
            .iter()
            .map(|m| ("mattermost".to_string(), &m.chat.scope));
        tokens.chain(slack).chain(mattermost)
    }

    /// Reads and checks the file; every error is one line naming the file (and line:column
    /// where YAML gives one).
    pub fn load(path: &Path) -> Result<ServerConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::runbook::depth::check_file(&text, path)?;
        let raw: RawConfig =
            serde_yaml::from_str(&text).map_err(|e| crate::runbook::yaml_error(path, &e))?;
        let file = path.display();
        let base = path.parent().unwrap_or(Path::new("."));
        let secret = |inline: Option<String>, env: Option<String>, what: &str| match (inline, env) {
            (Some(s), None) => Ok(s),
            (None, Some(var)) => std::env::var(&var)
                .map_err(|_| format!("{file}: {what}: the environment variable {var} is not set")),
            _ => Err(format!(
                "{file}: {what}: give exactly one of the secret inline or its _env variable"
            )),
        };
        let mut tokens = Vec::new();
        for t in raw.tokens {
            let s = secret(t.token, t.token_env, &format!("token `{}`", t.name))?;
            // Short tokens can be guessed; the compare is constant-time, the space must be big.
            if s.len() < 16 {
                return Err(format!(
                    "{file}: token `{}` is shorter than 16 characters",
                    t.name
                ));
            }
            tokens.push(Token {
                name: t.name,
                secret: s,
                scope: Scope {
                    runbooks: t.runbooks,
                    targets: t.targets,
                    runs_per_minute: t.runs_per_minute,
                },
            });
        }
        let slack = match raw.slack {
            None => None,
            Some(s) => Some(SlackConfig {
                signing_secret: secret(s.signing_secret, s.signing_secret_env, "slack")?,
                chat: ChatSettings {
                    scope: Scope {
                        runbooks: s.runbooks,
                        targets: s.targets,
                        runs_per_minute: s.runs_per_minute,
                    },
                    response_urls: ResponseUrls::new(
                        s.response_url_prefixes
                            .unwrap_or_else(|| vec![SLACK_RESPONSE_URL_PREFIX.to_string()]),
                    ),
                },
            }),
        };
        let mattermost = match raw.mattermost {
            None => None,
            Some(m) if m.response_url_prefixes.is_empty() => {
                return Err(format!(
                    "{file}: mattermost: give response_url_prefixes (your Mattermost server's URL)"
                ));
            }
            Some(m) => Some(MattermostConfig {
                token: secret(m.token, m.token_env, "mattermost")?,
                chat: ChatSettings {
                    scope: Scope {
                        runbooks: m.runbooks,
                        targets: m.targets,
                        runs_per_minute: m.runs_per_minute,
                    },
                    response_urls: ResponseUrls::new(m.response_url_prefixes),
                },
            }),
        };
        if tokens.is_empty() && slack.is_none() && mattermost.is_none() {
            return Err(format!(
                "{file}: no `tokens:`, `slack:` or `mattermost:`; nobody could call the server"
            ));
        }
        if raw.targets.is_empty() {
            return Err(format!(
                "{file}: no `targets:`; name at least one target a caller may run on"
            ));
        }
        let mut targets = BTreeMap::new();
        for (name, spec) in raw.targets {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "{file}: target name `{name}`: use letters, digits, `-`, `_` and `.`"
                ));
            }
            let spec = Spec::in_file(spec.trim(), base)
                .map_err(|e| format!("{file}: target `{name}`: {e}"))?;
            spec.open()
                .map_err(|e| format!("{file}: target `{name}`: {e}"))?;
            targets.insert(name, spec);
        }
        let config_so_far = ServerConfig {
            listen: String::new(),
            tokens,
            slack,
            mattermost,
            targets,
            runbooks: None,
            limits: Limits::default(),
            db: None,
            tls: None,
        };
        for (who, scope) in config_so_far.scopes() {
            if let Some(missing) = scope
                .targets
                .iter()
                .flatten()
                .find(|t| !config_so_far.targets.contains_key(*t))
            {
                return Err(format!(
                    "{file}: {who}: no target `{missing}` in `targets:`"
                ));
            }
        }
        let scopes_so_far: Vec<(String, Option<u32>)> = config_so_far
            .scopes()
            .map(|(who, scope)| (who, scope.runs_per_minute))
            .collect();
        let ServerConfig {
            tokens,
            slack,
            mattermost,
            targets,
            ..
        } = config_so_far;
        let d = Limits::default();
        let duration = |v: Option<String>, default: Duration, what: &str| match v {
            None => Ok(default),
            Some(s) => crate::runbook::parse_duration(&s)
                .ok_or_else(|| format!("{file}: limits.{what}: `{s}`: write e.g. 30s or 5m")),
        };
        let limits = Limits {
            max_concurrent_runs: raw
                .limits
                .max_concurrent_runs
                .unwrap_or(d.max_concurrent_runs)
                .max(1),
            max_queued_runs: raw.limits.max_queued_runs.unwrap_or(d.max_queued_runs),
            run_deadline: duration(raw.limits.run_deadline, d.run_deadline, "run_deadline")?,
            max_body_bytes: raw
                .limits
                .max_body_bytes
                .unwrap_or(d.max_body_bytes)
                .max(1024),
            shutdown_grace: duration(
                raw.limits.shutdown_grace,
                d.shutdown_grace,
                "shutdown_grace",
            )?,
            runs_per_minute_per_caller: raw.limits.runs_per_minute_per_caller,
        };
        let zero_rate = std::iter::once((
            "limits.runs_per_minute_per_caller".to_string(),
            limits.runs_per_minute_per_caller,
        ))
        .chain(
            scopes_so_far
                .iter()
                .map(|(who, rate)| (format!("{who}: runs_per_minute"), *rate)),
        )
        .find(|(_, rate)| *rate == Some(0));
        if let Some((what, _)) = zero_rate {
            return Err(format!(
                "{file}: {what}: 0 would refuse every run; use 1 or more, or leave it out for no limit"
            ));
        }
        let tls = raw.tls.map(|t| super::tls::TlsFiles {
            cert: base.join(t.cert),
            key: base.join(t.key),
        });
        if let Some(files) = &tls {
            // Loaded now so a wrong path or a mismatched key stops the server at start.
            super::tls::server_config(files).map_err(|e| format!("{file}: {e}"))?;
        }
        Ok(ServerConfig {
            listen: raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            tokens,
            slack,
            mattermost,
            targets,
            runbooks: raw.runbooks,
            limits,
            db: raw.db.map(|p| base.join(p)),
            tls,
        })
    }
}
