//! `GET|PUT|DELETE /scenario`: load a TOML or JSON scenario into the running emulator; an
//! invalid one gets 400 with the same line:column errors as `apnsim check-scenario`, and nothing
//! changes.

use super::bodies::{ErrorBody, ScenarioError, ScenarioInvalid, ScenarioLoaded};
use super::error::ApiError;
use super::ControlState;
use crate::engine::scenario::{parse_json, parse_toml, ScenarioErrors};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;

/// The scenario in force, with any keys apnsim generated for it; 404 when none is loaded.
#[utoipa::path(get, path = "/scenario", tag = "scenario",
    responses(
        (status = 200, description = "The scenario in force", body = ScenarioLoaded),
        (status = 404, description = "No scenario loaded", body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<ControlState>,
) -> Result<Json<ScenarioLoaded>, ApiError> {
    let loaded = state.core.scenario.lock().clone();
    match loaded {
        Some(l) => Ok(Json(loaded_body(l))),
        None => Err(ApiError::not_found("no scenario loaded")),
    }
}

fn loaded_body(l: crate::scenario_host::LoadedScenario) -> ScenarioLoaded {
    ScenarioLoaded {
        scenario: serde_json::to_value(&l.scenario).unwrap_or_default(),
        generated_keys: l.generated_keys,
    }
}

/// A scenario body as the control API takes it: JSON when the content type says so (or the body
/// starts with `{`), else TOML; errors as 400 with the same `line:column` list as `check-scenario`.
pub(super) fn parse_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<crate::engine::scenario::Scenario, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| invalid(ScenarioErrors::not_utf8(body, e.valid_up_to())))?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let parsed = if json_type || text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_toml(text)
    };
    parsed.map_err(invalid)
}

/// 400 with every error and its position, as `check-scenario` prints them.
fn invalid(e: ScenarioErrors) -> ApiError {
    let errors = e
        .errors
        .iter()
        .map(|x| ScenarioError {
            line: x.line,
            column: x.column,
            message: x.message.clone(),
        })
        .collect();
    ApiError::typed(
        StatusCode::BAD_REQUEST,
        &ScenarioInvalid {
            error: "invalid scenario".into(),
            errors,
            text: e.with_file("scenario").to_string(),
        },
    )
}

/// Loads a scenario (see [`parse_body`]).
#[utoipa::path(put, path = "/scenario", tag = "scenario",
    request_body(description = "A scenario file: TOML, or the same structure as JSON",
        content((String = "application/toml"), (Object = "application/json"))),
    responses(
        (status = 200, description = "Loaded", body = ScenarioLoaded),
        (status = 400, description = "Invalid: every error with its line and column (nothing changed)", body = ScenarioInvalid)))]
pub(super) async fn put(
    State(state): State<ControlState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ScenarioLoaded>, ApiError> {
    let scenario = parse_body(&headers, &body)?;
    let loaded = state
        .core
        .load_scenario(&scenario, &Default::default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(loaded_body(loaded)))
}

/// Removes the loaded scenario's rules, tokens and keys.
#[utoipa::path(delete, path = "/scenario", tag = "scenario",
    responses((status = 204, description = "Cleared (also when none was loaded)")))]
pub(super) async fn delete(State(state): State<ControlState>) -> StatusCode {
    state.core.clear_scenario();
    StatusCode::NO_CONTENT
}
