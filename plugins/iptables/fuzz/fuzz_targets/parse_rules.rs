#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_plugin_iptables::{Query, parse_rules};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The probes (VIP, proxy uid, serving ports) drive the evaluator as well as the parser.
    let query = Query {
        table: "nat".into(),
        vip: Some("10.0.0.1".parse().expect("constant address")),
        port: Some(80),
        proxy_uid: Some(1337),
        serving_ports: vec![80, 3306],
        ..Query::default()
    };
    let _ = parse_rules(&text, &query);
});
