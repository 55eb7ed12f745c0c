//! Finding a setting's value in config text whose format is not known in advance: the
//! injector ConfigMap holds YAML with Go templates, JSON blobs and container argv lists.

/// The most values collected per key, so a pathological ConfigMap stays cheap.
const MAX_VALUES: usize = 64;

/// Every value given to `key` in `text`, in order, quotes removed. Recognises
/// `key: v`, `"key": "v"`, `key=v`, `--key v`, `--key=v`, an argv list (`- --key` then
/// `- v` on the next line) and a Kubernetes env list (`- name: KEY` then `value: v`).
/// An occurrence followed by anything else (e.g. `sidecar.istio.io/key` in a template)
/// is skipped.
pub fn setting_values(text: &str, key: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut from = 0;
    while values.len() < MAX_VALUES {
        let Some(found) = text.get(from..).and_then(|rest| rest.find(key)) else {
            break;
        };
        let start = from + found;
        let end = start + key.len();
        from = end;
        let preceded_by_word = text[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric());
        if preceded_by_word {
            continue;
        }
        if let Some(value) = value_after(&text[end..]) {
            values.push(value);
        }
    }
    values
}

fn value_after(rest: &str) -> Option<String> {
    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let (line, following) = rest.split_at(line_end);
    let after_separator = match line.trim_start_matches([' ', '\t']) {
        s if s.starts_with([':', '=']) => Some(s[1..].trim_start_matches([' ', '\t'])),
        s if line.starts_with([' ', '\t']) && !s.is_empty() => Some(s),
        s if s.trim_end().is_empty() => None,
        _ => return None,
    };
    match after_separator.map(str::trim_end) {
        Some(v) if !v.is_empty() => token(v),
        _ => next_line_value(following),
    }
}

/// The value on the line after a bare key: `value: v` (env list) or `- v` (argv list).
fn next_line_value(following: &str) -> Option<String> {
    let mut lines = following.lines().map(str::trim).filter(|l| !l.is_empty());
    let next = lines.next()?;
    if let Some(v) = next.strip_prefix("value:") {
        return token(v.trim());
    }
    if let Some(v) = next.strip_prefix("- ") {
        let v = v.trim();
        return if v.starts_with('-') { None } else { token(v) };
    }
    None
}

/// A quoted string up to its closing quote, or a bare word up to a space or delimiter.
fn token(v: &str) -> Option<String> {
    let mut chars = v.chars();
    let value = match chars.next()? {
        q @ ('"' | '\'') => {
            let body = chars.as_str();
            let close = body.find(q).unwrap_or(body.len());
            body[..close].trim_end_matches('\\').to_string()
        }
        _ => v
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | '"' | '\\'))
            .next()?
            .to_string(),
    };
    Some(value)
}

/// `(project_number, network)` pairs from node ids of the form
/// `projects/NUMBER/networks/NAME/nodes/ID` in a bootstrap template.
pub fn node_id_project_networks(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while found.len() < MAX_VALUES {
        let Some(at) = text.get(from..).and_then(|rest| rest.find("projects/")) else {
            break;
        };
        let rest = &text[from + at + "projects/".len()..];
        from += at + "projects/".len();
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let Some(after) = rest[digits..].strip_prefix("/networks/") else {
            continue;
        };
        let name_len = after
            .find(|c: char| c == '/' || c == '"' || c.is_whitespace())
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if !name.is_empty() && after[name_len..].starts_with("/nodes") {
            found.push((rest[..digits].to_string(), name.to_string()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_usual_shapes() {
        let cases = [
            (
                "discoveryAddress: istiod.istio-system.svc:15012\n",
                "istiod.istio-system.svc:15012",
            ),
            (
                r#"{"discoveryAddress":"trafficdirector.googleapis.com:443","x":1}"#,
                "trafficdirector.googleapis.com:443",
            ),
            (
                "- --discoveryAddress\n        - trafficdirector.googleapis.com:443\n",
                "trafficdirector.googleapis.com:443",
            ),
            ("--discoveryAddress=td:443 --x", "td:443"),
            ("pilot-agent --discoveryAddress td:443 --x", "td:443"),
            ("- name: discoveryAddress\n  value: \"a:1\"\n", "a:1"),
        ];
        for (text, want) in cases {
            assert_eq!(
                setting_values(text, "discoveryAddress"),
                vec![want.to_string()],
                "{text}"
            );
        }
    }

    #[test]
    fn skips_keys_inside_other_words_and_templates() {
        let text = "- \"{{ annotation .ObjectMeta `sidecar.istio.io/discoveryAddress` .ProxyConfig.DiscoveryAddress }}\"";
        assert!(setting_values(text, "discoveryAddress").is_empty());
        assert!(setting_values("myNETWORK_NAME: x", "NETWORK_NAME").is_empty());
    }

    #[test]
    fn node_ids_give_project_and_network() {
        let text = r#""id": "projects/123456789012/networks/default/nodes/abc", "x": "projects/PROJECT/networks/n/nodes/1""#;
        assert_eq!(
            node_id_project_networks(text),
            vec![("123456789012".to_string(), "default".to_string())]
        );
    }

    #[test]
    fn never_panics_on_odd_text() {
        for text in [
            "discoveryAddress",
            "discoveryAddress:",
            "discoveryAddress: \"",
            "é discoveryAddress=é",
            "projects/1/networks/",
        ] {
            let _ = setting_values(text, "discoveryAddress");
            let _ = node_id_project_networks(text);
        }
    }
}
