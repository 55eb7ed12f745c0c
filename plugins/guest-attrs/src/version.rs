//! Envoy build versions: `dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL`.

/// The `X.Y.Z` of an Envoy build version string (see
/// [`EnvoyVersion::parse_build`](triage_envoy::EnvoyVersion::parse_build)).
pub fn envoy_version_number(text: &str) -> Option<String> {
    triage_envoy::EnvoyVersion::parse_build(text).map(|v| v.to_string())
}
