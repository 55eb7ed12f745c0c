//! `resolve`: DNS lookup of one host name.

use super::Request;
use crate::runtime::sandbox::CallState;
use crate::target::CapabilityError;

pub async fn resolve(state: &mut CallState, host: String) -> Result<Vec<String>, CapabilityError> {
    let request = Request::Resolve(host);
    let started = state.admit(&request)?;
    let Request::Resolve(host) = &request else {
        unreachable!()
    };
    let result = state.target.resolve(host).await;
    state.record(&request, started, result.as_ref());
    result
}
