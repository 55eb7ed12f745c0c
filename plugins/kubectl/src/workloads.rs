//! Deployments and ReplicaSets: desired versus ready replicas, and the conditions that say
//! why pods are missing (a ReplicaSet's `ReplicaFailure` carries the webhook error).

use crate::events::WebhookFailure;
use crate::json::{ParseError, list_or_one};
use crate::pods::ObjectMeta;
use crate::webhook_failure::{
    InjectorWebhookRef, WebhookCall, mark_injector_calls, parse_webhook_failures,
};
use serde::{Deserialize, Serialize};
use triage_sdk::JsonSchema;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Workload {
    kind: Option<String>,
    #[serde(deserialize_with = "crate::json::nullable")]
    metadata: ObjectMeta,
    #[serde(deserialize_with = "crate::json::nullable")]
    spec: WorkloadSpec,
    #[serde(deserialize_with = "crate::json::nullable")]
    status: WorkloadStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WorkloadSpec {
    replicas: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WorkloadStatus {
    replicas: i64,
    ready_replicas: i64,
    available_replicas: i64,
    unavailable_replicas: Option<i64>,
    #[serde(deserialize_with = "crate::json::nullable")]
    conditions: Vec<RawCondition>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCondition {
    #[serde(rename = "type")]
    kind: String,
    #[serde(deserialize_with = "crate::json::nullable")]
    status: String,
    reason: Option<String>,
    message: Option<String>,
    #[serde(rename = "lastTransitionTime")]
    last_transition_time: Option<String>,
}

/// Every Deployment or ReplicaSet the query matched.
#[derive(Serialize, JsonSchema, Debug)]
pub struct WorkloadsFacts {
    /// The objects, in kubectl's order.
    pub items: Vec<WorkloadFacts>,
    /// How many matched.
    pub count: usize,
    /// Names of those with fewer ready replicas than desired (e.g. busybox at 0/1).
    pub not_ready: Vec<String>,
    /// Webhook calls that failed, from every `ReplicaFailure` condition, in the same shape
    /// as the events' (`object` is "ReplicaSet/NAME", `last_timestamp` the condition's
    /// lastTransitionTime).
    pub webhook_failures: Vec<WebhookFailure>,
}

/// One Deployment or ReplicaSet.
#[derive(Serialize, JsonSchema, Debug)]
pub struct WorkloadFacts {
    /// Object name.
    pub name: String,
    /// Namespace, when kubectl printed it.
    pub namespace: Option<String>,
    /// Desired replicas (`spec.replicas`, 1 when unset as Kubernetes defaults it).
    pub replicas: i64,
    /// Pods that exist (`status.replicas`).
    pub current_replicas: i64,
    /// `status.readyReplicas` (0 when absent).
    pub ready_replicas: i64,
    /// `status.availableReplicas` (0 when absent).
    pub available_replicas: i64,
    /// `status.unavailableReplicas`, else desired minus available (never negative).
    pub unavailable: i64,
    /// kubectl's READY column, "ready/desired".
    pub ready: String,
    /// Every replica is ready.
    pub all_ready: bool,
    /// The owning Deployment of a ReplicaSet.
    pub owner: Option<String>,
    /// `status.conditions`.
    pub conditions: Vec<ConditionFacts>,
    /// Webhook calls that failed, from `ReplicaFailure` conditions.
    pub webhook_failures: Vec<WebhookCall>,
}

/// A status condition.
#[derive(Serialize, JsonSchema, Debug)]
pub struct ConditionFacts {
    /// e.g. "Available", "Progressing", "ReplicaFailure".
    #[serde(rename = "type")]
    pub kind: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    /// e.g. "FailedCreate", "MinimumReplicasUnavailable".
    pub reason: Option<String>,
    /// Human-readable detail.
    pub message: Option<String>,
}

/// Parses `kubectl get deployments -o json` or `kubectl get replicasets -o json` (a List,
/// or one object); failed webhook calls are matched against the injector's webhooks.
pub fn parse_workloads(
    text: &str,
    injector: Option<&[InjectorWebhookRef]>,
) -> Result<WorkloadsFacts, ParseError> {
    let raw: Vec<Workload> = list_or_one("deployments or replicasets", text)?;
    let mut failures = Vec::new();
    let mut items = Vec::new();
    for w in raw {
        let kind = w.kind.clone().unwrap_or_else(|| "ReplicaSet".into());
        let when = w
            .status
            .conditions
            .iter()
            .find(|c| c.kind == "ReplicaFailure")
            .and_then(|c| c.last_transition_time.clone());
        let mut facts = workload_facts(w);
        mark_injector_calls(&mut facts.webhook_failures, injector);
        failures.extend(
            facts
                .webhook_failures
                .iter()
                .cloned()
                .map(|call| WebhookFailure {
                    call,
                    object: format!("{kind}/{}", facts.name),
                    namespace: facts.namespace.clone(),
                    count: 1,
                    last_timestamp: when.clone(),
                }),
        );
        items.push(facts);
    }
    Ok(WorkloadsFacts {
        count: items.len(),
        not_ready: items
            .iter()
            .filter(|w| !w.all_ready)
            .map(|w| w.name.clone())
            .collect(),
        webhook_failures: failures,
        items,
    })
}

/// Parses `kubectl get deployment NAME -o json`.
pub fn parse_workload(text: &str) -> Result<WorkloadFacts, ParseError> {
    crate::json::from_json::<Workload>("a deployment", text).map(workload_facts)
}

fn workload_facts(w: Workload) -> WorkloadFacts {
    let desired = w.spec.replicas.unwrap_or(1);
    let status = w.status;
    let unavailable = status
        .unavailable_replicas
        .unwrap_or_else(|| desired.saturating_sub(status.available_replicas).max(0));
    let webhook_failures = status
        .conditions
        .iter()
        .filter(|c| c.kind == "ReplicaFailure")
        .filter_map(|c| c.message.as_deref())
        .flat_map(parse_webhook_failures)
        .collect();
    WorkloadFacts {
        name: w.metadata.name,
        namespace: w.metadata.namespace,
        replicas: desired,
        current_replicas: status.replicas,
        ready_replicas: status.ready_replicas,
        available_replicas: status.available_replicas,
        unavailable,
        ready: format!("{}/{}", status.ready_replicas, desired),
        all_ready: status.ready_replicas >= desired,
        owner: w
            .metadata
            .owner_references
            .into_iter()
            .find(|o| o.kind == "Deployment")
            .map(|o| o.name),
        conditions: status
            .conditions
            .into_iter()
            .map(|c| ConditionFacts {
                kind: c.kind,
                status: c.status,
                reason: c.reason,
                message: c.message,
            })
            .collect(),
        webhook_failures,
    }
}
