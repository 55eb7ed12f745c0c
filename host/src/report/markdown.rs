//! The Markdown rendering, for tickets and chat.
//!
//! Text from the system under diagnosis ends up in here (evidence, and facts rendered into
//! titles, details and fixes), so none of it may become markup the report did not write:
//! raw HTML outside code spans is escaped ([`inline`]), evidence sits in a fence longer
//! than any run of backticks it holds ([`fenced`]), and names go in code spans that their
//! own backticks cannot close ([`code`]). Control characters are escaped as in the human
//! report ([`terminal_safe`]): a ticket is often read with `cat`.

use super::Report;
use super::fleet::FleetReport;
use super::human::terminal_safe;
use crate::runbook::Severity;
use std::fmt::Write;

/// The longest run of backticks in `s`.
fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Text as a code span: opened and closed by more backticks than it holds, with a space
/// inside when it starts or ends with one (CommonMark strips one space each side).
fn code(s: &str) -> String {
    let s = terminal_safe(s).replace('\n', " ");
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A fenced block: the fence is longer than any run of backticks inside, so no line of
/// the content can close it.
fn fenced(s: &str) -> String {
    let s = terminal_safe(s);
    let ticks = "`".repeat(longest_backtick_run(&s).max(2) + 1);
    format!("{ticks}\n{s}\n{ticks}")
}

/// Running text (a finding's detail and fix, titles, reasons): the code spans a runbook
/// author wrote stay as they are (inside one, HTML is already literal), and everywhere else
/// `<` and `&` are written as entities, so no tag or entity from a fact reaches a renderer.
/// Spans are found as CommonMark finds them: a run of backticks closed by the next run of
/// the same length, a backslash-escaped backtick opening none.
pub fn inline(s: &str) -> String {
    let s = terminal_safe(s);
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_ref();
    while let Some(c) = rest.chars().next() {
        match c {
            '\\' if rest[1..].starts_with(['`', '<', '&']) => {
                // `\`` is a literal backtick, not a span; keep the pair as written.
                let next = &rest[1..2];
                out.push('\\');
                out.push_str(match next {
                    "<" => "&lt;",
                    "&" => "&amp;",
                    other => other,
                });
                rest = &rest[2..];
            }
            '`' => {
                let run = rest.len() - rest.trim_start_matches('`').len();
                let after = &rest[run..];
                match find_closing_run(after, run) {
                    Some(end) => {
                        out.push_str(&rest[..run + end + run]);
                        rest = &rest[run + end + run..];
                    }
                    None => {
                        out.push_str(&rest[..run]);
                        rest = after;
                    }
                }
            }
            '<' => {
                out.push_str("&lt;");
                rest = &rest[1..];
            }
            '&' => {
                out.push_str("&amp;");
                rest = &rest[1..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Where the next run of exactly `len` backticks starts in `s`.
fn find_closing_run(s: &str, len: usize) -> Option<usize> {
    let mut i = 0;
    while let Some(found) = s[i..].find('`') {
        let start = i + found;
        let run = s[start..].len() - s[start..].trim_start_matches('`').len();
        if run == len {
            return Some(start);
        }
        i = start + run;
    }
    None
}

/// A table cell: running text on one line, with its pipes escaped.
fn cell(s: &str) -> String {
    inline(s).replace('|', "\\|").replace('\n', " ")
}

/// A heading or a line of its own: running text on one line.
fn line(s: &str) -> String {
    inline(s).replace('\n', " ")
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}: {}\n",
        line(&report.runbook.id),
        line(&report.runbook.title)
    );
    if let Some(guide) = &report.runbook.guide {
        let es = guide
            .title_es
            .as_deref()
            .or(report.runbook.source.as_deref())
            .map(|es| format!(" (*{}*)", line(es)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Guide section: [{}]({}){es}  ",
            line(&guide.title).replace(['[', ']'], ""),
            guide.url.as_str()
        );
    } else if let Some(source) = &report.runbook.source {
        let _ = writeln!(out, "Guide section: *{}*  ", line(source));
    }
    let _ = writeln!(out, "Target: {}  ", code(&report.target));
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
            let (finding_code, help) = f.code_and_help(code, |url| format!("[guide]({url})"));
            let _ = writeln!(
                out,
                "### {icon} {}{finding_code} — {}\n",
                code(&f.id),
                line(&f.title)
            );
            let _ = writeln!(
                out,
                "*{}* · step {} · help: {help}\n",
                f.severity.as_str(),
                code(&f.step),
            );
            // An empty field (a template that rendered nothing) shows nothing, not an
            // empty fence or a bare label.
            let present = |t: &Option<String>| t.clone().filter(|t| !t.trim().is_empty());
            if let Some(d) = present(&f.detail) {
                let _ = writeln!(out, "{}\n", inline(&d));
            }
            if let Some(e) = present(&f.evidence) {
                let _ = writeln!(out, "Evidence:\n\n{}\n", fenced(e.trim_end_matches('\n')));
            }
            if let Some(fix) = present(&f.fix) {
                let _ = writeln!(out, "**Fix:** {}\n", inline(&fix));
            }
        }
    }
    let _ = writeln!(out, "## Steps\n");
    let _ = writeln!(out, "| step | status | time | note |");
    let _ = writeln!(out, "|---|---|---|---|");
    for st in &report.steps {
        let _ = writeln!(
            out,
            "| {} {} | {} | {} ms | {} |",
            code(&st.id).replace('|', "\\|"),
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
        line(&report.runbook),
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
                "| {} {} | {} | {} |",
                code(id).replace('|', "\\|"),
                cell(&f.title),
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
            "| {} | {} | {} | {} |",
            code(&t.target).replace('|', "\\|"),
            t.status.as_str(),
            cell(&note),
            steps.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_outside_code_spans_is_escaped_and_spans_stay() {
        assert_eq!(
            inline("run `a && b <x>` then <img src=x onerror=alert(1)> & co"),
            "run `a && b <x>` then &lt;img src=x onerror=alert(1)> &amp; co"
        );
        // An unclosed run is literal text; what follows is still escaped.
        assert_eq!(inline("`` <b>` x"), "`` &lt;b>` x");
        // An escaped backtick opens no span.
        assert_eq!(inline("\\`<b>`"), "\\`&lt;b>`");
    }

    #[test]
    fn fences_and_spans_outlast_the_backticks_inside() {
        assert_eq!(fenced("a\n```\nb"), "````\na\n```\nb\n````");
        assert_eq!(fenced("plain"), "```\nplain\n```");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
    }

    #[test]
    fn empty_evidence_renders_as_nothing() {
        use crate::report::tests::one_finding;
        for evidence in [None, Some(""), Some("\n\n"), Some("  \t\n ")] {
            let md = render(&one_finding(Some(" "), evidence, Some("")));
            assert!(!md.contains("Evidence"), "{evidence:?}: {md}");
            assert!(!md.contains("```"), "{evidence:?}: {md}");
            assert!(!md.contains("**Fix:**"), "{md}");
        }
        // Evidence that holds control characters is shown, with them escaped.
        let md = render(&one_finding(None, Some("\u{1b}[31mred\u{0}\u{7}\r"), None));
        assert!(
            md.contains("Evidence:\n\n```\n\\x1b[31mred\\x00\\x07\\x0d\n```"),
            "{md}"
        );
        assert!(!md.contains(['\u{1b}', '\u{0}', '\u{7}', '\r']), "{md:?}");
    }

    #[test]
    fn a_finding_heading_carries_its_code_and_help_line() {
        let md = render(&crate::report::tests::one_finding(None, None, None));
        assert!(
            md.contains("### 🔴 `interception-missing` `TRG0101` — No interception chain"),
            "{md}"
        );
        assert!(
            md.contains("*error* · step `interception` · help: `triage explain TRG0101` · [guide](https://example.com/guide#interception)"),
            "{md}"
        );
    }
}
