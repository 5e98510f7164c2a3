//! Token registry and feedback routes: the state that decides "unknown token", "other
//! environment", "unregistered since T" and what the feedback service will list.

use super::bodies::{
    ErrorBody, FeedbackList, FeedbackListed, Inbox, NewFeedback, OneOrMany, TokenList,
};
use super::error::ApiError;
use super::ControlState;
use crate::engine::{FeedbackEntry, TokenRecord};
use crate::model::{DeviceToken, Environment};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// A body that may be one object or an array of them (one request can seed many tokens).
fn one_or_many(body: &Bytes) -> Result<(Vec<Value>, bool), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    match value {
        Value::Array(items) => Ok((items, true)),
        other => Ok((vec![other], false)),
    }
}

/// Deserializes `value` and refuses keys the type does not know: the type serializes every
/// field, so any input key missing from its re-serialization is a typo, not a silent default.
fn strict<T: DeserializeOwned + Serialize>(value: Value, what: &str) -> Result<T, ApiError> {
    let parsed: T = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))?;
    if let (Value::Object(input), Ok(Value::Object(known))) =
        (&value, serde_json::to_value(&parsed))
    {
        if let Some(key) = input.keys().find(|k| !known.contains_key(*k)) {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            return Err(ApiError::bad_request(format!(
                "{what}: unknown field {key:?}; expected {}",
                names.join(", ")
            )));
        }
    }
    Ok(parsed)
}

/// The `{token}` of a device route.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct TokenPath {
    /// The device token, hex.
    #[param(pattern = "^([0-9a-fA-F]{2})+$")]
    token: String,
}

fn token_path(raw: &str) -> Result<DeviceToken, ApiError> {
    DeviceToken::from_hex(raw)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("token {raw:?} is not hex")))
}

fn unknown(token: &DeviceToken) -> ApiError {
    ApiError::not_found(format!("token {token} is not registered"))
}

/// `GET /tokens`: every registered token.
#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, description = "Every registered token", body = TokenList)))]
pub(super) async fn list(State(s): State<ControlState>) -> Json<TokenList> {
    Json(TokenList {
        tokens: s.core.engine.registry().list(),
    })
}

/// `POST /tokens`: registers (or replaces) one TokenRecord or an array of them.
#[utoipa::path(post, path = "/tokens", tag = "tokens",
    request_body(content = OneOrMany<TokenRecord>, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered; the record(s) as stored", body = OneOrMany<TokenRecord>),
        (status = 400, description = "Not a token record (unknown fields are refused)", body = ErrorBody)))]
pub(super) async fn register(
    State(s): State<ControlState>,
    body: Bytes,
) -> Result<(StatusCode, Json<OneOrMany<TokenRecord>>), ApiError> {
    let (items, many) = one_or_many(&body)?;
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let record: TokenRecord = strict(item, "token record")?;
        if record.token.is_empty() {
            return Err(ApiError::bad_request("token record: token is empty"));
        }
        records.push(record);
    }
    let registry = s.core.engine.registry();
    for r in &records {
        registry.register(r.clone());
    }
    Ok((StatusCode::CREATED, Json(one_or_many_answer(records, many))))
}

/// The answer in the shape of the request: one item, or the array.
fn one_or_many_answer<T>(mut items: Vec<T>, many: bool) -> OneOrMany<T> {
    match (many, items.pop()) {
        (false, Some(one)) if items.is_empty() => OneOrMany::One(one),
        (_, last) => {
            items.extend(last);
            OneOrMany::Many(items)
        }
    }
}

/// `GET /tokens/{token}`: one record.
#[utoipa::path(get, path = "/tokens/{token}", tag = "tokens", params(TokenPath),
    responses(
        (status = 200, description = "The record", body = TokenRecord),
        (status = 400, description = "Not hex", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody)))]
pub(super) async fn get(
    State(s): State<ControlState>,
    Path(raw): Path<String>,
) -> Result<Json<TokenRecord>, ApiError> {
    let token = token_path(&raw)?;
    s.core
        .engine
        .registry()
        .get(&token)
        .map(Json)
        .ok_or_else(|| unknown(&token))
}

/// `DELETE /tokens/{token}`: forgets a token.
#[utoipa::path(delete, path = "/tokens/{token}", tag = "tokens", params(TokenPath),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, description = "Not hex", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody)))]
pub(super) async fn remove(
    State(s): State<ControlState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token = token_path(&raw)?;
    if s.core.engine.registry().remove(&token) {
        s.core.engine.forget_device(&token);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&token))
    }
}

fn set_online(s: &ControlState, raw: &str, online: bool) -> Result<StatusCode, ApiError> {
    let token = token_path(raw)?;
    if s.core.set_device_online(&token, online) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(&token))
    }
}

/// `GET /devices/{token}/inbox`: what a registered device displayed and what waits for it,
/// each with the lock screen's `display` and the payload `lint`.
#[utoipa::path(get, path = "/devices/{token}/inbox", tag = "devices", params(TokenPath),
    responses(
        (status = 200, description = "The device's inbox and stored notifications", body = Inbox),
        (status = 400, description = "Not hex", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody)))]
pub(super) async fn inbox(
    State(s): State<ControlState>,
    Path(raw): Path<String>,
) -> Result<Json<Inbox>, ApiError> {
    let token = token_path(&raw)?;
    s.core
        .engine
        .device_view(&token)
        .map(|v| Json(super::payload::inbox(&v)))
        .ok_or_else(|| unknown(&token))
}

/// `POST /devices/{token}/online`: also delivers (or expires) what was stored for the device.
#[utoipa::path(post, path = "/devices/{token}/online", tag = "devices", params(TokenPath),
    responses(
        (status = 204, description = "Online"),
        (status = 400, description = "Not hex", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody)))]
pub(super) async fn online(
    State(s): State<ControlState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_online(&s, &raw, true)
}

/// `POST /devices/{token}/offline`: the device's notifications are stored until it comes back.
#[utoipa::path(post, path = "/devices/{token}/offline", tag = "devices", params(TokenPath),
    responses(
        (status = 204, description = "Offline"),
        (status = 400, description = "Not hex", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody)))]
pub(super) async fn offline(
    State(s): State<ControlState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_online(&s, &raw, false)
}

/// `POST /feedback`: queues one entry or an array of them.
#[utoipa::path(post, path = "/feedback", tag = "feedback",
    request_body(content = OneOrMany<NewFeedback>, content_type = "application/json"),
    responses(
        (status = 201, description = "Queued; the entry (entries) with its timestamp", body = OneOrMany<NewFeedback>),
        (status = 400, description = "Not a feedback entry", body = ErrorBody)))]
pub(super) async fn add_feedback(
    State(s): State<ControlState>,
    body: Bytes,
) -> Result<(StatusCode, Json<OneOrMany<NewFeedback>>), ApiError> {
    let (items, many) = one_or_many(&body)?;
    let now = u32::try_from(s.core.clock.now_secs()).unwrap_or(u32::MAX);
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let mut e: NewFeedback = serde_json::from_value(item)
            .map_err(|e| ApiError::bad_request(format!("feedback entry: {e}")))?;
        if e.token.is_empty() || e.topic.is_empty() {
            return Err(ApiError::bad_request(
                "feedback entry: token and topic must not be empty",
            ));
        }
        e.timestamp = Some(e.timestamp.unwrap_or(now));
        entries.push(e);
    }
    let registry = s.core.engine.registry();
    for e in &entries {
        registry.add_feedback(
            e.environment,
            &e.topic,
            FeedbackEntry {
                timestamp: e.timestamp.unwrap_or(now),
                token: e.token.clone(),
            },
        );
    }
    Ok((StatusCode::CREATED, Json(one_or_many_answer(entries, many))))
}

/// `?topic=&environment=` of `GET /feedback` (documentation; the handler refuses unknown keys).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct FeedbackQuery {
    /// The app.
    topic: String,
    /// One environment (both when absent).
    environment: Option<Environment>,
}

/// `GET /feedback?topic=…[&environment=…]`: what the feedback service would serve, without taking it.
#[utoipa::path(get, path = "/feedback", tag = "feedback", params(FeedbackQuery),
    responses(
        (status = 200, description = "The entries, not taken", body = FeedbackList),
        (status = 400, description = "Missing topic, unknown key or environment", body = ErrorBody)))]
pub(super) async fn peek_feedback(
    State(s): State<ControlState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<FeedbackList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(key) = q.keys().find(|k| *k != "topic" && *k != "environment") {
        return Err(ApiError::bad_request(format!(
            "unknown query key {key:?}; expected topic, environment"
        )));
    }
    let topic = q
        .get("topic")
        .ok_or_else(|| ApiError::bad_request("topic is required"))?;
    let envs = match q.get("environment").map(String::as_str) {
        None => vec![Environment::Sandbox, Environment::Production],
        Some("sandbox") => vec![Environment::Sandbox],
        Some("production") => vec![Environment::Production],
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown environment {other:?}; expected sandbox or production"
            )))
        }
    };
    let registry = s.core.engine.registry();
    let mut entries = Vec::new();
    for env in envs {
        for e in registry.peek_feedback(env, topic) {
            entries.push(FeedbackListed {
                environment: env,
                topic: topic.clone(),
                token: e.token,
                timestamp: e.timestamp,
            });
        }
    }
    Ok(Json(FeedbackList { entries }))
}
