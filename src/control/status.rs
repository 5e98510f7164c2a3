//! Health, clock and connection routes: what a harness checks before and while it drives a test.

use super::error::ApiError;
use super::ControlState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Largest single clock move accepted (about 100 years), so the offset cannot overflow.
const MAX_ADVANCE_SECS: i64 = 100 * 366 * 24 * 3600;

/// `GET /livez`: the process answers (open without a token, for container health checks).
pub(super) async fn livez() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// `GET /readyz`: every listener is bound (the control port opens last) and not stopping.
pub(super) async fn readyz(State(s): State<ControlState>) -> (StatusCode, Json<Value>) {
    if s.stopping() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "stopping" })),
        )
    } else {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    }
}

fn clock_body(s: &ControlState) -> Json<Value> {
    Json(json!({
        "offset_secs": s.core.clock.offset_secs(),
        "now_ms": s.core.clock.now_ms(),
    }))
}

/// `GET /clock`: the emulator's time and how far it was moved.
pub(super) async fn clock(State(s): State<ControlState>) -> Json<Value> {
    clock_body(&s)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

/// `POST /clock/advance {"seconds": N}`: ages JWTs and registrations without waiting (negative goes back).
pub(super) async fn advance(
    State(s): State<ControlState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let a: Advance = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"seconds\": N}}: {e}")))?;
    if a.seconds.unsigned_abs() > MAX_ADVANCE_SECS.unsigned_abs() {
        return Err(ApiError::bad_request(format!(
            "seconds must be within ±{MAX_ADVANCE_SECS}"
        )));
    }
    s.core.clock.advance_secs(a.seconds);
    Ok(clock_body(&s))
}

/// `GET /connections`: open HTTP/2 connections with their observations. Legacy and feedback
/// connections are not tracked live; their opened/closed events are in the journal.
pub(super) async fn connections(State(s): State<ControlState>) -> Json<Value> {
    Json(json!({
        "http2": s.core.http2.connections(),
        "legacy": [],
        "legacy_tracked": false,
    }))
}
