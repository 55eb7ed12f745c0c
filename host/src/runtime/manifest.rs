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

/// The manifest as `describe()` returns it (schemas as JSON text), in the JSON form the SDK
/// writes at build time (`triage_sdk::__private::manifest_json`) and build.rs embeds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireManifest {
    name: String,
    version: String,
    sdk_version: String,
    description: String,
    actions: Vec<WireAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAction {
    name: String,
    description: String,
    params_schema: String,
    output_schema: String,
    capabilities: Vec<DeclaredCapability>,
}

impl PluginManifest {
    pub fn from_wit(m: guest::Manifest) -> Result<Self, String> {
        Self::from_wire(WireManifest {
            name: m.name,
            version: m.version,
            sdk_version: m.sdk_version,
            description: m.description,
            actions: m
                .actions
                .into_iter()
                .map(|a| WireAction {
                    name: a.name,
                    description: a.description,
                    params_schema: a.params_schema,
                    output_schema: a.output_schema,
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
                })
                .collect(),
        })
    }

    /// A manifest from the JSON the SDK writes at build time (see [`WireManifest`]).
    pub fn from_json(json: &str) -> Result<Self, String> {
        let wire: WireManifest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Self::from_wire(wire)
    }

    fn from_wire(m: WireManifest) -> Result<Self, String> {
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
                    capabilities: a.capabilities,
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
