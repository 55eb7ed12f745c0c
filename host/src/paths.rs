//! The user's directories (XDG on Linux, via the directories crate).
//!
//! - config: `~/.config/triage/` holds `policy.yaml`, `config.yaml`, `server.yaml` and `runbooks/`
//! - data: `~/.local/share/triage/` holds `plugins/*.wasm`, `runbooks/` and `runs.sqlite3`
//!   (the server's run history)
//! - cache: `~/.cache/triage/components/` holds compiled plugins
//!
//! `TRIAGE_CACHE_DIR` overrides the cache location (tests and benchmarks use it).

use directories::ProjectDirs;
use std::path::PathBuf;

fn dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "triage")
}

pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRIAGE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    dirs().map(|d| d.cache_dir().join("components"))
}

pub fn policy_file() -> Option<PathBuf> {
    dirs().map(|d| d.config_dir().join("policy.yaml"))
}

pub fn user_plugin_dir() -> Option<PathBuf> {
    dirs().map(|d| d.data_dir().join("plugins"))
}

/// `triage serve`'s config file.
pub fn server_config_file() -> Option<PathBuf> {
    dirs().map(|d| d.config_dir().join("server.yaml"))
}

/// `triage serve`'s run history.
pub fn history_db() -> Option<PathBuf> {
    dirs().map(|d| d.data_dir().join("runs.sqlite3"))
}

pub fn user_runbook_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = dirs() {
        out.push(d.config_dir().join("runbooks"));
        out.push(d.data_dir().join("runbooks"));
    }
    out
}

/// `~/.config/triage/config.yaml`: extra places to look for runbooks and plugins.
///
/// ```yaml
/// runbook_paths: [/srv/team-runbooks]
/// plugin_paths: [/srv/team-plugins]
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub runbook_paths: Vec<PathBuf>,
    #[serde(default)]
    pub plugin_paths: Vec<PathBuf>,
}

pub fn config_file() -> Option<PathBuf> {
    dirs().map(|d| d.config_dir().join("config.yaml"))
}

/// Why the user's config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, nested too deep, or not the config's shape: `FILE:LINE:COLUMN: message`.
    #[error("{0}")]
    Invalid(String),
}

/// The user's config file, or the empty config when there is none. A file that does not
/// parse is an error naming its line and column.
pub fn user_config() -> Result<UserConfig, ConfigError> {
    let Some(path) = config_file().filter(|p| p.is_file()) else {
        return Ok(UserConfig::default());
    };
    let text = crate::files::read_text(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(UserConfig::default());
    }
    crate::yaml::depth::check_file(&text, &path).map_err(ConfigError::Invalid)?;
    serde_yaml::from_str(&text)
        .map_err(|e| ConfigError::Invalid(crate::yaml::yaml_error(&path, &e)))
}
