//! `triage-plugin-manifests DIR` writes `DIR/<crate_name_with_underscores>.manifest.json` for
//! every built-in plugin: what its `describe()` returns, as JSON (see
//! `triage_sdk::__private::manifest_json`). host/build.rs embeds each file beside the
//! plugin's wasm, so listing, linting and loading runbooks need no compiled plugin.
//!
//! A new built-in plugin needs a line in `MANIFESTS` and a dependency in this crate's
//! Cargo.toml; without them it still works, and is compiled on first use to learn its
//! manifest (the build warns).

use std::path::PathBuf;
use std::process::ExitCode;

/// A plugin's `__triage_manifest_json`, which `triage_sdk::register_probe!` defines.
type ManifestFn = fn() -> String;

/// (package name, the plugin's manifest function).
const MANIFESTS: &[(&str, ManifestFn)] = &[
    (
        "triage-plugin-config-dump",
        triage_plugin_config_dump::__triage_manifest_json,
    ),
    (
        "triage-plugin-envoy-logs",
        triage_plugin_envoy_logs::__triage_manifest_json,
    ),
    (
        "triage-plugin-gcloud",
        triage_plugin_gcloud::__triage_manifest_json,
    ),
    (
        "triage-plugin-guest-attrs",
        triage_plugin_guest_attrs::__triage_manifest_json,
    ),
    (
        "triage-plugin-host",
        triage_plugin_host::__triage_manifest_json,
    ),
    (
        "triage-plugin-iptables",
        triage_plugin_iptables::__triage_manifest_json,
    ),
    (
        "triage-plugin-kubectl",
        triage_plugin_kubectl::__triage_manifest_json,
    ),
];

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: triage-plugin-manifests DIR");
        return ExitCode::from(2);
    };
    for (name, manifest) in MANIFESTS {
        let file = dir.join(format!("{}.manifest.json", name.replace('-', "_")));
        if let Err(e) = std::fs::write(&file, manifest()) {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
