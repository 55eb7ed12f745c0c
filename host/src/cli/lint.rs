//! `triage lint [FILE|DIR…]`: runbooks and their test cases checked without running them,
//! every error with `file:line:column`.

use super::{Cli, CliResult};
use crate::catalog;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Runbook files, or directories holding a `runbook.yaml` (default: every runbook
    /// `triage list` shows that is not shadowed).
    files: Vec<PathBuf>,
}

pub fn run(cli: &Cli, args: &LintArgs) -> CliResult {
    let runtime = super::load_runtime(cli)?;
    let sources: Vec<catalog::RunbookSource> = if args.files.is_empty() {
        catalog::runnable_with_current_dir()
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    } else {
        args.files
            .iter()
            .map(|f| {
                if f.is_dir() {
                    catalog::RunbookSource::File(f.join("runbook.yaml"))
                } else {
                    catalog::RunbookSource::File(f.clone())
                }
            })
            .collect()
    };
    let mut errors = 0;
    for source in &sources {
        match source.load(&runtime) {
            Err(e) => {
                // The line saying the list was cut is not an error of its own.
                errors +=
                    e.0.iter()
                        .filter(|e| e.message != crate::yaml::collect::CUT_NOTICE)
                        .count();
                for err in e.0 {
                    eprintln!("{err}");
                }
            }
            Ok(loaded) => match super::test::cases_each(&source.file()) {
                Err(e) => {
                    errors += e.count();
                    eprintln!("{e}");
                }
                Ok(cases) => {
                    for case in &cases {
                        match case {
                            Err(e) => {
                                errors += e.count();
                                eprintln!("{e}");
                            }
                            Ok(case) => {
                                for problem in super::test::check_case(&loaded, case) {
                                    errors += 1;
                                    eprintln!("{problem}");
                                }
                            }
                        }
                    }
                }
            },
        }
    }
    eprintln!("{} runbook(s) checked, {errors} error(s)", sources.len());
    Ok(if errors > 0 { 2 } else { 0 })
}
