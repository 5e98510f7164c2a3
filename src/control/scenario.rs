//! `GET|PUT|DELETE /scenario`: load a TOML or JSON scenario into the running emulator; an
//! invalid one gets 400 with the same line:column errors as `apnsim check-scenario`, and nothing
//! changes.

use super::error::ApiError;
use super::ControlState;
use crate::engine::scenario::{parse_json, parse_toml};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

/// The scenario in force, with any keys apnsim generated for it; 404 when none is loaded.
pub(super) async fn get(State(state): State<ControlState>) -> Result<Json<Value>, ApiError> {
    let loaded = state.core.scenario.lock().clone();
    match loaded {
        Some(l) => Ok(Json(serde_json::to_value(l).unwrap_or_default())),
        None => Err(ApiError::not_found("no scenario loaded")),
    }
}

/// A scenario body as the control API takes it: JSON when the content type says so (or the body
/// starts with `{`), else TOML; errors as 400 with the same `line:column` list as `check-scenario`.
pub(super) fn parse_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<crate::engine::scenario::Scenario, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("scenario is not UTF-8"))?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let parsed = if json_type || text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_toml(text)
    };
    parsed.map_err(|e| {
        let errors: Vec<Value> = e
            .errors
            .iter()
            .map(|x| json!({ "line": x.line, "column": x.column, "message": x.message }))
            .collect();
        ApiError::with_body(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid scenario", "errors": errors, "text": e.with_file("scenario").to_string() }),
        )
    })
}

/// Loads a scenario (see [`parse_body`]).
pub(super) async fn put(
    State(state): State<ControlState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let scenario = parse_body(&headers, &body)?;
    let loaded = state
        .core
        .load_scenario(&scenario, &Default::default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(serde_json::to_value(loaded).unwrap_or_default()))
}

/// Removes the loaded scenario's rules, tokens and keys.
pub(super) async fn delete(State(state): State<ControlState>) -> StatusCode {
    state.core.clear_scenario();
    StatusCode::NO_CONTENT
}
