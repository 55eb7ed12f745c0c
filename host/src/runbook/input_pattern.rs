//! What an input's value may look like: a small vocabulary of named shapes (Kubernetes and
//! Compute Engine names, URLs, addresses, paths) or an anchored regular expression.
//!
//! Inputs come from API callers and chat users, who are not trusted (docs/security.md).
//! A value that fails its pattern is refused before a run is queued or started, with one
//! line saying which input and what it must look like. The vocabulary is deliberately
//! small; every name is documented in docs/runbooks.md and in the runbook JSON schema.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A pattern an input declares (`pattern:` in a runbook's `inputs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct InputPattern {
    source: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Named(Named),
    Regex(regex::Regex),
}

/// The named shapes. Each is what the system it names accepts, so a valid name is never
/// refused, and nothing that could be read as an option, a path or a URL gets through
/// where a name is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    Rfc1123,
    Rfc1123Label,
    Rfc1035Label,
    GcpProject,
    GcpZone,
    GcpRegion,
    K8sLabelValue,
    K8sSelector,
    HttpUrl,
    IpAddress,
    AbsolutePath,
}

impl Named {
    pub const ALL: [Named; 11] = [
        Named::Rfc1123,
        Named::Rfc1123Label,
        Named::Rfc1035Label,
        Named::GcpProject,
        Named::GcpZone,
        Named::GcpRegion,
        Named::K8sLabelValue,
        Named::K8sSelector,
        Named::HttpUrl,
        Named::IpAddress,
        Named::AbsolutePath,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Named::Rfc1123 => "rfc1123",
            Named::Rfc1123Label => "rfc1123-label",
            Named::Rfc1035Label => "rfc1035-label",
            Named::GcpProject => "gcp-project",
            Named::GcpZone => "gcp-zone",
            Named::GcpRegion => "gcp-region",
            Named::K8sLabelValue => "k8s-label-value",
            Named::K8sSelector => "k8s-selector",
            Named::HttpUrl => "http-url",
            Named::IpAddress => "ip-address",
            Named::AbsolutePath => "absolute-path",
        }
    }

    /// What a value must look like, for errors and the schema.
    pub fn describe(self) -> &'static str {
        match self {
            Named::Rfc1123 => {
                "an RFC 1123 name such as a Kubernetes pod, deployment or ConfigMap name (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters)"
            }
            Named::Rfc1123Label => {
                "an RFC 1123 label such as a Kubernetes namespace or container name (lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters)"
            }
            Named::Rfc1035Label => {
                "a Compute Engine name such as an instance, network or cluster (a lowercase letter, then lowercase letters, digits and `-`, not ending with `-`, at most 63 characters)"
            }
            Named::GcpProject => {
                "a Google Cloud project ID (6 to 30 lowercase letters, digits and `-`, starting with a letter, not ending with `-`; `example.com:` may come first)"
            }
            Named::GcpZone => "a Compute Engine zone such as `us-central1-a`",
            Named::GcpRegion => "a Compute Engine region such as `us-central1`",
            Named::K8sLabelValue => {
                "a Kubernetes label value (letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit, at most 63 characters)"
            }
            Named::K8sSelector => {
                "a Kubernetes label selector such as `app=web,tier!=db` (letters, digits, spaces and `-_./=!,()`, starting with a letter or digit or `!`, at most 256 characters)"
            }
            Named::HttpUrl => "an http:// or https:// URL with a host and no user name or password",
            Named::IpAddress => "an IPv4 or IPv6 address",
            Named::AbsolutePath => {
                "an absolute path (starting with `/`, no `..` part, no control characters, at most 4096 bytes)"
            }
        }
    }

    fn from_name(name: &str) -> Option<Named> {
        Named::ALL.into_iter().find(|n| n.name() == name)
    }

    /// Whether `v` has this shape (the target parser uses it for gcloud's names too).
    pub fn matches(self, v: &str) -> bool {
        fn alnum_lower(c: char) -> bool {
            c.is_ascii_lowercase() || c.is_ascii_digit()
        }
        /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
        fn label(v: &str) -> bool {
            !v.is_empty()
                && v.len() <= 63
                && v.starts_with(alnum_lower)
                && v.ends_with(alnum_lower)
                && v.chars().all(|c| alnum_lower(c) || c == '-')
        }
        /// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63.
        fn rfc1035(v: &str) -> bool {
            label(v) && v.starts_with(|c: char| c.is_ascii_lowercase())
        }
        /// `[a-z]+-[a-z]+[0-9]+`: `us-central1`, `northamerica-northeast1`, `me-west1`.
        fn region(v: &str) -> bool {
            let Some((area, rest)) = v.split_once('-') else {
                return false;
            };
            let digits = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
            !area.is_empty()
                && area.chars().all(|c| c.is_ascii_lowercase())
                && digits.len() < rest.len()
                && !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
        }
        match self {
            Named::Rfc1123 => v.len() <= 253 && v.split('.').all(label),
            Named::Rfc1123Label => label(v),
            Named::Rfc1035Label => rfc1035(v),
            Named::GcpProject => {
                let id = match v.rsplit_once(':') {
                    Some((domain, id)) => {
                        if !Named::Rfc1123.matches(domain) || !domain.contains('.') {
                            return false;
                        }
                        id
                    }
                    None => v,
                };
                (6..=30).contains(&id.len()) && rfc1035(id)
            }
            Named::GcpZone => match v.rsplit_once('-') {
                Some((r, z)) => {
                    region(r) && z.len() == 1 && z.chars().all(|c| c.is_ascii_lowercase())
                }
                None => false,
            },
            Named::GcpRegion => region(v),
            Named::K8sLabelValue => {
                let edge = |c: char| c.is_ascii_alphanumeric();
                v.len() <= 63
                    && v.starts_with(edge)
                    && v.ends_with(edge)
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            }
            Named::K8sSelector => {
                !v.is_empty()
                    && v.len() <= 256
                    && v.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '!')
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || " -_./=!,()".contains(c))
            }
            Named::HttpUrl => crate::capability::http::canonical_url(v).is_ok(),
            Named::IpAddress => v.parse::<std::net::IpAddr>().is_ok(),
            Named::AbsolutePath => {
                v.starts_with('/')
                    && v.len() <= 4096
                    && !v.split('/').any(|part| part == "..")
                    && !v.chars().any(char::is_control)
            }
        }
    }
}

impl InputPattern {
    /// Whether `value` has the declared shape; `Err` says what it must look like.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let ok = match &self.kind {
            Kind::Named(n) => n.matches(value),
            Kind::Regex(re) => re.is_match(value),
        };
        if ok {
            return Ok(());
        }
        Err(match &self.kind {
            Kind::Named(n) => format!("is not {}", n.describe()),
            Kind::Regex(_) => format!("does not match the pattern {}", self.source),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Regular expressions are compiled with a size limit: a runbook is trusted, but a typo
/// should not cost a gigabyte.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl TryFrom<String> for InputPattern {
    type Error = String;
    fn try_from(source: String) -> Result<Self, String> {
        if let Some(named) = Named::from_name(&source) {
            return Ok(InputPattern {
                source,
                kind: Kind::Named(named),
            });
        }
        if source.starts_with('^') && source.ends_with('$') && source.len() >= 2 {
            let re = regex::RegexBuilder::new(&source)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let first = e.to_string();
                    let first = first.lines().last().unwrap_or_default().trim().to_string();
                    format!("invalid pattern {source:?}: {first}")
                })?;
            return Ok(InputPattern {
                source,
                kind: Kind::Regex(re),
            });
        }
        let names: Vec<&str> = Named::ALL.iter().map(|n| n.name()).collect();
        Err(format!(
            "unknown pattern `{source}`: use one of {}, or a regular expression anchored with `^` and `$`",
            names.join(", ")
        ))
    }
}

impl From<InputPattern> for String {
    fn from(p: InputPattern) -> String {
        p.source
    }
}

impl fmt::Display for InputPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl JsonSchema for InputPattern {
    fn schema_name() -> Cow<'static, str> {
        "InputPattern".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let named: Vec<serde_json::Value> = Named::ALL
            .iter()
            .map(|n| serde_json::json!({"const": n.name(), "description": n.describe()}))
            .collect();
        json_schema!({
            "description": "What the input's value must look like, checked before a run starts: a named shape, or a regular expression anchored with `^` and `$`.",
            "anyOf": [
                {"oneOf": named},
                {"type": "string", "pattern": "^\\^.*\\$$", "description": "A regular expression the whole value must match (Rust regex syntax)."}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> InputPattern {
        InputPattern::try_from(n.to_string()).unwrap()
    }

    #[test]
    fn option_like_values_fail_every_name_pattern() {
        for n in Named::ALL {
            for hostile in ["--kubeconfig=/tmp/kc", "-n", "--flags-file=/tmp/x", "a\nb"] {
                assert!(
                    named(n.name()).check(hostile).is_err(),
                    "{} accepted {hostile:?}",
                    n.name()
                );
            }
        }
    }

    #[test]
    fn real_names_pass() {
        let ok = [
            ("rfc1123", "busybox-6b8b7c6c9f-q9w7d"),
            ("rfc1123", "istio-sidecar-injector"),
            ("rfc1123", "a.b-c"),
            ("rfc1123-label", "istio-control"),
            ("rfc1035-label", "td-vm-1"),
            ("gcp-project", "td-demo-project"),
            ("gcp-project", "example.com:my-project"),
            ("gcp-zone", "us-central1-a"),
            ("gcp-zone", "northamerica-northeast1-b"),
            ("gcp-region", "europe-west4"),
            ("k8s-label-value", "Busy_box.v1"),
            ("k8s-selector", "app=web,tier!=db"),
            ("k8s-selector", "env in (prod,qa)"),
            ("http-url", "http://localhost:15000"),
            ("ip-address", "10.0.0.1"),
            ("ip-address", "fd00::1"),
            ("absolute-path", "/var/log/envoy/envoy.err.log"),
        ];
        for (p, v) in ok {
            assert_eq!(named(p).check(v), Ok(()), "{p} {v}");
        }
        let bad = [
            ("rfc1123", "Busybox"),
            ("rfc1123", "a..b"),
            ("rfc1123-label", "a.b"),
            ("rfc1035-label", "1vm"),
            ("gcp-project", "short"),
            ("gcp-project", "evil:my-project"),
            ("gcp-zone", "us-central1"),
            ("gcp-region", "us-central"),
            ("http-url", "http://u:p@localhost/"),
            ("http-url", "file:///etc/passwd"),
            ("ip-address", "10.0.0.1/32"),
            ("absolute-path", "/var/log/../../etc/shadow"),
            ("absolute-path", "var/log"),
        ];
        for (p, v) in bad {
            assert!(named(p).check(v).is_err(), "{p} accepted {v}");
        }
    }

    #[test]
    fn regexes_must_be_anchored_and_match_whole_values() {
        let p = named("^[0-9]+$");
        assert_eq!(p.check("123456789012"), Ok(()));
        let err = p.check("12 --x").unwrap_err();
        assert_eq!(err, "does not match the pattern ^[0-9]+$");
        let err = InputPattern::try_from("[0-9]+".to_string()).unwrap_err();
        assert!(
            err.starts_with("unknown pattern `[0-9]+`: use one of rfc1123,"),
            "{err}"
        );
        let err = InputPattern::try_from("^(unclosed$".to_string()).unwrap_err();
        assert!(err.starts_with("invalid pattern"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
