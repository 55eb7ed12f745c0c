//! `read-file`: read at most N bytes of one file. Paths must be absolute and free of `..`
//! so a pattern such as `/var/log/**` means what it says, and where the path really leads
//! (links resolved) must be allowed by the policy as well: a link `/var/log/x ->
//! /etc/shadow` is not read under a `/var/log/**` grant.
//!
//! The real path is checked against the operator's policy only, not the action's declared
//! pattern: an action declares the path it asks for (often exactly `{path}`), while where
//! links lead is the target's layout, and the policy is what the operator lets be read.

use super::pattern::{Pattern, Subject};
use super::{Call, CapResult, Kind, yaml_scalar};

pub const NAME: &str = "read_file";
pub const BUNDLE_KEY: &str = "read";

pub struct Request {
    pub path: String,
}

impl super::Request for Request {
    const KIND: Kind = Kind::ReadFile;

    fn subject(&self) -> Subject<'_> {
        Subject::Text(&self.path)
    }

    fn display(&self) -> String {
        self.path.clone()
    }

    fn policy_entry(&self) -> String {
        format!("read_file: [{}]", yaml_scalar(&self.path))
    }
}

/// One entry under `allow.read_file` in a policy file: a path pattern.
pub type PolicyEntry = String;

pub fn policy_pattern(entry: PolicyEntry) -> Result<Pattern, String> {
    Ok(Pattern::text(&entry))
}

pub async fn read_file(call: &mut Call<'_>, path: String, max_bytes: u64) -> CapResult<Vec<u8>> {
    let request = Request { path };
    let path = &request.path;
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        let why = format!("read_file `{path}`: only absolute paths without `..` may be read");
        return Err(call.refuse(&request, why));
    }
    let started = call.admit(&request)?;
    let grants = call.grants.clone();
    let requested = request.path.clone();
    let real_path_allowed = move |real: &str| {
        grants
            .check_policy(&Request {
                path: real.to_string(),
            })
            .map_err(|why| format!("`{requested}` resolves to `{real}`: {why}"))
    };
    let result = call
        .target
        .read_file(&request.path, max_bytes, &real_path_allowed)
        .await;
    call.record(&request, started, result.as_ref());
    result
}
