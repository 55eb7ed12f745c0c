//! The host's capabilities, as plain Rust functions.
//!
//! Each call is checked by the host against the action's declared capabilities and the
//! operator's policy; a call that is not allowed returns [`CapabilityError::Denied`].

use crate::bindings::triage::probe::host as wit;

pub use wit::LogLevel;

/// Why a capability call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilityError {
    /// Not granted; the text says what the policy would need.
    Denied(String),
    /// Replaying a bundle that does not hold this call.
    NotCaptured(String),
    /// Allowed, but it failed.
    Failed(String),
    /// Allowed, but it ran past its deadline.
    TimedOut(String),
}

// The WIT error and this one, converted in one place (the host has its own twin in
// `host/src/runtime/bindings.rs`).
impl From<wit::CapabilityError> for CapabilityError {
    fn from(e: wit::CapabilityError) -> Self {
        match e {
            wit::CapabilityError::Denied(m) => CapabilityError::Denied(m),
            wit::CapabilityError::NotCaptured(m) => CapabilityError::NotCaptured(m),
            wit::CapabilityError::Failed(m) => CapabilityError::Failed(m),
            wit::CapabilityError::TimedOut(m) => CapabilityError::TimedOut(m),
        }
    }
}

impl From<CapabilityError> for wit::CapabilityError {
    fn from(e: CapabilityError) -> Self {
        match e {
            CapabilityError::Denied(m) => wit::CapabilityError::Denied(m),
            CapabilityError::NotCaptured(m) => wit::CapabilityError::NotCaptured(m),
            CapabilityError::Failed(m) => wit::CapabilityError::Failed(m),
            CapabilityError::TimedOut(m) => wit::CapabilityError::TimedOut(m),
        }
    }
}

impl std::fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CapabilityError::Denied(m) => write!(f, "denied: {m}"),
            CapabilityError::NotCaptured(m) => write!(f, "not captured: {m}"),
            CapabilityError::Failed(m) => write!(f, "{m}"),
            CapabilityError::TimedOut(m) => write!(f, "timed out: {m}"),
        }
    }
}

impl std::error::Error for CapabilityError {}

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; -1 when killed by a signal.
    pub status: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// Runs a program (no shell) and returns its output, whatever its exit status.
pub fn exec(argv: &[&str]) -> Result<ExecOutput, CapabilityError> {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    wit::exec(&argv)
        .map(|o| ExecOutput {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        })
        .map_err(CapabilityError::from)
}

/// Runs a program and returns its stdout as text; a non-zero exit is a `Failed` error
/// quoting the first line of stderr.
pub fn exec_ok(argv: &[&str]) -> Result<String, CapabilityError> {
    let out = exec(argv)?;
    if out.status != 0 {
        let stderr = out.stderr_text();
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        return Err(CapabilityError::Failed(format!(
            "`{}` exited with status {}{}{}",
            argv.join(" "),
            out.status,
            if first.is_empty() { "" } else { ": " },
            first
        )));
    }
    Ok(out.stdout_text())
}

/// Sends an HTTP request.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, CapabilityError> {
    let request = wit::HttpRequest {
        method: method.into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    wit::http(&request)
        .map(|r| HttpResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
        .map_err(CapabilityError::from)
}

/// GETs a URL and returns the body; a non-2xx status is a `Failed` error.
pub fn http_get(url: &str, headers: &[(&str, &str)]) -> Result<Vec<u8>, CapabilityError> {
    let response = http("GET", url, headers)?;
    if !(200..300).contains(&response.status) {
        return Err(CapabilityError::Failed(format!(
            "GET {url} answered {}",
            response.status
        )));
    }
    Ok(response.body)
}

/// Reads at most `max_bytes` of a file.
pub fn read_file(path: &str, max_bytes: u64) -> Result<Vec<u8>, CapabilityError> {
    wit::read_file(path, max_bytes).map_err(CapabilityError::from)
}

/// Reads at most `max_bytes` of a file as text (invalid UTF-8 replaced).
pub fn read_file_string(path: &str, max_bytes: u64) -> Result<String, CapabilityError> {
    read_file(path, max_bytes).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The end of a file, from [`read_file_tail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTail {
    /// The file's last bytes: all of it when it is no longer than the bytes asked for.
    pub bytes: Vec<u8>,
    /// The file's length when it was read.
    pub size: u64,
}

impl FileTail {
    /// Whether the file's start was not read (it is longer than the bytes returned).
    pub fn cut(&self) -> bool {
        (self.bytes.len() as u64) < self.size
    }
}

/// Reads at most the last `max_bytes` of a file, and its length: a log's newest lines,
/// however large the log. The same capability (and grants) as [`read_file`].
pub fn read_file_tail(path: &str, max_bytes: u64) -> Result<FileTail, CapabilityError> {
    wit::read_file_tail(path, max_bytes)
        .map(|t| FileTail {
            bytes: t.bytes,
            size: t.size,
        })
        .map_err(CapabilityError::from)
}

/// Resolves a host name to its addresses.
pub fn resolve(host: &str) -> Result<Vec<String>, CapabilityError> {
    wit::resolve(host).map_err(CapabilityError::from)
}

/// Opens and closes a TCP connection; returns the milliseconds it took.
pub fn connect(host: &str, port: u16, timeout_ms: u32) -> Result<u32, CapabilityError> {
    wit::connect(host, port, timeout_ms).map_err(CapabilityError::from)
}

/// Writes a line to the run's log.
pub fn log(level: LogLevel, message: &str) {
    wit::log(level, message)
}

/// Seconds since the Unix epoch on the target's clock (the recording's when replaying).
pub fn now() -> i64 {
    wit::now()
}
