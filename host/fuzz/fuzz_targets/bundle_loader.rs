#![no_main]
//! The bundle loader on any text: the depth cap, serde, and the checks on each call (one
//! key, side files inside the bundle, recorded errors). Errors, never panics or hangs.

use libfuzzer_sys::fuzz_target;
use triage::target::bundle::BundleTarget;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = BundleTarget::parse(text, std::path::Path::new("fuzz/bundle.yaml"));
});
