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

use super::pattern::Pattern;
use super::{Kind, Request, connect, exec, http, read_file, resolve};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The built-in policy: read-only commands, loopback and metadata-server URLs, logs under
/// /var/log, name resolution and TCP connects (they carry no data).
pub const DEFAULT_POLICY: &str = include_str!("default-policy.yaml");

/// Limits of every plugin call; the policy file's `limits:` may change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    pub memory_bytes: usize,
    /// Guest CPU time, counted in epoch ticks while guest code runs.
    pub cpu: Duration,
    /// Wall-clock time for the whole call, capability calls included.
    pub wall: Duration,
    pub output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 256 << 20,
            cpu: Duration::from_secs(5),
            wall: Duration::from_secs(30),
            output_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default = "yes")]
    defaults: bool,
    #[serde(default)]
    allow: Allow,
    #[serde(default)]
    limits: LimitsFile,
}

fn yes() -> bool {
    true
}

/// `allow:`, by capability kind. Each kind's entries are read by its own module's type, so
/// a kind the policy file names that this host does not know is an error with its line and
/// column, and a new kind is a compile error here until its entries can be read.
#[derive(Debug, Default)]
struct Allow(BTreeMap<Kind, Vec<Pattern>>);

impl<'de> Deserialize<'de> for Allow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Allow;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map from capability kinds to lists of patterns")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Allow, A::Error> {
                fn read<'de, A, E>(
                    map: &mut A,
                    rule: fn(E) -> Pattern,
                ) -> Result<Vec<Pattern>, A::Error>
                where
                    A: serde::de::MapAccess<'de>,
                    E: Deserialize<'de>,
                {
                    Ok(map.next_value::<Vec<E>>()?.into_iter().map(rule).collect())
                }
                let mut allow = BTreeMap::new();
                while let Some(kind) = map.next_key::<Kind>()? {
                    let rules = match kind {
                        Kind::Exec => read(&mut map, exec::policy_pattern)?,
                        Kind::Http => read(&mut map, http::policy_pattern)?,
                        Kind::ReadFile => read(&mut map, read_file::policy_pattern)?,
                        Kind::Resolve => read(&mut map, resolve::policy_pattern)?,
                        Kind::Connect => read(&mut map, connect::policy_pattern)?,
                    };
                    if allow.insert(kind, rules).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "`{kind}` is listed twice under `allow`"
                        )));
                    }
                }
                Ok(Allow(allow))
            }
        }
        d.deserialize_map(Visitor)
    }
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
    /// What is allowed, by kind; a kind with no entry allows nothing.
    rules: BTreeMap<Kind, Vec<Pattern>>,
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
            rules: BTreeMap::new(),
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
            d.cpu = Duration::from_millis(v);
        }
        if let Some(v) = l.wall_ms {
            d.wall = Duration::from_millis(v);
        }
        if let Some(v) = l.output_mib {
            d.output_bytes = v.saturating_mul(1 << 20) as usize;
        }
        Ok(policy)
    }

    fn add(&mut self, allow: Allow) {
        for (kind, rules) in allow.0 {
            self.rules.entry(kind).or_default().extend(rules);
        }
    }

    /// Whether some rule of this request's kind matches it.
    pub fn allows<R: Request>(&self, request: &R) -> bool {
        let subject = request.subject();
        self.rules
            .get(&R::KIND)
            .is_some_and(|rules| rules.iter().any(|p| p.matches(&subject)))
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

    fn argv(v: &[&str]) -> exec::Request {
        exec::Request {
            argv: v.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn get(url: &str) -> http::HttpRequest {
        http::HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
        }
    }

    fn read(path: &str) -> read_file::Request {
        read_file::Request { path: path.into() }
    }

    #[test]
    fn builtin_allows_read_only_and_refuses_writes() {
        let p = Policy::builtin();
        assert!(p.allows(&argv(&["iptables-save", "-t", "nat"])));
        assert!(p.allows(&argv(&["iptables", "-t", "nat", "-S"])));
        assert!(!p.allows(&argv(&["iptables", "-t", "nat", "-F"])));
        assert!(!p.allows(&argv(&["rm", "-rf", "/"])));
        assert!(p.allows(&get("http://localhost:15000/config_dump")));
        assert!(p.allows(&get("http://127.0.0.1:15000/server_info")));
        assert!(!p.allows(&get("http://example.com/")));
        assert!(p.allows(&read("/var/log/envoy/envoy.err.log")));
        assert!(!p.allows(&read("/etc/shadow")));
    }

    #[test]
    fn file_extends_defaults_unless_told_not_to() {
        let p = Policy::parse(
            "allow:\n  read_file: [\"/etc/envoy/**\"]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        assert!(p.allows(&read("/etc/envoy/bootstrap.yaml")));
        assert!(p.allows(&read("/var/log/x")));
        let p = Policy::parse(
            "defaults: false\nallow:\n  read_file: [\"/etc/envoy/**\"]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        assert!(!p.allows(&read("/var/log/x")));
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
        // A kind this host does not know is an error, not an entry that allows nothing.
        let err = Policy::parse("allow:\n  spawn: [\"x\"]\n", Path::new("p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.yaml:2:3")
                && err.contains("unknown field `spawn`, expected one of `exec`,"),
            "{err}"
        );
        let err = Policy::parse("allow:\n  http: [[\"a\"]]\n", Path::new("p.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yaml:2:"), "{err}");
    }
}
