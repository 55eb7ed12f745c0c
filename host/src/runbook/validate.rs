//! The checks that run after deserialisation, each error pointing at its node.

use super::model::*;
use super::source_map::SourceMap;
use super::{LoadError, LoadErrors};
use crate::runtime::{ActionSpec, schema};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the loader needs to know about plugins.
pub trait PluginCatalog {
    /// The action's spec, or a one-line reason (unknown plugin or action, with what exists).
    fn action_spec(&self, plugin: &str, action: &str) -> Result<&ActionSpec, String>;
}

/// How a param value is produced at run time.
#[derive(Debug, Clone)]
pub enum ParamValue {
    Literal(Value),
    /// `{{ expr }}` alone: evaluated, keeping its type.
    Expression(String),
    /// Any other template: rendered to a string. Holds the template's name in the env.
    Template(String),
    Object(Vec<(String, ParamValue)>),
    Array(Vec<ParamValue>),
}

/// What the engine runs from: templates compiled into one environment, steps in an order
/// where every step comes after its needs, and the parsed timeouts.
pub struct Compiled {
    pub env: minijinja::Environment<'static>,
    pub order: Vec<usize>,
    pub timeouts: Vec<Duration>,
    pub params: Vec<Option<ParamValue>>,
}

/// The environment every expression and template is compiled and evaluated in.
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // A missing fact is falsy, however deep the lookup: `not output.chains.ISTIO_OUTPUT`.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_filter("shell_quote", |s: String| {
        crate::capability::shell_quote(&s)
    });
    env
}

/// Names an expression may start with.
const ROOTS: &[&str] = &[
    "inputs", "steps", "output", "answers", "answer", "status", "target",
];

struct Checker<'a> {
    map: &'a SourceMap,
    file: &'a str,
    errors: Vec<LoadError>,
    known: &'a Known,
}

/// Step ids and input names the file has besides those of the runbook being checked: when
/// a broken step or input was taken out to check the rest (yaml/collect.rs), references to
/// it are not errors of their own.
#[derive(Debug, Default)]
pub struct Known {
    steps: HashSet<String>,
    inputs: HashSet<String>,
}

impl Known {
    /// The step ids and input names written in a document, whether or not they deserialise.
    pub fn of(doc: &serde_yaml::Value) -> Known {
        let steps = doc
            .get("steps")
            .and_then(serde_yaml::Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("id").and_then(serde_yaml::Value::as_str))
            .map(str::to_string)
            .collect();
        let inputs = doc
            .get("inputs")
            .and_then(serde_yaml::Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(serde_yaml::Value::as_str)
            .map(str::to_string)
            .collect();
        Known { steps, inputs }
    }
}

impl Checker<'_> {
    fn at(&mut self, path: &str, message: impl Into<String>) {
        let (line, column) = self.map.value(path);
        self.errors.push(LoadError {
            file: self.file.into(),
            line,
            column,
            message: message.into(),
        });
    }
}

pub fn validate(
    runbook: &Runbook,
    map: &SourceMap,
    file: &str,
    plugins: &dyn PluginCatalog,
) -> Result<Compiled, LoadErrors> {
    validate_with(runbook, map, file, plugins, &Known::default())
}

/// [`validate`], with step ids and input names that exist elsewhere in the file.
pub fn validate_with(
    runbook: &Runbook,
    map: &SourceMap,
    file: &str,
    plugins: &dyn PluginCatalog,
    known: &Known,
) -> Result<Compiled, LoadErrors> {
    let mut c = Checker {
        map,
        file,
        errors: Vec::new(),
        known,
    };
    let steps = &runbook.steps;
    if steps.is_empty() && known.steps.is_empty() {
        c.at("steps", "a runbook needs at least one step");
    }

    // Ids: steps unique, findings unique across the runbook.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut finding_ids: HashMap<&str, usize> = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(first) = index.insert(step.id.as_str(), i) {
            index.insert(step.id.as_str(), first);
            c.at(
                &format!("steps.{i}.id"),
                format!(
                    "duplicate step id `{}` (first used by steps[{first}])",
                    step.id
                ),
            );
        }
        for (j, f) in step.findings.iter().enumerate() {
            if let Some(first) = finding_ids.insert(f.id.as_str(), i) {
                c.at(
                    &format!("steps.{i}.findings.{j}.id"),
                    format!(
                        "duplicate finding id `{}` (already used in step `{}`)",
                        f.id, steps[first].id
                    ),
                );
            }
        }
    }

    // Needs and after: known, not self.
    for (i, step) in steps.iter().enumerate() {
        for (field, list) in [("needs", &step.needs), ("after", &step.after)] {
            for (k, need) in list.iter().enumerate() {
                let path = format!("steps.{i}.{field}.{k}");
                if need == &step.id {
                    c.at(&path, format!("step `{}` {field} itself", step.id));
                } else if !index.contains_key(need.as_str())
                    && !c.known.steps.contains(need.as_str())
                {
                    let hint = suggest(need.as_str(), index.keys().copied());
                    c.at(&path, format!("unknown step `{need}` in {field}{hint}"));
                }
            }
        }
    }

    let order = match topological_order(steps, &index) {
        Ok(order) => order,
        Err(cycle) => {
            let names: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
            c.at(
                &format!("steps.{}.needs", cycle[0]),
                format!("dependency cycle: {}", names.join(" → ")),
            );
            (0..steps.len()).collect()
        }
    };
    let ancestors = ancestors(steps, &index);

    // Inputs' defaults fit their types.
    for (name, spec) in &runbook.inputs {
        if let Some(d) = &spec.default {
            let ok = match spec.kind {
                InputType::String => d.is_string() || d.is_number() || d.is_boolean(),
                InputType::Integer => d.is_i64() || d.is_u64(),
                InputType::Boolean => d.is_boolean(),
                InputType::List => d.is_array(),
            };
            if !ok {
                c.at(
                    &format!("inputs.{name}.default"),
                    format!("default of input `{name}` does not fit its type"),
                );
            }
        }
        // A pattern is about text: a string, or each item of a list.
        if let Some(pattern) = &spec.pattern {
            if matches!(spec.kind, InputType::Integer | InputType::Boolean) {
                c.at(
                    &format!("inputs.{name}.pattern"),
                    format!(
                        "input `{name}` is a{} {}: a pattern applies to string and list inputs",
                        if spec.kind == InputType::Integer {
                            "n"
                        } else {
                            ""
                        },
                        match spec.kind {
                            InputType::Integer => "integer",
                            _ => "boolean",
                        }
                    ),
                );
            }
            let defaults: Vec<&str> = match &spec.default {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for d in defaults {
                if let Err(why) = pattern.check(d) {
                    c.at(
                        &format!("inputs.{name}.default"),
                        format!("default of input `{name}` {:?} {why}", d),
                    );
                }
            }
        }
    }

    let mut env = environment();
    let mut timeouts = Vec::with_capacity(steps.len());
    let mut params = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let base = format!("steps.{i}");
        let scope = Scope {
            runbook,
            index: &index,
            ancestors: &ancestors[i],
            this: i,
        };

        if step.probe.is_some() && step.ask.is_some() {
            c.at(
                &base,
                format!(
                    "step `{}` has both probe and ask; a step does one thing",
                    step.id
                ),
            );
        }
        if let Some(ask) = &step.ask
            && ask.choices.is_empty()
        {
            c.at(
                &format!("{base}.ask.choices"),
                "an ask needs at least one choice",
            );
        }
        timeouts.push(match &step.timeout {
            None => DEFAULT_STEP_TIMEOUT,
            Some(t) => parse_duration(t).unwrap_or_else(|| {
                c.at(
                    &format!("{base}.timeout"),
                    format!("bad timeout `{t}`: write e.g. 30s, 500ms or 2m"),
                );
                DEFAULT_STEP_TIMEOUT
            }),
        });
        if let Some(when) = &step.when {
            check_expression(&mut c, &env, &format!("{base}.when"), when, &scope);
        }
        for (j, f) in step.findings.iter().enumerate() {
            let fb = format!("{base}.findings.{j}");
            check_expression(&mut c, &env, &format!("{fb}.when"), &f.when, &scope);
            let texts = [
                ("title", Some(&f.title)),
                ("detail", f.detail.as_ref()),
                ("fix", f.fix.as_ref()),
                ("evidence", f.evidence.as_ref()),
            ];
            for (field, text) in texts {
                if let Some(text) = text {
                    add_template(&mut c, &mut env, &format!("{fb}.{field}"), text, &scope);
                }
            }
        }
        for (k, u) in step.unknown.iter().enumerate() {
            let ub = format!("{base}.unknown.{k}");
            check_expression(&mut c, &env, &format!("{ub}.when"), &u.when, &scope);
            add_template(&mut c, &mut env, &format!("{ub}.reason"), &u.reason, &scope);
        }
        params.push(step.probe.as_ref().map(|probe| {
            let with_path = format!("{base}.probe.with");
            let compiled = compile_params(
                &mut c,
                &mut env,
                &with_path,
                &Value::Object(probe.with.clone()),
                &scope,
            );
            match plugins.action_spec(&probe.plugin, &probe.action) {
                Err(why) => {
                    let field = if why.starts_with("unknown plugin") {
                        "plugin"
                    } else {
                        "action"
                    };
                    c.at(&format!("{base}.probe.{field}"), why);
                }
                Ok(spec) => check_params(&mut c, &with_path, &probe.with, spec),
            }
            compiled
        }));
    }

    if c.errors.is_empty() {
        Ok(Compiled {
            env,
            order,
            timeouts,
            params,
        })
    } else {
        c.errors.sort_by_key(|e| (e.line, e.column));
        Err(LoadErrors(c.errors))
    }
}

/// What an expression in step `this` may refer to.
struct Scope<'a> {
    runbook: &'a Runbook,
    index: &'a HashMap<&'a str, usize>,
    ancestors: &'a BTreeSet<usize>,
    this: usize,
}

fn check_references(c: &mut Checker, path: &str, names: HashSet<String>, scope: &Scope) {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    for name in names {
        let mut parts = name.split('.');
        let root = parts.next().unwrap_or("");
        let second = parts.next();
        match root {
            "inputs" => {
                if let Some(input) = second
                    && !scope.runbook.inputs.contains_key(input)
                    && !c.known.inputs.contains(input)
                {
                    c.at(
                        path,
                        format!(
                            "unknown input `{input}`{}",
                            suggest(input, scope.runbook.inputs.keys().map(String::as_str))
                        ),
                    );
                }
            }
            "steps" | "answers" => {
                if let Some(step) = second {
                    match scope.index.get(step) {
                        None if c.known.steps.contains(step) => {}
                        None => c.at(path, format!("unknown step `{step}` in `{name}`{}", suggest(step, scope.index.keys().copied()))),
                        Some(&i) if i != scope.this && !scope.ancestors.contains(&i) => c.at(
                            path,
                            format!("`{root}.{step}` is used but `{step}` is not among the needs of step `{}` (add it to needs, or to after)", scope.runbook.steps[scope.this].id),
                        ),
                        Some(&i) if root == "answers" && scope.runbook.steps[i].ask.is_none() => {
                            c.at(path, format!("`answers.{step}`: step `{step}` is not an ask step"))
                        }
                        _ => {}
                    }
                }
            }
            r if ROOTS.contains(&r) => {}
            other => c.at(
                path,
                format!(
                    "unknown variable `{other}`; expressions see {}",
                    ROOTS.join(", ")
                ),
            ),
        }
    }
}

fn minijinja_message(e: &minijinja::Error) -> String {
    let kind = format!("{:?}", e.kind());
    match e.detail() {
        Some(d) => format!("{d} ({kind})"),
        None => e.to_string(),
    }
}

fn check_expression(
    c: &mut Checker,
    env: &minijinja::Environment<'static>,
    path: &str,
    expr: &str,
    scope: &Scope,
) {
    if let Some(delimiter) = template_delimiter(expr) {
        c.at(
            path,
            format!(
                "bad expression `{expr}`: it holds the template delimiter `{delimiter}`; a condition is a bare expression (`inputs.vip`, not `{{{{ inputs.vip }}}}`)"
            ),
        );
        return;
    }
    match env.compile_expression(expr) {
        Ok(e) => {
            let vars = e.undeclared_variables(true);
            check_references(c, path, vars, scope);
        }
        Err(e) => c.at(
            path,
            format!("bad expression `{expr}`: {}", minijinja_message(&e)),
        ),
    }
}

fn add_template(
    c: &mut Checker,
    env: &mut minijinja::Environment<'static>,
    name: &str,
    text: &str,
    scope: &Scope,
) {
    match env.add_template_owned(name.to_string(), text.to_string()) {
        Ok(()) => {
            if let Ok(t) = env.get_template(name) {
                let vars = t.undeclared_variables(true);
                check_references(c, name, vars, scope);
            }
        }
        Err(e) => c.at(name, format!("bad template: {}", minijinja_message(&e))),
    }
}

/// The first template delimiter in an expression, if any. An expression is never a
/// template, and minijinja's lexer panics on some (`a }} b`: "empty lexer stack"), so they
/// are refused before it sees them; inside a string literal too, which costs nothing real.
pub fn template_delimiter(expr: &str) -> Option<&'static str> {
    ["{{", "}}", "{%", "%}", "{#", "#}"]
        .into_iter()
        .find(|d| expr.contains(d))
}

/// `{{ expr }}` and nothing else around it.
fn lone_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

fn compile_params(
    c: &mut Checker,
    env: &mut minijinja::Environment<'static>,
    path: &str,
    value: &Value,
    scope: &Scope,
) -> ParamValue {
    match value {
        Value::String(s) if is_template(s) => match lone_expression(s) {
            Some(expr) => {
                check_expression(c, env, path, expr, scope);
                ParamValue::Expression(expr.to_string())
            }
            None => {
                add_template(c, env, path, s, scope);
                ParamValue::Template(path.to_string())
            }
        },
        Value::Object(m) => ParamValue::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        compile_params(c, env, &format!("{path}.{k}"), v, scope),
                    )
                })
                .collect(),
        ),
        Value::Array(a) => ParamValue::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| compile_params(c, env, &format!("{path}.{i}"), v, scope))
                .collect(),
        ),
        other => ParamValue::Literal(other.clone()),
    }
}

fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(m) => m.values().any(contains_template),
        _ => false,
    }
}

/// Checks the literal params now; templated ones can only be checked when rendered, but
/// their names must still be known params.
fn check_params(
    c: &mut Checker,
    path: &str,
    with: &serde_json::Map<String, Value>,
    spec: &ActionSpec,
) {
    let mut schema = spec.params_schema.clone();
    let mut literal = serde_json::Map::new();
    let mut templated = Vec::new();
    for (k, v) in with {
        if contains_template(v) {
            templated.push(k.clone());
        } else {
            literal.insert(k.clone(), v.clone());
        }
    }
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for k in &templated {
            if let Some(p) = props.get_mut(k) {
                *p = Value::Bool(true);
            }
        }
    }
    for k in &templated {
        literal.insert(k.clone(), Value::Null);
    }
    if let Err(e) = schema::validate(&schema, &Value::Object(literal), "with") {
        // Point at the offending param when the message names one.
        let key = e
            .strip_prefix("with.")
            .and_then(|rest| rest.split([':', '.', '[']).next())
            .unwrap_or("");
        let at = if key.is_empty() || !with.contains_key(key) {
            match e.find("unknown param `") {
                Some(i) => {
                    let name = e[i + 15..].split('`').next().unwrap_or("");
                    format!("{path}.{name}")
                }
                None => path.to_string(),
            }
        } else {
            format!("{path}.{key}")
        };
        c.at(
            &at,
            format!("params do not match action `{}`: {e}", spec.name),
        );
    }
}

/// Kahn's algorithm in file order, so independent steps keep the order they were written
/// in. On a cycle, returns the circle found by walking needs from a step left over.
fn topological_order(
    steps: &[Step],
    index: &HashMap<&str, usize>,
) -> Result<Vec<usize>, Vec<usize>> {
    let needs: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            s.needs
                .iter()
                .chain(&s.after)
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        })
        .collect();
    let mut done = vec![false; steps.len()];
    let mut order = Vec::with_capacity(steps.len());
    loop {
        let ready: Vec<usize> = (0..steps.len())
            .filter(|&i| !done[i] && needs[i].iter().all(|&n| done[n] || n == i))
            .collect();
        if ready.is_empty() {
            break;
        }
        for i in ready {
            done[i] = true;
            order.push(i);
        }
    }
    if order.len() == steps.len() {
        return Ok(order);
    }
    // Walk needs from any step left until a step repeats: that is the circle.
    let start = (0..steps.len()).find(|&i| !done[i]).unwrap_or(0);
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = needs[current].iter().find(|&&n| !done[n]) else {
            return Err(path);
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut circle = path[pos..].to_vec();
            circle.push(next);
            return Err(circle);
        }
        path.push(next);
        current = next;
    }
}

/// For each step, every step it needs directly or indirectly.
fn ancestors(steps: &[Step], index: &HashMap<&str, usize>) -> Vec<BTreeSet<usize>> {
    (0..steps.len())
        .map(|i| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![i];
            while let Some(s) = todo.pop() {
                for n in steps[s].needs.iter().chain(&steps[s].after) {
                    if let Some(&j) = index.get(n.as_str())
                        && seen.insert(j)
                    {
                        todo.push(j);
                    }
                }
            }
            seen
        })
        .collect()
}

/// " (did you mean `x`?)" when a known name is close.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let best = known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min();
    match best {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = if ca == *cb { 0 } else { 1 };
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoPlugins;
    impl PluginCatalog for NoPlugins {
        fn action_spec(&self, plugin: &str, action: &str) -> Result<&ActionSpec, String> {
            Err(format!("unknown plugin action `{plugin}` `{action}`"))
        }
    }

    /// The runbook_loader fuzz target's find: `a }} b` as a condition panicked minijinja.
    #[test]
    fn conditions_with_template_delimiters_are_located_errors_not_panics() {
        for when in [
            "inputs.a }} b",
            "{{ inputs.a }}",
            "inputs.a %} b",
            "{# c #} inputs.a",
            "x or {%",
        ] {
            let text = format!(
                "apiVersion: triage/v1\nid: d\ntitle: D\nsteps:\n  - id: s\n    title: S\n    when: {when:?}\n    ask: {{prompt: \"?\", choices: [yes, no]}}\n"
            );
            let err = crate::runbook::load_str(&text, "d.yaml", &NoPlugins)
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("d.yaml:7:"), "{when}: {err}");
            assert!(err.contains("template delimiter"), "{when}: {err}");
            assert_eq!(err.lines().count(), 1, "{when}: {err}");
        }
    }
}
