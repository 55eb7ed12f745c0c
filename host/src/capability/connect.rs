//! `connect`: open and close one TCP connection (reachability, no data).

use super::pattern::{Pattern, Subject};
use super::{Call, CapResult, Kind, check_host_name, yaml_scalar};
use std::time::Duration;

pub const NAME: &str = "connect";
pub const BUNDLE_KEY: &str = "connect";

pub struct Request {
    pub host: String,
    pub port: u16,
    /// `host:port`, what patterns match.
    address: String,
}

impl Request {
    pub fn new(host: String, port: u16) -> Self {
        let address = format!("{host}:{port}");
        Request {
            host,
            port,
            address,
        }
    }
}

impl super::Request for Request {
    const KIND: Kind = Kind::Connect;

    fn subject(&self) -> Subject<'_> {
        Subject::Text(&self.address)
    }

    fn display(&self) -> String {
        self.address.clone()
    }

    fn policy_entry(&self) -> String {
        format!("connect: [{}]", yaml_scalar(&self.address))
    }
}

/// One entry under `allow.connect` in a policy file: a `host:port` pattern.
pub type PolicyEntry = String;

pub fn policy_pattern(entry: PolicyEntry) -> Result<Pattern, String> {
    Ok(Pattern::text(&entry))
}

pub async fn connect(
    call: &mut Call<'_>,
    host: String,
    port: u16,
    timeout_ms: u32,
) -> CapResult<u32> {
    let request = Request::new(host, port);
    if let Err(why) = check_host_name(&request.host) {
        return Err(call.refuse(&request, format!("connect: {why}")));
    }
    let started = call.admit(&request)?;
    let timeout = Duration::from_millis(timeout_ms.max(1) as u64).min(call.timeout);
    let result = call
        .target
        .connect(&request.host, request.port, timeout)
        .await;
    call.record(&request, started, result.as_ref());
    result
}
