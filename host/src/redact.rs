//! Redaction: secrets a target answered with (a token on a command line, an `Authorization`
//! header, the metadata server's access token, a private key) never leave in a bundle, a
//! report or a chat post.
//!
//! On by default: [`Redactor::builtin`] holds the built-in patterns, and a team adds its
//! own from a file (`--redact FILE`, or `redact:` in the server's config; see
//! docs/security.md). Each pattern is a regular expression (the `regex` crate: linear time,
//! so a hostile answer costs the same as any other of its size); when it has a group named
//! `secret`, only that group is replaced (`--token=` stays, the token goes), otherwise the
//! whole match. The value is replaced by `[REDACTED:<pattern>]`, so a reader knows what was
//! there and why it is gone, and a [`Tally`] counts what each pattern took, for the bundle's
//! `redacted:` list (pattern names and counts, never values).
//!
//! What is matched is bytes (answers can be binary): classes are ASCII-only, so a match
//! never starts or ends inside a UTF-8 character.

use aho_corasick::AhoCorasick;
use regex::bytes::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Where a redacted value was: `[REDACTED:jwt]`.
const PLACEHOLDER_OPEN: &str = "[REDACTED:";

/// Names whose value is a secret, as the last part of a key: `password`, `DB_PASSWORD`,
/// `SLACK_SIGNING_SECRET`, `access_token`, `accessToken`, `x-api-key`. The key must end in
/// the word, so `token_bucket`, `max_tokens`, `--token-file` and `secretName` are left
/// alone (they name a setting, a count or a path, not a secret). Not `credentials`:
/// `GOOGLE_APPLICATION_CREDENTIALS` is a path.
const SECRET_WORDS: &str = r"(?:password|passwd|passphrase|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|signing[_.-]?key|encryption[_.-]?key|authorization|cookie)";

/// The characters a key is made of, before its secret word.
const KEY_PREFIX: &str = r"[a-z0-9_.-]*?";

/// Every match of [`SECRET_WORDS`] holds one of these (ASCII case aside): `pass` stands for
/// password, passwd and passphrase, `key` for the five kinds of key.
const SECRET_WORD_LITERALS: &[&str] =
    &["pass", "secret", "token", "key", "authorization", "cookie"];

/// What every match of a built-in pattern holds, ASCII case aside (see [`Pattern::needs`]).
/// A pattern not listed here is always run.
fn builtin_needs(name: &str) -> &'static [&'static str] {
    match name {
        "private-key" => &["PRIVATE KEY"],
        "metadata-access-token" => &["\"access_token\""],
        "jwt" => &["eyJ"],
        "gcp-access-token" => &["ya29."],
        "gcp-api-key" => &["AIza"],
        "aws-access-key-id" => &["AKIA", "ASIA"],
        "slack-token" => &["xox"],
        "github-token" => &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        "authorization-header" => &["authorization"],
        "cookie-header" => &["cookie"],
        "bearer-token" => &["bearer"],
        "url-credentials" => &["://"],
        "secret-flag" | "secret-assignment" | "secret-field" => SECRET_WORD_LITERALS,
        _ => &[],
    }
}

/// The built-in patterns, most specific first: a value is counted under the first pattern
/// that takes it (later ones skip what is already a placeholder).
fn builtin_sources() -> Vec<(&'static str, String)> {
    let words = SECRET_WORDS;
    let key = KEY_PREFIX;
    vec![
        // PEM blocks: the body goes, the armour stays so a reader sees what it was. A block
        // cut short (a bounded read) loses everything after its BEGIN line.
        (
            "private-key",
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?P<secret>(?s:.*?))(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)"
                .into(),
        ),
        // The metadata server's answer to `.../service-accounts/default/token`.
        (
            "metadata-access-token",
            r#""access_token"\s*:\s*"(?P<secret>[^"]+)""#.into(),
        ),
        // Header, payload (both base64url of JSON, so starting `eyJ`) and signature:
        // Kubernetes service-account tokens, OIDC id tokens.
        (
            "jwt",
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*".into(),
        ),
        ("gcp-access-token", r"\bya29\.[A-Za-z0-9_.-]{16,}".into()),
        ("gcp-api-key", r"\bAIza[A-Za-z0-9_-]{35}".into()),
        ("aws-access-key-id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b".into()),
        ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}".into()),
        ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,}".into()),
        // Header lines, in a dump of a request or a response, or in a curl command line.
        (
            "authorization-header",
            r#"(?i)\b(?:proxy-)?authorization[ \t]*:[ \t]*(?P<secret>[^\r\n"'\\]+)"#.into(),
        ),
        (
            "cookie-header",
            r#"(?i)\b(?:set-)?cookie[ \t]*:[ \t]*(?P<secret>[^\r\n"'\\]+)"#.into(),
        ),
        (
            "bearer-token",
            r"(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/=-]{16,})".into(),
        ),
        // scheme://user:password@host
        (
            "url-credentials",
            r#"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@"']+:(?P<secret>[^/\s@"']+)@"#.into(),
        ),
        // argv: `--password X`, `--api-key=X`, `-token X`.
        (
            "secret-flag",
            format!(
                r#"(?im)(?:^|[\s'"])--?{key}{words}(?:=|[ \t]+)(?P<secret>[^\s'"]+)"#
            ),
        ),
        // Environment and query strings: `DB_PASSWORD=X`, `?access_token=X`.
        (
            "secret-assignment",
            format!(
                r#"(?i)\b{key}{words}=(?P<secret>"[^"\r\n]*"|'[^'\r\n]*'|[^\s&;'"]+)"#
            ),
        ),
        // JSON: `"client_secret": "X"` (only string values: numbers and objects are not
        // secrets, and replacing them would break the document).
        (
            "secret-field",
            format!(r#"(?i)"{key}{words}"\s*:\s*"(?P<secret>(?:[^"\\\r\n]|\\.)+)""#),
        ),
        // YAML and header-like lines: `  password: X`, `X-Auth-Token: X`.
        (
            "secret-field",
            format!(
                r#"(?im)^[ \t]*(?:-[ \t]+)?{key}{words}[ \t]*:[ \t]+(?P<secret>"[^"\r\n]*"|'[^'\r\n]*'|[^\s#{{}}\[\]|>&*!'"][^\r\n]*)"#
            ),
        ),
    ]
}

/// One pattern: what it is called (in placeholders and the bundle's list) and what it
/// matches.
///
/// A built-in pattern is compiled the first time a text could match it, not when the
/// redactor is made: compiling all of them took a third of a warm `triage run`, and most
/// runs' answers hold no secret-looking word at all.
#[derive(Clone, Debug)]
struct Pattern {
    name: String,
    source: String,
    /// Literals of which a text must hold one (ASCII case aside) for the regex to match
    /// it; empty for a pattern that is always run (a team's).
    needs: &'static [&'static str],
    compiled: OnceLock<Compiled>,
}

#[derive(Clone, Debug)]
struct Compiled {
    regex: Regex,
    /// The group to replace, when the pattern has one named `secret`.
    secret: Option<usize>,
}

impl Compiled {
    fn new(source: &str) -> Result<Compiled, regex::Error> {
        // ASCII classes and no Unicode case folding: matches stay on character boundaries
        // and the automata stay small, which keeps a 50 MB answer fast.
        let regex = RegexBuilder::new(source)
            .unicode(false)
            .size_limit(1 << 20)
            .build()?;
        let secret = regex.capture_names().position(|n| n == Some("secret"));
        Ok(Compiled { regex, secret })
    }
}

impl Pattern {
    /// A built-in pattern, compiled on first use.
    fn builtin(name: &'static str, source: String) -> Pattern {
        Pattern {
            name: name.to_string(),
            source,
            needs: builtin_needs(name),
            compiled: OnceLock::new(),
        }
    }

    /// A pattern compiled now, so that a bad one is refused where it was read.
    fn new(name: &str, source: &str) -> Result<Pattern, regex::Error> {
        let compiled = Compiled::new(source)?;
        Ok(Pattern {
            name: name.to_string(),
            source: source.to_string(),
            needs: &[],
            compiled: OnceLock::from(compiled),
        })
    }

    fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            Compiled::new(&self.source).expect("the built-in redaction patterns compile")
        })
    }

    fn placeholder(&self) -> String {
        format!("{PLACEHOLDER_OPEN}{}]", self.name)
    }
}

/// How many values each pattern took: the bundle lists it, never the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, pattern: &str) {
        *self.0.entry(pattern.to_string()).or_default() += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The count for one pattern (0 when it took nothing).
    pub fn count(&self, pattern: &str) -> usize {
        self.0.get(pattern).copied().unwrap_or(0)
    }

    /// As `bundle.yaml` lists it, by pattern name.
    pub fn entries(&self) -> Vec<Redacted> {
        self.0
            .iter()
            .map(|(pattern, count)| Redacted {
                pattern: pattern.clone(),
                count: *count,
            })
            .collect()
    }
}

/// One line of a bundle's `redacted:` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redacted {
    /// The redaction pattern's name.
    pub pattern: String,
    /// How many values it replaced.
    pub count: usize,
}

/// A team's patterns file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// A team's patterns file:
///
/// ```yaml
/// patterns:
///   - name: acme-api-key
///     regex: 'acme_[0-9a-f]{32}'
///   - name: session-cookie
///     regex: 'JSESSIONID=(?P<secret>[^;\s]+)'
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamFile {
    patterns: Vec<TeamPattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamPattern {
    name: String,
    regex: String,
}

/// A team file bigger than this is not a list of patterns.
const MAX_TEAM_FILE_BYTES: u64 = 1 << 20;

/// The patterns applied to everything that leaves: recorded answers, reports, chat posts.
#[derive(Clone, Debug)]
pub struct Redactor {
    patterns: Vec<Pattern>,
    /// Finds which of the built-in patterns' [`Pattern::needs`] a text holds, in one pass.
    gate: Arc<Gate>,
    /// `^<key ending in a secret word>$`: a JSON object member with such a key has its
    /// string value redacted whole (facts are structured; the value alone may look like
    /// anything). Compiled on first use, like the patterns.
    secret_key: OnceLock<Regex>,
}

/// The literals the built-in patterns need, and which of them a text holds.
#[derive(Debug)]
struct Gate {
    /// ASCII case-insensitive, over every distinct literal.
    literals: AhoCorasick,
    /// The distinct literals, in the automaton's order.
    words: Vec<&'static str>,
    /// For each pattern the gate was made for, in order, the bits of the literals it
    /// needs (0: always run). Patterns added later (a team's) have none and always run.
    masks: Vec<u64>,
    /// The bits of [`SECRET_WORD_LITERALS`], for keys.
    secret_words: u64,
}

/// Which literals of a [`Gate`] a text holds, one bit each.
#[derive(Clone, Copy)]
struct Held(u64);

impl Gate {
    fn new(patterns: &[Pattern]) -> Gate {
        let mut words: Vec<&'static str> = Vec::new();
        for word in patterns.iter().flat_map(|p| p.needs.iter().copied()) {
            if !words.iter().any(|w| w.eq_ignore_ascii_case(word)) {
                words.push(word);
            }
        }
        assert!(words.len() <= 64, "a gate holds at most 64 literals");
        let literals = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .expect("the built-in literals make an automaton");
        let mask = |needs: &[&str]| {
            needs.iter().fold(0u64, |mask, need| {
                let bit = words.iter().position(|w| w.eq_ignore_ascii_case(need));
                mask | bit.map_or(0, |i| 1 << i)
            })
        };
        let masks = patterns.iter().map(|p| mask(p.needs)).collect();
        let secret_words = mask(SECRET_WORD_LITERALS);
        Gate {
            literals,
            words,
            masks,
            secret_words,
        }
    }

    fn held(&self, text: &[u8]) -> Held {
        let all = if self.words.len() == 64 {
            u64::MAX
        } else {
            (1u64 << self.words.len()) - 1
        };
        let mut held = 0u64;
        for m in self.literals.find_overlapping_iter(text) {
            held |= 1 << m.pattern().as_usize();
            if held == all {
                break;
            }
        }
        Held(held)
    }

    /// Whether a text holding `held` could match the pattern at `index`.
    fn admits(&self, held: Held, index: usize) -> bool {
        let mask = self.masks.get(index).copied().unwrap_or(0);
        mask == 0 || held.0 & mask != 0
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::builtin()
    }
}

impl Redactor {
    /// The built-in patterns only.
    pub fn builtin() -> Redactor {
        let patterns: Vec<Pattern> = builtin_sources()
            .into_iter()
            .map(|(name, source)| Pattern::builtin(name, source))
            .collect();
        Redactor {
            gate: Arc::new(Gate::new(&patterns)),
            patterns,
            secret_key: OnceLock::new(),
        }
    }

    /// Whether `key` names a secret (see [`Redactor::secret_key`]).
    fn is_secret_key(&self, key: &[u8]) -> bool {
        let secret_words = self.gate.secret_words;
        if secret_words != 0 && self.gate.held(key).0 & secret_words == 0 {
            return false;
        }
        self.secret_key
            .get_or_init(|| {
                RegexBuilder::new(&format!(r"(?i)^(?:-{{0,2}}){KEY_PREFIX}{SECRET_WORDS}$"))
                    .unicode(false)
                    .build()
                    .expect("the built-in secret key pattern compiles")
            })
            .is_match(key)
    }

    /// The built-in patterns and, with `file`, a team's after them.
    pub fn load(file: Option<&Path>) -> Result<Redactor, RedactError> {
        let mut redactor = Redactor::builtin();
        if let Some(path) = file {
            redactor.add_file(path)?;
        }
        Ok(redactor)
    }

    /// Adds the patterns of a team's file (see [`TeamFile`]).
    pub fn add_file(&mut self, path: &Path) -> Result<(), RedactError> {
        let fail = |message: String| RedactError::File {
            path: path.display().to_string(),
            message,
        };
        // The operator's own file, but a FIFO or a gigabyte still gets one clear line.
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() || meta.len() > MAX_TEAM_FILE_BYTES {
            return Err(fail(format!(
                "a patterns file is a regular file of at most {} KiB",
                MAX_TEAM_FILE_BYTES >> 10
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        if let Err((line, column, message)) = crate::yaml::depth::check(&text) {
            return Err(fail(format!("line {line} column {column}: {message}")));
        }
        let team: TeamFile = serde_yaml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for (i, p) in team.patterns.iter().enumerate() {
            let at = format!("patterns[{i}] `{}`", p.name);
            let name_ok = !p.name.is_empty()
                && p.name.len() <= 64
                && p.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(fail(format!(
                    "{at}: a name is 1 to 64 letters, digits, `-` or `_`"
                )));
            }
            let pattern = Pattern::new(&p.name, &p.regex).map_err(|e| {
                // The regex crate's message spans lines (it draws a caret); one line here.
                let first = e.to_string();
                let short = first.lines().last().unwrap_or_default().trim().to_string();
                fail(format!("{at}: invalid regex: {short}"))
            })?;
            if pattern.compiled().regex.is_match(b"") {
                return Err(fail(format!(
                    "{at}: the regex matches empty text, so it would redact between every character"
                )));
            }
            self.patterns.push(pattern);
        }
        Ok(())
    }

    /// The pattern names, in the order they are applied.
    pub fn pattern_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.patterns.iter().map(|p| p.name.as_str()).collect();
        names.dedup();
        names
    }

    /// `input` with every secret replaced, counting each in `tally`.
    pub fn bytes<'a>(&self, input: &'a [u8], tally: &mut Tally) -> Cow<'a, [u8]> {
        let mut text = Cow::Borrowed(input);
        let mut held = self.gate.held(input);
        for (index, pattern) in self.patterns.iter().enumerate() {
            if !self.gate.admits(held, index) {
                continue;
            }
            if let Some(replaced) = apply(pattern, &text, tally) {
                text = Cow::Owned(replaced);
                // What later patterns may match is the redacted text.
                held = self.gate.held(&text);
            }
        }
        text
    }

    /// [`Redactor::bytes`] for text.
    pub fn text<'a>(&self, input: &'a str, tally: &mut Tally) -> Cow<'a, str> {
        match self.bytes(input.as_bytes(), tally) {
            Cow::Borrowed(_) => Cow::Borrowed(input),
            // Matches start and end on ASCII bytes, so this is still UTF-8; lossy is only
            // the belt to those braces.
            Cow::Owned(bytes) => Cow::Owned(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        }
    }

    /// Redacts a string in place.
    pub fn string(&self, s: &mut String, tally: &mut Tally) {
        if let Cow::Owned(redacted) = self.text(s, tally) {
            *s = redacted;
        }
    }

    /// A command line as recorded: each argument, and the argument after a flag that
    /// names a secret (`--password X` arrives as two arguments).
    pub fn argv(&self, argv: &mut [String], tally: &mut Tally) {
        let mut previous_names_secret = false;
        for arg in argv.iter_mut() {
            if previous_names_secret && !arg.starts_with('-') && !is_placeholder(arg.as_bytes()) {
                *arg = format!("{PLACEHOLDER_OPEN}secret-flag]");
                tally.add("secret-flag");
                previous_names_secret = false;
                continue;
            }
            previous_names_secret = arg.starts_with('-') && self.is_secret_key(arg.as_bytes());
            self.string(arg, tally);
        }
    }

    /// Facts and other JSON: every string, and the whole string value of a member whose
    /// key names a secret (`{"password": "hunter2"}`).
    pub fn json(&self, value: &mut Value, tally: &mut Tally) {
        match value {
            Value::String(s) => self.string(s, tally),
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v, tally)),
            Value::Object(members) => self.members(members, tally),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn members(&self, members: &mut Map<String, Value>, tally: &mut Tally) {
        for (key, value) in members.iter_mut() {
            match value {
                Value::String(s)
                    if !s.is_empty()
                        && !is_placeholder(s.as_bytes())
                        && self.is_secret_key(key.as_bytes()) =>
                {
                    *s = format!("{PLACEHOLDER_OPEN}secret-field]");
                    tally.add("secret-field");
                }
                _ => self.json(value, tally),
            }
        }
    }

    /// A run's inputs as the report shows them (`--input token=…` stays out of tickets).
    pub fn inputs(&self, inputs: &mut Map<String, Value>) {
        self.members(inputs, &mut Tally::default());
    }
}

/// Whether a matched value is already a placeholder (quotes around it allowed): a value
/// is counted once, under the first pattern that took it.
fn is_placeholder(secret: &[u8]) -> bool {
    let inner = secret
        .strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .or_else(|| secret.strip_prefix(b"'").and_then(|s| s.strip_suffix(b"'")))
        .unwrap_or(secret);
    inner.starts_with(PLACEHOLDER_OPEN.as_bytes()) && inner.ends_with(b"]")
}

fn contains_placeholder(secret: &[u8]) -> bool {
    let open = PLACEHOLDER_OPEN.as_bytes();
    secret.windows(open.len()).any(|w| w == open)
}

/// One pattern over `text`: the redacted text, or `None` when it took nothing.
fn apply(pattern: &Pattern, text: &[u8], tally: &mut Tally) -> Option<Vec<u8>> {
    let placeholder = pattern.placeholder();
    let compiled = pattern.compiled();
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut take = |start: usize, end: usize, out: &mut Option<Vec<u8>>, copied: &mut usize| {
        let secret = &text[start..end];
        // A value that holds a placeholder was taken by an earlier pattern (`Bearer
        // [REDACTED:jwt]`): counted once, under the pattern that named it best.
        if secret.is_empty() || contains_placeholder(secret) {
            return;
        }
        let buf = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
        buf.extend_from_slice(&text[*copied..start]);
        buf.extend_from_slice(placeholder.as_bytes());
        *copied = end;
        tally.add(&pattern.name);
    };
    match compiled.secret {
        // Most patterns have no group to find: the match is the secret, and finding
        // matches is much cheaper than capturing groups.
        None => {
            for m in compiled.regex.find_iter(text) {
                take(m.start(), m.end(), &mut out, &mut copied);
            }
        }
        Some(group) => {
            for caps in compiled.regex.captures_iter(text) {
                if let Some(m) = caps.get(group) {
                    take(m.start(), m.end(), &mut out, &mut copied);
                }
            }
        }
    }
    let mut out = out?;
    out.extend_from_slice(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> (String, Tally) {
        let mut tally = Tally::default();
        let out = Redactor::builtin().text(text, &mut tally).into_owned();
        (out, tally)
    }

    #[test]
    fn every_builtin_pattern_compiles_and_matches_nothing_empty() {
        let r = Redactor::builtin();
        for p in &r.patterns {
            assert!(
                !p.compiled().regex.is_match(b""),
                "{} matches empty text",
                p.name
            );
        }
    }

    /// Every text a gated redactor leaves alone, the same redactor running every pattern
    /// leaves alone too: a pattern's `needs` never skips a text it would have changed.
    /// The corpus: a secret of each kind (in upper, lower and mixed case where the pattern
    /// ignores case), and every real fixture in the repository.
    #[test]
    fn the_literal_gate_skips_only_texts_a_pattern_cannot_match() {
        let gated = Redactor::builtin();
        let mut ungated = Redactor::builtin();
        for p in &mut ungated.patterns {
            p.needs = &[];
        }
        ungated.gate = Arc::new(Gate::new(&ungated.patterns));
        let secrets = [
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nMIIEow",
            r#"{"access_token":"ya29.abc","expires_in":3599}"#,
            r#"{"access_token" : "opaque-value"}"#,
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl",
            "ya29.c.b0AXv0zTPqSbMEXAMPLEexampleEXAMPLE",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "AKIAIOSFODNN7EXAMPLE ASIAIOSFODNN7EXAMPLE",
            "xoxb-123456789012-abcdefghij",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "gho_abcdefghijklmnopqrstuvwxyz0123456789",
            "Authorization: Basic b3BzOmh1bnRlcjI=",
            "PROXY-AUTHORIZATION: Basic b3BzOmh1bnRlcjI=",
            "Cookie: session=abc; SET-COOKIE: id=1",
            "bearer abcdefghijklmnop0123 BEARER abcdefghijklmnop0123",
            "postgres://ops:hunter2@db.internal:5432/app",
            "HTTPS://ops:hunter2@example.com/",
            "app --db-password=hunter2 --API-KEY s3cr3tvalue -Passphrase x --signing.key=y",
            "DB_PASSWD=hunter2 ?access_token=abc&x=1 SLACK_SIGNING_SECRET='s' AUTH_TOKEN=\"t\"",
            r#"{"client_secret": "X", "Encryption-Key": "Y", "COOKIE": "z", "authorization": "w"}"#,
            "  password: hunter2\n- private_key: k\nX-Auth-Token: t\nCookie: c",
        ];
        let mut corpus: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        for s in secrets {
            corpus.push(s.to_ascii_lowercase().into_bytes());
            corpus.push(s.to_ascii_uppercase().into_bytes());
        }
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/real");
        let mut dirs = vec![fixtures];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    corpus.push(bytes);
                }
            }
        }
        assert!(corpus.len() > 60, "the corpus holds the fixtures");
        let mut changed = 0;
        for text in &corpus {
            let (mut a, mut b) = (Tally::default(), Tally::default());
            let want = ungated.bytes(text, &mut a);
            let got = gated.bytes(text, &mut b);
            assert_eq!(
                got,
                want,
                "the gate changed the result on {:?}",
                String::from_utf8_lossy(&text[..text.len().min(200)])
            );
            assert_eq!(a, b);
            changed += usize::from(matches!(want, Cow::Owned(_)));
        }
        assert!(
            changed >= secrets.len(),
            "the secrets were redacted ({changed})"
        );
    }

    #[test]
    fn a_text_without_secret_words_compiles_no_pattern() {
        let r = Redactor::builtin();
        let mut tally = Tally::default();
        let text = "-A ISTIO_OUTPUT -d 10.0.0.1/32 -p tcp -j ISTIO_REDIRECT";
        assert_eq!(r.text(text, &mut tally), text);
        let mut facts = serde_json::json!({"chain": "ISTIO_OUTPUT", "rules": [text]});
        r.json(&mut facts, &mut tally);
        assert!(r.patterns.iter().all(|p| p.compiled.get().is_none()));
        assert!(r.secret_key.get().is_none());
    }

    #[test]
    fn flags_keep_their_name_and_lose_their_value() {
        let (out, tally) = redact("app --db-password=hunter2 --api-key s3cr3tvalue --verbose");
        assert_eq!(
            out,
            "app --db-password=[REDACTED:secret-flag] --api-key [REDACTED:secret-flag] --verbose"
        );
        assert_eq!(tally.count("secret-flag"), 2);
    }

    #[test]
    fn settings_that_only_mention_a_secret_word_stay() {
        for text in [
            "envoy --token-file /var/run/token --max-tokens 10",
            r#"{"token_bucket": {"max_tokens": 100, "tokens_per_fill": 10}}"#,
            "secretName: envoy-certs",
            "GOOGLE_APPLICATION_CREDENTIALS=/etc/key.json PWD=/home/ops",
            r#"{"secret": {"name": "default"}, "password": 12}"#,
            "Bearer tokens are short-lived",
        ] {
            let (out, tally) = redact(text);
            assert_eq!(out, text, "{tally:?}");
        }
    }

    #[test]
    fn a_value_is_counted_once() {
        let token = "ya29.c.b0AXv0zTPqSbMEXAMPLEexampleEXAMPLE";
        let (out, tally) = redact(&format!(
            r#"{{"access_token":"{token}","expires_in":3599}}"#
        ));
        assert_eq!(
            out,
            r#"{"access_token":"[REDACTED:metadata-access-token]","expires_in":3599}"#
        );
        assert_eq!(tally.entries().len(), 1, "{tally:?}");
        let (again, tally) = redact(&out);
        assert_eq!(again, out);
        assert!(tally.is_empty());
    }

    #[test]
    fn a_header_whose_token_was_taken_is_not_counted_again() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl";
        let (out, tally) = redact(&format!(
            "Authorization: Bearer {jwt}\nAuthorization: Basic b3BzOmh1bnRlcjI="
        ));
        assert_eq!(
            out,
            "Authorization: Bearer [REDACTED:jwt]\nAuthorization: [REDACTED:authorization-header]"
        );
        assert_eq!(
            (tally.count("jwt"), tally.count("authorization-header")),
            (1, 1)
        );
    }

    #[test]
    fn json_members_named_as_secrets_go_whole() {
        let mut v = serde_json::json!({"user": "ops", "password": "hunter2", "nested": [{"apiKey": "k"}], "n": 3});
        let mut tally = Tally::default();
        Redactor::builtin().json(&mut v, &mut tally);
        assert_eq!(
            v,
            serde_json::json!({"user": "ops", "password": "[REDACTED:secret-field]", "nested": [{"apiKey": "[REDACTED:secret-field]"}], "n": 3})
        );
        assert_eq!(tally.count("secret-field"), 2);
    }

    #[test]
    fn argv_pairs() {
        let mut argv: Vec<String> = ["mysql", "--password", "hunter2", "--user", "ops"]
            .map(String::from)
            .into();
        let mut tally = Tally::default();
        Redactor::builtin().argv(&mut argv, &mut tally);
        assert_eq!(
            argv,
            [
                "mysql",
                "--password",
                "[REDACTED:secret-flag]",
                "--user",
                "ops"
            ]
        );
    }
}
