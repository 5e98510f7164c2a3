//! One error shape for every route (`{"error": "…"}` plus a status), so clients in any language
//! can handle failures the same way.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// A failed control request: its status and JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// A status with `{"error": message}`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    /// A status with a custom JSON body (must contain `error`).
    pub fn with_body(status: StatusCode, body: Value) -> Self {
        ApiError { status, body }
    }

    /// A status with one of the typed bodies of `bodies` (which all contain `error`).
    pub fn typed(status: StatusCode, body: &impl serde::Serialize) -> Self {
        Self::with_body(
            status,
            serde_json::to_value(body).unwrap_or_else(|e| json!({ "error": e.to_string() })),
        )
    }

    /// The client sent something unusable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The thing named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The route exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }

    /// The emulator is stopping; long requests end with this.
    pub fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    }

    /// Missing or wrong bearer token (RFC 6750 3: the challenge names the scheme).
    pub fn unauthorized() -> Response {
        let mut r =
            Self::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"apnsim\""),
        );
        r
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
