//! The context every capability function takes: the grants of the action being run, the
//! target that carries calls out, the per-call deadline, and the logs the call writes.
//! `runtime/sandbox.rs` lends these from the plugin call's store; nothing here knows about
//! wasmtime.

use super::log::PluginLog;
use super::{CapabilityError, CarryOut, Grants, Request};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One capability call and how it went: evidence for reports and guided mode.
#[derive(Debug, Clone, Serialize)]
pub struct CapabilityUse {
    pub capability: String,
    pub request: String,
    /// `ok`, `denied`, `not-captured`, `failed` or `timed-out`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub duration_ms: u64,
}

/// Where capability calls are logged. The plugin call's log is bounded (entries and bytes,
/// `runtime/limits.rs`): a plugin cannot grow the host's memory by making calls.
pub trait Journal: Send {
    /// Whether another entry would still be kept (so callers can skip building one).
    fn has_room(&self) -> bool;
    fn push(&mut self, entry: CapabilityUse);
    /// Counts a call that was not logged at all.
    fn drop_one(&mut self);
}

/// What a capability function needs from the plugin call it serves.
pub struct Call<'a> {
    pub grants: &'a Grants,
    pub target: &'a dyn CarryOut,
    /// How long one capability call may take (the plugin call's wall time is enforced
    /// around the whole call as well).
    pub timeout: Duration,
    /// Every capability call, allowed or not.
    pub journal: &'a mut dyn Journal,
    pub logs: &'a mut Vec<PluginLog>,
}

impl Call<'_> {
    /// The grant check that opens every capability; records the request either way.
    pub fn admit(&mut self, request: &impl Request) -> Result<Instant, CapabilityError> {
        match self.grants.check(request) {
            Ok(()) => Ok(Instant::now()),
            Err(why) => Err(self.refuse(request, why)),
        }
    }

    /// Denies a request, recording it like any denial (also for requests the host refuses
    /// whatever the grants say: a malformed path or host name).
    pub fn refuse(&mut self, request: &impl Request, why: String) -> CapabilityError {
        let err = CapabilityError::Denied(why);
        self.record::<()>(request, Instant::now(), Err(&err));
        err
    }

    /// Adds the call and its outcome to the capability log.
    pub fn record<T>(
        &mut self,
        request: &impl Request,
        started: Instant,
        result: Result<T, &CapabilityError>,
    ) {
        if !self.journal.has_room() {
            self.journal.drop_one();
            return;
        }
        let (outcome, detail) = match result {
            Ok(_) => ("ok".to_string(), None),
            Err(e) => (e.kind().to_string(), Some(e.to_string())),
        };
        self.journal.push(CapabilityUse {
            capability: request_kind(request).into(),
            request: request.display(),
            outcome,
            detail,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
}

fn request_kind<R: Request>(_: &R) -> &'static str {
    R::KIND.name()
}
