use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use triage_envoy::EnvoyVersion as Version;
use triage_plugin_host::network::{dns_facts, tcp_facts};
use triage_plugin_host::processes::parse_ps;
use triage_plugin_host::stat::{WritableBy, file_stat_facts, parse_stat};
use triage_plugin_host::version::envoy_version_facts;
use triage_sdk::{CapabilityError, ProbeError};

const MIN: Version = Version {
    major: 1,
    minor: 9,
    patch: 1,
};

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn real_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/real"))
}

#[test]
fn envoy_running_as_1337_and_grep_is_not_envoy() {
    let facts = parse_ps(&data("ps-vm-envoy-1337.txt")).unwrap();
    assert_eq!(facts.process_count, 14);
    assert_eq!(facts.unparsed_lines, 0);
    assert!(facts.envoy_running);
    assert_eq!(facts.envoy.len(), 1, "{:?}", facts.envoy);
    let envoy = &facts.envoy[0];
    assert_eq!(
        (envoy.pid, envoy.uid, envoy.user.as_str()),
        (891, 1337, "envoy")
    );
    assert!(
        envoy
            .args
            .starts_with("/usr/local/bin/envoy --config-path /etc/envoy/envoy.yaml")
    );
    assert!(
        envoy
            .args
            .ends_with("--log-path /var/log/envoy/envoy.err.log")
    );
    assert_eq!(facts.envoy_uids, [1337]);
}

#[test]
fn no_envoy_only_grep() {
    let facts = parse_ps(&data("ps-no-envoy.txt")).unwrap();
    assert!(!facts.envoy_running);
    assert!(facts.envoy.is_empty());
    assert_eq!(facts.process_count, 6);
}

#[test]
fn istio_sidecar_processes() {
    let facts = parse_ps(&data("ps-gke-istio-proxy.txt")).unwrap();
    assert_eq!(facts.process_count, 3);
    assert_eq!(
        facts.envoy.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [16, 40]
    );
    assert_eq!(
        facts.envoy[0].user, "istio-p+",
        "ps truncates long user names"
    );
    assert_eq!(facts.envoy_uids, [1337]);
}

#[test]
fn ps_robustness() {
    assert!(parse_ps("").is_err());
    assert!(parse_ps("  \n").is_err());
    assert!(parse_ps("PID UID USER COMMAND\n").is_err());
    let facts =
        parse_ps("garbage\n  12 0 root /usr/local/bin/envoy\n 13 x root y\n 14 0 root\n").unwrap();
    assert_eq!(facts.process_count, 1);
    assert_eq!(facts.unparsed_lines, 3);
    assert!(facts.envoy_running);
    let full = data("ps-vm-envoy-1337.txt");
    for end in 0..full.len() {
        if let Some(prefix) = full.get(..end) {
            let _ = parse_ps(prefix);
        }
    }
    let binary: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let _ = parse_ps(&String::from_utf8_lossy(&binary));
    let huge = "  1 0 root /sbin/init\n".repeat(200_000);
    assert_eq!(parse_ps(&huge).unwrap().process_count, 200_000);
}

#[test]
fn the_guides_version_line() {
    let facts = envoy_version_facts(
        "/usr/local/bin/envoy",
        Ok(data("envoy-version-guide.txt")),
        MIN,
    )
    .unwrap();
    assert!(facts.found);
    assert_eq!(
        facts.raw.as_deref(),
        Some(
            "/usr/local/bin/envoy  version: dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL"
        )
    );
    assert_eq!(
        facts.build_version.as_deref(),
        Some("dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL")
    );
    assert_eq!(facts.version_number.as_deref(), Some("1.15.1"));
    assert_eq!(
        (facts.major, facts.minor, facts.patch),
        (Some(1), Some(15), Some(1))
    );
    assert_eq!(facts.minimum, "1.9.1");
    assert_eq!(facts.meets_minimum, Some(true));
}

#[test]
fn too_old_and_minimum_comparisons() {
    let facts = envoy_version_facts("envoy", Ok(data("envoy-version-1.8.txt")), MIN).unwrap();
    assert_eq!(facts.version_number.as_deref(), Some("1.8.0"));
    assert_eq!(facts.meets_minimum, Some(false));
    let at = |text: &str| {
        envoy_version_facts("envoy", Ok(text.to_owned()), MIN)
            .unwrap()
            .meets_minimum
    };
    assert_eq!(at("envoy version: x/1.9.1/Clean"), Some(true));
    assert_eq!(at("envoy version: x/1.9.0/Clean"), Some(false));
    assert_eq!(
        at("envoy version: x/1.10.0/Clean"),
        Some(true),
        "numeric, not string, order"
    );
    assert_eq!(at("envoy version: x/2.0.0/Clean"), Some(true));
    assert_eq!(at("envoy: unknown flag --version"), None);
    assert_eq!(
        Version::parse("1.9"),
        Some(Version {
            major: 1,
            minor: 9,
            patch: 0
        })
    );
    assert_eq!(Version::parse("1.9.1-dev"), Some(MIN));
    assert_eq!(Version::parse("1"), None);
    assert_eq!(Version::parse("1.x.1"), None);
    assert_eq!(Version::parse("99999999999.1.1"), None);
}

#[test]
fn missing_binary_is_a_fact_denial_is_an_error() {
    let failed = Err(CapabilityError::Failed(
        "No such file or directory (os error 2)".into(),
    ));
    let facts = envoy_version_facts("/usr/local/bin/envoy", failed, MIN).unwrap();
    assert!(!facts.found);
    assert_eq!(facts.meets_minimum, None);
    assert!(facts.error.unwrap().contains("No such file"));
    let denied = Err(CapabilityError::Denied("exec envoy".into()));
    assert!(matches!(
        envoy_version_facts("envoy", denied, MIN),
        Err(ProbeError::Capability(CapabilityError::Denied(_)))
    ));
}

#[test]
fn version_of_every_real_config_dump_build() {
    // `envoy --version` prints the build version config dumps carry in bootstrap.node.
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(real_dir().join("envoy-config-dump")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in ["\"build_version\": \"", "\"buildVersion\": \""] {
            if let Some(at) = text.find(marker) {
                let rest = &text[at + marker.len()..];
                let build = &rest[..rest.find('"').unwrap()];
                let output = format!("/usr/local/bin/envoy  version: {build}\n");
                let facts = envoy_version_facts("envoy", Ok(output), MIN).unwrap();
                assert_eq!(facts.build_version.as_deref(), Some(build));
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                seen.insert(name, (facts.version_number, facts.meets_minimum));
            }
        }
    }
    let expect = |file: &str, version: &str, meets: bool| {
        assert_eq!(
            seen.get(file),
            Some(&(Some(version.to_owned()), Some(meets))),
            "{file}: {seen:?}"
        )
    };
    expect(
        "istio-1.6-bookinfo-productpage-authz.config_dump.json",
        "1.10.0",
        true,
    );
    expect(
        "istio-1.6-bookinfo-productpage-sidecar.config_dump.json",
        "1.12.0",
        true,
    );
    expect("istio-1.6-ingressgateway.config_dump.json", "1.12.0", true);
    expect("istio-camelcase-keys.config_dump.json", "1.7.0", false);
    assert_eq!(seen.len(), 4);
    assert_eq!(
        Version::parse_build("0/1.7.0-dev//RELEASE"),
        Some(Version {
            major: 1,
            minor: 7,
            patch: 0
        })
    );
}

#[test]
fn access_log_owned_by_root_is_not_writable_by_envoy() {
    let facts = file_stat_facts(
        "/var/log/envoy.log",
        Ok(data("stat-access-log-root-644.txt")),
        Some(1337),
    )
    .unwrap();
    assert!(facts.exists);
    assert_eq!(facts.owner.as_deref(), Some("root"));
    assert_eq!((facts.uid, facts.gid), (Some(0), Some(0)));
    assert_eq!(facts.mode.as_deref(), Some("644"));
    assert_eq!(facts.kind.as_deref(), Some("regular file"));
    assert_eq!(
        facts.writable_by,
        Some(WritableBy {
            owner: true,
            group: false,
            others: false
        })
    );
    assert_eq!(facts.writable_by_user, Some(false));
    assert!(
        facts
            .writable_by_user_reason
            .unwrap()
            .contains("not the owner")
    );

    let root = file_stat_facts(
        "/var/log/envoy.log",
        Ok(data("stat-access-log-root-644.txt")),
        Some(0),
    )
    .unwrap();
    assert_eq!(root.writable_by_user, Some(true));
    let nobody = file_stat_facts(
        "/var/log/envoy.log",
        Ok(data("stat-access-log-root-644.txt")),
        None,
    )
    .unwrap();
    assert_eq!(
        (nobody.writable_by_user, nobody.writable_by_user_reason),
        (None, None)
    );
}

#[test]
fn group_writable_directory() {
    let stat = parse_stat(&data("stat-log-dir-envoy-775.txt")).unwrap();
    assert_eq!(stat.mode, "2775");
    assert_eq!(stat.mode_bits, 0o2775);
    assert_eq!(stat.kind, "directory");
    assert_eq!(stat.writable_by_uid(1337), Some(true), "the owner");
    assert_eq!(
        stat.writable_by_uid(1000),
        None,
        "group membership is unknown"
    );
    let facts = file_stat_facts(
        "/var/log/envoy",
        Ok(data("stat-log-dir-envoy-775.txt")),
        Some(1000),
    )
    .unwrap();
    assert!(facts.writable_by_user_reason.unwrap().contains("not known"));
    let world = parse_stat("root|0|root|0|1777|directory").unwrap();
    assert_eq!(world.writable_by_uid(1337), Some(true));
    let read_only_owner = parse_stat("envoy|1337|envoy|1337|444|regular file").unwrap();
    assert_eq!(read_only_owner.writable_by_uid(1337), Some(false));
}

#[test]
fn missing_file_is_a_fact() {
    let failed = Err(CapabilityError::Failed(
        "`stat -c %U|%u|%G|%g|%a|%F /var/log/envoy.log` exited with status 1: stat: cannot statx '/var/log/envoy.log': No such file or directory".into(),
    ));
    let facts = file_stat_facts("/var/log/envoy.log", failed, Some(1337)).unwrap();
    assert!(!facts.exists);
    assert_eq!(facts.writable_by_user, None);
    assert!(facts.error.unwrap().contains("No such file"));
    let not_captured = Err(CapabilityError::NotCaptured("stat".into()));
    assert!(file_stat_facts("/x", not_captured, None).is_err());
}

#[test]
fn stat_robustness() {
    for bad in [
        "",
        "\n",
        "root|0|root|0|644",
        "root|x|root|0|644|regular file",
        "root|0|root|0|999|regular file",
        "root|0|root|0|+644|regular file",
        "root|0|root|0|77777|regular file",
        "root|0|root|0||regular file",
        "\u{0}\u{ff}",
    ] {
        assert!(parse_stat(bad).is_err(), "{bad:?}");
        assert!(matches!(
            file_stat_facts("/x", Ok(bad.to_owned()), Some(1)),
            Err(ProbeError::BadInput(_))
        ));
    }
    let odd_kind = parse_stat("a|1|b|2|600|weird|type\n").unwrap();
    assert_eq!(odd_kind.kind, "weird|type");
}

#[test]
fn dns_and_tcp_facts() {
    let ok = dns_facts(
        "trafficdirector.googleapis.com",
        Ok(vec!["199.36.153.8".into()]),
    )
    .unwrap();
    assert!(ok.resolved);
    assert_eq!(ok.addresses, ["199.36.153.8"]);
    assert_eq!(ok.error, None);
    let empty = dns_facts("x", Ok(vec![])).unwrap();
    assert!(!empty.resolved);
    let failed = dns_facts("x", Err(CapabilityError::Failed("no such host".into()))).unwrap();
    assert_eq!(
        (failed.resolved, failed.error.as_deref()),
        (false, Some("no such host"))
    );
    let timed_out = dns_facts("x", Err(CapabilityError::TimedOut("5s".into()))).unwrap();
    assert!(!timed_out.resolved);
    assert!(dns_facts("x", Err(CapabilityError::Denied("resolve x".into()))).is_err());

    let up = tcp_facts("trafficdirector.googleapis.com", 443, Ok(12)).unwrap();
    assert_eq!(
        (up.reachable, up.elapsed_ms, up.timed_out),
        (true, Some(12), false)
    );
    let refused = tcp_facts(
        "h",
        443,
        Err(CapabilityError::Failed("connection refused".into())),
    )
    .unwrap();
    assert_eq!((refused.reachable, refused.timed_out), (false, false));
    let dropped = tcp_facts("h", 443, Err(CapabilityError::TimedOut("3000 ms".into()))).unwrap();
    assert_eq!((dropped.reachable, dropped.timed_out), (false, true));
    assert!(
        tcp_facts(
            "h",
            443,
            Err(CapabilityError::NotCaptured("connect h:443".into()))
        )
        .is_err()
    );
}

/// `/usr/local/bin/envoy` is missing: the running Envoy's executable answers, found through
/// ps; PATH is not tried once it has.
#[test]
fn version_falls_back_to_the_running_process_then_path() {
    use triage_plugin_host::version::envoy_version_with_fallbacks;
    let missing =
        |b: &str| CapabilityError::Failed(format!("cannot run `{b}`: No such file or directory"));
    let mut ran = Vec::new();
    let facts = envoy_version_with_fallbacks(
        "/usr/local/bin/envoy",
        MIN,
        |b| {
            ran.push(b.to_owned());
            match b {
                "/proc/891/exe" => Ok(data("envoy-version-1.8.txt")),
                other => Err(missing(other)),
            }
        },
        || Ok(vec![891]),
    )
    .unwrap();
    assert_eq!(ran, ["/usr/local/bin/envoy", "/proc/891/exe"]);
    assert!(facts.found);
    assert_eq!(facts.source.as_deref(), Some("process"));
    assert_eq!(facts.pid, Some(891));
    assert_eq!(facts.binary, "/proc/891/exe");
    assert_eq!(facts.meets_minimum, Some(false));
    assert_eq!(facts.attempts.len(), 1);

    // No process, no binary: PATH is the last resort, and then every attempt is listed.
    let facts = envoy_version_with_fallbacks(
        "/usr/local/bin/envoy",
        MIN,
        |b| Err(missing(b)),
        || Ok(vec![]),
    )
    .unwrap();
    assert!(!facts.found);
    assert_eq!(facts.source, None);
    let tried: Vec<_> = facts.attempts.iter().map(|a| a.binary.as_str()).collect();
    assert_eq!(tried, ["/usr/local/bin/envoy", "envoy"]);
    assert!(facts.error.unwrap().contains("envoy: cannot run `envoy`"));

    // The given binary answers: nothing else runs, not even ps.
    let facts = envoy_version_with_fallbacks(
        "/usr/local/bin/envoy",
        MIN,
        |_| Ok(data("envoy-version-guide.txt")),
        || panic!("ps must not run"),
    )
    .unwrap();
    assert_eq!(facts.source.as_deref(), Some("binary"));

    // A policy that does not allow /proc/*/exe: recorded as an attempt, PATH still tried.
    let facts = envoy_version_with_fallbacks(
        "/usr/local/bin/envoy",
        MIN,
        |b| match b {
            "/proc/7/exe" => Err(CapabilityError::Denied(
                "exec /proc/7/exe --version is not allowed".into(),
            )),
            "envoy" => Ok(data("envoy-version-guide.txt")),
            other => Err(missing(other)),
        },
        || Ok(vec![7]),
    )
    .unwrap();
    assert_eq!(facts.source.as_deref(), Some("path"));
    assert!(facts.attempts[1].error.contains("not allowed"));

    // A bundle without ps's answer: the replay says so instead of guessing.
    let err = envoy_version_with_fallbacks(
        "/usr/local/bin/envoy",
        MIN,
        |b| Err(missing(b)),
        || Err(CapabilityError::NotCaptured("exec ps".into())),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ProbeError::Capability(CapabilityError::NotCaptured(_))
    ));
}

mod uptime {
    use triage_plugin_host::uptime::uptime_facts;
    use triage_sdk::{CapabilityError, ProbeError};

    const RESTARTED: &str = include_str!("data/ps-etimes-envoy-restarted.txt");

    #[test]
    fn an_envoy_started_long_after_boot_was_restarted() {
        let facts = uptime_facts(RESTARTED, Ok("350735.47 234388.90\n".into())).unwrap();
        assert!(facts.envoy_running);
        assert_eq!(facts.envoy.len(), 1, "grep and the agent are not Envoy");
        assert_eq!(facts.envoy[0].pid, 5120);
        assert_eq!(facts.envoy_uptime_seconds, Some(42));
        assert_eq!(facts.machine_uptime_seconds, Some(350735));
        assert_eq!(facts.envoy_started_after_boot_seconds, Some(350693));
    }

    #[test]
    fn no_envoy_and_an_unreadable_uptime_are_facts() {
        let ps = "      1  100 /sbin/init\n";
        let facts = uptime_facts(ps, Err(CapabilityError::Failed("no such file".into()))).unwrap();
        assert!(!facts.envoy_running);
        assert_eq!(facts.envoy_uptime_seconds, None);
        assert_eq!(facts.machine_uptime_seconds, None);
        assert!(facts.machine_uptime_error.unwrap().contains("no such file"));
        assert_eq!(facts.envoy_started_after_boot_seconds, None);
        // Text that is not a number of seconds says so instead of reading as 0.
        let facts = uptime_facts(ps, Ok("garbage".into())).unwrap();
        assert!(facts.machine_uptime_error.unwrap().contains("/proc/uptime"));
    }

    #[test]
    fn a_bundle_without_the_file_or_ps_output_is_an_error() {
        let err =
            uptime_facts(RESTARTED, Err(CapabilityError::NotCaptured("x".into()))).unwrap_err();
        assert!(matches!(err, ProbeError::Capability(_)), "{err:?}");
        let err = uptime_facts("", Ok("1 1".into())).unwrap_err();
        assert!(matches!(err, ProbeError::BadInput(_)), "{err:?}");
    }
}
