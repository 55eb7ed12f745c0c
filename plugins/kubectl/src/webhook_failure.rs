//! The API server's message when an admission webhook could not be called, e.g.
//! `Internal error occurred: failed calling webhook "sidecar-injector.istio.io": Post
//! https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s: net/http: request
//! canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`.
//! Newer API servers quote the URL (`Post "https://…": …`) and may insert
//! `failed to call webhook: ` before it.

use serde::Serialize;
use triage_sdk::JsonSchema;

const MARKER: &str = "failed calling webhook \"";

/// The most failures read from one message.
const MAX_PER_MESSAGE: usize = 16;

/// One failed webhook call.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct WebhookCall {
    /// The webhook's name, e.g. "sidecar-injector.istio.io".
    pub webhook: String,
    /// The URL the API server posted to, when the message names one.
    pub url: Option<String>,
    /// Service name from an in-cluster URL (`https://NAME.NAMESPACE.svc:…`).
    pub service: Option<String>,
    /// Service namespace from an in-cluster URL; "istio-control" is where Traffic Director's
    /// injector runs.
    pub service_namespace: Option<String>,
    /// What went wrong, e.g. "net/http: request canceled while waiting for connection
    /// (Client.Timeout exceeded while awaiting headers)".
    pub error: String,
    /// The error is a timeout (the control plane could not reach the webhook: on a private
    /// cluster, typically a missing firewall rule for TCP 9443).
    pub timeout: bool,
}

/// Every failed webhook call a message mentions.
pub fn parse_webhook_failures(message: &str) -> Vec<WebhookCall> {
    let mut calls = Vec::new();
    let mut rest = message;
    while calls.len() < MAX_PER_MESSAGE {
        let Some(at) = rest.find(MARKER) else { break };
        let after = &rest[at + MARKER.len()..];
        let Some(name_end) = after.find('"') else {
            break;
        };
        let webhook = after[..name_end].to_string();
        let detail = after[name_end + 1..].trim_start_matches(':').trim_start();
        let detail = detail
            .strip_prefix("failed to call webhook:")
            .map_or(detail, str::trim_start);
        // The error runs to the next failure, if the message aggregates several.
        let detail_end = detail.find(MARKER).unwrap_or(detail.len());
        let (url, error) = split_post(&detail[..detail_end]);
        let error = error.trim().trim_end_matches([',', ';']).trim().to_string();
        let (service, service_namespace) = url.as_deref().map(service_of).unwrap_or_default();
        calls.push(WebhookCall {
            timeout: is_timeout(&error),
            webhook,
            url,
            service,
            service_namespace,
            error,
        });
        rest = &detail[detail_end..];
    }
    calls
}

/// Splits `Post URL: ERROR` / `Post "URL": ERROR` into the URL and the error.
fn split_post(detail: &str) -> (Option<String>, &str) {
    let Some(request) = detail.strip_prefix("Post ") else {
        return (None, detail);
    };
    if let Some(quoted) = request.strip_prefix('"') {
        if let Some(end) = quoted.find('"') {
            let error = quoted[end + 1..].trim_start_matches(':');
            return (Some(quoted[..end].to_string()), error);
        }
        return (None, detail);
    }
    // Unquoted URLs contain ':' (scheme, port) but never ": ".
    match request.find(": ") {
        Some(end) => (Some(request[..end].to_string()), &request[end + 1..]),
        None => (None, detail),
    }
}

fn service_of(url: &str) -> (Option<String>, Option<String>) {
    let host = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = host.split(['/', ':', '?']).next().unwrap_or("");
    let mut labels = host.split('.');
    match (labels.next(), labels.next(), labels.next()) {
        (Some(name), Some(namespace), Some("svc")) if !name.is_empty() && !namespace.is_empty() => {
            (Some(name.to_string()), Some(namespace.to_string()))
        }
        _ => (None, None),
    }
}

fn is_timeout(error: &str) -> bool {
    let lower = error.to_ascii_lowercase();
    ["timeout", "deadline exceeded", "timed out"]
        .iter()
        .any(|needle| lower.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = "Error creating: Internal error occurred: failed calling webhook \"sidecar-injector.istio.io\": Post https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s: net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)";

    #[test]
    fn the_guides_message() {
        let calls = parse_webhook_failures(GUIDE);
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(call.webhook, "sidecar-injector.istio.io");
        assert_eq!(
            call.url.as_deref(),
            Some("https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s")
        );
        assert_eq!(
            call.error,
            "net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)"
        );
        assert_eq!(call.service.as_deref(), Some("istio-sidecar-injector"));
        assert_eq!(call.service_namespace.as_deref(), Some("istio-control"));
        assert!(call.timeout);
    }

    #[test]
    fn newer_quoted_form() {
        let message = "Internal error occurred: failed calling webhook \"namespace.sidecar-injector.istio.io\": failed to call webhook: Post \"https://istiod.istio-system.svc:443/inject?timeout=10s\": dial tcp 10.0.0.1:15017: connect: connection refused";
        let calls = parse_webhook_failures(message);
        assert_eq!(calls[0].webhook, "namespace.sidecar-injector.istio.io");
        assert_eq!(
            calls[0].url.as_deref(),
            Some("https://istiod.istio-system.svc:443/inject?timeout=10s")
        );
        assert_eq!(
            calls[0].error,
            "dial tcp 10.0.0.1:15017: connect: connection refused"
        );
        assert_eq!(calls[0].service_namespace.as_deref(), Some("istio-system"));
        assert!(!calls[0].timeout);
    }

    #[test]
    fn other_messages_and_fragments() {
        assert!(parse_webhook_failures("Created pod: busybox-1").is_empty());
        for cut in 0..GUIDE.len() {
            if GUIDE.is_char_boundary(cut) {
                let _ = parse_webhook_failures(&GUIDE[..cut]);
            }
        }
    }
}
