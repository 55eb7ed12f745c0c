//! Runbooks: the YAML model, and loading with every check done before anything runs.
//!
//! Loading is three passes over the text: yaml-rust2 builds a map from each node's path to
//! its line and column; serde_yaml deserialises into the types below (unknown fields and
//! bad values fail here, with serde_yaml's position); then [`validate`] checks what types
//! cannot (ids, needs, cycles, expressions, plugins, params) and points each error at the
//! node it is about.

pub mod applies;
pub mod input_pattern;
pub mod model;
pub mod validate;
/// Positions of nodes by path; shared by every YAML reader, kept here under its old name.
pub use crate::yaml::source_map;

pub use model::*;
use source_map::SourceMap;
use std::fmt;
use std::path::Path;

/// One problem in a runbook, at a place in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and values from the file end up in messages: a terminal must not act on them.
        use crate::yaml::collect::escape_controls;
        write!(
            f,
            "{}:{}:{}: {}",
            escape_controls(&self.file),
            self.line,
            self.column,
            escape_controls(&self.message)
        )
    }
}

/// Every problem found in one file; displayed one per line.
#[derive(Debug, Clone)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// A runbook that passed every check, ready to run.
pub struct LoadedRunbook {
    pub runbook: Runbook,
    /// Where it came from: a path, or `built-in:<path>`.
    pub origin: String,
    pub compiled: validate::Compiled,
}

/// Parses and checks a runbook. `plugins` is consulted for plugin, action and params checks.
pub fn load_str(
    text: &str,
    file: &str,
    plugins: &dyn validate::PluginCatalog,
) -> Result<LoadedRunbook, LoadErrors> {
    let at = |line: usize, column: usize, message: String| {
        LoadErrors(vec![LoadError {
            file: file.to_string(),
            line,
            column,
            message,
        }])
    };
    if text.trim().is_empty() {
        return Err(at(
            1,
            1,
            "the file is empty; a runbook starts with `apiVersion: triage/v1`".into(),
        ));
    }
    crate::yaml::depth::check(text).map_err(|(line, col, msg)| at(line, col, msg))?;
    let map = SourceMap::build(text)
        .map_err(|(line, col, msg)| at(line, col, format!("invalid YAML: {msg}")))?;
    let runbook: Runbook = match serde_yaml::from_str(text) {
        Ok(runbook) => runbook,
        Err(first) => return Err(every_error(text, file, &map, &first, plugins)),
    };
    let compiled = validate::validate(&runbook, &map, file, plugins)?;
    Ok(LoadedRunbook {
        runbook,
        origin: file.to_string(),
        compiled,
    })
}

/// Every error in a runbook that did not deserialise, not only `first`, serde_yaml's: each
/// node at fault is taken out and the rest deserialised again (yaml/collect.rs); then, when
/// the runbook's root was sound, the checks after deserialisation run on what was left,
/// with the steps and inputs that were taken out still counted as known, so that nothing
/// is reported only because a broken step went.
fn every_error(
    text: &str,
    file: &str,
    map: &SourceMap,
    first: &serde_yaml::Error,
    plugins: &dyn validate::PluginCatalog,
) -> LoadErrors {
    use crate::yaml::collect::{self, Located, MAX_ERRORS};
    let located = |errors: Vec<Located>| {
        LoadErrors(
            errors
                .into_iter()
                .map(|e| LoadError {
                    file: file.to_string(),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                })
                .collect(),
        )
    };
    let single = || {
        let (line, column) = first
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        located(vec![Located {
            line,
            column,
            message: crate::yaml::strip_location(&first.to_string()),
        }])
    };
    let Some(doc) = collect::document(text) else {
        return single();
    };
    let known = validate::Known::of(&doc);
    let partial = collect::collect::<Runbook>(doc, map);
    if partial.errors.is_empty() {
        return single();
    }
    let mut errors = partial.errors;
    let mut cut = partial.cut;
    if let Some(runbook) = &partial.value {
        let moved = map.remap(|path| partial.pruned.current(path));
        if let Err(more) = validate::validate_with(runbook, &moved, file, plugins, &known) {
            errors.extend(more.0.into_iter().map(|e| Located {
                line: e.line,
                column: e.column,
                message: e.message,
            }));
        }
    }
    if errors.len() > MAX_ERRORS {
        errors.sort_by_key(|e| (e.line, e.column));
        errors.truncate(MAX_ERRORS);
        cut = true;
    }
    located(collect::finish(errors, cut))
}

pub fn load_file(
    path: &Path,
    plugins: &dyn validate::PluginCatalog,
) -> Result<LoadedRunbook, LoadErrors> {
    let file = path.display().to_string();
    let text = crate::files::read_text(path).map_err(|e| {
        LoadErrors(vec![LoadError {
            file: file.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
        }])
    })?;
    load_str(&text, &file, plugins)
}
