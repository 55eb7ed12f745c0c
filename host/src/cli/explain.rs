//! `triage explain CODE|FINDING-ID`: a finding's help page, offline. The project has no
//! public site, so the help link a report prints beside a finding's code is this command:
//! it reads the runbooks triage finds (the user's, then the built-in ones, embedded in the
//! binary) and the finding contract embedded with them, and prints what the finding means,
//! where each runbook checks it, the fix (its template: values are filled in from the
//! system when a runbook runs) and the guide section with its public page.

use super::CliResult;
use super::Failure;
use crate::catalog;
use crate::report::human::terminal_safe;
use crate::runbook::{GuideRef, Runbook};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// runbooks/findings.yaml, the built-in findings' contract: its one-line meanings.
const CONTRACT: &str = include_str!("../../../runbooks/findings.yaml");

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// A finding's code (`TRG0403`, any case) or id (`interception-missing`); without it,
    /// every finding's code, id, severity and meaning, one a line.
    #[arg(value_name = "CODE|FINDING-ID")]
    pub finding: Option<String>,
}

#[derive(Deserialize)]
struct Contract {
    findings: Vec<ContractEntry>,
}

#[derive(Deserialize)]
struct ContractEntry {
    id: String,
    code: Option<String>,
    severity: String,
    meaning: String,
    #[serde(default)]
    retired: bool,
}

/// One place a runbook declares the finding.
struct Declaration {
    runbook: String,
    runbook_title: String,
    origin: String,
    guide: Option<GuideRef>,
    step: String,
    step_title: String,
    step_description: Option<String>,
    finding: crate::runbook::FindingSpec,
}

/// Every finding every runbook triage finds declares, with doctor's detection runbook.
/// A runbook that does not parse is left out here: `triage lint` is where it is reported.
fn declarations() -> Vec<Declaration> {
    let mut sources: Vec<(String, String)> = catalog::runnable()
        .into_iter()
        .filter_map(|(_, source)| Some((source.origin(), source.text().ok()?)))
        .collect();
    sources.push((
        "built-in:doctor-detect".into(),
        super::doctor::DETECT.to_string(),
    ));
    let mut out = Vec::new();
    for (origin, text) in sources {
        let Ok(runbook) = serde_yaml::from_str::<Runbook>(&text) else {
            continue;
        };
        for step in &runbook.steps {
            for finding in &step.findings {
                out.push(Declaration {
                    runbook: runbook.id.to_string(),
                    runbook_title: runbook.title.clone(),
                    origin: origin.clone(),
                    guide: runbook.guide.clone(),
                    step: step.id.to_string(),
                    step_title: step.title.clone(),
                    step_description: step.description.clone(),
                    finding: finding.clone(),
                });
            }
        }
    }
    out
}

fn contract() -> Vec<ContractEntry> {
    serde_yaml::from_str::<Contract>(CONTRACT)
        .map(|c| c.findings)
        .unwrap_or_default()
}

pub fn run(args: &ExplainArgs) -> CliResult {
    let declared = declarations();
    let contract = contract();
    let Some(wanted) = &args.finding else {
        print!("{}", list(&declared, &contract));
        return Ok(0);
    };
    match explain(wanted, &declared, &contract) {
        Some(text) => {
            print!("{}", terminal_safe(&text));
            Ok(0)
        }
        None => Err(Failure::usage(format!(
            "no finding has the code or id `{}`; `triage explain` lists them",
            terminal_safe(wanted).replace('\n', "\\n")
        ))),
    }
}

/// A line per finding: code, id, severity, meaning (from the contract, else the title).
fn list(declared: &[Declaration], contract: &[ContractEntry]) -> String {
    let mut rows: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for d in declared {
        let code = d
            .finding
            .code
            .as_ref()
            .map(|c| c.as_str().to_string())
            .unwrap_or_else(|| "-".into());
        let meaning = contract
            .iter()
            .find(|e| e.id == d.finding.id.as_str())
            .map(|e| e.meaning.clone())
            .unwrap_or_else(|| d.finding.title.lines().next().unwrap_or_default().into());
        rows.entry((code, d.finding.id.to_string()))
            .or_insert((d.finding.severity.as_str().to_string(), meaning));
    }
    let mut out = String::new();
    for ((code, id), (severity, meaning)) in rows {
        let _ = writeln!(out, "{code:<8} {id:<32} {severity:<7}  {meaning}");
    }
    terminal_safe(&out).into_owned()
}

/// The help page of the finding whose code or id is `wanted`, or None when nothing has it.
fn explain(wanted: &str, declared: &[Declaration], contract: &[ContractEntry]) -> Option<String> {
    let code_wanted = wanted.to_ascii_uppercase();
    let matches: Vec<&Declaration> = declared
        .iter()
        .filter(|d| {
            d.finding.id.as_str() == wanted
                || d.finding
                    .code
                    .as_ref()
                    .is_some_and(|c| c.as_str() == code_wanted)
        })
        .collect();
    let entry = contract
        .iter()
        .find(|e| e.id == wanted || e.code.as_deref() == Some(code_wanted.as_str()));
    let first = matches.first();
    let id = first
        .map(|d| d.finding.id.to_string())
        .or_else(|| entry.map(|e| e.id.clone()))?;
    let code = first
        .and_then(|d| d.finding.code.as_ref().map(|c| c.as_str().to_string()))
        .or_else(|| entry.and_then(|e| e.code.clone()));
    let severity = first
        .map(|d| d.finding.severity.as_str().to_string())
        .or_else(|| entry.map(|e| e.severity.clone()))
        .unwrap_or_default();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}{id} ({severity})",
        code.as_deref()
            .map(|c| format!("{c}  "))
            .unwrap_or_default()
    );
    if let Some(e) = entry {
        let _ = writeln!(out, "{}", e.meaning);
        if e.retired {
            let _ = writeln!(
                out,
                "Retired: no runbook fires it any more; its code is never given to another finding."
            );
        }
    }
    let mut guides: Vec<&GuideRef> = Vec::new();
    for d in &matches {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Runbook {}: {}  [{}]",
            d.runbook, d.runbook_title, d.origin
        );
        let _ = writeln!(out, "  Step {}: {}", d.step, d.step_title);
        if let Some(why) = &d.step_description {
            let _ = writeln!(out, "  Why it matters: {}", one_paragraph(why));
        }
        let _ = writeln!(out, "  Fires when: {}", d.finding.when.trim());
        let _ = writeln!(out, "  Says: {}", one_paragraph(&d.finding.title));
        if let Some(detail) = &d.finding.detail {
            let _ = writeln!(out, "  Cause: {}", one_paragraph(detail));
        }
        if let Some(fix) = &d.finding.fix {
            let _ = writeln!(
                out,
                "  Fix (what is between {{{{ }}}} is filled in from your system when the runbook runs):"
            );
            for line in fix.trim().lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(help) = &d.finding.help {
            let _ = writeln!(out, "  More: {}", help.as_str());
        }
        let _ = writeln!(out, "  Run it: triage run {}", d.runbook);
        if let Some(g) = &d.guide
            && !guides.contains(&g)
        {
            guides.push(g);
        }
    }
    for g in guides {
        let _ = writeln!(out);
        let _ = writeln!(out, "Guide section: {}", g.title);
        if let Some(es) = &g.title_es {
            let _ = writeln!(out, "  (Spanish: {es})");
        }
        let _ = writeln!(out, "  {}", g.url.as_str());
    }
    Some(out)
}

/// A template's text on one line: runbooks fold long text over several.
fn one_paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
