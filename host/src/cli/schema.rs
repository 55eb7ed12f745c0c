//! `triage schema [runbook|case|bundle]`: the JSON Schema of runbooks, scenario test
//! cases and bundles, for editors (see the README's modeline).

use super::{Cli, CliResult};
use crate::runbook::Runbook;

#[derive(clap::Args, Debug)]
pub struct SchemaArgs {
    /// Which file's schema.
    #[arg(value_enum, default_value_t = SchemaOf::Runbook)]
    of: SchemaOf,
}

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
enum SchemaOf {
    /// A runbook (`runbooks/runbook.schema.json`), told about the plugins.
    Runbook,
    /// A scenario test case, `case.yaml` (`runbooks/case.schema.json`).
    Case,
    /// A bundle's `bundle.yaml` (`runbooks/bundle.schema.json`).
    Bundle,
}

pub fn run(cli: &Cli, args: &SchemaArgs) -> CliResult {
    let text = match args.of {
        SchemaOf::Runbook => runbook_schema(&super::load_runtime(cli)?),
        SchemaOf::Case => case_schema(),
        SchemaOf::Bundle => bundle_schema(),
    };
    print!("{text}");
    Ok(0)
}

/// The JSON Schema of `case.yaml`, from the type `triage test` reads it into.
pub fn case_schema() -> String {
    let schema = schemars::schema_for!(super::test::CaseSpec);
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
}

/// The JSON Schema of `bundle.yaml`, from the type replay reads it into, with what the
/// loader checks beyond types that a schema can say: a call has exactly one key.
pub fn bundle_schema() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(crate::target::bundle::BundleFile))
        .expect("a schema serialises");
    if let Some(call) = schema
        .pointer_mut("/$defs/RecordedCall")
        .and_then(|c| c.as_object_mut())
    {
        let keys: Vec<serde_json::Value> = crate::capability::Kind::ALL
            .iter()
            .map(|k| serde_json::json!({"required": [k.bundle_key()]}))
            .collect();
        call.insert("oneOf".into(), keys.into());
    }
    if let Some(error) = schema
        .pointer_mut("/$defs/RecordedError")
        .and_then(|c| c.as_object_mut())
    {
        error.insert(
            "oneOf".into(),
            serde_json::json!([{"required": ["failed"]}, {"required": ["timed_out"]}]),
        );
    }
    serde_json::to_string_pretty(&schema).expect("a schema serialises") + "\n"
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
        let name = &plugin.name;
        names.push(name.clone());
        let actions: Vec<&str> = plugin
            .manifest()
            .actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        rules.push(serde_json::json!({
            "if": {"properties": {"plugin": {"const": name}}, "required": ["plugin"]},
            "then": {"properties": {"action": {"enum": actions}}},
        }));
        for action in &plugin.manifest().actions {
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
