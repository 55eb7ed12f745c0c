//! `triage plugins [NAME [ACTION]]`: the plugins, their actions, and the capabilities each
//! action asks for; with a name, each action's params and the facts it returns, read from
//! the schemas the plugin declares (what a runbook author needs for `with:` and for
//! conditions over `output`).

use super::list::ListFormat;
use super::{Cli, CliResult, Failure};
use crate::report::human::terminal_safe;
use crate::runtime::{ActionSpec, Runtime};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct PluginsArgs {
    /// Show only this plugin, with each action's params and facts.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Show only this action of the plugin.
    #[arg(value_name = "ACTION", requires = "name")]
    pub action: Option<String>,
    /// text: a block per plugin; json: `{"schema": "triage.plugins/v1", "plugins": [...]}`
    /// with each action's params and facts as JSON Schemas.
    #[arg(long, short = 'o', value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

pub fn run(cli: &Cli, args: &PluginsArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let chosen = choose(&runtime, args)?;
    if args.format == ListFormat::Json {
        let plugins: Vec<Value> = chosen
            .iter()
            .map(|(p, actions)| {
                let m = p.manifest();
                serde_json::json!({
                    "name": m.name,
                    "version": m.version,
                    "sdk_version": m.sdk_version,
                    "origin": p.origin.to_string(),
                    "description": m.description,
                    "actions": actions.iter().map(|a| serde_json::json!({
                        "name": a.name,
                        "description": a.description,
                        "capabilities": a.capabilities.iter().map(|c| c.display(None)).collect::<Vec<_>>(),
                        "params": a.params_schema,
                        "facts": a.output_schema,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = serde_json::json!({"schema": "triage.plugins/v1", "plugins": plugins});
        println!("{doc:#}");
        return Ok(0);
    }
    let mut out = String::new();
    for (p, actions) in &chosen {
        let m = p.manifest();
        out.push_str(&format!(
            "{} {} ({}) — {}\n",
            m.name, m.version, p.origin, m.description
        ));
        for a in actions {
            if args.name.is_some() {
                out.push_str(&action_detail(a));
                continue;
            }
            out.push_str(&format!("  {:<22} {}\n", a.name, a.description));
            for c in &a.capabilities {
                out.push_str(&format!("  {:<22}   {}\n", "", c.display(None)));
            }
        }
    }
    // Names, descriptions and schemas come from plugin files, which are not trusted.
    print!("{}", terminal_safe(&out));
    Ok(0)
}

type Chosen<'a> = Vec<(&'a crate::runtime::LoadedPlugin, Vec<&'a ActionSpec>)>;

/// Every plugin with every action, or the one named (and its one action).
fn choose<'a>(runtime: &'a Runtime, args: &PluginsArgs) -> Result<Chosen<'a>, Failure> {
    let Some(name) = &args.name else {
        return Ok(runtime
            .plugins()
            .map(|p| (p, p.manifest().actions.iter().collect()))
            .collect());
    };
    let Some(plugin) = runtime.plugin(name) else {
        let names: Vec<String> = runtime.plugins().map(|p| p.name.clone()).collect();
        return Err(Failure::usage(format!(
            "unknown plugin `{}`{} (`triage plugins` lists them)",
            terminal_safe(name),
            crate::runbook::validate::suggest(name, names.iter().map(String::as_str))
        )));
    };
    let actions = match &args.action {
        None => plugin.manifest().actions.iter().collect(),
        Some(action) => {
            use crate::runbook::validate::PluginCatalog;
            let spec = runtime
                .action_spec(name, action)
                .map_err(|e| Failure::usage(terminal_safe(&e).into_owned()))?;
            vec![spec]
        }
    };
    Ok(vec![(plugin, actions)])
}

/// One action: what it does, what it may touch, its params and its facts.
fn action_detail(a: &ActionSpec) -> String {
    let mut out = format!("\naction {} — {}\n", a.name, a.description);
    if !a.capabilities.is_empty() {
        out.push_str("  may touch:\n");
        for c in &a.capabilities {
            out.push_str(&format!("    {}\n", c.display(None)));
        }
    }
    out.push_str("  params (`with:` in a runbook step, `--with NAME=VALUE` for `triage probe`):\n");
    let params = fields(&a.params_schema, &a.params_schema, "", 0);
    if params.is_empty() {
        out.push_str("    (none)\n");
    }
    let required: Vec<&str> = a
        .params_schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for f in &params {
        let mut kind = f.kind.clone();
        if required.contains(&f.path.as_str()) {
            kind.push_str(", required");
        }
        if let Some(d) = &f.default {
            kind.push_str(&format!(", default {d}"));
        }
        out.push_str(&line(&f.path, &kind, &f.about));
    }
    out.push_str(
        "  facts (`output.NAME` in this step's conditions, `steps.ID.output.NAME` after):\n",
    );
    let facts = fields(&a.output_schema, &a.output_schema, "", 0);
    if facts.is_empty() {
        out.push_str("    (none declared)\n");
    }
    for f in &facts {
        out.push_str(&line(&f.path, &f.kind, &f.about));
    }
    out
}

fn line(path: &str, kind: &str, about: &str) -> String {
    let mut s = format!("    {path:<28} {kind}\n");
    if !about.is_empty() {
        s.push_str(&format!("    {:<28}   {about}\n", ""));
    }
    s
}

/// A field of a schema, flattened: `chains.*.rules[].target`.
struct Field {
    path: String,
    kind: String,
    default: Option<String>,
    about: String,
}

/// How deep nested facts are listed; real plugins' facts are four or five levels deep.
const MAX_DEPTH: usize = 8;

/// The properties of `schema`, depth first, under `prefix`.
fn fields(root: &Value, schema: &Value, prefix: &str, depth: usize) -> Vec<Field> {
    let mut out = Vec::new();
    if depth > MAX_DEPTH {
        return out;
    }
    let schema = resolve(root, schema);
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, spec) in props {
            let path = join(name);
            let spec = resolve(root, spec);
            out.push(Field {
                path: path.clone(),
                kind: kind(root, spec),
                default: spec
                    .get("default")
                    .filter(|d| !d.is_null())
                    .map(Value::to_string),
                about: spec
                    .get("description")
                    .and_then(Value::as_str)
                    .and_then(|d| d.lines().next())
                    .unwrap_or_default()
                    .to_string(),
            });
            out.extend(nested(root, spec, &path, depth));
        }
    }
    out
}

/// The fields inside an object, a map (`NAME.*`) or a list (`NAME[]`).
fn nested(root: &Value, spec: &Value, path: &str, depth: usize) -> Vec<Field> {
    let mut out = fields(root, spec, path, depth + 1);
    // An optional object is `anyOf: [{object}, {null}]`.
    for alt in ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
    {
        out.extend(fields(root, alt, path, depth + 1));
    }
    if let Some(values) = spec.get("additionalProperties").filter(|v| v.is_object()) {
        out.extend(fields(root, values, &format!("{path}.*"), depth + 1));
    }
    if let Some(items) = spec.get("items").filter(|v| v.is_object()) {
        let items = resolve(root, items);
        out.extend(fields(root, items, &format!("{path}[]"), depth + 1));
        if let Some(values) = items.get("additionalProperties").filter(|v| v.is_object()) {
            out.extend(fields(root, values, &format!("{path}[].*"), depth + 1));
        }
    }
    out
}

/// A `$ref` within the same document (`#/definitions/X`, `#/$defs/X`), followed.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut at = schema;
    for _ in 0..MAX_DEPTH {
        match at.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(target) => at = target,
                None => break,
            },
            _ => break,
        }
    }
    at
}

/// `string`, `integer or null`, `one of nat|filter`, `list of string`, `map of object`.
fn kind(root: &Value, spec: &Value) -> String {
    let consts: Vec<String> = spec
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| {
            spec.get("oneOf")
                .and_then(Value::as_array)
                .and_then(|alts| {
                    alts.iter()
                        .map(|a| resolve(root, a).get("const").cloned())
                        .collect::<Option<Vec<_>>>()
                })
        })
        .unwrap_or_default()
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .collect();
    if !consts.is_empty() {
        return format!("one of {}", consts.join("|"));
    }
    let types: Vec<&str> = match spec.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut names: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "array" => {
                let item = spec
                    .get("items")
                    .map(|i| kind(root, resolve(root, i)))
                    .unwrap_or_else(|| "any".into());
                format!("list of {item}")
            }
            "object"
                if spec.get("properties").is_none()
                    && spec
                        .get("additionalProperties")
                        .is_some_and(Value::is_object) =>
            {
                let values = kind(root, resolve(root, &spec["additionalProperties"]));
                format!("map of {values}")
            }
            t => t.to_string(),
        })
        .collect();
    if names.is_empty() {
        if spec.get("anyOf").is_some() || spec.get("oneOf").is_some() {
            let alts = spec
                .get("anyOf")
                .or_else(|| spec.get("oneOf"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|a| kind(root, resolve(root, a)))
                .collect::<Vec<_>>();
            names = alts;
        } else {
            names.push("any".into());
        }
    }
    names.join(" or ")
}
