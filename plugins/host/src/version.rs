//! `envoy --version`: `/usr/local/bin/envoy  version: dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL`.

use triage_envoy::EnvoyVersion;

/// The build version after `version:` (the whole text when there is no such label).
pub fn build_version(text: &str) -> Option<&str> {
    let line = text
        .lines()
        .find(|l| l.contains("version:"))
        .or_else(|| text.lines().next())?;
    let build = match line.find("version:") {
        Some(at) => &line[at + "version:".len()..],
        None => line,
    };
    let build = build.trim();
    (!build.is_empty()).then_some(build)
}

/// What `envoy --version` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, triage_sdk::JsonSchema)]
pub struct EnvoyVersionFacts {
    /// Whether the binary ran and answered; false when it is missing (see `error`).
    pub found: bool,
    /// The binary run.
    pub binary: String,
    /// The first line it printed.
    pub raw: Option<String>,
    /// The build version after "version:", e.g.
    /// "dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL".
    pub build_version: Option<String>,
    /// "X.Y.Z", e.g. "1.15.1"; null when the output holds no version.
    pub version_number: Option<String>,
    /// Major number.
    pub major: Option<u32>,
    /// Minor number.
    pub minor: Option<u32>,
    /// Patch number.
    pub patch: Option<u32>,
    /// The minimum compared against (`min_version`; the guide asks for 1.9.1 or later).
    pub minimum: String,
    /// Whether the version is at least `minimum`; null when there is no version.
    pub meets_minimum: Option<bool>,
    /// Why the binary gave no answer.
    pub error: Option<String>,
}

/// Builds the facts from the binary's output (or why it could not run). A binary that
/// is missing or fails is a fact (`envoy-version-unknown`); denied or uncaptured calls stay
/// errors.
pub fn envoy_version_facts(
    binary: &str,
    output: Result<String, triage_sdk::CapabilityError>,
    minimum: EnvoyVersion,
) -> Result<EnvoyVersionFacts, triage_sdk::ProbeError> {
    let mut facts = EnvoyVersionFacts {
        found: false,
        binary: binary.to_owned(),
        raw: None,
        build_version: None,
        version_number: None,
        major: None,
        minor: None,
        patch: None,
        minimum: minimum.to_string(),
        meets_minimum: None,
        error: None,
    };
    let text = match output {
        Ok(text) => text,
        Err(triage_sdk::CapabilityError::Failed(e)) => {
            facts.error = Some(e);
            return Ok(facts);
        }
        Err(other) => return Err(triage_sdk::ProbeError::Capability(other)),
    };
    facts.found = true;
    facts.raw = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(500).collect());
    facts.build_version = build_version(&text).map(|b| b.chars().take(500).collect());
    if let Some(version) = facts
        .build_version
        .as_deref()
        .and_then(EnvoyVersion::parse_build)
    {
        facts.version_number = Some(version.to_string());
        facts.major = Some(version.major);
        facts.minor = Some(version.minor);
        facts.patch = Some(version.patch);
        facts.meets_minimum = Some(version >= minimum);
    }
    Ok(facts)
}
