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
}

/// Judges a finished `ip6tables -t nat -S` run.
pub fn status_from_run(status: i32, stdout: &str, stderr: &str) -> Ip6tablesStatus {
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
    }
}

/// The command could not be started at all.
pub fn status_not_started(message: &str) -> Ip6tablesStatus {
    Ip6tablesStatus {
        usable: false,
        status: None,
        error: Some(message.to_string()),
        reason: Some("not-installed".into()),
        rule_count: 0,
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

    #[test]
    fn guide_failure_is_module_missing() {
        let s = status_from_run(
            3,
            "",
            "ip6tables v1.8.4 (legacy): can't initialize ip6tables table `nat': Table does not exist (do you need to insmod?)\nPerhaps ip6tables or your kernel needs to be upgraded.\n",
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
        );
        assert_eq!(s.reason.as_deref(), Some("permission-denied"));
        let s = status_from_run(0, "-P PREROUTING ACCEPT\n-A OUTPUT -j ISTIO_OUTPUT\n", "");
        assert!(s.usable);
        assert_eq!(s.rule_count, 1);
        assert_eq!(s.reason, None);
        assert_eq!(
            status_not_started("no such program").reason.as_deref(),
            Some("not-installed")
        );
        assert_eq!(
            status_from_run(1, "", "weird").reason.as_deref(),
            Some("other")
        );
    }
}
