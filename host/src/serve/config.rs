//! The server's config file: who may call it, which targets a bot may name, and the limits.
//!
//! ```yaml
//! listen: 127.0.0.1:7878
//! tokens:                      # bearer tokens for /v1 (each a name, for the run history)
//!   - name: ops-bot
//!     token_env: TRIAGE_OPS_BOT_TOKEN
//!     targets: [demo]          # optional: what this token may run, on what
//!     runbooks: [service-unreachable]
//!   - name: fleet-jobs
//!     token_env: TRIAGE_REPORT_TOKEN
//!     scopes: [report]         # may only POST /v1/reports (default: [runs])
//!     fleets: [nightly]        # optional: only into these fleets
//! slack:
//!   signing_secret_env: SLACK_SIGNING_SECRET
//! mattermost:
//!   token_env: MATTERMOST_COMMAND_TOKEN
//!   response_url_origins: ["https://chat.example.com"]
//!   token_runs_per_minute: 30  # optional: every user of the command token together
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
//!   max_connections: 512       # beyond it the oldest idle connection is closed
//!   header_timeout: 15s        # a request's header (and a connection idle between requests)
//!   body_timeout: 15s          # a request's body
//!   runs_per_minute_per_caller: 30  # default: half of max_concurrent_runs + max_queued_runs;
//!                                   # a token or chat may set its own runs_per_minute
//! tls:                         # optional: serve HTTPS (PEM files, relative to this file)
//!   cert: tls/fullchain.pem
//!   key: tls/privkey.pem
//! redact: redact.yaml          # optional: the team's redaction patterns (docs/security.md)
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
    db: Option<String>,
    tls: Option<RawTls>,
    redact: Option<PathBuf>,
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
    /// What the token may do: `runs` (the default) and/or `report`.
    scopes: Option<Vec<Permission>>,
    /// With `report`: the only fleets it may post to.
    fleets: Option<Vec<String>>,
}

/// What a token may do. A token without `scopes:` has `runs` only: posting into fleets is
/// granted on purpose, to the token the reporting processes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Everything the API offered before fleets: start runs, read runs, runbooks, targets,
    /// metrics and fleets.
    Runs,
    /// `POST /v1/reports`, and nothing else.
    Report,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Runs => "runs",
            Permission::Report => "report",
        }
    }
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
    response_url_origins: Option<Vec<String>>,
    /// The old form (string prefixes); read only to say what replaced it.
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
    /// Runs all users of the command token may start a minute together.
    token_runs_per_minute: Option<u32>,
    /// Where results may be posted: the Mattermost server's origin. Required, since every
    /// Mattermost server has its own.
    response_url_origins: Option<Vec<String>>,
    /// The old form (string prefixes); read only to say what replaced it.
    response_url_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_concurrent_runs: Option<usize>,
    max_queued_runs: Option<usize>,
    run_deadline: Option<String>,
    max_body_bytes: Option<usize>,
    shutdown_grace: Option<String>,
    run_lease: Option<String>,
    runs_per_minute_per_caller: Option<u32>,
    max_connections: Option<usize>,
    header_timeout: Option<String>,
    body_timeout: Option<String>,
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
    /// The history: a SQLite file (relative to the config file) or a `postgres://` URL.
    pub db: Option<super::store::Db>,
    /// Serve HTTPS with these PEM files (paths resolved against the config file's folder).
    pub tls: Option<super::tls::TlsFiles>,
    /// The team's redaction patterns, besides the built-in ones (relative to the config
    /// file's folder; checked at load).
    pub redact: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub name: String,
    pub secret: String,
    pub scope: Scope,
    /// What it may do (never empty).
    pub permissions: Vec<Permission>,
    /// With [`Permission::Report`]: the fleets it may post to (`None`: any).
    pub fleets: Option<Vec<String>>,
}

impl Token {
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
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
    /// Runs every user of the token may start a minute together (`None`: the per-caller
    /// default). Anyone holding the token can claim any `user_id`, so the token is the
    /// caller the server can tell apart; users are rated within it.
    pub token_runs_per_minute: Option<u32>,
}

/// What every chat's section says besides its secret: what its users may run, and where
/// its results may be posted.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub scope: Scope,
    pub response_urls: ResponseUrls,
}

/// Where a chat's results may be posted (`response_url_origins`), so that a request with a
/// good signature or token still cannot make the server post to an address of its choosing.
/// Each entry is an origin, `scheme://host[:port]`; a response URL must have exactly that
/// scheme, host and port (parsed, not compared as text: `http://127.0.0.1:@10.0.0.2/` is a
/// URL for 10.0.0.2) and no user or password.
#[derive(Debug, Clone)]
pub struct ResponseUrls {
    origins: Vec<ResponseOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ResponseOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl ResponseOrigin {
    fn of(url: &reqwest::Url) -> Option<ResponseOrigin> {
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        Some(ResponseOrigin {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_string(),
            port: url.port_or_known_default(),
        })
    }
}

impl ResponseUrls {
    /// Parses each origin; the error names the entry and what is wrong with it.
    pub fn new<S: AsRef<str>>(origins: &[S]) -> Result<ResponseUrls, String> {
        let origins = origins
            .iter()
            .map(|text| {
                let text = text.as_ref();
                let bad = |why: &str| format!("`{text}`: {why}; write scheme://host[:port]");
                // The URL standard reads `http://host:` as the default port, which is not what
                // a prefix written that way meant (any port).
                if text.trim_end_matches('/').ends_with(':') {
                    return Err(bad("empty port"));
                }
                let url = reqwest::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
                if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                    return Err(bad("an origin has no path, query or fragment"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(bad("an origin has no user or password"));
                }
                ResponseOrigin::of(&url).ok_or_else(|| bad("only http and https"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ResponseUrls { origins })
    }

    /// Whether the server may post to `url`.
    pub fn allows(&self, url: &str) -> bool {
        reqwest::Url::parse(url)
            .ok()
            .as_ref()
            .and_then(ResponseOrigin::of)
            .is_some_and(|o| self.origins.contains(&o))
    }
}

/// The one-line error for a config still written with `response_url_prefixes`: what replaced
/// it, with the entries converted where they convert.
fn prefixes_replaced(file: &str, chat: &str, prefixes: &[String]) -> String {
    let origins: Vec<String> = prefixes
        .iter()
        // `http://host:` meant any port, which no origin says.
        .filter(|p| !p.trim_end_matches('/').ends_with(':'))
        .filter_map(|p| reqwest::Url::parse(p).ok())
        .filter(|u| u.has_host())
        .map(|u| format!("\"{}\"", u.origin().ascii_serialization()))
        .collect();
    let example = if origins.is_empty() {
        "\"https://chat.example.com\"".to_string()
    } else {
        origins.join(", ")
    };
    format!(
        "{file}: {chat}.response_url_prefixes is replaced by response_url_origins (scheme://host[:port], \
         compared exactly), e.g. response_url_origins: [{example}]"
    )
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_runs: usize,
    pub max_queued_runs: usize,
    pub run_deadline: Duration,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    /// With a shared (PostgreSQL) history: how long a replica's claim on a running run holds
    /// without being renewed; after it, another replica marks the run interrupted.
    pub run_lease: Duration,
    /// Runs a caller without its own `runs_per_minute` may start a minute. The default is
    /// half the run slots plus the queue, so one caller never fills more than half of it.
    pub runs_per_minute_per_caller: u32,
    /// Open connections, and how long a request's header and body may take.
    pub connections: super::http::ConnectionLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_runs: 4,
            max_queued_runs: 64,
            run_deadline: Duration::from_secs(300),
            max_body_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(30),
            run_lease: Duration::from_secs(30),
            runs_per_minute_per_caller: default_rate(4, 64),
            connections: super::http::ConnectionLimits::default(),
        }
    }
}

/// The default per-caller rate: half of what the server holds at once (running plus
/// queued), so one caller's burst can never fill the queue for everyone else.
pub fn default_rate(max_concurrent_runs: usize, max_queued_runs: usize) -> u32 {
    let half = max_concurrent_runs.saturating_add(max_queued_runs) / 2;
    u32::try_from(half).unwrap_or(u32::MAX).max(1)
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
pub const SLACK_RESPONSE_URL_ORIGIN: &str = "https://hooks.slack.com";

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

    /// Reads and checks the file. Every error found, one a line, each naming the file (and
    /// line:column for the file's shape): first every key or value of the wrong shape
    /// (yaml/collect.rs), then, once the shape is right, every check of what it says.
    pub fn load(path: &Path) -> Result<ServerConfig, String> {
        let text = crate::files::read_text(path).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::yaml::depth::check_file(&text, path)?;
        let raw: RawConfig = crate::yaml::collect::all_errors(&text)
            .map_err(|errors| crate::yaml::collect::lines(path, &errors).join("\n"))?;
        let mut errors: Vec<String> = Vec::new();
        let config = Self::check(raw, path, &mut errors);
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(errors.join("\n")),
        }
    }

    /// What the file says, checked; each problem is pushed to `errors` and the checks go
    /// on, so that one run of `serve --check` lists them all.
    fn check(raw: RawConfig, path: &Path, errors: &mut Vec<String>) -> Option<ServerConfig> {
        let file = path.display();
        let base = path.parent().unwrap_or(Path::new("."));
        let secret = |inline: Option<String>, env: Option<String>, what: &str| {
            let (value, from) = match (inline, env) {
                (Some(s), None) => (s, "written inline".to_string()),
                (None, Some(var)) => (
                    std::env::var(&var).map_err(|_| {
                        format!("{file}: {what}: the environment variable {var} is not set")
                    })?,
                    format!("from {var}"),
                ),
                _ => {
                    return Err(format!(
                        "{file}: {what}: give exactly one of the secret inline or its _env variable"
                    ));
                }
            };
            // An empty secret would let anyone in: an HMAC under an empty key is computable
            // by anyone, and an empty token is what a request without one carries.
            if value.trim().is_empty() {
                return Err(format!(
                    "{file}: {what}: the secret ({from}) is empty; nobody could be told from anybody"
                ));
            }
            Ok(value)
        };
        let callers_given =
            !raw.tokens.is_empty() || raw.slack.is_some() || raw.mattermost.is_some();
        let target_names: std::collections::BTreeSet<String> =
            raw.targets.keys().cloned().collect();
        let mut tokens = Vec::new();
        for t in raw.tokens {
            let s = match secret(t.token, t.token_env, &format!("token `{}`", t.name)) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            // Short tokens can be guessed; the compare is constant-time, the space must be big.
            if s.len() < 16 {
                errors.push(format!(
                    "{file}: token `{}` is shorter than 16 characters",
                    t.name
                ));
                continue;
            }
            let permissions = t.scopes.unwrap_or_else(|| vec![Permission::Runs]);
            if permissions.is_empty() {
                errors.push(format!(
                    "{file}: token `{}`: `scopes: []` lets it do nothing; give runs, report or both",
                    t.name
                ));
                continue;
            }
            if t.fleets.is_some() && !permissions.contains(&Permission::Report) {
                errors.push(format!(
                    "{file}: token `{}`: `fleets:` limits where it posts reports, but its scopes have no `report`",
                    t.name
                ));
                continue;
            }
            if let Some(bad) = t
                .fleets
                .iter()
                .flatten()
                .find_map(|f| crate::serve::fleets::check_fleet_id(f).err())
            {
                errors.push(format!("{file}: token `{}`: fleets: {bad}", t.name));
                continue;
            }
            tokens.push(Token {
                name: t.name,
                secret: s,
                scope: Scope {
                    runbooks: t.runbooks,
                    targets: t.targets,
                    runs_per_minute: t.runs_per_minute,
                },
                permissions,
                fleets: t.fleets,
            });
        }
        let origins = |chat: &str, list: &[String]| {
            ResponseUrls::new(list).map_err(|e| format!("{file}: {chat}.response_url_origins: {e}"))
        };
        let slack = match raw.slack {
            None => None,
            Some(s) => {
                if let Some(prefixes) = &s.response_url_prefixes {
                    errors.push(prefixes_replaced(&file.to_string(), "slack", prefixes));
                }
                let signing_secret = secret(s.signing_secret, s.signing_secret_env, "slack")
                    .map_err(|e| errors.push(e))
                    .ok();
                let response_urls = origins(
                    "slack",
                    &s.response_url_origins
                        .unwrap_or_else(|| vec![SLACK_RESPONSE_URL_ORIGIN.to_string()]),
                )
                .map_err(|e| errors.push(e))
                .ok();
                match (signing_secret, response_urls) {
                    (Some(signing_secret), Some(response_urls)) => Some(SlackConfig {
                        signing_secret,
                        chat: ChatSettings {
                            scope: Scope {
                                runbooks: s.runbooks,
                                targets: s.targets,
                                runs_per_minute: s.runs_per_minute,
                            },
                            response_urls,
                        },
                    }),
                    _ => None,
                }
            }
        };
        let mattermost = match raw.mattermost {
            None => None,
            Some(m) => {
                if let Some(prefixes) = &m.response_url_prefixes {
                    errors.push(prefixes_replaced(&file.to_string(), "mattermost", prefixes));
                }
                let list = m.response_url_origins.unwrap_or_default();
                let response_urls = if list.is_empty() {
                    // A config still written with the old key has been told what replaced
                    // it; saying the new key is missing too would be the same error twice.
                    if m.response_url_prefixes.is_none() {
                        errors.push(format!(
                            "{file}: mattermost: give response_url_origins (your Mattermost server's origin, e.g. [\"https://chat.example.com\"])"
                        ));
                    }
                    None
                } else {
                    origins("mattermost", &list)
                        .map_err(|e| errors.push(e))
                        .ok()
                };
                let token = secret(m.token, m.token_env, "mattermost")
                    .map_err(|e| errors.push(e))
                    .ok()
                    // The token is the only proof of origin Mattermost sends, a bearer
                    // secret like the /v1 tokens (Mattermost's own are 26 characters).
                    .filter(|token| {
                        let long_enough = token.len() >= 16;
                        if !long_enough {
                            errors.push(format!(
                                "{file}: mattermost: the command token is shorter than 16 characters"
                            ));
                        }
                        long_enough
                    });
                match (token, response_urls) {
                    (Some(token), Some(response_urls)) => Some(MattermostConfig {
                        token,
                        chat: ChatSettings {
                            scope: Scope {
                                runbooks: m.runbooks,
                                targets: m.targets,
                                runs_per_minute: m.runs_per_minute,
                            },
                            response_urls,
                        },
                        token_runs_per_minute: m.token_runs_per_minute,
                    }),
                    _ => None,
                }
            }
        };
        if !callers_given {
            errors.push(format!(
                "{file}: no `tokens:`, `slack:` or `mattermost:`; nobody could call the server"
            ));
        }
        if raw.targets.is_empty() {
            errors.push(format!(
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
                errors.push(format!(
                    "{file}: target name `{}`: use letters, digits, `-`, `_` and `.`",
                    crate::yaml::collect::escape_controls(&name)
                ));
                continue;
            }
            let opened = Spec::in_file(spec.trim(), base)
                .map_err(|e| e.to_string())
                .and_then(|spec| spec.open().map(|_| spec).map_err(|e| e.to_string()));
            let spec = match opened {
                Ok(spec) => spec,
                Err(e) => {
                    errors.push(format!("{file}: target `{name}`: {e}"));
                    continue;
                }
            };
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
            redact: None,
        };
        for (who, scope) in config_so_far.scopes() {
            // Against the names written, not those that checked out: a target with an
            // error of its own is reported once, there.
            for missing in scope
                .targets
                .iter()
                .flatten()
                .filter(|t| !target_names.contains(*t))
            {
                errors.push(format!(
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
        let mut duration = |v: Option<String>, default: Duration, what: &str| match v {
            None => default,
            Some(s) => crate::runbook::parse_duration(&s).unwrap_or_else(|| {
                errors.push(format!(
                    "{file}: limits.{what}: `{s}`: write e.g. 30s or 5m"
                ));
                default
            }),
        };
        let limits = Limits {
            max_concurrent_runs: raw
                .limits
                .max_concurrent_runs
                .unwrap_or(d.max_concurrent_runs)
                .max(1),
            max_queued_runs: raw.limits.max_queued_runs.unwrap_or(d.max_queued_runs),
            run_deadline: duration(raw.limits.run_deadline, d.run_deadline, "run_deadline"),
            max_body_bytes: raw
                .limits
                .max_body_bytes
                .unwrap_or(d.max_body_bytes)
                .max(1024),
            shutdown_grace: duration(
                raw.limits.shutdown_grace,
                d.shutdown_grace,
                "shutdown_grace",
            ),
            run_lease: duration(raw.limits.run_lease, d.run_lease, "run_lease"),
            runs_per_minute_per_caller: 0,
            connections: super::http::ConnectionLimits {
                // Below 16 a handful of browsers' idle connections would crowd out callers.
                max_connections: raw
                    .limits
                    .max_connections
                    .unwrap_or(d.connections.max_connections)
                    .max(16),
                header_timeout: duration(
                    raw.limits.header_timeout,
                    d.connections.header_timeout,
                    "header_timeout",
                ),
                body_timeout: duration(
                    raw.limits.body_timeout,
                    d.connections.body_timeout,
                    "body_timeout",
                ),
            },
        };
        let limits = Limits {
            runs_per_minute_per_caller: raw.limits.runs_per_minute_per_caller.unwrap_or(
                default_rate(limits.max_concurrent_runs, limits.max_queued_runs),
            ),
            ..limits
        };
        let zero_rate = [
            (
                "limits.runs_per_minute_per_caller".to_string(),
                raw.limits.runs_per_minute_per_caller,
            ),
            (
                "mattermost: token_runs_per_minute".to_string(),
                mattermost.as_ref().and_then(|m| m.token_runs_per_minute),
            ),
        ]
        .into_iter()
        .chain(
            scopes_so_far
                .iter()
                .map(|(who, rate)| (format!("{who}: runs_per_minute"), *rate)),
        )
        .filter(|(_, rate)| *rate == Some(0));
        for (what, _) in zero_rate {
            errors.push(format!(
                "{file}: {what}: 0 would refuse every run; use 1 or more, or leave it out for the default"
            ));
        }
        let tls = raw.tls.map(|t| super::tls::TlsFiles {
            cert: base.join(t.cert),
            key: base.join(t.key),
        });
        if let Some(files) = &tls {
            // Loaded now so a wrong path or a mismatched key stops the server at start.
            if let Err(e) = super::tls::server_config(files) {
                errors.push(format!("{file}: {e}"));
            }
        }
        let db = raw
            .db
            .and_then(|text| match super::store::Db::parse(&text, base) {
                Ok(db) => Some(db),
                Err(e) => {
                    errors.push(format!("{file}: {e}"));
                    None
                }
            });
        let redact = raw.redact.map(|p| base.join(p));
        if let Some(patterns) = &redact
            && let Err(e) = crate::redact::Redactor::load(Some(patterns))
        {
            errors.push(format!("{file}: redact: {e}"));
        }
        Some(ServerConfig {
            redact,
            listen: raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            tokens,
            slack,
            mattermost,
            targets,
            runbooks: raw.runbooks,
            limits,
            db,
            tls,
        })
    }
}
