//! Slack's mrkdwn, for the result a chat bot posts: `*bold*`, `_italic_`, code spans and
//! blocks, `<url|text>` links; no headings and no tables, so steps are a list.

use super::Report;
use super::human::terminal_safe;
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

/// Text from the target (a finding's detail, evidence and fix): escaped as markup, and its
/// control characters written as escapes as in the other reports, so a terminal sequence
/// or a NUL in a log line reaches the channel as text that can be read.
fn text(s: &str) -> String {
    escape(&terminal_safe(s))
}

/// Code spans cannot hold a backtick in mrkdwn; a look-alike keeps the text readable.
fn code(s: &str) -> String {
    format!("`{}`", text(&s.replace('`', "ˋ")))
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
        // A help URL comes from a runbook (trusted, and checked to hold no markup), so it
        // is a link; the explain command is shown as code.
        let (finding_code, help) = f.code_and_help(code, |url| format!("<{url}|guide>"));
        let _ = writeln!(
            out,
            "\n{icon} *{}* ({}{finding_code})",
            text(&f.title),
            code(&f.id)
        );
        // An empty field (a template that rendered nothing, evidence of blank lines) shows
        // nothing: an empty code block is six backticks on the screen.
        fn present(t: &Option<String>) -> Option<&str> {
            t.as_deref().map(str::trim).filter(|t| !t.is_empty())
        }
        if let Some(d) = present(&f.detail) {
            let _ = writeln!(out, "{}", text(d));
        }
        if let Some(e) = present(&f.evidence) {
            let _ = writeln!(out, "```{}```", text(e).replace("```", "ˋˋˋ"));
        }
        if let Some(fix) = present(&f.fix) {
            let _ = writeln!(out, "*Fix:* {}", text(fix));
        }
        let _ = writeln!(out, "*Help:* {help}");
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

    #[test]
    fn empty_evidence_renders_as_nothing() {
        use crate::report::tests::one_finding;
        for evidence in [None, Some(""), Some("\n\n"), Some("  \t\n ")] {
            let text = super::render(&one_finding(Some(""), evidence, Some(" ")), "r1");
            assert!(!text.contains("```"), "{evidence:?}: {text}");
            assert!(!text.contains("*Fix:*"), "{text}");
        }
        // Control characters from the target are written as escapes, and markup escaped.
        let text = super::render(
            &one_finding(None, Some("\u{1b}[2J<!channel>\u{0}```x"), Some("run\u{7}")),
            "r1",
        );
        assert!(
            text.contains("```\\x1b[2J&lt;!channel&gt;\\x00ˋˋˋx```"),
            "{text}"
        );
        assert!(text.contains("*Fix:* run\\x07"), "{text}");
        assert!(!text.contains(['\u{1b}', '\u{0}', '\u{7}']), "{text:?}");
    }

    #[test]
    fn a_finding_line_carries_its_code_and_help_line() {
        let text = super::render(&crate::report::tests::one_finding(None, None, None), "r1");
        assert!(
            text.contains(
                ":red_circle: *No interception chain* (`interception-missing` `TRG0101`)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "*Help:* `triage explain TRG0101` · <https://example.com/guide#interception|guide>"
            ),
            "{text}"
        );
    }
}
