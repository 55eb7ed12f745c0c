//! `http`: one request, whole response. URLs are normalised before the grant check so a
//! pattern like `http://localhost:*/**` cannot be satisfied by `http://localhost:1@evil/`.

use super::pattern::{Pattern, READ_METHODS, Subject};
use super::{Call, CapResult, Kind, yaml_scalar};

pub const NAME: &str = "http";
pub const BUNDLE_KEY: &str = "http";

/// A request as the target sends it: the method upper-cased and the URL canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl super::Request for HttpRequest {
    const KIND: Kind = Kind::Http;

    fn subject(&self) -> Subject<'_> {
        Subject::Http {
            method: &self.method,
            url: &self.url,
        }
    }

    fn display(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    fn policy_entry(&self) -> String {
        if READ_METHODS.contains(&self.method.as_str()) {
            format!("http: [{}]", yaml_scalar(&self.url))
        } else {
            format!(
                "http: [{}]",
                yaml_scalar(&format!("{} {}", self.method, self.url))
            )
        }
    }
}

/// One entry under `allow.http` in a policy file: a URL pattern, allowing GET and HEAD, or
/// `METHOD[,METHOD] URL` (`"POST http://localhost:*/x"`).
/// Checked as it is read, so a bad entry's error points at the entry.
#[derive(serde::Deserialize)]
#[serde(try_from = "String")]
pub struct PolicyEntry(Pattern);

impl TryFrom<String> for PolicyEntry {
    type Error = String;
    fn try_from(entry: String) -> Result<Self, String> {
        Pattern::http(&entry).map(PolicyEntry)
    }
}

pub fn policy_pattern(entry: PolicyEntry) -> Result<Pattern, String> {
    Ok(entry.0)
}

/// The URL as it will be fetched: scheme, host, non-default port, path and query, and
/// never credentials (which would let `host:port@elsewhere` pass for `host`).
pub fn canonical_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("bad URL {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "bad URL {raw:?}: only http and https are supported"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "bad URL {raw:?}: credentials in URLs are not allowed"
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("bad URL {raw:?}: no host"))?;
    let mut out = format!("{}://{}", url.scheme(), host);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

pub async fn http(call: &mut Call<'_>, request: HttpRequest) -> CapResult<HttpResponse> {
    let mut request = HttpRequest {
        method: request.method.to_ascii_uppercase(),
        ..request
    };
    // The method is checked against the grants and then sent as is, so it must be one word
    // that no target can read two ways (a line break in it would start a second request).
    if request.method.is_empty() || !request.method.bytes().all(|b| b.is_ascii_uppercase()) {
        let why = format!(
            "bad HTTP method {:?}: a method is one word of letters",
            request.method
        );
        return Err(call.refuse(&request, why));
    }
    match canonical_url(&request.url) {
        Ok(url) => request.url = url,
        Err(why) => return Err(call.refuse(&request, why)),
    }
    let started = call.admit(&request)?;
    let result = call.target.http(&request, call.timeout).await;
    call.record(&request, started, result.as_ref());
    result
}

#[cfg(test)]
mod tests {
    use super::canonical_url;

    #[test]
    fn canonical_urls() {
        assert_eq!(
            canonical_url("http://localhost:15000/config_dump").unwrap(),
            "http://localhost:15000/config_dump"
        );
        assert_eq!(
            canonical_url("http://localhost:80/x?a=1").unwrap(),
            "http://localhost/x?a=1"
        );
        assert!(canonical_url("http://localhost:15000@evil.example/").is_err());
        assert!(canonical_url("file:///etc/passwd").is_err());
    }

    /// The config-dump plugin's grant and the default policy's entries for /config_dump
    /// (issue 14): the query may vary, the path may not. Each hostile URL is canonicalised
    /// as the host function does before it is matched.
    #[test]
    fn config_dump_grants_are_the_path_exactly_with_any_query() {
        use super::super::pattern::{Pattern, Subject};
        let declared = [
            Pattern::declared_http("{admin_url}/config_dump")
                .substitute(&serde_json::json!({"admin_url": "http://127.0.0.1:15000"}))
                .unwrap(),
            Pattern::declared_http("{admin_url}/config_dump?**")
                .substitute(&serde_json::json!({"admin_url": "http://127.0.0.1:15000"}))
                .unwrap(),
        ];
        let policy = [
            Pattern::http("http://127.0.0.1:*/config_dump").unwrap(),
            Pattern::http("http://127.0.0.1:*/config_dump?**").unwrap(),
        ];
        let allowed = |raw: &str| {
            let Ok(url) = canonical_url(raw) else {
                return false;
            };
            let subject = Subject::Http {
                method: "GET",
                url: &url,
            };
            declared.iter().any(|p| p.matches(&subject))
                && policy.iter().any(|p| p.matches(&subject))
        };
        for ok in [
            "http://127.0.0.1:15000/config_dump",
            "http://127.0.0.1:15000/config_dump?resource=dynamic_listeners",
            "http://127.0.0.1:15000/config_dump?resource=dynamic_listeners&mask=name,active_state.last_updated",
            "http://127.0.0.1:15000/config_dump?mask=bootstrap",
            // The query is only a query: Envoy routes on the path before `?`.
            "http://127.0.0.1:15000/config_dump?x=&/../quitquitquit",
        ] {
            assert!(allowed(ok), "{ok} refused");
        }
        for hostile in [
            "http://127.0.0.1:15000/quitquitquit",
            "http://127.0.0.1:15000/config_dumpx",
            "http://127.0.0.1:15000/config_dump/../quitquitquit",
            "http://127.0.0.1:15000/config_dump/%2e%2e/quitquitquit",
            "http://127.0.0.1:15000/config_dump%2F..%2Fquitquitquit",
            "http://127.0.0.1:15000/config_dump/x?resource=a",
            "http://127.0.0.1:15000/healthcheck/fail?/config_dump",
            "http://127.0.0.1:15000@evil.example/config_dump",
            "http://127.0.0.1:15001/config_dump",
        ] {
            assert!(!allowed(hostile), "{hostile} allowed");
        }
        // What canonicalisation does to the path tricks above: the dots are resolved
        // before the match, so they end at /quitquitquit.
        assert_eq!(
            canonical_url("http://127.0.0.1:15000/config_dump/../quitquitquit").unwrap(),
            "http://127.0.0.1:15000/quitquitquit"
        );
        assert_eq!(
            canonical_url("http://127.0.0.1:15000/config_dump?x=&/../quitquitquit").unwrap(),
            "http://127.0.0.1:15000/config_dump?x=&/../quitquitquit"
        );
    }
}
