//! Capabilities: what a plugin may ask the host to do, the check that comes first in every
//! host function, and the [`CarryOut`] interface that targets implement.
//!
//! A call is allowed only when it matches a pattern the calling *action* declared in its
//! manifest (with the step's params substituted) **and** a rule of the operator's policy.
//! Declared patterns are what the plugin author says the action needs (and what guided
//! mode shows the user); the policy is what the operator is willing to grant.
//!
//! Each capability is one file under `capability/`: its request (how it is matched, shown
//! and suggested for a policy), its policy entry, its bundle key, and its host function,
//! which takes a [`Call`] context. Adding one means: that file, a [`Kind`] variant (the
//! compiler then points at every table keyed by kind), the WIT import and the SDK wrapper,
//! a [`CarryOut`] method (and so every target that carries it out), and one line in
//! `runtime/sandbox.rs` that routes the WIT import to the host function.

mod call;
pub mod connect;
mod error;
pub mod exec;
mod grants;
pub mod http;
pub mod log;
pub mod pattern;
pub mod policy;
pub mod read_file;
pub mod resolve;

pub use call::{Call, CapabilityUse, Journal};
pub use error::{CapResult, CapabilityError};
pub use exec::ExecOutput;
pub use grants::{DeclaredCapability, Grants};
pub use http::{HttpRequest, HttpResponse};
pub use log::PluginLog;
pub use policy::Policy;
pub use read_file::FileTail;

use async_trait::async_trait;
use pattern::Subject;
use std::time::Duration;

/// The capabilities a plugin can ask for. Every table about capabilities (the policy, the
/// declared patterns, bundle keys, names in reports) is keyed by this, through exhaustive
/// matches, so a new kind cannot be silently denied or silently left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Exec,
    Http,
    ReadFile,
    Resolve,
    Connect,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Exec,
        Kind::Http,
        Kind::ReadFile,
        Kind::Resolve,
        Kind::Connect,
    ];

    /// The name in policy files, reports and denials.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exec => exec::NAME,
            Kind::Http => http::NAME,
            Kind::ReadFile => read_file::NAME,
            Kind::Resolve => resolve::NAME,
            Kind::Connect => connect::NAME,
        }
    }

    /// The key that names a call of this kind in a bundle's `calls:`.
    pub fn bundle_key(self) -> &'static str {
        match self {
            Kind::Exec => exec::BUNDLE_KEY,
            Kind::Http => http::BUNDLE_KEY,
            Kind::ReadFile => read_file::BUNDLE_KEY,
            Kind::Resolve => resolve::BUNDLE_KEY,
            Kind::Connect => connect::BUNDLE_KEY,
        }
    }
}

/// Every kind's name, as serde wants them for its "expected one of" message.
const NAMES: [&str; 5] = [
    exec::NAME,
    http::NAME,
    read_file::NAME,
    resolve::NAME,
    connect::NAME,
];

/// A kind is read by its name (a key under a policy file's `allow:`); an unknown name is an
/// unknown field, listing the known ones.
impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let name = String::deserialize(d)?;
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| serde::de::Error::unknown_field(&name, &NAMES))
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One concrete request a plugin made, in the form it is checked, shown and recorded.
/// Each capability's file defines its request type.
pub trait Request {
    const KIND: Kind;
    /// What declared patterns and policy rules are matched against.
    fn subject(&self) -> Subject<'_>;
    /// One line for reports and denials.
    fn display(&self) -> String;
    /// The YAML an operator would add under `allow:` to permit exactly this request.
    fn policy_entry(&self) -> String;
}

/// What a target does for each capability kind: this machine, a recorded bundle, a remote
/// host (`crate::target`, whose `Target` adds the target's name and identity). Every
/// method is already grant-checked by the caller; a target only does the work (or replays
/// it). One method per capability kind, so a new kind is a compile error in every target
/// until it is carried out there.
#[async_trait]
pub trait CarryOut: Send + Sync {
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
    /// At most the last `max_bytes` of a regular file and the file's length, with the same
    /// checks as `read_file`.
    async fn read_file_tail(
        &self,
        path: &str,
        max_bytes: u64,
        real_path_allowed: &PathCheck,
    ) -> CapResult<FileTail>;
    async fn resolve(&self, host: &str) -> CapResult<Vec<String>>;
    async fn connect(&self, host: &str, port: u16, timeout: Duration) -> CapResult<u32>;
    /// Seconds since the Unix epoch on the target (a bundle answers its recording time).
    fn now(&self) -> i64;

    /// Who owns the executable of running process `pid` and its permission bits, asked
    /// before `/proc/PID/exe` is run (see [`exec::RUNNING_EXECUTABLE`]); `None` where
    /// nothing is run (a bundle replays what was recorded). Targets that run programs ask
    /// `stat` on the target itself, so the answer is the target's, not this machine's.
    async fn executable_owner(&self, pid: u32, timeout: Duration) -> CapResult<Option<(u32, u32)>> {
        exec::stat_owner_and_mode(self, pid, timeout)
            .await
            .map(Some)
    }
}

/// Says whether a file's real path (every link resolved) may be read, and if not, why:
/// the policy's word on where a link may lead. A target that can resolve links asks it
/// before reading, so `/var/log/x -> /etc/shadow` is not read under a `/var/log/**` grant.
pub type PathCheck = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Quotes argv the way a POSIX shell would need it, for display only (never executed).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Single-quotes a word for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A string as a YAML (JSON) scalar, for suggested policy entries.
fn yaml_scalar(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A host name for `resolve` or `connect`: never one that a remote target's `getent` would
/// read as an option, nor one with whitespace, control characters or `/` (which would
/// change the path a remote shell's `/dev/tcp/HOST/PORT` names).
fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty()
        || host.starts_with('-')
        || host.len() > 253
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "`{}` is not a host name",
            host.escape_debug().take(80).collect::<String>()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_never_begin_with_a_dash() {
        assert!(check_host_name("trafficdirector.googleapis.com").is_ok());
        assert!(check_host_name("10.0.0.1").is_ok());
        assert!(check_host_name("::1").is_ok());
        for bad in ["-s", "--service=files", "", "a b", "a\nb", "a/b"] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_kind_has_its_own_name_and_bundle_key() {
        let names: std::collections::BTreeSet<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        let keys: std::collections::BTreeSet<_> =
            Kind::ALL.iter().map(|k| k.bundle_key()).collect();
        assert_eq!(
            (names.len(), keys.len()),
            (Kind::ALL.len(), Kind::ALL.len())
        );
        // The policy file's keys are the names, as serde reads them.
        assert_eq!(NAMES.len(), Kind::ALL.len());
        for kind in Kind::ALL {
            let parsed: Kind = serde_yaml::from_str(kind.name()).unwrap();
            assert_eq!(parsed, kind);
            assert!(NAMES.contains(&kind.name()));
        }
        let err = serde_yaml::from_str::<Kind>("spawn")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown field `spawn`, expected one of `exec`"),
            "{err}"
        );
    }
}
