//! The Markdown rendering, for tickets and chat.

use super::Report;
use crate::runbook::Severity;
use std::fmt::Write;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}: {}\n", report.runbook.id, report.runbook.title);
    if let Some(source) = &report.runbook.source {
        let _ = writeln!(out, "Guide section: *{source}*  ");
    }
    let _ = writeln!(out, "Target: `{}`  ", report.target);
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Result: **{} error(s), {} warning(s), {} info** · {} passed, {} failed, {} skipped, {} errored\n",
        s.errors, s.warnings, s.infos, s.passed, s.failed, s.skipped, s.errored
    );
    if !report.findings.is_empty() {
        let _ = writeln!(out, "## Findings\n");
        for f in &report.findings {
            let icon = match f.severity {
                Severity::Error => "🔴",
                Severity::Warning => "🟠",
                Severity::Info => "🔵",
            };
            let _ = writeln!(out, "### {icon} `{}` — {}\n", f.id, f.title);
            let _ = writeln!(out, "*{}* · step `{}`\n", f.severity.as_str(), f.step);
            if let Some(d) = &f.detail {
                let _ = writeln!(out, "{d}\n");
            }
            if let Some(e) = &f.evidence {
                let _ = writeln!(out, "Evidence:\n\n```\n{e}\n```\n");
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "**Fix:** {fix}\n");
            }
        }
    }
    let _ = writeln!(out, "## Steps\n");
    let _ = writeln!(out, "| step | status | time | note |");
    let _ = writeln!(out, "|---|---|---|---|");
    for st in &report.steps {
        let _ = writeln!(
            out,
            "| `{}` {} | {} | {} ms | {} |",
            st.id,
            cell(&st.title),
            st.status.as_str(),
            st.duration_ms,
            cell(st.reason.as_deref().unwrap_or(""))
        );
    }
    out
}
