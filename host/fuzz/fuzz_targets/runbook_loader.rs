#![no_main]
//! The runbook loader on any text: YAML, the depth cap, the source map, serde, and every
//! check of `validate` (expressions, templates, needs, cycles, params against a schema).
//! It must answer errors, never panic or hang.

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use triage::runbook::validate::PluginCatalog;
use triage::runtime::ActionSpec;

/// One plugin `p` with one action `a` taking `{x: string, n: integer}`, so params checks run.
struct Catalog(ActionSpec);

impl PluginCatalog for Catalog {
    fn action_spec(&self, plugin: &str, action: &str) -> Result<&ActionSpec, String> {
        if (plugin, action) == ("p", "a") {
            Ok(&self.0)
        } else {
            Err(format!("unknown plugin action `{plugin}` `{action}`"))
        }
    }
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    Catalog(ActionSpec {
        name: "a".into(),
        description: "fuzz".into(),
        params_schema: serde_json::json!({
            "type": "object",
            "properties": {"x": {"type": "string"}, "n": {"type": "integer"}},
            "additionalProperties": false
        }),
        output_schema: serde_json::json!({"type": "object"}),
        capabilities: Vec::new(),
    })
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = triage::runbook::load_str(text, "fuzz/runbook.yaml", &*CATALOG);
});
