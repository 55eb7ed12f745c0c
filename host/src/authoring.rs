//! Tools for runbook and plugin authors: the JSON Schema of runbooks, the DAG as a
//! picture, and scaffolds that work from the first command.

use crate::runbook::{Runbook, Step};
use std::fmt::Write;
use std::path::{Path, PathBuf};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

fn node_label(step: &Step) -> String {
    let mut label = format!("{}: {}", step.id, step.title);
    if let Some(p) = &step.probe {
        let _ = write!(label, "\n{}/{}", p.plugin, p.action);
    }
    if let Some(a) = &step.ask {
        let _ = write!(label, "\nask: {}", a.choices.join(" | "));
    }
    for f in &step.findings {
        let _ = write!(label, "\n{} {}", f.severity.as_str(), f.id);
    }
    label
}

/// Draws the DAG: an edge from each need to the step, labelled with the step's `when`;
/// steps with a `when` and no needs hang off a `start` node so the condition is shown.
pub fn graph(runbook: &Runbook, format: GraphFormat) -> String {
    let mut edges: Vec<(String, String, Option<String>)> = Vec::new();
    // `after` edges only order steps; they are drawn dotted.
    let mut after_edges: Vec<(String, String)> = Vec::new();
    let mut uses_start = false;
    for step in &runbook.steps {
        for a in &step.after {
            after_edges.push((a.to_string(), step.id.to_string()));
        }
        if step.needs.is_empty() {
            if step.when.is_some() {
                uses_start = true;
                edges.push(("start".into(), step.id.to_string(), step.when.clone()));
            }
        } else {
            for need in &step.needs {
                edges.push((need.to_string(), step.id.to_string(), step.when.clone()));
            }
        }
    }
    let mut out = String::new();
    match format {
        GraphFormat::Mermaid => {
            // Mermaid ids may not hold `-`; labels carry the real ids.
            let id = |s: &str| s.replace('-', "_");
            let esc = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
            out.push_str("flowchart TD\n");
            if uses_start {
                out.push_str("    start((start))\n");
            }
            for step in &runbook.steps {
                let shape = if step.ask.is_some() {
                    ("{{", "}}")
                } else {
                    ("[", "]")
                };
                let _ = writeln!(
                    out,
                    "    {}{}\"{}\"{}",
                    id(step.id.as_str()),
                    shape.0,
                    esc(&node_label(step)),
                    shape.1
                );
            }
            for (from, to) in &after_edges {
                let _ = writeln!(out, "    {} -.->|after| {}", id(from), id(to));
            }
            for (from, to, when) in &edges {
                match when {
                    Some(w) => {
                        let _ = writeln!(out, "    {} -->|\"{}\"| {}", id(from), esc(w), id(to));
                    }
                    None => {
                        let _ = writeln!(out, "    {} --> {}", id(from), id(to));
                    }
                }
            }
        }
        GraphFormat::Dot => {
            let esc = |s: &str| {
                s.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            };
            let _ = writeln!(out, "digraph \"{}\" {{", esc(runbook.id.as_str()));
            out.push_str("    rankdir=TB;\n    node [shape=box, fontname=\"sans-serif\"];\n");
            if uses_start {
                out.push_str("    \"start\" [shape=circle];\n");
            }
            for step in &runbook.steps {
                let shape = if step.ask.is_some() {
                    ", shape=diamond"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    \"{}\" [label=\"{}\"{shape}];",
                    esc(step.id.as_str()),
                    esc(&node_label(step))
                );
            }
            for (from, to) in &after_edges {
                let _ = writeln!(
                    out,
                    "    \"{}\" -> \"{}\" [style=dotted, label=\"after\"];",
                    esc(from),
                    esc(to)
                );
            }
            for (from, to, when) in &edges {
                match when {
                    Some(w) => {
                        let _ = writeln!(
                            out,
                            "    \"{}\" -> \"{}\" [label=\"{}\"];",
                            esc(from),
                            esc(to),
                            esc(w)
                        );
                    }
                    None => {
                        let _ = writeln!(out, "    \"{}\" -> \"{}\";", esc(from), esc(to));
                    }
                }
            }
            out.push_str("}\n");
        }
    }
    out
}

fn write_new(path: &Path, text: &str) -> Result<(), String> {
    if path.exists() {
        return Err(format!(
            "{}: already exists; not overwriting it",
            path.display()
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    crate::cli::write_atomic(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Scaffolds `DIR/ID/runbook.yaml` with one step and a passing test case.
pub fn new_runbook(
    id: &str,
    dir: &Path,
    plugins: &crate::runtime::Runtime,
) -> Result<PathBuf, String> {
    crate::runbook::Id::try_from(id.to_string())?;
    let root = dir.join(id);
    let fill = |t: &str| t.replace("__ID__", id);
    write_new(
        &root.join("runbook.yaml"),
        &fill(include_str!("authoring/templates/runbook/runbook.yaml")),
    )?;
    // The modeline points editors at this; write it once per directory of runbooks.
    let schema = dir.join("runbook.schema.json");
    if !schema.exists() {
        write_new(&schema, &runbook_schema(plugins))?;
    }
    write_new(
        &root.join("tests/envoy-running/case.yaml"),
        &fill(include_str!(
            "authoring/templates/runbook/case-running.yaml"
        )),
    )?;
    write_new(
        &root.join("tests/envoy-running/bundle.yaml"),
        &fill(include_str!(
            "authoring/templates/runbook/bundle-running.yaml"
        )),
    )?;
    write_new(
        &root.join("tests/envoy-stopped/case.yaml"),
        &fill(include_str!(
            "authoring/templates/runbook/case-stopped.yaml"
        )),
    )?;
    write_new(
        &root.join("tests/envoy-stopped/bundle.yaml"),
        &fill(include_str!(
            "authoring/templates/runbook/bundle-stopped.yaml"
        )),
    )?;
    Ok(root)
}

/// Scaffolds a plugin crate `DIR/NAME` that builds for wasm32-wasip2 against the SDK.
/// Inside this repository's `plugins/` it joins the workspace; elsewhere it is its own
/// workspace and points at the SDK where triage was built from.
pub fn new_plugin(name: &str, dir: &Path) -> Result<PathBuf, String> {
    crate::runbook::Id::try_from(name.to_string())?;
    let root = dir.join(name);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let in_workspace = dir.canonicalize().ok() == repo.join("plugins").canonicalize().ok();
    let sdk = if in_workspace {
        "triage-sdk.workspace = true\nserde.workspace = true\nserde_json.workspace = true\nschemars.workspace = true".to_string()
    } else {
        format!(
            "triage-sdk = {{ path = {:?} }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\nschemars = \"1.2\"",
            repo.join("sdk").display().to_string()
        )
    };
    let standalone = if in_workspace {
        ""
    } else {
        "\n# Its own workspace, so it builds wherever it is.\n[workspace]\n"
    };
    let package = if in_workspace {
        "version.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrust-version.workspace = true".to_string()
    } else {
        "version = \"0.1.0\"\nedition = \"2024\"".to_string()
    };
    let fill = |t: &str| {
        t.replace("__NAME__", name)
            .replace("__CRATE__", &name.replace('-', "_"))
            .replace("__PACKAGE__", &package)
            .replace("__DEPS__", &sdk)
            .replace("__WORKSPACE__", standalone)
    };
    write_new(
        &root.join("Cargo.toml"),
        &fill(include_str!("authoring/templates/plugin/Cargo.toml.txt")),
    )?;
    write_new(
        &root.join("src/lib.rs"),
        &fill(include_str!("authoring/templates/plugin/lib.rs.txt")),
    )?;
    write_new(
        &root.join("README.md"),
        &fill(include_str!("authoring/templates/plugin/README.md")),
    )?;
    Ok(root)
}
