//! Where the running Envoy writes its log: its `--log-path` argument, else the file its
//! stderr is open on (`readlink /proc/PID/fd/2`). The guide's manual deployment starts Envoy
//! with `run.sh`, which sends Envoy's stderr to `${LOG_DIR}/envoy.err.log`, so the LOG_DIR it
//! was started with is read from the process rather than guessed.
//!
//! Everything here comes from the target system: a link target is a fact to show (escaped and
//! cut short) and, when it names a file, a path the runbook may ask `read_file` for, which
//! the policy's read grants still decide. It is never run or put in a command line.

use serde::Serialize;
use triage_sdk::{CapabilityError, ExecOutput, JsonSchema};

use crate::processes::{ProcessFacts, parse_ps};

/// At most this many Envoy processes are examined (one `readlink` each); a VM runs one, a hot
/// restart briefly two.
pub const MAX_ENVOYS: usize = 8;

/// A link target longer than this is not a path Linux would give (`PATH_MAX`): it is shown
/// cut short and never used.
pub const MAX_LINK_BYTES: usize = 4096;

/// How much of a link target or an error a fact keeps for display.
const SHOWN_CHARS: usize = 200;

/// The argv pattern the action declares: a wildcard for the PID only, after `--`, so the path
/// can never be read as an option.
pub const READLINK_STDERR: [&str; 3] = ["readlink", "--", "/proc/*/fd/2"];

/// What `envoy-log-location` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LogLocationFacts {
    /// Whether an Envoy process runs.
    pub envoy_running: bool,
    /// The Envoy processes examined (at most 8), in `ps` order.
    pub envoys: Vec<EnvoyLogLocation>,
    /// Envoy processes beyond the first 8, not examined.
    pub envoys_not_examined: u64,
    /// The file Envoy writes its log to, when one was found: the first Envoy's `--log-path`
    /// (absolute), else the regular file its stderr is open on. Null otherwise.
    pub log_path: Option<String>,
    /// Where `log_path` came from: "log-path-argument" or "stderr"; null without one.
    pub source: Option<String>,
    /// The Envoy process `log_path` (or `not_a_file`) is about.
    pub pid: Option<u32>,
    /// What Envoy's log goes to when it is not a file that can be read (journald, a pipe,
    /// /dev/null, a deleted file, a terminal, a hostile name): `kind` and a sentence saying
    /// where to read it instead. Null when a file was found or nothing could be seen.
    pub not_a_file: Option<NotAFile>,
    /// Why nothing could be seen when no Envoy's link could be read (e.g. not root); the
    /// runbook then falls back to the guide's default path. Null otherwise.
    pub lookup_error: Option<String>,
}

/// Envoy's log is not a file to read, and where to look instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct NotAFile {
    /// `socket` (journald under systemd), `pipe`, `null`, `terminal`, `deleted`, `device`,
    /// `unsafe-name`, `too-long`, `relative-log-path` or `other`.
    pub kind: String,
    /// One sentence for the report, with the command that reads the log where there is one.
    pub reason: String,
}

/// One Envoy process and where its output goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EnvoyLogLocation {
    /// Process id.
    pub pid: u32,
    /// The user it runs as (from ps).
    pub user: String,
    /// The value of `--log-path` in its command line, when given (shown escaped, cut short).
    pub log_path_argument: Option<String>,
    /// Where fd 2 leads; null when an absolute `--log-path` already says where the log is
    /// (stderr is then not looked at).
    pub stderr: Option<FdTarget>,
}

/// Where one of a process's file descriptors leads, from `readlink /proc/PID/fd/N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FdTarget {
    /// The descriptor (2).
    pub fd: u8,
    /// `file` (an absolute path to an existing file), `deleted`, `null` (/dev/null),
    /// `terminal`, `device`, `pipe`, `socket`, `other` (an anonymous inode…),
    /// `unsafe-name` (control characters), `too-long`, or `unreadable` (see `error`).
    pub kind: String,
    /// The link target, escaped (control characters as `\n`, `\u{1b}`…) and cut to 200
    /// characters: for display only.
    pub target: Option<String>,
    /// Why the link could not be read (`unreadable`).
    pub error: Option<String>,
    /// The path to read, for `file` only: the link target exactly.
    #[serde(skip)]
    pub path: Option<String>,
}

/// Escapes control characters and cuts `text` for a report.
pub fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    // escape_debug also escapes quotes and backslashes, which are harmless in a report.
    out = out.replace("\\\"", "\"").replace("\\'", "'");
    if text.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

/// Classifies what `readlink` printed (or why it failed).
pub fn fd_target(fd: u8, result: Result<ExecOutput, String>) -> FdTarget {
    let unreadable = |error: String| FdTarget {
        fd,
        kind: "unreadable".into(),
        target: None,
        error: Some(shown(error.trim())),
        path: None,
    };
    let output = match result {
        Ok(output) => output,
        Err(error) => return unreadable(error),
    };
    if output.status != 0 {
        let stderr = output.stderr_text();
        // GNU readlink says nothing when it fails (without -v, which the policy does not add).
        let why = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no link there that this user may read: the process has exited, or it is another user's and triage does not run as root");
        return unreadable(format!(
            "readlink exited with status {}: {why}",
            output.status
        ));
    }
    // readlink ends its answer with one newline; anything else is part of the name.
    let raw = output.stdout.strip_suffix(b"\n").unwrap_or(&output.stdout);
    let kind_of = |kind: &str, path: Option<String>| FdTarget {
        fd,
        kind: kind.into(),
        target: Some(shown(&String::from_utf8_lossy(raw))),
        error: None,
        path,
    };
    if raw.len() > MAX_LINK_BYTES {
        return kind_of("too-long", None);
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return kind_of("unsafe-name", None);
    };
    if text.is_empty() {
        return unreadable("readlink printed nothing".into());
    }
    if text.chars().any(char::is_control) {
        return kind_of("unsafe-name", None);
    }
    let kind = if text.starts_with("socket:[") {
        "socket"
    } else if text.starts_with("pipe:[") {
        "pipe"
    } else if !text.starts_with('/') {
        // anon_inode:[eventfd], a memfd…
        "other"
    } else if text.ends_with(" (deleted)") {
        "deleted"
    } else if text == "/dev/null" {
        "null"
    } else if text.starts_with("/dev/pts/")
        || text.starts_with("/dev/tty")
        || text == "/dev/console"
    {
        "terminal"
    } else if text.starts_with("/dev/") {
        "device"
    } else {
        return kind_of("file", Some(text.to_owned()));
    };
    kind_of(kind, None)
}

/// The value of `--log-path` (`--log-path FILE` or `--log-path=FILE`) in a command line as
/// ps shows it (arguments joined by spaces: a path holding a space is cut at it).
pub fn log_path_argument(args: &str) -> Option<String> {
    let mut words = args.split_whitespace();
    while let Some(word) = words.next() {
        if word == "--log-path" {
            return words.next().map(str::to_owned);
        }
        if let Some(value) = word.strip_prefix("--log-path=") {
            return Some(value.to_owned());
        }
    }
    None
}

/// Why Envoy `pid`'s log, going to `fd`, is not a file to read, with where to read it.
fn not_a_file(pid: u32, fd: &FdTarget) -> Option<NotAFile> {
    let target = fd.target.as_deref().unwrap_or("");
    let reason = match fd.kind.as_str() {
        "socket" => format!(
            "Envoy's stderr (PID {pid}) is a socket ({target}), not a file: under systemd that is journald's stream (StandardError=journal, the default for a service), so Envoy's log is in the journal: read it with `sudo journalctl _PID={pid} -n 50` (`systemctl status {pid}` names the unit; then `sudo journalctl -u UNIT -n 50`)"
        ),
        "pipe" => format!(
            "Envoy's stderr (PID {pid}) is a pipe ({target}), not a file: the program that started Envoy (a supervisor, a container runtime, a shell pipeline) reads it and writes it where it is configured to; find it with `ps -o ppid= -p {pid}`"
        ),
        "null" => format!(
            "Envoy's stderr (PID {pid}) is /dev/null: its errors are thrown away. Restart it with stderr to a file (the guide's run.sh writes it to ${{LOG_DIR}}/envoy.err.log) or with `--log-path FILE`"
        ),
        "terminal" => format!(
            "Envoy's stderr (PID {pid}) is a terminal ({target}): Envoy was started by hand and its errors are on that terminal's screen"
        ),
        "deleted" => format!(
            "Envoy's stderr (PID {pid}) is a file that was deleted while Envoy kept it open ({target}; log rotation without copytruncate, or removed by hand): Envoy still writes to it; read it with `sudo tail -n 50 /proc/{pid}/fd/2`, and restart Envoy so that it opens a new log"
        ),
        "unsafe-name" => format!(
            "Envoy's stderr (PID {pid}) is a file whose name holds control characters or is not UTF-8 (shown escaped: {target}): it is not read; if it is really Envoy's log, give it with `--input log_path=…`"
        ),
        "too-long" => format!(
            "Envoy's stderr (PID {pid}) leads to a name longer than {MAX_LINK_BYTES} bytes (starting {target}), which is not a path: it is not read"
        ),
        "device" | "other" => format!(
            "Envoy's stderr (PID {pid}) is {target}, not a log file: give the log with `--input log_path=…` if Envoy writes one"
        ),
        _ => return None,
    };
    Some(NotAFile {
        kind: fd.kind.clone(),
        reason,
    })
}

/// Builds the facts from ps and a `readlink` per Envoy descriptor.
pub fn log_location_facts(
    ps: &ProcessFacts,
    mut readlink: impl FnMut(u32, u8) -> Result<Result<ExecOutput, String>, CapabilityError>,
) -> Result<LogLocationFacts, CapabilityError> {
    let mut facts = LogLocationFacts {
        envoy_running: ps.envoy_running,
        envoys: Vec::new(),
        envoys_not_examined: ps.envoy.len().saturating_sub(MAX_ENVOYS) as u64,
        log_path: None,
        source: None,
        pid: None,
        not_a_file: None,
        lookup_error: None,
    };
    let mut first_not_a_file = None;
    let mut first_error = None;
    for process in ps.envoy.iter().take(MAX_ENVOYS) {
        let pid = process.pid;
        let argument = log_path_argument(&process.args);
        let usable_argument = argument
            .as_ref()
            .filter(|path| path.starts_with('/') && !path.chars().any(char::is_control));
        let stderr = match usable_argument {
            Some(_) => None,
            None => Some(fd_target(2, readlink(pid, 2)?)),
        };
        // Envoy's own log lines go to --log-path when it is given, to stderr otherwise.
        let found = match (&argument, usable_argument) {
            (_, Some(path)) => Some((path.clone(), "log-path-argument")),
            (Some(path), None) => {
                first_not_a_file.get_or_insert((pid, NotAFile {
                    kind: "relative-log-path".into(),
                    reason: format!(
                        "Envoy (PID {pid}) writes its log to `--log-path {}`, a path relative to the directory it was started in: give the full path with `--input log_path=…` (`sudo readlink /proc/{pid}/cwd` is that directory)",
                        shown(path)
                    ),
                }));
                None
            }
            (None, None) => stderr
                .as_ref()
                .and_then(|fd| fd.path.clone())
                .map(|path| (path, "stderr")),
        };
        if let (None, Some(fd)) = (&argument, &stderr) {
            if let Some(reason) = not_a_file(pid, fd) {
                first_not_a_file.get_or_insert((pid, reason));
            }
            if let Some(error) = &fd.error {
                first_error.get_or_insert(format!("/proc/{pid}/fd/2: {error}"));
            }
        }
        if let (None, Some((path, source))) = (&facts.log_path, found) {
            facts.log_path = Some(path);
            facts.source = Some(source.into());
            facts.pid = Some(pid);
        }
        facts.envoys.push(EnvoyLogLocation {
            pid,
            user: process.user.clone(),
            log_path_argument: argument.as_deref().map(shown),
            stderr,
        });
    }
    if facts.log_path.is_none() {
        if let Some((pid, reason)) = first_not_a_file {
            facts.pid = Some(pid);
            facts.not_a_file = Some(reason);
        } else {
            facts.lookup_error = first_error;
        }
    }
    Ok(facts)
}

/// The action: ps, then `readlink -- /proc/PID/fd/2` per Envoy without an absolute
/// `--log-path`. A denied or not
/// captured call is an error (the look did not happen); a failed one is a fact.
pub fn run_log_location(ps_text: &str) -> Result<LogLocationFacts, triage_sdk::ProbeError> {
    let ps = parse_ps(ps_text).map_err(|e| triage_sdk::ProbeError::bad_input(e.0))?;
    Ok(log_location_facts(&ps, |pid, fd| {
        let link = format!("/proc/{pid}/fd/{fd}");
        match triage_sdk::exec(&["readlink", "--", &link]) {
            Ok(output) => Ok(Ok(output)),
            Err(CapabilityError::Failed(message) | CapabilityError::TimedOut(message)) => {
                Ok(Err(message))
            }
            Err(other) => Err(other),
        }
    })?)
}
