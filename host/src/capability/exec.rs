//! `exec`: run a program with an argv, never through a shell.

use super::Request;
use crate::runtime::bindings::wit_host::ExecOutput;
use crate::runtime::sandbox::CallState;
use crate::target::CapabilityError;

pub async fn exec(state: &mut CallState, argv: Vec<String>) -> Result<ExecOutput, CapabilityError> {
    let request = Request::Exec(argv);
    let started = state.admit(&request)?;
    let Request::Exec(argv) = &request else {
        unreachable!()
    };
    let result = state.target.exec(argv, state.capability_timeout).await;
    state.record(&request, started, result.as_ref());
    result.map(|o| ExecOutput {
        status: o.status,
        stdout: o.stdout,
        stderr: o.stderr,
    })
}
