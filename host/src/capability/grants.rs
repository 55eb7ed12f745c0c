//! What one action of one plugin may do in one call: the patterns its manifest declared,
//! with the call's params filled in, intersected with the operator's policy.

use super::pattern::{Pattern, Unsubstituted};
use super::{Kind, Policy, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A capability an action declared, as a pattern that may hold `{param}` placeholders.
/// (Serialised as the manifest cache stores it: `{"exec": [...]}`, `{"http": "..."}`.)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredCapability {
    Exec(Vec<String>),
    Http(String),
    ReadFile(String),
    Resolve(String),
    Connect(String),
}

impl DeclaredCapability {
    pub fn kind(&self) -> Kind {
        match self {
            DeclaredCapability::Exec(_) => Kind::Exec,
            DeclaredCapability::Http(_) => Kind::Http,
            DeclaredCapability::ReadFile(_) => Kind::ReadFile,
            DeclaredCapability::Resolve(_) => Kind::Resolve,
            DeclaredCapability::Connect(_) => Kind::Connect,
        }
    }

    fn pattern(&self) -> Pattern {
        match self {
            DeclaredCapability::Exec(argv) => Pattern::argv(argv),
            DeclaredCapability::Http(p) => Pattern::declared_http(p),
            DeclaredCapability::ReadFile(p)
            | DeclaredCapability::Resolve(p)
            | DeclaredCapability::Connect(p) => Pattern::text(p),
        }
    }

    /// The pattern with the call's params substituted; an error when a placeholder's
    /// param is absent or its value cannot stand there (the capability then cannot be
    /// used in this call).
    pub fn resolve(&self, params: &Value) -> Result<Pattern, Unsubstituted> {
        self.pattern().substitute(params)
    }

    /// e.g. `exec iptables-save -t nat`, for `triage plugins` and guided mode; empty when
    /// these params leave the pattern unusable.
    pub fn display(&self, params: Option<&Value>) -> String {
        let pattern = match params {
            Some(p) => match self.resolve(p) {
                Ok(p) => p,
                Err(_) => return String::new(),
            },
            None => self.pattern(),
        };
        format!("{} {}", self.kind(), pattern.display())
    }
}

#[derive(Debug, Clone)]
pub struct Grants {
    pub plugin: String,
    pub action: String,
    declared: Vec<(Kind, Pattern)>,
    /// Declared patterns this call's params cannot fill safely (a value that would be read
    /// as an option), with why: a call those patterns would have covered is denied saying so.
    refused: Vec<(Kind, String)>,
    policy: Arc<Policy>,
}

impl Grants {
    pub fn new(
        plugin: &str,
        action: &str,
        declared: &[DeclaredCapability],
        params: &Value,
        policy: Arc<Policy>,
    ) -> Self {
        let mut grants = Grants::none(plugin, policy);
        grants.action = action.into();
        for d in declared {
            match d.resolve(params) {
                Ok(p) => grants.declared.push((d.kind(), p)),
                Err(Unsubstituted::Missing(_)) => {}
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

    /// The first thing every host function calls: declared by the action, then allowed by
    /// the policy. A denial says what to change.
    pub fn check<R: Request>(&self, request: &R) -> Result<(), String> {
        let kind = R::KIND;
        let subject = request.subject();
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
    pub fn check_policy<R: Request>(&self, request: &R) -> Result<(), String> {
        if !self.policy.allows(request) {
            return Err(format!(
                "{} `{}` is not allowed by the policy ({}); to allow it, add `{}` under `allow:` in {}",
                R::KIND,
                request.display(),
                self.policy.origin(),
                request.policy_entry(),
                self.policy.suggested_path()
            ));
        }
        Ok(())
    }
}
