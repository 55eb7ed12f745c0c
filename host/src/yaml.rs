//! YAML helpers every file reader shares (runbooks, bundles, policies, configs, cases,
//! redaction patterns): the nesting cap checked before parsing, serde_yaml errors as
//! `FILE:LINE:COLUMN: message`, each node's position by path, and every deserialisation
//! error of a file rather than the first. A leaf module, so the readers need not import
//! each other.

pub mod collect;
pub mod depth;
pub mod source_map;

/// serde_yaml appends " at line L column C" to its messages; we print positions up front.
pub fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// A serde_yaml error in `file`: where it is (`FILE:LINE:COLUMN`, or `FILE` when serde_yaml
/// gives no position) and its message without the position.
pub fn yaml_error_parts(file: &std::path::Path, e: &serde_yaml::Error) -> (String, String) {
    let at = e
        .location()
        .map(|l| format!("{}:{}:{}", file.display(), l.line(), l.column()))
        .unwrap_or_else(|| file.display().to_string());
    (at, strip_location(&e.to_string()))
}

/// The one-line form of [`yaml_error_parts`]: `FILE:LINE:COLUMN: message`.
pub fn yaml_error(file: &std::path::Path, e: &serde_yaml::Error) -> String {
    let (at, message) = yaml_error_parts(file, e);
    format!("{at}: {message}")
}
