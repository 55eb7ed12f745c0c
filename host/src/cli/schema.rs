//! `triage schema`: the JSON Schema of runbooks, for editors (see the README's modeline).

use super::{Cli, CliResult};
use crate::runbook::Runbook;

pub fn run(cli: &Cli) -> CliResult {
    print!("{}", runbook_schema(&super::load_runtime(cli)?));
    Ok(0)
}

/// The JSON Schema of a runbook, derived from the same types the loader deserialises, and
/// told about `plugins`: for a step's `probe`, editors can offer the plugin names, each
/// plugin's actions, and each action's params with their descriptions, and flag a param the
/// action does not take. Param values are left free, since any of them may be a template.
/// A plugin the schema does not know (one written later) is accepted as before.
pub fn runbook_schema(plugins: &crate::runtime::Runtime) -> String {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Runbook)).expect("a schema serialises");
    let mut rules = Vec::new();
    let mut names = Vec::new();
    for plugin in plugins.plugins() {
        let name = &plugin.manifest.name;
        names.push(name.clone());
        let actions: Vec<&str> = plugin
            .manifest
            .actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        rules.push(serde_json::json!({
            "if": {"properties": {"plugin": {"const": name}}, "required": ["plugin"]},
            "then": {"properties": {"action": {"enum": actions}}},
        }));
        for action in &plugin.manifest.actions {
            let params: serde_json::Map<String, serde_json::Value> = action
                .params_schema
                .get("properties")
                .and_then(|p| p.as_object())
                .into_iter()
                .flatten()
                .map(|(param, spec)| {
                    let mut named = serde_json::Map::new();
                    if let Some(about) = spec.get("description") {
                        named.insert("description".into(), about.clone());
                    }
                    (param.clone(), named.into())
                })
                .collect();
            rules.push(serde_json::json!({
                "if": {
                    "properties": {"plugin": {"const": name}, "action": {"const": action.name}},
                    "required": ["plugin", "action"],
                },
                "then": {"properties": {"with": {
                    "description": action.description,
                    "properties": params,
                    "additionalProperties": false,
                }}},
            }));
        }
    }
    if let Some(call) = schema
        .pointer_mut("/$defs/ProbeCall")
        .and_then(|c| c.as_object_mut())
    {
        if let Some(plugin) = call
            .get_mut("properties")
            .and_then(|p| p.get_mut("plugin"))
            .and_then(|p| p.as_object_mut())
        {
            // `examples`, not `enum`: editors complete from it without refusing other names.
            plugin.insert("examples".into(), names.into());
        }
        call.insert("allOf".into(), rules.into());
    }
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}
