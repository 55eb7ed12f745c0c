//! Splits a rule line into arguments the way iptables-restore and a shell would.

/// Whitespace separates arguments; double quotes group (with backslash escapes, as
/// iptables-save writes `\"` and `\'` inside comments), single quotes group literally.
/// An unterminated quote runs to the end of the line instead of failing.
pub fn split_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_arg = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                current.push(escaped);
                            }
                        }
                        other => current.push(other),
                    }
                }
            }
            '\'' => {
                in_arg = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    current.push(q);
                }
            }
            '\\' => {
                in_arg = true;
                if let Some(escaped) = chars.next() {
                    current.push(escaped);
                }
            }
            c if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            other => {
                in_arg = true;
                current.push(other);
            }
        }
    }
    if in_arg {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::split_args;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            split_args(r#"-m comment --comment "to the envoy\'s port" -j RETURN"#),
            vec![
                "-m",
                "comment",
                "--comment",
                "to the envoy's port",
                "-j",
                "RETURN"
            ]
        );
        assert_eq!(split_args("a 'b c' \"\""), vec!["a", "b c", ""]);
        assert_eq!(
            split_args("--comment \"unterminated"),
            vec!["--comment", "unterminated"]
        );
        assert!(split_args("   ").is_empty());
    }
}
