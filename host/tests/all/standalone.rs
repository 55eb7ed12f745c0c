//! The repository stands alone: the real fixtures it tests on are inside it, each listed with
//! its source, and nothing in it reaches for files outside the checkout.

use super::*;

/// fixtures/real/SOURCES.md rows: (file, bytes).
fn sources_rows() -> Vec<(String, u64)> {
    let path = root().join("fixtures/real/SOURCES.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| file ") && !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let bytes = cells[2]
                .parse()
                .unwrap_or_else(|e| panic!("SOURCES.md: bytes of {}: {e}", cells[1]));
            (cells[1].to_string(), bytes)
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every real fixture is listed in SOURCES.md (where it came from, its licence) with its size,
/// and every listed file is there: an edited or added file shows up here.
#[test]
fn every_real_fixture_is_listed_with_its_size() {
    let dir = root().join("fixtures/real");
    let rows = sources_rows();
    assert!(rows.len() >= 50, "{rows:?}");
    let mut problems = Vec::new();
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    for file in &files {
        let name = file
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if name == "SOURCES.md" {
            continue;
        }
        match rows.iter().find(|(f, _)| *f == name) {
            None => problems.push(format!("{name} is not listed in fixtures/real/SOURCES.md")),
            Some((_, bytes)) => {
                let actual = file.metadata().unwrap().len();
                if actual != *bytes {
                    problems.push(format!(
                        "{name} has {actual} bytes, SOURCES.md says {bytes}: real fixtures are \
                         never edited (derive new data elsewhere, e.g. a test's own data dir)"
                    ));
                }
            }
        }
    }
    for (name, _) in &rows {
        if !dir.join(name).is_file() {
            problems.push(format!(
                "SOURCES.md lists {name}, which is not in fixtures/real"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// No test, bench, bundle or doc points outside the repository (the workspace this project
/// started in kept fixtures, the design and the guide in a `shared` directory beside it).
#[test]
fn nothing_refers_to_files_outside_the_repository() {
    // Built so this file does not match itself.
    let shared = ["shared", "/"].concat();
    let needles = [
        format!("../{shared}"),
        format!("/work/{shared}"),
        format!("{shared}fixtures"),
        format!("{shared}seed"),
        format!("{shared}DESIGN"),
    ];
    let mut files = Vec::new();
    for top in [
        "host", "sdk", "plugins", "runbooks", "examples", "docs", ".ci",
    ] {
        let dir = root().join(top);
        if dir.is_dir() {
            files_under(&dir, &mut files);
        }
    }
    for entry in std::fs::read_dir(root()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push(path);
        }
    }
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root()).unwrap();
        // Build outputs and fuzz corpora are not sources.
        if rel.components().any(|c| {
            matches!(
                c.as_os_str().to_str(),
                Some("target" | "corpus" | "artifacts" | "fixtures")
            )
        }) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                problems.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "these lines point outside the repository; use fixtures/real/... (real data), \
         runbooks/findings.yaml (finding ids) or docs/guide/ (the guide):\n{}",
        problems.join("\n")
    );
}
