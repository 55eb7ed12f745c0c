//! `envoy --version`: `/usr/local/bin/envoy  version: dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL`.

/// A release number, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

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

/// The first `/`- or space-separated piece of the form `X.Y.Z` or `X.Y.Z-suffix`.
pub fn envoy_version(text: &str) -> Option<Version> {
    text.split(|c: char| c == '/' || c.is_whitespace())
        .find_map(parse_version)
}

/// `X.Y.Z`, `X.Y.Z-dev` or `X.Y` (patch 0), as the `min_version` param is written.
pub fn parse_version(piece: &str) -> Option<Version> {
    let mut parts = piece.splitn(3, '.');
    let major = number(parts.next()?)?;
    let minor_piece = parts.next()?;
    let Some(rest) = parts.next() else {
        return Some(Version {
            major,
            minor: number(minor_piece)?,
            patch: 0,
        });
    };
    let minor = number(minor_piece)?;
    let patch_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (patch, suffix) = rest.split_at(patch_end);
    if !(suffix.is_empty() || suffix.starts_with(['-', '+', '_'])) {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch: number(patch)?,
    })
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
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
    minimum: Version,
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
    if let Some(version) = facts.build_version.as_deref().and_then(envoy_version) {
        facts.version_number = Some(version.to_string());
        facts.major = Some(version.major);
        facts.minor = Some(version.minor);
        facts.patch = Some(version.patch);
        facts.meets_minimum = Some(version >= minimum);
    }
    Ok(facts)
}
