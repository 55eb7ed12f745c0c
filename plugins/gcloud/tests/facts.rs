//! The parsers on gcloud JSON in the REST shapes of Compute Engine, Service Usage, GKE and
//! Resource Manager (tests/data, written for the guide's scenarios), and on broken output.

use serde_json::Value;
use std::path::Path;
use triage_plugin_gcloud::firewall::{FirewallQuery, parse_firewall_rules};
use triage_plugin_gcloud::json::ParseError;
use triage_plugin_gcloud::{cluster, forwarding_rules, iam, instance, serial, services};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn data(name: &str) -> String {
    std::fs::read_to_string(Path::new(DATA).join(name)).unwrap()
}

#[test]
fn forwarding_rules_of_traffic_director() {
    let text = data("forwarding-rules.json");
    let facts = forwarding_rules::parse_forwarding_rules(&text, Some("td-vpc")).unwrap();
    assert_eq!(facts.count, 4);
    assert_eq!(
        facts.self_managed,
        ["td-gke-forwarding-rule", "td-vm-forwarding-rule"]
    );
    assert_eq!(facts.self_managed_networks, ["td-vpc"]);
    assert_eq!(facts.has_self_managed_rule_in_network, Some(true));
    let td = &facts.rules[0];
    assert_eq!(td.ip_address.as_deref(), Some("0.0.0.0"));
    assert_eq!(td.port_range.as_deref(), Some("80-80"));
    assert_eq!(td.target.as_deref(), Some("td-gke-proxy"));
    assert_eq!(td.region, None);
    let ilb = &facts.rules[3];
    assert_eq!(
        (ilb.network.as_deref(), ilb.region.as_deref()),
        (Some("default"), Some("us-central1"))
    );
    assert_eq!(ilb.ports, ["8080", "8443"]);
    assert_eq!(
        facts.rules[2].network, None,
        "external rules have no network"
    );

    let url =
        "https://www.googleapis.com/compute/v1/projects/td-demo-project/global/networks/default";
    let other = forwarding_rules::parse_forwarding_rules(&text, Some(url)).unwrap();
    assert_eq!(other.has_self_managed_rule_in_network, Some(false));
    let none = forwarding_rules::parse_forwarding_rules(&text, None).unwrap();
    assert_eq!(none.has_self_managed_rule_in_network, None);
    let empty = forwarding_rules::parse_forwarding_rules("[]\n", Some("td-vpc")).unwrap();
    assert_eq!(
        (empty.count, empty.has_self_managed_rule_in_network),
        (0, Some(false))
    );
    let cut = forwarding_rules::parse_forwarding_rules(&text[..text.len() / 2], None).unwrap_err();
    assert!(
        cut.0
            .starts_with("truncated JSON for a list of forwarding rules"),
        "{cut}"
    );
}

#[test]
fn traffic_director_api_enabled_or_not() {
    let with = services::parse_services(&data("services-enabled-with-td.json")).unwrap();
    assert!(with.trafficdirector_enabled);
    assert_eq!(with.count, 5);
    assert_eq!(with.project_number.as_deref(), Some("798832730858"));
    assert_eq!(with.enabled[0], "compute.googleapis.com");
    let without = services::parse_services(&data("services-enabled-without-td.json")).unwrap();
    assert!(!without.trafficdirector_enabled);
    assert_eq!(without.count, 4);
}

#[test]
fn vm_with_service_proxy_and_cloud_platform_scope() {
    let facts =
        instance::parse_instance(&data("instance-service-proxy-cloud-platform.json")).unwrap();
    assert_eq!(facts.name, "td-vm-1");
    assert!(facts.has_cloud_platform_scope);
    assert_eq!(
        facts.service_accounts[0].email,
        "798832730858-compute@developer.gserviceaccount.com"
    );
    assert_eq!(
        (facts.network.as_deref(), facts.subnetwork.as_deref()),
        (Some("td-vpc"), Some("td-vpc-us-central1"))
    );
    assert_eq!(
        (facts.zone.as_deref(), facts.machine_type.as_deref()),
        (Some("us-central1-a"), Some("e2-medium"))
    );
    assert_eq!(facts.network_ip.as_deref(), Some("10.10.0.12"));
    assert!(facts.guest_attributes_enabled, "TRUE in any case");
    assert_eq!(facts.labels["gce-service-proxy"], "on");
    assert_eq!(facts.tags, ["td-http-server"]);
    let proxy = facts.service_proxy.unwrap();
    assert!(proxy.valid_json);
    assert_eq!(proxy.network.as_deref(), Some("td-vpc"));
    assert_eq!(
        (proxy.proxy_port, proxy.serving_ports),
        (Some(15001), vec![80, 8080])
    );
    assert_eq!(proxy.tracing.as_deref(), Some("ON"));
}

#[test]
fn vm_with_default_scopes_and_the_published_broken_spec() {
    let facts =
        instance::parse_instance(&data("instance-default-scopes-broken-service-proxy.json"))
            .unwrap();
    assert!(!facts.has_cloud_platform_scope);
    assert_eq!(facts.service_accounts[0].scopes.len(), 6);
    assert!(!facts.guest_attributes_enabled);
    assert!(facts.metadata["startup-script"].starts_with("#! /bin/bash"));
    let proxy = facts.service_proxy.unwrap();
    assert!(!proxy.valid_json);
    assert!(proxy.parse_error.as_deref().unwrap().contains("expected"));
    assert_eq!(proxy.network.as_deref(), Some("my-network"));
    assert_eq!(proxy.serving_ports, [80, 81]);
}

#[test]
fn serial_console_bootstrap_failure() {
    let facts = serial::parse_serial_output(&data("serial-output-ip6tables-bootstrap-failure.txt"));
    assert_eq!(facts.line_count, 13);
    assert_eq!(facts.proxy_line_count, 6);
    assert_eq!(facts.error_count, 3, "{:#?}", facts.errors);
    assert!(facts.errors[0].contains("unable to initialize table 'nat'"));
    assert!(facts.errors[2].contains("bootstrap-status=FAILED"));
    assert!(facts.ip6tables_failed);
    // The agent's own lines, errors or not, oldest first: from the download to the failure.
    assert_eq!(facts.recent_proxy_lines.len(), 6);
    assert!(facts.recent_proxy_lines[0].contains("Downloading service proxy agent"));
    assert!(facts.recent_proxy_lines[5].contains("Bootstrap failed"));
    assert!(
        !facts
            .recent_proxy_lines
            .iter()
            .any(|l| l.contains("GCE Agent") || l.contains("apt"))
    );
    assert!(
        !facts
            .errors
            .iter()
            .any(|e| e.contains("errors=remount-ro") || e.contains("GCE Agent"))
    );
}

#[test]
fn serial_console_odd_input() {
    let empty = serial::parse_serial_output("");
    assert_eq!((empty.line_count, empty.error_count), (0, 0));
    let long = format!("envoy error {}\n", "é".repeat(5000));
    let facts = serial::parse_serial_output(&long.repeat(500));
    assert_eq!((facts.error_count, facts.errors.len()), (500, 200));
    assert!(facts.errors[0].len() <= 1000);
    // Only the last 20 proxy lines are kept, each cut like the errors.
    assert_eq!(facts.recent_proxy_lines.len(), 20);
    assert!(facts.recent_proxy_lines.iter().all(|l| l.len() <= 1000));
    let binary = String::from_utf8_lossy(&[
        0, 1, 2, 0xff, b'\n', 0x1b, b'[', b'm', b'e', b'n', b'v', b'o', b'y', b' ', b'f', b'a',
        b'i', b'l',
    ])
    .into_owned();
    let facts = serial::parse_serial_output(&binary);
    assert_eq!(facts.errors, ["[menvoy fail"]);
    assert_eq!(facts.recent_proxy_lines, ["[menvoy fail"]);
}

#[test]
fn firewall_for_the_sidecar_injector_webhook() {
    let text = data("firewall-rules.json");
    let query = FirewallQuery {
        port: Some(9443),
        source_range: Some("172.16.0.0/28"),
        network: Some("td-vpc"),
    };
    let facts = parse_firewall_rules(&text, &query).unwrap();
    assert_eq!(facts.count, 6);
    assert_eq!(
        facts.allows_tcp_port,
        Some(false),
        "the 9443 rule is disabled: {:?}",
        facts.matching_rules
    );
    let master = &facts.rules[2];
    assert_eq!(master.source_ranges, ["172.16.0.0/28"]);
    assert_eq!(master.allowed[0].ports, ["10250", "443"]);
    assert_eq!(master.target_tags, ["gke-td-cluster-5b3c9e2a-node"]);
    assert_eq!(facts.rules[0].allowed[2].protocol, "icmp");
    assert!(facts.rules[4].disabled);

    let enabled = text.replace("\"disabled\": true", "\"disabled\": false");
    let facts = parse_firewall_rules(&enabled, &query).unwrap();
    assert_eq!(
        (facts.allows_tcp_port, facts.matching_rules.as_slice()),
        (
            Some(true),
            &["allow-master-to-sidecar-injector".to_string()][..]
        )
    );

    let from_vms = FirewallQuery {
        port: Some(9443),
        source_range: Some("10.10.0.5"),
        network: Some("td-vpc"),
    };
    let facts = parse_firewall_rules(&text, &from_vms).unwrap();
    assert_eq!(
        facts.matching_rules,
        ["gke-td-cluster-5b3c9e2a-vms"],
        "1-65535 covers 9443"
    );

    let health_checks = FirewallQuery {
        port: Some(80),
        source_range: Some("35.191.0.0/16"),
        network: None,
    };
    let facts = parse_firewall_rules(&text, &health_checks).unwrap();
    assert_eq!(
        facts.matching_rules,
        ["allow-td-health-checks"],
        "tcp without ports is every port"
    );

    let no_port = parse_firewall_rules(&text, &FirewallQuery::default()).unwrap();
    assert_eq!(
        (no_port.allows_tcp_port, no_port.matching_rules.len()),
        (None, 0)
    );
}

#[test]
fn private_gke_cluster() {
    let facts = cluster::parse_cluster(&data("cluster-private.json")).unwrap();
    assert!(facts.private);
    assert!(!facts.private_endpoint);
    assert_eq!(facts.master_ipv4_cidr.as_deref(), Some("172.16.0.0/28"));
    assert_eq!(facts.private_endpoint_ip.as_deref(), Some("172.16.0.2"));
    assert_eq!(
        (facts.network.as_deref(), facts.subnetwork.as_deref()),
        (Some("td-vpc"), Some("td-vpc-us-central1"))
    );
    assert_eq!(facts.node_pools, ["default-pool"]);
    assert_eq!(facts.master_version.as_deref(), Some("1.15.9-gke.22"));

    let mut public: Value = serde_json::from_str(&data("cluster-private.json")).unwrap();
    public
        .as_object_mut()
        .unwrap()
        .remove("privateClusterConfig");
    public.as_object_mut().unwrap().remove("network");
    let facts = cluster::parse_cluster(&public.to_string()).unwrap();
    assert!(!facts.private);
    assert_eq!(facts.master_ipv4_cidr, None);
    assert_eq!(
        facts.network.as_deref(),
        Some("td-vpc"),
        "from networkConfig"
    );
}

#[test]
fn iam_roles_for_traffic_director() {
    let text = data("iam-policy.json");
    let facts = iam::parse_iam_policy(
        &text,
        Some("serviceAccount:td-client@td-demo-project.iam.gserviceaccount.com"),
    )
    .unwrap();
    assert_eq!(facts.has_td_client_role, Some(true));
    assert_eq!(
        facts.member_roles.as_deref(),
        Some(&["roles/trafficdirector.client".to_string()][..])
    );
    assert_eq!(
        facts.members_with_td_client_role,
        ["serviceAccount:td-client@td-demo-project.iam.gserviceaccount.com"]
    );

    let compute_sa = "798832730858-compute@developer.gserviceaccount.com";
    let facts = iam::parse_iam_policy(&text, Some(compute_sa)).unwrap();
    assert_eq!(
        facts.has_td_client_role,
        Some(false),
        "its networkViewer binding is conditional"
    );
    assert_eq!(
        facts.member_roles.unwrap(),
        ["roles/compute.networkViewer", "roles/editor"]
    );
    assert!(facts.bindings[4].conditional);
    assert_eq!(
        facts.roles_by_member["user:alice@example.com"],
        ["roles/owner"]
    );

    let facts = iam::parse_iam_policy(&text, None).unwrap();
    assert_eq!((facts.member_roles, facts.has_td_client_role), (None, None));
    let facts = iam::parse_iam_policy(r#"{"etag": "ACAB", "version": 1}"#, Some("user:x")).unwrap();
    assert_eq!(facts.has_td_client_role, Some(false));
}

type Parser = fn(&str) -> Result<(), ParseError>;

fn parsers() -> [(&'static str, Parser); 6] {
    [
        ("forwarding-rules", |t| {
            forwarding_rules::parse_forwarding_rules(t, Some("td-vpc")).map(drop)
        }),
        ("services", |t| services::parse_services(t).map(drop)),
        ("instance", |t| instance::parse_instance(t).map(drop)),
        ("firewall-rules", |t| {
            let query = FirewallQuery {
                port: Some(9443),
                source_range: Some("172.16.0.0/28"),
                network: None,
            };
            parse_firewall_rules(t, &query).map(drop)
        }),
        ("cluster", |t| cluster::parse_cluster(t).map(drop)),
        ("iam-policy", |t| {
            iam::parse_iam_policy(t, Some("user:x")).map(drop)
        }),
    ]
}

#[test]
fn empty_binary_truncated_and_wrong_output_are_clear_errors() {
    let binary = String::from_utf8_lossy(&[0x1f, 0x8b, 8, 0, 0xff, 0xfe, 0, 0x13]).into_owned();
    for (name, parse) in parsers() {
        for (input, expect) in [
            ("", "empty output"),
            ("\n\n", "empty output"),
            (binary.as_str(), "starts with"),
            (
                "ERROR: (gcloud.compute.instances.describe) Could not fetch resource",
                "starts with",
            ),
            ("Listed 0 items.", "starts with"),
            ("[{\"name\": \"x\", ", "JSON for"),
            ("{\"name\": ", "JSON for"),
            ("42", "starts with"),
        ] {
            let err = parse(input).expect_err(name);
            assert!(err.0.contains(expect), "{name} on {input:?}: {err}");
            assert!(
                err.0.contains("gcloud --format=json") || !expect.contains("empty"),
                "{err}"
            );
        }
    }
}

#[test]
fn wrong_shape_is_an_error_not_a_panic() {
    for (name, parse) in parsers() {
        for input in [
            "[1, 2]",
            "{\"bindings\": 3}",
            "[{\"allowed\": \"tcp\"}]",
            "{\"metadata\": []}",
            "[[[]]]",
            "{}",
            "[]",
        ] {
            let _ = parse(input);
        }
        assert!(
            parse(&"[".repeat(100_000)).is_err(),
            "{name} on deep nesting"
        );
    }
}

#[test]
fn every_truncation_is_handled() {
    for file in [
        "forwarding-rules.json",
        "instance-service-proxy-cloud-platform.json",
        "firewall-rules.json",
        "cluster-private.json",
        "iam-policy.json",
    ] {
        let text = data(file);
        for (_, parse) in parsers() {
            for cut in (0..text.len())
                .step_by(5)
                .filter(|c| text.is_char_boundary(*c))
            {
                let _ = parse(&text[..cut]);
            }
        }
    }
}

#[test]
fn enormous_lists_parse() {
    let rules: Vec<Value> = serde_json::from_str(&data("firewall-rules.json")).unwrap();
    let many: Vec<&Value> = rules.iter().cycle().take(60_000).collect();
    let text = serde_json::to_string(&many).unwrap();
    assert!(text.len() > 20_000_000);
    let query = FirewallQuery {
        port: Some(9443),
        source_range: Some("172.16.0.0/28"),
        network: Some("td-vpc"),
    };
    let facts = parse_firewall_rules(&text, &query).unwrap();
    assert_eq!((facts.count, facts.allows_tcp_port), (60_000, Some(false)));
}

/// A grant above the project, a basic role, a group grant and a conditional one: each is
/// told apart so that no runbook calls a covered service account unauthorised.
#[test]
fn iam_access_through_ancestors_basic_roles_and_groups() {
    let project = data("iam-policy.json");
    let sa = "serviceAccount:td-vm@td-demo-project.iam.gserviceaccount.com";
    let ancestors = format!(
        r#"[{{"id": "td-demo-project", "type": "project", "policy": {project}}},
            {{"id": "283764012345", "type": "folder", "policy": {{"bindings": [
                {{"role": "roles/trafficdirector.client", "members": ["{sa}"]}},
                {{"role": "roles/trafficdirector.client", "members": ["group:mesh@example.com"]}}]}}}},
            {{"id": "433637338589", "type": "organization", "policy": {{"etag": "x"}}}}]"#
    );
    let facts = iam::parse_ancestors_iam_policy(&ancestors, Some(sa)).unwrap();
    assert_eq!(facts.has_td_access, Some(true));
    assert_eq!(
        facts.td_access_grants,
        ["roles/trafficdirector.client on folder 283764012345"]
    );
    assert_eq!(
        facts.policies_read,
        [
            "project td-demo-project",
            "folder 283764012345",
            "organization 433637338589"
        ]
    );
    assert_eq!(
        facts.td_access_via_groups,
        ["group:mesh@example.com: roles/trafficdirector.client on folder 283764012345"]
    );
    assert_eq!(facts.td_access_groups, ["mesh@example.com"]);

    // The project's own policy alone: no grant by name, so no access seen.
    let facts = iam::parse_iam_policy(&project, Some(sa)).unwrap();
    assert_eq!(facts.has_td_access, Some(false));
    assert!(facts.td_access_via_groups.is_empty());

    // roles/editor by name covers it; a conditional networkViewer is only conditional.
    let compute_sa = "798832730858-compute@developer.gserviceaccount.com";
    let facts = iam::parse_iam_policy(&project, Some(compute_sa)).unwrap();
    assert_eq!(facts.has_td_client_role, Some(false));
    assert_eq!(facts.has_td_access, Some(true));
    assert_eq!(facts.td_access_grants, ["roles/editor on project"]);
    assert_eq!(
        facts.conditional_td_access,
        ["roles/compute.networkViewer on project"]
    );

    assert!(
        iam::parse_ancestors_iam_policy("{}", Some(sa)).is_err(),
        "not a list"
    );
}
