//! Guided mode: the runbook walked step by step in a terminal. Before each step it shows
//! what the step is for and exactly what it will touch (the commands, URLs and files its
//! action declared, with this step's params); the person runs it, skips it, or quits. Ask
//! steps are real prompts. The engine runs with `Interaction` hooks, one step at a time.

use super::{Failure, OrExit};
use crate::engine::{Gate, Interaction, StepCallback, StepPreview};
use crate::report::{FindingReport, Report, StepReport, StepStatus};
use crate::runbook::{InputSpec, LoadedRunbook, Severity};
use anyhow::Context;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Input, Select};
use indicatif::ProgressBar;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The plan: every step in the order it will be offered.
pub fn print_plan(loaded: &LoadedRunbook, target: &str) {
    let rb = &loaded.runbook;
    println!("\n{} — {}", rb.id, rb.title);
    if let Some(source) = &rb.source {
        println!("Guide section: {source}");
    }
    if let Some(d) = &rb.description {
        println!("{}", d.trim());
    }
    println!("Target: {target}\n\nPlan:");
    for (n, &i) in loaded.compiled.order.iter().enumerate() {
        let step = &rb.steps[i];
        let mut extra = String::new();
        if !step.needs.is_empty() {
            let needs: Vec<&str> = step.needs.iter().map(|n| n.as_str()).collect();
            extra.push_str(&format!(" (after {} passes)", needs.join(", ")));
        }
        if let Some(w) = &step.when {
            extra.push_str(&format!(" [only when {w}]"));
        }
        println!("  {:>2}. {} — {}{extra}", n + 1, step.id, step.title);
    }
    println!();
}

/// Asks for required inputs that were not given and have no default.
pub fn ask_missing_inputs(
    loaded: &LoadedRunbook,
    given: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let missing: Vec<(&String, &InputSpec)> = loaded
        .runbook
        .inputs
        .iter()
        .filter(|(name, spec)| {
            spec.required && spec.default.is_none() && !given.iter().any(|(g, _)| g == *name)
        })
        .collect();
    for (name, spec) in missing {
        let prompt = match &spec.description {
            Some(d) => format!("{name} ({d})"),
            None => name.clone(),
        };
        let value: String = Input::with_theme(&ColorfulTheme::default())
            .with_prompt(prompt)
            .interact_text()
            .with_context(|| format!("reading input `{name}`"))?;
        given.push((name.clone(), value));
    }
    Ok(())
}

/// The hooks and the per-step printer for a guided session on `target`.
pub fn session(target: String) -> (Interaction, StepCallback) {
    let spinner: Arc<Mutex<Option<ProgressBar>>> = Arc::new(Mutex::new(None));
    let gate_spinner = spinner.clone();
    let gate = Box::new(move |preview: &StepPreview| {
        let step = preview.step;
        println!("── {} — {}", step.id, step.title);
        if let Some(d) = &step.description {
            println!("   Why: {}", d.trim());
        }
        if preview.touches.is_empty() {
            println!("   It touches nothing on the target.");
        } else {
            println!("   It may, on {target}:");
            if target.contains("://") {
                println!(
                    "   (on a remote target, http runs as curl and files are read with head -c, there)"
                );
            }
            for t in &preview.touches {
                println!("     • {t}");
            }
        }
        let choice = Select::with_theme(&ColorfulTheme::default())
            .with_prompt("Run this step?")
            .items(["run", "skip", "quit"])
            .default(0)
            .interact()
            .unwrap_or(2);
        match choice {
            0 => {
                let bar = ProgressBar::new_spinner();
                bar.set_message(format!("running {}", step.id));
                bar.enable_steady_tick(std::time::Duration::from_millis(80));
                *gate_spinner.lock().expect("spinner lock") = Some(bar);
                Gate::Run
            }
            1 => Gate::Skip,
            _ => Gate::Quit,
        }
    });
    let ask = Box::new(|step: &crate::runbook::Step, ask: &crate::runbook::Ask| {
        println!("── {} — {}", step.id, step.title);
        let choice = Select::with_theme(&ColorfulTheme::default())
            .with_prompt(&ask.prompt)
            .items(&ask.choices)
            .default(0)
            .interact_opt()
            .ok()
            .flatten()?;
        ask.choices.get(choice).cloned()
    });
    let on_step: StepCallback = Box::new(move |report: &StepReport, findings: &[FindingReport]| {
        if let Some(bar) = spinner.lock().expect("spinner lock").take() {
            bar.finish_and_clear();
        }
        let mark = match (report.status, report.severity) {
            (StepStatus::Passed, _) => "✓ holds",
            (StepStatus::Failed, Some(crate::runbook::Severity::Error)) => "✗ error",
            (StepStatus::Failed, _) => "⚠ warning",
            (StepStatus::Unknown, _) => "? unknown",
            (StepStatus::Skipped, _) => "- skipped",
            (StepStatus::Errored, _) => "! errored",
        };
        match &report.reason {
            Some(r) => println!("   {mark}: {r} [{}]", report.id),
            None => println!("   {mark} [{}] in {} ms", report.id, report.duration_ms),
        }
        if let Some(facts) = report.output.as_ref().and_then(|o| o.as_object()) {
            let shown: Vec<String> = facts
                .iter()
                .filter(|(_, v)| {
                    v.is_boolean() || v.is_number() || v.as_str().is_some_and(|s| s.len() <= 60)
                })
                .take(8)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !shown.is_empty() {
                println!("   facts: {}", shown.join(", "));
            }
        }
        for f in findings {
            let sev = match f.severity {
                Severity::Error => "ERROR",
                Severity::Warning => "WARNING",
                Severity::Info => "INFO",
            };
            println!("   {sev} {}: {}", f.id, f.title);
            if let Some(fix) = &f.fix {
                println!("   fix: {fix}");
            }
        }
        println!();
    });
    (Interaction { gate, ask }, on_step)
}

/// Saves the session as `triage-<id>-<time>.json` and `.md` in `dir`, and says where.
pub fn save_session(report: &Report, dir: &Path) -> Result<(), Failure> {
    let stem = format!(
        "triage-{}-{}",
        report.runbook.id,
        report.started_at.replace(':', "")
    );
    for (ext, text) in [
        ("json", report.to_json(true)),
        ("md", crate::report::markdown::render(report)),
    ] {
        let path = dir.join(format!("{stem}.{ext}"));
        crate::files::write_atomic(&path, text.as_bytes())
            .with_context(|| path.display().to_string())
            .or_run()?;
        println!("saved {}", path.display());
    }
    Ok(())
}
