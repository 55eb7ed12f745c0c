//! Write a triage probe plugin.
//!
//! A plugin is a WebAssembly component that turns raw output (a command's stdout, an HTTP
//! body, a file) into typed facts. It asks the host for that raw output through
//! capabilities — [`exec`], [`http`], [`read_file`] (and [`read_file_tail`]), [`resolve`], [`connect`] — and the host
//! carries out only what the action declared and the operator's policy allows.
//!
//! A whole plugin:
//!
//! ```no_run
//! use triage_sdk::{Action, Facts, Manifest, Params, Probe, ProbeError, register_probe};
//!
//! #[derive(serde::Deserialize, triage_sdk::JsonSchema)]
//! struct UptimeParams {}
//!
//! #[derive(serde::Serialize, triage_sdk::JsonSchema)]
//! struct Uptime { seconds: f64 }
//!
//! struct UptimeProbe;
//!
//! impl Probe for UptimeProbe {
//!     fn describe() -> Manifest {
//!         Manifest::new("uptime", env!("CARGO_PKG_VERSION"), "How long the machine has been up")
//!             .action(
//!                 Action::new::<UptimeParams, Uptime>("read", "Reads /proc/uptime")
//!                     .read_file("/proc/uptime"),
//!             )
//!     }
//!
//!     fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
//!         match action {
//!             "read" => {
//!                 let _: UptimeParams = params.parse()?;
//!                 let text = triage_sdk::read_file_string("/proc/uptime", 4096)?;
//!                 let seconds = text
//!                     .split_whitespace()
//!                     .next()
//!                     .and_then(|s| s.parse().ok())
//!                     .ok_or_else(|| ProbeError::bad_input("/proc/uptime has no number"))?;
//!                 Facts::new(&Uptime { seconds })
//!             }
//!             other => Err(ProbeError::unknown_action(other)),
//!         }
//!     }
//! }
//!
//! register_probe!(UptimeProbe);
//! ```
#![deny(missing_docs)]

mod capability;
mod manifest;
pub mod parse;

pub use capability::{
    CapabilityError, ExecOutput, FileTail, HttpResponse, LogLevel, connect, exec, exec_ok, http,
    http_get, log, now, read_file, read_file_string, read_file_tail, resolve,
};
pub use manifest::{Action, Manifest};
pub use schemars::JsonSchema;

/// The version of this SDK; written into every manifest so the host can refuse a plugin
/// built against a contract it cannot serve.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        default_bindings_module: "triage_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_plugin",
    });
}

/// A probe plugin: a manifest saying what it can do, and the code that does it.
pub trait Probe {
    /// The plugin's name, version, actions and the capabilities each action needs.
    fn describe() -> Manifest;
    /// Runs one action. `params` has already been checked by the host against the
    /// action's params schema, with the schema's defaults filled in.
    fn run(action: &str, params: Params) -> Result<Facts, ProbeError>;
}

/// The JSON params of a call.
pub struct Params(String);

impl Params {
    /// Wraps raw JSON (tests use this to call `run` directly).
    pub fn from_json(json: impl Into<String>) -> Self {
        Params(json.into())
    }

    /// Parses the params into the action's params type.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProbeError> {
        let text = if self.0.trim().is_empty() {
            "{}"
        } else {
            self.0.as_str()
        };
        serde_json::from_str(text).map_err(|e| ProbeError::invalid_params(e.to_string()))
    }

    /// The raw JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// The facts an action returns, as JSON.
#[derive(Debug, Clone)]
pub struct Facts(String);

impl Facts {
    /// Serialises typed facts.
    pub fn new<T: serde::Serialize + ?Sized>(facts: &T) -> Result<Self, ProbeError> {
        serde_json::to_string(facts)
            .map(Facts)
            .map_err(|e| ProbeError::failed(format!("could not serialise facts: {e}")))
    }

    /// The JSON text.
    pub fn into_json(self) -> String {
        self.0
    }

    /// The JSON text, borrowed.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// Why an action produced no facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The action name is not one the plugin has.
    UnknownAction(String),
    /// The params do not fit the action's params type.
    InvalidParams(String),
    /// A capability call failed and the action cannot go on without it.
    Capability(CapabilityError),
    /// The raw data could not be parsed into facts.
    BadInput(String),
    /// Anything else.
    Failed(String),
}

impl ProbeError {
    /// The action name is not one the plugin has.
    pub fn unknown_action(name: &str) -> Self {
        ProbeError::UnknownAction(format!("unknown action `{name}`"))
    }
    /// The params do not fit.
    pub fn invalid_params(msg: impl Into<String>) -> Self {
        ProbeError::InvalidParams(msg.into())
    }
    /// The raw data could not be parsed.
    pub fn bad_input(msg: impl Into<String>) -> Self {
        ProbeError::BadInput(msg.into())
    }
    /// Anything else.
    pub fn failed(msg: impl Into<String>) -> Self {
        ProbeError::Failed(msg.into())
    }
}

impl From<CapabilityError> for ProbeError {
    fn from(e: CapabilityError) -> Self {
        ProbeError::Capability(e)
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::UnknownAction(m) => write!(f, "{m}"),
            ProbeError::InvalidParams(m) => write!(f, "invalid params: {m}"),
            ProbeError::Capability(e) => write!(f, "{e}"),
            ProbeError::BadInput(m) => write!(f, "bad input: {m}"),
            ProbeError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// Glue between the generated bindings and [`Probe`]; used by [`register_probe!`].
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::bindings::exports::triage::probe::probe as wit;
    pub use crate::bindings::exports::triage::probe::probe::Guest;

    pub fn describe<P: Probe>() -> wit::Manifest {
        P::describe().into_wit()
    }

    /// The manifest `describe` returns, as the JSON the host embeds at build time (the
    /// WIT record's fields; schemas stay JSON text), so that listing, linting and loading
    /// runbooks need no compiled plugin. The host checks it against the compiled plugin's
    /// own `describe()` before the plugin's first call.
    pub fn manifest_json<P: Probe>() -> String {
        P::describe().to_json()
    }

    pub fn run<P: Probe>(action: String, params: String) -> Result<String, wit::ProbeError> {
        P::run(&action, Params(params))
            .map(Facts::into_json)
            .map_err(|e| match e {
                ProbeError::UnknownAction(m) => wit::ProbeError::UnknownAction(m),
                ProbeError::InvalidParams(m) => wit::ProbeError::InvalidParams(m),
                ProbeError::Capability(c) => wit::ProbeError::Capability(c.into()),
                ProbeError::BadInput(m) => wit::ProbeError::BadInput(m),
                ProbeError::Failed(m) => wit::ProbeError::Failed(m),
            })
    }
}

/// Exports a [`Probe`] implementation as the plugin's entry points. Call it once per plugin.
#[macro_export]
macro_rules! register_probe {
    ($probe:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __TriageProbeExport;

        impl $crate::__private::Guest for __TriageProbeExport {
            fn describe() -> $crate::bindings::exports::triage::probe::probe::Manifest {
                $crate::__private::describe::<$probe>()
            }
            fn run(
                action: ::std::string::String,
                params: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::exports::triage::probe::probe::ProbeError,
            > {
                $crate::__private::run::<$probe>(action, params)
            }
        }

        /// The manifest as JSON, for the host's build script (a native build only).
        #[doc(hidden)]
        #[cfg(not(target_arch = "wasm32"))]
        pub fn __triage_manifest_json() -> ::std::string::String {
            $crate::__private::manifest_json::<$probe>()
        }

        // Only a wasm build exports the entry points: natively (a plugin's unit tests) the
        // component-model export names are not valid linker symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_plugin!(__TriageProbeExport);
    };
}
