//! `resolve`: DNS lookup of one host name.

use super::pattern::{Pattern, Subject};
use super::{Call, CapResult, Kind, check_host_name, yaml_scalar};

pub const NAME: &str = "resolve";
pub const BUNDLE_KEY: &str = "resolve";

pub struct Request {
    pub host: String,
}

impl super::Request for Request {
    const KIND: Kind = Kind::Resolve;

    fn subject(&self) -> Subject<'_> {
        Subject::Text(&self.host)
    }

    fn display(&self) -> String {
        self.host.clone()
    }

    fn policy_entry(&self) -> String {
        format!("resolve: [{}]", yaml_scalar(&self.host))
    }
}

/// One entry under `allow.resolve` in a policy file: a host name pattern.
pub type PolicyEntry = String;

pub fn policy_pattern(entry: PolicyEntry) -> Result<Pattern, String> {
    Ok(Pattern::text(&entry))
}

pub async fn resolve(call: &mut Call<'_>, host: String) -> CapResult<Vec<String>> {
    let request = Request { host };
    if let Err(why) = check_host_name(&request.host) {
        return Err(call.refuse(&request, format!("resolve: {why}")));
    }
    let started = call.admit(&request)?;
    let result = call.target.resolve(&request.host).await;
    call.record(&request, started, result.as_ref());
    result
}
