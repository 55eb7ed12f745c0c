//! Finding runbooks by id: the user's directories and TRIAGE_PATH first, then the ones
//! built into the binary. A user runbook with a built-in's id shadows it, with a warning.

use crate::builtin;
use crate::runbook::validate::PluginCatalog;
use crate::runbook::{LoadError, LoadErrors, LoadedRunbook};
use crate::runtime::{ActionSpec, Runtime};
use std::path::{Path, PathBuf};

/// Why `triage run ARG` has no runbook to run.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// ARG reads as a path (it has a `/` or a YAML extension) and names no file.
    #[error("{0}: no such runbook file")]
    NoSuchFile(String),
    /// No runbook has that id; `suggestion` is ` (did you mean …?)` or empty.
    #[error("unknown runbook `{id}`{suggestion}; `triage list` shows the runbooks")]
    UnknownId { id: String, suggestion: String },
    /// Found, but it does not load: every problem, one a line, at its file:line:column.
    #[error("{0}")]
    Invalid(#[from] LoadErrors),
}

/// Where a runbook's text comes from.
#[derive(Debug, Clone)]
pub enum RunbookSource {
    Builtin(&'static builtin::BuiltinRunbook),
    File(PathBuf),
}

impl RunbookSource {
    pub fn origin(&self) -> String {
        match self {
            RunbookSource::Builtin(b) => format!("built-in:{}", b.path),
            RunbookSource::File(p) => p.display().to_string(),
        }
    }

    /// The runbook's file on disk (for a built-in, where it was at build time), beside
    /// which its `tests/` live.
    pub fn file(&self) -> PathBuf {
        match self {
            RunbookSource::Builtin(b) => PathBuf::from(b.file),
            RunbookSource::File(p) => p.clone(),
        }
    }

    pub fn text(&self) -> std::io::Result<String> {
        match self {
            RunbookSource::Builtin(b) => Ok(b.source.to_string()),
            RunbookSource::File(p) => crate::files::read_text(p),
        }
    }

    /// Reads and loads the runbook, every check done; a file that cannot be read is an
    /// error at its line 1.
    pub fn load(&self, plugins: &dyn PluginCatalog) -> Result<LoadedRunbook, LoadErrors> {
        let origin = self.origin();
        let text = self.text().map_err(|e| {
            LoadErrors(vec![LoadError {
                file: origin.clone(),
                line: 1,
                column: 1,
                message: format!("cannot read: {e}"),
            }])
        })?;
        crate::runbook::load_str(&text, &origin, plugins)
    }
}

/// Finds the runbook `triage run ARG` means (see [`resolve`]) and loads it. Warnings (a user
/// runbook shadowing a built-in) are added to `warnings`.
pub fn load(
    arg: &str,
    plugins: &dyn PluginCatalog,
    warnings: &mut Vec<String>,
) -> Result<LoadedRunbook, CatalogError> {
    let source = resolve(arg, warnings)?;
    Ok(source.load(plugins)?)
}

/// Directories searched for user runbooks, in order of precedence (first wins):
/// TRIAGE_PATH, the config file's `runbook_paths`, then the user's config and data dirs.
/// (A config file that does not parse is reported by the CLI before this is called.)
pub fn user_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("TRIAGE_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(
        crate::paths::user_config()
            .map(|c| c.runbook_paths)
            .unwrap_or_default(),
    );
    dirs.extend(crate::paths::user_runbook_dirs());
    dirs
}

/// `<dir>/<id>.yaml` or `<dir>/<id>/runbook.yaml`.
fn find_in(dir: &Path, id: &str) -> Option<PathBuf> {
    [
        dir.join(format!("{id}.yaml")),
        dir.join(id).join("runbook.yaml"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Resolves `triage run ARG`: a path when it names a file, else an id.
pub fn resolve(arg: &str, warnings: &mut Vec<String>) -> Result<RunbookSource, CatalogError> {
    let as_path = Path::new(arg);
    // Anything there but a directory is taken as the file meant, so that a FIFO or a device
    // gets the loader's "is not a regular file" rather than "no such runbook file".
    if as_path.exists() && !as_path.is_dir() {
        return Ok(RunbookSource::File(as_path.to_path_buf()));
    }
    if as_path.join("runbook.yaml").is_file() {
        return Ok(RunbookSource::File(as_path.join("runbook.yaml")));
    }
    if arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml") {
        return Err(CatalogError::NoSuchFile(arg.to_string()));
    }
    let builtin = builtin::RUNBOOKS.iter().find(|b| b.id == arg);
    for dir in user_dirs() {
        if let Some(p) = find_in(&dir, arg) {
            if builtin.is_some() {
                warnings.push(format!(
                    "runbook `{arg}` from {} shadows the built-in one",
                    p.display()
                ));
            }
            return Ok(RunbookSource::File(p));
        }
    }
    match builtin {
        Some(b) => Ok(RunbookSource::Builtin(b)),
        None => {
            let ids: Vec<&str> = builtin::RUNBOOKS.iter().map(|b| b.id).collect();
            Err(CatalogError::UnknownId {
                id: arg.to_string(),
                suggestion: crate::runbook::validate::suggest(arg, ids.into_iter()),
            })
        }
    }
}

/// The runbooks an id finds: every runbook but the built-ins a user runbook shadows.
pub fn runnable() -> Vec<(String, RunbookSource)> {
    all()
        .into_iter()
        .filter(|(_, _, shadowed)| !shadowed)
        .map(|(id, source, _)| (id, source))
        .collect()
}

/// The runbook in the current directory, `./runbook.yaml`, which `triage run .` and
/// `triage test .` take: its id as the file says (else the directory's name). A file whose
/// id cannot be read still counts, so that `triage lint` reports what is wrong with it.
pub fn current_dir() -> Option<(String, RunbookSource)> {
    let file = Path::new(".").join("runbook.yaml");
    if !file.is_file() {
        return None;
    }
    let source = RunbookSource::File(file);
    let id = source
        .text()
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .or_else(|| {
            std::env::current_dir()
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| ".".into());
    Some((id, source))
}

/// [`all`] as `triage list` shows it: the runbook in the current directory first, which
/// shadows any other with its id.
pub fn all_with_current_dir() -> Vec<(String, RunbookSource, bool)> {
    let mut out = all();
    if let Some((id, source)) = current_dir() {
        for (other, _, shadowed) in &mut out {
            if *other == id {
                *shadowed = true;
            }
        }
        out.insert(0, (id, source, false));
    }
    out
}

/// [`runnable`] with the runbook in the current directory first: what `triage lint` and
/// `triage test` check when given nothing. (Not `serve` nor `doctor`, whose runbooks must
/// not depend on where they were started.)
pub fn runnable_with_current_dir() -> Vec<(String, RunbookSource)> {
    all_with_current_dir()
        .into_iter()
        .filter(|(_, _, shadowed)| !shadowed)
        .map(|(id, source, _)| (id, source))
        .collect()
}

/// Every runbook: (id, source), user ones first, shadowed built-ins marked.
pub fn all() -> Vec<(String, RunbookSource, bool)> {
    let mut out: Vec<(String, RunbookSource, bool)> = Vec::new();
    for dir in user_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for p in files {
            let (id, file) = if p.extension().is_some_and(|x| x == "yaml") {
                (
                    p.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    p.clone(),
                )
            } else if p.join("runbook.yaml").is_file() {
                (
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    p.join("runbook.yaml"),
                )
            } else {
                continue;
            };
            if !out.iter().any(|(i, _, _)| *i == id) {
                out.push((id, RunbookSource::File(file), false));
            }
        }
    }
    for b in builtin::RUNBOOKS {
        let shadowed = out.iter().any(|(i, _, _)| i == b.id);
        out.push((b.id.to_string(), RunbookSource::Builtin(b), shadowed));
    }
    out
}

impl crate::runbook::validate::PluginCatalog for Runtime {
    fn action_spec(&self, plugin: &str, action: &str) -> Result<&ActionSpec, String> {
        let Some(p) = self.plugin(plugin) else {
            let names: Vec<String> = self.plugins().map(|p| p.name.clone()).collect();
            return Err(format!(
                "unknown plugin `{plugin}`{} (`triage plugins` lists them)",
                crate::runbook::validate::suggest(plugin, names.iter().map(String::as_str))
            ));
        };
        p.manifest().action(action).ok_or_else(|| {
            let names: Vec<&str> = p
                .manifest()
                .actions
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            format!(
                "plugin `{plugin}` has no action `{action}`{} (it has: {})",
                crate::runbook::validate::suggest(action, names.iter().copied()),
                names.join(", ")
            )
        })
    }
}
