use std::path::{Path, PathBuf};

use triage_plugin_envoy_logs::scan::{envoy_header_timestamp, scan_log};

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn real_fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/real"))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn td_config_not_found_on_a_vm() {
    let scan = scan_log(&data("vm-td-config-not-found.envoy.err.log"));
    assert_eq!(scan.line_count, 25);
    assert_eq!(
        scan.kinds,
        [
            "td-config-not-found",
            "td-entity-not-found",
            "xds-stream-closed"
        ]
    );

    let config = &scan.matches["td-config-not-found"];
    assert_eq!(
        config.count, 5,
        "four naming the network plus the bare message"
    );
    assert_eq!(config.networks, ["my-network"]);
    assert_eq!(config.projects, ["123456789012"]);
    assert_eq!(
        config.streams,
        ["StreamAggregatedResources", "StreamLoadStats"]
    );
    assert_eq!(
        config.first_timestamp.as_deref(),
        Some("2021-01-12 11:39:14.399")
    );
    assert_eq!(
        config.last_timestamp.as_deref(),
        Some("2021-01-12 11:39:21.004")
    );
    assert!(
        config
            .sample
            .starts_with("[2021-01-12 11:39:14.399][12][warning][config]")
    );
    assert!(config.sample.ends_with("in project \"123456789012\"."));

    let entity = &scan.matches["td-entity-not-found"];
    assert_eq!(entity.count, 2);
    assert_eq!(
        entity.first_timestamp.as_deref(),
        Some("2021-01-12 11:39:16.870")
    );

    let closed = &scan.matches["xds-stream-closed"];
    assert_eq!(closed.count, 7);
    assert_eq!(closed.codes, [5]);
    assert!(!scan.matches.contains_key("xds-stream-unavailable"));
}

#[test]
fn multi_line_runtime_dump_stays_one_entry() {
    let scan = scan_log(&data("vm-td-config-not-found.envoy.err.log"));
    // 25 lines, of which the six indented runtime-layer lines continue one entry.
    assert_eq!(scan.entry_count, 19);
}

#[test]
fn access_log_permission_denied_with_one_and_two_listeners() {
    let scan = scan_log(&data("vm-listener-rejected-access-log.envoy.err.log"));
    assert_eq!(scan.kinds, ["access-log-permission-denied"]);
    let denied = &scan.matches["access-log-permission-denied"];
    assert_eq!(denied.count, 2);
    assert_eq!(
        denied.paths,
        ["/var/log/envoy.log", "/var/log/envoy/access.log"]
    );
    assert_eq!(
        denied.listeners,
        ["TRAFFICDIRECTOR_INTERCEPTION_PORT", "td-inbound-80"]
    );
    assert_eq!(
        denied.first_timestamp.as_deref(),
        Some("2021-01-12 12:02:41.002")
    );
    assert_eq!(
        denied.last_timestamp.as_deref(),
        Some("2021-01-12 12:03:11.219")
    );
}

#[test]
fn the_guides_wrapped_lines() {
    let scan = scan_log(&data("guide-rendered-lines.txt"));
    assert_eq!(
        scan.kinds,
        [
            "access-log-permission-denied",
            "mysql-server-gone-away",
            "td-config-not-found",
            "td-entity-not-found",
            "xds-stream-closed",
        ]
    );
    let config = &scan.matches["td-config-not-found"];
    assert_eq!(config.count, 3);
    assert_eq!(config.networks, ["VPC_NAME"]);
    assert_eq!(config.projects, ["PROJECT_NUMBER"]);
    assert_eq!(config.first_timestamp, None);
    assert_eq!(
        config.sample,
        "warning envoy config StreamAggregatedResources gRPC config stream closed: 5, Traffic \
         Director configuration was not found for network \"VPC_NAME\" in project \"PROJECT_NUMBER\"."
    );
    assert_eq!(scan.matches["td-entity-not-found"].count, 2);
    let closed = &scan.matches["xds-stream-closed"];
    assert_eq!(closed.count, 4);
    assert_eq!(
        closed.streams,
        ["StreamAggregatedResources", "StreamLoadStats"]
    );
    let denied = &scan.matches["access-log-permission-denied"];
    assert_eq!(denied.count, 1);
    assert_eq!(denied.paths, ["/var/log/envoy.log"]);
    assert_eq!(denied.listeners, ["TRAFFICDIRECTOR_INTERCEPTION_PORT"]);
    assert_eq!(scan.matches["mysql-server-gone-away"].count, 1);
}

#[test]
fn unavailable_control_plane_old_and_new_envoy_wording() {
    let scan = scan_log(&data("gke-sidecar-unreachable.kubectl-logs.txt"));
    assert_eq!(scan.kinds, ["xds-stream-closed", "xds-stream-unavailable"]);
    let closed = &scan.matches["xds-stream-closed"];
    assert_eq!(closed.count, 5);
    assert_eq!(closed.codes, [14, 13]);
    let unavailable = &scan.matches["xds-stream-unavailable"];
    assert_eq!(unavailable.count, 4);
    assert_eq!(unavailable.codes, [14]);
    assert_eq!(
        unavailable.streams,
        ["StreamAggregatedResources", "StreamLoadStats"]
    );
    assert_eq!(
        unavailable.first_timestamp.as_deref(),
        Some("2021-03-02 08:15:15.873")
    );
    assert_eq!(
        unavailable.last_timestamp.as_deref(),
        Some("2023-06-20 10:01:02.331")
    );
}

#[test]
fn istio_format_sidecar_logs_from_gke() {
    let scan = scan_log(&data("gke-td-sidecar-istio-format.kubectl-logs.txt"));
    assert_eq!(scan.entry_count, 5);
    assert_eq!(
        scan.kinds,
        [
            "access-log-permission-denied",
            "td-config-not-found",
            "td-entity-not-found",
            "xds-stream-closed"
        ]
    );
    let config = &scan.matches["td-config-not-found"];
    assert_eq!(config.count, 2);
    assert_eq!(config.networks, ["gke-vpc"]);
    assert_eq!(
        config.first_timestamp.as_deref(),
        Some("2021-03-02T08:15:15.873533Z")
    );
    assert_eq!(
        config.last_timestamp.as_deref(),
        Some("2021-03-02T08:15:16.004117Z")
    );
    let denied = &scan.matches["access-log-permission-denied"];
    assert_eq!(denied.paths, ["/var/log/envoy/access.log"]);
    assert_eq!(denied.listeners, ["TRAFFICDIRECTOR_INTERCEPTION_PORT"]);
    assert_eq!(scan.matches["xds-stream-closed"].count, 3);
}

#[test]
fn mysql_gone_away_in_an_application_log() {
    let scan = scan_log(&data("app-mysql-gone-away.log"));
    assert_eq!(scan.kinds, ["mysql-server-gone-away"]);
    assert_eq!(scan.matches["mysql-server-gone-away"].count, 2);
    let gone = &scan.matches["mysql-server-gone-away"];
    assert_eq!(
        gone.first_timestamp.as_deref(),
        Some("2021-01-12 13:20:31,557")
    );
    assert_eq!(
        gone.last_timestamp.as_deref(),
        Some("2021-01-12 13:21:01,570")
    );
}

#[test]
fn header_timestamps() {
    assert_eq!(
        envoy_header_timestamp("[2021-01-12 11:39:14.399][12][warning][config] x"),
        Some("2021-01-12 11:39:14.399")
    );
    assert_eq!(
        envoy_header_timestamp("[2021-01-12 11:39:14][12]"),
        Some("2021-01-12 11:39:14")
    );
    assert_eq!(envoy_header_timestamp("[2021-01-12 11:39:14.][12]"), None);
    assert_eq!(envoy_header_timestamp("[12][warning]"), None);
    assert_eq!(envoy_header_timestamp("[2021-01-12 11:39"), None);
    assert_eq!(envoy_header_timestamp("[é2021-01-12 11:39:14]"), None);
    assert_eq!(envoy_header_timestamp(""), None);
    assert_eq!(
        envoy_header_timestamp("2021-03-02T08:15:15.873533Z\twarning\tenvoy config\tx"),
        Some("2021-03-02T08:15:15.873533Z")
    );
    assert_eq!(
        envoy_header_timestamp("2021-03-02T08:15:15Z warning"),
        Some("2021-03-02T08:15:15Z")
    );
    assert_eq!(
        envoy_header_timestamp("2021-03-02T08:15:15.873533Zwarning"),
        None
    );
    assert_eq!(
        envoy_header_timestamp("2021-03-02T08:15:15"),
        None,
        "a bare date-time is not a header"
    );
    assert_eq!(envoy_header_timestamp("2021-03-02"), None);
}

#[test]
fn real_fixtures_hold_no_envoy_error_lines() {
    // None of the real files is an Envoy log; scanning them proves the matcher does not
    // fire on config dumps, bootstraps or iptables rules that mention the same words.
    let mut files = Vec::new();
    files_under(&real_fixtures_dir(), &mut files);
    assert!(
        files.len() >= 40,
        "expected the real fixtures, found {}",
        files.len()
    );
    for file in files {
        let bytes = std::fs::read(&file).expect("readable fixture");
        let text = String::from_utf8_lossy(&bytes);
        let scan = scan_log(&text);
        assert_eq!(
            scan.line_count,
            text.lines().count() as u64,
            "{}",
            file.display()
        );
        assert!(
            scan.kinds.is_empty(),
            "{}: {:?}",
            file.display(),
            scan.kinds
        );
    }
}

#[test]
fn empty_and_blank_input() {
    let scan = scan_log("");
    assert_eq!(scan.line_count, 0);
    assert_eq!(scan.entry_count, 0);
    assert!(scan.kinds.is_empty());
    let scan = scan_log("\n\n   \n");
    assert_eq!(scan.line_count, 3);
    assert!(scan.kinds.is_empty());
}

#[test]
fn truncated_lines_do_not_panic() {
    let full = data("vm-listener-rejected-access-log.envoy.err.log")
        + &data("vm-td-config-not-found.envoy.err.log")
        + &data("gke-sidecar-unreachable.kubectl-logs.txt");
    for end in 0..full.len() {
        if let Some(prefix) = full.get(..end) {
            let _ = scan_log(prefix);
        }
    }
    let cut = "[2021-01-12 11:39:14.399][12][warning][config] StreamAggregatedResources gRPC config \
               stream closed: 5, Traffic Director configuration was not found for network \"my-net";
    let scan = scan_log(cut);
    let config = &scan.matches["td-config-not-found"];
    assert!(
        config.networks.is_empty(),
        "an unterminated quote names no network"
    );
    assert_eq!(scan.matches["xds-stream-closed"].codes, [5]);
    let scan = scan_log("x gRPC config stream closed: 99999999999999999999, overflow");
    assert!(
        scan.kinds.is_empty(),
        "a code that does not fit is not a code"
    );
    let scan = scan_log("unable to open file '/var/log/envoy.log");
    assert!(scan.kinds.is_empty());
}

#[test]
fn binary_input_does_not_panic() {
    let mut bytes: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    bytes.extend_from_slice(
        b"\n[2021-01-12 11:39:14.399][1][warning][config] Requested entity was not found.\n",
    );
    let text = String::from_utf8_lossy(&bytes);
    let scan = scan_log(&text);
    assert_eq!(scan.matches["td-entity-not-found"].count, 1);
}

#[test]
fn enormous_input_keeps_facts_bounded() {
    let mut log = String::new();
    for i in 0..20_000 {
        log.push_str(&format!(
            "[2021-01-12 11:39:14.399][12][warning][config] [source/common/config/grpc_stream.h:101] \
             StreamAggregatedResources gRPC config stream closed: 5, Traffic Director configuration \
             was not found for network \"net-{i}\" in project \"{i}\".\n"
        ));
    }
    let scan = scan_log(&log);
    let config = &scan.matches["td-config-not-found"];
    assert_eq!(config.count, 20_000);
    assert_eq!(config.networks.len(), 32, "distinct values are capped");
    assert!(config.sample.chars().count() <= 500);

    let one_huge_line = "A".repeat(5 * 1024 * 1024) + " MySQL server has gone away";
    let scan = scan_log(&one_huge_line);
    assert_eq!(scan.line_count, 1);
    assert!(
        scan.kinds.is_empty(),
        "matching stops at the entry size cap"
    );

    let header_then_junk = "[2021-01-12 11:39:14.399][1][info][main] start\n".to_owned()
        + &"continuation\n".repeat(1000);
    let scan = scan_log(&header_then_junk);
    assert!(scan.entry_count > 30, "one header cannot swallow the file");
}

/// Errors written before Envoy's last start are history; those after it are current. The
/// log is the real-shaped one below, from a restart on: the old run's errors, then a clean
/// start.
#[test]
fn entries_before_the_cutoff_are_history() {
    use triage_plugin_envoy_logs::scan::{Cutoff, scan_log_since, timestamp_ms};
    let old = data("vm-td-config-not-found.envoy.err.log");
    let restart = "[2021-01-12 12:10:00.000][31][info][main] [source/server/server.cc:302] initializing epoch 0 (base id=0, hot restart version=11.104)\n";
    let text = format!("{old}{restart}");
    let start = timestamp_ms("2021-01-12 12:10:00.000").unwrap();

    let scan = scan_log_since(&text, Some(Cutoff { at_ms: start }));
    let m = &scan.matches["td-config-not-found"];
    assert!(m.count > 0);
    assert_eq!((m.current_count, m.earlier_count), (0, m.count));
    assert_eq!(m.last_current_timestamp, None);
    assert!(
        m.last_earlier_timestamp
            .as_deref()
            .unwrap()
            .starts_with("2021-01-12 11:")
    );
    assert!(scan.current_kinds.is_empty());
    assert!(
        scan.earlier_kinds
            .contains(&"td-config-not-found".to_owned())
    );

    // The same errors after the cutoff are current.
    let scan = scan_log_since(
        &text,
        Some(Cutoff {
            at_ms: start - 3_600_000,
        }),
    );
    let m = &scan.matches["td-config-not-found"];
    assert_eq!((m.current_count, m.earlier_count), (m.count, 0));
    assert!(
        scan.current_kinds
            .contains(&"td-config-not-found".to_owned())
    );

    // Without a cutoff everything is current, as before; so is an undated entry with one.
    let scan = scan_log_since(&old, None);
    assert_eq!(scan.current_kinds, scan.kinds);
    let undated =
        "Traffic Director configuration was not found for network \"default\" in project \"1\"\n";
    let scan = scan_log_since(undated, Some(Cutoff { at_ms: i64::MAX }));
    assert_eq!(scan.current_kinds, ["td-config-not-found"]);
}

#[test]
fn timestamps_read_and_written() {
    use triage_plugin_envoy_logs::scan::{format_ms, timestamp_ms};
    assert_eq!(timestamp_ms("1970-01-01 00:00:00.000"), Some(0));
    assert_eq!(
        timestamp_ms("2021-01-12 11:39:14.399"),
        Some(1_610_451_554_399)
    );
    assert_eq!(
        timestamp_ms("2021-01-12T11:39:14.399533Z"),
        Some(1_610_451_554_399)
    );
    assert_eq!(timestamp_ms("2021-01-12 11:39:14"), Some(1_610_451_554_000));
    assert_eq!(
        timestamp_ms("2024-02-29 23:59:59,5"),
        Some(1_709_251_199_500)
    );
    assert_eq!(timestamp_ms("2021-13-12 11:39:14"), None);
    assert_eq!(timestamp_ms("2021-01-12"), None);
    assert_eq!(format_ms(1_610_451_554_399), "2021-01-12 11:39:14.399");
    assert_eq!(format_ms(1_709_251_199_500), "2024-02-29 23:59:59.500");
}

/// The end of a log read from an arbitrary byte: the piece of a line it starts with, and
/// the rest of an entry whose header was not read, are not scanned; an undated piece of an
/// old rejected-listener entry would otherwise count as a current error.
#[test]
fn a_cut_start_is_dropped_up_to_the_first_header() {
    use triage_plugin_envoy_logs::scan::{Cutoff, scan_log_since, skip_cut_start};
    let text = "k_config_dump\n\
        \x20 listener TRAFFICDIRECTOR_INTERCEPTION_PORT: unable to open file '/var/log/envoy.log': Permission denied\n\
        [2021-01-12 12:10:00.000][31][info][main] [source/server/server.cc:302] initializing epoch 0\n\
        [2021-01-12 12:10:01.000][31][info][main] [source/server/server.cc:656] starting main dispatch loop\n";
    let kept = skip_cut_start(text);
    assert!(kept.starts_with("[2021-01-12 12:10:00.000]"), "{kept}");
    let scan = scan_log_since(kept, Some(Cutoff { at_ms: 0 }));
    assert!(scan.kinds.is_empty(), "{scan:?}");
    assert_eq!(
        scan.first_timestamp.as_deref(),
        Some("2021-01-12 12:10:00.000")
    );
    // Before the fix the cut piece was scanned: its listener line read as a current denial.
    assert!(
        !scan_log_since(text, Some(Cutoff { at_ms: 0 }))
            .current_kinds
            .is_empty()
    );

    // Text with no header at all loses only its partial first line.
    assert_eq!(skip_cut_start("ial line\nwhole line\n"), "whole line\n");
    // One line with no end: nothing whole was read.
    assert_eq!(skip_cut_start("a piece"), "");
}

/// A read of the log's end covers the cutoff when its oldest entry is from before it: every
/// current entry was then read. Otherwise current errors may lie in the part not read.
#[test]
fn a_tail_read_covers_the_cutoff_when_it_reaches_back_past_it() {
    use triage_plugin_envoy_logs::scan::{Cutoff, covers_cutoff, timestamp_ms};
    let start = Cutoff {
        at_ms: timestamp_ms("2021-01-12 12:10:00.000").unwrap(),
    };
    assert!(covers_cutoff(Some("2021-01-12 11:00:00.000"), Some(start)));
    assert!(!covers_cutoff(Some("2021-01-12 12:10:00.001"), Some(start)));
    assert!(!covers_cutoff(
        Some("2021-01-12T12:30:00.000Z"),
        Some(start)
    ));
    // Undated, or no cutoff (every entry current): the unread part may hold current errors.
    assert!(!covers_cutoff(None, Some(start)));
    assert!(!covers_cutoff(Some("2021-01-12 11:00:00.000"), None));
}
