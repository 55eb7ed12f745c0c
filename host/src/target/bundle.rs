//! Bundles: recorded capability calls and their answers, replayed as a target.
//!
//! A bundle is a directory holding `bundle.yaml` and side files for large or binary answers:
//!
//! ```yaml
//! target: vm-1                 # free text: where it was recorded
//! recorded_at: 1700000000      # Unix seconds; `now` answers this when replaying
//! calls:
//!   - exec: [iptables-save, -t, nat]
//!     status: 0
//!     stdout_file: iptables-nat.txt
//!   - http: {method: GET, url: "http://localhost:15000/config_dump"}
//!     status: 200
//!     body_file: config_dump.json
//!   - read: /var/log/envoy/envoy.err.log
//!     body: "..."
//!   - read: /var/log/envoy/big.log     # the end of a file (read-file-tail):
//!     size: 734003200                  # the file's length; the body is its last bytes
//!     body_file: big.log
//!   - resolve: trafficdirector.googleapis.com
//!     addresses: [142.250.1.95]
//!   - connect: "trafficdirector.googleapis.com:443"
//!     elapsed_ms: 12
//!   - exec: [ip6tables, -t, nat, -S]
//!     error: {failed: "cannot run `ip6tables`: No such file or directory"}
//! ```
//!
//! A call the bundle does not hold fails with "not captured", never silently.
//!
//! Bundles come from elsewhere (a support ticket, an API caller's configured target), so
//! nothing in one is trusted: a side file must really be inside the bundle directory once
//! links are resolved, must be a regular file, and is read only as far as the call needs.

use super::files::{self, FileError};
use super::*;
use crate::capability::Kind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

pub const BUNDLE_FILE: &str = "bundle.yaml";

/// `bundle.yaml` holds small answers inline (a recording puts anything over 4 KiB in a
/// side file), so a bigger one is not a bundle anyone recorded.
pub const MAX_BUNDLE_FILE_BYTES: u64 = 64 << 20;

/// Reading a side file never takes longer than this (a regular file on a local disk takes
/// milliseconds; this bounds a stalled network filesystem).
const SIDE_FILE_TIMEOUT: Duration = Duration::from_secs(30);

/// `bundle.yaml`: recorded capability calls and their answers (see the README's *Bundles*).
#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Bundle")]
pub struct BundleFile {
    /// Free text: where it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Unix seconds; the plugins' clock when replaying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<i64>,
    /// Who was recorded (`--record` writes it), so fixes replay with the same names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// What `--record` redacted: each pattern's name and how many values it took (never
    /// the values). Informational; replay ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<crate::redact::Redacted>,
    /// The calls, each keyed by exactly one of exec, http, read, resolve, connect; the
    /// first answer recorded for a call is the one replayed.
    #[serde(default)]
    pub calls: Vec<RecordedCall>,
}

/// An HTTP request, as the plugin made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpKey {
    /// GET by default.
    #[serde(default = "get")]
    pub method: String,
    /// The whole URL, query string included.
    pub url: String,
}

fn get() -> String {
    "GET".into()
}

/// A recorded failure: `{failed: "…"}` or `{timed_out: "…"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedError {
    /// The call could not be carried out (the command did not start, the connection was
    /// refused), with why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The call took longer than its deadline, with what it was waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<String>,
}

/// One recorded call: what identifies it (exactly one of `exec`, `http`, `read`, `resolve`,
/// `connect`) and its answer.
#[derive(Debug, Clone, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordedCall {
    /// A command's argv, as the plugin asked for it (no shell): `[iptables, -t, nat, -S]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// An HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpKey>,
    /// A file read, by the path the plugin asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    /// A name resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
    /// A TCP connection, `HOST:PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,

    /// exec: the exit status; http: the response status (200 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// exec: what the command printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// exec: a file in the bundle holding what the command printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_file: Option<String>,
    /// exec: what the command printed on stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// exec: a file in the bundle holding its stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_file: Option<String>,
    /// http: the response headers, `[name, value]` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// http and read: the body or the file's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// http and read: a file in the bundle holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<String>,
    /// `read` only: the file's length, when the body holds only its end (a tail read of a
    /// larger file). Absent: the body is the whole file (or its start, as far as read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// resolve: the addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<String>>,
    /// connect: how long it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u32>,
    /// The call failed instead of answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordedError>,
}

/// What identifies a call in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallKey {
    Exec(Vec<String>),
    Http(String, String),
    Read(String),
    Resolve(String),
    Connect(String),
}

/// How many recorded calls a "not captured" error names: enough to show the form the
/// bundle was recorded in, few enough for one line.
const NOT_CAPTURED_SHOWN: usize = 3;

impl CallKey {
    /// `exec iptables-save -t nat`, `read /var/log/…`: the call as bundle.yaml names it.
    fn describe(&self) -> String {
        format!("{} {}", self.kind().bundle_key(), self.what())
    }

    fn kind(&self) -> Kind {
        match self {
            CallKey::Exec(_) => Kind::Exec,
            CallKey::Http(..) => Kind::Http,
            CallKey::Read(_) => Kind::ReadFile,
            CallKey::Resolve(_) => Kind::Resolve,
            CallKey::Connect(_) => Kind::Connect,
        }
    }

    /// The call without its capability: `iptables -t nat -S`, `GET http://…`.
    fn what(&self) -> String {
        match self {
            CallKey::Exec(argv) => crate::capability::shell_words(argv),
            CallKey::Http(m, u) => format!("{m} {u}"),
            CallKey::Read(p) | CallKey::Resolve(p) | CallKey::Connect(p) => p.clone(),
        }
    }

    /// How unlike `other` this call is, for ordering suggestions: a different program
    /// (or URL host, or file directory) counts more than any difference in the rest.
    fn distance(&self, other: &CallKey) -> usize {
        let head = |k: &CallKey| -> String {
            match k {
                CallKey::Exec(argv) => argv.first().cloned().unwrap_or_default(),
                CallKey::Http(_, u) => u.split('/').take(3).collect::<Vec<_>>().join("/"),
                CallKey::Read(p) => p.rsplit_once('/').map(|(d, _)| d).unwrap_or("").into(),
                CallKey::Resolve(h) | CallKey::Connect(h) => h.clone(),
            }
        };
        let words = |k: &CallKey| -> std::collections::BTreeSet<String> {
            match k {
                CallKey::Exec(argv) => argv.iter().cloned().collect(),
                other => other
                    .what()
                    .split(['/', ' ', '?', '&'])
                    .map(String::from)
                    .collect(),
            }
        };
        let (mine, theirs) = (words(self), words(other));
        let unshared = mine.symmetric_difference(&theirs).count();
        let program = usize::from(head(self) != head(other)) * 1000;
        program + unshared
    }
}

/// Text from a bundle or a plugin, for a one-line error: control characters and newlines
/// as visible escapes, so a recorded argv cannot rewrite the terminal or forge a line.
fn one_line(text: &str) -> String {
    crate::report::human::one_line(text)
}

impl RecordedCall {
    fn key(&self) -> Result<CallKey, String> {
        let keys = [
            self.exec.is_some(),
            self.http.is_some(),
            self.read.is_some(),
            self.resolve.is_some(),
            self.connect.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() != 1 {
            let keys: Vec<&str> = Kind::ALL.iter().map(|k| k.bundle_key()).collect();
            return Err(format!(
                "each call needs exactly one of {}",
                keys.join(", ")
            ));
        }
        Ok(if let Some(a) = &self.exec {
            if a.is_empty() {
                return Err("exec needs at least the program name".into());
            }
            CallKey::Exec(a.clone())
        } else if let Some(h) = &self.http {
            CallKey::Http(h.method.to_ascii_uppercase(), h.url.clone())
        } else if let Some(p) = &self.read {
            CallKey::Read(p.clone())
        } else if let Some(h) = &self.resolve {
            CallKey::Resolve(h.clone())
        } else {
            CallKey::Connect(self.connect.clone().unwrap_or_default())
        })
    }
}

/// Why a bundle could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}: not a bundle directory (no {BUNDLE_FILE} in it)")]
    NoBundleFile(String),
    #[error("{0}: {1}")]
    Invalid(String, String),
}

/// What a `bundle.yaml` holds, checked: each call keyed by what identifies it.
pub struct ParsedBundle {
    pub target: Option<String>,
    pub identity: Identity,
    pub recorded_at: i64,
    pub calls: HashMap<CallKey, RecordedCall>,
}

/// Replays a bundle.
pub struct BundleTarget {
    dir: PathBuf,
    /// `dir` with every link resolved: side files must resolve to paths under it.
    real_dir: PathBuf,
    name: String,
    recorded_at: i64,
    identity: Identity,
    calls: HashMap<CallKey, RecordedCall>,
}

impl BundleTarget {
    pub fn open(dir: &Path) -> Result<Self, BundleError> {
        let file = dir.join(BUNDLE_FILE);
        let shown = file.display().to_string();
        let real_dir = files::resolve(dir)
            .map_err(|_| BundleError::NoBundleFile(dir.display().to_string()))?;
        let real_file = match files::resolve(&file) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BundleError::NoBundleFile(dir.display().to_string()));
            }
            Err(e) => return Err(BundleError::Invalid(shown, e.to_string())),
        };
        if !real_file.starts_with(&real_dir) {
            return Err(BundleError::Invalid(
                shown,
                format!("is a link to {}, outside the bundle", real_file.display()),
            ));
        }
        let bytes = files::open_resolved(&real_file)
            .and_then(|f| files::read_whole(f, MAX_BUNDLE_FILE_BYTES))
            .map_err(|e| BundleError::Invalid(shown.clone(), e.to_string()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| BundleError::Invalid(shown.clone(), "is not UTF-8 text".into()))?;
        let parsed = Self::parse(&text, &file)?;
        let name = parsed
            .target
            .map(|t| format!("bundle:{} ({t})", dir.display()))
            .unwrap_or_else(|| format!("bundle:{}", dir.display()));
        Ok(BundleTarget {
            dir: dir.to_path_buf(),
            real_dir,
            name,
            recorded_at: parsed.recorded_at,
            identity: parsed.identity,
            calls: parsed.calls,
        })
    }

    /// Parses and checks the text of a `bundle.yaml` (`file` names it in errors). Separate
    /// from [`BundleTarget::open`] so the parser can be fuzzed without a filesystem.
    pub fn parse(text: &str, file: &Path) -> Result<ParsedBundle, BundleError> {
        crate::yaml::depth::check(text).map_err(|(line, column, message)| {
            BundleError::Invalid(format!("{}:{line}:{column}", file.display()), message)
        })?;
        let parsed: BundleFile = serde_yaml::from_str(text).map_err(|e| {
            let (at, message) = crate::yaml::yaml_error_parts(file, &e);
            BundleError::Invalid(at, message)
        })?;
        let mut calls = HashMap::new();
        for (i, call) in parsed.calls.into_iter().enumerate() {
            let key = call.key().map_err(|m| {
                BundleError::Invalid(file.display().to_string(), format!("calls[{i}]: {m}"))
            })?;
            if let Some(e) = &call.error
                && e.failed.is_some() == e.timed_out.is_some()
            {
                return Err(BundleError::Invalid(
                    file.display().to_string(),
                    format!("calls[{i}]: error needs exactly one of failed, timed_out"),
                ));
            }
            for side in [&call.stdout_file, &call.stderr_file, &call.body_file]
                .into_iter()
                .flatten()
            {
                if !is_inside(side) {
                    return Err(BundleError::Invalid(
                        file.display().to_string(),
                        format!(
                            "calls[{i}]: side file `{side}` must be a relative path inside the bundle"
                        ),
                    ));
                }
            }
            // The first answer recorded for a call is the one replayed.
            calls.entry(key).or_insert(call);
        }
        Ok(ParsedBundle {
            target: parsed.target,
            identity: parsed.identity.unwrap_or_else(Identity::local),
            recorded_at: parsed.recorded_at.unwrap_or(0),
            calls,
        })
    }

    fn lookup(&self, key: CallKey) -> CapResult<&RecordedCall> {
        let call = self
            .calls
            .get(&key)
            .ok_or_else(|| CapabilityError::NotCaptured(self.not_captured(&key)))?;
        match &call.error {
            Some(RecordedError {
                timed_out: Some(m), ..
            }) => Err(CapabilityError::TimedOut(m.clone())),
            Some(RecordedError { failed, .. }) => Err(CapabilityError::Failed(
                failed.clone().unwrap_or_else(|| "failed".into()),
            )),
            None => Ok(call),
        }
    }

    /// `exec iptables-save -t nat is not in DIR; of exec it holds: iptables -t nat -S, …`:
    /// what the bundle does hold of the same capability tells the author which param
    /// replays it (here `command=spec`). The calls most like the one asked for come first
    /// (same program, same host), a few of them; text from the bundle and the plugin is
    /// shown with control characters escaped, on one line.
    fn not_captured(&self, key: &CallKey) -> String {
        let mut message = format!(
            "{} is not in {}",
            one_line(&key.describe()),
            one_line(&self.dir.display().to_string())
        );
        let mut same: Vec<(usize, String)> = self
            .calls
            .keys()
            .filter(|k| std::mem::discriminant(*k) == std::mem::discriminant(key))
            .map(|k| (k.distance(key), one_line(&k.what())))
            .collect();
        if same.is_empty() {
            message.push_str(&format!("; it holds no {} call", key.kind().bundle_key()));
            return message;
        }
        same.sort();
        let total = same.len();
        let shown: Vec<String> = same
            .into_iter()
            .take(NOT_CAPTURED_SHOWN)
            .map(|(_, what)| what)
            .collect();
        message.push_str(&format!(
            "; of {} it holds: {}",
            key.kind().bundle_key(),
            shown.join(", ")
        ));
        if total > NOT_CAPTURED_SHOWN {
            message.push_str(&format!(" (and {} more)", total - NOT_CAPTURED_SHOWN));
        }
        message
    }

    /// An answer: inline text, or a side file read whole (refused past the answer cap).
    async fn content(&self, inline: &Option<String>, file: &Option<String>) -> CapResult<Vec<u8>> {
        match file {
            Some(f) => self.side_file(f, None).await,
            None => Ok(inline.clone().unwrap_or_default().into_bytes()),
        }
    }

    /// Reads a side file: resolved, inside the bundle, a regular file; with `prefix`, at
    /// most that many bytes, else the whole file up to the answer cap.
    async fn side_file(&self, name: &str, prefix: Option<u64>) -> CapResult<Vec<u8>> {
        let part = match prefix {
            Some(max) => SidePart::Head(max),
            None => SidePart::Whole,
        };
        self.side_file_part(name, part)
            .await
            .map(|(bytes, _)| bytes)
    }

    /// Reads part of a side file (with the same checks) and says how long the file is.
    async fn side_file_part(&self, name: &str, part: SidePart) -> CapResult<(Vec<u8>, u64)> {
        let shown = self.dir.join(name);
        let failed = |why: String| {
            CapabilityError::Failed(format!("bundle side file {}: {why}", shown.display()))
        };
        let real = files::resolve(&shown).map_err(|e| failed(e.to_string()))?;
        if !real.starts_with(&self.real_dir) {
            return Err(failed(format!(
                "is a link to {}, outside the bundle",
                real.display()
            )));
        }
        let read = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, u64), FileError> {
            let file = files::open_resolved(&real)?;
            let len = file.metadata()?.len();
            match part {
                SidePart::Head(max) => Ok((files::read_at_most(file, max)?, len)),
                SidePart::Tail(max) => Ok(files::read_tail(file, max)?),
                SidePart::Whole => Ok((files::read_whole(file, MAX_ANSWER_BYTES as u64)?, len)),
            }
        });
        match tokio::time::timeout(SIDE_FILE_TIMEOUT, read).await {
            Ok(Ok(Ok(bytes))) => Ok(bytes),
            Ok(Ok(Err(e))) => Err(failed(e.to_string())),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(CapabilityError::TimedOut(format!(
                "bundle side file {}: not read within {} s",
                shown.display(),
                SIDE_FILE_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Which part of a side file to read.
enum SidePart {
    Whole,
    Head(u64),
    Tail(u64),
}

fn is_inside(relative: &str) -> bool {
    let p = Path::new(relative);
    !relative.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

impl Target for BundleTarget {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn identity(&self) -> Identity {
        self.identity.clone()
    }
}

#[async_trait]
impl CarryOut for BundleTarget {
    async fn exec(&self, argv: &[String], _timeout: Duration) -> CapResult<ExecOutput> {
        let call = self.lookup(CallKey::Exec(argv.to_vec()))?;
        Ok(ExecOutput {
            status: call.status.unwrap_or(0),
            stdout: self.content(&call.stdout, &call.stdout_file).await?,
            stderr: self.content(&call.stderr, &call.stderr_file).await?,
        })
    }

    async fn http(&self, request: &HttpRequest, _timeout: Duration) -> CapResult<HttpResponse> {
        let call = self.lookup(CallKey::Http(
            request.method.to_ascii_uppercase(),
            request.url.clone(),
        ))?;
        Ok(HttpResponse {
            status: call.status.map(|s| s as u16).unwrap_or(200),
            headers: call.headers.clone(),
            body: self.content(&call.body, &call.body_file).await?,
        })
    }

    async fn read_file(
        &self,
        path: &str,
        max_bytes: u64,
        _real_path_allowed: &PathCheck,
    ) -> CapResult<Vec<u8>> {
        // The recorded answer is what the live read returned, after its own check.
        let call = self.lookup(CallKey::Read(path.to_string()))?;
        let max = max_bytes.min(MAX_ANSWER_BYTES as u64);
        // A recorded tail holds the file's end; its start is not in the bundle.
        let tail_only = |held: u64| match call.size {
            Some(size) if size > held => Err(CapabilityError::NotCaptured(format!(
                "{} holds only the last {held} of the {size} bytes of {path} (a tail read); its start was not recorded",
                self.dir.display()
            ))),
            _ => Ok(()),
        };
        match &call.body_file {
            Some(f) => {
                let (bytes, held) = self.side_file_part(f, SidePart::Head(max)).await?;
                tail_only(held)?;
                Ok(bytes)
            }
            None => {
                let mut body = call.body.clone().unwrap_or_default().into_bytes();
                tail_only(body.len() as u64)?;
                body.truncate(usize::try_from(max).unwrap_or(usize::MAX));
                Ok(body)
            }
        }
    }

    async fn read_file_tail(
        &self,
        path: &str,
        max_bytes: u64,
        _real_path_allowed: &PathCheck,
    ) -> CapResult<FileTail> {
        // A tail read replays from a recorded tail (which says the file's length) or from a
        // recorded plain read, whose body is taken as the whole file.
        let call = self.lookup(CallKey::Read(path.to_string()))?;
        let max = max_bytes.min(MAX_ANSWER_BYTES as u64);
        let (bytes, held) = match &call.body_file {
            Some(f) => self.side_file_part(f, SidePart::Tail(max)).await?,
            None => {
                let mut body = call.body.clone().unwrap_or_default().into_bytes();
                let held = body.len() as u64;
                let keep = usize::try_from(max).unwrap_or(usize::MAX);
                if body.len() > keep {
                    body.drain(..body.len() - keep);
                }
                (body, held)
            }
        };
        Ok(FileTail {
            bytes,
            size: call.size.unwrap_or(held).max(held),
        })
    }

    async fn resolve(&self, host: &str) -> CapResult<Vec<String>> {
        let call = self.lookup(CallKey::Resolve(host.to_string()))?;
        Ok(call.addresses.clone().unwrap_or_default())
    }

    async fn connect(&self, host: &str, port: u16, _timeout: Duration) -> CapResult<u32> {
        let call = self.lookup(CallKey::Connect(format!("{host}:{port}")))?;
        Ok(call.elapsed_ms.unwrap_or(0))
    }

    fn now(&self) -> i64 {
        self.recorded_at
    }

    /// A replay runs nothing, so there is no executable to vouch for.
    async fn executable_owner(
        &self,
        _pid: u32,
        _timeout: Duration,
    ) -> CapResult<Option<(u32, u32)>> {
        Ok(None)
    }
}
