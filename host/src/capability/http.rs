//! `http`: one request, whole response. URLs are normalised before the grant check so a
//! pattern like `http://localhost:*/**` cannot be satisfied by `http://localhost:1@evil/`.

use super::Request;
use crate::runtime::bindings::wit_host::{HttpRequest, HttpResponse};
use crate::runtime::sandbox::CallState;
use crate::target::{self, CapabilityError};

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

pub async fn http(
    state: &mut CallState,
    request: HttpRequest,
) -> Result<HttpResponse, CapabilityError> {
    let method = request.method.to_ascii_uppercase();
    let url = match canonical_url(&request.url) {
        Ok(u) => u,
        Err(e) => {
            let req = Request::Http {
                method,
                url: request.url.clone(),
            };
            let err = CapabilityError::Denied(e);
            state.record(&req, std::time::Instant::now(), Err::<(), _>(&err));
            return Err(err);
        }
    };
    let req = Request::Http {
        method: method.clone(),
        url: url.clone(),
    };
    let started = state.admit(&req)?;
    let target_request = target::HttpRequest {
        method,
        url,
        headers: request.headers,
    };
    let result = state
        .target
        .http(&target_request, state.capability_timeout)
        .await;
    state.record(&req, started, result.as_ref());
    result.map(|r| HttpResponse {
        status: r.status,
        headers: r.headers,
        body: r.body,
    })
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
}
