//! Health, clock and connection routes: what a harness checks before and while it drives a test.

use super::bodies::{Advance, ClockState, ConnectionList, ErrorBody, Health};
use super::error::ApiError;
use super::ControlState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// Largest single clock move accepted (about 100 years), so the offset cannot overflow.
const MAX_ADVANCE_SECS: i64 = 100 * 366 * 24 * 3600;

/// `GET /livez`: the process answers (open without a token, for container health checks).
#[utoipa::path(get, path = "/livez", tag = "status", security(()),
    responses((status = 200, description = "The process answers", body = Health)))]
pub(super) async fn livez() -> Json<Health> {
    Json(Health { status: "live" })
}

/// `GET /readyz`: every listener is bound (the control port opens last) and not stopping.
#[utoipa::path(get, path = "/readyz", tag = "status", security(()),
    responses(
        (status = 200, description = "Every listener is bound", body = Health),
        (status = 503, description = "Stopping", body = Health)))]
pub(super) async fn readyz(State(s): State<ControlState>) -> (StatusCode, Json<Health>) {
    if s.stopping() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health { status: "stopping" }),
        )
    } else {
        (StatusCode::OK, Json(Health { status: "ready" }))
    }
}

fn clock_body(s: &ControlState) -> Json<ClockState> {
    Json(ClockState {
        offset_secs: s.core.clock.offset_secs(),
        now_ms: s.core.clock.now_ms(),
    })
}

/// `GET /clock`: the emulator's time and how far it was moved.
#[utoipa::path(get, path = "/clock", tag = "clock",
    responses((status = 200, description = "The emulator's clock", body = ClockState)))]
pub(super) async fn clock(State(s): State<ControlState>) -> Json<ClockState> {
    clock_body(&s)
}

/// `POST /clock/advance {"seconds": N}`: ages JWTs and registrations without waiting (negative goes back).
#[utoipa::path(post, path = "/clock/advance", tag = "clock",
    request_body(content = Advance, content_type = "application/json"),
    responses(
        (status = 200, description = "The clock after the move", body = ClockState),
        (status = 400, description = "Not {\"seconds\": N} within ±100 years", body = ErrorBody)))]
pub(super) async fn advance(
    State(s): State<ControlState>,
    body: Bytes,
) -> Result<Json<ClockState>, ApiError> {
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
#[utoipa::path(get, path = "/connections", tag = "connections",
    responses((status = 200, description = "Open HTTP/2 connections", body = ConnectionList)))]
pub(super) async fn connections(State(s): State<ControlState>) -> Json<ConnectionList> {
    Json(ConnectionList {
        http2: s.core.http2.connections(),
        legacy: Vec::new(),
        legacy_tracked: false,
    })
}
