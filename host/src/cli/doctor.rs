//! `triage doctor`: find out what can be probed (an Envoy admin port, a metadata server, a
//! Kubernetes cluster), run the runbooks that apply with one set of inputs, and merge their
//! reports. Detection goes through plugins like any step, so it works on bundles too.

use super::{Cli, CliResult, Failure, Format, Given};
use crate::capability::Policy;
use crate::engine::{self, RunOptions, inputs};
use crate::report::{FindingReport, Report, StepStatus};
use crate::runbook::{self, Severity};
use crate::runtime::Runtime;
use crate::target::{Target, bundle::BundleTarget, local::LocalTarget};
use serde::Serialize;

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
    let target: Arc<dyn Target> = match &args.bundle {
        Some(dir) => Arc::new(BundleTarget::open(dir).map_err(|e| Failure::usage(e.to_string()))?),
        None => Arc::new(LocalTarget::new()),
    };
    let answers: BTreeMap<String, String> = args.given.answers.iter().cloned().collect();
    let report = super::tokio_runtime()?
        .block_on(doctor(
            &runtime,
            target,
            policy,
            &args.given.inputs,
            &answers,
        ))
        .map_err(Failure::usage)?;
    let text = match args.given.format {
        Format::Json => report.to_json(),
        Format::Markdown => report.to_text(true, false),
        Format::Human => report.to_text(
            false,
            crate::report::human::use_color(std::io::stdout().is_terminal()),
        ),
    };
    print!("{text}");
    Ok(report.exit_code(args.given.fail_on.severity()))
}

#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    pub envoy_admin: bool,
    pub metadata_server: bool,
    pub kubernetes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunbookOutcome {
    pub id: String,
    pub ran: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MergedFinding {
    pub runbook: String,
    #[serde(flatten)]
    pub finding: FindingReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub schema: &'static str,
    pub target: String,
    pub detected: Detected,
    pub runbooks: Vec<RunbookOutcome>,
    /// Every finding of every runbook, errors first.
    pub findings: Vec<MergedFinding>,
}

impl DoctorReport {
    pub fn exit_code(&self, fail_on: Option<Severity>) -> i32 {
        let mut code = 0;
        for r in self.runbooks.iter().filter_map(|r| r.report.as_ref()) {
            code = match (code, r.exit_code(fail_on)) {
                (1, _) | (_, 1) => 1,
                (a, b) => a.max(b),
            };
        }
        code
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises") + "\n"
    }

    pub fn to_text(&self, markdown: bool, color: bool) -> String {
        let mut out = String::new();
        let d = &self.detected;
        let yes = |b: bool| if b { "yes" } else { "no" };
        if markdown {
            out.push_str(&format!(
                "# triage doctor\n\nTarget: `{}`  \nEnvoy admin: {} · metadata server: {} · Kubernetes: {}\n\n",
                self.target,
                yes(d.envoy_admin),
                yes(d.metadata_server),
                yes(d.kubernetes)
            ));
        } else {
            out.push_str(&format!(
                "triage doctor · target: {}\ndetected: Envoy admin {} · metadata server {} · Kubernetes {}\n\n",
                self.target,
                yes(d.envoy_admin),
                yes(d.metadata_server),
                yes(d.kubernetes)
            ));
        }
        for r in &self.runbooks {
            match (&r.report, &r.reason) {
                (Some(report), _) => {
                    let text = if markdown {
                        crate::report::markdown::render(report).replacen("# ", "## ", 1)
                    } else {
                        crate::report::human::render(report, color)
                    };
                    out.push_str(&text);
                    out.push('\n');
                }
                (None, reason) => {
                    out.push_str(&format!(
                        "{} skipped: {}\n\n",
                        r.id,
                        reason.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        let errors = self
            .findings
            .iter()
            .filter(|f| f.finding.severity == Severity::Error)
            .count();
        out.push_str(&format!(
            "{} runbook(s) run, {} finding(s), {errors} error(s)\n",
            self.runbooks.iter().filter(|r| r.ran).count(),
            self.findings.len()
        ));
        out
    }
}

/// Runs detection, then every applicable runbook. `given` are the operator's inputs; each
/// runbook gets the ones it declares.
pub async fn doctor(
    runtime: &Runtime,
    target: Arc<dyn Target>,
    policy: Arc<Policy>,
    given: &[(String, String)],
    answers: &BTreeMap<String, String>,
) -> Result<DoctorReport, String> {
    let detect =
        runbook::load_str(DETECT, "built-in:doctor-detect", runtime).map_err(|e| e.to_string())?;
    let detect_inputs = only_declared(&detect.runbook, given);
    let detect_inputs = inputs::resolve(&detect.runbook, &detect_inputs)?;
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
        let loaded = source.load(runtime).map_err(|e| e.to_string())?;
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
