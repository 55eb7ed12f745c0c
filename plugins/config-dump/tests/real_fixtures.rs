//! The parsers on every real fixture under fixtures/real, asserting facts read off
//! the files by hand, plus the hand-written Traffic Director example in tests/data.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use triage_plugin_config_dump::*;

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/real");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let path = path.as_ref();
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(format!("{REAL}/{dir}"))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    files.sort();
    files
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Parses with the listeners included, whatever the query says, so tests can look at them.
fn dump(path: impl AsRef<Path>, query: &Query) -> ConfigFacts {
    let path = path.as_ref();
    let query = Query {
        include_listeners: true,
        ..query.clone()
    };
    parse_config_dump(&read(path), &query).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn listeners(facts: &ConfigFacts) -> &[ListenerFacts] {
    facts.listeners.as_deref().unwrap_or_default()
}

fn real_dump(name: &str) -> ConfigFacts {
    dump(
        format!("{REAL}/envoy-config-dump/{name}"),
        &Query::default(),
    )
}

fn listener<'a>(facts: &'a ConfigFacts, name: &str) -> &'a ListenerFacts {
    listeners(facts)
        .iter()
        .find(|l| l.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no listener {name}"))
}

/// What each real dump holds, counted by hand (jq) from the file.
struct Expected {
    file: &'static str,
    dynamic_listeners: usize,
    static_listeners: usize,
    dynamic_clusters: usize,
    static_clusters: usize,
    dynamic_routes: usize,
    dynamic_secrets: usize,
    /// (listener name, address, port) of one listener, if the dump has listeners.
    listener: Option<(&'static str, Option<&'static str>, Option<u16>)>,
    /// One route configuration name, if any.
    route: Option<&'static str>,
    /// (node id prefix, xDS server) when the dump has a bootstrap.
    node: Option<(&'static str, Option<&'static str>)>,
}

const EXPECTED: &[Expected] = &[
    Expected {
        file: "envoy-1.37-gateway-wg-ai-gateway.config_dump.json",
        dynamic_listeners: 1,
        static_listeners: 0,
        dynamic_clusters: 1,
        static_clusters: 1,
        dynamic_routes: 0,
        dynamic_secrets: 0,
        listener: Some(("listener-80", Some("0.0.0.0"), Some(80))),
        route: Some("listener_http_routes"),
        node: Some((
            "envoy-proxy-ee37a5ff072b",
            Some("aigateway-controller.ai-gateway-system.svc.cluster.local:15001"),
        )),
    },
    Expected {
        file: "envoy-gateway-egctl-envoy-1.26.config_dump.json",
        dynamic_listeners: 1,
        static_listeners: 0,
        dynamic_clusters: 1,
        static_clusters: 1,
        dynamic_routes: 1,
        dynamic_secrets: 2,
        listener: Some(("default-eg-http", Some("0.0.0.0"), Some(10080))),
        route: Some("default-eg-http"),
        node: None,
    },
    Expected {
        file: "istio-1.6-bookinfo-productpage-authz.config_dump.json",
        dynamic_listeners: 39,
        static_listeners: 1,
        dynamic_clusters: 55,
        static_clusters: 3,
        dynamic_routes: 14,
        dynamic_secrets: 0,
        listener: Some(("10.52.2.21_9080", Some("10.52.2.21"), Some(9080))),
        route: Some("inbound|9080|http|productpage.default.svc.cluster.local"),
        node: Some((
            "sidecar~10.52.2.21~productpage-v1-5cb458d74f-56sx7",
            Some("istio-pilot.istio-system:15011"),
        )),
    },
    Expected {
        file: "istio-1.6-bookinfo-productpage-sidecar.config_dump.json",
        dynamic_listeners: 51,
        static_listeners: 1,
        dynamic_clusters: 80,
        static_clusters: 3,
        dynamic_routes: 26,
        dynamic_secrets: 0,
        listener: Some(("virtualInbound", Some("0.0.0.0"), Some(15006))),
        route: Some("reviews.default.svc.cluster.local:9080"),
        node: Some((
            "sidecar~172.30.150.216~productpage-v1-7bbd79f8fd-k6j79",
            Some("istio-pilot.istio-system:15010"),
        )),
    },
    Expected {
        file: "istio-1.6-ingressgateway.config_dump.json",
        dynamic_listeners: 2,
        static_listeners: 1,
        dynamic_clusters: 122,
        static_clusters: 3,
        dynamic_routes: 1,
        dynamic_secrets: 0,
        listener: Some(("0.0.0.0_31400", Some("0.0.0.0"), Some(31400))),
        route: Some("http.80"),
        node: Some((
            "router~172.30.229.137~istio-ingressgateway",
            Some("istio-pilot:15010"),
        )),
    },
    Expected {
        file: "istio-camelcase-keys.config_dump.json",
        dynamic_listeners: 2,
        static_listeners: 0,
        dynamic_clusters: 1,
        static_clusters: 1,
        dynamic_routes: 1,
        dynamic_secrets: 2,
        listener: Some(("172.21.134.116_443", Some("172.21.134.116"), Some(443))),
        route: Some("inbound|9080||productpage.default.svc.cluster.local"),
        node: Some((
            "sidecar~172.30.77.243~details-v1-9cb87c69-t2fdz",
            Some("istio-pilot.istio-system:15010"),
        )),
    },
    Expected {
        file: "istio-endpoints-eds.config_dump.json",
        dynamic_listeners: 0,
        static_listeners: 0,
        dynamic_clusters: 0,
        static_clusters: 0,
        dynamic_routes: 0,
        dynamic_secrets: 0,
        listener: None,
        route: None,
        node: None,
    },
    Expected {
        file: "istio-gateway-routes-only.config_dump.json",
        dynamic_listeners: 0,
        static_listeners: 0,
        dynamic_clusters: 1,
        static_clusters: 0,
        dynamic_routes: 1,
        dynamic_secrets: 0,
        listener: None,
        route: Some("http.8080"),
        node: None,
    },
    Expected {
        file: "istio-sidecar-authz-listeners.config_dump.json",
        dynamic_listeners: 27,
        static_listeners: 2,
        dynamic_clusters: 0,
        static_clusters: 0,
        dynamic_routes: 0,
        dynamic_secrets: 0,
        listener: Some(("connect_originate", None, None)),
        route: Some("httpbin-istio-waypoint.ambient.svc.cluster.local:15008"),
        node: None,
    },
    Expected {
        file: "istio-sidecar-bookinfo-clusters-listeners-routes.config_dump.json",
        dynamic_listeners: 3,
        static_listeners: 0,
        dynamic_clusters: 1,
        static_clusters: 0,
        dynamic_routes: 1,
        dynamic_secrets: 0,
        listener: Some(("connect_terminate", Some("0.0.0.0"), Some(15008))),
        route: Some("inbound-vip|9080|http|reviews-v3.default.svc.cluster.local"),
        node: None,
    },
    Expected {
        file: "istio-waypoint-1.21.config_dump.json",
        dynamic_listeners: 1,
        static_listeners: 1,
        dynamic_clusters: 1,
        static_clusters: 2,
        dynamic_routes: 0,
        dynamic_secrets: 2,
        listener: Some(("main_internal", None, None)),
        route: Some("inbound-vip|8000|http|httpbin.default.svc.cluster.local"),
        node: Some(("waypoint~192.168.252.229~httpbin-istio-waypoint", None)),
    },
    Expected {
        file: "kuma-dp-full.config_dump.json",
        dynamic_listeners: 2,
        static_listeners: 0,
        dynamic_clusters: 3,
        static_clusters: 2,
        dynamic_routes: 0,
        dynamic_secrets: 0,
        listener: Some(("inbound:127.0.0.1:10010", Some("127.0.0.1"), Some(10010))),
        route: None,
        node: Some(("default.backend-1", Some("localhost:5678"))),
    },
    Expected {
        file: "osm-bookbuyer.config_dump.json",
        dynamic_listeners: 1,
        static_listeners: 0,
        dynamic_clusters: 1,
        static_clusters: 1,
        dynamic_routes: 1,
        dynamic_secrets: 2,
        listener: Some(("outbound-listener", Some("0.0.0.0"), Some(15001))),
        route: Some("rds-outbound"),
        node: Some((
            "38cf2479-bfea-4c1e-a961-f8f8e2b2e8cb.sidecar.bookbuyer",
            Some("osm-controller.osm-system.svc.cluster.local:15128"),
        )),
    },
    Expected {
        file: "osm-bookstore-with-eds.config_dump.json",
        dynamic_listeners: 3,
        static_listeners: 3,
        dynamic_clusters: 3,
        static_clusters: 4,
        dynamic_routes: 2,
        dynamic_secrets: 3,
        listener: Some(("readiness_listener", Some("0.0.0.0"), Some(15902))),
        route: Some("rds-inbound"),
        node: Some((
            "b2d941c7-484a-4cd4-ad65-76e41b79e48a.sidecar.bookstore-v1",
            Some("osm-controller.osm-system.svc.cluster.local:15128"),
        )),
    },
    Expected {
        file: "osm-curl-egress.config_dump.json",
        dynamic_listeners: 1,
        static_listeners: 0,
        dynamic_clusters: 3,
        static_clusters: 1,
        dynamic_routes: 2,
        dynamic_secrets: 4,
        listener: Some(("outbound-listener", Some("0.0.0.0"), Some(15001))),
        route: Some("rds-egress.80"),
        node: Some((
            "79a1995c-1a05-4fba-88be-7e096963b656.sidecar.curl",
            Some("osm-controller.osm-system.svc.cluster.local:15128"),
        )),
    },
    Expected {
        file: "osm-httpbin1-permissive.config_dump.json",
        dynamic_listeners: 2,
        static_listeners: 0,
        dynamic_clusters: 2,
        static_clusters: 1,
        dynamic_routes: 2,
        dynamic_secrets: 3,
        listener: Some(("inbound-listener", Some("0.0.0.0"), Some(15003))),
        route: Some("rds-inbound.14001"),
        node: Some((
            "dff12f8b-e789-4bba-ab1a-f99808ac0667.sidecar.httpbin",
            Some("osm-controller.osm-system.svc.cluster.local:15128"),
        )),
    },
];

#[test]
fn every_real_config_dump_has_its_expected_facts() {
    let files = files_in("envoy-config-dump");
    assert_eq!(
        files.len(),
        EXPECTED.len(),
        "a fixture without expectations (or a missing one)"
    );
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = EXPECTED
            .iter()
            .find(|e| e.file == name)
            .unwrap_or_else(|| panic!("no expectations for {name}"));
        let facts = dump(&path, &Query::default());
        let counts = (
            facts.dynamic_listener_count,
            facts.static_listener_count,
            facts.dynamic_cluster_count,
            facts.static_cluster_count,
            facts.dynamic_route_count,
            facts.dynamic_secret_count,
        );
        let want = (
            expected.dynamic_listeners,
            expected.static_listeners,
            expected.dynamic_clusters,
            expected.static_clusters,
            expected.dynamic_routes,
            expected.dynamic_secrets,
        );
        assert_eq!(
            counts, want,
            "{name}: (dyn L, static L, dyn C, static C, dyn R, dyn S)"
        );
        assert_eq!(
            listeners(&facts).len(),
            expected.dynamic_listeners + expected.static_listeners,
            "{name}"
        );
        assert_eq!(
            facts.has_dynamic_resources,
            name != "istio-endpoints-eds.config_dump.json",
            "{name}"
        );
        assert_eq!(facts.warming_listener_count, 0, "{name}");
        if let Some((listener_name, address, port)) = expected.listener {
            let l = listener(&facts, listener_name);
            assert_eq!(
                (l.address.as_deref(), l.port),
                (address, port),
                "{name}: {listener_name}"
            );
        }
        if let Some(route) = expected.route {
            assert!(
                facts.route_config_names.iter().any(|r| r == route),
                "{name}: route {route} missing"
            );
        }
        match expected.node {
            Some((node_prefix, xds)) => {
                assert!(facts.bootstrap.present, "{name}");
                let id = facts.bootstrap.node_id.as_deref().unwrap_or_default();
                assert!(id.starts_with(node_prefix), "{name}: node id {id}");
                assert_eq!(facts.bootstrap.xds_server.as_deref(), xds, "{name}");
            }
            None if name.starts_with("envoy-gateway-egctl") => {
                // Its bootstrap has a node without an id.
                assert!(facts.bootstrap.present && facts.bootstrap.node_id.is_none());
                assert_eq!(
                    facts.bootstrap.xds_server.as_deref(),
                    Some("envoy-gateway:18000")
                );
            }
            None => assert!(!facts.bootstrap.present, "{name}"),
        }
        assert!(
            !facts.traffic_director.detected,
            "{name} is not a Traffic Director dump"
        );
    }
}

#[test]
fn istio_inbound_ports_and_access_logs() {
    let sidecar = real_dump("istio-1.6-bookinfo-productpage-sidecar.config_dump.json");
    // 9080 by its inbound| HTTP route, 15020 by its tcp_proxy to an inbound| cluster.
    assert_eq!(sidecar.inbound_listener_ports, vec![9080, 15020]);
    let virtual_inbound = listener(&sidecar, "virtualInbound");
    assert_eq!(virtual_inbound.filter_chains.len(), 7);
    assert!(
        virtual_inbound
            .filter_chains
            .iter()
            .any(|c| c.destination_port == Some(15020))
    );
    assert_eq!(sidecar.bootstrap.envoy_version.as_deref(), Some("1.12.0"));
    assert!(sidecar.access_log_paths.is_empty());

    let authz = real_dump("istio-1.6-bookinfo-productpage-authz.config_dump.json");
    assert_eq!(authz.access_log_paths, vec!["/dev/stdout"]);
    assert_eq!(authz.bootstrap.envoy_version.as_deref(), Some("1.10.0"));
    let static_listener = listeners(&authz)
        .iter()
        .find(|l| !l.dynamic)
        .map(|l| l.port);
    assert_eq!(static_listener, Some(Some(15090)));
    let tcp = listener(&authz, "10.0.8.160_31400");
    assert_eq!(
        tcp.filter_chains.first().map(|c| c.filters.clone()),
        Some(vec!["mixer".into(), "envoy.tcp_proxy".into()])
    );

    let ambient = real_dump("istio-sidecar-authz-listeners.config_dump.json");
    assert_eq!(ambient.inbound_listener_ports, vec![80]);
    let vi = listener(&ambient, "virtualInbound");
    assert!(
        vi.filter_chains
            .iter()
            .flat_map(|c| &c.filters)
            .any(|f| f == "envoy.filters.network.rbac")
    );
}

#[test]
fn camel_case_dump_reads_like_snake_case() {
    let facts = real_dump("istio-camelcase-keys.config_dump.json");
    let http = listener(&facts, "0.0.0.0_8080");
    assert_eq!(http.access_log_paths, vec!["/dev/stdout"]);
    assert_eq!(
        http.filter_chains
            .first()
            .map(|c| c.route_config_names.clone()),
        Some(vec!["8080".to_owned()])
    );
    assert_eq!(facts.bootstrap.node_cluster.as_deref(), Some("details"));
    assert_eq!(facts.bootstrap.xds_cluster.as_deref(), Some("xds-grpc"));
    assert_eq!(facts.bootstrap.envoy_version.as_deref(), Some("1.7.0"));
    assert_eq!(
        facts
            .bootstrap
            .node_metadata
            .get("INTERCEPTION_MODE")
            .and_then(|v| v.as_str()),
        Some("REDIRECT")
    );
}

#[test]
fn envoy_gateway_default_filter_chain_and_listener_access_log() {
    let facts = real_dump("envoy-gateway-egctl-envoy-1.26.config_dump.json");
    let l = listener(&facts, "default-eg-http");
    assert_eq!(l.filter_chains.len(), 1);
    assert!(l.filter_chains.iter().all(|c| c.is_default));
    assert_eq!(l.access_log_paths, vec!["/dev/stdout"]);
    assert_eq!(facts.bootstrap.envoy_version.as_deref(), Some("1.26.0"));
}

#[test]
fn vip_lookup_on_real_dumps() {
    // OSM routes each service VIP with a prefix-range filter chain, like Traffic Director.
    let path = format!("{REAL}/envoy-config-dump/osm-bookbuyer.config_dump.json");
    let q = Query {
        vip: Some(ip("10.0.77.207")),
        port: Some(14001),
        serving_ports: None,
        include_listeners: false,
    };
    let facts = dump(&path, &q);
    assert_eq!(facts.vip_in_listeners, Some(true));
    let m = facts
        .vip_listener
        .unwrap_or_else(|| panic!("VIP not found"));
    assert_eq!(
        (m.listener.as_deref(), m.matched_by.as_str()),
        (Some("outbound-listener"), "prefix_range")
    );
    let chain = m.filter_chain.unwrap_or_else(|| panic!("no chain"));
    assert_eq!(chain.prefix_ranges, vec!["10.0.77.207/32"]);
    assert_eq!(chain.route_config_names, vec!["rds-outbound"]);

    let wrong_port = Query {
        port: Some(80),
        ..q.clone()
    };
    assert_eq!(dump(&path, &wrong_port).vip_in_listeners, Some(false));
    assert_eq!(dump(&path, &Query::default()).vip_in_listeners, None);

    // Istio 1.6 binds one listener per service VIP and port.
    let path =
        format!("{REAL}/envoy-config-dump/istio-1.6-bookinfo-productpage-authz.config_dump.json");
    let q = Query {
        vip: Some(ip("10.0.0.1")),
        port: Some(443),
        serving_ports: Some(vec![9080, 8080]),
        include_listeners: false,
    };
    let facts = dump(&path, &q);
    let m = facts
        .vip_listener
        .unwrap_or_else(|| panic!("VIP not found"));
    assert_eq!(
        (m.listener.as_deref(), m.matched_by.as_str()),
        (Some("10.0.0.1_443"), "listener_address")
    );
    assert_eq!(facts.inbound_listener_missing_ports, Some(vec![8080]));
}

/// The guide's service: VIP 10.7.240.20 on port 80, serving 80 and 8080.
fn guide_query() -> Query {
    Query {
        vip: Some(ip("10.7.240.20")),
        port: Some(80),
        serving_ports: Some(vec![80, 8080]),
        include_listeners: false,
    }
}

#[test]
fn traffic_director_example_from_the_guide() {
    let path = format!("{DATA}/td-guide-example.config_dump.json");
    let q = guide_query();
    let facts = dump(&path, &q);
    assert_eq!(
        (
            facts.dynamic_listener_count,
            facts.dynamic_cluster_count,
            facts.dynamic_route_count
        ),
        (1, 2, 2)
    );
    assert!(facts.has_dynamic_resources);
    let m = facts
        .vip_listener
        .clone()
        .unwrap_or_else(|| panic!("VIP not found"));
    assert_eq!(
        m.listener.as_deref(),
        Some("TRAFFICDIRECTOR_INTERCEPTION_PORT")
    );
    let chain = m.filter_chain.unwrap_or_else(|| panic!("no chain"));
    assert_eq!(chain.prefix_ranges, vec!["10.7.240.20/32"]);
    assert_eq!(chain.destination_port, Some(80));
    assert_eq!(
        chain.route_config_names,
        vec!["URL_MAP/PROJECT_NUMBER.td-routing-rule-1"]
    );
    assert_eq!(facts.inbound_listener_ports, vec![80]);
    assert_eq!(facts.inbound_listener_missing_ports, Some(vec![8080]));
    assert_eq!(facts.access_log_paths, vec!["/var/log/envoy.log"]);
    assert_eq!(
        facts.bootstrap.xds_server.as_deref(),
        Some("trafficdirector.googleapis.com:443")
    );
    assert_eq!(facts.bootstrap.envoy_version.as_deref(), Some("1.15.1"));
    let td = &facts.traffic_director;
    assert!(td.detected);
    assert_eq!(td.network_name.as_deref(), Some("default"));
    assert_eq!(td.project_number.as_deref(), Some("123456789012"));
    assert_eq!(td.node_id_network.as_deref(), Some("default"));
    assert_eq!(td.interception_port, Some(15001));
    assert_eq!(td.access_log_path.as_deref(), Some("/var/log/envoy.log"));
    assert_eq!(td.inbound_backend_ports, vec![80]);

    let other_vip = Query {
        vip: Some(ip("10.7.240.21")),
        port: Some(80),
        serving_ports: None,
        include_listeners: false,
    };
    assert_eq!(dump(&path, &other_vip).vip_in_listeners, Some(false));
    let other_port = Query {
        vip: Some(ip("10.7.240.20")),
        port: Some(8080),
        serving_ports: None,
        include_listeners: false,
    };
    assert_eq!(dump(&path, &other_port).vip_in_listeners, Some(false));
    let any_port = Query {
        vip: Some(ip("10.0.0.1")),
        port: None,
        serving_ports: None,
        include_listeners: false,
    };
    let inbound = dump(&path, &any_port)
        .vip_listener
        .and_then(|m| m.filter_chain);
    assert_eq!(
        inbound.map(|c| c.route_config_names),
        Some(vec!["inbound|default_inbound_config-80".to_owned()])
    );
}

#[test]
fn listeners_only_on_request() {
    let path = format!("{DATA}/td-guide-example.config_dump.json");
    let q = guide_query();
    let without = parse_config_dump(&read(&path), &q).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(without.listeners, None);
    // Everything else is the same as with the list.
    let mut with = dump(&path, &q);
    assert_eq!(with.listeners.as_ref().map(Vec::len), Some(1));
    with.listeners = None;
    assert_eq!(with, without);
    assert!(without.vip_listener.is_some());
}

#[test]
fn clusters_camel_case_real_fixture() {
    let facts = parse_clusters(
        &read(format!(
            "{REAL}/envoy-admin/istio-sidecar-clusters-format-json-camelcase.json"
        )),
        99.0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(facts.cluster_count, 7);
    // The file mixes key styles: the last cluster uses snake_case host_statuses.
    assert_eq!(
        (
            facts.host_count,
            facts.healthy_host_count,
            facts.unhealthy_host_count
        ),
        (9, 7, 2)
    );
    assert_eq!(
        facts.mostly_unhealthy,
        vec!["outbound|15014||istio-policy.istio-system.svc.cluster.local"]
    );
    let reviews = facts
        .clusters
        .iter()
        .find(|c| c.name == "outbound|9080||reviews.default.svc.cluster.local")
        .unwrap_or_else(|| panic!("reviews missing"));
    // One of three hosts failed the outlier check while EDS still says HEALTHY.
    assert_eq!(
        (reviews.hosts, reviews.healthy, reviews.unhealthy),
        (3, 2, 1)
    );
    assert!((reviews.unhealthy_percent - 100.0 / 3.0).abs() < 1e-9);
    assert!(reviews.added_via_api);
    let inbound = facts
        .clusters
        .iter()
        .find(|c| c.name == "inbound_9092")
        .map(|c| (c.hosts, c.healthy));
    assert_eq!(inbound, Some((1, 1)));

    let lower = parse_clusters(
        &read(format!(
            "{REAL}/envoy-admin/istio-sidecar-clusters-format-json-camelcase.json"
        )),
        30.0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lower.mostly_unhealthy.len(), 2);
}

#[test]
fn clusters_istioctl_bare_list() {
    // Named .txt upstream, but it is istioctl's JSON list of cluster statuses.
    let facts = parse_clusters(
        &read(format!(
            "{REAL}/envoy-admin/istioctl-proxy-config-endpoints-output.txt"
        )),
        99.0,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(facts.cluster_count, 7);
    assert_eq!((facts.host_count, facts.unhealthy_host_count), (9, 2));
    let inbound = facts
        .clusters
        .iter()
        .find(|c| c.name == "inbound_9092")
        .map(|c| (c.hosts, c.healthy));
    assert_eq!(inbound, Some((1, 1)));
    assert_eq!(
        facts.mostly_unhealthy,
        vec!["outbound|15014||istio-policy.istio-system.svc.cluster.local"]
    );
}

#[test]
fn clusters_snake_case_every_health_case() {
    let facts = parse_clusters(&read(format!("{DATA}/clusters-snake-case.json")), 99.0)
        .unwrap_or_else(|e| panic!("{e}"));
    let by_name = |n: &str| {
        facts
            .clusters
            .iter()
            .find(|c| c.name.ends_with(n))
            .map(|c| (c.hosts, c.healthy, c.unhealthy, c.degraded))
    };
    assert_eq!(by_name("6873012345678901234"), Some((4, 1, 2, 1)));
    assert_eq!(by_name("1234567890123456789"), Some((2, 0, 2, 0)));
    assert_eq!(by_name("xds-grpc-empty"), Some((0, 0, 0, 0)));
    assert_eq!(by_name("local-unknown"), Some((1, 1, 0, 0)));
    assert_eq!(
        facts.mostly_unhealthy,
        vec!["cloud-internal-istio:cloud_mp_123456789012_1234567890123456789"]
    );
    assert_eq!(facts.degraded_host_count, 1);
}

#[test]
fn server_info_json_and_legacy_text() {
    let min = EnvoyVersion::parse("1.9.1").unwrap_or_else(|| panic!("min"));
    let info = parse_server_info(&read(format!("{DATA}/server-info-1.15.json")), &min)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.version_number.as_deref(), Some("1.15.1"));
    assert_eq!(
        (info.major, info.minor, info.patch),
        (Some(1), Some(15), Some(1))
    );
    assert_eq!(info.state.as_deref(), Some("LIVE"));
    assert_eq!(info.hot_restart_version.as_deref(), Some("11.104"));
    assert_eq!(info.uptime_seconds, Some(3600));
    assert_eq!(
        info.node_id.as_deref(),
        Some("projects/123456789012/networks/default/nodes/5f4dcc3b-td-vm-1")
    );
    assert_eq!(info.node_cluster.as_deref(), Some("cluster"));
    assert_eq!(info.meets_minimum, Some(true));

    let newer = EnvoyVersion::parse("1.16").unwrap_or_else(|| panic!("min"));
    let info = parse_server_info(&read(format!("{DATA}/server-info-1.15.json")), &newer)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (info.meets_minimum, info.min_version.as_str()),
        (Some(false), "1.16.0")
    );

    let legacy = parse_server_info(&read(format!("{DATA}/server-info-legacy-1.7.txt")), &min)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(legacy.version_number.as_deref(), Some("1.7.0"));
    assert_eq!(legacy.state.as_deref(), Some("LIVE"));
    assert_eq!(legacy.uptime_seconds, Some(1234));
    assert_eq!(legacy.meets_minimum, Some(false));

    let unknown = parse_server_info(br#"{"version": "custom-build", "state": 0}"#, &min)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (unknown.meets_minimum, unknown.state.as_deref()),
        (None, Some("LIVE"))
    );
    assert!(parse_server_info(b"<html>404</html>", &min).is_err());
}

#[test]
fn bootstrap_files() {
    let v3 = parse_bootstrap_file(&read(format!(
        "{REAL}/envoy-bootstrap/td-envoy-bootstrap-cloud-foundation-fabric-v3.yaml"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v3.bootstrap.xds_server.as_deref(),
        Some("trafficdirector.googleapis.com:443")
    );
    assert_eq!(
        v3.bootstrap.node_id.as_deref(),
        Some("projects/CONFIG_PROJECT_NUMBER/networks/VPC_NETWORK_NAME/nodes/ENVOY_NODE_ID")
    );
    let td = &v3.traffic_director;
    assert!(td.detected);
    // No TRAFFICDIRECTOR_NETWORK_NAME in this version: the network comes from the node id.
    assert_eq!(td.network_name.as_deref(), Some("VPC_NETWORK_NAME"));
    assert_eq!(td.project_number.as_deref(), Some("CONFIG_PROJECT_NUMBER"));
    assert_eq!(td.interception_port, Some(15001));
    assert_eq!(td.access_log_path, None);
    assert!(td.inbound_backend_ports.is_empty());

    let v2 = parse_bootstrap_file(&read(format!(
        "{REAL}/envoy-bootstrap/td-envoy-bootstrap-cloud-foundation-fabric-2020-v2-with-network-name.yaml"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v2.traffic_director.network_name.as_deref(),
        Some("_VPC_NETWORK_NAME_")
    );
    assert_eq!(
        v2.traffic_director.project_number.as_deref(),
        Some("_CONFIG_PROJECT_NUMBER_")
    );
    assert_eq!(v2.traffic_director.node_id_network, None);
    assert_eq!(
        v2.bootstrap.xds_server.as_deref(),
        Some("trafficdirector.googleapis.com:443")
    );
    assert_eq!(v2.traffic_director.metadata_keys.len(), 6);

    // The Istio templates are Go templates, not JSON: a clear error, no panic.
    for name in [
        "istio-gcp-td-envoy-bootstrap-template-2020.json.tmpl",
        "istio-gcp-td-envoy-bootstrap-template-2024.json.tmpl",
    ] {
        let err = parse_bootstrap_file(&read(format!("{REAL}/envoy-bootstrap/{name}")));
        assert!(err.is_err(), "{name}");
    }
    // The other files are not bootstraps; whatever they give, they must not panic.
    for path in files_in("envoy-bootstrap") {
        let _ = parse_bootstrap_file(&read(&path));
        let _ = parse_config_dump(&read(&path), &Query::default());
    }
}

#[test]
fn csds_nodes() {
    for name in [
        "td-csds-client-status-response-v3-fixture.json",
        "td-csds-client-status-response-v3-with-td-node-metadata-fixture.json",
    ] {
        let bytes = read(format!("{REAL}/envoy-admin/{name}"));
        let nodes = parse_csds_nodes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(nodes.len(), 1, "{name}");
        let node = &nodes[0];
        assert_eq!(node.node_id.as_deref(), Some("test_nodeid"));
        assert_eq!(
            node.traffic_director.network_name.as_deref(),
            Some("fake_network_name")
        );
        assert_eq!(
            node.traffic_director.project_number.as_deref(),
            Some("fake_project_number")
        );
        assert!(node.traffic_director.detected);
        // A CSDS response is not a config dump: an error, not a panic.
        assert!(parse_config_dump(&bytes, &Query::default()).is_err());
    }
}

#[test]
fn every_real_admin_file_parses_or_errors_cleanly() {
    let min = EnvoyVersion::parse("1.9.1").unwrap_or_else(|| panic!("min"));
    for dir in ["envoy-admin", "envoy-bootstrap", "envoy-config-dump"] {
        for path in files_in(dir) {
            let bytes = read(&path);
            let _ = parse_config_dump(&bytes, &Query::default());
            let _ = parse_clusters(&bytes, 99.0);
            let _ = parse_server_info(&bytes, &min);
            let _ = parse_bootstrap_file(&bytes);
            let _ = parse_csds_nodes(&bytes);
        }
    }
}

/// issue 10 §4 c: a TCP inbound chain (`tcp_proxy`, MySQL on 3306) counts as an inbound
/// listener, not only chains with an `inbound|` HTTP route configuration.
#[test]
fn tcp_inbound_chains_count() {
    let path = format!("{DATA}/td-guide-tcp-inbound.config_dump.json");
    let q = Query {
        serving_ports: Some(vec![80, 3306]),
        include_listeners: true,
        ..Query::default()
    };
    let facts = dump(&path, &q);
    assert_eq!(facts.inbound_listener_ports, vec![80, 3306]);
    assert_eq!(facts.inbound_listener_missing_ports, Some(vec![]));
    let tcp = facts
        .listeners
        .iter()
        .flatten()
        .flat_map(|l| &l.filter_chains)
        .find(|c| c.destination_port == Some(3306))
        .unwrap_or_else(|| panic!("no 3306 chain"));
    assert!(tcp.inbound);
    assert_eq!(tcp.clusters, vec!["inbound|default_inbound_config-3306"]);
    assert!(tcp.route_config_names.is_empty());

    // The real Istio sidecar's inbound tcp_proxy listener (15020) counts too.
    let sidecar = real_dump("istio-1.6-bookinfo-productpage-sidecar.config_dump.json");
    assert_eq!(sidecar.inbound_listener_ports, vec![9080, 15020]);
}

/// issue 10 §4 f: a forwarding rule on 0.0.0.0 gives a 0.0.0.0/0 chain for its port; any VIP
/// on that port is configured. A /0 chain without a port (a passthrough catch-all) is not.
#[test]
fn any_address_chain_for_the_port_configures_the_vip() {
    let path = format!("{DATA}/td-any-address.config_dump.json");
    let q = Query {
        vip: Some(ip("10.7.240.20")),
        port: Some(80),
        serving_ports: None,
        include_listeners: false,
    };
    let facts = dump(&path, &q);
    assert_eq!(facts.vip_in_listeners, Some(true));
    let m = facts.vip_listener.unwrap_or_else(|| panic!("no match"));
    assert_eq!(m.matched_by, "any_address");
    let other_port = Query {
        port: Some(8080),
        ..q.clone()
    };
    assert_eq!(dump(&path, &other_port).vip_in_listeners, Some(false));
    // Istio's virtualOutbound PassthroughFilterChain is 0.0.0.0/0 with no port: it says
    // nothing about the service, so a VIP with no chain of its own stays unconfigured.
    let sidecar =
        format!("{REAL}/envoy-config-dump/istio-1.6-bookinfo-productpage-sidecar.config_dump.json");
    let q = Query {
        vip: Some(ip("10.99.99.99")),
        port: Some(7777),
        serving_ports: None,
        include_listeners: false,
    };
    assert_eq!(dump(&sidecar, &q).vip_in_listeners, Some(false));
}
