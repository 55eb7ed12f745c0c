//! `triage probe PLUGIN ACTION --with NAME=VALUE…`: one plugin action on one target, its
//! facts printed as JSON. For whoever writes a plugin (does my action work on this bundle?)
//! or a runbook (which facts will my conditions see?).
//!
//! It is a one-step runbook run by the engine, so the call gets what a runbook's step gets:
//! the same param check against the action's schema, the operator policy, the sandbox
//! limits, the capability log, and recording with `--record`.

use super::{Cli, CliResult, Failure, OrExit};
use crate::capability::Policy;
use crate::capability::{CapabilityUse, PluginLog};
use crate::engine::inputs;
use crate::engine::{self, RunOptions};
use crate::redact::Redactor;
use crate::report::StepStatus;
use crate::runtime::Runtime;
use crate::target::{Spec, Target};
use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The plugin (`triage plugins` lists them).
    plugin: String,
    /// One of its actions.
    action: String,
    /// A param, NAME=VALUE (repeatable); the value reads as YAML, so 300 is a number and
    /// [80, 443] a list, as in a runbook's `with:`.
    #[arg(long = "with", short = 'w', value_name = "NAME=VALUE", value_parser = inputs::parse_pair)]
    with: Vec<(String, String)>,
    /// Replay a recorded bundle instead of probing this machine.
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    bundle: Option<PathBuf>,
    /// Where to probe: `local` (the default), `ssh://…`, `gcloud://…` or `kubectl://…`.
    #[arg(long)]
    target: Option<String>,
    /// Record the action's capability calls into a new bundle directory (test data for a
    /// plugin or a runbook case).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &ProbeArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let policy = Arc::new(super::load_policy(cli)?);
    let redact = super::load_redactor(cli)?;
    let spec = match (&args.bundle, &args.target) {
        (Some(dir), _) => Spec::bundle(dir),
        (None, Some(target)) => Spec::parse(target),
        (None, None) => Ok(Spec::Local),
    };
    let base = spec.or_usage()?.open().or_usage()?;
    let (target, recorder) =
        super::record::recording(base, args.record.as_deref(), redact.clone())?;
    let mut params = serde_json::Map::new();
    for (name, value) in &args.with {
        if params.insert(name.clone(), param_value(value)).is_some() {
            return Err(Failure::usage(format!("--with {name}: given twice")));
        }
    }
    let outcome = super::tokio_runtime()?
        .block_on(probe(
            &runtime,
            policy,
            redact,
            target,
            &args.plugin,
            &args.action,
            params,
        ))
        .or_usage()?;
    let text = serde_json::to_string_pretty(&outcome).or_run()?;
    println!("{text}");
    if let (Some(recorder), Some(dir)) = (&recorder, &args.record) {
        super::record::write_recording(recorder, dir)?;
    }
    // Like a run: 3 when the step errored (the facts could not be gathered).
    Ok(if outcome.status == "passed" { 0 } else { 3 })
}

/// What `triage probe` prints.
#[derive(Debug, Serialize)]
pub struct ProbeOutcome {
    pub plugin: String,
    pub action: String,
    pub params: Map<String, Value>,
    /// `passed` or `errored`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub facts: Value,
    pub capabilities: Vec<CapabilityUse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<PluginLog>,
    pub duration_ms: u64,
}

/// A `--with` value: YAML, so `300` is a number, `true` a boolean and `[a, b]` a list, as
/// they would be in a runbook's `with:`; anything else is the text as given.
pub fn param_value(text: &str) -> Value {
    serde_yaml::from_str::<Value>(text)
        .ok()
        .filter(|v| !v.is_null() || text.trim() == "null")
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// Checks the plugin, the action and the params, then runs the action once. `Err` is a
/// one-line usage error (unknown plugin or action, params the action refuses).
pub async fn probe(
    runtime: &Runtime,
    policy: Arc<Policy>,
    redact: Arc<Redactor>,
    target: Arc<dyn Target>,
    plugin: &str,
    action: &str,
    params: Map<String, Value>,
) -> anyhow::Result<ProbeOutcome> {
    let loaded = runtime.plugin(plugin).ok_or_else(|| {
        let names: Vec<&str> = runtime.plugins().map(|p| p.name.as_str()).collect();
        anyhow::anyhow!("no plugin `{plugin}` (there are: {})", names.join(", "))
    })?;
    if !loaded.manifest().actions.iter().any(|a| a.name == action) {
        let actions: Vec<&str> = loaded
            .manifest()
            .actions
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        anyhow::bail!(
            "plugin `{plugin}` has no action `{action}` (it has: {})",
            actions.join(", ")
        );
    }
    // JSON is YAML: the runbook is written as JSON, so no value needs quoting rules.
    let runbook = json!({
        "apiVersion": "triage/v1",
        "id": "probe",
        "title": format!("{plugin} {action}"),
        "steps": [{
            "id": "probe",
            "title": format!("{plugin} {action}"),
            "probe": {"plugin": plugin, "action": action, "with": params},
        }],
    });
    let loaded_runbook = crate::runbook::load_str(&runbook.to_string(), "--with", runtime)
        .map_err(|errors| {
            // The location is in a runbook the user never wrote; the message is what counts.
            errors
                .0
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .map_err(anyhow::Error::msg)?;
    let report = engine::run(
        &loaded_runbook,
        runtime,
        RunOptions {
            inputs: Map::new(),
            answers: Default::default(),
            target,
            policy,
            on_step: None,
            interaction: None,
            redact,
        },
    )
    .await;
    let step = report
        .steps
        .into_iter()
        .next()
        .context("the probe step did not run (a bug in triage)")?;
    // The probe step declares no findings or unknowns: it either got facts or errored.
    let passed = step.status != StepStatus::Errored;
    Ok(ProbeOutcome {
        plugin: plugin.to_string(),
        action: action.to_string(),
        params,
        status: if passed { "passed" } else { "errored" },
        error: if passed { None } else { step.reason },
        facts: step.output.unwrap_or(Value::Null),
        capabilities: step.capabilities,
        logs: step.logs,
        duration_ms: step.duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_values_read_as_a_runbook_would() {
        assert_eq!(param_value("300"), json!(300));
        assert_eq!(param_value("true"), json!(true));
        assert_eq!(param_value("[80, 443]"), json!([80, 443]));
        assert_eq!(
            param_value("http://localhost:15000"),
            json!("http://localhost:15000")
        );
        assert_eq!(param_value("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(param_value(""), json!(""));
        assert_eq!(param_value("null"), Value::Null);
        assert_eq!(param_value("{unclosed"), json!("{unclosed"));
    }
}
