//! The formats a report is written in, and the one trait every report type (a run, a fleet
//! run, `triage doctor`) implements to write itself in each of them. The CLI and the server
//! only name a [`Format`] and call [`Render::render`]; adding a format is a variant here,
//! its module beside this one, and one arm in each impl below (the compiler points at them).

use super::Report;
use super::doctor::DoctorReport;
use super::fleet::FleetReport;
use super::{human, markdown, sarif};

/// A way to write a report out.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// For a person at a terminal (coloured only when [`RenderOptions::color`] says so).
    Human,
    /// The stable contract bots read (`triage.report/v2`, `triage.fleet/…`, `triage.doctor/…`).
    Json,
    /// For tickets and chat.
    Markdown,
    /// SARIF 2.1.0, for code-scanning dashboards and CI annotations.
    Sarif,
    /// JSON Lines: the JSON contract with one object a line. A fleet run writes each
    /// target's result as it finishes, then the aggregate, and keeps only the aggregate.
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Human,
        Format::Json,
        Format::Markdown,
        Format::Sarif,
        Format::Jsonl,
    ];

    /// The name on the command line and in `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Sarif => "sarif",
            Format::Jsonl => "jsonl",
        }
    }

    /// One line on what it is for (`--help`).
    pub fn about(self) -> &'static str {
        match self {
            Format::Human => "for a person at a terminal",
            Format::Json => "the stable JSON contract for bots (docs/report.md)",
            Format::Markdown => "for tickets and chat",
            Format::Sarif => "SARIF 2.1.0 for code scanning and CI (one rule per finding id)",
            Format::Jsonl => {
                "JSON Lines: a fleet run streams one line a target, then the aggregate"
            }
        }
    }

    /// What a reader is told the text is (a response's Content-Type).
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Human => "text/plain; charset=utf-8",
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Sarif => "application/sarif+json",
            Format::Jsonl => "application/jsonl",
        }
    }

    /// Whether a fleet run must keep each target's whole report to write this format
    /// (the per-target summary is enough for a person reading a terminal or a ticket).
    pub fn needs_whole_reports(self) -> bool {
        matches!(self, Format::Json | Format::Sarif)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("format `{0}`: use one of {names}", names = Format::ALL.map(Format::name).join(", "))]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// How to write it, beside the format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Colour human output (the caller decides: a terminal, and no NO_COLOR).
    pub color: bool,
    /// Include each step's facts (JSON).
    pub facts: bool,
}

/// A report that can be written in every [`Format`].
pub trait Render {
    fn render(&self, format: Format, options: &RenderOptions) -> String;
}

impl Render for Report {
    fn render(&self, format: Format, options: &RenderOptions) -> String {
        match format {
            Format::Human => human::render(self, options.color),
            Format::Json => self.to_json(options.facts),
            Format::Markdown => markdown::render(self),
            Format::Sarif => sarif::run(self),
            Format::Jsonl => json_line(&self.to_json(options.facts)),
        }
    }
}

impl Render for FleetReport {
    fn render(&self, format: Format, _options: &RenderOptions) -> String {
        match format {
            Format::Human => human::fleet(self),
            Format::Json => self.to_json(),
            Format::Markdown => markdown::fleet(self),
            Format::Sarif => sarif::fleet(self),
            Format::Jsonl => self.to_json_lines(),
        }
    }
}

impl Render for DoctorReport {
    fn render(&self, format: Format, options: &RenderOptions) -> String {
        match format {
            Format::Human => self.human(options.color),
            Format::Json => self.to_json(),
            Format::Markdown => self.markdown(),
            Format::Sarif => sarif::doctor(self),
            Format::Jsonl => json_line(&self.to_json()),
        }
    }
}

/// The one-line form of a pretty-printed JSON document.
fn json_line(pretty: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(pretty).expect("our own JSON parses");
    serde_json::to_string(&value).expect("a JSON value serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_name_says_what_is_known() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        let err = "yaml".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("yaml") && err.contains("markdown"), "{err}");
    }
}
