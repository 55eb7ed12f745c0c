//! The admin `/config_dump` document.
//!
//! Dumps run to tens of megabytes, so they are deserialised straight into structs that keep
//! only what the facts need; everything else is skipped by serde without being built
//! (never a `serde_json::Value` of the dump). Each entry of `configs` is one of the
//! `envoy.admin.v{2,3}.*ConfigDump` messages; their field names do not collide, so a single
//! struct with the union of the fields we want reads all of them, whatever the `@type`.

use crate::bootstrap::{BootstrapFacts, BootstrapWire, TrafficDirectorFacts, traffic_director};
use crate::wire::{Count, MAX_INPUT_BYTES, ParseError, Str, check_input, json_error, lenient_u32};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use triage_sdk::JsonSchema;

/// Optional questions asked of the dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// A service VIP to look for in the listeners' filter chains.
    pub vip: Option<IpAddr>,
    /// The service port to go with `vip`.
    pub port: Option<u16>,
    /// Ports the workload serves; each should have an `inbound|…` filter chain.
    pub serving_ports: Option<Vec<u16>>,
    /// Return every listener with its filter chains (`listeners`); otherwise only the
    /// summaries derived from them. On a big dump the full list is most of the facts.
    pub include_listeners: bool,
}

/// Facts from a config dump.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ConfigFacts {
    /// Whether xDS delivered anything: a dynamic (active or warming) listener, cluster,
    /// route configuration or secret.
    pub has_dynamic_resources: bool,
    /// Active listeners received over xDS (LDS).
    pub dynamic_listener_count: usize,
    /// Listeners received over xDS that are still warming.
    pub warming_listener_count: usize,
    /// Listeners defined in the bootstrap.
    pub static_listener_count: usize,
    /// Active clusters received over xDS (CDS).
    pub dynamic_cluster_count: usize,
    /// Clusters received over xDS that are still warming.
    pub warming_cluster_count: usize,
    /// Clusters defined in the bootstrap.
    pub static_cluster_count: usize,
    /// Route configurations received over xDS (RDS).
    pub dynamic_route_count: usize,
    /// Route configurations defined statically (inline in a listener or the bootstrap).
    pub static_route_count: usize,
    /// Secrets received over xDS (SDS), active or warming.
    pub dynamic_secret_count: usize,
    /// Active listeners, dynamic and static, in dump order; null unless
    /// `include_listeners` was asked for (the counts and the summaries below are always
    /// there).
    pub listeners: Option<Vec<ListenerFacts>>,
    /// Listeners whose last xDS update Envoy rejected, with Envoy's reason (e.g. an access
    /// log path it could not open). Envoy ≥ 1.18 records these.
    pub listener_errors: Vec<ListenerError>,
    /// Every route configuration name: referenced by a listener (RDS or inline) or present
    /// in the routes dump. Sorted, without duplicates.
    pub route_config_names: Vec<String>,
    /// Every file access log path in the listeners and their network filters. Sorted,
    /// without duplicates.
    pub access_log_paths: Vec<String>,
    /// The node and its xDS server, from the bootstrap section.
    pub bootstrap: BootstrapFacts,
    /// Traffic Director settings from the node metadata and node id.
    pub traffic_director: TrafficDirectorFacts,
    /// The `vip` param, echoed; null when not given.
    pub vip: Option<String>,
    /// The `port` param, echoed; null when not given.
    pub port: Option<u16>,
    /// The first listener and filter chain for `vip` (and `port`): a chain whose prefix
    /// ranges contain the VIP and whose destination_port is `port` or unset, or else a
    /// listener bound to the VIP itself (on `port`). Null when none or no `vip` given.
    pub vip_listener: Option<VipMatch>,
    /// Whether `vip_listener` was found; null when no `vip` was given.
    pub vip_in_listeners: Option<bool>,
    /// Destination ports of filter chains routing to an `inbound|…` route configuration
    /// (Traffic Director's inbound interception, e.g. `inbound|default_inbound_config-80`);
    /// a chain without destination_port contributes its listener's port. Sorted, unique.
    pub inbound_listener_ports: Vec<u16>,
    /// The `serving_ports` with no port in `inbound_listener_ports`; null when no
    /// `serving_ports` were given.
    pub inbound_listener_missing_ports: Option<Vec<u16>>,
}

/// One active listener.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ListenerFacts {
    /// Listener name (static listeners may have none).
    pub name: Option<String>,
    /// Whether it came over xDS (false: from the bootstrap).
    pub dynamic: bool,
    /// Bound address (socket address, pipe path, or internal listener name).
    pub address: Option<String>,
    /// Bound port; null for pipes and internal listeners.
    pub port: Option<u16>,
    /// Filter chains, the default chain (if any) last.
    pub filter_chains: Vec<FilterChainFacts>,
    /// File access log paths of the listener and its network filters.
    pub access_log_paths: Vec<String>,
}

/// One filter chain of a listener.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct FilterChainFacts {
    /// Chain name, when set.
    pub name: Option<String>,
    /// Whether this is the listener's default_filter_chain.
    pub is_default: bool,
    /// Destination CIDRs matched, e.g. `10.7.240.20/32`.
    pub prefix_ranges: Vec<String>,
    /// Destination port matched; null means any.
    pub destination_port: Option<u16>,
    /// SNI names matched.
    pub server_names: Vec<String>,
    /// Route configurations used by the chain's filters (RDS name or inline name).
    pub route_config_names: Vec<String>,
    /// Upstream clusters named directly by the chain's network filters (`tcp_proxy`'s
    /// `cluster`), e.g. `inbound|3306||` for a TCP service such as MySQL.
    pub clusters: Vec<String>,
    /// The chain serves inbound traffic: its route configuration, its TCP cluster or stat
    /// prefix, or its name starts with `inbound|` (HTTP and TCP inbound chains alike).
    pub inbound: bool,
    /// Network filter names, in order (the `@type` when a filter has no name).
    pub filters: Vec<String>,
}

/// A listener rejected by Envoy.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct ListenerError {
    /// Listener name.
    pub name: Option<String>,
    /// Envoy's reason.
    pub details: Option<String>,
}

/// Where a VIP was found.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct VipMatch {
    /// Listener name.
    pub listener: Option<String>,
    /// Listener address.
    pub address: Option<String>,
    /// Listener port.
    pub port: Option<u16>,
    /// `prefix_range` (a filter chain's range holds the VIP), `any_address` (a `0.0.0.0/0`
    /// chain for the port: a forwarding rule on 0.0.0.0) or `listener_address` (the
    /// listener is bound to the VIP).
    pub matched_by: String,
    /// The matching filter chain (for `listener_address`, the first chain for the port).
    pub filter_chain: Option<FilterChainFacts>,
}

// ---- wire types: only the fields the facts need ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct DumpWire<'a> {
    #[serde(borrow)]
    configs: Option<Vec<ConfigEntry<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigEntry<'a> {
    bootstrap: Option<BootstrapWire>,
    #[serde(alias = "staticListeners")]
    #[serde(borrow)]
    static_listeners: Vec<ListenerHolder<'a>>,
    #[serde(alias = "dynamicListeners")]
    #[serde(borrow)]
    dynamic_listeners: Vec<DynamicListener<'a>>,
    /// Envoy < 1.13.
    #[serde(alias = "dynamicActiveListeners")]
    #[serde(borrow)]
    dynamic_active_listeners: Vec<ListenerHolder<'a>>,
    #[serde(alias = "dynamicWarmingListeners")]
    dynamic_warming_listeners: Count,
    #[serde(alias = "staticClusters")]
    static_clusters: Count,
    #[serde(alias = "dynamicActiveClusters")]
    dynamic_active_clusters: Count,
    #[serde(alias = "dynamicWarmingClusters")]
    dynamic_warming_clusters: Count,
    #[serde(alias = "staticRouteConfigs")]
    static_route_configs: Vec<RouteConfigHolder>,
    #[serde(alias = "dynamicRouteConfigs")]
    dynamic_route_configs: Vec<RouteConfigHolder>,
    #[serde(alias = "dynamicActiveSecrets")]
    dynamic_active_secrets: Count,
    #[serde(alias = "dynamicWarmingSecrets")]
    dynamic_warming_secrets: Count,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DynamicListener<'a> {
    name: Option<String>,
    #[serde(alias = "activeState")]
    #[serde(borrow)]
    active_state: Option<ListenerHolder<'a>>,
    #[serde(alias = "warmingState")]
    warming_state: Option<serde::de::IgnoredAny>,
    #[serde(alias = "errorState")]
    error_state: Option<UpdateFailure>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UpdateFailure {
    details: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListenerHolder<'a> {
    #[serde(borrow)]
    listener: Option<Listener<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RouteConfigHolder {
    #[serde(alias = "routeConfig")]
    route_config: Option<Named>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Listener<'a> {
    name: Option<String>,
    address: Option<Address>,
    #[serde(alias = "filterChains")]
    #[serde(borrow)]
    filter_chains: Vec<FilterChain<'a>>,
    #[serde(alias = "defaultFilterChain")]
    #[serde(borrow)]
    default_filter_chain: Option<FilterChain<'a>>,
    #[serde(alias = "accessLog")]
    #[serde(borrow)]
    access_log: Vec<AccessLog<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Address {
    #[serde(alias = "socketAddress")]
    socket_address: Option<SocketAddress>,
    pipe: Option<Pipe>,
    #[serde(alias = "envoyInternalAddress")]
    envoy_internal_address: Option<InternalAddress>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SocketAddress {
    address: Option<String>,
    #[serde(alias = "portValue", deserialize_with = "lenient_u32")]
    port_value: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Pipe {
    path: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InternalAddress {
    #[serde(alias = "serverListenerName")]
    server_listener_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilterChain<'a> {
    name: Option<String>,
    #[serde(alias = "filterChainMatch")]
    #[serde(borrow)]
    filter_chain_match: Option<FilterChainMatch<'a>>,
    #[serde(borrow)]
    filters: Vec<Filter<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilterChainMatch<'a> {
    #[serde(alias = "prefixRanges")]
    #[serde(borrow)]
    prefix_ranges: Vec<CidrRange<'a>>,
    #[serde(alias = "destinationPort", deserialize_with = "lenient_u32")]
    destination_port: Option<u32>,
    #[serde(alias = "serverNames")]
    server_names: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CidrRange<'a> {
    #[serde(alias = "addressPrefix")]
    #[serde(borrow)]
    address_prefix: Option<Str<'a>>,
    #[serde(alias = "prefixLen", deserialize_with = "lenient_u32")]
    prefix_len: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Filter<'a> {
    name: Option<String>,
    #[serde(alias = "typedConfig")]
    #[serde(borrow)]
    typed_config: Option<NetworkFilterConfig<'a>>,
    /// Pre-v3 untyped config (a Struct) has the same field names.
    #[serde(borrow)]
    config: Option<NetworkFilterConfig<'a>>,
}

/// The parts of a network filter's config the facts use; they are the
/// HttpConnectionManager's, but any filter with the same fields contributes.
#[derive(Deserialize, Default)]
#[serde(default)]
struct NetworkFilterConfig<'a> {
    #[serde(rename = "@type")]
    #[serde(borrow)]
    type_url: Option<Str<'a>>,
    rds: Option<Rds>,
    #[serde(alias = "routeConfig")]
    route_config: Option<Named>,
    #[serde(alias = "accessLog")]
    #[serde(borrow)]
    access_log: Vec<AccessLog<'a>>,
    /// tcp_proxy's upstream cluster.
    cluster: Option<String>,
    #[serde(alias = "statPrefix")]
    stat_prefix: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Rds {
    #[serde(alias = "routeConfigName")]
    route_config_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccessLog<'a> {
    #[serde(alias = "typedConfig")]
    #[serde(borrow)]
    typed_config: Option<FileAccessLog<'a>>,
    #[serde(borrow)]
    config: Option<FileAccessLog<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileAccessLog<'a> {
    #[serde(borrow)]
    path: Option<Str<'a>>,
}

// ---- from wire to facts ----

/// Parses a `/config_dump` body. Dumps holding only some sections (routes only, listeners
/// only, endpoints) are fine: what is missing counts as zero.
pub fn parse_config_dump(bytes: &[u8], query: &Query) -> Result<ConfigFacts, ParseError> {
    parse_config_dump_limited(bytes, query, MAX_INPUT_BYTES)
}

/// [`parse_config_dump`] with a custom size limit.
pub fn parse_config_dump_limited(
    bytes: &[u8],
    query: &Query,
    limit: usize,
) -> Result<ConfigFacts, ParseError> {
    let bytes = check_input("the config dump", bytes, limit)?;
    let wire: DumpWire =
        serde_json::from_slice(bytes).map_err(|e| json_error("the config dump", &e))?;
    let configs = wire.configs.ok_or_else(|| {
        ParseError("the config dump has no `configs` array; is this Envoy's /config_dump?".into())
    })?;
    Ok(build_facts(configs, query))
}

/// One filtered `/config_dump?resource=…` request: which repeated field of which dump it
/// asks for, so that its answer (a flat list of that field's entries) is read as that field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// `ListenersConfigDump.dynamic_listeners`.
    DynamicListeners,
    /// `ListenersConfigDump.static_listeners`.
    StaticListeners,
    /// `ClustersConfigDump.static_clusters` (counted).
    StaticClusters,
    /// `ClustersConfigDump.dynamic_active_clusters` (counted).
    ActiveClusters,
    /// `ClustersConfigDump.dynamic_warming_clusters` (counted).
    WarmingClusters,
    /// `RoutesConfigDump.static_route_configs`.
    StaticRoutes,
    /// `RoutesConfigDump.dynamic_route_configs`.
    DynamicRoutes,
    /// `SecretsConfigDump.dynamic_active_secrets` (counted).
    ActiveSecrets,
    /// `SecretsConfigDump.dynamic_warming_secrets` (counted).
    WarmingSecrets,
    /// `?mask=bootstrap`: every dump trimmed to its `bootstrap` field.
    Bootstrap,
}

/// What the answers to filtered requests made.
#[derive(Debug)]
pub enum PiecesRead {
    /// Every answer was what was asked for: the facts.
    Facts(Box<ConfigFacts>),
    /// The answer at this index is a whole dump: the Envoy ignored the filter (an older
    /// one ignores query parameters it does not know), so that answer is read as the dump.
    WholeDump(usize),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PieceWire<'a> {
    #[serde(borrow)]
    configs: Vec<ElementWire<'a>>,
}

/// One entry of a filtered answer: the union of the fields of the repeated entries the
/// pieces ask for (DynamicListener, StaticListener, Static/DynamicRouteConfig; clusters and
/// secrets are only counted), with its `@type`, which tells a filtered entry
/// (`…ListenersConfigDump.DynamicListener`) from a whole dump's (`…ListenersConfigDump`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ElementWire<'a> {
    #[serde(rename = "@type")]
    #[serde(borrow)]
    type_url: Option<Str<'a>>,
    name: Option<String>,
    #[serde(alias = "activeState")]
    #[serde(borrow)]
    active_state: Option<ListenerHolder<'a>>,
    #[serde(alias = "warmingState")]
    warming_state: Option<serde::de::IgnoredAny>,
    #[serde(alias = "errorState")]
    error_state: Option<UpdateFailure>,
    #[serde(borrow)]
    listener: Option<Listener<'a>>,
    #[serde(alias = "routeConfig")]
    route_config: Option<Named>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TypesWire<'a> {
    #[serde(borrow)]
    configs: Vec<TypeOnly<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TypeOnly<'a> {
    #[serde(rename = "@type")]
    #[serde(borrow)]
    type_url: Option<Str<'a>>,
}

/// Whether an answer to a `?resource=…` request is a whole dump instead (its entries are
/// `*ConfigDump` messages): the Envoy ignored the filter, and so will it the next ones.
pub fn is_whole_dump(bytes: &[u8]) -> bool {
    serde_json::from_slice::<TypesWire>(bytes).is_ok_and(|w| {
        w.configs.iter().any(|c| {
            c.type_url
                .as_deref()
                .is_some_and(|t| t.ends_with("ConfigDump"))
        })
    })
}

/// Reads the answers to filtered requests, each with the piece it asked for, into the
/// facts the whole dump would give for those pieces. An answer that is a whole dump
/// instead (its entries are `*ConfigDump` messages, not the field's entries) is reported,
/// never read as a piece: counted as one, it would count every resource once per request.
pub fn parse_config_pieces(
    answers: &[(Piece, &[u8])],
    query: &Query,
) -> Result<PiecesRead, ParseError> {
    let mut entries = Vec::with_capacity(answers.len());
    for (index, (piece, bytes)) in answers.iter().enumerate() {
        let bytes = check_input("a filtered config dump", bytes, MAX_INPUT_BYTES)?;
        if *piece == Piece::Bootstrap {
            // Whatever came back (the trimmed dumps, or everything from an Envoy that
            // ignored the mask), only its bootstrap is taken from this answer.
            let wire: DumpWire = serde_json::from_slice(bytes)
                .map_err(|e| json_error("the config dump's bootstrap", &e))?;
            let bootstrap = wire
                .configs
                .unwrap_or_default()
                .into_iter()
                .find_map(|c| c.bootstrap);
            entries.push(ConfigEntry {
                bootstrap,
                ..ConfigEntry::default()
            });
            continue;
        }
        let wire: PieceWire =
            serde_json::from_slice(bytes).map_err(|e| json_error("a filtered config dump", &e))?;
        let whole = wire.configs.iter().any(|e| {
            e.type_url
                .as_deref()
                .is_some_and(|t| t.ends_with("ConfigDump"))
        });
        if whole {
            return Ok(PiecesRead::WholeDump(index));
        }
        let items = wire.configs;
        let mut entry = ConfigEntry::default();
        match piece {
            Piece::DynamicListeners => {
                entry.dynamic_listeners = items
                    .into_iter()
                    .map(|e| DynamicListener {
                        name: e.name,
                        active_state: e.active_state,
                        warming_state: e.warming_state,
                        error_state: e.error_state,
                    })
                    .collect();
            }
            Piece::StaticListeners => {
                entry.static_listeners = items
                    .into_iter()
                    .map(|e| ListenerHolder {
                        listener: e.listener,
                    })
                    .collect();
            }
            Piece::StaticRoutes | Piece::DynamicRoutes => {
                let routes = items
                    .into_iter()
                    .map(|e| RouteConfigHolder {
                        route_config: e.route_config,
                    })
                    .collect();
                if *piece == Piece::StaticRoutes {
                    entry.static_route_configs = routes;
                } else {
                    entry.dynamic_route_configs = routes;
                }
            }
            Piece::StaticClusters => entry.static_clusters = Count(items.len()),
            Piece::ActiveClusters => entry.dynamic_active_clusters = Count(items.len()),
            Piece::WarmingClusters => entry.dynamic_warming_clusters = Count(items.len()),
            Piece::ActiveSecrets => entry.dynamic_active_secrets = Count(items.len()),
            Piece::WarmingSecrets => entry.dynamic_warming_secrets = Count(items.len()),
            Piece::Bootstrap => unreachable!("read above"),
        }
        entries.push(entry);
    }
    Ok(PiecesRead::Facts(Box::new(build_facts(entries, query))))
}

fn build_facts(configs: Vec<ConfigEntry<'_>>, query: &Query) -> ConfigFacts {
    let mut listeners = Vec::new();
    let mut listener_errors = Vec::new();
    let mut route_names = BTreeSet::new();
    let mut counts = Counts::default();
    let mut bootstrap: Option<BootstrapWire> = None;

    for entry in configs {
        if entry.bootstrap.is_some() && bootstrap.is_none() {
            bootstrap = entry.bootstrap;
        }
        for dynamic in entry.dynamic_listeners {
            if dynamic.warming_state.is_some() {
                counts.warming_listeners += 1;
            }
            if let Some(error) = dynamic.error_state {
                listener_errors.push(ListenerError {
                    name: dynamic.name.clone(),
                    details: error.details,
                });
            }
            // An active state counts even without its listener: a filtered request
            // (`mask=active_state.last_updated`) asks only whether there is one.
            if let Some(state) = dynamic.active_state {
                counts.dynamic_listeners += 1;
                if let Some(listener) = state.listener {
                    listeners.push(listener_facts(listener, true));
                }
            }
        }
        for holder in entry.dynamic_active_listeners {
            if let Some(listener) = holder.listener {
                counts.dynamic_listeners += 1;
                listeners.push(listener_facts(listener, true));
            }
        }
        counts.warming_listeners += entry.dynamic_warming_listeners.0;
        for holder in entry.static_listeners {
            if let Some(listener) = holder.listener {
                counts.static_listeners += 1;
                listeners.push(listener_facts(listener, false));
            }
        }
        counts.static_clusters += entry.static_clusters.0;
        counts.dynamic_clusters += entry.dynamic_active_clusters.0;
        counts.warming_clusters += entry.dynamic_warming_clusters.0;
        counts.static_routes += entry.static_route_configs.len();
        counts.dynamic_routes += entry.dynamic_route_configs.len();
        let routes = entry
            .static_route_configs
            .into_iter()
            .chain(entry.dynamic_route_configs);
        route_names.extend(routes.filter_map(|r| r.route_config?.name));
        counts.dynamic_secrets += entry.dynamic_active_secrets.0 + entry.dynamic_warming_secrets.0;
    }

    let mut access_logs = BTreeSet::new();
    let mut inbound_ports = BTreeSet::new();
    for listener in &listeners {
        insert_missing(&mut access_logs, &listener.access_log_paths);
        for chain in &listener.filter_chains {
            insert_missing(&mut route_names, &chain.route_config_names);
            if chain.inbound {
                inbound_ports.extend(chain.destination_port.or(listener.port));
            }
        }
    }

    let vip_listener = query
        .vip
        .and_then(|vip| find_vip(&listeners, vip, query.port));
    let bootstrap_facts = bootstrap
        .as_ref()
        .map(BootstrapWire::facts)
        .unwrap_or_default();
    let traffic_director = traffic_director(
        bootstrap_facts.node_id.as_deref(),
        Some(&bootstrap_facts.node_metadata),
        bootstrap_facts.xds_server.as_deref(),
    );
    let inbound_listener_ports: Vec<u16> = inbound_ports.into_iter().collect();
    ConfigFacts {
        has_dynamic_resources: counts.dynamic_listeners
            + counts.warming_listeners
            + counts.dynamic_clusters
            + counts.warming_clusters
            + counts.dynamic_routes
            + counts.dynamic_secrets
            > 0,
        dynamic_listener_count: counts.dynamic_listeners,
        warming_listener_count: counts.warming_listeners,
        static_listener_count: counts.static_listeners,
        dynamic_cluster_count: counts.dynamic_clusters,
        warming_cluster_count: counts.warming_clusters,
        static_cluster_count: counts.static_clusters,
        dynamic_route_count: counts.dynamic_routes,
        static_route_count: counts.static_routes,
        dynamic_secret_count: counts.dynamic_secrets,
        listener_errors,
        route_config_names: route_names.into_iter().collect(),
        access_log_paths: access_logs.into_iter().collect(),
        bootstrap: bootstrap_facts,
        traffic_director,
        vip: query.vip.map(|v| v.to_string()),
        port: query.port,
        vip_in_listeners: query.vip.map(|_| vip_listener.is_some()),
        vip_listener,
        inbound_listener_missing_ports: query.serving_ports.as_ref().map(|ports| {
            let mut missing: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|p| inbound_listener_ports.binary_search(p).is_err())
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        }),
        inbound_listener_ports,
        listeners: query.include_listeners.then_some(listeners),
    }
}

/// Adds the names not in the set yet; the same few names recur on thousands of listeners,
/// so cloning each only to drop the duplicate is most of the work otherwise.
fn insert_missing(set: &mut BTreeSet<String>, names: &[String]) {
    for name in names {
        if !set.contains(name) {
            set.insert(name.clone());
        }
    }
}

#[derive(Default)]
struct Counts {
    dynamic_listeners: usize,
    warming_listeners: usize,
    static_listeners: usize,
    dynamic_clusters: usize,
    warming_clusters: usize,
    static_clusters: usize,
    dynamic_routes: usize,
    static_routes: usize,
    dynamic_secrets: usize,
}

fn listener_facts(listener: Listener<'_>, dynamic: bool) -> ListenerFacts {
    let (address, port) = match listener.address {
        Some(Address {
            socket_address: Some(s),
            ..
        }) => (s.address, s.port_value.and_then(|p| u16::try_from(p).ok())),
        Some(Address { pipe: Some(p), .. }) => (p.path, None),
        Some(Address {
            envoy_internal_address: Some(i),
            ..
        }) => (i.server_listener_name, None),
        _ => (None, None),
    };
    let mut access_logs = BTreeSet::new();
    access_logs.extend(
        listener
            .access_log
            .into_iter()
            .filter_map(AccessLog::into_path),
    );
    let chains = listener.filter_chains.into_iter().map(|c| (c, false));
    let default_chain = listener.default_filter_chain.map(|c| (c, true));
    let filter_chains = chains
        .chain(default_chain)
        .map(|(chain, is_default)| chain_facts(chain, is_default, &mut access_logs))
        .collect();
    ListenerFacts {
        name: listener.name,
        dynamic,
        address,
        port,
        filter_chains,
        access_log_paths: access_logs.into_iter().collect(),
    }
}

fn chain_facts(
    chain: FilterChain<'_>,
    is_default: bool,
    access_logs: &mut BTreeSet<String>,
) -> FilterChainFacts {
    let matcher = chain.filter_chain_match.unwrap_or_default();
    let mut route_config_names = Vec::new();
    let mut clusters = Vec::new();
    let mut stat_prefixes = Vec::new();
    let mut filters = Vec::with_capacity(chain.filters.len());
    for filter in chain.filters {
        let config = filter.typed_config.or(filter.config);
        let name = filter.name.or_else(|| {
            let url = config.as_ref()?.type_url.as_deref()?;
            Some(url.rsplit('/').next().unwrap_or(url).to_owned())
        });
        filters.push(name.unwrap_or_default());
        let Some(config) = config else { continue };
        let names = [
            config.rds.and_then(|r| r.route_config_name),
            config.route_config.and_then(|r| r.name),
        ];
        for name in names.into_iter().flatten() {
            if !route_config_names.contains(&name) {
                route_config_names.push(name);
            }
        }
        if let Some(cluster) = config.cluster.filter(|c| !clusters.contains(c)) {
            clusters.push(cluster);
        }
        stat_prefixes.extend(config.stat_prefix);
        access_logs.extend(
            config
                .access_log
                .into_iter()
                .filter_map(AccessLog::into_path),
        );
    }
    let is_inbound = |n: &String| n.starts_with("inbound|");
    let inbound = route_config_names.iter().any(is_inbound)
        || clusters.iter().any(is_inbound)
        || stat_prefixes.iter().any(is_inbound)
        || chain.name.as_ref().is_some_and(is_inbound);
    FilterChainFacts {
        name: chain.name,
        is_default,
        prefix_ranges: matcher
            .prefix_ranges
            .into_iter()
            .filter_map(|r| {
                Some(format!(
                    "{}/{}",
                    &*r.address_prefix?,
                    r.prefix_len.unwrap_or(0)
                ))
            })
            .collect(),
        destination_port: matcher.destination_port.and_then(|p| u16::try_from(p).ok()),
        server_names: matcher.server_names,
        route_config_names,
        clusters,
        inbound,
        filters,
    }
}

impl AccessLog<'_> {
    /// Only file loggers have a top-level `path`; stdout, gRPC and OpenTelemetry ones do not.
    fn into_path(self) -> Option<String> {
        self.typed_config
            .or(self.config)?
            .path
            .filter(|p| !p.is_empty())
            .map(|p| p.0.into_owned())
    }
}

fn find_vip(listeners: &[ListenerFacts], vip: IpAddr, port: Option<u16>) -> Option<VipMatch> {
    let port_ok =
        |chain_port: Option<u16>| chain_port.is_none() || port.is_none() || chain_port == port;
    let by_prefix = listeners.iter().find_map(|listener| {
        let chain = listener.filter_chains.iter().find(|chain| {
            port_ok(chain.destination_port)
                && chain.prefix_ranges.iter().any(|r| cidr_contains(r, vip))
        })?;
        Some(vip_match(listener, "prefix_range", Some(chain.clone())))
    });
    // A forwarding rule on 0.0.0.0 (any address, one port) gives a chain for 0.0.0.0/0 and
    // that port: it does configure this VIP on that port. A /0 chain with no port is a
    // catch-all (passthrough), which says nothing about the service, so it never counts.
    let by_any_address = || {
        listeners.iter().find_map(|listener| {
            let chain = listener.filter_chains.iter().find(|chain| {
                chain.destination_port.is_some()
                    && port_ok(chain.destination_port)
                    && chain.prefix_ranges.iter().any(|r| is_any_address(r, vip))
            })?;
            Some(vip_match(listener, "any_address", Some(chain.clone())))
        })
    };
    by_prefix.or_else(by_any_address).or_else(|| {
        let listener = listeners.iter().find(|l| {
            l.address.as_deref().and_then(|a| a.parse::<IpAddr>().ok()) == Some(vip)
                && port_ok(l.port)
        })?;
        let chain = listener
            .filter_chains
            .iter()
            .find(|c| port_ok(c.destination_port))
            .cloned();
        Some(vip_match(listener, "listener_address", chain))
    })
}

fn vip_match(
    listener: &ListenerFacts,
    matched_by: &str,
    filter_chain: Option<FilterChainFacts>,
) -> VipMatch {
    VipMatch {
        listener: listener.name.clone(),
        address: listener.address.clone(),
        port: listener.port,
        matched_by: matched_by.to_owned(),
        filter_chain,
    }
}

/// Whether `cidr` is `0.0.0.0/0` (or `::/0`) in `ip`'s family.
fn is_any_address(cidr: &str, ip: IpAddr) -> bool {
    let Some((addr, len)) = cidr.split_once('/') else {
        return false;
    };
    len.trim() == "0"
        && addr
            .parse::<IpAddr>()
            .is_ok_and(|a| a.is_ipv4() == ip.is_ipv4())
}

/// Whether `cidr` (`addr/len`) holds `ip`. A `/0` range is ignored: it matches everything,
/// so it says nothing about whether this particular VIP was configured.
pub fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((addr, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<IpAddr>(), len.parse::<u32>()) else {
        return false;
    };
    if len == 0 {
        return false;
    }
    match (addr, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn cidr_matching() {
        assert!(cidr_contains("10.7.240.20/32", ip("10.7.240.20")));
        assert!(!cidr_contains("10.7.240.20/32", ip("10.7.240.21")));
        assert!(cidr_contains("10.0.0.0/8", ip("10.200.1.1")));
        assert!(!cidr_contains("0.0.0.0/0", ip("10.200.1.1")));
        assert!(cidr_contains("fd00::/8", ip("fd12::1")));
        assert!(!cidr_contains("10.0.0.0/8", ip("fd12::1")));
        assert!(!cidr_contains("10.0.0.0/33", ip("10.0.0.1")));
        assert!(!cidr_contains("garbage", ip("10.0.0.1")));
    }
}
