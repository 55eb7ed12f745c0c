//! `--record DIR` for `run`, `guide` and `probe`: a recorder in front of the target, and the
//! bundle it writes when the run ends.

use super::{Failure, OrExit};
use crate::redact::Redactor;
use crate::target::{Target, record::RecordingTarget};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;

pub type Recorder = Arc<RecordingTarget>;

/// The target to run on: `base`, or with `--record DIR` a recorder in front of it (after
/// checking DIR may take a new bundle) that redacts what it writes.
pub fn recording(
    base: Arc<dyn Target>,
    record: Option<&Path>,
    redact: Arc<Redactor>,
) -> Result<(Arc<dyn Target>, Option<Recorder>), Failure> {
    let Some(dir) = record else {
        return Ok((base, None));
    };
    check_record_dir(dir)?;
    let recorder = Arc::new(RecordingTarget::new(base, redact));
    Ok((recorder.clone(), Some(recorder)))
}

pub fn write_recording(recorder: &RecordingTarget, dir: &Path) -> Result<(), Failure> {
    recorder.write(dir).context("writing the bundle").or_run()?;
    eprintln!("recorded {}", dir.display());
    Ok(())
}

/// `--record` makes a new bundle: it never writes into a directory that has files.
fn check_record_dir(dir: &Path) -> Result<(), Failure> {
    let has_files = dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if has_files {
        return Err(Failure::usage(format!(
            "{}: already exists; --record needs a new directory",
            dir.display()
        )));
    }
    Ok(())
}
