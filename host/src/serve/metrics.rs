//! `GET /metrics`: the server's counters in Prometheus' text format, for whoever runs it to
//! alert on (a queue that stays full, runs that keep timing out, a bot that keeps being
//! refused). Counters start at zero with the process, as Prometheus expects; the history in
//! SQLite is the record of every run.
//!
//! Why this writes the text format by hand rather than through prometheus-client: its 0.26
//! encodes only OpenMetrics (`application/openmetrics-text`, a mandatory `# EOF`, counter
//! families named without `_total`, info metrics suffixed `_info`), while this endpoint has
//! served the Prometheus 0.0.4 text format (`text/plain; version=0.0.4`) that every scraper
//! and agent reads, with the names docs/serve.md lists. Switching would change the content
//! type and the `# TYPE` lines under existing scrape configs for the sake of a writer of
//! about sixty lines whose output a test pins line by line. Revisit when prometheus-client
//! can write the 0.0.4 format or when exemplars or native histograms are wanted; if the
//! format ever changes, the names scraped today stay and docs/serve.md says what changed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the run-time histogram: bundle replays take milliseconds, live
/// probes seconds, a hung target the whole deadline.
const BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0, 300.0];

/// The counters. Labels are given by whoever counts (the run manager knows its statuses
/// and refusals), so this module knows only Prometheus' format.
#[derive(Debug)]
pub struct Metrics {
    /// Every label of `triage_runs_ended_total` and `triage_runs_refused_total`: each
    /// series exists from the start, since a series that appears only after its first
    /// event breaks `rate()` over it.
    end_labels: Vec<&'static str>,
    refusal_labels: Vec<&'static str>,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    ended: BTreeMap<&'static str, u64>,
    refused: BTreeMap<&'static str, u64>,
    /// Runs per histogram bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    seconds_sum: f64,
    ran: u64,
}

/// What the server is doing right now, for the gauges.
pub struct Now {
    pub queued: usize,
    pub running: usize,
    pub slots: usize,
    pub queue_capacity: usize,
}

impl Metrics {
    pub fn new(end_labels: Vec<&'static str>, refusal_labels: Vec<&'static str>) -> Metrics {
        Metrics {
            end_labels,
            refusal_labels,
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A run ended with this status.
    pub fn ended(&self, status: &'static str) {
        *self.counts().ended.entry(status).or_default() += 1;
    }

    /// A run request was refused for this reason.
    pub fn refused(&self, reason: &'static str) {
        *self.counts().refused.entry(reason).or_default() += 1;
    }

    /// A run's time from its start (not its queueing) to its end.
    pub fn ran(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut counts = self.counts();
        if let Some(i) = BUCKETS.iter().position(|le| seconds <= *le) {
            counts.buckets[i] += 1;
        }
        counts.seconds_sum += seconds;
        counts.ran += 1;
    }

    pub fn render(&self, now: &Now) -> String {
        let counts = self.counts();
        let mut out = String::new();
        let name = "triage_runs_ended_total";
        header(&mut out, name, "counter", "Runs that ended, by status.");
        for &status in &self.end_labels {
            let n = counts.ended.get(status).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
        }
        let name = "triage_runs_refused_total";
        header(
            &mut out,
            name,
            "counter",
            "Run requests refused, by reason.",
        );
        for &reason in &self.refusal_labels {
            let n = counts.refused.get(reason).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
        }
        for (name, help, value) in [
            ("triage_runs_queued", "Runs waiting for a slot.", now.queued),
            ("triage_runs_running", "Runs executing now.", now.running),
            (
                "triage_run_slots",
                "Runs that may execute at once.",
                now.slots,
            ),
            (
                "triage_run_queue_capacity",
                "Runs that may wait for a slot.",
                now.queue_capacity,
            ),
        ] {
            header(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "triage_run_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Run time from start to end, queueing excluded.",
        );
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(counts.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", counts.ran);
        let _ = writeln!(out, "{name}_sum {}", counts.seconds_sum);
        let _ = writeln!(out, "{name}_count {}", counts.ran);
        let name = "triage_build_info";
        header(&mut out, name, "gauge", "The triage version serving.");
        let _ = writeln!(out, "{name}{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_a_cumulative_histogram() {
        let m = Metrics::new(
            vec!["ok", "timed-out", "interrupted"],
            vec!["queue-full", "rate-limited"],
        );
        m.ended("ok");
        m.ended("ok");
        m.ended("timed-out");
        m.refused("queue-full");
        m.ran(Duration::from_millis(20));
        m.ran(Duration::from_millis(700));
        m.ran(Duration::from_secs(900));
        let text = m.render(&Now {
            queued: 2,
            running: 1,
            slots: 4,
            queue_capacity: 64,
        });
        for line in [
            "triage_runs_ended_total{status=\"ok\"} 2",
            "triage_runs_ended_total{status=\"timed-out\"} 1",
            "triage_runs_ended_total{status=\"interrupted\"} 0",
            "triage_runs_refused_total{reason=\"queue-full\"} 1",
            "triage_runs_refused_total{reason=\"rate-limited\"} 0",
            "triage_runs_queued 2",
            "triage_run_slots 4",
            "triage_run_duration_seconds_bucket{le=\"0.05\"} 1",
            "triage_run_duration_seconds_bucket{le=\"1\"} 2",
            "triage_run_duration_seconds_bucket{le=\"300\"} 2",
            "triage_run_duration_seconds_bucket{le=\"+Inf\"} 3",
            "triage_run_duration_seconds_count 3",
            "# TYPE triage_run_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
