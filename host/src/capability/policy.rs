//! The operator's policy: which capabilities plugins may be granted at all.
//!
//! A policy file is YAML:
//!
//! ```yaml
//! defaults: true          # start from the built-in safe policy (default); false = only what is listed
//! allow:
//!   exec:
//!     - [iptables-save, "**"]
//!   http: ["http://localhost:*/**"]
//!   read_file: ["/var/log/**"]
//!   resolve: ["*"]
//!   connect: ["*:443"]
//! limits:
//!   memory_mib: 256
//!   cpu_ms: 5000
//!   wall_ms: 30000
//!   output_mib: 16
//! ```

use super::pattern::{Pattern, Subject};
use crate::runtime::SandboxLimits;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The built-in policy: read-only commands, loopback and metadata-server URLs, logs under
/// /var/log, name resolution and TCP connects (they carry no data).
pub const DEFAULT_POLICY: &str = include_str!("default-policy.yaml");

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default = "yes")]
    defaults: bool,
    #[serde(default)]
    allow: AllowFile,
    #[serde(default)]
    limits: LimitsFile,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    exec: Vec<Vec<String>>,
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    read_file: Vec<String>,
    #[serde(default)]
    resolve: Vec<String>,
    #[serde(default)]
    connect: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_mib: Option<u64>,
    cpu_ms: Option<u64>,
    wall_ms: Option<u64>,
    output_mib: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    exec: Vec<Pattern>,
    http: Vec<Pattern>,
    read_file: Vec<Pattern>,
    resolve: Vec<Pattern>,
    connect: Vec<Pattern>,
    pub limits: SandboxLimits,
    origin: String,
    path: Option<PathBuf>,
}

impl Policy {
    /// The built-in policy.
    pub fn builtin() -> Self {
        let file: PolicyFile =
            serde_yaml::from_str(DEFAULT_POLICY).expect("the built-in policy parses");
        let mut policy = Policy::empty("built-in default policy");
        policy.add(file.allow);
        policy
    }

    fn empty(origin: &str) -> Self {
        Policy {
            exec: Vec::new(),
            http: Vec::new(),
            read_file: Vec::new(),
            resolve: Vec::new(),
            connect: Vec::new(),
            limits: SandboxLimits::default(),
            origin: origin.into(),
            path: None,
        }
    }

    /// Reads a policy file; errors carry the file and the YAML position.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read policy: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Self> {
        let file: PolicyFile = if text.trim().is_empty() {
            PolicyFile {
                defaults: true,
                ..Default::default()
            }
        } else {
            crate::runbook::depth::check_file(text, path)
                .map_err(|e| anyhow::anyhow!("{e} (invalid policy)"))?;
            serde_yaml::from_str(text).map_err(|e| {
                let (at, message) = crate::runbook::yaml_error_parts(path, &e);
                anyhow::anyhow!("{at}: invalid policy: {message}")
            })?
        };
        let mut policy = if file.defaults {
            Policy::builtin()
        } else {
            Policy::empty("")
        };
        policy.origin = format!("policy file {}", path.display());
        policy.path = Some(path.to_path_buf());
        policy.add(file.allow);
        let l = file.limits;
        let d = &mut policy.limits;
        if let Some(v) = l.memory_mib {
            d.memory_bytes = v.saturating_mul(1 << 20) as usize;
        }
        if let Some(v) = l.cpu_ms {
            d.cpu = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.wall_ms {
            d.wall = std::time::Duration::from_millis(v);
        }
        if let Some(v) = l.output_mib {
            d.output_bytes = v.saturating_mul(1 << 20) as usize;
        }
        Ok(policy)
    }

    fn add(&mut self, allow: AllowFile) {
        self.exec
            .extend(allow.exec.iter().map(|a| Pattern::argv(a)));
        self.http
            .extend(allow.http.iter().map(|p| Pattern::text(p)));
        self.read_file
            .extend(allow.read_file.iter().map(|p| Pattern::text(p)));
        self.resolve
            .extend(allow.resolve.iter().map(|p| Pattern::text(p)));
        self.connect
            .extend(allow.connect.iter().map(|p| Pattern::text(p)));
    }

    pub fn allows(&self, kind: &str, subject: &Subject) -> bool {
        let list = match kind {
            "exec" => &self.exec,
            "http" => &self.http,
            "read_file" => &self.read_file,
            "resolve" => &self.resolve,
            "connect" => &self.connect,
            _ => return false,
        };
        list.iter().any(|p| p.matches(subject))
    }

    /// Where this policy came from, for denials.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The file an operator should edit to change it.
    pub fn suggested_path(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => crate::paths::policy_file()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "policy.yaml (pass it with --policy)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn builtin_allows_read_only_and_refuses_writes() {
        let p = Policy::builtin();
        assert!(p.allows(
            "exec",
            &Subject::Argv(&argv(&["iptables-save", "-t", "nat"]))
        ));
        assert!(p.allows(
            "exec",
            &Subject::Argv(&argv(&["iptables", "-t", "nat", "-S"]))
        ));
        assert!(!p.allows(
            "exec",
            &Subject::Argv(&argv(&["iptables", "-t", "nat", "-F"]))
        ));
        assert!(!p.allows("exec", &Subject::Argv(&argv(&["rm", "-rf", "/"]))));
        assert!(p.allows("http", &Subject::Text("http://localhost:15000/config_dump")));
        assert!(p.allows("http", &Subject::Text("http://127.0.0.1:15000/server_info")));
        assert!(!p.allows("http", &Subject::Text("http://example.com/")));
        assert!(p.allows("read_file", &Subject::Text("/var/log/envoy/envoy.err.log")));
        assert!(!p.allows("read_file", &Subject::Text("/etc/shadow")));
    }

    #[test]
    fn file_extends_defaults_unless_told_not_to() {
        let p = Policy::parse(
            "allow:\n  read_file: [\"/etc/envoy/**\"]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        assert!(p.allows("read_file", &Subject::Text("/etc/envoy/bootstrap.yaml")));
        assert!(p.allows("read_file", &Subject::Text("/var/log/x")));
        let p = Policy::parse(
            "defaults: false\nallow:\n  read_file: [\"/etc/envoy/**\"]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        assert!(!p.allows("read_file", &Subject::Text("/var/log/x")));
    }

    #[test]
    fn bad_policy_names_file_line_and_column() {
        let err = Policy::parse("allow:\n  exec: 3\n", Path::new("p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yaml:2:"), "{err}");
        let err = Policy::parse("allwo: {}\n", Path::new("p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yaml:1:1"), "{err}");
    }
}
