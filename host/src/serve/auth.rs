//! Checking callers: bearer tokens for /v1, Slack's request signature for /slack, the
//! command token for /mattermost.

use super::config::Token;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `given` is `secret`, in constant time: digests first, so neither the length nor
/// the content of the secret leaks through timing.
pub fn same_secret(secret: &str, given: &str) -> bool {
    let want = Sha256::digest(secret.as_bytes());
    bool::from(want.ct_eq(&Sha256::digest(given.as_bytes())))
}

/// The token that matches `given`, checking every token (no early exit).
pub fn bearer<'a>(tokens: &'a [Token], given: &str) -> Option<&'a Token> {
    let mut found = None;
    for t in tokens {
        if same_secret(&t.secret, given) {
            found = Some(t);
        }
    }
    found
}

/// How far a Slack request's timestamp may be from our clock (Slack's guidance: 5 minutes).
pub const SLACK_MAX_SKEW_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq)]
pub enum SlackAuthError {
    Missing(&'static str),
    Stale,
    BadSignature,
}

impl std::fmt::Display for SlackAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlackAuthError::Missing(h) => write!(f, "missing or malformed {h} header"),
            SlackAuthError::Stale => write!(
                f,
                "X-Slack-Request-Timestamp is more than {SLACK_MAX_SKEW_SECS} s from the server's clock"
            ),
            SlackAuthError::BadSignature => f.write_str("X-Slack-Signature does not match"),
        }
    }
}

/// `v0=` + hex HMAC-SHA256 of `v0:TIMESTAMP:BODY` under the signing secret.
pub fn slack_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::from("v0=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a Slack request: the timestamp within the window of `now`, then the signature
/// (compared in constant time by the MAC itself).
pub fn verify_slack(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SlackAuthError> {
    let timestamp = timestamp.ok_or(SlackAuthError::Missing("X-Slack-Request-Timestamp"))?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SlackAuthError::Missing("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(SlackAuthError::Missing("X-Slack-Signature"))?;
    let hex = signature
        .strip_prefix("v0=")
        .ok_or(SlackAuthError::Missing("X-Slack-Signature"))?;
    let given = decode_hex(hex).ok_or(SlackAuthError::Missing("X-Slack-Signature"))?;
    if (now - ts).abs() > SLACK_MAX_SKEW_SECS {
        return Err(SlackAuthError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SlackAuthError::BadSignature)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<Token> {
        vec![
            Token {
                name: "ops".into(),
                secret: "0123456789abcdef-ops".into(),
                scope: Default::default(),
            },
            Token {
                name: "ci".into(),
                secret: "0123456789abcdef-ci".into(),
                scope: Default::default(),
            },
        ]
    }

    #[test]
    fn bearer_tokens_match_exactly() {
        let t = tokens();
        assert_eq!(
            bearer(&t, "0123456789abcdef-ci").map(|t| t.name.as_str()),
            Some("ci")
        );
        assert!(bearer(&t, "0123456789abcdef-c").is_none());
        assert!(bearer(&t, "").is_none());
    }

    #[test]
    fn slack_signatures_check_body_time_and_secret() {
        let body = b"command=%2Ftriage&text=list";
        let sig = slack_signature("s3cret", "1700000000", body);
        let ok = verify_slack(
            "s3cret",
            Some("1700000000"),
            Some(&sig),
            body,
            1_700_000_100,
        );
        assert_eq!(ok, Ok(()));
        let tampered = verify_slack(
            "s3cret",
            Some("1700000000"),
            Some(&sig),
            b"x",
            1_700_000_100,
        );
        assert_eq!(tampered, Err(SlackAuthError::BadSignature));
        let other_secret =
            verify_slack("other", Some("1700000000"), Some(&sig), body, 1_700_000_100);
        assert_eq!(other_secret, Err(SlackAuthError::BadSignature));
        let stale = verify_slack(
            "s3cret",
            Some("1700000000"),
            Some(&sig),
            body,
            1_700_000_301,
        );
        assert_eq!(stale, Err(SlackAuthError::Stale));
        let missing = verify_slack("s3cret", None, Some(&sig), body, 1_700_000_000);
        assert!(matches!(missing, Err(SlackAuthError::Missing(_))));
        let garbled = verify_slack(
            "s3cret",
            Some("1700000000"),
            Some("v0=zz"),
            body,
            1_700_000_000,
        );
        assert!(matches!(garbled, Err(SlackAuthError::Missing(_))));
    }
}
