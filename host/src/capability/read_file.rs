//! `read-file`: read at most N bytes of one file. Paths must be absolute and free of `..`
//! so a pattern such as `/var/log/**` means what it says, and where the path really leads
//! (links resolved) must be allowed by the policy as well: a link `/var/log/x ->
//! /etc/shadow` is not read under a `/var/log/**` grant.
//!
//! `read-file-tail` is the same capability (same grants, same policy entry, same checks):
//! it reads the last N bytes instead of the first, and says how long the file is, so a
//! plugin can read a log's newest lines however large the log has grown.
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

/// The end of a file: its last bytes, and its length when read (`bytes` are the ones that
/// end at offset `size`; a `size` larger than `bytes` means the start was not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTail {
    pub bytes: Vec<u8>,
    pub size: u64,
}

/// The start of a file, or its end.
enum Part {
    Head,
    Tail,
}

enum Read {
    Head(Vec<u8>),
    Tail(FileTail),
}

pub async fn read_file(call: &mut Call<'_>, path: String, max_bytes: u64) -> CapResult<Vec<u8>> {
    match read(call, path, max_bytes, Part::Head).await? {
        Read::Head(bytes) => Ok(bytes),
        Read::Tail(tail) => Ok(tail.bytes),
    }
}

pub async fn read_file_tail(
    call: &mut Call<'_>,
    path: String,
    max_bytes: u64,
) -> CapResult<FileTail> {
    match read(call, path, max_bytes, Part::Tail).await? {
        Read::Tail(tail) => Ok(tail),
        Read::Head(bytes) => Ok(FileTail {
            size: bytes.len() as u64,
            bytes,
        }),
    }
}

/// Both reads: one path check, one grant check, one record in the capability log.
async fn read(call: &mut Call<'_>, path: String, max_bytes: u64, part: Part) -> CapResult<Read> {
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
    let result = match part {
        Part::Head => call
            .target
            .read_file(&request.path, max_bytes, &real_path_allowed)
            .await
            .map(Read::Head),
        Part::Tail => call
            .target
            .read_file_tail(&request.path, max_bytes, &real_path_allowed)
            .await
            .map(Read::Tail),
    };
    call.record(&request, started, result.as_ref());
    result
}
