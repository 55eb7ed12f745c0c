//! The API server's message when an admission webhook could not be called, e.g.
//! `Internal error occurred: failed calling webhook "sidecar-injector.istio.io": Post
//! https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s: net/http: request
//! canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`.
//! Newer API servers quote the URL (`Post "https://…": …`) and may insert
//! `failed to call webhook: ` before it.

use serde::Serialize;
use triage_sdk::JsonSchema;

/// How the API server says it: `failed calling webhook "NAME"`, and before Kubernetes 1.13
/// `failed calling admission webhook "NAME"` (seen in istio/istio#8182, #10983).
const MARKERS: [&str; 2] = [
    "failed calling webhook \"",
    "failed calling admission webhook \"",
];

/// The first marker in `text`: where it starts and how long it is.
fn find_marker(text: &str) -> Option<(usize, usize)> {
    MARKERS
        .iter()
        .filter_map(|m| text.find(m).map(|at| (at, m.len())))
        .min()
}

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
    /// Why the call failed, read from the error: "timeout" (no answer: on a private cluster,
    /// the firewall), "connection-refused" (nothing listens: the webhook's pod is down or
    /// restarting), "no-endpoints" (the service has no ready pod), "service-not-found" (the
    /// webhook names a service that does not exist), "tls" (x509 / handshake: the webhook's
    /// certificate does not match its caBundle or has expired), "unreachable" (no route,
    /// reset, DNS), or "other".
    pub cause: String,
    /// The call was to the sidecar injector's webhook: matched by webhook name *and* service
    /// (or URL) against the injector's registered webhooks when they are known, else by
    /// name alone (`sidecar-injector.istio.io` and the like). Other webhooks — Gatekeeper,
    /// Kyverno, cert-manager — are false.
    pub injector: bool,
}

/// One registered injector webhook, to match failures against (from the `injector` action).
#[derive(serde::Deserialize, Serialize, JsonSchema, Debug, Clone, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InjectorWebhookRef {
    /// Webhook name, e.g. "sidecar-injector.istio.io".
    pub name: String,
    /// Service namespace, when the webhook calls a service.
    pub service_namespace: Option<String>,
    /// Service name.
    pub service_name: Option<String>,
    /// URL, when the webhook calls a URL instead.
    pub url: Option<String>,
}

/// Marks each call as the injector's or not. With `refs` (the injector's registered
/// webhooks), a call is the injector's when its webhook name and its service (or URL) are
/// one of them; without, when the name is an injector's name.
pub fn mark_injector_calls(calls: &mut [WebhookCall], refs: Option<&[InjectorWebhookRef]>) {
    for call in calls {
        call.injector = match refs {
            Some(refs) => refs.iter().any(|r| matches_ref(call, r)),
            None => is_injector_name(&call.webhook),
        };
    }
}

fn matches_ref(call: &WebhookCall, r: &InjectorWebhookRef) -> bool {
    if call.webhook != r.name {
        return false;
    }
    match (
        &r.service_name,
        &r.service_namespace,
        &call.service,
        &call.url,
    ) {
        (Some(name), Some(ns), Some(call_name), _) => {
            call.service_namespace.as_deref() == Some(ns.as_str()) && call_name == name
        }
        // The message had no parseable URL: the name alone decides.
        (Some(_), Some(_), None, None) => true,
        (Some(_), Some(_), None, Some(_)) => false,
        _ => match (&r.url, &call.url) {
            (Some(want), Some(got)) => same_endpoint(want, got),
            _ => true,
        },
    }
}

/// URLs compared without their query (the API server appends `?timeout=…`).
fn same_endpoint(a: &str, b: &str) -> bool {
    let strip = |u: &str| {
        u.split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string()
    };
    strip(a) == strip(b)
}

/// Names the sidecar injectors register: Istio's (also used by Traffic Director's
/// injector, as in the guide's message) and revisioned ones.
pub fn is_injector_name(webhook: &str) -> bool {
    webhook.ends_with("sidecar-injector.istio.io")
        || webhook.contains("traffic-director")
        || webhook.contains("td-sidecar")
}

/// Every failed webhook call a message mentions.
pub fn parse_webhook_failures(message: &str) -> Vec<WebhookCall> {
    let mut calls = Vec::new();
    let mut rest = message;
    while calls.len() < MAX_PER_MESSAGE {
        let Some((at, len)) = find_marker(rest) else {
            break;
        };
        let after = &rest[at + len..];
        let Some(name_end) = after.find('"') else {
            break;
        };
        let webhook = after[..name_end].to_string();
        let detail = after[name_end + 1..].trim_start_matches(':').trim_start();
        let detail = detail
            .strip_prefix("failed to call webhook:")
            .map_or(detail, str::trim_start);
        // The error runs to the next failure, if the message aggregates several.
        let detail_end = find_marker(detail).map_or(detail.len(), |(at, _)| at);
        let (url, error) = split_post(&detail[..detail_end]);
        let error = error.trim().trim_end_matches([',', ';']).trim().to_string();
        let (service, service_namespace) = url.as_deref().map(service_of).unwrap_or_default();
        calls.push(WebhookCall {
            timeout: is_timeout(&error),
            cause: cause_of(&error).into(),
            injector: is_injector_name(&webhook),
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

fn cause_of(error: &str) -> &'static str {
    let lower = error.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if is_timeout(error) {
        "timeout"
    } else if has("x509:") || has("tls:") || has("certificate") {
        "tls"
    } else if has("no endpoints available") {
        "no-endpoints"
    } else if has("service \"") && has("not found") {
        "service-not-found"
    } else if has("connection refused") {
        "connection-refused"
    } else if has("no route to host")
        || has("service unavailable")
        || has("connection reset")
        || has("no such host")
        || has("network is unreachable")
        || has("eof")
    {
        "unreachable"
    } else {
        "other"
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

    /// Real messages from istio/istio issues (#16536, #16481, #8182, #10983) and the
    /// shapes Gatekeeper, Kyverno and cert-manager webhooks fail with.
    #[test]
    fn causes_are_told_apart() {
        let cases = [
            (GUIDE, "sidecar-injector.istio.io", "timeout", true),
            (
                "Error creating: Internal error occurred: failed calling webhook \"sidecar-injector.istio.io\": Post https://istio-sidecar-injector.istio-system.svc:443/inject?timeout=30s: no endpoints available for service \"istio-sidecar-injector\"",
                "sidecar-injector.istio.io",
                "no-endpoints",
                true,
            ),
            (
                "Error creating: Internal error occurred: failed calling admission webhook \"sidecar-injector.istio.io\": Post https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s: service \"istio-sidecar-injector\" not found",
                "sidecar-injector.istio.io",
                "service-not-found",
                true,
            ),
            (
                "Internal error occurred: failed calling admission webhook \"sidecar-injector.istio.io\": Post https://istio-sidecar-injector.istio-system.svc:443/inject: dial tcp 10.254.156.130:443: getsockopt: connection refused",
                "sidecar-injector.istio.io",
                "connection-refused",
                true,
            ),
            (
                "Error creating: Internal error occurred: failed calling webhook \"sidecar-injector.istio.io\": Post \"https://istio-sidecar-injector.istio-control.svc:443/inject?timeout=30s\": x509: certificate signed by unknown authority",
                "sidecar-injector.istio.io",
                "tls",
                true,
            ),
            (
                "Error creating: Internal error occurred: failed calling admission webhook \"sidecar-injector.istio.io\": Post https://istio-sidecar-injector.istio-system.svc:443/inject?timeout=30s: Service Unavailable",
                "sidecar-injector.istio.io",
                "unreachable",
                true,
            ),
            (
                "Error creating: Internal error occurred: failed calling webhook \"validation.gatekeeper.sh\": failed to call webhook: Post \"https://gatekeeper-webhook-service.gatekeeper-system.svc:443/v1/admit?timeout=3s\": dial tcp 10.96.1.2:443: connect: connection refused",
                "validation.gatekeeper.sh",
                "connection-refused",
                false,
            ),
            (
                "Error creating: Internal error occurred: failed calling webhook \"mutate.kyverno.svc-fail\": failed to call webhook: Post \"https://kyverno-svc.kyverno.svc:443/mutate/fail?timeout=10s\": context deadline exceeded",
                "mutate.kyverno.svc-fail",
                "timeout",
                false,
            ),
        ];
        for (message, webhook, cause, injector) in cases {
            let calls = parse_webhook_failures(message);
            assert_eq!(calls.len(), 1, "{message}");
            assert_eq!(calls[0].webhook, webhook);
            assert_eq!(calls[0].cause, cause, "{message}");
            assert_eq!(calls[0].injector, injector, "{message}");
        }
    }

    #[test]
    fn the_injectors_webhook_is_matched_by_name_and_service() {
        let td = InjectorWebhookRef {
            name: "sidecar-injector.istio.io".into(),
            service_namespace: Some("istio-control".into()),
            service_name: Some("istio-sidecar-injector".into()),
            url: None,
        };
        // Same name, another service (an Istio install in istio-system): not TD's injector.
        let istio = "failed calling webhook \"sidecar-injector.istio.io\": Post https://istiod.istio-system.svc:443/inject?timeout=10s: context deadline exceeded";
        let mut calls = parse_webhook_failures(istio);
        mark_injector_calls(&mut calls, Some(std::slice::from_ref(&td)));
        assert!(!calls[0].injector);
        let mut calls = parse_webhook_failures(GUIDE);
        mark_injector_calls(&mut calls, Some(std::slice::from_ref(&td)));
        assert!(calls[0].injector);
        // Unknown registrations: the name decides.
        let mut calls = parse_webhook_failures(istio);
        mark_injector_calls(&mut calls, None);
        assert!(calls[0].injector);
        // A URL webhook.
        let by_url = InjectorWebhookRef {
            name: "td.injector".into(),
            url: Some("https://10.0.0.9:9443/inject".into()),
            ..Default::default()
        };
        let mut calls = parse_webhook_failures(
            "failed calling webhook \"td.injector\": Post \"https://10.0.0.9:9443/inject?timeout=30s\": EOF",
        );
        mark_injector_calls(&mut calls, Some(std::slice::from_ref(&by_url)));
        assert!(calls[0].injector);
        assert_eq!(calls[0].cause, "unreachable");
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
