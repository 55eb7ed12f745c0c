//! A cap on how deeply YAML may nest, checked before anything else parses the text.
//!
//! Nesting costs more than its size: 100,000 levels in a 200 KB bundle took 27 s of CPU
//! (the source map keeps each node's path, so its work grows with the square of the depth).
//! Real runbooks, bundles, test cases and configs nest a dozen levels; a file nested past
//! [`MAX_DEPTH`] is refused with where the limit was crossed, after reading only that far.

use yaml_rust2::parser::{Event, Parser};

/// Sequences and mappings inside one another, at most.
pub const MAX_DEPTH: usize = 64;

/// Where YAML nests past [`MAX_DEPTH`]: `(line, column, message)`, both counted from 1.
/// Text that does not parse is let through: the parser that comes next reports it, with
/// its own position.
pub fn check(text: &str) -> Result<(), (usize, usize, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), mark)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err((mark.line(), mark.col() + 1, too_deep()));
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            // yaml-rust2 reads ahead within a line, so `[[[[…` on one line can reach its own
            // limit (255 flow levels) before the 65th level is handed over as an event.
            Err(e) if e.info().contains("recursion limit") => {
                let mark = e.marker();
                return Err((mark.line(), mark.col() + 1, too_deep()));
            }
            Ok((Event::StreamEnd, _)) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

fn too_deep() -> String {
    format!("YAML nested more than {MAX_DEPTH} levels deep")
}

/// [`check`] as a one-line error: `FILE:LINE:COLUMN: message`.
pub fn check_file(text: &str, file: &std::path::Path) -> Result<(), String> {
    check(text)
        .map_err(|(line, column, message)| format!("{}:{line}:{column}: {message}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_where_it_crosses_the_limit() {
        let ok = "calls:\n  - exec: [ps, -e]\n    headers: [[a, b]]\n";
        assert!(check(ok).is_ok());

        let flow = format!("calls: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        let (line, column, message) = check(&flow).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Where the parser gave up reading ahead: past the limit, within the nesting.
        assert_eq!(line, 1);
        assert!((8 + MAX_DEPTH - 1..8 + 300).contains(&column), "{column}");
        assert_eq!(message, "YAML nested more than 64 levels deep");
        // Flow mappings nest the same.
        assert!(check(&format!("a: {}", "{b: ".repeat(100_000))).is_err());

        let block: String = (0..200)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let (line, _, _) = check(&block).unwrap_err();
        assert_eq!(line, MAX_DEPTH + 1);

        // `- - - 1` is a sequence in a sequence in a sequence: the 65th dash crosses.
        let dashes = format!("{}1\n", "- ".repeat(100_000));
        assert_eq!(check(&dashes).unwrap_err().1, 2 * MAX_DEPTH + 1);

        // Not YAML at all: left to the real parser and its message.
        assert!(check("a: [unclosed").is_ok());
    }
}
