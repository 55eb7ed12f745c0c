//! Reads iptables text in any of its forms into tables of chains of rules.
//!
//! Forms: `iptables-save` (`*nat`, `:CHAIN POLICY`, `-A`, `COMMIT`, several tables in one
//! text), `iptables -S` (`-P`, `-N`, `-A`), lists of `iptables -t nat -A ...` commands, and
//! the `iptables -L` listing (`Chain X (policy ACCEPT)` headers and column rows). Each line
//! is recognised on its own, so mixed or truncated text still yields what it holds.

use crate::listing;
use crate::model::Rule;
use crate::rule::parse_rule_args;
use crate::tokenize::split_args;
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// Which text form the input was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Save,
    Spec,
    List,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Save => "save",
            Format::Spec => "spec",
            Format::List => "list",
        }
    }
}

/// Why a text is not an iptables dump at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Control characters or invalid UTF-8 and no rule, chain or table line.
    Binary { bytes: usize },
    /// Text, but no line looks like a rule, chain or table.
    NotIptables { lines: usize, first_line: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Binary { bytes } => write!(
                f,
                "the input ({bytes} bytes) looks binary and holds no iptables table, chain or rule line"
            ),
            ParseError::NotIptables { lines, first_line } => write!(
                f,
                "none of the {lines} lines is an iptables table, chain or rule line (first line: {first_line:?})"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    V4,
    V6,
}

#[derive(Debug, Default)]
struct ChainBuild {
    name: String,
    policy: Option<String>,
    rules: VecDeque<Rule>,
    declared_references: Option<u32>,
}

#[derive(Debug)]
struct Section {
    name: Option<String>,
    family: Option<Family>,
    chains: Vec<ChainBuild>,
    index: HashMap<String, usize>,
    saw_v4: bool,
    saw_v6: bool,
    approximated_inserts: usize,
}

/// Rules an `-I` may shift before it is applied as an append instead.
const MAX_INSERT_SHIFT: usize = 4096;

impl Section {
    fn new(name: Option<String>, family: Option<Family>) -> Self {
        Section {
            name,
            family,
            chains: Vec::new(),
            index: HashMap::new(),
            saw_v4: false,
            saw_v6: false,
            approximated_inserts: 0,
        }
    }

    fn chain(&mut self, name: &str) -> &mut ChainBuild {
        let at = match self.index.get(name) {
            Some(&at) => at,
            None => {
                self.chains.push(ChainBuild {
                    name: name.to_string(),
                    ..ChainBuild::default()
                });
                self.index.insert(name.to_string(), self.chains.len() - 1);
                self.chains.len() - 1
            }
        };
        &mut self.chains[at]
    }

    fn note_family(&mut self, rule: &Rule) {
        for specs in [&rule.source_specs, &rule.destination_specs]
            .into_iter()
            .flatten()
        {
            for spec in specs {
                if let crate::addr::AddrSpec::Net(c) = spec {
                    if c.is_v6() {
                        self.saw_v6 = true;
                    } else {
                        self.saw_v4 = true;
                    }
                }
            }
        }
    }

    fn effective_family(&self) -> Option<Family> {
        self.family.or(match (self.saw_v4, self.saw_v6) {
            (true, false) => Some(Family::V4),
            (false, true) => Some(Family::V6),
            _ => None,
        })
    }

    /// Applies `-A`/`-I`/`-R`/`-N`/`-P`; false when `args` starts with no such command.
    fn apply(&mut self, args: &[String], raw: &str) -> LineKind {
        let Some(command) = args.first() else {
            return LineKind::Unknown;
        };
        let chain_name = args.get(1).map(String::as_str);
        match (command.as_str(), chain_name) {
            ("-A" | "--append", Some(chain)) => {
                let rule = parse_rule_args(chain, args.get(2..).unwrap_or(&[]), raw);
                self.note_family(&rule);
                self.chain(chain).rules.push_back(rule);
                LineKind::Rule
            }
            ("-I" | "--insert" | "-R" | "--replace", Some(chain)) => {
                let number = args.get(2).and_then(|n| n.parse::<usize>().ok());
                let rest_from = if number.is_some() { 3 } else { 2 };
                let rule = parse_rule_args(chain, args.get(rest_from..).unwrap_or(&[]), raw);
                self.note_family(&rule);
                let rules = &mut self.chain(chain).rules;
                let at = number.unwrap_or(1).saturating_sub(1);
                if matches!(command.as_str(), "-R" | "--replace") {
                    match rules.get_mut(at) {
                        Some(slot) => *slot = rule,
                        None => rules.push_back(rule),
                    }
                } else if at == 0 {
                    rules.push_front(rule);
                } else if at >= rules.len() {
                    rules.push_back(rule);
                } else if at.min(rules.len() - at) > MAX_INSERT_SHIFT {
                    // Deep inserts into huge chains would make parsing quadratic; no real
                    // dump looks like that, so keep the rule but not its exact place.
                    rules.push_back(rule);
                    self.approximated_inserts += 1;
                } else {
                    rules.insert(at, rule);
                }
                LineKind::Rule
            }
            ("-N" | "--new-chain" | "--new", Some(chain)) => {
                self.chain(chain);
                LineKind::Chain
            }
            ("-P" | "--policy", Some(chain)) => {
                let policy = args.get(2).cloned();
                self.chain(chain).policy = policy;
                LineKind::Chain
            }
            (
                "-D" | "--delete" | "-F" | "--flush" | "-X" | "--delete-chain" | "-Z" | "--zero"
                | "-S" | "--list-rules" | "-L" | "--list" | "-E" | "--rename-chain" | "-C"
                | "--check",
                _,
            ) => LineKind::Echo,
            _ => LineKind::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Structure,
    Chain,
    Rule,
    /// A command line that prints or changes nothing we model (`iptables-save`, `-F`).
    Echo,
    Unknown,
}

/// Every table found in a text, before one is picked.
#[derive(Debug)]
pub struct Ruleset {
    sections: Vec<Section>,
    pub format: Format,
    pub unparsed_lines: usize,
    /// `iptables -L` without `-v` prints no interface columns.
    list_lacks_interfaces: bool,
}

/// One table, merged from every part of the text that held it.
#[derive(Debug, Default)]
pub struct Table {
    pub chains: Vec<Chain>,
    pub index: HashMap<String, usize>,
    pub ipv6: bool,
    /// Table names the text held (`*nat`, `-t raw`), in order of first appearance.
    pub tables_found: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Chain {
    pub name: String,
    pub policy: Option<String>,
    pub rules: Vec<Rule>,
    /// The count `iptables -L` printed in `(N references)`.
    pub declared_references: Option<u32>,
}

impl Table {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

/// Parses any iptables text form. Fails only when no line is iptables at all.
pub fn parse_ruleset(text: &str) -> Result<Ruleset, ParseError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut current_save: Option<usize> = None;
    let mut bare: Option<usize> = None;
    let mut command_sections: HashMap<(String, Family), usize> = HashMap::new();
    let mut list_chain: Option<String> = None;
    let mut columns: Option<Vec<String>> = None;
    let mut unparsed = 0usize;
    let mut structural = 0usize;
    let mut saw_save = false;
    let mut saw_list = false;
    let mut list_lacks_interfaces = false;
    let mut nonblank = 0usize;
    let mut first_line: Option<&str> = None;

    fn bare_section(sections: &mut Vec<Section>, bare: &mut Option<usize>) -> usize {
        *bare.get_or_insert_with(|| {
            sections.push(Section::new(None, None));
            sections.len() - 1
        })
    }

    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        nonblank += 1;
        first_line.get_or_insert(trimmed);
        if trimmed.starts_with('#') {
            continue;
        }
        let kind = if let Some(name) = trimmed.strip_prefix('*') {
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                LineKind::Unknown
            } else {
                saw_save = true;
                sections.push(Section::new(Some(name.to_string()), None));
                current_save = Some(sections.len() - 1);
                list_chain = None;
                LineKind::Structure
            }
        } else if trimmed == "COMMIT" {
            saw_save = true;
            current_save = None;
            LineKind::Structure
        } else if let Some(decl) = trimmed.strip_prefix(':') {
            let mut words = decl.split_whitespace();
            match words.next() {
                Some(name) => {
                    saw_save = true;
                    let at = match current_save {
                        Some(at) => at,
                        None => bare_section(&mut sections, &mut bare),
                    };
                    let policy = words.next().filter(|p| *p != "-").map(str::to_string);
                    let chain = sections[at].chain(name);
                    if policy.is_some() {
                        chain.policy = policy;
                    }
                    LineKind::Chain
                }
                None => LineKind::Unknown,
            }
        } else if let Some((name, policy, references)) = listing::chain_header(trimmed) {
            saw_list = true;
            let at = bare_section(&mut sections, &mut bare);
            let chain = sections[at].chain(&name);
            if policy.is_some() {
                chain.policy = policy;
            }
            if references.is_some() {
                chain.declared_references = references;
            }
            list_chain = Some(name);
            columns = None;
            LineKind::Chain
        } else if let Some(cols) = listing::header_columns(trimmed) {
            list_lacks_interfaces |= !cols.iter().any(|c| c == "out");
            columns = Some(cols);
            LineKind::Structure
        } else {
            let mut args = split_args(trimmed);
            // `iptables-save -c` puts `[packets:bytes]` before each rule.
            if args
                .first()
                .is_some_and(|a| a.starts_with('[') && a.ends_with(']'))
            {
                args.remove(0);
            }
            let first = args.first().map(String::as_str).unwrap_or("");
            if first.starts_with('-') && first.len() > 1 {
                let at = match current_save {
                    Some(at) => at,
                    None => bare_section(&mut sections, &mut bare),
                };
                sections[at].apply(&args, trimmed)
            } else if let Some(command) = command_line(&args) {
                match command {
                    CommandLine::Echo => LineKind::Echo,
                    CommandLine::Op {
                        family,
                        table,
                        args: op_args,
                    } => {
                        let key = (table, family);
                        let at = match command_sections.get(&key) {
                            Some(&at) => at,
                            None => {
                                sections.push(Section::new(Some(key.0.clone()), Some(family)));
                                command_sections.insert(key, sections.len() - 1);
                                sections.len() - 1
                            }
                        };
                        sections[at].apply(&op_args, trimmed)
                    }
                }
            } else if let (Some(chain), Some(cols)) = (&list_chain, &columns) {
                match listing::parse_row(chain, cols, line) {
                    Some(rule) => {
                        let at = bare_section(&mut sections, &mut bare);
                        sections[at].note_family(&rule);
                        sections[at].chain(chain).rules.push_back(rule);
                        LineKind::Rule
                    }
                    None => LineKind::Unknown,
                }
            } else {
                LineKind::Unknown
            }
        };
        match kind {
            LineKind::Structure | LineKind::Chain | LineKind::Rule => structural += 1,
            LineKind::Echo => {}
            LineKind::Unknown => unparsed += 1,
        }
    }

    if structural == 0 && unparsed > 0 {
        let looks_binary = text
            .chars()
            .take(65536)
            .any(|c| c == '\u{fffd}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
        return Err(if looks_binary {
            ParseError::Binary { bytes: text.len() }
        } else {
            ParseError::NotIptables {
                lines: nonblank,
                first_line: first_line.unwrap_or("").chars().take(80).collect(),
            }
        });
    }

    let format = if saw_save {
        Format::Save
    } else if saw_list {
        Format::List
    } else {
        Format::Spec
    };
    Ok(Ruleset {
        sections,
        format,
        unparsed_lines: unparsed,
        list_lacks_interfaces,
    })
}

enum CommandLine {
    Echo,
    Op {
        family: Family,
        table: String,
        args: Vec<String>,
    },
}

/// `iptables -t nat -A ...`, `sudo ip6tables ...`, `iptables-save`: the table and the command.
fn command_line(args: &[String]) -> Option<CommandLine> {
    let mut words = args
        .iter()
        .map(String::as_str)
        .skip_while(|w| *w == "sudo" || *w == "$");
    let tool = words.next()?;
    let tool = tool.rsplit('/').next().unwrap_or(tool);
    let family = if tool.starts_with("ip6tables") {
        Family::V6
    } else if tool.starts_with("iptables") {
        Family::V4
    } else {
        return None;
    };
    if tool.ends_with("-save") || tool.ends_with("-restore") {
        return Some(CommandLine::Echo);
    }
    let mut table = "filter".to_string();
    let mut rest = Vec::new();
    let mut words = words.take_while(|w| *w != "|");
    while let Some(word) = words.next() {
        if word == "-t" || word == "--table" {
            if let Some(t) = words.next() {
                table = t.to_string();
            }
        } else if let Some(t) = word.strip_prefix("--table=") {
            table = t.to_string();
        } else {
            rest.push(word.to_string());
        }
    }
    let op_at = rest.iter().position(|w| {
        matches!(
            w.as_str(),
            "-A" | "--append"
                | "-I"
                | "--insert"
                | "-R"
                | "--replace"
                | "-N"
                | "--new-chain"
                | "-P"
                | "--policy"
                | "-D"
                | "--delete"
                | "-F"
                | "--flush"
                | "-X"
                | "--delete-chain"
                | "-Z"
                | "--zero"
                | "-S"
                | "--list-rules"
                | "-L"
                | "--list"
                | "-E"
                | "-C"
                | "--check"
        )
    });
    match op_at {
        Some(at) => Some(CommandLine::Op {
            family,
            table,
            args: rest.split_off(at),
        }),
        None => Some(CommandLine::Echo),
    }
}

impl Ruleset {
    /// Every table name the text held, first appearance first.
    fn table_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut names: Vec<String> = Vec::new();
        for name in self.sections.iter().filter_map(|s| s.name.as_deref()) {
            if seen.insert(name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// Merges every part of the text that holds table `wanted` for the address family
    /// asked for. Text with no table marker (`-S`, `-L` output) counts as that table.
    pub fn into_table(self, wanted: &str, ipv6: bool) -> Table {
        let tables_found = self.table_names();
        let mut notes = Vec::new();
        if self.list_lacks_interfaces {
            notes.push(
                "iptables -L without -v prints no interfaces, so rules limited to -i/-o (like Istio's `-o lo` rules) read as unconditional here"
                    .to_string(),
            );
        }
        let family = if ipv6 { Family::V6 } else { Family::V4 };
        let named: Vec<usize> = (0..self.sections.len())
            .filter(|&i| self.sections[i].name.as_deref().is_none_or(|n| n == wanted))
            .collect();
        let same_family: Vec<usize> = named
            .iter()
            .copied()
            .filter(|&i| {
                self.sections[i]
                    .effective_family()
                    .is_none_or(|f| f == family)
            })
            .collect();
        let picked = if same_family.is_empty() && !named.is_empty() {
            notes.push(format!(
                "the text has no {} {wanted} table; used the {} one",
                if ipv6 { "IPv6" } else { "IPv4" },
                if ipv6 { "IPv4" } else { "IPv6" }
            ));
            named
        } else {
            same_family
        };
        if picked.is_empty() && !tables_found.is_empty() {
            notes.push(format!(
                "the text has no {wanted} table (it has: {})",
                tables_found.join(", ")
            ));
        }

        let approximated: usize = picked
            .iter()
            .filter_map(|&i| self.sections.get(i))
            .map(|s| s.approximated_inserts)
            .sum();
        if approximated > 0 {
            notes.push(format!(
                "{approximated} `-I` rules deep inside chains of thousands of rules were appended instead"
            ));
        }
        let mut table = Table {
            tables_found,
            notes,
            ..Table::default()
        };
        let mut saw_v4 = false;
        let mut saw_v6 = false;
        let mut is_picked = vec![false; self.sections.len()];
        for &i in &picked {
            is_picked[i] = true;
        }
        for (section, picked) in self.sections.into_iter().zip(is_picked) {
            if !picked {
                continue;
            }
            saw_v4 |= section.saw_v4 || section.family == Some(Family::V4);
            saw_v6 |= section.saw_v6 || section.family == Some(Family::V6);
            for built in section.chains {
                let at = match table.index.get(&built.name) {
                    Some(&at) => at,
                    None => {
                        table.chains.push(Chain {
                            name: built.name.clone(),
                            ..Chain::default()
                        });
                        table
                            .index
                            .insert(built.name.clone(), table.chains.len() - 1);
                        table.chains.len() - 1
                    }
                };
                let chain = &mut table.chains[at];
                if built.policy.is_some() {
                    chain.policy = built.policy;
                }
                if built.declared_references.is_some() {
                    chain.declared_references = built.declared_references;
                }
                chain.rules.extend(built.rules);
            }
        }
        for chain in &mut table.chains {
            for (n, rule) in chain.rules.iter_mut().enumerate() {
                rule.position = n + 1;
            }
        }
        table.ipv6 = ipv6 || (saw_v6 && !saw_v4);
        table
    }
}
