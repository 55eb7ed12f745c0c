//! Targets: where capabilities are carried out.
//!
//! - [`local`]: this machine
//! - [`remote`]: another machine or pod, over `ssh`, `gcloud compute ssh` or `kubectl exec`
//! - [`bundle`]: replays the answers a recording holds
//! - [`record`]: wraps another target and writes what it saw as a bundle
//! - [`files`]: opening files without following links out of what was granted
//! - [`spec`]: a target as an operator writes it, parsed once into a [`Spec`] and opened

pub mod bundle;
pub mod files;
pub mod local;
pub mod record;
pub mod remote;
pub mod spec;

pub use spec::{OpenError, Spec, SpecError};

/// What a target does for each capability kind ([`CarryOut`], one method per kind) and the
/// answer types are defined with the capabilities (`crate::capability`), which keeps
/// `capability` free of any import from here; a [`Target`] adds who it is.
pub use crate::capability::{
    CapResult, CapabilityError, CarryOut, ExecOutput, FileTail, HttpRequest, HttpResponse,
    PathCheck,
};
// For the targets in this folder, which `use super::*`.
use async_trait::async_trait;
use std::time::Duration;

/// How big an answer from a target may be before it is refused. Config dumps of large
/// meshes run to tens of megabytes; a quarter gigabyte is past anything real.
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

/// Who the target is, for templates (`target.instance`, `target.namespace`, …): a fix can
/// then print `gcloud compute ssh vm-1 --zone us-central1-a` instead of a placeholder.
/// Fields that the target does not know stay absent.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// `local`, `ssh`, `gcloud` or `kubectl` (a bundle answers what it was recorded from).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl Identity {
    pub fn local() -> Self {
        Identity {
            kind: "local".into(),
            ..Default::default()
        }
    }
}

/// A place capabilities are carried out: what it does for each capability ([`CarryOut`];
/// every call is already grant-checked by the caller, a target only does the work or
/// replays it) and who it is.
pub trait Target: CarryOut {
    /// A short name for reports: `local`, `bundle:examples/…`, `ssh://…`.
    fn name(&self) -> String;
    /// Who the target is (see [`Identity`]).
    fn identity(&self) -> Identity {
        Identity::local()
    }
}
