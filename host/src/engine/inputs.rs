//! `--input NAME=VALUE` and `--answer STEP=VALUE`, checked against the runbook before
//! anything runs.

use crate::runbook::{InputPattern, InputSpec, InputType, Runbook};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Splits `NAME=VALUE`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}

/// Turns the given inputs (`--input NAME=VALUE` text) into typed values with defaults
/// applied. Unknown names, bad values and missing required inputs are errors.
pub fn resolve(
    runbook: &Runbook,
    given: &[(String, String)],
) -> Result<Map<String, Value>, String> {
    typed(
        runbook,
        given.iter().map(|(name, raw)| (name, Given::Text(raw))),
    )
}

/// [`resolve`] for inputs already typed as JSON (the server's API): strings, numbers,
/// booleans, and lists of them for list inputs. Text is read as the command line reads it,
/// so `"80"` is a good integer and `"a,b"` a good list; nothing is joined into text to be
/// split again.
pub fn resolve_json(
    runbook: &Runbook,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    typed(
        runbook,
        given.iter().map(|(name, value)| (name, Given::Json(value))),
    )
}

/// A value as a front end has it.
enum Given<'a> {
    /// From a command line (`--input`, a chat command).
    Text(&'a str),
    /// From JSON (the HTTP API).
    Json(&'a Value),
}

/// Every given value typed by its input's spec, then the defaults of the others.
fn typed<'a>(
    runbook: &Runbook,
    given: impl Iterator<Item = (&'a String, Given<'a>)>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, value) in given {
        let spec = spec_of(runbook, name)?;
        let value = match value {
            Given::Text(raw) => from_text(name, spec.kind, raw)?,
            Given::Json(value) => from_json(name, spec.kind, value)?,
        };
        if let Some(pattern) = &spec.pattern {
            check_pattern(name, pattern, &value)?;
        }
        out.insert(name.clone(), value);
    }
    with_defaults(runbook, out)
}

fn from_json(name: &str, kind: InputType, value: &Value) -> Result<Value, String> {
    match (kind, value) {
        (InputType::List, Value::Array(items)) => Ok(Value::Array(
            items
                .iter()
                .map(|item| scalar_text(name, item).map(Value::String))
                .collect::<Result<_, _>>()?,
        )),
        (_, Value::Array(_)) => Err(format!("input `{name}` takes one value, not a list")),
        (InputType::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
        (InputType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (kind, other) => from_text(name, kind, &scalar_text(name, other)?),
    }
}

fn spec_of<'a>(runbook: &'a Runbook, name: &str) -> Result<&'a InputSpec, String> {
    runbook.inputs.get(name).ok_or_else(|| {
        let known: Vec<&str> = runbook.inputs.keys().map(String::as_str).collect();
        format!(
            "runbook `{}` has no input `{name}`{}",
            runbook.id,
            if known.is_empty() {
                String::new()
            } else {
                format!(" (it takes: {})", known.join(", "))
            }
        )
    })
}

/// A JSON scalar as the text a command line would give.
fn scalar_text(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "input `{name}`: give a string, number, boolean or a list of them"
        )),
    }
}

fn from_text(name: &str, kind: InputType, raw: &str) -> Result<Value, String> {
    Ok(match kind {
        InputType::String => Value::String(raw.to_string()),
        InputType::Integer => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("input `{name}` must be an integer, got `{raw}`"))?,
        InputType::Boolean => match raw.trim() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(format!("input `{name}` must be true or false, got `{raw}`")),
        },
        InputType::List => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.into()))
                .collect(),
        ),
    })
}

/// One given value checked alone: the input exists, the value fits its type and pattern.
/// A case file checks each of its inputs so, to place each error at its own line.
pub fn check_one(runbook: &Runbook, name: &str, raw: &str) -> Result<(), String> {
    let spec = spec_of(runbook, name)?;
    let value = from_text(name, spec.kind, raw)?;
    match &spec.pattern {
        Some(pattern) => check_pattern(name, pattern, &value),
        None => Ok(()),
    }
}

/// The required inputs without a default that `given` lacks.
pub fn missing_required<'a>(
    runbook: &'a Runbook,
    given: &BTreeMap<String, Value>,
) -> Vec<(&'a str, &'a InputSpec)> {
    runbook
        .inputs
        .iter()
        .filter(|(name, spec)| {
            spec.required && spec.default.is_none() && !given.contains_key(*name)
        })
        .map(|(name, spec)| (name.as_str(), spec))
        .collect()
}

/// Adds the defaults of inputs not given; a required input not given is an error.
fn with_defaults(
    runbook: &Runbook,
    mut out: Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    for (name, spec) in &runbook.inputs {
        if out.contains_key(name) {
            continue;
        }
        if let Some(d) = &spec.default {
            out.insert(name.clone(), d.clone());
        } else if spec.required {
            return Err(format!(
                "runbook `{}` needs input `{name}`{}: pass --input {name}=VALUE",
                runbook.id,
                spec.description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(out)
}

/// A given value (each item of a list) against the input's declared pattern. The value is
/// shown escaped and cut short, so that the error stays one line whatever was sent.
fn check_pattern(name: &str, pattern: &InputPattern, value: &Value) -> Result<(), String> {
    let items: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for item in items {
        if let Err(why) = pattern.check(item) {
            return Err(format!("input `{name}`: {} {why}", quoted(item)));
        }
    }
    Ok(())
}

/// `"value"` with control characters escaped, at most 80 characters of it.
pub fn quoted(value: &str) -> String {
    const MAX: usize = 80;
    let mut shown: String = value.chars().take(MAX).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// Checks `--answer` values: the step exists, is an ask step, and the answer is a choice.
pub fn check_answers(runbook: &Runbook, answers: &BTreeMap<String, String>) -> Result<(), String> {
    for (step_id, answer) in answers {
        let Some(step) = runbook.steps.iter().find(|s| s.id.as_str() == step_id) else {
            return Err(format!(
                "--answer {step_id}=…: runbook `{}` has no step `{step_id}`",
                runbook.id
            ));
        };
        let Some(ask) = &step.ask else {
            return Err(format!(
                "--answer {step_id}=…: step `{step_id}` is not an ask step"
            ));
        };
        if !ask.choices.iter().any(|c| c == answer) {
            return Err(format!(
                "--answer {step_id}={answer}: not one of the choices ({})",
                ask.choices.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runbook() -> Runbook {
        serde_yaml::from_str(
            "apiVersion: triage/v1\nid: rb\ntitle: t\n\
             inputs:\n  vip: {}\n  port: {type: integer}\n  ports: {type: list}\n  on: {type: boolean}\n\
             steps: []\n",
        )
        .unwrap()
    }

    #[test]
    fn json_inputs_are_typed_without_a_detour_through_text() {
        let Value::Object(given) = json!({
            "vip": "10.0.0.1", "port": 80, "ports": [80, "443", "a,b"], "on": true
        }) else {
            unreachable!()
        };
        let typed = resolve_json(&runbook(), &given).unwrap();
        assert_eq!(typed["port"], 80);
        // A list element stays whole: a comma in it is not a separator.
        assert_eq!(typed["ports"], json!(["80", "443", "a,b"]));
        assert_eq!(typed["on"], true);
        // Text is read as the command line reads it.
        let Value::Object(text) = json!({"port": "8080", "ports": "1, 2", "on": "no"}) else {
            unreachable!()
        };
        let typed = resolve_json(&runbook(), &text).unwrap();
        assert_eq!(
            (&typed["port"], &typed["ports"], &typed["on"]),
            (&json!(8080), &json!(["1", "2"]), &json!(false))
        );
        for (bad, says) in [
            (json!({"x": 1}), "has no input `x`"),
            (json!({"vip": {"a": 1}}), "input `vip`: give a string"),
            (json!({"vip": ["a", "b"]}), "takes one value, not a list"),
            (json!({"port": 1.5}), "must be an integer"),
            (json!({"ports": [[1]]}), "input `ports`: give a string"),
        ] {
            let Value::Object(bad) = bad else {
                unreachable!()
            };
            let err = resolve_json(&runbook(), &bad).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
