//! Whether ip6tables works on the machine at all.

use serde::Serialize;
use triage_sdk::JsonSchema;

/// The state of ip6tables' nat table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Ip6tablesStatus {
    /// True when `ip6tables -t nat -S` ran and exited 0.
    pub usable: bool,
    /// Its exit status; null when it could not be started.
    pub status: Option<i32>,
    /// The first line of stderr (or the start failure); null when usable.
    pub error: Option<String>,
    /// Why it is not usable: `module-missing` (the kernel's ip6 nat table is not loaded,
    /// as on a VM created from the console before a reboot), `permission-denied`,
    /// `not-installed`, `other`; null when usable.
    pub reason: Option<String>,
    /// Number of `-A` rules it printed.
    pub rule_count: usize,
    /// Whether the kernel has IPv6 at all: a different cause from a missing module or a
    /// missing ip6tables, with a different fix.
    pub kernel_ipv6: KernelIpv6,
}

/// The file that says whether IPv6 is on: present and `0` when it is, `1` when a sysctl turned
/// it off, absent when the kernel runs without IPv6 (`ipv6.disable=1` on its command line).
/// A real file under /proc/sys, so reading it follows no link (/proc/net/if_inet6 would).
pub const DISABLE_IPV6_PATH: &str = "/proc/sys/net/ipv6/conf/all/disable_ipv6";

/// What the kernel says about IPv6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct KernelIpv6 {
    /// `enabled`, `disabled-by-sysctl` (net.ipv6.conf.all.disable_ipv6 = 1),
    /// `disabled-at-boot` (no /proc/sys/net/ipv6: `ipv6.disable=1` or a kernel without IPv6),
    /// or `unknown` (the file could not be read for another reason).
    pub state: String,
    /// `/proc/sys/net/ipv6/conf/all/disable_ipv6` as read (trimmed); null when not read.
    pub disable_ipv6: Option<String>,
    /// Why the file could not be read; null when it was.
    pub error: Option<String>,
}

impl KernelIpv6 {
    /// From the file's text, or the message of a read that failed.
    pub fn from_read(read: Result<&str, &str>) -> Self {
        match read {
            Ok(text) => {
                let value = text.trim().to_string();
                let state = match value.as_str() {
                    "0" => "enabled",
                    "1" => "disabled-by-sysctl",
                    _ => "unknown",
                };
                KernelIpv6 {
                    state: state.into(),
                    disable_ipv6: Some(value),
                    error: None,
                }
            }
            Err(message) => {
                let lower = message.to_ascii_lowercase();
                let absent = lower.contains("no such file") || lower.contains("not found");
                KernelIpv6 {
                    state: if absent {
                        "disabled-at-boot"
                    } else {
                        "unknown"
                    }
                    .into(),
                    disable_ipv6: None,
                    error: Some(message.to_string()),
                }
            }
        }
    }

    /// Not read at all (the caller had no way to ask).
    pub fn unknown(message: &str) -> Self {
        KernelIpv6 {
            state: "unknown".into(),
            disable_ipv6: None,
            error: Some(message.to_string()),
        }
    }
}

/// Judges a finished `ip6tables -t nat -S` run.
pub fn status_from_run(
    status: i32,
    stdout: &str,
    stderr: &str,
    kernel_ipv6: KernelIpv6,
) -> Ip6tablesStatus {
    let rule_count = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("-A "))
        .count();
    if status == 0 {
        return Ip6tablesStatus {
            usable: true,
            status: Some(status),
            error: None,
            reason: None,
            rule_count,
            kernel_ipv6,
        };
    }
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    Ip6tablesStatus {
        usable: false,
        status: Some(status),
        reason: Some(classify_failure(stderr).into()),
        error: Some(if first.is_empty() {
            format!("exited with status {status}")
        } else {
            first
        }),
        rule_count,
        kernel_ipv6,
    }
}

/// The command could not be started at all.
pub fn status_not_started(message: &str, kernel_ipv6: KernelIpv6) -> Ip6tablesStatus {
    Ip6tablesStatus {
        usable: false,
        status: None,
        error: Some(message.to_string()),
        reason: Some("not-installed".into()),
        rule_count: 0,
        kernel_ipv6,
    }
}

fn classify_failure(stderr: &str) -> &'static str {
    let text = stderr.to_ascii_lowercase();
    if text.contains("table does not exist")
        || text.contains("insmod")
        || text.contains("modprobe")
        || text.contains("module")
        || text.contains("protocol not supported")
        || text.contains("address family not supported")
    {
        "module-missing"
    } else if text.contains("permission denied")
        || text.contains("operation not permitted")
        || text.contains("must be root")
    {
        "permission-denied"
    } else if text.contains("not found") || text.contains("no such file") {
        "not-installed"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> KernelIpv6 {
        KernelIpv6::from_read(Ok("0\n"))
    }

    #[test]
    fn kernel_ipv6_states() {
        assert_eq!(on().state, "enabled");
        let off = KernelIpv6::from_read(Ok("1\n"));
        assert_eq!(off.state, "disabled-by-sysctl");
        assert_eq!(off.disable_ipv6.as_deref(), Some("1"));
        let boot = KernelIpv6::from_read(Err(
            "/proc/sys/net/ipv6/conf/all/disable_ipv6: No such file or directory (os error 2)",
        ));
        assert_eq!(boot.state, "disabled-at-boot");
        assert_eq!(
            KernelIpv6::from_read(Err("denied by policy")).state,
            "unknown"
        );
        assert_eq!(KernelIpv6::from_read(Ok("yes")).state, "unknown");
    }

    #[test]
    fn guide_failure_is_module_missing() {
        let s = status_from_run(
            3,
            "",
            "ip6tables v1.8.4 (legacy): can't initialize ip6tables table `nat': Table does not exist (do you need to insmod?)\nPerhaps ip6tables or your kernel needs to be upgraded.\n",
            on(),
        );
        assert!(!s.usable);
        assert_eq!(s.reason.as_deref(), Some("module-missing"));
        assert!(s.error.unwrap().contains("Table does not exist"));
    }

    #[test]
    fn other_outcomes() {
        let s = status_from_run(
            4,
            "",
            "ip6tables v1.8.7 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)",
            on(),
        );
        assert_eq!(s.reason.as_deref(), Some("permission-denied"));
        let s = status_from_run(
            0,
            "-P PREROUTING ACCEPT\n-A OUTPUT -j ISTIO_OUTPUT\n",
            "",
            on(),
        );
        assert!(s.usable);
        assert_eq!(s.rule_count, 1);
        assert_eq!(s.reason, None);
        assert_eq!(
            status_not_started("no such program", on())
                .reason
                .as_deref(),
            Some("not-installed")
        );
        assert_eq!(
            status_from_run(1, "", "weird", on()).reason.as_deref(),
            Some("other")
        );
    }
}
