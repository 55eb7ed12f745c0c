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
    /// Why the binary gave no answer (every attempt, when the fallbacks failed too).
    pub error: Option<String>,
    /// Which attempt answered: "binary" (the path given), "process" (the running Envoy's
    /// executable, `/proc/PID/exe`), "path" (`envoy` on PATH); null when none did.
    pub source: Option<String>,
    /// The PID whose executable answered (`source: process`).
    pub pid: Option<u32>,
    /// The attempts that gave no version, in the order tried, each with why.
    pub attempts: Vec<Attempt>,
}

/// One `--version` run that gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, triage_sdk::JsonSchema)]
pub struct Attempt {
    /// What was run with `--version`.
    pub binary: String,
    /// Why it gave no answer.
    pub error: String,
}

/// Where else to look when the given binary does not answer, in the order tried: the
/// executable of each running Envoy (the binary that serves traffic, even if it was
/// installed elsewhere or deleted since), then `envoy` on PATH.
pub fn fallback_binaries(envoy_pids: &[u32]) -> Vec<(String, &'static str, Option<u32>)> {
    let mut binaries: Vec<_> = envoy_pids
        .iter()
        .map(|pid| (format!("/proc/{pid}/exe"), "process", Some(*pid)))
        .collect();
    binaries.push(("envoy".to_owned(), "path", None));
    binaries
}

/// Runs `--version` on `binary`, and when it gives no answer, on each of the
/// [`fallback_binaries`] (the Envoy PIDs come from `envoy_pids`, asked only then). A
/// missing or failing binary, a denied fallback or a `ps` that fails are recorded in
/// `attempts`; a call a bundle does not hold stays an error, so a replay never guesses.
pub fn envoy_version_with_fallbacks(
    binary: &str,
    minimum: EnvoyVersion,
    mut run_version: impl FnMut(&str) -> Result<String, triage_sdk::CapabilityError>,
    envoy_pids: impl FnOnce() -> Result<Vec<u32>, triage_sdk::CapabilityError>,
) -> Result<EnvoyVersionFacts, triage_sdk::ProbeError> {
    use triage_sdk::CapabilityError as E;
    let first = envoy_version_facts(binary, run_version(binary), minimum)?;
    if first.found {
        return Ok(EnvoyVersionFacts {
            source: Some("binary".to_owned()),
            ..first
        });
    }
    let mut attempts = vec![Attempt {
        binary: binary.to_owned(),
        error: first.error.clone().unwrap_or_default(),
    }];
    let pids = match envoy_pids() {
        Ok(pids) => pids,
        Err(E::NotCaptured(e)) => {
            return Err(triage_sdk::ProbeError::Capability(E::NotCaptured(e)));
        }
        Err(E::Denied(e) | E::Failed(e) | E::TimedOut(e)) => {
            attempts.push(Attempt {
                binary: "ps (to find the running Envoy)".to_owned(),
                error: e,
            });
            Vec::new()
        }
    };
    for (candidate, source, pid) in fallback_binaries(&pids) {
        let output = match run_version(&candidate) {
            Err(E::Denied(e) | E::TimedOut(e)) => Err(E::Failed(e)),
            other => other,
        };
        let facts = envoy_version_facts(&candidate, output, minimum)?;
        if facts.found {
            return Ok(EnvoyVersionFacts {
                source: Some(source.to_owned()),
                pid,
                attempts,
                ..facts
            });
        }
        attempts.push(Attempt {
            binary: candidate,
            error: facts.error.unwrap_or_default(),
        });
    }
    Ok(EnvoyVersionFacts {
        error: Some(
            attempts
                .iter()
                .map(|a| format!("{}: {}", a.binary, a.error))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        attempts,
        ..first
    })
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
        source: None,
        pid: None,
        attempts: Vec::new(),
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
