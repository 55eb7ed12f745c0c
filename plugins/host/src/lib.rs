//! Probe plugin `host`: facts about the machine Envoy runs on — the Envoy process and its
//! UID, where it writes its log, the Envoy binary's version, a file's owner and mode (the access log), and whether
//! Traffic Director's API resolves and accepts connections.

pub mod error;
pub mod log_location;
pub mod network;
pub mod processes;
pub mod stat;
pub mod uptime;
pub mod version;

pub use error::ParseError;

use serde::Deserialize;
use triage_sdk::{Action, CapabilityError, Facts, JsonSchema, Manifest, Params, Probe, ProbeError};

use crate::log_location::{LogLocationFacts, READLINK_STDERR, run_log_location};
use crate::network::{DnsFacts, TcpFacts, dns_facts, tcp_facts};
use crate::processes::{PS_ARGV, ProcessFacts, parse_ps};
use crate::stat::{FileStatFacts, STAT_FORMAT, file_stat_facts};
use crate::uptime::{PROC_UPTIME, PS_ETIMES_ARGV, UptimeFacts, uptime_facts};
use crate::version::{EnvoyVersionFacts, envoy_version_with_fallbacks};
use triage_envoy::{default_min_version, min_version_param};

const TRAFFIC_DIRECTOR_HOST: &str = "trafficdirector.googleapis.com";

fn default_binary() -> String {
    "/usr/local/bin/envoy".to_owned()
}
fn default_host() -> String {
    TRAFFIC_DIRECTOR_HOST.to_owned()
}
fn default_port() -> u16 {
    443
}
fn default_timeout_ms() -> u32 {
    3000
}

/// Params of `processes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessesParams {}

/// Params of `envoy-log-location`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvoyLogLocationParams {}

/// Params of `envoy-uptime`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvoyUptimeParams {}

/// Params of `envoy-version`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvoyVersionParams {
    /// The Envoy binary.
    #[serde(default = "default_binary")]
    pub binary: String,
    /// The oldest acceptable version, "X.Y.Z" (the guide: 1.9.1).
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

/// Params of `file-stat`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStatParams {
    /// The file or directory to examine (e.g. the access log path).
    pub path: String,
    /// The UID to judge write access for (e.g. the Envoy process's UID).
    #[serde(default)]
    pub user_uid: Option<u32>,
}

/// Params of `dns`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsParams {
    /// The name to resolve.
    #[serde(default = "default_host")]
    pub host: String,
}

/// Params of `tcp`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpParams {
    /// The host to connect to.
    #[serde(default = "default_host")]
    pub host: String,
    /// The port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Give up after this many milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
}

/// The probe; public so native tests can inspect its manifest.
pub struct HostProbe;

impl Probe for HostProbe {
    fn describe() -> Manifest {
        Manifest::new(
            "host",
            env!("CARGO_PKG_VERSION"),
            "The Envoy process, the Envoy binary's version, file ownership and mode, and DNS and \
             TCP reachability of Traffic Director",
        )
        .action(
            Action::new::<ProcessesParams, ProcessFacts>(
                "processes",
                "Lists processes with ps and finds Envoy and the UID it runs as",
            )
            .exec(&PS_ARGV),
        )
        .action(
            Action::new::<EnvoyLogLocationParams, LogLocationFacts>(
                "envoy-log-location",
                "Where the running Envoy writes its log: its --log-path argument (ps), else the \
                 file its stderr is open on (readlink /proc/PID/fd/2); says when that is \
                 journald, a pipe, /dev/null or a deleted file instead",
            )
            .exec(&PS_ARGV)
            .exec(&READLINK_STDERR),
        )
        .action(
            Action::new::<EnvoyUptimeParams, UptimeFacts>(
                "envoy-uptime",
                "How long each Envoy process has run (ps) against how long the machine has \
                 (/proc/uptime): an Envoy started well after boot was restarted",
            )
            .exec(&PS_ETIMES_ARGV)
            .read_file(PROC_UPTIME),
        )
        .action(
            Action::new::<EnvoyVersionParams, EnvoyVersionFacts>(
                "envoy-version",
                "Runs `envoy --version` and compares the version with a minimum; when the \
                 binary does not answer, tries the running Envoy's executable \
                 (/proc/PID/exe, PIDs from ps) and then `envoy` on PATH",
            )
            .exec(&["{binary}", "--version"])
            .exec(&PS_ARGV)
            .exec(&["/proc/*/exe", "--version"])
            .exec(&["envoy", "--version"]),
        )
        .action(
            Action::new::<FileStatParams, FileStatFacts>(
                "file-stat",
                "Owner, group, mode and type of a file, and whether a UID may write it",
            )
            .exec(&["stat", "-c", STAT_FORMAT, "--", "{path}"]),
        )
        .action(Action::new::<DnsParams, DnsFacts>("dns", "Resolves a host name").resolve("{host}"))
        .action(
            Action::new::<TcpParams, TcpFacts>("tcp", "Opens a TCP connection to host:port")
                .connect("{host}:{port}"),
        )
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        match action {
            "processes" => {
                let _: ProcessesParams = params.parse()?;
                let text = triage_sdk::exec_ok(&PS_ARGV)?;
                Facts::new(&parse_ps(&text).map_err(|e| ProbeError::bad_input(e.0))?)
            }
            "envoy-log-location" => {
                let _: EnvoyLogLocationParams = params.parse()?;
                let text = triage_sdk::exec_ok(&PS_ARGV)?;
                Facts::new(&run_log_location(&text)?)
            }
            "envoy-uptime" => {
                let _: EnvoyUptimeParams = params.parse()?;
                let ps = triage_sdk::exec_ok(&PS_ETIMES_ARGV)?;
                let proc_uptime = triage_sdk::read_file_string(PROC_UPTIME, 4096);
                Facts::new(&uptime_facts(&ps, proc_uptime)?)
            }
            "envoy-version" => {
                let p: EnvoyVersionParams = params.parse()?;
                let minimum = min_version_param(&p.min_version)?;
                let envoy_pids = || {
                    let text = triage_sdk::exec_ok(&PS_ARGV)?;
                    Ok(parse_ps(&text)
                        .map(|facts| facts.envoy.iter().map(|p| p.pid).collect())
                        .unwrap_or_default())
                };
                Facts::new(&envoy_version_with_fallbacks(
                    &p.binary,
                    minimum,
                    run_version,
                    envoy_pids,
                )?)
            }
            "file-stat" => {
                let p: FileStatParams = params.parse()?;
                let output = triage_sdk::exec_ok(&["stat", "-c", STAT_FORMAT, "--", &p.path]);
                Facts::new(&file_stat_facts(&p.path, output, p.user_uid)?)
            }
            "dns" => {
                let p: DnsParams = params.parse()?;
                Facts::new(&dns_facts(&p.host, triage_sdk::resolve(&p.host))?)
            }
            "tcp" => {
                let p: TcpParams = params.parse()?;
                let result = triage_sdk::connect(&p.host, p.port, p.timeout_ms);
                Facts::new(&tcp_facts(&p.host, p.port, result)?)
            }
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

/// Envoy prints its version on stdout; stderr is the fallback for builds that log it there.
fn run_version(binary: &str) -> Result<String, CapabilityError> {
    let output = triage_sdk::exec(&[binary, "--version"])?;
    if output.status != 0 {
        let stderr = output.stderr_text();
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        return Err(CapabilityError::Failed(format!(
            "`{binary} --version` exited with status {}: {first}",
            output.status
        )));
    }
    let stdout = output.stdout_text();
    Ok(if stdout.trim().is_empty() {
        output.stderr_text()
    } else {
        stdout
    })
}

triage_sdk::register_probe!(HostProbe);
