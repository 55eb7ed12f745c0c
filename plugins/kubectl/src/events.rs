//! Events, and the admission webhook failures hidden in their messages.

use crate::json::{ParseError, list_or_one};
use crate::webhook_failure::{
    InjectorWebhookRef, WebhookCall, mark_injector_calls, parse_webhook_failures,
};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Event {
    #[serde(rename = "type")]
    kind: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    involved_object: ObjectReference,
    count: Option<u64>,
    last_timestamp: Option<String>,
    event_time: Option<String>,
    series: Option<Series>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Series {
    count: Option<u64>,
    last_observed_time: Option<String>,
}

#[derive(Deserialize, Serialize, JsonSchema, Default, Debug, Clone)]
#[serde(default)]
pub struct ObjectReference {
    /// e.g. "ReplicaSet", "Pod".
    pub kind: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Object namespace.
    pub namespace: Option<String>,
}

/// The events kubectl returned.
#[derive(Serialize, JsonSchema, Debug)]
pub struct EventsFacts {
    /// The events, in kubectl's order.
    pub events: Vec<EventFacts>,
    /// How many events.
    pub event_count: usize,
    /// How many have type "Warning".
    pub warning_count: usize,
    /// Every failed admission webhook call mentioned by an event.
    pub webhook_failures: Vec<WebhookFailure>,
}

/// One event.
#[derive(Serialize, JsonSchema, Debug)]
pub struct EventFacts {
    /// "Normal" or "Warning".
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// e.g. "FailedCreate".
    pub reason: Option<String>,
    /// The message as the controller wrote it.
    pub message: Option<String>,
    /// The object the event is about.
    pub involved_object: ObjectReference,
    /// Occurrences (`count`, else `series.count`, else 1).
    pub count: u64,
    /// Last occurrence (`lastTimestamp`, else `series.lastObservedTime`, else `eventTime`).
    pub last_timestamp: Option<String>,
}

/// A failed webhook call, with the event (or the ReplicaSet condition) that reported it.
#[derive(Serialize, JsonSchema, Debug, Clone)]
pub struct WebhookFailure {
    /// The failed call.
    #[serde(flatten)]
    pub call: WebhookCall,
    /// The object whose creation failed, as "Kind/name" (e.g. "ReplicaSet/busybox-5d8f").
    pub object: String,
    /// Namespace of that object.
    pub namespace: Option<String>,
    /// Occurrences of the event.
    pub count: u64,
    /// Last occurrence.
    pub last_timestamp: Option<String>,
}

/// Parses `kubectl get events -o json` (namespaced or `--all-namespaces`); failed webhook
/// calls are matched against the injector's webhooks when they are known.
pub fn parse_events(
    text: &str,
    injector: Option<&[InjectorWebhookRef]>,
) -> Result<EventsFacts, ParseError> {
    let raw: Vec<Event> = list_or_one("events", text)?;
    let events: Vec<EventFacts> = raw
        .into_iter()
        .map(|e| EventFacts {
            count: e
                .count
                .or_else(|| e.series.as_ref().and_then(|s| s.count))
                .unwrap_or(1),
            last_timestamp: e
                .last_timestamp
                .or_else(|| e.series.and_then(|s| s.last_observed_time))
                .or(e.event_time),
            kind: e.kind,
            reason: e.reason,
            message: e.message,
            involved_object: e.involved_object,
        })
        .collect();
    let webhook_failures = events
        .iter()
        .flat_map(|e| {
            let mut calls = e
                .message
                .as_deref()
                .map(parse_webhook_failures)
                .unwrap_or_default();
            mark_injector_calls(&mut calls, injector);
            calls.into_iter().map(move |call| WebhookFailure {
                call,
                object: format!(
                    "{}/{}",
                    e.involved_object.kind.as_deref().unwrap_or(""),
                    e.involved_object.name.as_deref().unwrap_or("")
                ),
                namespace: e.involved_object.namespace.clone(),
                count: e.count,
                last_timestamp: e.last_timestamp.clone(),
            })
        })
        .collect();
    Ok(EventsFacts {
        event_count: events.len(),
        warning_count: events
            .iter()
            .filter(|e| e.kind.as_deref() == Some("Warning"))
            .count(),
        webhook_failures,
        events,
    })
}
