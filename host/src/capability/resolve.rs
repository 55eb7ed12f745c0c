//! `resolve`: DNS lookup of one host name.

use super::Request;
use crate::runtime::sandbox::CallState;
use crate::target::CapabilityError;

pub async fn resolve(state: &mut CallState, host: String) -> Result<Vec<String>, CapabilityError> {
    let checked = super::check_host_name(&host);
    let request = Request::Resolve(host);
    if let Err(why) = checked {
        return Err(state.refuse(&request, format!("resolve: {why}")));
    }
    let started = state.admit(&request)?;
    let Request::Resolve(host) = &request else {
        unreachable!()
    };
    let result = state.target.resolve(host).await;
    state.record(&request, started, result.as_ref());
    result
}
