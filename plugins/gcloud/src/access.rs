//! When gcloud runs but cannot show what was asked. On a VM, gcloud speaks as the VM's
//! service account, which usually may not read the project's IAM policy, list its APIs or
//! its forwarding rules; with the default access scopes it may call almost nothing. That
//! says nothing about Traffic Director, so it is a fact (`error`), and runbooks mark the step
//! *unknown* with gcloud's own words and how to run the check with enough rights, instead of
//! erroring the step (or, worse, passing it).

use serde::Serialize;
use triage_sdk::{JsonSchema, ProbeError};

/// The longest message kept from gcloud's standard error.
const MAX_MESSAGE: usize = 400;

/// Why gcloud could not show what was asked.
#[derive(Serialize, JsonSchema, Debug, Clone, PartialEq, Eq)]
pub struct GcloudError {
    /// "permission-denied" (the account lacks an IAM permission), "insufficient-scopes" (the
    /// VM's access scopes do not cover the API), "unauthenticated" (no active account, or
    /// its credentials were refused), "api-disabled" (the API gcloud calls is not enabled in
    /// the project), "not-found" (no such project, instance or cluster), or "other".
    pub kind: String,
    /// gcloud's error line (at most 400 characters), with the line that follows a
    /// "Some requests did not succeed:" header.
    pub message: String,
    /// gcloud's exit status.
    pub status: i32,
    /// Whether running the same check with another account would likely let it see:
    /// permission-denied, insufficient-scopes and unauthenticated.
    pub access: bool,
}

impl GcloudError {
    /// Reads gcloud's standard error.
    pub fn from_stderr(status: i32, stderr: &str) -> GcloudError {
        let message = error_message(stderr);
        let kind = classify(stderr);
        GcloudError {
            access: matches!(
                kind,
                "permission-denied" | "insufficient-scopes" | "unauthenticated"
            ),
            kind: kind.into(),
            message,
            status,
        }
    }
}

fn error_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // gcloud prints warnings first ("WARNING: ..."); the error line starts "ERROR:". A batch
    // failure ("Some requests did not succeed:") gives the reason on the next line.
    let at = lines
        .iter()
        .position(|l| l.starts_with("ERROR:"))
        .unwrap_or(0);
    let mut message = lines
        .get(at)
        .copied()
        .unwrap_or("gcloud exited without a message")
        .to_owned();
    if message.ends_with(':')
        && let Some(next) = lines.get(at + 1)
    {
        message.push(' ');
        message.push_str(next);
    }
    let mut kept: String = message.chars().take(MAX_MESSAGE).collect();
    if message.chars().count() > MAX_MESSAGE {
        kept.push('…');
    }
    kept
}

fn classify(stderr: &str) -> &'static str {
    let has = |needle: &str| stderr.contains(needle);
    if has("insufficient authentication scopes") || has("ACCESS_TOKEN_SCOPE_INSUFFICIENT") {
        "insufficient-scopes"
    } else if has("does not have permission")
        || has("PERMISSION_DENIED")
        || has("Permission denied")
        || has("permission for '")
        || has("The caller does not have permission")
        || has("IAM_PERMISSION_DENIED")
    {
        "permission-denied"
    } else if has("You do not currently have an active account")
        || has("UNAUTHENTICATED")
        || has("invalid_grant")
        || has("Reauthentication")
        || has("could not find default credentials")
    {
        "unauthenticated"
    } else if has("SERVICE_DISABLED")
        || has("has not been used in project")
        || has("not enabled on project")
    {
        "api-disabled"
    } else if has("was not found") || has("NOT_FOUND") {
        "not-found"
    } else {
        "other"
    }
}

/// Runs gcloud: its standard output, or why it showed nothing. Only a capability failure
/// (denied by policy, not captured in a bundle, gcloud not installed) is a probe error.
pub fn run(argv: &[String]) -> Result<Result<String, GcloudError>, ProbeError> {
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = triage_sdk::exec(&argv)?;
    if out.status == 0 {
        Ok(Ok(out.stdout_text()))
    } else {
        Ok(Err(GcloudError::from_stderr(
            out.status,
            &out.stderr_text(),
        )))
    }
}

/// An action's facts, or gcloud's reason for having none. Serialized flat: the facts'
/// fields plus `error` (null when gcloud answered).
#[derive(Serialize, JsonSchema, Debug)]
pub struct Answer<T> {
    /// The facts, when gcloud answered.
    #[serde(flatten)]
    pub facts: Option<T>,
    /// Why gcloud showed nothing; runbooks mark the step unknown on it.
    pub error: Option<GcloudError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gclouds_refusals_are_classified() {
        let cases = [
            (
                "ERROR: (gcloud.projects.get-iam-policy) [td-client@td-demo-project.iam.gserviceaccount.com] does not have permission to access projects instance [td-demo-project:getIamPolicy] (or it may not exist): The caller does not have permission. This command is authenticated as td-client@td-demo-project.iam.gserviceaccount.com which is the active account specified by the [core/account] property.\n",
                "permission-denied",
            ),
            (
                "ERROR: (gcloud.compute.forwarding-rules.list) Some requests did not succeed:\n - Required 'compute.forwardingRules.list' permission for 'projects/td-host-project'\n",
                "permission-denied",
            ),
            (
                "ERROR: (gcloud.compute.forwarding-rules.list) Some requests did not succeed:\n - Request had insufficient authentication scopes.\n",
                "insufficient-scopes",
            ),
            (
                "ERROR: (gcloud.services.list) You do not currently have an active account selected.\nPlease run:\n\n  $ gcloud auth login\n",
                "unauthenticated",
            ),
            (
                "ERROR: (gcloud.compute.forwarding-rules.list) Some requests did not succeed:\n - Compute Engine API has not been used in project 123 before or it is disabled.\n",
                "api-disabled",
            ),
            ("ERROR: (gcloud.compute.instances.describe) oops\n", "other"),
        ];
        for (stderr, kind) in cases {
            let e = GcloudError::from_stderr(1, stderr);
            assert_eq!(e.kind, kind, "{stderr}");
            assert!(e.message.starts_with("ERROR: (gcloud."), "{}", e.message);
        }
        let batch = GcloudError::from_stderr(1, cases[1].0);
        assert!(
            batch.message.ends_with("- Required 'compute.forwardingRules.list' permission for 'projects/td-host-project'"),
            "{}",
            batch.message
        );
        assert!(batch.access);
    }

    #[test]
    fn a_huge_message_is_cut() {
        let stderr = format!("ERROR: {}\n", "x".repeat(10_000));
        let e = GcloudError::from_stderr(1, &stderr);
        assert_eq!(e.message.chars().count(), MAX_MESSAGE + 1);
    }
}
