//! Guided mode: the runbook walked step by step in a terminal. Before each step it shows
//! what the step is for and exactly what it will touch (the commands, URLs and files its
//! action declared, with this step's params); the person runs it, skips it, or quits
//! (`q` or Esc quit too). Ask steps are real prompts. The engine runs with `Interaction`
//! hooks, one step at a time.
//!
//! What the person did not let run is not checked: quitting, or skipping a step that
//! decides the diagnosis (it or a step after it can fire a finding or say unknown), makes
//! the session incomplete (exit 3 unless a finding at --fail-on fired), and the unchecked
//! steps are named at the end and in the saved report. Ctrl-C ends the session with the
//! terminal restored (the prompt and the spinner hide the cursor while they run).

use super::{Failure, OrExit};
use crate::engine::{Gate, Interaction, StepCallback, StepPreview};
use crate::report::human::terminal_safe as safe;
use crate::report::{FindingReport, Report, Skip, StepReport, StepStatus};
use crate::runbook::{InputSpec, LoadedRunbook, Severity};
use anyhow::Context;
use dialoguer::console::Term;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Input, Select};
use indicatif::ProgressBar;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The plan: every step in the order it will be offered.
pub fn print_plan(loaded: &LoadedRunbook, target: &str) {
    let rb = &loaded.runbook;
    println!("\n{}", wrap(&format!("{} — {}", rb.id, rb.title), ""));
    if let Some(guide) = &rb.guide {
        let es = guide
            .title_es
            .as_deref()
            .or(rb.source.as_deref())
            .map(|es| format!(" ({es})"))
            .unwrap_or_default();
        println!(
            "{}",
            wrap(
                &format!("Guide section: {}{es} {}", guide.title, guide.url.as_str()),
                ""
            )
        );
    } else if let Some(source) = &rb.source {
        println!("{}", wrap(&format!("Guide section: {source}"), ""));
    }
    if let Some(d) = &rb.description {
        println!("{}", wrap(d.trim(), ""));
    }
    println!(
        "{}\n\nPlan:",
        wrap(&format!("Target: {}", safe(target)), "")
    );
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
        let line = format!("{:>2}. {} — {}{extra}", n + 1, step.id, step.title);
        println!("{}", wrap_hanging(&line, "  ", "      "));
    }
    println!();
}

/// Asks for the inputs that were not given and have no default: the required ones, and the
/// optional ones a step's `when` reads (without `vip`, the VIP checks would be skipped
/// without the person ever being asked). An empty answer leaves an optional input unset.
pub fn ask_missing_inputs(
    loaded: &LoadedRunbook,
    given: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    let gating = inputs_that_gate_steps(loaded);
    let missing: Vec<(&String, &InputSpec)> = loaded
        .runbook
        .inputs
        .iter()
        .filter(|(name, spec)| {
            (spec.required || gating.contains(name.as_str()))
                && spec.default.is_none()
                && !given.iter().any(|(g, _)| g == *name)
        })
        .collect();
    for (name, spec) in missing {
        let mut prompt = match &spec.description {
            Some(d) => format!("{name} ({d})"),
            None => name.clone(),
        };
        if !spec.required {
            prompt.push_str(" — optional, Enter to leave it out");
        }
        let value: String = Input::with_theme(&ColorfulTheme::default())
            .with_prompt(prompt)
            .allow_empty(!spec.required)
            .interact_text()
            .with_context(|| format!("reading input `{name}`"))?;
        if !value.trim().is_empty() {
            given.push((name.clone(), value.trim().to_string()));
        }
    }
    Ok(())
}

/// The inputs a step's `when` names (`inputs.vip`, `inputs['vip']`).
fn inputs_that_gate_steps(loaded: &LoadedRunbook) -> BTreeSet<&str> {
    let rb = &loaded.runbook;
    rb.inputs
        .keys()
        .filter(|name| {
            rb.steps
                .iter()
                .filter_map(|s| s.when.as_deref())
                .any(|when| {
                    [
                        format!("inputs.{name}"),
                        format!("inputs['{name}']"),
                        format!("inputs[\"{name}\"]"),
                    ]
                    .iter()
                    .any(|form| {
                        when.match_indices(form.as_str()).any(|(at, _)| {
                            // `inputs.vip` but not `inputs.vip_range`.
                            !when[at + form.len()..]
                                .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                        })
                    })
                })
        })
        .map(String::as_str)
        .collect()
}

/// What the person decided in a session: the steps they skipped and whether they quit.
#[derive(Default)]
pub struct Decisions {
    skipped: BTreeSet<String>,
    quit: bool,
}

/// A guided session's record of what the person let run.
#[derive(Clone, Default)]
pub struct Session(Arc<Mutex<Decisions>>);

impl Session {
    /// After the run: the steps that decide the diagnosis and were not checked because the
    /// person skipped them, quit before them, left a question unanswered, or skipped a step
    /// they need. When there are any, the report is marked incomplete and the returned
    /// line names them.
    pub fn finish(&self, loaded: &LoadedRunbook, report: &mut Report) -> Option<String> {
        let decisions = self.0.lock().expect("session lock");
        let steps = &loaded.runbook.steps;
        let mut unchecked: BTreeSet<&str> = BTreeSet::new();
        for &i in &loaded.compiled.order {
            let step = &steps[i];
            let Some(r) = report.steps.iter().find(|r| r.id == step.id.as_str()) else {
                continue;
            };
            if r.status != StepStatus::Skipped {
                continue;
            }
            let by_person = decisions.skipped.contains(step.id.as_str())
                || r.skip == Some(Skip::Unanswered)
                || (decisions.quit && r.reason.as_deref() == Some(ENDED));
            let behind_one = step.needs.iter().any(|n| unchecked.contains(n.as_str()));
            if by_person || behind_one {
                unchecked.insert(step.id.as_str());
            }
        }
        let deciding = deciding_steps(loaded);
        let named: Vec<&str> = report
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| unchecked.contains(id) && deciding.contains(id))
            .collect();
        if named.is_empty() {
            return None;
        }
        report.summary.complete = false;
        let how = if decisions.quit {
            "the session was ended"
        } else {
            "they were skipped"
        };
        Some(wrap(
            &format!(
                "Not checked ({how}): {}. The diagnosis is incomplete; run the session again to check them.",
                named.join(", ")
            ),
            "",
        ))
    }
}

/// The reason the engine gives a step that was not offered because the session ended.
const ENDED: &str = "not run: the session was ended";

/// Steps whose outcome can change the verdict: they fire a finding or say unknown, or a
/// step that needs them or comes after them does.
fn deciding_steps(loaded: &LoadedRunbook) -> BTreeSet<&str> {
    let steps = &loaded.runbook.steps;
    let mut deciding: BTreeSet<&str> = steps
        .iter()
        .filter(|s| !s.findings.is_empty() || !s.unknown.is_empty())
        .map(|s| s.id.as_str())
        .collect();
    // Walk back along needs/after until nothing changes (runbooks are small DAGs).
    loop {
        let before = deciding.len();
        for s in steps {
            if deciding.contains(s.id.as_str()) {
                for n in s.needs.iter().chain(&s.after) {
                    deciding.insert(n.as_str());
                }
            }
        }
        if deciding.len() == before {
            return deciding;
        }
    }
}

/// The hooks, the per-step printer and the session record for a guided session on `target`.
pub fn session(target: String) -> (Interaction, StepCallback, Session) {
    restore_terminal_on_interrupt();
    let record = Session::default();
    let spinner: Arc<Mutex<Option<ProgressBar>>> = Arc::new(Mutex::new(None));
    let gate_spinner = spinner.clone();
    let gate_record = record.clone();
    let gate = Box::new(move |preview: &StepPreview| {
        let step = preview.step;
        println!("{}", wrap(&format!("── {} — {}", step.id, step.title), ""));
        if let Some(d) = &step.description {
            println!(
                "{}",
                wrap_hanging(&format!("Why: {}", d.trim()), "   ", "        ")
            );
        }
        if preview.touches.is_empty() {
            println!("   It touches nothing on the target.");
        } else {
            println!("{}", wrap(&format!("It may, on {}:", safe(&target)), "   "));
            if target.contains("://") {
                println!(
                    "{}",
                    wrap(
                        "(on a remote target, http runs as curl and files are read with head -c, there)",
                        "   "
                    )
                );
            }
            for t in &preview.touches {
                println!(
                    "{}",
                    wrap_hanging(&format!("• {}", safe(&concrete(t))), "     ", "       ")
                );
            }
        }
        let choice = Select::with_theme(&ColorfulTheme::default())
            .with_prompt("Run this step? (q or Esc quits)")
            .items(["run", "skip", "quit"])
            .default(0)
            .interact_opt();
        let mut decisions = gate_record.0.lock().expect("session lock");
        match choice {
            Ok(Some(0)) => {
                let bar = ProgressBar::new_spinner();
                bar.set_message(format!("running {}", step.id));
                bar.enable_steady_tick(std::time::Duration::from_millis(80));
                *gate_spinner.lock().expect("spinner lock") = Some(bar);
                Gate::Run
            }
            Ok(Some(1)) => {
                decisions.skipped.insert(step.id.to_string());
                Gate::Skip
            }
            // quit, q, Esc, or a terminal that went away.
            _ => {
                decisions.quit = true;
                Gate::Quit
            }
        }
    });
    let ask = Box::new(|step: &crate::runbook::Step, ask: &crate::runbook::Ask| {
        println!("{}", wrap(&format!("── {} — {}", step.id, step.title), ""));
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
        let line = match &report.reason {
            Some(r) => format!("{mark}: {} [{}]", safe(r), report.id),
            None => format!("{mark} [{}] in {} ms", report.id, report.duration_ms),
        };
        println!("{}", wrap(&line, "   "));
        // What it actually did, now that the URL's query and the files are known.
        for c in report.capabilities.iter().take(6) {
            let line = format!("did: {} {} ({})", c.capability, safe(&c.request), c.outcome);
            println!("{}", wrap_hanging(&line, "   ", "        "));
        }
        if let Some(facts) = report.output.as_ref().and_then(|o| o.as_object()) {
            let shown: Vec<String> = facts
                .iter()
                .filter(|(_, v)| {
                    v.is_boolean() || v.is_number() || v.as_str().is_some_and(|s| s.len() <= 60)
                })
                .take(8)
                // The value is JSON (its controls already escaped); the key is not.
                .map(|(k, v)| format!("{}={v}", safe(k)))
                .collect();
            if !shown.is_empty() {
                println!(
                    "{}",
                    wrap_hanging(&format!("facts: {}", shown.join(", ")), "   ", "          ")
                );
            }
        }
        for f in findings {
            let sev = match f.severity {
                Severity::Error => "ERROR",
                Severity::Warning => "WARNING",
                Severity::Info => "INFO",
            };
            println!(
                "{}",
                wrap(
                    &format!(
                        "{sev} {}{}: {}",
                        f.id,
                        f.code
                            .as_deref()
                            .map(|c| format!(" [{c}]"))
                            .unwrap_or_default(),
                        safe(&f.title)
                    ),
                    "   "
                )
            );
            if let Some(fix) = &f.fix {
                println!(
                    "{}",
                    wrap_hanging(&format!("fix: {}", safe(fix)), "   ", "        ")
                );
            }
            println!(
                "{}",
                wrap_hanging(
                    &format!(
                        "help: {}{}",
                        f.explain_command(),
                        f.help
                            .as_deref()
                            .map(|u| format!(" · {u}"))
                            .unwrap_or_default()
                    ),
                    "   ",
                    "         "
                )
            );
        }
        println!();
    });
    (Interaction { gate, ask }, on_step, record)
}

/// A declared capability as the call it will be: `http GET http://localhost:15000/config_dump`,
/// not the policy pattern `http://localhost:15000/config_dump**`. A trailing wildcard (a
/// query or sub-path the plugin adds) is dropped; one in the middle reads `…`.
fn concrete(touch: &str) -> String {
    let (kind, what) = touch.split_once(' ').unwrap_or(("", touch));
    let what = what.trim_end_matches('*').trim_end();
    let what = what.replace("**", "…").replace('*', "…");
    match kind {
        "http" if !what.starts_with("GET ") => format!("http GET {what}"),
        "" => what,
        _ => format!("{kind} {what}"),
    }
}

/// Ctrl-C while a prompt or the spinner has hidden the cursor would leave it hidden in the
/// shell: show it again, say what happened, and end with 130 (the shell's code for SIGINT).
fn restore_terminal_on_interrupt() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Its own thread and runtime: the session's thread is blocked in a prompt.
        let ready = Arc::new(std::sync::Barrier::new(2));
        let listening = ready.clone();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                listening.wait();
                return;
            };
            rt.block_on(async move {
                let signal = tokio::signal::ctrl_c();
                tokio::pin!(signal);
                // Registered on the first poll; only then may the session start.
                let _ = futures::poll!(&mut signal);
                listening.wait();
                let _ = signal.await;
            });
            let _ = Term::stdout().show_cursor();
            let _ = Term::stderr().show_cursor();
            eprintln!(
                "\ninterrupted: the session was ended and not saved; nothing after this was checked"
            );
            std::process::exit(130);
        });
        ready.wait();
    });
}

/// The terminal's width (80 when it cannot be told), for wrapping.
fn width() -> usize {
    let (_, cols) = Term::stdout().size();
    (cols as usize).clamp(40, 160)
}

/// `text` wrapped at word boundaries, every line indented by `indent`.
fn wrap(text: &str, indent: &str) -> String {
    wrap_hanging(text, indent, indent)
}

/// `text` wrapped at word boundaries to the terminal's width: the first line indented by
/// `first`, the rest by `rest`. A word longer than a line is left whole (a URL or a path is
/// worth more unbroken). Paragraph breaks in `text` are kept.
fn wrap_hanging(text: &str, first: &str, rest: &str) -> String {
    wrap_to(text, first, rest, width())
}

fn wrap_to(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    let mut indent_len = first.chars().count();
    let mut at_start = true;
    for (p, paragraph) in text.split('\n').enumerate() {
        if p > 0 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            indent_len = rest.chars().count();
            at_start = true;
        }
        for word in paragraph.split_whitespace() {
            let len = line.chars().count();
            if !at_start && len + 1 + word.chars().count() > width {
                out.push_str(line.trim_end());
                out.push('\n');
                line = String::from(rest);
                indent_len = rest.chars().count();
                at_start = true;
            }
            if !at_start {
                line.push(' ');
            }
            line.push_str(word);
            at_start = line.chars().count() == indent_len;
        }
    }
    out.push_str(line.trim_end());
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_word_boundaries_with_a_hanging_indent() {
        let text = "Envoy only sees the application's traffic if netfilter redirects it.";
        let out = wrap_to(text, "   Why: ", "        ", 30);
        assert_eq!(
            out,
            "   Why: Envoy only sees the\n        application's traffic\n        if netfilter redirects\n        it."
        );
        for line in out.lines() {
            assert!(line.chars().count() <= 30, "{line:?}");
        }
        // A word longer than the line stays whole.
        let long = wrap_to(
            "see http://localhost:15000/config_dump?include_eds now",
            "",
            "",
            20,
        );
        assert_eq!(
            long,
            "see\nhttp://localhost:15000/config_dump?include_eds\nnow"
        );
    }

    #[test]
    fn touches_read_as_the_calls_they_will_be() {
        assert_eq!(
            concrete("http http://localhost:15000/config_dump**"),
            "http GET http://localhost:15000/config_dump"
        );
        assert_eq!(
            concrete("exec iptables -t nat -S"),
            "exec iptables -t nat -S"
        );
        assert_eq!(
            concrete("exec kubectl get * -o json"),
            "exec kubectl get … -o json"
        );
    }
}
