//! Slack's mrkdwn, for the result a chat bot posts: `*bold*`, `_italic_`, code spans and
//! blocks, `<url|text>` links; no headings and no tables, so steps are a list.

use super::Report;
use crate::runbook::Severity;
use std::fmt::Write;

/// Slack accepts 40,000 characters of text; leave room for the cut notice.
const MAX_CHARS: usize = 38_000;

/// Slack reads `&`, `<` and `>` as markup; everything the runbook or target wrote is escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Code spans cannot hold a backtick in mrkdwn; a look-alike keeps the text readable.
fn code(s: &str) -> String {
    format!("`{}`", escape(&s.replace('`', "ˋ")))
}

pub fn render(report: &Report, run_id: &str) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let verdict = if s.errors > 0 {
        ":red_circle:"
    } else if s.errored > 0 {
        ":grey_question:"
    } else if s.warnings > 0 {
        ":large_orange_circle:"
    } else {
        ":large_green_circle:"
    };
    let _ = writeln!(
        out,
        "{verdict} *{}* on {} — {}",
        escape(&report.runbook.title),
        code(&report.target),
        code(&report.runbook.id)
    );
    let _ = writeln!(
        out,
        "{} error(s), {} warning(s), {} info · steps: {} passed, {} failed, {} skipped, {} errored · run {}",
        s.errors,
        s.warnings,
        s.infos,
        s.passed,
        s.failed,
        s.skipped,
        s.errored,
        code(run_id)
    );
    if let Some(guide) = &report.runbook.guide {
        let _ = writeln!(
            out,
            "Guide: <{}|{}>",
            guide.url.as_str(),
            escape(&guide.title).replace('|', "¦")
        );
    }
    for f in &report.findings {
        let icon = match f.severity {
            Severity::Error => ":red_circle:",
            Severity::Warning => ":large_orange_circle:",
            Severity::Info => ":large_blue_circle:",
        };
        let finding_code = f
            .code
            .as_deref()
            .map(|c| format!(" {}", code(c)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{icon} *{}* ({}{finding_code})",
            escape(&f.title),
            code(&f.id)
        );
        if let Some(d) = &f.detail {
            let _ = writeln!(out, "{}", escape(d.trim()));
        }
        if let Some(e) = &f.evidence {
            let _ = writeln!(out, "```{}```", escape(e.trim()).replace("```", "ˋˋˋ"));
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "*Fix:* {}", escape(fix.trim()));
        }
        // A help URL comes from a runbook (trusted, and checked to hold no markup), so it
        // is a link; the explain command is shown as code.
        let help = f
            .help
            .as_deref()
            .map(|u| format!(" · <{u}|guide>"))
            .unwrap_or_default();
        let _ = writeln!(out, "*Help:* {}{help}", code(&f.explain_command()));
    }
    let errored: Vec<_> = report
        .steps
        .iter()
        .filter(|st| {
            matches!(
                st.status,
                super::StepStatus::Errored | super::StepStatus::Unknown
            )
        })
        .collect();
    if !errored.is_empty() {
        let _ = writeln!(
            out,
            "\n*Incomplete: steps that could not see their subject:*"
        );
        for st in errored {
            let _ = writeln!(
                out,
                "• {} {}: {}",
                code(&st.id),
                escape(&st.title),
                escape(st.reason.as_deref().unwrap_or("errored"))
            );
        }
    }
    if out.chars().count() > MAX_CHARS {
        let cut: String = out.chars().take(MAX_CHARS).collect();
        out = format!("{cut}\n… (cut; the whole report is at GET /v1/runs/{run_id})\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(super::escape("<a & b>"), "&lt;a &amp; b&gt;");
        assert_eq!(super::code("x`y"), "`xˋy`");
    }
}
