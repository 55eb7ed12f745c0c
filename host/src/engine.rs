//! The engine: runs a loaded runbook's DAG on a target.
//!
//! A step starts once all of its needs are done. Independent steps run concurrently (their
//! plugin calls interleave on this task; capability I/O overlaps). A step whose need did
//! not pass is skipped with the reason; a step whose `when` is false is skipped; an ask
//! step takes its answer from `--answer`. After a probe returns facts, each finding's
//! condition is evaluated and the fired ones are rendered.

pub mod inputs;

use crate::capability::Policy;
use crate::redact::{Redactor, Tally};
use crate::report::{FindingReport, Report, RunbookInfo, StepReport, StepStatus};
use crate::runbook::validate::ParamValue;
use crate::runbook::{LoadedRunbook, Severity, Step};
use crate::runtime::{Runtime, schema};
use crate::target::Target;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use minijinja::Value as JinjaValue;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Called as each step finishes, with its report and the findings it fired.
pub type StepCallback = Box<dyn Fn(&StepReport, &[FindingReport]) + Send + Sync>;

/// What guided mode decides before a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Run,
    Skip,
    /// End the session: this step and every step not yet started are skipped.
    Quit,
}

/// Shown before a step runs: the step, its params, and what it will touch.
pub struct StepPreview<'a> {
    pub step: &'a Step,
    pub params: Option<&'a Value>,
    /// The capabilities the step's action declared, with its params filled in
    /// (`exec iptables -t nat -S`), and on which target.
    pub touches: Vec<String>,
}

/// Hooks for guided mode; a plain run has none. With hooks, steps run one at a time.
pub struct Interaction {
    /// Called before each step that would run.
    pub gate: Box<dyn Fn(&StepPreview) -> Gate + Send + Sync>,
    /// Called for an ask step with no `--answer`; `None` leaves it unanswered.
    pub ask: AskHook,
}

/// Puts an ask step's question to the person at the terminal.
pub type AskHook = Box<dyn Fn(&Step, &crate::runbook::Ask) -> Option<String> + Send + Sync>;

pub struct RunOptions {
    /// Already parsed against the runbook's input specs (see [`inputs::resolve`]).
    pub inputs: Map<String, Value>,
    pub answers: BTreeMap<String, String>,
    pub target: Arc<dyn Target>,
    pub policy: Arc<Policy>,
    /// Called as each step finishes (progress display, guided mode).
    pub on_step: Option<StepCallback>,
    /// Guided mode's hooks (and one step at a time).
    pub interaction: Option<Interaction>,
    /// Applied to each step as it finishes (before `on_step` sees it) and to the report:
    /// conditions see what the system said, everything that leaves sees it redacted.
    pub redact: Arc<Redactor>,
}

struct StepDone {
    report: StepReport,
    findings: Vec<FindingReport>,
    output: Option<Value>,
}

pub async fn run(loaded: &LoadedRunbook, runtime: &Runtime, options: RunOptions) -> Report {
    let started_at = std::time::SystemTime::now();
    let started = Instant::now();
    let runbook = &loaded.runbook;
    let steps = &runbook.steps;
    let mut done: Vec<Option<StepDone>> = (0..steps.len()).map(|_| None).collect();
    let mut started_steps = vec![false; steps.len()];
    // Declared before `running`, whose futures borrow it.
    let quit = std::sync::atomic::AtomicBool::new(false);
    let mut running = FuturesUnordered::new();
    let mut outputs: Map<String, Value> = Map::new();
    let sequential = options.interaction.is_some();
    // The plugins this runbook calls, compiled up front and in parallel on a first run
    // (nothing else is compiled); later runs load them from the cache.
    runtime.prepare_all(
        steps
            .iter()
            .filter_map(|s| s.probe.as_ref())
            .map(|p| p.plugin.as_str()),
    );

    loop {
        // Start (or skip) every step whose needs are all done, in topological order.
        for &i in &loaded.compiled.order {
            if started_steps[i] {
                continue;
            }
            if sequential && !running.is_empty() {
                break;
            }
            let step = &steps[i];
            let index_of = |n: &crate::runbook::Id| steps.iter().position(|s| &s.id == n);
            let needs: Vec<usize> = step.needs.iter().filter_map(index_of).collect();
            // `after` only orders: those steps must be done, whatever their status.
            let after: Vec<usize> = step.after.iter().filter_map(index_of).collect();
            if !needs.iter().chain(&after).all(|&n| done[n].is_some()) {
                continue;
            }
            started_steps[i] = true;
            let blocked = needs.iter().find_map(|&n| {
                let d = done[n].as_ref()?;
                let what = match d.report.status {
                    // Facts were gathered: the step may read them, even when its own
                    // subject was not visible or a warning fired.
                    StepStatus::Passed | StepStatus::Unknown => return None,
                    StepStatus::Failed if d.report.severity != Some(Severity::Error) => {
                        return None;
                    }
                    StepStatus::Failed => "failed",
                    StepStatus::Errored => "errored",
                    StepStatus::Skipped => "was skipped",
                };
                Some(format!("needs `{}`, which {what}", steps[n].id))
            });
            let context = context(&options, &outputs, &done, steps, None);
            let ended = quit.load(std::sync::atomic::Ordering::Relaxed);
            let skip = match blocked {
                _ if ended => Some(Ok("not run: the session was ended".to_string())),
                Some(reason) => Some(Ok(reason)),
                None => match &step.when {
                    None => None,
                    Some(when) => match eval_bool(&loaded.compiled.env, when, &context) {
                        Ok(true) => None,
                        Ok(false) => Some(Ok(format!("`when: {when}` is false"))),
                        Err(e) => Some(Err(format!("when: {e}"))),
                    },
                },
            };
            match skip {
                Some(result) => {
                    let (status, reason) = match result {
                        Ok(reason) => (StepStatus::Skipped, reason),
                        Err(e) => (StepStatus::Errored, e),
                    };
                    let mut d = StepDone {
                        report: step_report(step, status, Some(reason), Duration::ZERO),
                        findings: vec![],
                        output: None,
                    };
                    redact_step(&options.redact, &mut d.report, &mut d.findings);
                    if let Some(cb) = &options.on_step {
                        cb(&d.report, &d.findings);
                    }
                    done[i] = Some(d);
                }
                None => running.push(run_step(loaded, runtime, &options, i, context, &quit)),
            }
        }
        if started_steps.iter().all(|s| *s) && running.is_empty() {
            break;
        }
        let Some((i, mut d)) = running.next().await else {
            // Nothing running and nothing startable: the loop above resolves every step
            // whose needs are done, so this only happens after every step is done.
            break;
        };
        if let Some(out) = &d.output {
            outputs.insert(steps[i].id.to_string(), out.clone());
        }
        redact_step(&options.redact, &mut d.report, &mut d.findings);
        if let Some(cb) = &options.on_step {
            cb(&d.report, &d.findings);
        }
        done[i] = Some(d);
    }

    let mut step_reports = Vec::new();
    let mut findings = Vec::new();
    for d in done.into_iter().flatten() {
        findings.extend(d.findings);
        step_reports.push(d.report);
    }
    let mut inputs = options.inputs.clone();
    options.redact.inputs(&mut inputs);
    let mut target = options.target.name();
    options.redact.string(&mut target, &mut Default::default());
    Report::new(
        RunbookInfo {
            id: runbook.id.to_string(),
            title: runbook.title.clone(),
            source: runbook.source.clone(),
            guide: runbook.guide.clone(),
            origin: loaded.origin.clone(),
        },
        target,
        inputs,
        step_reports,
        findings,
        started_at,
        started.elapsed(),
    )
}

fn step_report(
    step: &Step,
    status: StepStatus,
    reason: Option<String>,
    duration: Duration,
) -> StepReport {
    StepReport {
        id: step.id.to_string(),
        title: step.title.clone(),
        status,
        severity: None,
        reason,
        skip: None,
        duration_ms: duration.as_millis() as u64,
        plugin: step
            .probe
            .as_ref()
            .map(|p| format!("{}/{}", p.plugin, p.action)),
        capabilities: Vec::new(),
        logs: Vec::new(),
        output: None,
    }
}

/// The variables expressions see.
fn context(
    options: &RunOptions,
    outputs: &Map<String, Value>,
    done: &[Option<StepDone>],
    steps: &[Step],
    current: Option<&Value>,
) -> Value {
    let mut step_vars = Map::new();
    let mut answers = Map::new();
    for (i, d) in done.iter().enumerate() {
        if let Some(d) = d {
            let id = steps[i].id.to_string();
            let output = outputs.get(&id).cloned().unwrap_or(Value::Null);
            if steps[i].ask.is_some()
                && let Some(a) = output.get("answer")
            {
                answers.insert(id.clone(), a.clone());
            }
            // The reason too, so a later step can say why one it follows saw nothing
            // (doctor: which admin call a bundle lacks, "not captured").
            step_vars.insert(
                id,
                json!({
                    "status": d.report.status.as_str(),
                    "reason": d.report.reason,
                    "output": output,
                }),
            );
        }
    }
    let mut ctx = json!({
        "inputs": options.inputs,
        "steps": step_vars,
        "answers": answers,
        "target": target_var(options.target.as_ref()),
    });
    if let Some(out) = current {
        ctx["output"] = out.clone();
        if let Some(a) = out.get("answer") {
            ctx["answer"] = a.clone();
        }
    }
    ctx
}

/// What templates see as `target`: its name and whatever it knows of itself.
fn target_var(target: &dyn Target) -> Value {
    let mut v = serde_json::to_value(target.identity()).unwrap_or_else(|_| json!({}));
    v["name"] = Value::String(target.name());
    v
}

fn eval(
    env: &minijinja::Environment<'static>,
    expr: &str,
    ctx: &Value,
) -> Result<JinjaValue, String> {
    let compiled = env.compile_expression(expr).map_err(|e| e.to_string())?;
    compiled
        .eval(JinjaValue::from_serialize(ctx))
        .map_err(|e| e.to_string())
}

fn eval_bool(
    env: &minijinja::Environment<'static>,
    expr: &str,
    ctx: &Value,
) -> Result<bool, String> {
    eval(env, expr, ctx).map(|v| v.is_true())
}

fn render(
    env: &minijinja::Environment<'static>,
    name: &str,
    ctx: &Value,
) -> Result<String, String> {
    let t = env.get_template(name).map_err(|e| e.to_string())?;
    t.render(JinjaValue::from_serialize(ctx)).map_err(|e| {
        let detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string());
        format!("{name}: {detail}")
    })
}

fn render_params(
    env: &minijinja::Environment<'static>,
    p: &ParamValue,
    ctx: &Value,
) -> Result<Value, String> {
    Ok(match p {
        ParamValue::Literal(v) => v.clone(),
        ParamValue::Expression(expr) => {
            let v = eval(env, expr, ctx)?;
            if v.is_undefined() {
                Value::Null
            } else {
                serde_json::to_value(&v).map_err(|e| e.to_string())?
            }
        }
        ParamValue::Template(name) => Value::String(render(env, name, ctx)?),
        ParamValue::Object(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                let rendered = render_params(env, v, ctx)?;
                // An absent value (undefined, or an optional input not given) leaves the
                // param out, so the plugin's default applies.
                if !rendered.is_null() {
                    m.insert(k.clone(), rendered);
                }
            }
            Value::Object(m)
        }
        ParamValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_params(env, v, ctx))
                .collect::<Result<_, _>>()?,
        ),
    })
}

async fn run_step(
    loaded: &LoadedRunbook,
    runtime: &Runtime,
    options: &RunOptions,
    i: usize,
    ctx: Value,
    quit: &std::sync::atomic::AtomicBool,
) -> (usize, StepDone) {
    let step = &loaded.runbook.steps[i];
    let runbook_guide = loaded.runbook.guide.as_ref();
    let env = &loaded.compiled.env;
    let timeout = loaded.compiled.timeouts[i];
    // Shared with the closures below; guided mode restarts it once the person says run.
    let started = std::sync::Mutex::new(Instant::now());
    let errored = |reason: String, report_extra: Option<(Vec<_>, Vec<_>)>| {
        let mut report = step_report(
            step,
            StepStatus::Errored,
            Some(reason),
            started.lock().expect("step timer").elapsed(),
        );
        if let Some((caps, logs)) = report_extra {
            report.capabilities = caps;
            report.logs = logs;
        }
        (
            i,
            StepDone {
                report,
                findings: vec![],
                output: None,
            },
        )
    };

    let mut capabilities = Vec::new();
    let mut logs = Vec::new();
    let output = if let Some(probe) = &step.probe {
        let mut params = match loaded.compiled.params[i]
            .as_ref()
            .map(|p| render_params(env, p, &ctx))
        {
            Some(Ok(p)) => p,
            Some(Err(e)) => return errored(format!("rendering params: {e}"), None),
            None => json!({}),
        };
        let Some(spec) = runtime
            .plugin(&probe.plugin)
            .and_then(|p| p.manifest().action(&probe.action))
        else {
            return errored(
                format!("unknown plugin action {}/{}", probe.plugin, probe.action),
                None,
            );
        };
        schema::fill_defaults(&spec.params_schema, &mut params);
        if let Err(e) = schema::validate(&spec.params_schema, &params, "with") {
            return errored(
                format!("params do not match {}/{}: {e}", probe.plugin, probe.action),
                None,
            );
        }
        if let Some(hooks) = &options.interaction {
            let touches = spec
                .capabilities
                .iter()
                .map(|c| c.display(Some(&params)))
                .filter(|s| !s.is_empty())
                .collect();
            let preview = StepPreview {
                step,
                params: Some(&params),
                touches,
            };
            match (hooks.gate)(&preview) {
                // The step's time starts when the person says run, not while they read.
                Gate::Run => *started.lock().expect("step timer") = Instant::now(),
                gate => {
                    let reason = if gate == Gate::Quit {
                        quit.store(true, std::sync::atomic::Ordering::Relaxed);
                        "not run: the session was ended"
                    } else {
                        "skipped by the user"
                    };
                    let report = step_report(
                        step,
                        StepStatus::Skipped,
                        Some(reason.into()),
                        started.lock().expect("step timer").elapsed(),
                    );
                    return (
                        i,
                        StepDone {
                            report,
                            findings: vec![],
                            output: None,
                        },
                    );
                }
            }
        }
        let call = runtime.call(
            &probe.plugin,
            &probe.action,
            &params,
            options.target.clone(),
            options.policy.clone(),
        );
        match tokio::time::timeout(timeout, call).await {
            Err(_) => {
                return errored(
                    format!("step timed out after {} ms", timeout.as_millis()),
                    None,
                );
            }
            Ok(outcome) => {
                capabilities = outcome.journal;
                logs = outcome.logs;
                match outcome.result {
                    Ok(facts) => facts,
                    Err(failure) => {
                        return errored(failure.to_string(), Some((capabilities, logs)));
                    }
                }
            }
        }
    } else if let Some(ask) = &step.ask {
        let asked = match options.answers.get(step.id.as_str()) {
            Some(a) => Some(a.clone()),
            None => options
                .interaction
                .as_ref()
                .and_then(|h| (h.ask)(step, ask)),
        };
        match asked {
            Some(answer) => json!({ "answer": answer, "prompt": ask.prompt }),
            None => {
                let mut report = step_report(
                    step,
                    StepStatus::Skipped,
                    Some(format!(
                        "not answered (pass --answer {}=<{}>)",
                        step.id,
                        ask.choices.join("|")
                    )),
                    started.lock().expect("step timer").elapsed(),
                );
                report.skip = Some(crate::report::Skip::Unanswered);
                return (
                    i,
                    StepDone {
                        report,
                        findings: vec![],
                        output: None,
                    },
                );
            }
        }
    } else {
        Value::Null
    };

    // Findings see this step's output as `output` (and under `steps.<id>` too).
    let mut ctx = ctx;
    ctx["output"] = output.clone();
    if let Some(a) = output.get("answer") {
        ctx["answer"] = a.clone();
    }
    ctx["steps"][step.id.as_str()] = json!({ "status": "running", "output": output });
    let mut findings = Vec::new();
    for (j, f) in step.findings.iter().enumerate() {
        let fired = match eval_bool(env, &f.when, &ctx) {
            Ok(b) => b,
            Err(e) => {
                return errored(
                    format!("finding `{}`: when: {e}", f.id),
                    Some((capabilities, logs)),
                );
            }
        };
        if !fired {
            continue;
        }
        let base = format!("steps.{i}.findings.{j}");
        let text = |field: &str, present: bool| -> Result<Option<String>, String> {
            if present {
                render(env, &format!("{base}.{field}"), &ctx).map(|s| Some(s.trim().to_string()))
            } else {
                Ok(None)
            }
        };
        let rendered = (|| {
            Ok::<_, String>(FindingReport {
                id: f.id.to_string(),
                code: f.code.as_ref().map(|c| c.as_str().to_string()),
                help: f
                    .help
                    .as_ref()
                    .or(runbook_guide.map(|g| &g.url))
                    .map(|u| u.as_str().to_string()),
                step: step.id.to_string(),
                severity: f.severity,
                title: text("title", true)?.unwrap_or_default(),
                detail: text("detail", f.detail.is_some())?,
                fix: text("fix", f.fix.is_some())?,
                evidence: text("evidence", f.evidence.is_some())?,
            })
        })();
        match rendered {
            Ok(r) => findings.push(r),
            Err(e) => {
                return errored(
                    format!("finding `{}`: {e}", f.id),
                    Some((capabilities, logs)),
                );
            }
        }
    }
    let severity = findings.iter().map(|f| f.severity).max();
    // A finding is a statement about the system and wins; without one, a step that could
    // not see its subject is unknown, never passed.
    let (status, reason) = if severity >= Some(Severity::Warning) {
        (StepStatus::Failed, None)
    } else {
        let mut unknown = None;
        for (k, u) in step.unknown.iter().enumerate() {
            match eval_bool(env, &u.when, &ctx) {
                Ok(false) => {}
                Ok(true) => {
                    let name = format!("steps.{i}.unknown.{k}.reason");
                    match render(env, &name, &ctx) {
                        Ok(reason) => {
                            unknown = Some(reason.trim().to_string());
                            break;
                        }
                        Err(e) => {
                            return errored(format!("unknown: {e}"), Some((capabilities, logs)));
                        }
                    }
                }
                Err(e) => {
                    return errored(format!("unknown: when: {e}"), Some((capabilities, logs)));
                }
            }
        }
        match unknown {
            Some(reason) => (StepStatus::Unknown, Some(reason)),
            None => (StepStatus::Passed, None),
        }
    };
    let mut report = step_report(
        step,
        status,
        reason,
        started.lock().expect("step timer").elapsed(),
    );
    report.severity = severity;
    report.capabilities = capabilities;
    report.logs = logs;
    report.output = Some(output.clone());
    (
        i,
        StepDone {
            report,
            findings,
            output: Some(output),
        },
    )
}

/// What a finished step shows: its reason, the capabilities it used, its plugin's
/// log, its facts, and the findings it fired (their text is rendered from facts).
/// Called after the step's conditions were evaluated, so findings are
/// judged on what the system said and only what leaves is redacted.
fn redact_step(redactor: &Redactor, step: &mut StepReport, findings: &mut [FindingReport]) {
    let tally = &mut Tally::default();
    if let Some(reason) = &mut step.reason {
        redactor.string(reason, tally);
    }
    for used in &mut step.capabilities {
        redactor.string(&mut used.request, tally);
        if let Some(detail) = &mut used.detail {
            redactor.string(detail, tally);
        }
    }
    for log in &mut step.logs {
        redactor.string(&mut log.message, tally);
    }
    if let Some(output) = &mut step.output {
        redactor.json(output, tally);
    }
    for finding in findings {
        for text in [
            Some(&mut finding.title),
            finding.detail.as_mut(),
            finding.fix.as_mut(),
            finding.evidence.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            redactor.string(text, tally);
        }
    }
}
