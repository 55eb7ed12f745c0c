//! A plugin's manifest as the host keeps it: parsed schemas, declared capabilities.

use super::bindings::guest;
pub use crate::capability::DeclaredCapability;
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
