//! Envoy domain code shared by triage's plugins (config-dump, host, guest-attrs), kept out
//! of `triage-sdk`, which is for any plugin about any system.
//!
//! Envoy release numbers, as every source spells them: the build string in config dumps and
//! guest attributes (`sha/1.15.1-dev/Clean/RELEASE/BoringSSL`), `envoy --version`, and the
//! `min_version` params of runbooks (`1.9.1`, `1.9`); and the oldest release the guide
//! supports.
#![deny(missing_docs)]

use std::fmt;

use triage_sdk::ProbeError;

/// The oldest Envoy Traffic Director works with (the guide: "Envoy 1.9.1 o una versión
/// posterior"); the default of every `min_version` param.
pub const GUIDE_MINIMUM: &str = "1.9.1";

/// serde default for a `min_version` param.
pub fn default_min_version() -> String {
    GUIDE_MINIMUM.to_owned()
}

/// Reads a `min_version` param (`1.9.1`, `1.9`, `v1.9.1`); anything without a release number
/// is the caller's mistake, so it is `invalid_params`.
pub fn min_version_param(text: &str) -> Result<EnvoyVersion, ProbeError> {
    EnvoyVersion::parse(text.trim()).ok_or_else(|| {
        ProbeError::invalid_params(format!(
            "min_version must be a release number like 1.9.1, got {text:?}"
        ))
    })
}

/// A release number `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvoyVersion {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number (0 when the string had only two parts).
    pub patch: u32,
}

impl EnvoyVersion {
    /// Finds the release number in any of Envoy's spellings: the build string
    /// `sha/1.15.1-dev/Clean/RELEASE/BoringSSL`, `envoy --version`'s
    /// `envoy  version: sha/1.26.0/Clean/RELEASE/BoringSSL`, `envoy 1.26.0`, `v1.9.1`, `1.9`.
    ///
    /// The first `/`- or space-separated word that starts with `N.N` wins, so a hex SHA
    /// (never containing a dot) is skipped.
    pub fn parse(text: &str) -> Option<EnvoyVersion> {
        text.split(|c: char| c == '/' || c.is_whitespace())
            .find_map(EnvoyVersion::parse_word)
    }

    fn parse_word(word: &str) -> Option<EnvoyVersion> {
        let word = word.strip_prefix(['v', 'V']).unwrap_or(word);
        let numeric_len = word
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(word.len());
        let numeric = word.get(..numeric_len)?.trim_end_matches('.');
        let mut parts = numeric.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        Some(EnvoyVersion {
            major,
            minor,
            patch,
        })
    }

    /// Like [`parse`](Self::parse), but only a full `X.Y.Z` word counts, optionally with a
    /// `-`, `+` or `_` suffix (`1.15.1-dev`): for build strings, where a two-part or
    /// half-numeric word (`1.15`, `1.15.1a`) is not a release.
    pub fn parse_build(text: &str) -> Option<EnvoyVersion> {
        text.split(|c: char| c == '/' || c.is_whitespace())
            .find_map(|word| {
                let mut parts = word.splitn(3, '.');
                let (major, minor, rest) = (parts.next()?, parts.next()?, parts.next()?);
                let patch_len = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let (patch, suffix) = rest.split_at(patch_len);
                let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
                let well_formed = [major, minor, patch].into_iter().all(digits)
                    && (suffix.is_empty() || suffix.starts_with(['-', '+', '_']));
                Some(EnvoyVersion {
                    major: major.parse().ok()?,
                    minor: minor.parse().ok()?,
                    patch: patch.parse().ok()?,
                })
                .filter(|_| well_formed)
            })
    }

    /// Whether this release is `min` or newer.
    pub fn at_least(&self, min: &EnvoyVersion) -> bool {
        self >= min
    }
}

impl fmt::Display for EnvoyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Option<String> {
        EnvoyVersion::parse(text).map(|v| v.to_string())
    }

    #[test]
    fn finds_the_release_in_every_spelling() {
        assert_eq!(
            v("dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL")
                .as_deref(),
            Some("1.15.1")
        );
        assert_eq!(v("1.9.1").as_deref(), Some("1.9.1"));
        assert_eq!(v("envoy 1.26.0").as_deref(), Some("1.26.0"));
        assert_eq!(
            v("envoy  version: 7b8baff1758f0a584dcc3cb657b5032000bcb3d7/1.16.0/Clean/RELEASE/BoringSSL")
                .as_deref(),
            Some("1.16.0")
        );
        assert_eq!(v("0/1.7.0-dev//RELEASE").as_deref(), Some("1.7.0"));
        assert_eq!(v("v1.30.2").as_deref(), Some("1.30.2"));
        assert_eq!(v("1.12").as_deref(), Some("1.12.0"));
        assert_eq!(v("12345/abc"), None);
        assert_eq!(v(""), None);
        assert_eq!(v("99999999999.1.1"), None);
    }

    #[test]
    fn orders_numerically() {
        let min = EnvoyVersion::parse("1.9.1").unwrap_or(EnvoyVersion {
            major: 9,
            minor: 9,
            patch: 9,
        });
        let check = |s: &str| EnvoyVersion::parse(s).map(|v| v.at_least(&min));
        assert_eq!(check("1.10.0"), Some(true));
        assert_eq!(check("1.9.1"), Some(true));
        assert_eq!(check("1.9.0"), Some(false));
        assert_eq!(check("1.8.99"), Some(false));
        assert_eq!(check("2.0"), Some(true));
    }

    #[test]
    fn build_strings_need_a_full_release_word() {
        let b = |s: &str| EnvoyVersion::parse_build(s).map(|v| v.to_string());
        assert_eq!(
            b("abc/1.28.0/Distribution/RELEASE/BoringSSL").as_deref(),
            Some("1.28.0")
        );
        assert_eq!(b("sha/1.15.1-dev/Clean").as_deref(), Some("1.15.1"));
        assert_eq!(b("1.15"), None);
        assert_eq!(b("1.15.x"), None);
        assert_eq!(b("1.15.1a"), None);
    }
}
