//! Probe plugin `envoy-logs`: reads an Envoy log (a file on a VM, or `kubectl logs` of the
//! envoy container on GKE) and reports the error lines the Traffic Director guide names.

pub mod scan;

use serde::{Deserialize, Serialize};
use triage_sdk::{Action, CapabilityError, Facts, JsonSchema, Manifest, Params, Probe, ProbeError};

use crate::scan::{Cutoff, LogScan, covers_cutoff, format_ms, scan_log_since, skip_cut_start};

const DEFAULT_LOG_PATH: &str = "/var/log/envoy/envoy.err.log";
const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

fn default_log_path() -> String {
    DEFAULT_LOG_PATH.to_owned()
}
fn default_max_bytes() -> u64 {
    DEFAULT_MAX_BYTES
}
fn default_namespace() -> String {
    "default".to_owned()
}
fn default_container() -> String {
    "envoy".to_owned()
}
fn default_tail() -> u32 {
    50
}

/// Params of `file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileParams {
    /// The Envoy error log (LOG_DIR/envoy.err.log with the guide's manual setup).
    #[serde(default = "default_log_path")]
    pub path: String,
    /// Reads at most this many bytes, from the end of the file (its newest entries).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// How long the running Envoy has been up (`/server_info`'s uptime): entries stamped
    /// before it started are history, from before the last restart.
    #[serde(default)]
    pub envoy_uptime_seconds: Option<u64>,
    /// When Envoy's start is unknown: entries older than this many seconds are history.
    #[serde(default)]
    pub window_seconds: Option<u64>,
}

/// What makes a log entry current rather than history (both actions' params).
#[derive(Debug, Default)]
pub struct WhenParams {
    pub envoy_uptime_seconds: Option<u64>,
    pub window_seconds: Option<u64>,
}

impl WhenParams {
    /// The cutoff on the target's clock, and what it is: "envoy-start" or "window". Envoy's
    /// start is taken a second early: uptime is counted in whole seconds, and an entry of
    /// Envoy's first second must not pass for history.
    fn cutoff(&self) -> Option<(Cutoff, &'static str)> {
        let now_ms = triage_sdk::now().saturating_mul(1000);
        let back = |seconds: u64| {
            now_ms.saturating_sub(
                i64::try_from(seconds)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000),
            )
        };
        if let Some(uptime) = self.envoy_uptime_seconds {
            return Some((
                Cutoff {
                    at_ms: back(uptime.saturating_add(1)),
                },
                "envoy-start",
            ));
        }
        self.window_seconds.map(|window| {
            (
                Cutoff {
                    at_ms: back(window),
                },
                "window",
            )
        })
    }
}

/// Params of `kubectl`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubectlParams {
    /// Namespace of the pod.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The pod whose sidecar logs to read.
    pub pod: String,
    /// The Envoy container of the pod.
    #[serde(default = "default_container")]
    pub container: String,
    /// How many of the last lines to read.
    #[serde(default = "default_tail")]
    pub tail: u32,
    /// How long the running Envoy has been up (`/server_info`'s uptime): entries stamped
    /// before it started are history, from before the last restart.
    #[serde(default)]
    pub envoy_uptime_seconds: Option<u64>,
    /// When Envoy's start is unknown: entries older than this many seconds are history.
    #[serde(default)]
    pub window_seconds: Option<u64>,
}

/// What `file` and `kubectl` report.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EnvoyLogFacts {
    /// Whether the log could be read; false when the file or pod does not exist (then
    /// `error` says why and the scan facts are empty).
    pub found: bool,
    /// Where the log came from: "file" or "kubectl".
    pub source: String,
    /// The file read (`file`); null for `kubectl`.
    pub path: Option<String>,
    /// The pod read (`kubectl`); null for `file`.
    pub pod: Option<String>,
    /// The pod's namespace (`kubectl`).
    pub namespace: Option<String>,
    /// The container read (`kubectl`).
    pub container: Option<String>,
    /// Why the log could not be read, when `found` is false.
    pub error: Option<String>,
    /// Whether the file is longer than `max_bytes`, so only its end was read: entries older
    /// than `seen_from` were not seen (and `earlier_count`s count only those read).
    pub truncated: bool,
    /// The file's length in bytes (`file`); null for `kubectl`.
    pub size: Option<u64>,
    /// Bytes read from the end of the file (`file`).
    pub bytes_read: u64,
    /// When the file was cut: the timestamp of the oldest entry read (a partial first line
    /// and the header-less lines after it are dropped).
    pub seen_from: Option<String>,
    /// Whether every entry after the cutoff was read: the whole log was, or what was read
    /// reaches back past the cutoff. False: current errors may lie in the part not read.
    pub covers_cutoff: bool,
    /// Entries stamped before this time (UTC, Envoy's format) are history, not current
    /// errors; null when every entry counts as current.
    pub cutoff: Option<String>,
    /// What the cutoff is: "envoy-start" (from the running Envoy's uptime) or "window"
    /// (`window_seconds` before now); null without one.
    pub cutoff_source: Option<String>,
    /// Lines scanned.
    pub line_count: u64,
    /// Log entries scanned (a header line and its continuation lines).
    pub entry_count: u64,
    /// Per known error kind seen: count, first/last timestamp, a sample line and the values
    /// it names (networks, projects, paths, listeners, gRPC codes, streams).
    pub matches: std::collections::BTreeMap<String, scan::KindMatch>,
    /// Kinds seen, sorted: `td-config-not-found`, `td-entity-not-found`,
    /// `access-log-permission-denied`, `xds-stream-closed`, `xds-stream-unavailable`,
    /// `mysql-server-gone-away`.
    pub kinds: Vec<String>,
    /// Kinds seen after the cutoff or undated: the current errors.
    pub current_kinds: Vec<String>,
    /// Kinds seen only before the cutoff: history.
    pub earlier_kinds: Vec<String>,
}

impl EnvoyLogFacts {
    fn new(source: &str) -> Self {
        EnvoyLogFacts {
            found: false,
            source: source.to_owned(),
            path: None,
            pod: None,
            namespace: None,
            container: None,
            error: None,
            truncated: false,
            size: None,
            bytes_read: 0,
            seen_from: None,
            covers_cutoff: true,
            cutoff: None,
            cutoff_source: None,
            line_count: 0,
            entry_count: 0,
            matches: Default::default(),
            kinds: Vec::new(),
            current_kinds: Vec::new(),
            earlier_kinds: Vec::new(),
        }
    }

    fn with_scan(mut self, scan: LogScan) -> Self {
        self.found = true;
        self.line_count = scan.line_count;
        self.entry_count = scan.entry_count;
        self.matches = scan.matches;
        self.kinds = scan.kinds;
        self.current_kinds = scan.current_kinds;
        self.earlier_kinds = scan.earlier_kinds;
        self.seen_from = scan.first_timestamp;
        self
    }

    fn scan(self, text: &str, when: &WhenParams) -> Self {
        let cutoff = when.cutoff();
        let facts = EnvoyLogFacts {
            cutoff: cutoff.map(|(c, _)| format_ms(c.at_ms)),
            cutoff_source: cutoff.map(|(_, source)| source.to_owned()),
            ..self.with_scan(scan_log_since(text, cutoff.map(|(c, _)| c)))
        };
        // seen_from says where a cut read began; a whole log was seen from its start.
        if facts.truncated {
            EnvoyLogFacts {
                covers_cutoff: covers_cutoff(facts.seen_from.as_deref(), cutoff.map(|(c, _)| c)),
                ..facts
            }
        } else {
            EnvoyLogFacts {
                seen_from: None,
                ..facts
            }
        }
    }

    /// Scans the end of a file. A cut read is normal (a log's newest entries are what
    /// matter); it is complete when it reaches back past the cutoff.
    fn scan_tail(self, tail: &triage_sdk::FileTail, when: &WhenParams) -> Self {
        let text = String::from_utf8_lossy(&tail.bytes);
        let truncated = tail.cut();
        let text = if truncated {
            skip_cut_start(&text)
        } else {
            &text
        };
        EnvoyLogFacts {
            truncated,
            size: Some(tail.size),
            bytes_read: tail.bytes.len() as u64,
            ..self
        }
        .scan(text, when)
    }

    /// A missing file or pod is a finding (`envoy-log-not-found`), not a failed step; a
    /// denied or uncaptured call still is an error.
    fn or_not_found(self, error: CapabilityError) -> Result<Self, ProbeError> {
        match error {
            CapabilityError::Failed(message) => Ok(EnvoyLogFacts {
                error: Some(message),
                ..self
            }),
            other => Err(ProbeError::Capability(other)),
        }
    }
}

/// The probe; public so native tests can inspect its manifest.
pub struct EnvoyLogsProbe;

impl Probe for EnvoyLogsProbe {
    fn describe() -> Manifest {
        Manifest::new(
            "envoy-logs",
            env!("CARGO_PKG_VERSION"),
            "Scans Envoy logs for the Traffic Director errors the troubleshooting guide names",
        )
        .action(
            Action::new::<FileParams, EnvoyLogFacts>(
                "file",
                "Reads the end of an Envoy log file (its last max_bytes) and scans it",
            )
            .read_file("{path}"),
        )
        .action(
            Action::new::<KubectlParams, EnvoyLogFacts>(
                "kubectl",
                "Reads the last lines of a pod's envoy container with kubectl logs and scans them",
            )
            .exec(&[
                "kubectl",
                "logs",
                "-n",
                "{namespace}",
                "-c",
                "{container}",
                "--tail",
                "{tail}",
                "--",
                "{pod}",
            ]),
        )
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        let facts = match action {
            "file" => {
                let p: FileParams = params.parse()?;
                let facts = EnvoyLogFacts {
                    path: Some(p.path.clone()),
                    ..EnvoyLogFacts::new("file")
                };
                // The end: a log's newest entries are the ones that say what is wrong now.
                match triage_sdk::read_file_tail(&p.path, p.max_bytes) {
                    Ok(tail) => facts.scan_tail(
                        &tail,
                        &WhenParams {
                            envoy_uptime_seconds: p.envoy_uptime_seconds,
                            window_seconds: p.window_seconds,
                        },
                    ),
                    Err(e) => facts.or_not_found(e)?,
                }
            }
            "kubectl" => {
                let p: KubectlParams = params.parse()?;
                let tail = p.tail.to_string();
                let facts = EnvoyLogFacts {
                    pod: Some(p.pod.clone()),
                    namespace: Some(p.namespace.clone()),
                    container: Some(p.container.clone()),
                    ..EnvoyLogFacts::new("kubectl")
                };
                // The pod after `--`: a name is never read as an option.
                let argv = [
                    "kubectl",
                    "logs",
                    "-n",
                    &p.namespace,
                    "-c",
                    &p.container,
                    "--tail",
                    &tail,
                    "--",
                    &p.pod,
                ];
                match triage_sdk::exec_ok(&argv) {
                    Ok(text) => facts.scan(
                        &text,
                        &WhenParams {
                            envoy_uptime_seconds: p.envoy_uptime_seconds,
                            window_seconds: p.window_seconds,
                        },
                    ),
                    Err(e) => facts.or_not_found(e)?,
                }
            }
            other => return Err(ProbeError::unknown_action(other)),
        };
        Facts::new(&facts)
    }
}

triage_sdk::register_probe!(EnvoyLogsProbe);
