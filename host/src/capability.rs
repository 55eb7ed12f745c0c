//! Capabilities: what a plugin may ask the host to do, and the check that comes first in
//! every host function.
//!
//! A call is allowed only when it matches a pattern the calling *action* declared in its
//! manifest (with the step's params substituted) **and** a pattern of the operator's
//! policy. Declared patterns are what the plugin author says the action needs (and what
//! guided mode shows the user); the policy is what the operator is willing to grant.

pub mod connect;
pub mod exec;
pub mod http;
pub mod log;
pub mod pattern;
pub mod policy;
pub mod read_file;
pub mod resolve;

use crate::runtime::manifest::DeclaredCapability;
use pattern::Pattern;
pub use policy::Policy;
use std::sync::Arc;

/// One concrete request a plugin made, in a form that can be matched, shown and recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Request {
    Exec(Vec<String>),
    Http { method: String, url: String },
    ReadFile(String),
    Resolve(String),
    Connect(String),
}

impl Request {
    /// The capability's name as written in a policy file.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Exec(_) => "exec",
            Request::Http { .. } => "http",
            Request::ReadFile(_) => "read_file",
            Request::Resolve(_) => "resolve",
            Request::Connect(_) => "connect",
        }
    }

    /// A one-line rendering for reports and denials.
    pub fn display(&self) -> String {
        match self {
            Request::Exec(argv) => shell_words(argv),
            Request::Http { method, url } => format!("{method} {url}"),
            Request::ReadFile(p) | Request::Resolve(p) | Request::Connect(p) => p.clone(),
        }
    }

    /// The YAML an operator would add under `allow:` to permit exactly this request.
    pub fn policy_entry(&self) -> String {
        match self {
            Request::Exec(argv) => {
                let items: Vec<String> = argv.iter().map(|a| yaml_scalar(a)).collect();
                format!("exec: [[{}]]", items.join(", "))
            }
            Request::Http { url, .. } => format!("http: [{}]", yaml_scalar(url)),
            Request::ReadFile(p) => format!("read_file: [{}]", yaml_scalar(p)),
            Request::Resolve(h) => format!("resolve: [{}]", yaml_scalar(h)),
            Request::Connect(hp) => format!("connect: [{}]", yaml_scalar(hp)),
        }
    }
}

/// A host name for `resolve` or `connect`: never one that a remote target's `getent` would
/// read as an option, nor one with whitespace, control characters or `/` (which would
/// change the path a remote shell's `/dev/tcp/HOST/PORT` names).
pub(crate) fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty()
        || host.starts_with('-')
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "`{}` is not a host name",
            host.escape_debug().take(80).collect::<String>()
        ));
    }
    Ok(())
}

/// Quotes argv the way a POSIX shell would need it, for display only (never executed).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Single-quotes a word for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn yaml_scalar(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// What a request's patterns are matched against.
fn subject(request: &Request) -> pattern::Subject<'_> {
    match request {
        Request::Exec(argv) => pattern::Subject::Argv(argv),
        Request::Http { url, .. } => pattern::Subject::Text(url),
        Request::ReadFile(s) | Request::Resolve(s) | Request::Connect(s) => {
            pattern::Subject::Text(s)
        }
    }
}

/// What one action of one plugin may do in one call: the declared patterns with the
/// call's params substituted, and the operator's policy.
#[derive(Debug, Clone)]
pub struct Grants {
    pub plugin: String,
    pub action: String,
    declared: Vec<(&'static str, Pattern)>,
    /// Declared patterns this call's params cannot fill safely (a value that would be read
    /// as an option), with why: a call those patterns would have covered is denied saying so.
    refused: Vec<(&'static str, String)>,
    policy: Arc<Policy>,
}

impl Grants {
    pub fn new(
        plugin: &str,
        action: &str,
        declared: &[DeclaredCapability],
        params: &serde_json::Value,
        policy: Arc<Policy>,
    ) -> Self {
        let mut grants = Grants {
            plugin: plugin.into(),
            action: action.into(),
            declared: Vec::new(),
            refused: Vec::new(),
            policy,
        };
        for d in declared {
            match d.resolve(params) {
                Ok(p) => grants.declared.push((d.kind(), p)),
                Err(pattern::Unsubstituted::Missing(_)) => {}
                Err(why) => grants.refused.push((d.kind(), why.to_string())),
            }
        }
        grants
    }

    /// Grants that allow nothing (used for `describe`).
    pub fn none(plugin: &str, policy: Arc<Policy>) -> Self {
        Grants {
            plugin: plugin.into(),
            action: String::new(),
            declared: Vec::new(),
            refused: Vec::new(),
            policy,
        }
    }

    /// The first thing every host function calls.
    pub fn check(&self, request: &Request) -> Result<(), String> {
        let subject = subject(request);
        let kind = request.kind();
        let declared = self
            .declared
            .iter()
            .any(|(k, p)| *k == kind && p.matches(&subject));
        if !declared {
            if let Some((_, why)) = self.refused.iter().find(|(k, _)| *k == kind) {
                return Err(format!(
                    "{kind} `{}` refused: {why} ({} action `{}`)",
                    request.display(),
                    self.plugin,
                    self.action
                ));
            }
            return Err(format!(
                "{kind} `{}` was not declared by {} action `{}`; a plugin may only use the capabilities its manifest declares (see `triage plugins`)",
                request.display(),
                self.plugin,
                self.action
            ));
        }
        self.check_policy(request)
    }

    /// The operator's half of [`Grants::check`]: is this request allowed by the policy?
    pub fn check_policy(&self, request: &Request) -> Result<(), String> {
        let subject = subject(request);
        let kind = request.kind();
        if !self.policy.allows(kind, &subject) {
            return Err(format!(
                "{kind} `{}` is not allowed by the policy ({}); to allow it, add `{}` under `allow:` in {}",
                request.display(),
                self.policy.origin(),
                request.policy_entry(),
                self.policy.suggested_path()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check_host_name;

    #[test]
    fn host_names_never_begin_with_a_dash() {
        assert!(check_host_name("trafficdirector.googleapis.com").is_ok());
        assert!(check_host_name("10.0.0.1").is_ok());
        assert!(check_host_name("::1").is_ok());
        for bad in ["-s", "--service=files", "", "a b", "a\nb", "a/b"] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
    }
}
