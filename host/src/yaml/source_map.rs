//! Line and column of every node, by path (`steps.2.findings.0.when`), from yaml-rust2's
//! marked events. serde_yaml gives positions only for its own errors; this gives them for
//! the checks that run after deserialisation.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<String, (usize, usize)>,
    keys: HashMap<String, (usize, usize)>,
}

enum Frame {
    Mapping {
        path: String,
        key: Option<String>,
        expect_key: bool,
    },
    Sequence {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    map: SourceMap,
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

impl Builder {
    /// The path of the node starting now, or `None` when it is a mapping key.
    fn node_path(&mut self, mark: Marker, scalar: Option<&str>) -> Option<String> {
        let pos = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, index }) => {
                let p = join(path, &index.to_string());
                *index += 1;
                Some(p)
            }
            Some(Frame::Mapping {
                path,
                key,
                expect_key,
            }) => {
                if *expect_key {
                    *expect_key = false;
                    let k = scalar.unwrap_or("?").to_string();
                    self.map.keys.insert(join(path, &k), pos);
                    // yaml-rust2 marks a block mapping where its first `:` is; a mapping
                    // begins where its first key does (serde_yaml's errors say so too).
                    if key.is_none()
                        && let Some(start) = self.map.values.get_mut(path.as_str())
                        && pos < *start
                    {
                        *start = pos;
                    }
                    *key = Some(k);
                    None
                } else {
                    *expect_key = true;
                    Some(join(path, key.as_deref().unwrap_or("?")))
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match event {
            Event::Scalar(value, ..) => {
                if let Some(p) = self.node_path(mark, Some(&value)) {
                    self.map.values.insert(p, pos);
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.node_path(mark, None) {
                    self.map.values.insert(p, pos);
                }
            }
            Event::MappingStart(..) => {
                let path = self.node_path(mark, None).unwrap_or_default();
                self.map.values.insert(path.clone(), pos);
                self.stack.push(Frame::Mapping {
                    path,
                    key: None,
                    expect_key: true,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(mark, None).unwrap_or_default();
                self.map.values.insert(path.clone(), pos);
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl SourceMap {
    /// Errors are (line, column, message).
    pub fn build(text: &str) -> Result<Self, (usize, usize, String)> {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        parser.load(&mut builder, false).map_err(|e| {
            let m = e.marker();
            (m.line(), m.col() + 1, e.info().to_string())
        })?;
        Ok(builder.map)
    }

    /// The same positions under other paths; `None` drops a path. After nodes were taken
    /// out of a document (yaml/collect.rs), the nodes left keep their places in the file
    /// under the paths they now have.
    pub fn remap(&self, path: impl Fn(&str) -> Option<String>) -> SourceMap {
        let moved = |from: &HashMap<String, (usize, usize)>| {
            from.iter()
                .filter_map(|(p, pos)| path(p).map(|p| (p, *pos)))
                .collect()
        };
        SourceMap {
            values: moved(&self.values),
            keys: moved(&self.keys),
        }
    }

    /// Position of the value at `path`, falling back to the nearest ancestor.
    pub fn value(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p) {
                return *pos;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return self.values.get("").copied().unwrap_or((1, 1)),
            }
        }
    }

    /// Position of the key at `path` (e.g. an unknown field), else of its value.
    pub fn key(&self, path: &str) -> (usize, usize) {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_nodes() {
        let text = "id: x\nsteps:\n  - id: a\n    needs: [b]\n  - id: b\n    findings:\n      - when: \"true\"\n";
        let map = SourceMap::build(text).unwrap();
        assert_eq!(map.value("id"), (1, 5));
        assert_eq!(map.value("steps.0.id"), (3, 9));
        assert_eq!(map.value("steps.0.needs.0"), (4, 13));
        assert_eq!(map.value("steps.1.findings.0.when"), (7, 15));
        assert_eq!(map.key("steps.1.findings"), (6, 5));
        assert_eq!(map.value("steps.1.nothing.here"), (5, 5));
    }
}
