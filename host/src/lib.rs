//! triage: runs troubleshooting runbooks whose probes are sandboxed WebAssembly plugins.
//!
//! - [`runbook`]: the YAML model and its loader (every check before anything runs)
//! - [`engine`]: runs a runbook's DAG on a target and builds the [`report`]
//! - [`runtime`]: wasmtime, the plugin cache, and the per-call sandbox
//! - [`capability`]: what plugins may ask for, and the grant check
//! - [`target`]: where capabilities are carried out (local, bundle replay, recording)
//! - [`testing`]: scenario tests of runbooks on recorded bundles (`triage test`)
//! - [`serve`]: `triage serve`, the HTTP API and Slack command for chat bots
//! - [`cli`]: the `triage` command

pub mod authoring;
pub mod builtin;
pub mod capability;
pub mod catalog;
pub mod cli;
pub mod doctor;
pub mod engine;
pub mod fleet;
pub mod guided;
pub mod paths;
pub mod probe;
pub mod report;
pub mod runbook;
pub mod runtime;
pub mod serve;
pub mod target;
pub mod testing;
