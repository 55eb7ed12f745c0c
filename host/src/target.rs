//! Targets: where capabilities are carried out.
//!
//! - [`local`]: this machine
//! - [`remote`]: another machine or pod, over `ssh`, `gcloud compute ssh` or `kubectl exec`
//! - [`bundle`]: replays the answers a recording holds
//! - [`record`]: wraps another target and writes what it saw as a bundle
//! - [`files`]: opening files without following links out of what was granted

pub mod bundle;
pub mod files;
pub mod local;
pub mod record;
pub mod remote;

/// What a target does for each capability kind ([`CarryOut`], one method per kind) and the
/// answer types are defined with the capabilities (`crate::capability`), which keeps
/// `capability` free of any import from here; a [`Target`] adds who it is.
pub use crate::capability::{
    CapResult, CapabilityError, CarryOut, ExecOutput, HttpRequest, HttpResponse, PathCheck,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// A target spec as written in a file: `local` and `scheme://…` stay as they are; anything
/// else is a bundle directory (optionally written `bundle:DIR`) relative to `base`.
pub fn normalize_spec(spec: &str, base: &std::path::Path) -> String {
    if spec == "local" || spec.contains("://") {
        return spec.to_string();
    }
    let dir = spec.strip_prefix("bundle:").unwrap_or(spec);
    format!("bundle:{}", base.join(dir).display())
}

/// Opens one target from its spec. Failures are the target's, not the fleet's.
pub fn open_target(spec: &str) -> Result<std::sync::Arc<dyn Target>, String> {
    if spec == "local" {
        return Ok(std::sync::Arc::new(local::LocalTarget::new()));
    }
    if let Some(dir) = spec.strip_prefix("bundle:") {
        return bundle::BundleTarget::open(std::path::Path::new(dir))
            .map(|t| std::sync::Arc::new(t) as std::sync::Arc<dyn Target>)
            .map_err(|e| e.to_string());
    }
    remote::RemoteTarget::new(spec).map(|t| std::sync::Arc::new(t) as std::sync::Arc<dyn Target>)
}
