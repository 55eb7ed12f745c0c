//! The user's directories (XDG on Linux, via the directories crate).
//!
//! - config: `~/.config/triage/` holds `policy.yaml` and `runbooks/`
//! - data: `~/.local/share/triage/` holds `plugins/*.wasm` and `runbooks/`
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

pub fn user_runbook_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(d) = dirs() {
        out.push(d.config_dir().join("runbooks"));
        out.push(d.data_dir().join("runbooks"));
    }
    out
}
