//! Serial port output of a VM: the lines where the service proxy or Envoy bootstrap
//! reports a problem (automatic Envoy deployment logs there).

use serde::Serialize;
use triage_sdk::JsonSchema;

/// Words marking a line as about the proxy or its bootstrap.
/// The agent logs its iptables setup there too (the guide's IPv6-modules failure).
const PROXY_WORDS: [&str; 6] = [
    "service-proxy",
    "service_proxy",
    "envoy",
    "trafficdirector",
    "traffic director",
    "iptables",
];
/// Words marking a line as a problem.
const ERROR_WORDS: [&str; 11] = [
    "error",
    "fail",
    "fatal",
    "denied",
    "unable",
    "cannot",
    "can't",
    "could not",
    "exception",
    "panic",
    "timed out",
];
/// The most lines returned in `errors`, and the longest line kept (in bytes).
const MAX_ERRORS: usize = 200;
/// How many of the last proxy lines `recent_proxy_lines` keeps.
const MAX_RECENT: usize = 20;
const MAX_LINE: usize = 1000;

/// What the serial console says about the proxy.
#[derive(Serialize, JsonSchema, Debug)]
pub struct SerialFacts {
    /// Lines in the output.
    pub line_count: usize,
    /// Lines mentioning the service proxy, Envoy or Traffic Director.
    pub proxy_line_count: usize,
    /// Those of them that report an error (first 200, each cut at 1000 bytes, control
    /// characters removed).
    pub errors: Vec<String>,
    /// How many such error lines there are in all.
    pub error_count: usize,
    /// An error line mentions ip6tables (the guide: a VM created in the Cloud Console may lack
    /// IPv6 modules until rebooted).
    pub ip6tables_failed: bool,
    /// The last 20 lines mentioning the service proxy, Envoy or Traffic Director, errors or
    /// not, oldest first (cleaned as `errors` are): what the in-VM agent said last of Envoy's
    /// state and the services it discovered, which the guide points to but gives no format
    /// to judge by, so they are shown, not judged.
    pub recent_proxy_lines: Vec<String>,
}

/// Scans `gcloud compute instances get-serial-port-output INSTANCE --port 1` output.
pub fn parse_serial_output(text: &str) -> SerialFacts {
    let mut facts = SerialFacts {
        line_count: 0,
        proxy_line_count: 0,
        errors: Vec::new(),
        error_count: 0,
        ip6tables_failed: false,
        recent_proxy_lines: Vec::new(),
    };
    let mut recent = std::collections::VecDeque::with_capacity(MAX_RECENT);
    for line in text.lines() {
        facts.line_count += 1;
        let lower = line.to_lowercase();
        if !PROXY_WORDS.iter().any(|w| lower.contains(w)) {
            continue;
        }
        facts.proxy_line_count += 1;
        if recent.len() == MAX_RECENT {
            recent.pop_front();
        }
        recent.push_back(line);
        if ERROR_WORDS.iter().any(|w| lower.contains(w)) {
            facts.error_count += 1;
            facts.ip6tables_failed |= lower.contains("ip6tables");
            if facts.errors.len() < MAX_ERRORS {
                facts.errors.push(clean(line));
            }
        }
    }
    facts.recent_proxy_lines = recent.into_iter().map(clean).collect();
    facts
}

fn clean(line: &str) -> String {
    let mut out: String = line
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect();
    if out.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out.trim().to_string()
}
