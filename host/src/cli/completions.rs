//! `triage completions SHELL` and `triage man`: what a shell and `man` need to know about
//! the command line, generated from the same clap definitions that parse it, so they
//! cannot drift from it.

use super::{Cli, CliResult, OrExit};
use anyhow::Context;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write triage.1 and a page per subcommand (triage-run.1, triage-lint.1, …)
    /// into DIR instead of printing triage.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The command line as clap sees it once built: global flags copied into every
/// subcommand, so each page and completion lists them, and subcommands named
/// `triage-run` for their pages, as git's and cargo's are.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

pub fn completions(args: &CompletionsArgs) -> CliResult {
    let mut cmd = command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "triage", &mut script);
    // print!, not a writer: a closed pipe then ends quietly like everywhere else.
    print!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}

pub fn man(args: &ManArgs) -> CliResult {
    let cmd = command();
    match &args.dir {
        None => {
            print!("{}", String::from_utf8_lossy(&page(&cmd).or_run()?));
            Ok(0)
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| dir.display().to_string())
                .or_usage()?;
            write_pages(&cmd, dir)?;
            Ok(0)
        }
    }
}

fn page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    Ok(out)
}

/// A page for `cmd`, then one for each subcommand, down the tree (clap_mangen's own
/// generate_to writes in place; these are written atomically).
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<(), super::Failure> {
    let file = dir.join(clap_mangen::Man::new(cmd.clone()).get_filename());
    let bytes = page(cmd).or_run()?;
    crate::files::write_atomic(&file, &bytes)
        .with_context(|| file.display().to_string())
        .or_run()?;
    for sub in cmd.get_subcommands() {
        write_pages(sub, dir)?;
    }
    Ok(())
}
