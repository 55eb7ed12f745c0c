//! How long Envoy and the machine have been up: the guide's "the proxy process may fail"
//! (a traffic loop can crash it) leaves one trace a single look can see, an Envoy that
//! started well after the machine did, and recently.

use serde::Serialize;
use triage_sdk::{CapabilityError, JsonSchema, ProbeError};

use crate::processes::is_envoy;

/// The argv the `envoy-uptime` action runs: pid, seconds since the process started, and the
/// full command line last so that spaces in it cannot shift the other columns.
pub const PS_ETIMES_ARGV: [&str; 3] = ["ps", "-eo", "pid=,etimes=,args="];

/// The file that holds the machine's uptime in seconds (first number).
pub const PROC_UPTIME: &str = "/proc/uptime";

/// How long Envoy has run, against how long the machine has.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct UptimeFacts {
    /// Whether a process whose executable is named `envoy` runs.
    pub envoy_running: bool,
    /// The Envoy processes with the seconds since each started.
    pub envoy: Vec<EnvoyProcess>,
    /// Seconds since the most recently started Envoy process started (null without Envoy).
    pub envoy_uptime_seconds: Option<u64>,
    /// Seconds since the machine booted (`/proc/uptime`); null when it could not be read.
    pub machine_uptime_seconds: Option<u64>,
    /// Why the machine's uptime could not be read.
    pub machine_uptime_error: Option<String>,
    /// How long after boot the most recent Envoy started (null when either uptime is
    /// unknown). Tens of seconds is the boot itself; more means Envoy was started again.
    pub envoy_started_after_boot_seconds: Option<u64>,
}

/// One Envoy process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EnvoyProcess {
    /// Process id.
    pub pid: u32,
    /// Seconds since it started.
    pub elapsed_seconds: u64,
    /// The full command line.
    pub args: String,
}

/// Builds the facts from `ps` ([`PS_ETIMES_ARGV`]) and the answer for [`PROC_UPTIME`].
pub fn uptime_facts(
    ps: &str,
    proc_uptime: Result<String, CapabilityError>,
) -> Result<UptimeFacts, ProbeError> {
    let mut envoy = Vec::new();
    let mut listed = 0u64;
    for line in ps.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (Some(pid), Some(elapsed)) = (words.next(), words.next()) else {
            continue;
        };
        let (Ok(pid), Ok(elapsed_seconds)) = (pid.parse::<u32>(), elapsed.parse::<u64>()) else {
            continue;
        };
        listed += 1;
        let args = words.collect::<Vec<_>>().join(" ");
        if is_envoy(&args) {
            envoy.push(EnvoyProcess {
                pid,
                elapsed_seconds,
                args,
            });
        }
    }
    if listed == 0 {
        return Err(ProbeError::bad_input(format!(
            "no `pid etimes args` line in ps output: {:?}",
            ps.chars().take(80).collect::<String>()
        )));
    }
    let (machine_uptime_seconds, machine_uptime_error) = match proc_uptime {
        Ok(text) => match parse_proc_uptime(&text) {
            Some(seconds) => (Some(seconds), None),
            None => (
                None,
                Some(format!(
                    "{PROC_UPTIME} does not start with a number of seconds: {:?}",
                    text.chars().take(40).collect::<String>()
                )),
            ),
        },
        // A denial or a bundle without the file is an error of the step, not a fact.
        Err(e @ (CapabilityError::Denied(_) | CapabilityError::NotCaptured(_))) => {
            return Err(ProbeError::Capability(e));
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let envoy_uptime_seconds = envoy.iter().map(|p| p.elapsed_seconds).min();
    Ok(UptimeFacts {
        envoy_running: !envoy.is_empty(),
        envoy_started_after_boot_seconds: match (machine_uptime_seconds, envoy_uptime_seconds) {
            (Some(machine), Some(envoy)) => Some(machine.saturating_sub(envoy)),
            _ => None,
        },
        envoy,
        envoy_uptime_seconds,
        machine_uptime_seconds,
        machine_uptime_error,
    })
}

/// `/proc/uptime` is "UP IDLE", each seconds with a fraction: "350735.47 234388.90".
fn parse_proc_uptime(text: &str) -> Option<u64> {
    let first = text.split_whitespace().next()?;
    let whole = first.split('.').next()?;
    whole.parse().ok()
}
