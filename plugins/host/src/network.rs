//! DNS and TCP reachability facts from the host's resolve and connect capabilities.

use serde::Serialize;
use triage_sdk::{CapabilityError, JsonSchema, ProbeError};

/// What resolving a name gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DnsFacts {
    /// The name resolved.
    pub host: String,
    /// Whether it resolved to at least one address.
    pub resolved: bool,
    /// The addresses.
    pub addresses: Vec<String>,
    /// Why it did not resolve.
    pub error: Option<String>,
}

/// What connecting gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TcpFacts {
    /// The host connected to.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Whether the TCP handshake completed.
    pub reachable: bool,
    /// How long the handshake took, when it completed.
    pub elapsed_ms: Option<u32>,
    /// Whether the attempt ran past `timeout_ms` (a firewall dropping packets, typically).
    pub timed_out: bool,
    /// Why it was not reachable.
    pub error: Option<String>,
}

/// Failed and timed-out lookups are facts (`td-dns-failure`); a denied or uncaptured call
/// means the check could not run, which stays an error.
pub fn dns_facts(
    host: &str,
    result: Result<Vec<String>, CapabilityError>,
) -> Result<DnsFacts, ProbeError> {
    let (addresses, error) = match result {
        Ok(addresses) => (addresses, None),
        Err(CapabilityError::Failed(e)) => (Vec::new(), Some(e)),
        Err(CapabilityError::TimedOut(e)) => (Vec::new(), Some(format!("timed out: {e}"))),
        Err(other) => return Err(ProbeError::Capability(other)),
    };
    Ok(DnsFacts {
        host: host.to_owned(),
        resolved: !addresses.is_empty(),
        error: error.or_else(|| addresses.is_empty().then(|| "no addresses".to_owned())),
        addresses,
    })
}

/// Like [`dns_facts`]: refused and timed-out connections are facts (`td-unreachable`).
pub fn tcp_facts(
    host: &str,
    port: u16,
    result: Result<u32, CapabilityError>,
) -> Result<TcpFacts, ProbeError> {
    let facts = TcpFacts {
        host: host.to_owned(),
        port,
        reachable: false,
        elapsed_ms: None,
        timed_out: false,
        error: None,
    };
    match result {
        Ok(ms) => Ok(TcpFacts {
            reachable: true,
            elapsed_ms: Some(ms),
            ..facts
        }),
        Err(CapabilityError::Failed(e)) => Ok(TcpFacts {
            error: Some(e),
            ..facts
        }),
        Err(CapabilityError::TimedOut(e)) => Ok(TcpFacts {
            timed_out: true,
            error: Some(format!("timed out: {e}")),
            ..facts
        }),
        Err(other) => Err(ProbeError::Capability(other)),
    }
}
