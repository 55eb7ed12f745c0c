//! A target as an operator writes it — `--target`/`--bundle` on the command line, a line of
//! a `--targets` file, a `targets:` entry of the server's config — parsed once into a
//! [`Spec`] and opened with [`Spec::open`]. Every front end goes through here, so a new
//! target kind is one variant and the compiler points at what it needs.

use super::Target;
use super::bundle::{BundleError, BundleTarget};
use super::local::LocalTarget;
use super::remote::{RemoteTarget, Transport};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// Where capabilities are carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `local`: this machine.
    Local,
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
        "target `{}`: unknown target; use local, bundle:DIR, ssh://…, gcloud://… or kubectl://…",
        .0.escape_debug()
    )]
    Unknown(String),
    #[error("target `bundle:`: give the bundle's directory")]
    EmptyBundle,
}

/// Why a target could not be opened. A remote target is not contacted when opened: a host
/// that does not answer fails its steps, not the opening.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl Spec {
    /// Reads a spec as given on the command line: `local`, `bundle:DIR`, or a remote URL.
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        if text == "local" {
            return Ok(Spec::Local);
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
            Spec::Local => "local",
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
            Spec::Bundle(dir) => Arc::new(BundleTarget::open(dir)?),
            Spec::Remote { spec, transport } => {
                Arc::new(RemoteTarget::new(transport.clone(), spec.clone()))
            }
        })
    }
}

/// The spec as it would be written again: `local`, `bundle:DIR`, `ssh://…`.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Local => f.write_str("local"),
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
            "bundle:x",
            "ssh://h",
            "gcloud://v?zone=us-east1-b",
            "kubectl://p",
        ]
        .iter()
        .map(|t| Spec::parse(t).unwrap().kind())
        .collect();
        assert_eq!(kinds, ["local", "bundle", "ssh", "gcloud", "kubectl"]);
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
}
