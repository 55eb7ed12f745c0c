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
                    rule: fn(E) -> Result<Pattern, String>,
                ) -> Result<Vec<Pattern>, A::Error>
                where
                    A: serde::de::MapAccess<'de>,
                    E: Deserialize<'de>,
                {
                    map.next_value::<Vec<E>>()?
                        .into_iter()
                        .map(|e| rule(e).map_err(serde::de::Error::custom))
                        .collect()
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
        let text = crate::files::read_text(path)
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
            crate::yaml::depth::check_file(text, path)
                .map_err(|e| anyhow::anyhow!("{e} (invalid policy)"))?;
            serde_yaml::from_str(text).map_err(|e| {
                let (at, message) = crate::yaml::yaml_error_parts(path, &e);
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

    fn method(method: &str, url: &str) -> http::HttpRequest {
        http::HttpRequest {
            method: method.into(),
            ..get(url)
        }
    }

    #[test]
    fn builtin_allows_what_the_builtin_runbooks_run() {
        let p = Policy::builtin();
        for allowed in [
            &["iptables-save", "-t", "nat"][..],
            &["ip6tables", "-t", "filter", "-L", "-n", "-v"],
            &["ps", "-eo", "pid=,uid=,user=,args="],
            &["envoy", "--version"],
            &["/usr/local/bin/envoy", "--version"],
            &["/proc/1234/exe", "--version"],
            &[
                "gcloud",
                "projects",
                "get-ancestors-iam-policy",
                "--format=json",
                "--",
                "p-1",
            ],
            &[
                "stat",
                "-c",
                "%U|%u|%G|%g|%a|%F",
                "--",
                "/var/log/envoy/access.log",
            ],
            &[
                "kubectl", "get", "pods", "-n", "default", "-l", "app=web", "-o", "json",
            ],
            &["kubectl", "get", "events", "--all-namespaces", "-o", "json"],
            &[
                "kubectl",
                "get",
                "service",
                "-n",
                "istio-system",
                "-o",
                "json",
                "--",
                "istiod",
            ],
            &[
                "kubectl", "logs", "-n", "default", "-c", "envoy", "--tail", "200", "--", "web-1",
            ],
            &[
                "kubectl",
                "exec",
                "-n",
                "shop",
                "-c",
                "envoy",
                "web-1",
                "--",
                "iptables-save",
                "-t",
                "nat",
            ],
            &[
                "kubectl", "exec", "-n", "shop", "-c", "envoy", "web-1", "--", "iptables", "-t",
                "nat", "-S",
            ],
            &[
                "gcloud",
                "compute",
                "instances",
                "describe",
                "--zone",
                "us-central1-a",
                "--format=json",
                "--project",
                "p-1",
                "--",
                "vm-1",
            ],
            &[
                "gcloud",
                "projects",
                "get-iam-policy",
                "--format=json",
                "--",
                "p-1",
            ],
        ] {
            assert!(p.allows(&argv(allowed)), "{allowed:?}");
        }
        assert!(p.allows(&get(
            "http://localhost:15000/config_dump?resource=dynamic_listeners"
        )));
        assert!(p.allows(&method("HEAD", "http://127.0.0.1:15000/server_info")));
        assert!(p.allows(&get(
            "http://metadata.google.internal/computeMetadata/v1/instance/guest-attributes/gce-service-proxy/bootstrap-status"
        )));
        assert!(p.allows(&resolve::Request {
            host: "trafficdirector.googleapis.com".into()
        }));
        assert!(p.allows(&connect::Request::new(
            "trafficdirector.googleapis.com".into(),
            443
        )));
    }

    /// Issue 11, "The default policy is not read-only": each of these was allowed.
    #[test]
    fn builtin_refuses_what_reads_secrets_changes_things_or_picks_the_program() {
        let p = Policy::builtin();
        for hostile in [
            // The environment of every process: a server's Slack and Mattermost secrets.
            &["ps", "eww"][..],
            &["ps", "e"],
            &["ps", "-eo", "pid=,args=", "e"],
            &["id", "-a"],
            // Secrets, another kubeconfig (its credential plugin is a program), another
            // identity, YAML of anything.
            &["kubectl", "get", "secrets", "-A", "-o", "yaml"],
            &["kubectl", "get", "secrets", "-n", "default", "-o", "json"],
            &[
                "kubectl",
                "get",
                "pods",
                "-n",
                "default",
                "-o",
                "json",
                "--kubeconfig=/tmp/x/kc",
            ],
            &[
                "kubectl",
                "get",
                "pods",
                "--kubeconfig=/tmp/x/kc",
                "-n",
                "default",
                "-o",
                "json",
            ],
            &["kubectl", "get", "pods", "-n", "--as=admin", "-o", "json"],
            &["kubectl", "get", "pods", "-n", "default", "-o", "yaml"],
            &[
                "kubectl", "get", "pods", "-n", "default", "-o", "json", "--as", "admin",
            ],
            &[
                "kubectl",
                "logs",
                "-n",
                "default",
                "-c",
                "envoy",
                "--tail",
                "5",
                "--kubeconfig=/tmp/kc",
                "--",
                "p",
            ],
            &[
                "kubectl",
                "logs",
                "-n",
                "default",
                "-c",
                "app",
                "--tail",
                "5",
                "--previous",
                "--",
                "p",
            ],
            &["kubectl", "describe", "secret", "x"],
            // exec runs only the printing of the nat table, in a pod named as an operand.
            &[
                "kubectl", "exec", "-n", "shop", "-c", "envoy", "web-1", "--", "sh", "-c", "id",
            ],
            &[
                "kubectl", "exec", "-n", "shop", "-c", "envoy", "web-1", "--", "iptables", "-t",
                "nat", "-F",
            ],
            &[
                "kubectl",
                "exec",
                "-n",
                "shop",
                "-c",
                "envoy",
                "--kubeconfig=/tmp/kc",
                "--",
                "iptables-save",
                "-t",
                "nat",
            ],
            &[
                "kubectl",
                "exec",
                "-n",
                "shop",
                "-c",
                "envoy",
                "-it",
                "web-1",
                "--",
                "iptables-save",
                "-t",
                "nat",
            ],
            &[
                "kubectl",
                "debug",
                "-n",
                "shop",
                "web-1",
                "--profile=netadmin",
                "--image=busybox",
                "--",
                "iptables-save",
            ],
            // More flags from a file, another account.
            &[
                "gcloud",
                "projects",
                "get-iam-policy",
                "--format=json",
                "--flags-file=/tmp/f",
                "--",
                "p",
            ],
            &[
                "gcloud",
                "projects",
                "get-iam-policy",
                "--format=json",
                "--impersonate-service-account=a@b",
                "--",
                "p",
            ],
            &[
                "gcloud",
                "compute",
                "instances",
                "describe",
                "--zone",
                "--configuration=evil",
                "--format=json",
                "--",
                "vm",
            ],
            &[
                "gcloud",
                "services",
                "list",
                "--enabled",
                "--format=json",
                "--project",
                "--flags-file=/tmp/f",
            ],
            &["gcloud", "secrets", "versions", "access", "latest"],
            // Any executable named envoy.
            &["/tmp/x/envoy", "--version"],
            &["/proc/../tmp/x/exe", "--version"],
            &["/proc/1/../../tmp/x/exe", "--version"],
            &["/proc/1/cwd/exe", "--version"],
            &["/usr/local/bin/../../../tmp/x/envoy", "--version"],
            &["./envoy", "--version"],
            &["envoy", "--version", "--config-path", "/tmp/c"],
            &["iptables", "-t", "nat", "-F"],
            &["iptables-save", "-t", "nat", "-M", "/tmp/x"],
        ] {
            assert!(!p.allows(&argv(hostile)), "{hostile:?}");
        }
        for (m, url) in [
            ("POST", "http://127.0.0.1:15000/quitquitquit"),
            ("GET", "http://127.0.0.1:15000/quitquitquit"),
            ("POST", "http://localhost:15000/healthcheck/fail"),
            ("POST", "http://localhost:15000/config_dump"),
            (
                "PUT",
                "http://metadata.google.internal/computeMetadata/v1/instance/guest-attributes/gce-service-proxy/x",
            ),
            (
                "GET",
                "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
            ),
            (
                "GET",
                "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity?audience=x",
            ),
            (
                "GET",
                "http://metadata.google.internal/computeMetadata/v1/instance/attributes/?recursive=true",
            ),
            (
                "GET",
                "http://metadata.google.internal/computeMetadata/v1/instance/attributes/startup-script",
            ),
            (
                "GET",
                "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
            ),
        ] {
            assert!(!p.allows(&method(m, url)), "{m} {url}");
        }
        for host in ["secret-data.attacker.example", "10.0.0.1", "localhost"] {
            assert!(!p.allows(&resolve::Request { host: host.into() }), "{host}");
        }
        for (host, port) in [
            ("10.0.0.1", 22),
            ("127.0.0.1", 6379),
            ("trafficdirector.googleapis.com", 80),
        ] {
            assert!(
                !p.allows(&connect::Request::new(host.into(), port)),
                "{host}:{port}"
            );
        }
    }

    #[test]
    fn an_operator_grants_other_methods_by_naming_them() {
        let p = Policy::parse(
            "allow:\n  http: [\"POST http://127.0.0.1:*/quitquitquit\"]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        assert!(p.allows(&method("POST", "http://127.0.0.1:15000/quitquitquit")));
        assert!(!p.allows(&method("PUT", "http://127.0.0.1:15000/quitquitquit")));
        assert!(!p.allows(&method("GET", "http://127.0.0.1:15000/quitquitquit")));
        let err = Policy::parse(
            "allow:\n  http: [\"P_ST http://a/\"]\n",
            Path::new("p.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("p.yaml:2:") && err.contains("is not an HTTP method"),
            "{err}"
        );
    }

    #[test]
    fn an_exec_entry_names_its_program() {
        for bad in [
            r#"["/**/envoy", --version]"#,
            r#"["*", --version]"#,
            r#"[bin/envoy]"#,
            r#"["{binary}"]"#,
            "[]",
        ] {
            let text = format!("allow:\n  exec:\n    - {bad}\n");
            let err = Policy::parse(&text, Path::new("p.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("p.yaml:3:"), "{bad}: {err}");
            assert!(err.contains("program"), "{bad}: {err}");
        }
        let p = Policy::parse(
            "allow:\n  exec: [[/opt/envoy/bin/envoy, --version]]\n",
            Path::new("p.yaml"),
        )
        .unwrap();
        assert!(p.allows(&argv(&["/opt/envoy/bin/envoy", "--version"])));
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
