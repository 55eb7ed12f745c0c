#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_plugin_envoy_logs::scan::scan_log;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let scan = scan_log(&text);
    assert_eq!(scan.line_count, text.lines().count() as u64);
    assert_eq!(scan.kinds.len(), scan.matches.len());
    for hit in scan.matches.values() {
        assert!(hit.count > 0);
        assert!(hit.sample.chars().count() <= 500);
    }
});
