//! `log`: lines for the run's log, attributed to the plugin. Always allowed, but bounded:
//! a plugin cannot fill the host's memory through its log.

use super::Call;
use serde::Serialize;

/// Log lines kept per call; past this a plugin's log is cut (and says so).
const MAX_LOG_LINES: usize = 500;
const MAX_LOG_LINE: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginLog {
    pub level: String,
    pub message: String,
}

pub fn log(call: &mut Call<'_>, level: Level, message: String) {
    let logs = &mut *call.logs;
    if logs.len() < MAX_LOG_LINES {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        logs.push(PluginLog {
            level: level.name().into(),
            message,
        });
    } else if logs.len() == MAX_LOG_LINES {
        logs.push(PluginLog {
            level: "warn".into(),
            message: "further log lines dropped".into(),
        });
    }
}
