//! `log`: lines for the run's log, attributed to the plugin. Always allowed, but bounded.

use crate::runtime::bindings::wit_host::LogLevel;
use crate::runtime::sandbox::CallState;

pub fn log(state: &mut CallState, level: LogLevel, message: String) {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    state.push_log(level, message);
}
