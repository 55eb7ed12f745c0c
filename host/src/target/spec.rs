//! A target as an operator writes it — `--target`/`--bundle` on the command line, a line of
//! a `--targets` file, a `targets:` entry of the server's config — parsed once into a
//! [`Spec`] and opened with [`Spec::open`]. Every front end goes through here, so a new
//! target kind is one variant and the compiler points at what it needs.

use super::Target;
use super::bundle::{BundleError, BundleTarget};
use super::local::LocalTarget;
use super::remote::{RemoteTarget, Transport};
use crate::runbook::input_pattern::Named;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// Where capabilities are carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `local`: this machine.
    Local,
    /// `local://NAME`: this machine under a name of its own (a Kubernetes node's, a
    /// host's), the target's name in reports and on a server being `local://NAME`: a
    /// DaemonSet's pods each check their own node, and `local` on every node would make
    /// them one target. NAME is an RFC 1123 name (checked when parsed).
    LocalNamed(String),
    /// `bundle:DIR`: a recorded bundle, replayed.
    Bundle(PathBuf),
    /// `ssh://…`, `gcloud://…`, `kubectl://…`: another machine through a transport the
    /// operator already uses. `spec` is the text as written, the target's name in reports.
    Remote { spec: String, transport: Transport },
}

/// Why a target spec could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    // The spec escaped: a line break in it would split the one-line error (and a hostile
    // one would forge a second line).
    #[error("target `{}`: {why}", spec.escape_debug())]
    Remote { spec: String, why: String },
    #[error(
        "target `{}`: unknown target; use local, local://NAME, bundle:DIR, ssh://…, gcloud://… or kubectl://…",
        .0.escape_debug()
    )]
    Unknown(String),
    #[error("target `bundle:`: give the bundle's directory")]
    EmptyBundle,
    // The name shown escaped and cut: it may be anything a user or an environment
    // variable gave, 10 kB of it or a terminal escape.
    #[error(
        "target `{}{}`: the name must be an RFC 1123 name such as a Kubernetes node's or a host's (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most {} characters; {} given)",
        LOCAL_NAMED, shown(.0), MAX_LOCAL_NAME, .0.len()
    )]
    LocalName(String),
}

/// How `local://NAME` begins.
pub const LOCAL_NAMED: &str = "local://";

/// Longest `local://NAME` name: a DNS name's (and a Kubernetes node name's) 253.
pub const MAX_LOCAL_NAME: usize = 253;

/// At most 40 characters of `text`, escaped, with `…` when cut.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(40).collect();
    let ellipsis = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{ellipsis}", cut.escape_debug())
}

/// Why a target could not be opened. A remote target is not contacted when opened: a host
/// that does not answer fails its steps, not the opening.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl Spec {
    /// Reads a spec as given on the command line: `local`, `local://NAME`, `bundle:DIR`, or
    /// a remote URL.
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        if text == "local" {
            return Ok(Spec::Local);
        }
        if let Some(name) = text.strip_prefix(LOCAL_NAMED) {
            return Spec::local_named(name);
        }
        if let Some(dir) = text.strip_prefix("bundle:") {
            return Spec::bundle(Path::new(dir));
        }
        if text.contains("://") {
            let transport = Transport::parse(text).map_err(|why| SpecError::Remote {
                spec: text.to_string(),
                why,
            })?;
            return Ok(Spec::Remote {
                spec: text.to_string(),
                transport,
            });
        }
        Err(SpecError::Unknown(text.to_string()))
    }

    /// Reads a spec as written in a file (a `--targets` file, the server's config): as on
    /// the command line, except that anything else is a bundle directory, and a bundle
    /// directory is relative to `base` (the file's directory).
    pub fn in_file(text: &str, base: &Path) -> Result<Spec, SpecError> {
        if text == "local" || text.contains("://") {
            return Spec::parse(text);
        }
        let dir = text.strip_prefix("bundle:").unwrap_or(text);
        Spec::bundle(&base.join(dir))
    }

    /// This machine under `name`: an RFC 1123 name, the rule a Kubernetes node name and a
    /// DNS host name follow (and `Named::Rfc1123`, which runbook inputs use, checks), so
    /// nothing a terminal, Markdown, a URL or a path would read otherwise gets into reports
    /// and a server's keys: no control character, `/`, space, leading `-`, nor over 253.
    pub fn local_named(name: &str) -> Result<Spec, SpecError> {
        if name.len() > MAX_LOCAL_NAME || !Named::Rfc1123.matches(name) {
            return Err(SpecError::LocalName(name.to_string()));
        }
        Ok(Spec::LocalNamed(name.to_string()))
    }

    /// A bundle directory.
    pub fn bundle(dir: &Path) -> Result<Spec, SpecError> {
        if dir.as_os_str().is_empty() {
            return Err(SpecError::EmptyBundle);
        }
        Ok(Spec::Bundle(dir.to_path_buf()))
    }

    /// `local`, `bundle`, `ssh`, `gcloud` or `kubectl`.
    pub fn kind(&self) -> &'static str {
        match self {
            Spec::Local | Spec::LocalNamed(_) => "local",
            Spec::Bundle(_) => "bundle",
            Spec::Remote { transport, .. } => match transport {
                Transport::Ssh { .. } => "ssh",
                Transport::Gcloud { .. } => "gcloud",
                Transport::Kubectl { .. } => "kubectl",
            },
        }
    }

    /// The target, ready to carry out capability calls. A bundle is read here (and its
    /// errors say where); local and remote targets cost nothing to open.
    pub fn open(&self) -> Result<Arc<dyn Target>, OpenError> {
        Ok(match self {
            Spec::Local => Arc::new(LocalTarget::new()),
            Spec::LocalNamed(name) => Arc::new(LocalTarget::named(name)),
            Spec::Bundle(dir) => Arc::new(BundleTarget::open(dir)?),
            Spec::Remote { spec, transport } => {
                Arc::new(RemoteTarget::new(transport.clone(), spec.clone()))
            }
        })
    }
}

/// The spec as it would be written again: `local`, `local://NAME`, `bundle:DIR`, `ssh://…`.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Local => f.write_str("local"),
            Spec::LocalNamed(name) => write!(f, "{LOCAL_NAMED}{name}"),
            Spec::Bundle(dir) => write!(f, "bundle:{}", dir.display()),
            Spec::Remote { spec, .. } => f.write_str(spec),
        }
    }
}

impl FromStr for Spec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Spec, SpecError> {
        Spec::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_once_and_write_back_the_same() {
        for text in [
            "local",
            "local://gke-pool-1-abc.europe-west1-b",
            "bundle:examples/x",
            "ssh://ops@10.0.0.5:2222",
            "gcloud://vm-1?zone=europe-west1-b",
            "kubectl://shop/web-1/envoy",
        ] {
            let spec = Spec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
        }
        let kinds: Vec<&str> = [
            "local",
            "local://node-1",
            "bundle:x",
            "ssh://h",
            "gcloud://v?zone=us-east1-b",
            "kubectl://p",
        ]
        .iter()
        .map(|t| Spec::parse(t).unwrap().kind())
        .collect();
        assert_eq!(
            kinds,
            ["local", "local", "bundle", "ssh", "gcloud", "kubectl"]
        );
    }

    #[test]
    fn files_name_bundles_relative_to_themselves() {
        let base = Path::new("/etc/triage");
        assert_eq!(
            Spec::in_file("vm-1", base).unwrap(),
            Spec::Bundle(PathBuf::from("/etc/triage/vm-1"))
        );
        assert_eq!(
            Spec::in_file("bundle:/abs/vm-2", base).unwrap(),
            Spec::Bundle(PathBuf::from("/abs/vm-2"))
        );
        assert_eq!(Spec::in_file("local", base).unwrap(), Spec::Local);
        assert_eq!(
            Spec::in_file("local://node-1", base).unwrap(),
            Spec::LocalNamed("node-1".into())
        );
    }

    #[test]
    fn bad_specs_are_typed_errors_naming_the_spec() {
        assert_eq!(
            Spec::parse("vm-1").unwrap_err(),
            SpecError::Unknown("vm-1".into())
        );
        assert_eq!(Spec::parse("bundle:").unwrap_err(), SpecError::EmptyBundle);
        let err = Spec::parse("ssh://-oProxyCommand=x").unwrap_err();
        assert!(
            matches!(&err, SpecError::Remote { spec, .. } if spec == "ssh://-oProxyCommand=x"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("target `ssh://-oProxyCommand=x`: "),
            "{err}"
        );
        let err = Spec::Bundle(PathBuf::from("/nonexistent/triage-bundle"))
            .open()
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a bundle directory"), "{err}");
    }

    #[test]
    fn a_local_targets_name_is_an_rfc_1123_name_and_names_its_reports() {
        let spec = Spec::parse("local://node-1.pool-a").unwrap();
        assert_eq!(spec, Spec::LocalNamed("node-1.pool-a".into()));
        assert_eq!(spec.open().unwrap().name(), "local://node-1.pool-a");
        assert_eq!(Spec::Local.open().unwrap().name(), "local");
        let longest = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        assert_eq!(longest.len(), MAX_LOCAL_NAME);
        assert!(Spec::local_named(&longest).is_ok());
        let huge = "n".repeat(10_000);
        for bad in [
            "",
            "-oProxyCommand=x",
            "../etc",
            "a/b",
            "node\u{1b}[2J",
            "node\nforged: line",
            "Node-1",
            "node 1",
            "node_1",
            "node-",
            "a..b",
            huge.as_str(),
            &format!("{longest}a"),
        ] {
            let err = Spec::parse(&format!("local://{bad}")).unwrap_err();
            assert_eq!(err, SpecError::LocalName(bad.to_string()));
            let line = err.to_string();
            assert!(!line.contains(['\n', '\u{1b}']), "{line:?}");
            assert!(line.len() < 400, "{} bytes: {line:.100}", line.len());
            assert!(line.starts_with("target `local://"), "{line}");
        }
    }
}
