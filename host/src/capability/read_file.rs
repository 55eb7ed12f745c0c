//! `read-file`: read at most N bytes of one file. Paths must be absolute and free of `..`
//! so a pattern such as `/var/log/**` means what it says.

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
    let result = state.target.read_file(path, max_bytes).await;
    state.record(&request, started, result.as_ref());
    result
}
