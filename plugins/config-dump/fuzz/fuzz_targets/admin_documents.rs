#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_plugin_config_dump::{
    EnvoyVersion, parse_bootstrap_file, parse_clusters, parse_csds_nodes, parse_server_info,
};

fuzz_target!(|data: &[u8]| {
    let min = EnvoyVersion { major: 1, minor: 9, patch: 1 };
    let _ = parse_server_info(data, &min);
    let _ = parse_clusters(data, 99.0);
    let _ = parse_bootstrap_file(data);
    let _ = parse_csds_nodes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = EnvoyVersion::parse(text);
    }
});
