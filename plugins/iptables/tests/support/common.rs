//! Helpers shared by the test binaries.

#![allow(dead_code)]

use std::path::PathBuf;
use triage_plugin_iptables::{Query, RulesFacts, parse_rules};

pub fn real_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/real/iptables"
    ))
}

pub fn real(name: &str) -> String {
    let path = real_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn data(name: &str) -> String {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn real_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(real_dir())
        .expect("fixtures/real/iptables")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&p).expect("fixture is UTF-8");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

pub fn nat() -> Query {
    Query {
        table: "nat".into(),
        ..Query::default()
    }
}

pub fn facts(text: &str, query: &Query) -> RulesFacts {
    parse_rules(text, query).expect("parses")
}
