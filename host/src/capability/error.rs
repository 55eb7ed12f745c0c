//! Why a capability call gave no answer: the one error type the host uses for it. The WIT
//! `capability-error` converts to and from it in `runtime/bindings.rs`; the SDK has its own
//! guest-side copy.

/// Why a capability call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// Not declared by the action, not allowed by the policy, or refused by the host.
    #[error("denied: {0}")]
    Denied(String),
    /// Replaying a bundle that holds no answer for this call.
    #[error("not captured: {0}")]
    NotCaptured(String),
    /// Allowed, but it failed: command not found, connection refused, I/O error.
    #[error("{0}")]
    Failed(String),
    /// Allowed, but it ran past its deadline.
    #[error("timed out: {0}")]
    TimedOut(String),
}

impl CapabilityError {
    /// The outcome's name in capability logs and reports.
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
