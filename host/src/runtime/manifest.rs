//! A plugin's manifest as the host keeps it: parsed schemas, declared capabilities.

use super::bindings::guest;
use crate::capability::pattern::{Pattern, Unsubstituted};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    pub sdk_version: String,
    pub description: String,
    pub actions: Vec<ActionSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionSpec {
    pub name: String,
    pub description: String,
    pub params_schema: Value,
    pub output_schema: Value,
    pub capabilities: Vec<DeclaredCapability>,
}

/// A capability an action declared, as a pattern that may hold `{param}` placeholders.
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
    pub fn kind(&self) -> &'static str {
        match self {
            DeclaredCapability::Exec(_) => "exec",
            DeclaredCapability::Http(_) => "http",
            DeclaredCapability::ReadFile(_) => "read_file",
            DeclaredCapability::Resolve(_) => "resolve",
            DeclaredCapability::Connect(_) => "connect",
        }
    }

    fn pattern(&self) -> Pattern {
        match self {
            DeclaredCapability::Exec(argv) => Pattern::argv(argv),
            DeclaredCapability::Http(p)
            | DeclaredCapability::ReadFile(p)
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

    /// e.g. `exec iptables-save -t nat`, for `triage plugins` and guided mode.
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

impl PluginManifest {
    pub fn from_wit(m: guest::Manifest) -> Result<Self, String> {
        let actions = m
            .actions
            .into_iter()
            .map(|a| {
                let parse = |what: &str, s: &str| {
                    serde_json::from_str::<Value>(s)
                        .map_err(|e| format!("action `{}`: {what} schema is not JSON: {e}", a.name))
                };
                Ok(ActionSpec {
                    params_schema: parse("params", &a.params_schema)?,
                    output_schema: parse("output", &a.output_schema)?,
                    capabilities: a
                        .capabilities
                        .into_iter()
                        .map(|c| match c {
                            guest::Capability::Exec(v) => DeclaredCapability::Exec(v),
                            guest::Capability::Http(v) => DeclaredCapability::Http(v),
                            guest::Capability::ReadFile(v) => DeclaredCapability::ReadFile(v),
                            guest::Capability::Resolve(v) => DeclaredCapability::Resolve(v),
                            guest::Capability::Connect(v) => DeclaredCapability::Connect(v),
                        })
                        .collect(),
                    name: a.name,
                    description: a.description,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PluginManifest {
            name: m.name,
            version: m.version,
            sdk_version: m.sdk_version,
            description: m.description,
            actions,
        })
    }

    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
}
