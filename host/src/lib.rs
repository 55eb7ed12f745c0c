//! triage: runs troubleshooting runbooks whose probes are sandboxed WebAssembly plugins.
//!
//! The core, which knows nothing of terminals or HTTP:
//! - [`runbook`]: the YAML model and its loader (every check before anything runs)
//! - [`engine`]: runs a runbook's DAG on a target and builds the [`report`]
//! - [`run`]: one runbook on one target, from opening it to an outcome (fleets and the server)
//! - [`runtime`]: wasmtime, the plugin cache, and the per-call sandbox
//! - [`capability`]: what plugins may ask for, the grant check, the operator policy
//! - [`target`]: where capabilities are carried out (local, remote over ssh/gcloud/kubectl,
//!   bundle replay, recording)
//! - [`redact`]: the secrets taken out of everything that leaves (bundles, reports, posts)
//! - [`report`]: a run's report and its renderings (human, JSON, Markdown, Slack)
//! - [`catalog`], [`paths`], [`builtin`], [`files`]: where runbooks, plugins and the user's
//!   files are found, and how files are written
//! - [`yaml`], [`hugepages`]: leaves every layer may use (the YAML nesting cap and error
//!   positions; huge-page backed buffers)
//!
//! The front ends, which only call the core:
//! - [`cli`]: the `triage` command, one file per subcommand (guided mode, fleet runs,
//!   doctor, `probe`, `test`, and the authoring tools among them)
//! - [`serve`]: `triage serve`, the HTTP API and chat commands for bots

pub mod builtin;
pub mod capability;
pub mod catalog;
pub mod engine;
pub mod files;
pub(crate) mod hugepages;
pub mod paths;
pub mod redact;
pub mod report;
pub mod run;
pub mod runbook;
pub mod runtime;
pub mod target;
pub mod yaml;

pub mod cli;
pub mod serve;
