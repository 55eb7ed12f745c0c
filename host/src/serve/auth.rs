//! Checking callers' secrets: bearer tokens for /v1, and the constant-time compare the chat
//! platforms' checks use too (each platform's own check is in its file under `chat/`).

use super::config::Token;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<Token> {
        vec![
            Token {
                name: "ops".into(),
                secret: "0123456789abcdef-ops".into(),
                scope: Default::default(),
                permissions: vec![super::super::config::Permission::Runs],
                fleets: None,
            },
            Token {
                name: "ci".into(),
                secret: "0123456789abcdef-ci".into(),
                scope: Default::default(),
                permissions: vec![super::super::config::Permission::Runs],
                fleets: None,
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
}
