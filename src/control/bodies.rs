//! The JSON bodies of the control API as types: each route returns one of these, and the
//! OpenAPI document at `/openapi.json` is derived from the same types, so the two cannot drift.

use crate::broadcast::Channel;
use crate::engine::devices::{Displayed, StoredNotification};
use crate::engine::TokenRecord;
use crate::http2::state::ConnectionInfo;
use crate::journal::Event;
use crate::lint::{Display, Lint};
use crate::model::{DeviceToken, Environment};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Every failure: `{"error": "…"}` plus, for some, more fields (see the route).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
}

/// `/livez` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `live`, `ready` or `stopping`.
    #[schema(pattern = "^(live|ready|stopping)$")]
    pub status: &'static str,
}

/// The emulator's clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockState {
    /// How far the clock was moved from real time, in seconds.
    pub offset_secs: i64,
    /// The emulator's now, ms since the UNIX epoch.
    pub now_ms: u64,
}

/// The body of `POST /clock/advance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    /// Seconds to move the clock (negative goes back), within ±100 years.
    #[serde(deserialize_with = "crate::model::whole::number")]
    #[schema(minimum = -3_162_240_000i64, maximum = 3_162_240_000i64)]
    pub seconds: i64,
}

/// `GET /tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    /// Every registered token.
    pub tokens: Vec<TokenRecord>,
}

/// One request body that may be a single item or an array of them (one request can seed many).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// One item (answered with one).
    One(T),
    /// Many items (answered with the array).
    Many(Vec<T>),
}

/// One feedback tuple to queue (PROTOCOL.md 1.8); `environment` absent or null = both,
/// `timestamp` absent = now on the emulator's clock.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeedback {
    /// The app.
    #[schema(min_length = 1)]
    pub topic: String,
    /// The environment whose feedback service lists it.
    #[serde(default)]
    pub environment: Option<Environment>,
    /// The token (non-empty hex).
    #[schema(value_type = String, pattern = "^([0-9a-fA-F]{2})+$")]
    pub token: DeviceToken,
    /// Seconds since the epoch when the app was found gone.
    #[serde(default, deserialize_with = "crate::model::whole::optional")]
    #[schema(value_type = Option<u64>, maximum = 4_294_967_295u64)]
    pub timestamp: Option<u32>,
}

/// One tuple the feedback service would serve.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackListed {
    /// The environment whose feedback service lists it.
    pub environment: Environment,
    /// The app.
    pub topic: String,
    /// The token.
    pub token: DeviceToken,
    /// Seconds since the epoch when the app was found gone.
    #[schema(value_type = u64, maximum = 4_294_967_295u64)]
    pub timestamp: u32,
}

/// `GET /feedback`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackList {
    /// What the feedback service would serve, without taking it.
    pub entries: Vec<FeedbackListed>,
}

/// `GET /channels`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    /// Every live channel with its subscribers.
    pub channels: Vec<Channel>,
}

/// The body of `POST` and `DELETE /subscriptions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The channel's environment.
    pub environment: Environment,
    /// The channel id (`apns-channel-id`).
    pub channel: String,
    /// The device token, hex.
    #[schema(pattern = "^([0-9a-fA-F]{2})+$")]
    pub token: String,
}

/// The answer to a subscription change.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionChange {
    /// Whether the device is now subscribed.
    pub subscribed: bool,
    /// Whether this request changed it.
    pub changed: bool,
}

/// A journal event as the control API shows it: the event plus, on an accepted notification,
/// the payload `lint`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalEvent {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// The payload lint (accepted notifications only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<Lint>,
}

/// `GET /journal` and `GET /journal/wait`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JournalPage {
    /// The newest sequence number when the answer was made (give it as `since` to read on).
    pub last_seq: u64,
    /// Every matching event from this sequence number on is retained.
    pub first_seq: u64,
    /// Events the journal's bound pushed out since start.
    pub evicted: u64,
    /// How many events matched before `limit` (`GET /journal` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<usize>,
    /// The events, oldest first.
    pub events: Vec<JournalEvent>,
}

/// `GET /journal/wait` that timed out (408).
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitTimeout {
    /// `timeout`.
    pub error: String,
    /// Matching events retained when it timed out.
    pub found: usize,
    /// How many were asked for.
    pub wanted: usize,
    /// See [`JournalPage::first_seq`].
    pub first_seq: u64,
    /// See [`JournalPage::evicted`].
    pub evicted: u64,
}

/// `GET /connections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    /// Open HTTP/2 connections with their observations.
    pub http2: Vec<ConnectionInfo>,
    /// Always empty: legacy connections are not tracked live (their events are in the journal).
    #[schema(value_type = Vec<Object>, max_items = 0)]
    pub legacy: Vec<serde_json::Value>,
    /// Always false (see `legacy`).
    pub legacy_tracked: bool,
}

/// A notification on a device with what the lock screen shows and the payload lint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Linted<T> {
    /// The notification and when it arrived.
    #[serde(flatten)]
    pub item: T,
    /// What the lock screen shows, or why nothing.
    pub display: Display,
    /// The payload lint.
    pub lint: Lint,
}

/// `GET /devices/{token}/inbox`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    /// The token.
    pub token: DeviceToken,
    /// Whether the device is online.
    pub online: bool,
    /// Held while offline, oldest first (at most one per app).
    pub stored: Vec<Linted<StoredNotification>>,
    /// Displayed, newest last.
    pub inbox: Vec<Linted<Displayed>>,
}

/// `GET` and `PUT /scenario`: the scenario in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioLoaded {
    /// The scenario as loaded (the scenario file's structure, as JSON).
    #[schema(value_type = Object)]
    pub scenario: serde_json::Value,
    /// key id → PKCS#8 PEM of keys the scenario named without `pem` (providers sign with these).
    pub generated_keys: BTreeMap<String, String>,
}

/// One scenario error, as `apnsim check-scenario` prints it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

/// 400 for a scenario that does not parse or validate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioInvalid {
    /// `invalid scenario`.
    pub error: String,
    /// Each error with its position.
    pub errors: Vec<ScenarioError>,
    /// The errors as `check-scenario` prints them.
    pub text: String,
}

/// `POST /scenario/check` of a valid scenario.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioCheck {
    /// Always true (an invalid scenario is a 400).
    pub ok: bool,
    /// How many rules it has.
    pub rules: usize,
}
