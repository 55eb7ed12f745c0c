//! `triage doctor`: find out what can be probed (an Envoy admin port, a metadata server, a
//! Kubernetes cluster), run the runbooks that apply with one set of inputs, and merge their
//! reports. Detection goes through plugins like any step, so it works on bundles too.

use super::{Cli, CliResult, Given, OrExit};
use crate::capability::Policy;
use crate::engine::{self, RunOptions, inputs};
use crate::report::doctor::{Detected, DoctorReport, MergedFinding, RunbookOutcome};
use crate::report::{Render, RenderOptions, StepStatus};
use crate::runbook;
use crate::runtime::Runtime;
use crate::target::{Spec, Target};

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

const DETECT: &str = include_str!("doctor-detect.yaml");

/// Which runbooks apply, by what was detected. `always` ones need only this machine.
const ALWAYS: &[&str] = &["traffic-loop", "unconfigured-service-blackhole"];
const WITH_ADMIN: &[&str] = &[
    "envoy-version",
    "service-unreachable",
    "endpoints-mostly-unhealthy",
    "envoy-logs",
];
const WITH_METADATA: &[&str] = &[
    "auto-deploy-bootstrap",
    "proxy-not-connecting",
    "service-proxy-template-unreachable",
];
const WITH_KUBERNETES: &[&str] = &["gke-pods-not-starting", "gke-connection-refused"];

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Replay a recorded bundle instead of probing this machine.
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    given: Given,
}

pub fn run(cli: &Cli, args: &DoctorArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let policy = Arc::new(super::load_policy(cli)?);
    let spec = match &args.bundle {
        Some(dir) => Spec::bundle(dir).or_usage()?,
        None => Spec::Local,
    };
    let target = spec.open().or_usage()?;
    let answers: BTreeMap<String, String> = args.given.answers.iter().cloned().collect();
    let report = super::tokio_runtime()?
        .block_on(doctor(
            &runtime,
            target,
            policy,
            &args.given.inputs,
            &answers,
        ))
        .or_usage()?;
    let options = RenderOptions {
        color: crate::report::human::use_color(std::io::stdout().is_terminal()),
        facts: false,
    };
    let text = report.render(args.given.format, &options);
    print!("{text}");
    Ok(report.exit_code(args.given.fail_on.severity()))
}

/// Runs detection, then every applicable runbook. `given` are the operator's inputs; each
/// runbook gets the ones it declares.
pub async fn doctor(
    runtime: &Runtime,
    target: Arc<dyn Target>,
    policy: Arc<Policy>,
    given: &[(String, String)],
    answers: &BTreeMap<String, String>,
) -> anyhow::Result<DoctorReport> {
    let detect = runbook::load_str(DETECT, "built-in:doctor-detect", runtime)?;
    let detect_inputs = only_declared(&detect.runbook, given);
    let detect_inputs =
        inputs::resolve(&detect.runbook, &detect_inputs).map_err(anyhow::Error::msg)?;
    let probe = engine::run(
        &detect,
        runtime,
        RunOptions {
            inputs: detect_inputs,
            answers: BTreeMap::new(),
            target: target.clone(),
            policy: policy.clone(),
            on_step: None,
            interaction: None,
        },
    )
    .await;
    let passed = |id: &str| {
        probe
            .steps
            .iter()
            .any(|s| s.id == id && s.status == StepStatus::Passed)
    };
    let detected = Detected {
        envoy_admin: passed("envoy-admin"),
        metadata_server: passed("metadata-server"),
        kubernetes: passed("kubernetes"),
    };

    let mut chosen: Vec<&str> = ALWAYS.to_vec();
    if detected.envoy_admin {
        chosen.extend(WITH_ADMIN);
    }
    if detected.metadata_server {
        chosen.extend(WITH_METADATA);
    }
    if detected.kubernetes {
        chosen.extend(WITH_KUBERNETES);
    }
    let mut runbooks = Vec::new();
    let mut findings = Vec::new();
    for id in chosen {
        let mut warnings = Vec::new();
        let Ok(source) = crate::catalog::resolve(id, &mut warnings) else {
            runbooks.push(RunbookOutcome {
                id: id.into(),
                ran: false,
                reason: Some("not installed".into()),
                report: None,
            });
            continue;
        };
        let loaded = source.load(runtime)?;
        let mine = only_declared(&loaded.runbook, given);
        let resolved = match inputs::resolve(&loaded.runbook, &mine) {
            Ok(i) => i,
            Err(why) => {
                runbooks.push(RunbookOutcome {
                    id: id.into(),
                    ran: false,
                    reason: Some(why),
                    report: None,
                });
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
            },
        )
        .await;
        findings.extend(report.findings.iter().map(|f| MergedFinding {
            runbook: id.into(),
            finding: f.clone(),
        }));
        runbooks.push(RunbookOutcome {
            id: id.into(),
            ran: true,
            reason: None,
            report: Some(report),
        });
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.finding.severity));
    Ok(DoctorReport {
        schema: "triage.doctor/v1",
        target: target.name(),
        detected,
        runbooks,
        findings,
    })
}

/// The inputs a runbook declares, out of all those given.
fn only_declared(rb: &runbook::Runbook, given: &[(String, String)]) -> Vec<(String, String)> {
    given
        .iter()
        .filter(|(k, _)| rb.inputs.contains_key(k))
        .cloned()
        .collect()
}
