//! `triage doctor`: find out what can be probed (an Envoy process and its admin endpoint, a
//! metadata server, a Kubernetes cluster), run every runbook that applies with one set of
//! inputs, and merge their reports. Detection goes through plugins like any step, so it
//! works on bundles and remote targets too.
//!
//! Which runbooks apply is each runbook's own `applies:` (`always`, or what must have been
//! detected), so a team's runbooks in the user directories join by declaring it. The basic
//! checks (the Envoy process, interception, the traffic loop, the blackhole) say `always`:
//! Envoy being down is a finding, never a reason to skip quietly.

use super::{Cli, CliResult, Given, OrExit};
use crate::capability::Policy;
use crate::catalog;
use crate::engine::{self, RunOptions, inputs};
use crate::report::doctor::{Detected, DoctorReport, RunbookOutcome};
use crate::report::{Render, RenderOptions, StepStatus};
use crate::runbook::{self, Detection};
use crate::runtime::Runtime;
use crate::target::{Spec, Target};
use anyhow::Context;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) const DETECT: &str = include_str!("doctor-detect.yaml");

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Replay a recorded bundle instead of probing this machine.
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    bundle: Option<PathBuf>,
    /// Where to probe: `local` (the default), `ssh://[user@]host[:port]`,
    /// `gcloud://INSTANCE?zone=Z[&project=P]` or `kubectl://[namespace/]pod[/container]`.
    #[arg(long)]
    target: Option<String>,
    /// Record every capability call and answer (detection and every runbook) into a new
    /// bundle directory, which `--bundle` replays.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Also write the report to FILE (atomically), in the chosen format, without colour.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    given: Given,
}

pub fn run(cli: &Cli, args: &DoctorArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let policy = Arc::new(super::load_policy(cli)?);
    let redact = super::load_redactor(cli)?;
    let spec = match (&args.bundle, &args.target) {
        (Some(dir), _) => Spec::bundle(dir).or_usage()?,
        (None, Some(target)) => Spec::parse(target).or_usage()?,
        (None, None) => Spec::Local,
    };
    let base = spec.open().or_usage()?;
    let (target, recorder) =
        super::record::recording(base, args.record.as_deref(), redact.clone())?;
    let answers: BTreeMap<String, String> = args.given.answers.iter().cloned().collect();
    let report = super::tokio_runtime()?
        .block_on(doctor(
            &runtime,
            target,
            policy,
            redact,
            &args.given.inputs,
            &answers,
        ))
        .or_usage()?;
    if let (Some(recorder), Some(dir)) = (&recorder, &args.record) {
        super::record::write_recording(recorder, dir)?;
    }
    let options = RenderOptions {
        color: crate::report::human::use_color(std::io::stdout().is_terminal()),
        facts: false,
    };
    print!("{}", report.render(args.given.format, &options));
    if let Some(path) = &args.output {
        let plain = report.render(args.given.format, &RenderOptions::default());
        crate::files::write_atomic(path, plain.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
    }
    Ok(report.exit_code(args.given.fail_on.severity()))
}

/// Runs detection, then every runbook whose `applies:` holds. `given` are the operator's
/// inputs and `answers` the answers to ask steps; each runbook gets the ones it declares.
pub async fn doctor(
    runtime: &Runtime,
    target: Arc<dyn Target>,
    policy: Arc<Policy>,
    redact: Arc<crate::redact::Redactor>,
    given: &[(String, String)],
    answers: &BTreeMap<String, String>,
) -> anyhow::Result<DoctorReport> {
    let detect = runbook::load_str(DETECT, "built-in:doctor-detect", runtime)?;
    let detect_inputs = only_declared(&detect.runbook, given);
    let detect_inputs =
        inputs::resolve(&detect.runbook, &detect_inputs).map_err(anyhow::Error::msg)?;
    let detection = engine::run(
        &detect,
        runtime,
        RunOptions {
            inputs: detect_inputs,
            answers: BTreeMap::new(),
            target: target.clone(),
            policy: policy.clone(),
            on_step: None,
            interaction: None,
            redact: redact.clone(),
        },
    )
    .await;
    // A detection is a step of the detection runbook that passed: ran and saw its subject.
    let detected: Vec<Detection> = Detection::ALL
        .into_iter()
        .filter(|d| {
            detection
                .steps
                .iter()
                .any(|s| s.id == d.as_str() && s.status == StepStatus::Passed)
        })
        .collect();

    let mut runbooks = Vec::new();
    for (id, source) in catalog::runnable() {
        let loaded = match source.load(runtime) {
            Ok(loaded) => loaded,
            Err(errors) => {
                // A runbook that says it applies but does not load is a hole in the
                // diagnosis; one that does not say so is not doctor's to run.
                if declares_applies(&source) {
                    runbooks.push(not_run(&id, format!("does not load: {errors}"), true));
                }
                continue;
            }
        };
        let Some(applies) = &loaded.runbook.applies else {
            continue;
        };
        let missing = applies.missing(&detected);
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|d| d.as_str()).collect();
            runbooks.push(not_run(
                &id,
                format!("applies with {}, not detected", names.join(" and ")),
                false,
            ));
            continue;
        }
        let mine = only_declared(&loaded.runbook, given);
        let resolved = match inputs::resolve(&loaded.runbook, &mine) {
            Ok(i) => i,
            Err(why) => {
                runbooks.push(not_run(&id, why, false));
                continue;
            }
        };
        let mine_answers: BTreeMap<String, String> = answers
            .iter()
            .filter(|(step, _)| {
                loaded
                    .runbook
                    .steps
                    .iter()
                    .any(|s| s.id.as_str() == step.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let report = engine::run(
            &loaded,
            runtime,
            RunOptions {
                inputs: resolved,
                answers: mine_answers,
                target: target.clone(),
                policy: policy.clone(),
                on_step: None,
                interaction: None,
                redact: redact.clone(),
            },
        )
        .await;
        runbooks.push(RunbookOutcome {
            id,
            ran: true,
            reason: None,
            broken: false,
            report: Some(report),
        });
    }
    // What applies always comes first, then the rest in the catalogue's order.
    runbooks.sort_by_key(|r| !r.ran);
    let has = |d: Detection| detected.contains(&d);
    Ok(DoctorReport::new(
        target.name(),
        Detected {
            envoy_process: has(Detection::EnvoyProcess),
            envoy_admin: has(Detection::EnvoyAdmin),
            metadata_server: has(Detection::MetadataServer),
            kubernetes: has(Detection::Kubernetes),
        },
        detection,
        runbooks,
    ))
}

fn not_run(id: &str, reason: String, broken: bool) -> RunbookOutcome {
    RunbookOutcome {
        id: id.to_string(),
        ran: false,
        reason: Some(reason),
        broken,
        report: None,
    }
}

/// Whether a runbook that does not load has an `applies:` key at its top level.
fn declares_applies(source: &catalog::RunbookSource) -> bool {
    source
        .text()
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .is_some_and(|v| v.get("applies").is_some())
}

/// The inputs a runbook declares, out of all those given.
fn only_declared(rb: &runbook::Runbook, given: &[(String, String)]) -> Vec<(String, String)> {
    given
        .iter()
        .filter(|(k, _)| rb.inputs.contains_key(k))
        .cloned()
        .collect()
}
