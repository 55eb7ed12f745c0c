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
pub mod source_map;
pub mod validate;

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
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
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
    let runbook: Runbook = serde_yaml::from_str(text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        at(line, col, crate::yaml::strip_location(&e.to_string()))
    })?;
    let compiled = validate::validate(&runbook, &map, file, plugins)?;
    Ok(LoadedRunbook {
        runbook,
        origin: file.to_string(),
        compiled,
    })
}

pub fn load_file(
    path: &Path,
    plugins: &dyn validate::PluginCatalog,
) -> Result<LoadedRunbook, LoadErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        LoadErrors(vec![LoadError {
            file: file.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
        }])
    })?;
    load_str(&text, &file, plugins)
}
