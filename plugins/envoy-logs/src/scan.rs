//! Finds the Envoy log lines the Traffic Director troubleshooting guide names.
//!
//! Envoy writes one header per log entry, `[2021-01-12 11:39:14.399][12][warning][config]
//! [source/...] message` (Istio-based sidecars: `2021-01-12T11:39:14.399Z<TAB>warning<TAB>...`), but a message may itself hold newlines (a rejected listener
//! update lists one listener per line), and copies from Cloud Logging or the guide wrap
//! long messages onto indented lines. So lines are first grouped into entries and every
//! entry is matched with its whitespace collapsed.

use std::collections::BTreeMap;

use serde::Serialize;
use triage_sdk::JsonSchema;

/// A message with newlines rarely spans more lines than this; past it a new entry starts
/// so that one header cannot swallow a whole file of header-less lines.
const MAX_ENTRY_LINES: usize = 32;
/// A pathological line (binary junk, a megabyte of JSON) is matched, but only this much of it.
const MAX_ENTRY_BYTES: usize = 64 * 1024;
const SAMPLE_CHARS: usize = 500;
/// Distinct values kept per list fact; a log repeating one error with ever-new values
/// should not grow the facts without bound.
const MAX_VALUES: usize = 32;

/// Stable ids of the error kinds this scanner knows.
pub mod kind {
    /// "Traffic Director configuration was not found" (optionally naming network and project).
    pub const TD_CONFIG_NOT_FOUND: &str = "td-config-not-found";
    /// "Requested entity was not found."
    pub const TD_ENTITY_NOT_FOUND: &str = "td-entity-not-found";
    /// A listener rejected because its access log file cannot be opened.
    pub const ACCESS_LOG_PERMISSION_DENIED: &str = "access-log-permission-denied";
    /// Any "gRPC config stream closed: CODE, message".
    pub const XDS_STREAM_CLOSED: &str = "xds-stream-closed";
    /// The same with gRPC code 14 (UNAVAILABLE): the proxy cannot reach the control plane.
    pub const XDS_STREAM_UNAVAILABLE: &str = "xds-stream-unavailable";
    /// "MySQL server has gone away": a server-first protocol broken by interception.
    pub const MYSQL_SERVER_GONE_AWAY: &str = "mysql-server-gone-away";
}

const GRPC_UNAVAILABLE: u32 = 14;

/// What a scan of one log found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LogScan {
    /// The cutoff the entries were judged against (not reported; the plugin reports it).
    #[serde(skip)]
    #[schemars(skip)]
    pub cutoff: Option<Cutoff>,
    /// Number of lines in the text scanned.
    pub line_count: u64,
    /// Number of log entries (a header line plus its continuation lines).
    pub entry_count: u64,
    /// Per error kind seen, keyed by its stable id (`td-config-not-found`,
    /// `td-entity-not-found`, `access-log-permission-denied`, `xds-stream-closed`,
    /// `xds-stream-unavailable`, `mysql-server-gone-away`). Kinds not seen are absent.
    pub matches: BTreeMap<String, KindMatch>,
    /// The kinds seen, sorted.
    pub kinds: Vec<String>,
    /// The kinds seen after the cutoff (or undated), sorted: the current errors.
    pub current_kinds: Vec<String>,
    /// The kinds seen only before the cutoff, sorted.
    pub earlier_kinds: Vec<String>,
    /// Timestamp of the first dated entry scanned, as written; null when none is dated.
    pub first_timestamp: Option<String>,
}

/// When log entries stop being history: entries stamped before `at_ms` (milliseconds since
/// the Unix epoch, UTC) count as earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    pub at_ms: i64,
}

/// The entries of one error kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct KindMatch {
    /// Number of log entries of this kind.
    pub count: u64,
    /// Timestamp of the first such entry as the line wrote it: "2021-01-12 11:39:14.399"
    /// (Envoy's default format) or "2021-03-02T08:15:15.873533Z" (Istio-based sidecars); null
    /// when the entries start with no timestamp.
    pub first_timestamp: Option<String>,
    /// Timestamp of the last such entry.
    pub last_timestamp: Option<String>,
    /// The first such entry, whitespace collapsed, at most 500 characters.
    pub sample: String,
    /// VPC network names quoted by `td-config-not-found`.
    pub networks: Vec<String>,
    /// Project numbers quoted by `td-config-not-found`.
    pub projects: Vec<String>,
    /// Files Envoy could not open (`access-log-permission-denied`).
    pub paths: Vec<String>,
    /// Listeners rejected (`access-log-permission-denied`).
    pub listeners: Vec<String>,
    /// gRPC status codes of closed xDS streams (5 NOT_FOUND, 14 UNAVAILABLE, ...).
    pub codes: Vec<u32>,
    /// xDS streams involved: `StreamAggregatedResources` (ADS, config) or `StreamLoadStats` (LRS).
    pub streams: Vec<String>,
    /// Entries written after the cutoff (Envoy's current start, or the start of the window),
    /// or with no timestamp to judge: the current errors. All of them without a cutoff.
    pub current_count: u64,
    /// Timestamp of the last current entry.
    pub last_current_timestamp: Option<String>,
    /// The first current entry, as `sample` (which may be history): evidence of the
    /// current error. Null when every entry is from before the cutoff.
    pub current_sample: Option<String>,
    /// Entries written before the cutoff: history, e.g. from before Envoy's last restart.
    pub earlier_count: u64,
    /// Timestamp of the last entry before the cutoff.
    pub last_earlier_timestamp: Option<String>,
}

/// Scans log text. Never fails: text that holds no known line gives empty `matches`.
pub fn scan_log(text: &str) -> LogScan {
    scan_log_since(text, None)
}

/// Scans log text and tells current entries from those stamped before `cutoff`.
pub fn scan_log_since(text: &str, cutoff: Option<Cutoff>) -> LogScan {
    let mut scan = LogScan {
        cutoff,
        ..LogScan::default()
    };
    let mut entry = Entry::default();
    for line in text.lines() {
        scan.line_count += 1;
        if line.trim().is_empty() {
            // Envoy ends some multi-line messages with an empty line; pasted text separates
            // messages with them.
            if !entry.is_empty() && !entry.has_header {
                scan.record(&entry);
                entry.clear();
            }
            continue;
        }
        let header = envoy_header_timestamp(line);
        if !entry.is_empty() && !entry.continues_with(line, header.is_some()) {
            scan.record(&entry);
            entry.clear();
        }
        if entry.is_empty() {
            entry.timestamp = header.map(str::to_owned);
            entry.has_header = header.is_some();
        }
        entry.push(line);
    }
    if !entry.is_empty() {
        scan.record(&entry);
    }
    scan.kinds = scan.matches.keys().cloned().collect();
    scan.current_kinds = scan
        .matches
        .iter()
        .filter(|(_, m)| m.current_count > 0)
        .map(|(k, _)| k.clone())
        .collect();
    scan.earlier_kinds = scan
        .matches
        .iter()
        .filter(|(_, m)| m.current_count == 0)
        .map(|(k, _)| k.clone())
        .collect();
    scan
}

#[derive(Default)]
struct Entry {
    text: String,
    lines: usize,
    timestamp: Option<String>,
    has_header: bool,
    last_line_ends_with_colon: bool,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.lines == 0
    }

    fn clear(&mut self) {
        *self = Entry::default();
    }

    /// Envoy entries swallow every following header-less line (messages with newlines);
    /// header-less entries (pasted or re-rendered logs) only take wrapped lines: indented
    /// ones, or those after a line ending in ':'.
    fn continues_with(&self, line: &str, line_has_header: bool) -> bool {
        if line_has_header || self.lines >= MAX_ENTRY_LINES || self.text.len() >= MAX_ENTRY_BYTES {
            return false;
        }
        self.has_header || line.starts_with(char::is_whitespace) || self.last_line_ends_with_colon
    }

    fn push(&mut self, line: &str) {
        for word in line.split_whitespace() {
            if self.text.len() >= MAX_ENTRY_BYTES {
                break;
            }
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            self.text.push_str(word);
        }
        self.lines += 1;
        self.last_line_ends_with_colon = line.trim_end().ends_with(':');
    }
}

impl LogScan {
    fn record(&mut self, entry: &Entry) {
        self.entry_count += 1;
        let text = entry.text.as_str();
        let ts = entry.timestamp.as_deref();
        if self.first_timestamp.is_none() {
            self.first_timestamp = entry.timestamp.clone();
        }

        let closed = find_stream_closed(text);
        let stream = closed.as_ref().and_then(|c| c.stream);
        if let Some(closed) = closed {
            let hit = self.hit(kind::XDS_STREAM_CLOSED, text, ts);
            push_unique(&mut hit.codes, closed.code);
            if let Some(stream) = closed.stream {
                push_unique(&mut hit.streams, stream.to_owned());
            }
            if closed.code == GRPC_UNAVAILABLE {
                let hit = self.hit(kind::XDS_STREAM_UNAVAILABLE, text, ts);
                push_unique(&mut hit.codes, closed.code);
                if let Some(stream) = closed.stream {
                    push_unique(&mut hit.streams, stream.to_owned());
                }
            }
        }

        if let Some(at) = text.find("Traffic Director configuration was not found") {
            let rest = &text[at..];
            let hit = self.hit(kind::TD_CONFIG_NOT_FOUND, text, ts);
            if let Some(network) = quoted_after(rest, "for network \"") {
                push_unique(&mut hit.networks, network.to_owned());
            }
            if let Some(project) = quoted_after(rest, "in project \"") {
                push_unique(&mut hit.projects, project.to_owned());
            }
            if let Some(stream) = stream {
                push_unique(&mut hit.streams, stream.to_owned());
            }
        }

        if text.contains("Requested entity was not found") {
            let hit = self.hit(kind::TD_ENTITY_NOT_FOUND, text, ts);
            if let Some(stream) = stream {
                push_unique(&mut hit.streams, stream.to_owned());
            }
        }

        let denials = permission_denials(text);
        if !denials.is_empty() {
            let hit = self.hit(kind::ACCESS_LOG_PERMISSION_DENIED, text, ts);
            for denial in denials {
                push_unique(&mut hit.paths, denial.path.to_owned());
                if let Some(listener) = denial.listener {
                    push_unique(&mut hit.listeners, listener.to_owned());
                }
            }
        }

        if text.contains("MySQL server has gone away") {
            self.hit(kind::MYSQL_SERVER_GONE_AWAY, text, ts);
        }
    }

    fn hit(&mut self, kind: &str, text: &str, timestamp: Option<&str>) -> &mut KindMatch {
        let hit = self.matches.entry(kind.to_owned()).or_default();
        if hit.count == 0 {
            hit.sample = text.chars().take(SAMPLE_CHARS).collect();
            hit.first_timestamp = timestamp.map(str::to_owned);
        }
        if timestamp.is_some() {
            if hit.first_timestamp.is_none() {
                hit.first_timestamp = timestamp.map(str::to_owned);
            }
            hit.last_timestamp = timestamp.map(str::to_owned);
        }
        hit.count += 1;
        let earlier = match (self.cutoff, timestamp.and_then(timestamp_ms)) {
            (Some(cutoff), Some(at)) => at < cutoff.at_ms,
            // No cutoff, or an entry whose time cannot be read: it may be current, so it
            // counts as current (as every entry did before timestamps were judged).
            _ => false,
        };
        if earlier {
            hit.earlier_count += 1;
            hit.last_earlier_timestamp = timestamp.map(str::to_owned);
        } else {
            if hit.current_count == 0 {
                hit.current_sample = Some(text.chars().take(SAMPLE_CHARS).collect());
            }
            hit.current_count += 1;
            if timestamp.is_some() {
                hit.last_current_timestamp = timestamp.map(str::to_owned);
            }
        }
        hit
    }
}

/// The text to scan when only the end of a log was read. The read starts at an arbitrary
/// byte, so its first line is a piece of a line, and the lines up to the first header
/// belong to an entry whose header (and time) was not read: an undated piece would count
/// as a current error. Both are dropped. Text with no header at all (no timestamps to
/// lose) loses only its first line.
pub fn skip_cut_start(text: &str) -> &str {
    let Some((_, rest)) = text.split_once('\n') else {
        return "";
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if envoy_header_timestamp(line).is_some() {
            return &rest[offset..];
        }
        offset += line.len();
    }
    rest
}

/// Whether every entry written since `cutoff` was scanned, when the scan began at
/// `first_timestamp` (the oldest dated entry read) because the log's start was not read:
/// true when that entry is from before the cutoff. Without a cutoff every entry counts as
/// current, so a log whose start was not read was not seen whole.
pub fn covers_cutoff(first_timestamp: Option<&str>, cutoff: Option<Cutoff>) -> bool {
    match (first_timestamp.and_then(timestamp_ms), cutoff) {
        (Some(first), Some(cutoff)) => first < cutoff.at_ms,
        _ => false,
    }
}

fn push_unique<T: PartialEq>(values: &mut Vec<T>, value: T) {
    if values.len() < MAX_VALUES && !values.contains(&value) {
        values.push(value);
    }
}

/// The timestamp a log line starts with, if it starts with one:
/// - Envoy's default format, `[2021-01-12 11:39:14.399][12][warning][config] ...`;
/// - the `--log-format` of Istio-based sidecars (Traffic Director's GKE injector among them),
///   `2021-01-12T11:39:14.399Z<TAB>warning<TAB>envoy config<TAB>...`, or any line starting
///   with a date-time and whitespace.
pub fn envoy_header_timestamp(line: &str) -> Option<&str> {
    if let Some(inner) = line.strip_prefix('[') {
        let end = inner.get(..40).unwrap_or(inner).find(']')?;
        let stamp = inner.get(..end)?;
        return (date_time_len(stamp.as_bytes()) == Some(stamp.len())).then_some(stamp);
    }
    let len = date_time_len(line.as_bytes())?;
    let stamp = line.get(..len)?;
    let followed_by_space = line[len..].starts_with(char::is_whitespace);
    followed_by_space.then_some(stamp)
}

/// Milliseconds since the Unix epoch of a timestamp [`envoy_header_timestamp`] returned.
/// Envoy's default format has no zone: it is read as UTC, the clock of Compute Engine
/// images and containers; an Istio-style `Z` says UTC outright.
pub fn timestamp_ms(stamp: &str) -> Option<i64> {
    let b = stamp.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(range)?).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let millis = match b.get(19) {
        Some(b'.' | b',') => {
            let digits: String = stamp[20..]
                .chars()
                .take_while(char::is_ascii_digit)
                .chain("000".chars())
                .take(3)
                .collect();
            digits.parse().ok()?
        }
        _ => 0,
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A timestamp in Envoy's own format, for facts and messages: `2021-01-12 11:39:14.399`.
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // civil_from_days, the inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// The length of a leading `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][Z]`.
fn date_time_len(bytes: &[u8]) -> Option<usize> {
    let shape = b"dddd-dd-dd dd:dd:dd";
    let head = bytes.get(..shape.len())?;
    let shape_ok = shape.iter().zip(head).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        b' ' => *got == b' ' || *got == b'T',
        other => other == got,
    });
    if !shape_ok {
        return None;
    }
    let mut len = shape.len();
    if let Some(b'.' | b',') = bytes.get(len) {
        let digits = bytes.get(len + 1..).unwrap_or_default();
        let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        len += 1 + count;
    }
    if let Some(b'Z') = bytes.get(len) {
        len += 1;
    }
    Some(len)
}

struct StreamClosed<'a> {
    code: u32,
    stream: Option<&'a str>,
}

/// Envoy before 1.22 writes `StreamAggregatedResources gRPC config stream closed: 14, msg`;
/// later ones `... gRPC config stream to HOST closed since 32s ago: 14, msg`.
fn find_stream_closed(text: &str) -> Option<StreamClosed<'_>> {
    let at = text.find("gRPC config stream")?;
    let stream = text[..at]
        .split_whitespace()
        .next_back()
        .filter(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric()));
    let after = &text[at..];
    let closed = after.get(..200).unwrap_or(after).find("closed")?;
    let after_closed = &after[closed..];
    let colon = after_closed.get(..80).unwrap_or(after_closed).find(':')?;
    let code_text = after_closed[colon + 1..].trim_start();
    let digits = code_text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(code_text.len());
    let code = code_text[..digits].parse().ok()?;
    Some(StreamClosed { code, stream })
}

fn quoted_after<'a>(text: &'a str, opening: &str) -> Option<&'a str> {
    let start = text.find(opening)? + opening.len();
    let rest = &text[start..];
    let end = rest.find('"')?;
    Some(&rest[..end])
}

struct Denial<'a> {
    path: &'a str,
    listener: Option<&'a str>,
}

const OPEN_FAILED: &str = "unable to open file '";
const LISTENERS_PREFIX: &str = "Error adding/updating listener(s) ";

/// Each `NAME: unable to open file 'PATH': Permission denied` in an entry; the listener is
/// the word before the colon (Envoy writes one `NAME: error` per rejected listener, the
/// first after "Error adding/updating listener(s)").
fn permission_denials(text: &str) -> Vec<Denial<'_>> {
    let mut denials = Vec::new();
    let mut offset = 0;
    while let Some(found) = text[offset..].find(OPEN_FAILED) {
        let start = offset + found;
        let path_start = start + OPEN_FAILED.len();
        offset = path_start;
        let rest = &text[path_start..];
        let Some(path_end) = rest.find('\'') else {
            break;
        };
        let after_path = &rest[path_end + 1..];
        if !after_path
            .trim_start_matches([':', ' '])
            .starts_with("Permission denied")
        {
            continue;
        }
        let listener = text[..start]
            .trim_end()
            .strip_suffix(':')
            .and_then(|before| before.split_whitespace().next_back())
            .filter(|name| *name != "listener(s)")
            .or_else(|| {
                let after = &text[text.find(LISTENERS_PREFIX)? + LISTENERS_PREFIX.len()..];
                after.split([':', ' ']).next().filter(|n| !n.is_empty())
            });
        denials.push(Denial {
            path: &rest[..path_end],
            listener,
        });
        if denials.len() >= MAX_VALUES {
            break;
        }
    }
    denials
}
