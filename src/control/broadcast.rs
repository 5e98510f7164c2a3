//! Broadcast channel routes (PROTOCOL.md 2.11): list the channels of an environment and
//! subscribe or unsubscribe a device token, so a test can say which devices a broadcast reaches.

use super::bodies::{ChannelList, ErrorBody, Subscription, SubscriptionChange};
use super::error::ApiError;
use super::ControlState;
use crate::broadcast::Channel;
use crate::model::{DeviceToken, Environment};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

/// `?environment=` of `GET /channels` (both when absent).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvQuery {
    /// One environment (both when absent).
    environment: Option<Environment>,
}

/// `GET /channels[?environment=production|sandbox]`: every live channel with its subscribers.
#[utoipa::path(get, path = "/channels", tag = "broadcast", params(EnvQuery),
    responses(
        (status = 200, description = "Every live channel", body = ChannelList),
        (status = 400, description = "Unknown query key or environment", body = ErrorBody)))]
pub(super) async fn list(
    State(s): State<ControlState>,
    q: Result<Query<EnvQuery>, QueryRejection>,
) -> Result<Json<ChannelList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let store = s.core.broadcast.lock();
    let channels: Vec<Channel> = match q.environment {
        Some(env) => store.all(env),
        None => [Environment::Production, Environment::Sandbox]
            .into_iter()
            .flat_map(|e| store.all(e))
            .collect(),
    };
    Ok(Json(ChannelList { channels }))
}

fn parse(body: &[u8]) -> Result<(Environment, String, DeviceToken), ApiError> {
    let sub: Subscription = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("subscription: {e}")))?;
    let token = DeviceToken::from_hex(&sub.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("token {:?} is not hex", sub.token)))?;
    Ok((sub.environment, sub.channel, token))
}

fn no_channel(env: Environment, id: &str) -> ApiError {
    ApiError::not_found(format!("no channel {id:?} in {env}"))
}

/// `POST /subscriptions` `{"environment","channel","token"}`: the device receives the channel's broadcasts.
#[utoipa::path(post, path = "/subscriptions", tag = "broadcast",
    request_body(content = Subscription, content_type = "application/json"),
    responses(
        (status = 200, description = "Subscribed", body = SubscriptionChange),
        (status = 400, description = "Not a subscription", body = ErrorBody),
        (status = 404, description = "No such channel in that environment", body = ErrorBody)))]
pub(super) async fn subscribe(
    State(s): State<ControlState>,
    body: axum::body::Bytes,
) -> Result<Json<SubscriptionChange>, ApiError> {
    let (env, id, token) = parse(&body)?;
    let added = s
        .core
        .broadcast
        .lock()
        .subscribe(env, &id, token)
        .map_err(|_| no_channel(env, &id))?;
    Ok(Json(SubscriptionChange {
        subscribed: true,
        changed: added,
    }))
}

/// `DELETE /subscriptions` with the same body: the device no longer receives them.
#[utoipa::path(delete, path = "/subscriptions", tag = "broadcast",
    request_body(content = Subscription, content_type = "application/json"),
    responses(
        (status = 200, description = "Unsubscribed", body = SubscriptionChange),
        (status = 400, description = "Not a subscription", body = ErrorBody),
        (status = 404, description = "No such channel in that environment", body = ErrorBody)))]
pub(super) async fn unsubscribe(
    State(s): State<ControlState>,
    body: axum::body::Bytes,
) -> Result<Json<SubscriptionChange>, ApiError> {
    let (env, id, token) = parse(&body)?;
    let removed = s
        .core
        .broadcast
        .lock()
        .unsubscribe(env, &id, &token)
        .map_err(|_| no_channel(env, &id))?;
    Ok(Json(SubscriptionChange {
        subscribed: false,
        changed: removed,
    }))
}
