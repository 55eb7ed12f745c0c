//! The Markdown rendering, for tickets and chat.

use super::Report;
use super::fleet::FleetReport;
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
        "Result: **{} error(s), {} warning(s), {} info** · {} passed, {} failed, {} unknown, {} skipped, {} errored\n",
        s.errors, s.warnings, s.infos, s.passed, s.failed, s.unknown, s.skipped, s.errored
    );
    if !s.complete {
        let _ = writeln!(
            out,
            "**Incomplete:** some checks could not see their subject (steps marked unknown or errored below); the verdict may miss a problem there.\n"
        );
    }
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
            match (st.status, st.severity) {
                (super::StepStatus::Failed, Some(sev)) => format!("failed ({})", sev.as_str()),
                (status, _) => status.as_str().to_string(),
            },
            st.duration_ms,
            cell(st.reason.as_deref().unwrap_or(""))
        );
    }
    out
}

/// A fleet run: the findings across the fleet, then a table of targets.
pub fn fleet(report: &FleetReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} on {} targets\n\n{}\n",
        report.runbook,
        report.summary.targets,
        report.summary_line()
    );
    if !report.findings.is_empty() {
        let _ = writeln!(
            out,
            "## Findings across the fleet\n\n| finding | severity | targets |\n|---|---|---|"
        );
        for (id, f) in &report.findings {
            let _ = writeln!(
                out,
                "| `{id}` {} | {} | {} |",
                f.title.replace('|', "\\|"),
                f.severity.as_str(),
                f.targets.len()
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "## Targets\n\n| target | status | findings | steps |\n|---|---|---|---|"
    );
    for t in &report.targets {
        let ids: Vec<String> = t
            .findings
            .iter()
            .map(|f| format!("{} ({})", f.id, f.severity.as_str()))
            .collect();
        let note = t.error.clone().unwrap_or_else(|| ids.join(", "));
        let steps = t.steps.as_ref().map(|s| s.line()).unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            t.target,
            t.status.as_str(),
            note.replace('|', "\\|"),
            steps.replace('|', "\\|")
        );
    }
    out
}
