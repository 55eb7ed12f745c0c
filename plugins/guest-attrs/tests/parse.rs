use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use triage_envoy::EnvoyVersion;
use triage_plugin_guest_attrs::attributes::{guest_attribute_facts, parse_gcloud_output};
use triage_plugin_guest_attrs::instance::{
    MetadataAnswers, PATHS, instance_facts, parse_service_proxy,
};
use triage_plugin_guest_attrs::version::envoy_version_number;

/// 2021-01-12T11:39:14Z
const HEARTBEAT_UNIX: i64 = 1_610_451_554;

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn real(relative: &str) -> String {
    let path = real_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn real_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/real"))
}

fn guide_minimum() -> EnvoyVersion {
    EnvoyVersion::parse(triage_envoy::GUIDE_MINIMUM).unwrap()
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_guides_table() {
    let found = parse_gcloud_output(&data("gcloud-table-proxy-version.txt")).unwrap();
    assert_eq!(found.len(), 1);
    let facts = guest_attribute_facts(found, HEARTBEAT_UNIX, 300, &guide_minimum());
    assert_eq!(
        facts.proxy_version.as_deref(),
        Some("dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL")
    );
    assert_eq!(facts.proxy_version_number.as_deref(), Some("1.15.1"));
    assert_eq!(facts.meets_minimum, Some(true));
    assert_eq!(facts.min_version, "1.9.1");
    assert_eq!(facts.bootstrap_status, "none");
    assert!(!facts.bootstrap_finished);
    assert_eq!(facts.agent_heartbeat_stale, None);
}

#[test]
fn finished_bootstrap_with_a_fresh_heartbeat() {
    let found = parse_gcloud_output(&data("gcloud-table-finished.txt")).unwrap();
    assert_eq!(found.len(), 5);
    let facts = guest_attribute_facts(found, HEARTBEAT_UNIX + 60, 300, &guide_minimum());
    assert_eq!(facts.bootstrap_status, "FINISHED");
    assert!(facts.bootstrap_finished);
    assert_eq!(
        facts.bootstrap_last_failure, None,
        "an empty value is no failure"
    );
    assert_eq!(
        facts.agent_heartbeat.as_deref(),
        Some("2021-01-12T11:39:14.3991Z")
    );
    assert_eq!(facts.agent_heartbeat_unix, Some(HEARTBEAT_UNIX));
    assert_eq!(facts.agent_heartbeat_age_seconds, Some(60));
    assert_eq!(facts.agent_heartbeat_stale, Some(false));
    assert_eq!(
        facts.agent_last_failure.as_deref(),
        Some("Cannot reach the Traffic Director API server")
    );
    assert_eq!(facts.now, HEARTBEAT_UNIX + 60);
}

#[test]
fn stale_heartbeat_after_five_minutes() {
    let found = parse_gcloud_output(&data("gcloud-table-finished.txt")).unwrap();
    let facts = guest_attribute_facts(found.clone(), HEARTBEAT_UNIX + 301, 300, &guide_minimum());
    assert_eq!(facts.agent_heartbeat_stale, Some(true));
    let facts = guest_attribute_facts(found.clone(), HEARTBEAT_UNIX + 300, 300, &guide_minimum());
    assert_eq!(
        facts.agent_heartbeat_stale,
        Some(false),
        "exactly the limit is not stale"
    );
    let facts = guest_attribute_facts(found, HEARTBEAT_UNIX - 10, 300, &guide_minimum());
    assert_eq!(facts.agent_heartbeat_age_seconds, Some(-10));
    assert_eq!(facts.agent_heartbeat_stale, Some(false));
}

#[test]
fn json_list_in_progress_and_failed() {
    let facts = guest_attribute_facts(
        parse_gcloud_output(&data("gcloud-json-in-progress.json")).unwrap(),
        HEARTBEAT_UNIX,
        300,
        &guide_minimum(),
    );
    assert_eq!(facts.bootstrap_status, "IN PROGRESS");
    assert!(!facts.bootstrap_finished);

    let facts = guest_attribute_facts(
        parse_gcloud_output(&data("gcloud-json-failed.json")).unwrap(),
        HEARTBEAT_UNIX,
        300,
        &guide_minimum(),
    );
    assert_eq!(facts.bootstrap_status, "FAILED");
    assert!(
        facts
            .bootstrap_last_failure
            .as_deref()
            .unwrap()
            .contains("ip6_tables")
    );
    assert_eq!(facts.agent_heartbeat_unix, Some(HEARTBEAT_UNIX - 300));
    assert_eq!(facts.agent_heartbeat_stale, Some(false));
    let facts = guest_attribute_facts(
        parse_gcloud_output(&data("gcloud-json-failed.json")).unwrap(),
        HEARTBEAT_UNIX,
        299,
        &guide_minimum(),
    );
    assert_eq!(facts.agent_heartbeat_stale, Some(true));
}

#[test]
fn raw_api_shape_keeps_only_the_service_proxy_namespace() {
    let found = parse_gcloud_output(&data("api-guest-attributes-query-value.json")).unwrap();
    assert_eq!(
        found,
        attrs(&[
            ("bootstrap-status", "FINISHED"),
            (
                "proxy-version",
                "dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL"
            ),
        ])
    );
    let single =
        r#"{"variableKey": "gce-service-proxy/bootstrap-status", "variableValue": "FAILED"}"#;
    assert_eq!(
        parse_gcloud_output(single).unwrap(),
        attrs(&[("bootstrap-status", "FAILED")])
    );
}

#[test]
fn empty_output_is_no_attributes() {
    assert!(parse_gcloud_output("").unwrap().is_empty());
    assert!(parse_gcloud_output("[]").unwrap().is_empty());
    assert!(parse_gcloud_output("{}").unwrap().is_empty());
    let facts = guest_attribute_facts(BTreeMap::new(), 0, 300, &guide_minimum());
    assert_eq!(facts.bootstrap_status, "none");
    assert_eq!(facts.proxy_version_number, None);
    assert_eq!(facts.agent_heartbeat_age_seconds, None);
}

#[test]
fn unusable_output_is_an_error() {
    for bad in [
        "ERROR: (gcloud.compute.instances.get-guest-attributes) Could not fetch resource",
        "[{\"namespace\": \"gce-service-proxy\"}]",
        "[{\"key\": \"bootstrap-status\", \"value\": \"FIN",
        "\u{0}\u{1}\u{2}\u{fffd}",
        "NAMESPACE KEY VALUE\n   \n",
    ] {
        match parse_gcloud_output(bad) {
            Err(e) => assert!(!e.0.is_empty()),
            Ok(found) => assert!(found.is_empty(), "{bad:?} gave {found:?}"),
        }
    }
    assert!(parse_gcloud_output("ERROR: something").is_err());
    assert!(parse_gcloud_output("[1, 2]").is_err());
}

#[test]
fn truncated_and_binary_output_do_not_panic() {
    for name in [
        "gcloud-table-finished.txt",
        "api-guest-attributes-query-value.json",
    ] {
        let full = data(name);
        for end in 0..full.len() {
            if let Some(prefix) = full.get(..end) {
                let _ = parse_gcloud_output(prefix);
            }
        }
    }
    let binary: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let _ = parse_gcloud_output(&String::from_utf8_lossy(&binary));
    let huge = "NAMESPACE KEY VALUE\n".to_owned()
        + &"gce-service-proxy agent-heartbeat 2021-01-12T11:39:14Z\n".repeat(100_000);
    assert_eq!(parse_gcloud_output(&huge).unwrap().len(), 1);
}

#[test]
fn version_numbers_of_real_envoy_builds() {
    // The proxy-version attribute holds Envoy's build version, the same string config
    // dumps carry in bootstrap.node.(user_agent_)build_version.
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(real_dir().join("envoy-config-dump")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for marker in ["\"build_version\": \"", "\"buildVersion\": \""] {
            if let Some(at) = text.find(marker) {
                let rest = &text[at + marker.len()..];
                let build = &rest[..rest.find('"').unwrap()];
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                seen.insert(name, envoy_version_number(build));
            }
        }
    }
    let expect = |file: &str, version: &str| {
        assert_eq!(
            seen.get(file).cloned().flatten().as_deref(),
            Some(version),
            "{file}: {seen:?}"
        )
    };
    expect(
        "istio-1.6-bookinfo-productpage-authz.config_dump.json",
        "1.10.0",
    );
    expect(
        "istio-1.6-bookinfo-productpage-sidecar.config_dump.json",
        "1.12.0",
    );
    expect("istio-1.6-ingressgateway.config_dump.json", "1.12.0");
    // "0/1.7.0-dev//RELEASE": a build without a commit hash.
    expect("istio-camelcase-keys.config_dump.json", "1.7.0");
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn version_number_edge_cases() {
    assert_eq!(envoy_version_number("/usr/local/bin/envoy  version: dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL").as_deref(), Some("1.15.1"));
    assert_eq!(
        envoy_version_number("abc/1.28.0/Distribution/RELEASE/BoringSSL").as_deref(),
        Some("1.28.0")
    );
    assert_eq!(envoy_version_number("1.15"), None);
    assert_eq!(envoy_version_number("1.15.x"), None);
    assert_eq!(envoy_version_number("1.15.1a"), None);
    assert_eq!(envoy_version_number("1a.15.1"), None);
    assert_eq!(envoy_version_number("9999999999.1.1"), None);
    assert_eq!(envoy_version_number(""), None);
}

/// Runs `cut -f FIELD -d '/'` on a value, as the fixture's script does.
fn cut_field(value: &str, field: usize) -> Option<&str> {
    value.split('/').nth(field.checked_sub(1)?)
}

/// The field number of `cut -f N -d '/'` on the script line reading `path` into `variable`.
fn field_read_by(script: &str, variable: &str, path: &str) -> usize {
    let line = script
        .lines()
        .find(|l| l.starts_with(&format!("{variable}=")) && l.contains(path))
        .unwrap_or_else(|| panic!("no line sets {variable} from {path}"));
    let after = &line[line.find("cut -f ").unwrap() + "cut -f ".len()..];
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn instance_facts_agree_with_the_real_bootstrap_script() {
    // Google's customize.sh fills the TD bootstrap from the metadata server with `cut`; the
    // facts must give the same zone, network name and project number from the same answers.
    let script = real("envoy-bootstrap/td-envoy-bootstrap-customize-from-metadata.sh");
    let network_path = "instance/network-interfaces/0/network";
    assert!(PATHS.contains(&network_path));
    assert!(PATHS.contains(&"instance/zone"));
    let zone_answer = "projects/123456789012/zones/us-central1-a";
    let network_answer = "projects/123456789012/networks/td-vpc";
    let facts = instance_facts(&MetadataAnswers {
        zone: Some(zone_answer.into()),
        network: Some(network_answer.into()),
        ..Default::default()
    });
    let cut = |variable, path, answer| cut_field(answer, field_read_by(&script, variable, path));
    assert_eq!(
        facts.zone.as_deref(),
        cut("ENVOY_ZONE", "instance/zone", zone_answer)
    );
    assert_eq!(
        facts.network.as_deref(),
        cut("VPC_NETWORK_NAME", network_path, network_answer)
    );
    assert_eq!(
        facts.network_project_number.as_deref(),
        cut("CONFIG_PROJECT_NUMBER", network_path, network_answer)
    );
    assert_eq!(facts.network.as_deref(), Some("td-vpc"));
    assert_eq!(facts.zone.as_deref(), Some("us-central1-a"));
}

#[test]
fn instance_facts_of_a_service_proxy_vm() {
    let facts = instance_facts(&MetadataAnswers {
        project_id: Some("my-project".into()),
        numeric_project_id: Some("123456789012".into()),
        name: Some("td-vm-1".into()),
        zone: Some("projects/123456789012/zones/us-central1-a".into()),
        network: Some("projects/987654321098/networks/shared-vpc".into()),
        service_account_email: Some("123456789012-compute@developer.gserviceaccount.com\n".into()),
        scopes: Some(
            "https://www.googleapis.com/auth/devstorage.read_only\nhttps://www.googleapis.com/auth/logging.write\nhttps://www.googleapis.com/auth/cloud-platform\n"
                .into(),
        ),
        attribute_keys: Some("enable-guest-attributes\ngce-service-proxy\nstartup-script\n".into()),
        gce_service_proxy: Some(data("gce-service-proxy-doc-example.txt")),
        instance_enable_guest_attributes: Some("TRUE".into()),
        project_enable_guest_attributes: Some("false".into()),
    });
    assert_eq!(facts.project_number.as_deref(), Some("123456789012"));
    assert_eq!(facts.network.as_deref(), Some("shared-vpc"));
    assert_eq!(
        facts.network_project_number.as_deref(),
        Some("987654321098")
    );
    assert_eq!(
        facts.service_account.as_deref(),
        Some("123456789012-compute@developer.gserviceaccount.com")
    );
    assert_eq!(facts.scopes.len(), 3);
    assert_eq!(facts.has_cloud_platform_scope, Some(true));
    assert_eq!(
        facts.attribute_keys,
        [
            "enable-guest-attributes",
            "gce-service-proxy",
            "startup-script"
        ]
    );
    assert_eq!(
        facts.guest_attributes_enabled,
        Some(true),
        "the instance value wins"
    );
    assert!(facts.service_proxy_configured);
    assert_eq!(facts.service_proxy_json_valid, Some(false));
    assert_eq!(facts.service_proxy_network.as_deref(), Some("my-network"));
    assert_eq!(facts.proxy_port, Some(15001));
    assert_eq!(
        facts.access_log.as_deref(),
        Some("/var/log/envoy/access.log")
    );
    assert_eq!(facts.serving_ports, [80, 81]);
    assert_eq!(facts.service_proxy_api_version.as_deref(), Some("0.2"));
}

#[test]
fn instance_facts_with_nothing_known() {
    let facts = instance_facts(&MetadataAnswers::default());
    assert_eq!(facts.project_id, None);
    assert_eq!(facts.network, None);
    assert!(facts.scopes.is_empty());
    assert_eq!(
        facts.has_cloud_platform_scope, None,
        "no scope list read (404) is not a list lacking cloud-platform"
    );
    assert!(!facts.service_proxy_configured);
    assert_eq!(facts.service_proxy_json_valid, None);
    assert_eq!(facts.guest_attributes_enabled, None);
    assert!(facts.serving_ports.is_empty());
}

#[test]
fn service_proxy_attribute_from_the_gcloud_flag() {
    let spec = parse_service_proxy(&data("gce-service-proxy-gcloud-flag.json"));
    assert!(spec.json_valid);
    assert_eq!(spec.serving_ports, [80, 90, 70]);
    assert_eq!(spec.network.as_deref(), Some(""));
    assert_eq!(spec.proxy_port, None);
    assert_eq!(spec.api_version.as_deref(), Some("0.2"));
}

#[test]
fn service_proxy_attribute_junk_does_not_panic() {
    for text in [
        "",
        "{",
        "\"serving-ports\": [80, 99999, x, \"443\"",
        "\"serving-ports\": [80, 99999, x, \"443\"]",
        "\"network\":",
        "\"proxy-port\": 70000",
        "{\"service\": {\"serving-ports\": \"80\"}}",
    ] {
        let _ = parse_service_proxy(text);
    }
    let spec = parse_service_proxy("\"serving-ports\": [80, 99999, x, \"443\"]");
    assert_eq!(spec.serving_ports, [80, 443]);
    let full = data("gce-service-proxy-doc-example.txt");
    for end in 0..full.len() {
        if let Some(prefix) = full.get(..end) {
            let _ = parse_service_proxy(prefix);
        }
    }
}

#[test]
fn proxy_version_against_the_minimum() {
    let old = attrs(&[("proxy-version", "0/1.7.0-dev//RELEASE")]);
    let facts = guest_attribute_facts(old.clone(), HEARTBEAT_UNIX, 300, &guide_minimum());
    assert_eq!(facts.proxy_version_number.as_deref(), Some("1.7.0"));
    assert_eq!(facts.meets_minimum, Some(false));
    let exactly = attrs(&[("proxy-version", "abc/1.9.1/Clean/RELEASE/BoringSSL")]);
    let facts = guest_attribute_facts(exactly, HEARTBEAT_UNIX, 300, &guide_minimum());
    assert_eq!(
        facts.meets_minimum,
        Some(true),
        "the minimum itself is enough"
    );
    let lower = EnvoyVersion::parse("1.7").unwrap();
    let facts = guest_attribute_facts(old, HEARTBEAT_UNIX, 300, &lower);
    assert_eq!(
        (facts.meets_minimum, facts.min_version.as_str()),
        (Some(true), "1.7.0")
    );
    let facts = guest_attribute_facts(attrs(&[]), HEARTBEAT_UNIX, 300, &guide_minimum());
    assert_eq!(facts.meets_minimum, None, "no version, no verdict");
}

#[test]
fn bootstrap_state_reads_the_guides_values_in_any_case_and_calls_the_rest_other() {
    use triage_plugin_guest_attrs::attributes::BootstrapState;
    for (status, state) in [
        ("none", BootstrapState::NotStarted),
        ("[none]", BootstrapState::NotStarted),
        ("IN PROGRESS", BootstrapState::InProgress),
        ("In progress", BootstrapState::InProgress),
        ("IN_PROGRESS", BootstrapState::InProgress),
        ("FAILED", BootstrapState::Failed),
        ("failed ", BootstrapState::Failed),
        ("FINISHED", BootstrapState::Finished),
        ("Finished", BootstrapState::Finished),
        // Values the guide does not name are not FINISHED: Envoy is not set up.
        ("STARTING", BootstrapState::Other),
        ("INSTALLING ENVOY", BootstrapState::Other),
        ("FINISHED WITH ERRORS", BootstrapState::Other),
    ] {
        assert_eq!(BootstrapState::of(status), state, "{status:?}");
    }
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("bootstrap-status".to_owned(), "STARTING".to_owned());
    let facts = guest_attribute_facts(attributes, HEARTBEAT_UNIX, 300, &guide_minimum());
    assert_eq!(facts.bootstrap_state, BootstrapState::Other);
    assert!(!facts.bootstrap_finished);
}

#[test]
fn instance_facts_with_an_empty_scope_list() {
    // The metadata server answered, with no scope: the VM lacks cloud-platform.
    let facts = instance_facts(&MetadataAnswers {
        service_account_email: Some("td-client@p.iam.gserviceaccount.com".into()),
        scopes: Some("\n".into()),
        ..MetadataAnswers::default()
    });
    assert!(facts.scopes.is_empty());
    assert_eq!(facts.has_cloud_platform_scope, Some(false));
}
