//! Envoy build versions: `dc78069b10cc94fa07bb974b7101dd1b42e2e7bf/1.15.1-dev/Clean/RELEASE/BoringSSL`.

/// The `X.Y.Z` of an Envoy build version string: the first `/`- or space-separated piece of
/// the form `X.Y.Z` or `X.Y.Z-suffix` (the suffix, e.g. `-dev`, is dropped).
pub fn envoy_version_number(text: &str) -> Option<String> {
    text.split(|c: char| c == '/' || c.is_whitespace())
        .find_map(|piece| {
            let mut parts = piece.splitn(3, '.');
            let major = parts.next().filter(|p| is_number(p))?;
            let minor = parts.next().filter(|p| is_number(p))?;
            let rest = parts.next()?;
            let patch_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (patch, suffix) = rest.split_at(patch_end);
            let suffix_ok = suffix.is_empty() || suffix.starts_with(['-', '+', '_']);
            (is_number(patch) && suffix_ok).then(|| format!("{major}.{minor}.{patch}"))
        })
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit())
}
