//! `exec`: run a program with an argv, never through a shell.

use super::pattern::{Pattern, Subject};
use super::{Call, CapResult, Kind, shell_words, yaml_scalar};

pub const NAME: &str = "exec";
pub const BUNDLE_KEY: &str = "exec";

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub struct Request {
    pub argv: Vec<String>,
}

impl super::Request for Request {
    const KIND: Kind = Kind::Exec;

    fn subject(&self) -> Subject<'_> {
        Subject::Argv(&self.argv)
    }

    fn display(&self) -> String {
        shell_words(&self.argv)
    }

    fn policy_entry(&self) -> String {
        let items: Vec<String> = self.argv.iter().map(|a| yaml_scalar(a)).collect();
        format!("exec: [[{}]]", items.join(", "))
    }
}

/// The executable of a running process, the one program pattern with a wildcard.
pub const RUNNING_EXECUTABLE: &str = "/proc/*/exe";

/// One entry under `allow.exec` in a policy file: an argv pattern, checked as it is read
/// so a bad entry's error points at the entry.
#[derive(serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct PolicyEntry(Pattern);

impl TryFrom<Vec<String>> for PolicyEntry {
    type Error = String;

    /// The program an entry allows is fixed: a command name, found in the PATH of triage
    /// (or of the remote login), which the operator controls, or an absolute path. A
    /// wildcard or a `{param}` there would let whoever chooses the argv choose the program
    /// (`["/**/envoy", --version]` ran `/tmp/x/envoy`), and a relative path would depend on
    /// the working directory.
    fn try_from(entry: Vec<String>) -> Result<Self, String> {
        let Some(program) = entry.first() else {
            return Err("an exec entry needs at least the program".into());
        };
        // `/proc/*/exe` is the executable of a running process (found through ps): the one
        // wildcard a program may hold, matched within one path segment (see pattern.rs).
        let fixed = program == RUNNING_EXECUTABLE
            || !program.is_empty()
                && !program.contains(['*', '{', '}'])
                && (!program.contains('/')
                    || (program.starts_with('/')
                        && !program.split('/').any(|p| p == ".." || p == ".")));
        if !fixed {
            return Err(format!(
                "exec entry {entry:?}: the program {program:?} must be a command name (found in PATH) or an absolute path, without wildcards"
            ));
        }
        Ok(PolicyEntry(Pattern::argv(&entry)))
    }
}

pub fn policy_pattern(entry: PolicyEntry) -> Result<Pattern, String> {
    Ok(entry.0)
}

pub async fn exec(call: &mut Call<'_>, argv: Vec<String>) -> CapResult<ExecOutput> {
    let request = Request { argv };
    let started = call.admit(&request)?;
    if let Some(pid) = running_executable_pid(&request.argv[0]) {
        let owner = call.target.executable_owner(pid, call.timeout).await;
        if let Err(why) = owner.and_then(|owner| judge_running_executable(pid, owner)) {
            return Err(call.refuse(&request, why.to_string()));
        }
    }
    let result = call.target.exec(&request.argv, call.timeout).await;
    call.record(&request, started, result.as_ref());
    result
}

/// The PID in `/proc/PID/exe`, when the program is a running process's executable.
fn running_executable_pid(program: &str) -> Option<u32> {
    let pid = program.strip_prefix("/proc/")?.strip_suffix("/exe")?;
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether `/proc/PID/exe` may run. The policy's `/proc/*/exe` names any process, and any
/// local user can start one whose command line says `envoy` from a file of their own
/// (`/tmp/envoy`): triage, often root, would then run that user's program. Only an
/// executable owned by root and writable by nobody else runs, as every packaged Envoy is
/// (`/usr/local/bin/envoy`, the istio-proxy image's). What remains: the process may exit
/// and its PID be reused between this check and the run, which a local user cannot aim.
fn judge_running_executable(pid: u32, owner: Option<(u32, u32)>) -> CapResult<()> {
    match owner {
        None => Ok(()),
        Some((0, mode)) if mode & 0o022 == 0 => Ok(()),
        Some((uid, mode)) => Err(super::CapabilityError::Denied(format!(
            "/proc/{pid}/exe is owned by uid {uid} with mode {mode:o}: only an executable owned by root and writable by nobody else is run through /proc/PID/exe"
        ))),
    }
}

/// `stat -L` of `/proc/PID/exe` on the target: the owner's uid and the mode bits of the
/// file the process runs (a deleted file too).
pub(crate) async fn stat_owner_and_mode<T: super::CarryOut + ?Sized>(
    target: &T,
    pid: u32,
    timeout: std::time::Duration,
) -> CapResult<(u32, u32)> {
    let argv: Vec<String> = ["stat", "-L", "-c", "%u %a", "--"]
        .into_iter()
        .map(String::from)
        .chain([format!("/proc/{pid}/exe")])
        .collect();
    let out = target.exec(&argv, timeout).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text.split_once(' ').and_then(|(uid, mode)| {
        Some((
            uid.trim().parse().ok()?,
            u32::from_str_radix(mode.trim(), 8).ok()?,
        ))
    });
    match parsed {
        Some(owner) if out.status == 0 => Ok(owner),
        _ => Err(super::CapabilityError::Denied(format!(
            "/proc/{pid}/exe: its owner could not be read (stat said {:?}), so it is not run",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

#[cfg(test)]
mod running_executable_tests {
    use super::*;

    #[test]
    fn only_proc_pid_exe_names_a_running_executable() {
        assert_eq!(running_executable_pid("/proc/42/exe"), Some(42));
        for other in [
            "/proc/self/exe",
            "/proc//exe",
            "/proc/42/exe/x",
            "/usr/bin/envoy",
            "/proc/4x2/exe",
        ] {
            assert_eq!(running_executable_pid(other), None, "{other}");
        }
    }

    #[test]
    fn only_root_owned_executables_no_one_else_can_write_run() {
        assert!(judge_running_executable(7, Some((0, 0o755))).is_ok());
        assert!(
            judge_running_executable(7, None).is_ok(),
            "a replay runs nothing"
        );
        for hostile in [(1000, 0o755), (0, 0o775), (0, 0o757), (1337, 0o700)] {
            let err = judge_running_executable(7, Some(hostile))
                .unwrap_err()
                .to_string();
            assert!(err.contains("/proc/7/exe"), "{err}");
        }
    }
}
