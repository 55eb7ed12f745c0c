//! `--input NAME=VALUE` and `--answer STEP=VALUE`, checked against the runbook before
//! anything runs.

use crate::runbook::{InputType, Runbook};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Splits `NAME=VALUE`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}`: expected NAME=VALUE")),
    }
}

/// Turns the given inputs into typed values with defaults applied. Unknown names, bad
/// values and missing required inputs are errors.
pub fn resolve(
    runbook: &Runbook,
    given: &[(String, String)],
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, raw) in given {
        let Some(spec) = runbook.inputs.get(name) else {
            let known: Vec<&str> = runbook.inputs.keys().map(String::as_str).collect();
            return Err(format!(
                "runbook `{}` has no input `{name}`{}",
                runbook.id,
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (it takes: {})", known.join(", "))
                }
            ));
        };
        let value = match spec.kind {
            InputType::String => Value::String(raw.clone()),
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
        };
        out.insert(name.clone(), value);
    }
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
