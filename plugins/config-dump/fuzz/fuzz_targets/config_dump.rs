#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_plugin_config_dump::{Query, parse_config_dump};

fuzz_target!(|data: &[u8]| {
    let query = Query {
        vip: "10.0.0.1".parse().ok(),
        port: Some(80),
        serving_ports: Some(vec![80, 8080]),
        include_listeners: true,
    };
    let _ = parse_config_dump(data, &query);
});
