//! The terminal rendering.
//!
//! Text from the system under diagnosis (facts, evidence, reasons, names in a bundle) goes
//! through [`terminal_safe`] before it is printed: a log line holding `ESC[2J` or an OSC 52
//! clipboard write must show as text, not act on the reader's terminal.

use super::Status;
use super::fleet::FleetReport;
use super::{Report, StepStatus};
use crate::runbook::Severity;
use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character that would act on a terminal written out as an
/// escape (`\x1b`, `\u{9b}`): C0 except newline and tab, DEL, C1, and the Unicode
/// direction overrides that reorder what is shown (U+202A–U+202E, U+2066–U+2069). The
/// human report and guided mode print everything from the target through this.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let acts = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !text.chars().any(acts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !acts(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// One line of it: a newline inside would start a line that looks like the report's own.
pub fn one_line(text: &str) -> String {
    terminal_safe(text).replace('\n', "\\n")
}

/// `--color always|never` for the whole process; unset is `auto`.
static COLOR_CHOICE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Overrides [`use_color`] for the rest of the process (`--color always` or `never`).
pub fn force_color(on: bool) {
    let _ = COLOR_CHOICE.set(on);
}

/// Whether to colour: as `--color` says, else only on a terminal and never with NO_COLOR
/// set (https://no-color.org).
pub fn use_color(is_terminal: bool) -> bool {
    if let Some(&forced) = COLOR_CHOICE.get() {
        return forced;
    }
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
    fn red(&self, t: &str) -> String {
        self.wrap("31;1", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.wrap("33;1", t)
    }
    fn green(&self, t: &str) -> String {
        self.wrap("32", t)
    }
    fn magenta(&self, t: &str) -> String {
        self.wrap("35;1", t)
    }
    fn blue(&self, t: &str) -> String {
        self.wrap("34;1", t)
    }
}

pub fn render(report: &Report, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        p.bold(&one_line(&report.runbook.id)),
        one_line(&report.runbook.title)
    );
    if let Some(guide) = &report.runbook.guide {
        let es = guide
            .title_es
            .as_deref()
            .or(report.runbook.source.as_deref())
            .map(|es| format!(" / {}", one_line(es)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}",
            p.dim(&format!("guide: {}{es}", one_line(&guide.title)))
        );
        let _ = writeln!(
            out,
            "{}",
            p.dim(&format!("       {}", one_line(guide.url.as_str())))
        );
    } else if let Some(source) = &report.runbook.source {
        let _ = writeln!(out, "{}", p.dim(&format!("guide: {}", one_line(source))));
    }
    let _ = writeln!(
        out,
        "{}",
        p.dim(&format!("target: {}", one_line(&report.target)))
    );
    let _ = writeln!(out);
    let width = report.steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    for s in &report.steps {
        let mark = match s.status {
            StepStatus::Passed => p.green("✓"),
            StepStatus::Failed if s.severity == Some(Severity::Error) => p.red("✗"),
            StepStatus::Failed => p.yellow("⚠"),
            StepStatus::Unknown => p.magenta("?"),
            StepStatus::Skipped => p.dim("-"),
            StepStatus::Errored => p.yellow("!"),
        };
        let _ = write!(
            out,
            "  {mark} {:<width$}  {}",
            one_line(&s.id),
            one_line(&s.title)
        );
        if s.status != StepStatus::Skipped {
            let _ = write!(out, " {}", p.dim(&format!("({} ms)", s.duration_ms)));
        }
        let _ = writeln!(out);
        if let Some(reason) = &s.reason {
            let label = if s.status == StepStatus::Errored {
                "error"
            } else {
                s.status.as_str()
            };
            let _ = writeln!(
                out,
                "    {:<width$}  {}",
                "",
                p.dim(&format!("{label}: {}", one_line(reason)))
            );
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", p.bold("Findings"));
        for f in &report.findings {
            let sev = match f.severity {
                Severity::Error => p.red("ERROR  "),
                Severity::Warning => p.yellow("WARNING"),
                Severity::Info => p.blue("INFO   "),
            };
            let code = f
                .code
                .as_deref()
                .map(|c| format!(" [{}]", one_line(c)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {sev} {}{code}  {}",
                p.bold(&one_line(&f.id)),
                one_line(&f.title)
            );
            for (label, text) in [
                ("detail", &f.detail),
                ("evidence", &f.evidence),
                ("fix", &f.fix),
            ] {
                if let Some(text) = text {
                    let text = terminal_safe(text);
                    let mut lines = text.lines();
                    if let Some(first) = lines.next() {
                        let _ = writeln!(out, "          {} {first}", p.dim(&format!("{label}:")));
                        for line in lines {
                            let _ = writeln!(
                                out,
                                "          {:width$} {line}",
                                "",
                                width = label.len() + 1
                            );
                        }
                    }
                }
            }
            let link = f
                .help
                .as_deref()
                .map(|u| format!(" · {}", one_line(u)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "          {} {}{link}",
                p.dim("help:"),
                one_line(&f.explain_command())
            );
        }
    }
    let s = &report.summary;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} error{}, {} warning{}, {} info · {} steps: {} passed, {} failed, {} unknown, {} skipped, {} errored · {} ms",
        s.errors,
        if s.errors == 1 { "" } else { "s" },
        s.warnings,
        if s.warnings == 1 { "" } else { "s" },
        s.infos,
        report.steps.len(),
        s.passed,
        s.failed,
        s.unknown,
        s.skipped,
        s.errored,
        report.duration_ms
    );
    if !s.complete {
        let unseen: Vec<&str> = report
            .steps
            .iter()
            .filter(|st| matches!(st.status, StepStatus::Unknown | StepStatus::Errored))
            .map(|st| st.id.as_str())
            .collect();
        // Guided mode also ends incomplete when a deciding step was skipped; it names those.
        let text = if unseen.is_empty() {
            "Incomplete: not every check that decides the diagnosis was run.".to_string()
        } else {
            format!(
                "Incomplete: not every check could see its subject ({}); the verdict may miss a problem there.",
                unseen.join(", ")
            )
        };
        let _ = writeln!(out, "{}", p.yellow(&text));
    }
    out
}

/// A fleet run: each target's status and findings, then each finding across the fleet.
pub fn fleet(report: &FleetReport) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let mark = match t.status {
            Status::Ok => "✓",
            Status::Failing => "✗",
            Status::Incomplete => "?",
            _ => "!",
        };
        let ids: Vec<String> = t
            .findings
            .iter()
            .map(|f| format!("{} ({})", f.id, f.severity.as_str()))
            .collect();
        let note = match &t.error {
            Some(e) => e.clone(),
            None if ids.is_empty() => "no findings".into(),
            None => ids.join(", "),
        };
        let _ = writeln!(out, "  {mark} {}  {}", one_line(&t.target), one_line(&note));
        if let Some(steps) = &t.steps {
            let _ = writeln!(out, "      steps: {}", steps.line());
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nAcross the fleet:");
        for (id, f) in &report.findings {
            let shown: Vec<&str> = f.targets.iter().take(5).map(String::as_str).collect();
            let more = f.targets.len().saturating_sub(shown.len());
            let _ = writeln!(
                out,
                "  {} {} on {} target(s): {}{}",
                f.severity.as_str(),
                one_line(id),
                f.targets.len(),
                one_line(&shown.join(", ")),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(out, "\n{}", report.summary_line());
    out
}
