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

use async_trait::async_trait;
use std::time::Duration;

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a capability call gave no answer; mirrors the WIT `capability-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("not captured: {0}")]
    NotCaptured(String),
    #[error("{0}")]
    Failed(String),
    #[error("timed out: {0}")]
    TimedOut(String),
}

impl CapabilityError {
    pub fn kind(&self) -> &'static str {
        match self {
            CapabilityError::Denied(_) => "denied",
            CapabilityError::NotCaptured(_) => "not-captured",
            CapabilityError::Failed(_) => "failed",
            CapabilityError::TimedOut(_) => "timed-out",
        }
    }
}

pub type CapResult<T> = Result<T, CapabilityError>;

/// Says whether a file's real path (every link resolved) may be read, and if not, why:
/// the policy's word on where a link may lead. A target that can resolve links asks it
/// before reading, so `/var/log/x -> /etc/shadow` is not read under a `/var/log/**` grant.
pub type PathCheck = dyn Fn(&str) -> Result<(), String> + Send + Sync;

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

/// Carries out capability calls somewhere. Every method is already grant-checked by the
/// caller; a target only does the work (or replays it).
#[async_trait]
pub trait Target: Send + Sync {
    /// A short name for reports: `local`, `bundle:examples/…`, `ssh://…`.
    fn name(&self) -> String;
    /// Who the target is (see [`Identity`]).
    fn identity(&self) -> Identity {
        Identity::local()
    }
    async fn exec(&self, argv: &[String], timeout: Duration) -> CapResult<ExecOutput>;
    async fn http(&self, request: &HttpRequest, timeout: Duration) -> CapResult<HttpResponse>;
    /// At most `max_bytes` of a regular file, once `real_path_allowed` accepts where the
    /// path really leads.
    async fn read_file(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<Vec<u8>>;
    async fn resolve(&self, host: &str) -> CapResult<Vec<String>>;
    async fn connect(&self, host: &str, port: u16, timeout: Duration) -> CapResult<u32>;
    /// Seconds since the Unix epoch on the target (a bundle answers its recording time).
    fn now(&self) -> i64;
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
