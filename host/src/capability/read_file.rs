//! `read-file`: read at most N bytes of one file. Paths must be absolute and free of `..`
//! so a pattern such as `/var/log/**` means what it says, and where the path really leads
//! (links resolved) must be allowed by the policy as well: a link `/var/log/x ->
//! /etc/shadow` is not read under a `/var/log/**` grant.
//!
//! The real path is checked against the operator's policy only, not the action's declared
//! pattern: an action declares the path it asks for (often exactly `{path}`), while where
//! links lead is the target's layout, and the policy is what the operator lets be read.

use super::Request;
use crate::runtime::sandbox::CallState;
use crate::target::CapabilityError;

pub async fn read_file(
    state: &mut CallState,
    path: String,
    max_bytes: u64,
) -> Result<Vec<u8>, CapabilityError> {
    let request = Request::ReadFile(path);
    let Request::ReadFile(path) = &request else {
        unreachable!()
    };
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        let err = CapabilityError::Denied(format!(
            "read_file `{path}`: only absolute paths without `..` may be read"
        ));
        state.record(&request, std::time::Instant::now(), Err::<(), _>(&err));
        return Err(err);
    }
    let started = state.admit(&request)?;
    let grants = state.grants.clone();
    let requested = path.clone();
    let real_path_allowed = move |real: &str| {
        grants
            .check_policy(&Request::ReadFile(real.to_string()))
            .map_err(|why| format!("`{requested}` resolves to `{real}`: {why}"))
    };
    let result = state
        .target
        .read_file(path, max_bytes, &real_path_allowed)
        .await;
    state.record(&request, started, result.as_ref());
    result
}
