//! Cross-origin protection for state-changing routes: the inspector makes the control port a
//! page in the user's browser, and a malicious page open in the same browser can send it
//! requests. A browser marks those (`Sec-Fetch-Site`, `Origin`) and can only send them without a
//! CORS preflight (which apnsim never grants) with a form or text content type, so a write is
//! refused when it comes from another site or carries a body that is not JSON or TOML.

use super::error::ApiError;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// `Sec-Fetch-Site` says another site sent it.
    CrossSite(String),
    /// `Origin` names another host than the one addressed.
    ForeignOrigin(String),
    /// A body whose content type a cross-site form could send.
    ContentType(String),
}

impl Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::CrossSite(site) => ApiError::new(
                StatusCode::FORBIDDEN,
                format!("cross-origin write refused (Sec-Fetch-Site: {site})"),
            )
            .into_response(),
            Refused::ForeignOrigin(origin) => ApiError::new(
                StatusCode::FORBIDDEN,
                format!("cross-origin write refused (Origin: {origin})"),
            )
            .into_response(),
            Refused::ContentType(t) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "a request body must be JSON or TOML (content-type application/json or application/toml), got {t:?}"
                ),
            )
            .into_response(),
        }
    }
}

fn header(h: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Whether a media type is JSON or TOML (parameters such as `charset` ignored).
fn json_or_toml(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/json" | "application/toml" | "text/toml" | "text/x-toml"
    ) || essence.ends_with("+json")
}

/// The host and port an `Origin` value names (`http://127.0.0.1:2199` → `127.0.0.1:2199`).
fn origin_authority(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    Some(rest.trim_end_matches('/'))
}

/// The decision, sans-IO: `Ok` lets the request through.
pub(super) fn check(method: &Method, h: &HeaderMap) -> Result<(), Refused> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if let Some(site) = header(h, "sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Err(Refused::CrossSite(site.to_string()));
        }
    }
    let browser = h.contains_key(ORIGIN) || h.contains_key("sec-fetch-site");
    if let Some(origin) = header(h, ORIGIN) {
        let host = header(h, HOST).unwrap_or("");
        match origin_authority(origin) {
            Some(a) if a.eq_ignore_ascii_case(host) => {}
            _ => return Err(Refused::ForeignOrigin(origin.to_string())),
        }
    }
    let has_body = h.contains_key(TRANSFER_ENCODING)
        || header(h, CONTENT_LENGTH).is_some_and(|n| n.trim() != "0");
    match header(h, CONTENT_TYPE) {
        _ if !has_body => Ok(()),
        Some(t) if json_or_toml(t) => Ok(()),
        // A client that is not a browser and names no type (reqwest, scripts) is trusted: a
        // browser always says where a write comes from.
        None if !browser => Ok(()),
        t => Err(Refused::ContentType(t.unwrap_or("").to_string())),
    }
}

/// The middleware over every control route.
pub(super) async fn guard(req: Request, next: Next) -> Response {
    match check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_pass_writes_are_checked() {
        let evil = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:2199"),
        ]);
        assert_eq!(check(&Method::GET, &evil), Ok(()));
        assert!(matches!(
            check(&Method::POST, &evil),
            Err(Refused::ForeignOrigin(_))
        ));
        let same = headers(&[
            ("origin", "http://127.0.0.1:2199"),
            ("host", "127.0.0.1:2199"),
            ("sec-fetch-site", "same-origin"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        assert_eq!(check(&Method::POST, &same), Ok(()));
        let site = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(matches!(
            check(&Method::DELETE, &site),
            Err(Refused::CrossSite(_))
        ));
        assert!(matches!(
            check(&Method::PUT, &headers(&[("origin", "null"), ("host", "x")])),
            Err(Refused::ForeignOrigin(_))
        ));
    }

    #[test]
    fn bodies_must_be_json_or_toml() {
        let form = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "5"),
        ]);
        assert!(matches!(
            check(&Method::POST, &form),
            Err(Refused::ContentType(_))
        ));
        let toml = headers(&[
            ("content-type", "application/toml"),
            ("content-length", "5"),
        ]);
        assert_eq!(check(&Method::PUT, &toml), Ok(()));
        let bare = headers(&[("content-length", "5")]);
        assert_eq!(check(&Method::POST, &bare), Ok(()));
        let browser_bare = headers(&[("content-length", "5"), ("sec-fetch-site", "same-origin")]);
        assert!(matches!(
            check(&Method::POST, &browser_bare),
            Err(Refused::ContentType(_))
        ));
        assert_eq!(
            check(&Method::POST, &headers(&[("content-type", "text/plain")])),
            Ok(()),
            "no body, nothing to refuse"
        );
    }
}
