//! `triage graph RUNBOOK`: the DAG as a picture (Mermaid or Graphviz dot), with the
//! conditions on its edges.

use super::{Cli, CliResult};
use crate::runbook::{Runbook, Step};
use clap::ValueEnum;
use std::fmt::Write;

#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// The runbook: an id (`service-unreachable`) or a path to a YAML file.
    runbook: String,
    /// The picture's language.
    #[arg(long, short = 'o', value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
}

pub fn run(cli: &Cli, args: &GraphArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let loaded = super::load_runbook(&args.runbook, &runtime)?;
    print!("{}", graph(&loaded.runbook, args.format));
    Ok(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart (GitHub and GitLab render it in Markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

fn node_label(step: &Step) -> String {
    let mut label = format!("{}: {}", step.id, step.title);
    if let Some(p) = &step.probe {
        let _ = write!(label, "\n{}/{}", p.plugin, p.action);
    }
    if let Some(a) = &step.ask {
        let _ = write!(label, "\nask: {}", a.choices.join(" | "));
    }
    for f in &step.findings {
        let _ = write!(label, "\n{} {}", f.severity.as_str(), f.id);
    }
    label
}

/// Draws the DAG: an edge from each need to the step, labelled with the step's `when`;
/// steps with a `when` and no needs hang off a `start` node so the condition is shown.
pub fn graph(runbook: &Runbook, format: GraphFormat) -> String {
    let mut edges: Vec<(String, String, Option<String>)> = Vec::new();
    // `after` edges only order steps; they are drawn dotted.
    let mut after_edges: Vec<(String, String)> = Vec::new();
    let mut uses_start = false;
    for step in &runbook.steps {
        for a in &step.after {
            after_edges.push((a.to_string(), step.id.to_string()));
        }
        if step.needs.is_empty() {
            if step.when.is_some() {
                uses_start = true;
                edges.push(("start".into(), step.id.to_string(), step.when.clone()));
            }
        } else {
            for need in &step.needs {
                edges.push((need.to_string(), step.id.to_string(), step.when.clone()));
            }
        }
    }
    let mut out = String::new();
    match format {
        GraphFormat::Mermaid => {
            // Mermaid ids may not hold `-`; labels carry the real ids.
            let id = |s: &str| s.replace('-', "_");
            let esc = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
            out.push_str("flowchart TD\n");
            if uses_start {
                out.push_str("    start((start))\n");
            }
            for step in &runbook.steps {
                let shape = if step.ask.is_some() {
                    ("{{", "}}")
                } else {
                    ("[", "]")
                };
                let _ = writeln!(
                    out,
                    "    {}{}\"{}\"{}",
                    id(step.id.as_str()),
                    shape.0,
                    esc(&node_label(step)),
                    shape.1
                );
            }
            for (from, to) in &after_edges {
                let _ = writeln!(out, "    {} -.->|after| {}", id(from), id(to));
            }
            for (from, to, when) in &edges {
                match when {
                    Some(w) => {
                        let _ = writeln!(out, "    {} -->|\"{}\"| {}", id(from), esc(w), id(to));
                    }
                    None => {
                        let _ = writeln!(out, "    {} --> {}", id(from), id(to));
                    }
                }
            }
        }
        GraphFormat::Dot => {
            let esc = |s: &str| {
                s.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            };
            let _ = writeln!(out, "digraph \"{}\" {{", esc(runbook.id.as_str()));
            out.push_str("    rankdir=TB;\n    node [shape=box, fontname=\"sans-serif\"];\n");
            if uses_start {
                out.push_str("    \"start\" [shape=circle];\n");
            }
            for step in &runbook.steps {
                let shape = if step.ask.is_some() {
                    ", shape=diamond"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    \"{}\" [label=\"{}\"{shape}];",
                    esc(step.id.as_str()),
                    esc(&node_label(step))
                );
            }
            for (from, to) in &after_edges {
                let _ = writeln!(
                    out,
                    "    \"{}\" -> \"{}\" [style=dotted, label=\"after\"];",
                    esc(from),
                    esc(to)
                );
            }
            for (from, to, when) in &edges {
                match when {
                    Some(w) => {
                        let _ = writeln!(
                            out,
                            "    \"{}\" -> \"{}\" [label=\"{}\"];",
                            esc(from),
                            esc(to),
                            esc(w)
                        );
                    }
                    None => {
                        let _ = writeln!(out, "    \"{}\" -> \"{}\";", esc(from), esc(to));
                    }
                }
            }
            out.push_str("}\n");
        }
    }
    out
}
