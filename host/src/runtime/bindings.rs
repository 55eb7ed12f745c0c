//! Host-side bindings for the `triage:probe` WIT package (all generated code lives here).

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "plugin",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use exports::triage::probe::probe as guest;
pub use triage::probe::host as wit_host;

use crate::capability::{self, CapabilityError};

// The WIT types and the host's, converted in one place.

impl From<CapabilityError> for wit_host::CapabilityError {
    fn from(e: CapabilityError) -> Self {
        match e {
            CapabilityError::Denied(m) => wit_host::CapabilityError::Denied(m),
            CapabilityError::NotCaptured(m) => wit_host::CapabilityError::NotCaptured(m),
            CapabilityError::Failed(m) => wit_host::CapabilityError::Failed(m),
            CapabilityError::TimedOut(m) => wit_host::CapabilityError::TimedOut(m),
        }
    }
}

impl From<wit_host::CapabilityError> for CapabilityError {
    fn from(e: wit_host::CapabilityError) -> Self {
        match e {
            wit_host::CapabilityError::Denied(m) => CapabilityError::Denied(m),
            wit_host::CapabilityError::NotCaptured(m) => CapabilityError::NotCaptured(m),
            wit_host::CapabilityError::Failed(m) => CapabilityError::Failed(m),
            wit_host::CapabilityError::TimedOut(m) => CapabilityError::TimedOut(m),
        }
    }
}

impl From<capability::ExecOutput> for wit_host::ExecOutput {
    fn from(o: capability::ExecOutput) -> Self {
        wit_host::ExecOutput {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

impl From<capability::FileTail> for wit_host::FileTail {
    fn from(t: capability::FileTail) -> Self {
        wit_host::FileTail {
            bytes: t.bytes,
            size: t.size,
        }
    }
}

impl From<wit_host::HttpRequest> for capability::HttpRequest {
    fn from(r: wit_host::HttpRequest) -> Self {
        capability::HttpRequest {
            method: r.method,
            url: r.url,
            headers: r.headers,
        }
    }
}

impl From<capability::HttpResponse> for wit_host::HttpResponse {
    fn from(r: capability::HttpResponse) -> Self {
        wit_host::HttpResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<wit_host::LogLevel> for capability::log::Level {
    fn from(l: wit_host::LogLevel) -> Self {
        match l {
            wit_host::LogLevel::Debug => capability::log::Level::Debug,
            wit_host::LogLevel::Info => capability::log::Level::Info,
            wit_host::LogLevel::Warn => capability::log::Level::Warn,
            wit_host::LogLevel::Error => capability::log::Level::Error,
        }
    }
}
