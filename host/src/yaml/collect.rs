//! Every deserialisation error in a YAML file, not only the first one serde stops at.
//!
//! serde stops at its first error. To go on, the text is read once more as a plain YAML
//! tree and deserialised from that tree through serde_path_to_error, which says where in
//! the tree the error is; the error is placed with the [`SourceMap`] (each node's line and
//! column, by path), the node at fault is taken out of the tree, and the tree is tried
//! again, until it deserialises or [`MAX_ERRORS`] are found. One reader, three files: the
//! runbook loader, case files and the server's config use it alike.
//!
//! Taking a node out may hide errors under it (a finding whose `severity` is wrong cannot
//! be built, so the finding goes), but never invents one: the `missing field` that taking
//! out a bad value leaves behind is not reported, since the bad value already was.
//! A YAML syntax error stops everything: past it the parser cannot tell what belongs where.

use super::source_map::SourceMap;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use serde_yaml::Value;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Errors reported for one file at most: a file of a million mistakes costs bounded time
/// and one screen, and the first hundred are what an author fixes first anyway.
pub const MAX_ERRORS: usize = 100;

/// The line that closes a list cut at [`MAX_ERRORS`] (not counted as an error itself).
pub const CUT_NOTICE: &str = "too many errors: stopped after the first 100";

/// One error: line and column counted from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What was taken out of the document, by the paths of the original document.
#[derive(Debug, Default)]
pub struct Pruned {
    /// A sequence's path → the original indices of the elements taken out of it.
    elements: HashMap<String, BTreeSet<usize>>,
    /// Paths of mapping entries taken out.
    entries: HashSet<String>,
}

/// A document that did not deserialise: its errors, and what could be built without the
/// nodes at fault.
pub struct Partial<T> {
    /// Built from what was left, when the document's root itself was sound.
    pub value: Option<T>,
    /// In the order found; [`Located`] positions are the original file's.
    pub errors: Vec<Located>,
    pub pruned: Pruned,
    /// More errors may follow: the search stopped at [`MAX_ERRORS`].
    pub cut: bool,
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.entries.is_empty()
    }

    /// The original path of a node named by its path in the pruned document (`None` when
    /// serde could not name a step of it, e.g. a key that is not a scalar).
    fn original(&self, segments: &[Segment]) -> Option<(String, Vec<Step>)> {
        let mut path = String::new();
        let mut steps = Vec::with_capacity(segments.len());
        for segment in segments {
            let step = match segment {
                Segment::Seq { index } => {
                    let gone = self.elements.get(&path);
                    // The index-th element of those still there.
                    let original = (0..)
                        .filter(|i| gone.is_none_or(|g| !g.contains(i)))
                        .nth(*index)
                        .unwrap_or(*index);
                    Step::Index(*index, original)
                }
                Segment::Map { key } => Step::Key(key.clone()),
                // An externally tagged enum written `{variant: content}`.
                Segment::Enum { variant } => Step::Key(variant.clone()),
                Segment::Unknown => return None,
            };
            path = join(
                &path,
                &match &step {
                    Step::Index(_, original) => original.to_string(),
                    Step::Key(k) => k.clone(),
                },
            );
            steps.push(step);
        }
        Some((path, steps))
    }

    /// The path in the pruned document of a node named by its original path, or `None`
    /// when the node (or one of its parents) was taken out.
    pub fn current(&self, original: &str) -> Option<String> {
        if self.is_empty() {
            return Some(original.to_string());
        }
        let mut prefix = String::new();
        let mut out = String::new();
        for part in original.split('.').filter(|p| !p.is_empty()) {
            let mut shown = part.to_string();
            if let (Some(gone), Ok(i)) = (self.elements.get(&prefix), part.parse::<usize>()) {
                if gone.contains(&i) {
                    return None;
                }
                shown = (i - gone.range(..i).count()).to_string();
            }
            prefix = join(&prefix, part);
            if self.entries.contains(&prefix) {
                return None;
            }
            out = join(&out, &shown);
        }
        Some(out)
    }
}

/// One step of a path: a key, or an index (in the pruned document, in the original).
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize, usize),
}

/// How serde_yaml writes a path in its messages: `steps[0].findings[1]`.
fn shown_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Index(_, original) => out.push_str(&format!("[{original}]")),
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
        }
    }
    out
}

/// A mapping key as serde names it: scalars by their text.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `!tag value` as its value: tags do not count in paths.
fn untagged(node: &mut Value) -> &mut Value {
    match node {
        Value::Tagged(t) => untagged(&mut t.value),
        other => other,
    }
}

/// The node at `steps` (pruned coordinates), tags looked through.
fn node_at<'a>(node: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(untagged(node));
    };
    let child = match (first, untagged(node)) {
        (Step::Index(i, _), Value::Sequence(seq)) => seq.get_mut(*i)?,
        (Step::Key(k), Value::Mapping(m)) => {
            let key = m
                .keys()
                .find(|key| key_text(key).as_deref() == Some(k))
                .cloned()?;
            m.get_mut(&key)?
        }
        _ => return None,
    };
    node_at(child, rest)
}

/// Takes the node at `steps` (pruned coordinates) out of `doc`; false when it is the root
/// or cannot be found, which ends the search.
fn take_out(doc: &mut Value, steps: &[Step]) -> bool {
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    match (last, node_at(doc, parents)) {
        (Step::Index(i, _), Some(Value::Sequence(seq))) if *i < seq.len() => {
            seq.remove(*i);
            true
        }
        (Step::Key(k), Some(Value::Mapping(m))) => {
            let key = m
                .keys()
                .find(|key| key_text(key).as_deref() == Some(k))
                .cloned();
            key.is_some_and(|key| m.shift_remove(&key).is_some())
        }
        _ => false,
    }
}

/// The text parsed as a plain YAML tree, when it is YAML at all.
pub fn document(text: &str) -> Option<Value> {
    serde_yaml::from_str(text).ok()
}

/// Deserialises `doc`, taking out each node at fault and going on; see the module's doc.
pub fn collect<T: DeserializeOwned>(mut doc: Value, map: &SourceMap) -> Partial<T> {
    let mut pruned = Pruned::default();
    let mut errors: Vec<Located> = Vec::new();
    let mut seen: HashSet<(usize, usize, String)> = HashSet::new();
    // Each round takes out a node, so the rounds are bounded by the document's size; the
    // cap bounds them by the errors found as well (a removal that is not reported follows
    // a reported one, at most once per level of nesting).
    for _ in 0..MAX_ERRORS * (super::depth::MAX_DEPTH + 2) {
        let error = match serde_path_to_error::deserialize::<_, T>(&doc) {
            Ok(value) => {
                return Partial {
                    value: Some(value),
                    errors,
                    pruned,
                    cut: false,
                };
            }
            Err(e) => e,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let message = super::strip_location(&error.inner().to_string());
        let Some((path, steps)) = pruned.original(&segments) else {
            break;
        };
        let about_key = message.starts_with("unknown field ");
        let follows_removal = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .is_some_and(|field| pruned.entries.contains(&join(&path, field)));
        if !follows_removal {
            let (line, column) = if about_key {
                map.key(&path)
            } else {
                map.value(&path)
            };
            // serde_yaml names the node in its messages; so do we, by the original path.
            let named = shown_path(if about_key {
                &steps[..steps.len().saturating_sub(1)]
            } else {
                &steps
            });
            let message = if named.is_empty() {
                message
            } else {
                format!("{named}: {message}")
            };
            if seen.insert((line, column, message.clone())) {
                errors.push(Located {
                    line,
                    column,
                    message,
                });
            }
            if errors.len() >= MAX_ERRORS {
                return Partial {
                    value: None,
                    errors,
                    pruned,
                    cut: true,
                };
            }
        }
        if !take_out(&mut doc, &steps) {
            break;
        }
        match steps.last() {
            Some(Step::Index(_, original)) => {
                let parent = path.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                pruned
                    .elements
                    .entry(parent.to_string())
                    .or_default()
                    .insert(*original);
            }
            _ => {
                pruned.entries.insert(path);
            }
        }
    }
    Partial {
        value: None,
        errors,
        pruned,
        cut: false,
    }
}

/// Deserialises `text` into `T`; on failure, every error [`collect`] finds, sorted by
/// position, each as `(line, column, message)`, with a last [`CUT_NOTICE`] line when cut.
/// `first` is serde_yaml's own error, kept when the tree cannot say more (not YAML, or
/// a disagreement between the two readers).
pub fn all_errors<T: DeserializeOwned>(text: &str) -> Result<T, Vec<Located>> {
    let first = match serde_yaml::from_str::<T>(text) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let single = || {
        let (line, column) = first
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        vec![Located {
            line,
            column,
            message: super::strip_location(&first.to_string()),
        }]
    };
    let (Some(doc), Ok(map)) = (document(text), SourceMap::build(text)) else {
        return Err(single());
    };
    let partial = collect::<T>(doc, &map);
    if partial.errors.is_empty() {
        return Err(single());
    }
    Err(finish(partial.errors, partial.cut))
}

/// Sorted by position, with the [`CUT_NOTICE`] after the last when cut.
pub fn finish(mut errors: Vec<Located>, cut: bool) -> Vec<Located> {
    errors.sort_by_key(|e| (e.line, e.column));
    if cut && let Some(last) = errors.last() {
        let (line, column) = (last.line, last.column);
        errors.push(Located {
            line,
            column,
            message: CUT_NOTICE.into(),
        });
    }
    errors
}

/// `FILE:LINE:COLUMN: message` lines, control characters in the message escaped: keys and
/// values from the file end up in messages, and a terminal must not act on them.
pub fn lines(file: &std::path::Path, errors: &[Located]) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}: {}",
                escape_controls(&file.display().to_string()),
                e.line,
                e.column,
                escape_controls(&e.message)
            )
        })
        .collect()
}

/// Control characters as Rust escapes (`\u{1b}`, `\n`); everything else as it is.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: String,
        #[serde(default)]
        size: Option<u32>,
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        A,
        B,
    }

    #[test]
    fn every_error_is_found_and_placed() {
        let text = "name: n\nitems:\n  - id: a\n    kind: a\n    colour: red\n  - id: b\n    kind: c\n  - id: c\n    size: big\n    kind: b\n  - {id: d, kind: [a]}\n";
        let errors = all_errors::<Doc>(text).unwrap_err();
        let got: Vec<(usize, usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.column, e.message.as_str()))
            .collect();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert_eq!((got[0].0, got[0].1), (5, 5));
        assert!(
            got[0].2.starts_with("items[0]: unknown field `colour`"),
            "{got:?}"
        );
        assert_eq!((got[1].0, got[1].1), (7, 11));
        assert!(
            got[1].2.starts_with("items[1].kind: unknown variant `c`"),
            "{got:?}"
        );
        assert_eq!((got[2].0, got[2].1), (9, 11));
        assert!(
            got[2].2.starts_with("items[2].size: invalid type"),
            "{got:?}"
        );
        assert_eq!((got[3].0, got[3].1), (11, 19));
        // No `missing field` for what was taken out because it was wrong.
        assert!(
            !got.iter().any(|e| e.2.contains("missing field")),
            "{got:?}"
        );
    }

    #[test]
    fn a_missing_field_is_reported_and_the_rest_still_searched() {
        let text = "name: n\nitems:\n  - kind: a\n  - id: b\n    kind: a\n    extra: 1\n";
        let errors = all_errors::<Doc>(text).unwrap_err();
        let got: Vec<String> = errors
            .iter()
            .map(|e| format!("{}:{} {}", e.line, e.column, e.message))
            .collect();
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with("3:5 items[0]: missing field `id`"),
            "{got:?}"
        );
        // Where serde_yaml itself puts it, reading the text.
        let first = serde_yaml::from_str::<Doc>(text).unwrap_err();
        let at = first.location().unwrap();
        assert_eq!((at.line(), at.column()), (3, 5));
        assert!(
            got[1].starts_with("6:5 items[1]: unknown field `extra`"),
            "{got:?}"
        );
    }

    #[test]
    fn paths_follow_the_elements_taken_out() {
        let mut pruned = Pruned::default();
        pruned.elements.insert("items".into(), [0, 2].into());
        pruned.entries.insert("items.3.size".into());
        assert_eq!(pruned.current("items.1.id").as_deref(), Some("items.0.id"));
        assert_eq!(pruned.current("items.3.id").as_deref(), Some("items.1.id"));
        assert_eq!(pruned.current("items.2.id"), None);
        assert_eq!(pruned.current("items.3.size"), None);
        let (path, _) = pruned
            .original(&[
                Segment::Map {
                    key: "items".into(),
                },
                Segment::Seq { index: 1 },
            ])
            .unwrap();
        assert_eq!(path, "items.3");
    }

    #[test]
    fn the_search_stops_at_the_cap() {
        let mut text = String::from("name: n\nitems:\n");
        for i in 0..1000 {
            text.push_str(&format!("  - {{id: x{i}, kind: a, bad: 1}}\n"));
        }
        let errors = all_errors::<Doc>(&text).unwrap_err();
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(errors.last().unwrap().message, CUT_NOTICE);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(escape_controls("plain"), "plain");
    }
}
