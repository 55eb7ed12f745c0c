//! `connect`: open and close one TCP connection (reachability, no data).

use super::Request;
use crate::runtime::sandbox::CallState;
use crate::target::CapabilityError;
use std::time::Duration;

pub async fn connect(
    state: &mut CallState,
    host: String,
    port: u16,
    timeout_ms: u32,
) -> Result<u32, CapabilityError> {
    let request = Request::Connect(format!("{host}:{port}"));
    if let Err(why) = super::check_host_name(&host) {
        return Err(state.refuse(&request, format!("connect: {why}")));
    }
    let started = state.admit(&request)?;
    let timeout = Duration::from_millis(timeout_ms.max(1) as u64).min(state.capability_timeout);
    let result = state.target.connect(&host, port, timeout).await;
    state.record(&request, started, result.as_ref());
    result
}
