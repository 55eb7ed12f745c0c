//! Glob patterns for capabilities.
//!
//! In text patterns (URLs, paths, hosts) `*` matches any run of characters except `/` and
//! `**` matches anything. In argv patterns each element is a text pattern on its own
//! (where `*` matches anything within the element), and an element that is exactly `**`
//! matches all remaining arguments. `{param}` is replaced by the value of that call
//! parameter *as a literal*: a `*` inside a value never acts as a wildcard.
//!
//! In argv patterns, wildcards stand for operands, never options: an argument that begins
//! with `-` is matched only by an element whose literal text names that option
//! (`--zone=*` matches `--zone=a`; `*` and `**` never match `--kubeconfig=/tmp/kc`), so a
//! grant such as `[kubectl, get, "**"]` cannot be stretched into `kubectl get --as=admin`.
//!
//! HTTP patterns are a URL pattern, optionally preceded by the methods it allows and a
//! space: `"POST,PUT http://127.0.0.1:*/x"`. Without methods a pattern allows `GET` and
//! `HEAD` only, so a grant to read a URL is never a grant to change what is behind it.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Literal(String),
    /// `*`
    Star,
    /// `**`
    DoubleStar,
    /// `{name}`, before substitution.
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Text(Vec<Token>),
    Argv(Vec<ArgPattern>),
    /// A URL pattern and the methods (upper case) it allows.
    Http {
        methods: Vec<String>,
        url: Vec<Token>,
    },
}

/// The methods an HTTP pattern that names none allows: they read, they do not change.
pub const READ_METHODS: [&str; 2] = ["GET", "HEAD"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgPattern {
    Rest,
    One(Vec<Token>),
}

/// Why a declared pattern describes no call with these params.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsubstituted {
    /// The param is absent or null: the pattern is for calls that set it.
    #[error("param `{0}` is not set")]
    Missing(String),
    /// The value would begin a command-line argument with `-`.
    #[error(
        "param `{param}` is {value:?}, which begins with `-`: a program would read it as an option, so the host refuses to put it in a command line"
    )]
    OptionLike { param: String, value: String },
}

/// What a request is matched as.
pub enum Subject<'a> {
    Text(&'a str),
    Argv(&'a [String]),
    Http { method: &'a str, url: &'a str },
}

/// Whether `word` is an HTTP method a pattern may name: upper-case letters only (every
/// registered method is), so a method can neither hide a space nor a line break.
fn is_method(word: &str) -> bool {
    !word.is_empty() && word.len() <= 32 && word.bytes().all(|b| b.is_ascii_uppercase())
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                if chars.peek() == Some(&'*') {
                    chars.next();
                    tokens.push(Token::DoubleStar);
                } else {
                    tokens.push(Token::Star);
                }
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for n in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    name.push(n);
                }
                let is_ident = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if closed && is_ident {
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    tokens.push(Token::Param(name));
                } else {
                    literal.push('{');
                    literal.push_str(&name);
                    if closed {
                        literal.push('}');
                    }
                }
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    tokens
}

impl Pattern {
    pub fn text(pattern: &str) -> Self {
        Pattern::Text(tokenize(pattern))
    }

    /// An HTTP pattern, `[METHOD[,METHOD...] ]URL`; methods are case-insensitive. The error
    /// says what is wrong with the methods.
    pub fn http(pattern: &str) -> Result<Self, String> {
        let (methods, url) = match pattern.split_once(' ') {
            Some((methods, url)) => {
                let methods: Vec<String> = methods
                    .split(',')
                    .map(|m| m.trim().to_ascii_uppercase())
                    .collect();
                if let Some(bad) = methods.iter().find(|m| !is_method(m)) {
                    return Err(format!(
                        "{pattern:?}: {bad:?} is not an HTTP method; write `METHOD[,METHOD] URL` (e.g. `POST http://localhost:*/x`), or the URL alone for GET and HEAD"
                    ));
                }
                (methods, url.trim_start())
            }
            None => (READ_METHODS.map(String::from).to_vec(), pattern),
        };
        Ok(Pattern::Http {
            methods,
            url: tokenize(url),
        })
    }

    /// An HTTP pattern a plugin declared. A malformed method list leaves the whole text as
    /// the URL pattern, which holds a space and so matches no URL: the action is granted
    /// nothing rather than more than it said.
    pub fn declared_http(pattern: &str) -> Self {
        Pattern::http(pattern).unwrap_or_else(|_| Pattern::Http {
            methods: Vec::new(),
            url: tokenize(pattern),
        })
    }

    pub fn argv(pattern: &[String]) -> Self {
        Pattern::Argv(
            pattern
                .iter()
                .map(|a| {
                    if a == "**" {
                        ArgPattern::Rest
                    } else {
                        ArgPattern::One(tokenize(a))
                    }
                })
                .collect(),
        )
    }

    /// Substitutes `{param}` tokens, each value as a literal.
    ///
    /// In an argv pattern, a value that begins with `-` is refused in any argument it
    /// would begin: whatever the declared shape, the program would read it as an option
    /// (`kubectl logs --kubeconfig=/tmp/kc`). That holds for option arguments too, since the
    /// host cannot know which options take one (`[cmd, --verbose, "{x}"]`), and some
    /// programs look for options everywhere: gcloud reads `--flags-file` and
    /// `--configuration` even after `--` and as the value of `--zone`.
    pub fn substitute(&self, params: &Value) -> Result<Pattern, Unsubstituted> {
        fn value_of(name: &str, params: &Value) -> Result<String, Unsubstituted> {
            match params.get(name) {
                None | Some(Value::Null) => Err(Unsubstituted::Missing(name.into())),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Ok(other.to_string()),
            }
        }
        fn subst(tokens: &[Token], params: &Value) -> Result<Vec<Token>, Unsubstituted> {
            tokens
                .iter()
                .map(|t| match t {
                    Token::Param(name) => value_of(name, params).map(Token::Literal),
                    other => Ok(other.clone()),
                })
                .collect()
        }
        Ok(match self {
            Pattern::Text(t) => Pattern::Text(subst(t, params)?),
            Pattern::Http { methods, url } => Pattern::Http {
                methods: methods.clone(),
                url: subst(url, params)?,
            },
            Pattern::Argv(args) => Pattern::Argv(
                args.iter()
                    .map(|a| match a {
                        ArgPattern::Rest => Ok(ArgPattern::Rest),
                        ArgPattern::One(tokens) => {
                            if let Some(Token::Param(name)) = tokens.first() {
                                let value = value_of(name, params)?;
                                if value.starts_with('-') {
                                    return Err(Unsubstituted::OptionLike {
                                        param: name.clone(),
                                        value,
                                    });
                                }
                            }
                            subst(tokens, params).map(ArgPattern::One)
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    pub fn matches(&self, subject: &Subject) -> bool {
        match (self, subject) {
            (Pattern::Text(tokens), Subject::Text(s)) => glob(tokens, s, true),
            (Pattern::Argv(args), Subject::Argv(argv)) => {
                program_matches(args, argv) && match_argv(args, argv)
            }
            (
                Pattern::Http {
                    methods,
                    url: tokens,
                },
                Subject::Http { method, url },
            ) => methods.iter().any(|m| m == method) && glob(tokens, url, true),
            _ => false,
        }
    }

    /// The pattern written back out (after substitution), for display.
    pub fn display(&self) -> String {
        fn join(tokens: &[Token]) -> String {
            tokens
                .iter()
                .map(|t| match t {
                    Token::Literal(s) => s.clone(),
                    Token::Star => "*".into(),
                    Token::DoubleStar => "**".into(),
                    Token::Param(p) => format!("{{{p}}}"),
                })
                .collect()
        }
        match self {
            Pattern::Text(t) => join(t),
            // The methods only when they are not the read-only default, as they are written.
            Pattern::Http { methods, url } if methods.iter().eq(READ_METHODS.iter()) => join(url),
            Pattern::Http { methods, url } => format!("{} {}", methods.join(","), join(url)),
            Pattern::Argv(args) => args
                .iter()
                .map(|a| match a {
                    ArgPattern::Rest => "**".to_string(),
                    ArgPattern::One(t) => {
                        let word = join(t);
                        // Placeholders and globs are shown as written, not shell-quoted.
                        if word
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+{}*".contains(c))
                        {
                            word
                        } else {
                            super::shell_quote(&word)
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn match_argv(args: &[ArgPattern], argv: &[String]) -> bool {
    match args.split_first() {
        None => argv.is_empty(),
        Some((ArgPattern::Rest, _)) => argv.iter().all(|a| !a.starts_with('-')),
        Some((ArgPattern::One(tokens), rest)) => match argv.split_first() {
            Some((first, more)) => {
                glob(tokens, first, false)
                    && (!first.starts_with('-') || names_option(tokens, first))
                    && match_argv(rest, more)
            }
            None => false,
        },
    }
}

/// The program is a path: a wildcard in its pattern (`/proc/*/exe`) stands for one path
/// segment, never `/`, `.` or `..`, so `/proc/*/exe` cannot reach `/proc/../tmp/x/exe`.
fn program_matches(args: &[ArgPattern], argv: &[String]) -> bool {
    match (args.first(), argv.first()) {
        (Some(ArgPattern::One(tokens)), Some(program)) => {
            glob(tokens, program, true)
                && !program.split('/').any(|part| part == "." || part == "..")
        }
        _ => true,
    }
}

/// Whether an element that matched `arg`, an argument beginning with `-`, names that
/// option: its leading literal covers the option's whole name (the text before any `=`).
/// `--zone=*` names `--zone=a`; `*`, `-*` and `--z*` name nothing, since a wildcard there
/// would let in `--kubeconfig=…`, `--as=…` or `--flags-file=…`.
fn names_option(tokens: &[Token], arg: &str) -> bool {
    let name = arg.split('=').next().unwrap_or(arg);
    matches!(tokens.first(), Some(Token::Literal(lit)) if lit.len() >= name.len())
}

/// Matches `text` against tokens. With `slash_stops`, `*` does not cross `/`.
/// Iterative backtracking over the last star keeps this linear for typical patterns.
fn glob(tokens: &[Token], text: &str, slash_stops: bool) -> bool {
    fn go(tokens: &[Token], text: &str, slash_stops: bool, budget: &mut u32) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match tokens.split_first() {
            None => text.is_empty(),
            Some((Token::Literal(lit), rest)) => {
                text.starts_with(lit.as_str()) && go(rest, &text[lit.len()..], slash_stops, budget)
            }
            Some((Token::Param(_), _)) => false,
            Some((star @ (Token::Star | Token::DoubleStar), rest)) => {
                let crosses = matches!(star, Token::DoubleStar) || !slash_stops;
                let mut end = 0;
                loop {
                    if go(rest, &text[end..], slash_stops, budget) {
                        return true;
                    }
                    let Some(c) = text[end..].chars().next() else {
                        return false;
                    };
                    if c == '/' && !crosses {
                        return false;
                    }
                    end += c.len_utf8();
                }
            }
        }
    }
    // A hostile pattern/text pair cannot make this exponential: past the budget, no match.
    let mut budget = 100_000;
    go(tokens, text, slash_stops, &mut budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn text_star_stops_at_slash_double_star_does_not() {
        let p = Pattern::text("http://localhost:*/**");
        assert!(p.matches(&Subject::Text("http://localhost:15000/config_dump")));
        assert!(!p.matches(&Subject::Text("http://localhost:15000")));
        let p = Pattern::text("/var/log/*");
        assert!(p.matches(&Subject::Text("/var/log/syslog")));
        assert!(!p.matches(&Subject::Text("/var/log/envoy/envoy.log")));
        assert!(Pattern::text("/var/log/**").matches(&Subject::Text("/var/log/envoy/envoy.log")));
    }

    #[test]
    fn argv_rest_and_element_globs() {
        let p = Pattern::argv(&argv(&["iptables", "-t", "*", "-S"]));
        assert!(p.matches(&Subject::Argv(&argv(&["iptables", "-t", "nat", "-S"]))));
        assert!(!p.matches(&Subject::Argv(&argv(&[
            "iptables", "-t", "nat", "-S", "-F"
        ]))));
        let p = Pattern::argv(&argv(&["kubectl", "get", "**"]));
        assert!(p.matches(&Subject::Argv(&argv(&["kubectl", "get"]))));
        assert!(p.matches(&Subject::Argv(&argv(&["kubectl", "get", "pods", "web"]))));
        // `**` is operands only (see wildcards_match_operands_never_options).
        assert!(!p.matches(&Subject::Argv(&argv(&[
            "kubectl", "get", "pods", "-o", "json"
        ]))));
        assert!(!p.matches(&Subject::Argv(&argv(&["kubectl", "delete", "pods"]))));
    }

    #[test]
    fn params_substitute_as_literals() {
        let p = Pattern::text("{admin_url}/config_dump**");
        let q = p
            .substitute(&json!({"admin_url": "http://localhost:15000"}))
            .unwrap();
        assert!(q.matches(&Subject::Text(
            "http://localhost:15000/config_dump?resource=x"
        )));
        assert!(!q.matches(&Subject::Text("http://localhost:15001/config_dump")));
        // A star in a value is a literal star, not a wildcard.
        let q = p.substitute(&json!({"admin_url": "http://*"})).unwrap();
        assert!(!q.matches(&Subject::Text("http://evil/config_dump")));
        assert_eq!(
            p.substitute(&json!({})),
            Err(Unsubstituted::Missing("admin_url".into()))
        );
        let p = Pattern::argv(&argv(&["kubectl", "logs", "{pod}", "--tail", "{tail}"]));
        let q = p.substitute(&json!({"pod": "a", "tail": 50})).unwrap();
        assert!(q.matches(&Subject::Argv(&argv(&[
            "kubectl", "logs", "a", "--tail", "50"
        ]))));
    }

    #[test]
    fn a_value_beginning_with_a_dash_never_begins_an_argument() {
        let p = Pattern::argv(&argv(&[
            "kubectl",
            "logs",
            "-n",
            "{namespace}",
            "--",
            "{pod}",
        ]));
        let err = p
            .substitute(&json!({"namespace": "default", "pod": "--kubeconfig=/tmp/kc"}))
            .unwrap_err();
        assert_eq!(
            err,
            Unsubstituted::OptionLike {
                param: "pod".into(),
                value: "--kubeconfig=/tmp/kc".into()
            }
        );
        assert!(err.to_string().contains("param `pod`"), "{err}");
        // As an option's argument too: gcloud reads `--flags-file` wherever it stands.
        let err = p
            .substitute(&json!({"namespace": "--flags-file=/tmp/f", "pod": "a"}))
            .unwrap_err();
        assert!(matches!(err, Unsubstituted::OptionLike { ref param, .. } if param == "namespace"));
        // Inside an argument that an option begins, a dash is just a character.
        let p = Pattern::argv(&argv(&["gcloud", "--zone={zone}", "--", "{instance}"]));
        assert!(
            p.substitute(&json!({"zone": "-x", "instance": "vm-1"}))
                .is_ok()
        );
        assert!(
            p.substitute(&json!({"zone": "a", "instance": "-vm"}))
                .is_err()
        );
        // Text patterns (URLs, paths) are not command lines.
        assert!(
            Pattern::text("{path}")
                .substitute(&json!({"path": "-x"}))
                .is_ok()
        );
    }

    #[test]
    fn wildcards_match_operands_never_options() {
        let p = Pattern::argv(&argv(&["kubectl", "get", "**"]));
        assert!(p.matches(&Subject::Argv(&argv(&["kubectl", "get", "pods", "x"]))));
        for hostile in [
            &["kubectl", "get", "pods", "--kubeconfig=/tmp/kc"][..],
            &["kubectl", "get", "pods", "--as", "admin"],
            &["kubectl", "get", "secrets", "-A", "-o", "yaml"],
            &["kubectl", "get", "-"],
        ] {
            assert!(!p.matches(&Subject::Argv(&argv(hostile))), "{hostile:?}");
        }
        let p = Pattern::argv(&argv(&["kubectl", "get", "pods", "-n", "*", "-o", "json"]));
        assert!(p.matches(&Subject::Argv(&argv(&[
            "kubectl", "get", "pods", "-n", "default", "-o", "json"
        ]))));
        assert!(!p.matches(&Subject::Argv(&argv(&[
            "kubectl",
            "get",
            "pods",
            "-n",
            "--as=admin",
            "-o",
            "json"
        ]))));
        // An element names an option by its whole name; a value may follow `=`.
        let p = Pattern::argv(&argv(&["gcloud", "--zone=*"]));
        assert!(p.matches(&Subject::Argv(&argv(&["gcloud", "--zone=a"]))));
        for (pattern, arg) in [
            ("-*", "-x"),
            ("--z*", "--zone"),
            ("*", "--flags-file=/tmp/f"),
        ] {
            let p = Pattern::argv(&argv(&["gcloud", pattern]));
            assert!(
                !p.matches(&Subject::Argv(&argv(&["gcloud", arg]))),
                "{pattern} {arg}"
            );
        }
        let p = Pattern::argv(&argv(&["stat", "--", "*"]));
        assert!(p.matches(&Subject::Argv(&argv(&["stat", "--", "/var/log/x"]))));
        assert!(!p.matches(&Subject::Argv(&argv(&["stat", "--", "-x"]))));
    }

    #[test]
    fn http_patterns_allow_get_and_head_unless_they_name_methods() {
        let req = |method, url| Subject::Http { method, url };
        let p = Pattern::http("http://127.0.0.1:*/**").unwrap();
        assert!(p.matches(&req("GET", "http://127.0.0.1:15000/quitquitquit")));
        assert!(p.matches(&req("HEAD", "http://127.0.0.1:15000/x")));
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            assert!(
                !p.matches(&req(method, "http://127.0.0.1:15000/quitquitquit")),
                "{method}"
            );
        }
        let p = Pattern::http("post,PUT http://127.0.0.1:*/x").unwrap();
        assert!(p.matches(&req("POST", "http://127.0.0.1:1/x")));
        assert!(p.matches(&req("PUT", "http://127.0.0.1:1/x")));
        assert!(!p.matches(&req("GET", "http://127.0.0.1:1/x")));
        assert_eq!(p.display(), "POST,PUT http://127.0.0.1:*/x");
        assert_eq!(Pattern::http("http://a/*").unwrap().display(), "http://a/*");
        let err = Pattern::http("GET\r\nX http://a/").unwrap_err();
        assert!(err.contains("is not an HTTP method"), "{err}");
        assert!(Pattern::http("G-T http://a/").is_err());
        // A plugin's malformed declaration grants nothing.
        let p = Pattern::declared_http("GE T http://a/");
        assert!(!p.matches(&req("GET", "http://a/")));
        // Params fill the URL, never the methods.
        let p = Pattern::http("{url}").unwrap();
        let q = p.substitute(&json!({"url": "http://a/"})).unwrap();
        assert!(q.matches(&req("GET", "http://a/")));
        assert!(!q.matches(&req("POST", "http://a/")));
    }

    #[test]
    fn pathological_patterns_terminate() {
        let p = Pattern::text(&"*a".repeat(30));
        let text = "a".repeat(5000) + "b";
        assert!(!p.matches(&Subject::Text(&text)));
    }
}
