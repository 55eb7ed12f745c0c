//! One runbook on one target, from opening the target to an outcome: what each target of a
//! fleet run (`triage run --targets`) and each run of `triage serve` is. Both need the same
//! things done the same way: the target opened at the start of the run (not before, so a
//! bundle re-recorded meanwhile is read whole), a deadline around the whole run, a bug in
//! triage contained to the run it happened in, and one status that says how it ended.

use crate::capability::Policy;
use crate::engine::{self, RunOptions, StepCallback};
use crate::redact::Redactor;
use crate::report::Report;
use crate::runbook::{LoadedRunbook, Severity};
use crate::runtime::Runtime;
use crate::target::Spec;
use futures::FutureExt;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a run on one target ended (defined with the reports, which carry it).
pub use crate::report::Status;

/// What a run came to.
#[derive(Debug)]
pub struct Outcome {
    pub status: Status,
    /// The report, for `ok`, `failing` and `incomplete` (except after a bug in triage).
    pub report: Option<Report>,
    /// Why there is no report, one line.
    pub error: Option<String>,
    /// From the start of the run (opening the target) to its end.
    pub duration: Duration,
}

/// One runbook on one target.
pub struct Job<'a> {
    pub loaded: &'a LoadedRunbook,
    pub runtime: &'a Runtime,
    /// The target, opened when the run starts.
    pub target: &'a Spec,
    /// The name the report gives the target; `None` keeps the target's own (its address).
    /// The server gives its configured name, so addresses stay on the server.
    pub target_label: Option<String>,
    /// Already checked against the runbook (see [`engine::inputs`]).
    pub inputs: Map<String, Value>,
    pub answers: BTreeMap<String, String>,
    pub policy: Arc<Policy>,
    /// Applied to the report and to the one line that says why there is none.
    pub redact: Arc<Redactor>,
    /// The run must end within this (opening a target does not wait on the network).
    pub deadline: Duration,
    pub fail_on: Option<Severity>,
    /// Called as each step finishes.
    pub on_step: Option<StepCallback>,
}

/// Opens the target and runs the runbook on it within the deadline.
pub async fn run(job: Job<'_>) -> Outcome {
    let started = Instant::now();
    let redact = job.redact.clone();
    // An error line can quote the target (an ssh client's stderr, a kubectl message).
    let ended = |status, report, error: Option<String>| Outcome {
        status,
        report,
        error: error.map(|mut e| {
            redact.string(&mut e, &mut Default::default());
            e
        }),
        duration: started.elapsed(),
    };
    let target = match job.target.open() {
        Ok(t) => t,
        Err(e) => return ended(Status::Unreachable, None, Some(e.to_string())),
    };
    let options = RunOptions {
        inputs: job.inputs,
        answers: job.answers,
        target,
        policy: job.policy,
        on_step: job.on_step,
        interaction: None,
        redact: job.redact,
    };
    // A panic in the engine or a plugin host function ends this run, not the fleet or the
    // server it runs in.
    let running =
        std::panic::AssertUnwindSafe(engine::run(job.loaded, job.runtime, options)).catch_unwind();
    match tokio::time::timeout(job.deadline, running).await {
        Err(_) => ended(
            Status::TimedOut,
            None,
            Some(format!(
                "ran past its deadline of {} s",
                job.deadline.as_secs_f64()
            )),
        ),
        Ok(Err(_)) => ended(
            Status::Incomplete,
            None,
            Some("internal error while running (a bug in triage)".into()),
        ),
        Ok(Ok(mut report)) => {
            if let Some(label) = job.target_label {
                report.target = label;
            }
            ended(Status::of_report(&report, job.fail_on), Some(report), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_the_serialised_ones() {
        for status in Status::ALL {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }
}
