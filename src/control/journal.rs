//! `GET /journal`, `GET /journal/wait` and `DELETE /journal`: the journal for tests that are not
//! written in Rust, including a server-side wait so they need no polling loops.

use super::bodies::{ErrorBody, JournalPage, WaitTimeout};
use super::error::ApiError;
use super::payload;
use super::query::{Pairs, Params};
use super::ControlState;
use crate::journal::{Event, EventKind, Filter};
use crate::model::Protocol;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::time::Duration;

/// Events returned by `GET /journal` when no `limit` is given (the newest ones).
const DEFAULT_LIMIT: usize = 1000;
/// How long `GET /journal/wait` waits when no `timeout_ms` is given.
const DEFAULT_WAIT_MS: u64 = 5_000;
/// Upper bound on one wait, so a forgotten request cannot hold a connection forever.
const MAX_WAIT_MS: u64 = 600_000;

/// A journal answer's head, read before the events so `since=<last_seq>` never skips one: the
/// newest sequence number, and what tells "not there" from "gone": `first_seq` (every matching
/// event from it on is retained) and `evicted` (events the journal's bound pushed out since start).
fn head(journal: &crate::journal::Journal, filter: &Filter) -> Head {
    Head {
        last_seq: journal.last_seq(),
        first_seq: journal.first_seq(filter),
        evicted: journal.evicted(),
    }
}

/// See [`head`].
struct Head {
    last_seq: u64,
    first_seq: u64,
    evicted: u64,
}

fn listing(events: &[Event], head: Head) -> JournalPage {
    JournalPage {
        last_seq: head.last_seq,
        first_seq: head.first_seq,
        evicted: head.evicted,
        matched: None,
        events: payload::journal_events(events),
    }
}

/// The journal filters every journal route takes (documentation; [`Params::parse`] reads them
/// and refuses unknown or repeated keys).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct JournalFilter {
    /// Only events of this kind.
    kind: Option<EventKind>,
    /// Only events about this device token (hex).
    #[param(pattern = "^([0-9a-fA-F]{2})+$")]
    token: Option<String>,
    /// Only events about this topic.
    topic: Option<String>,
    /// Only events of this protocol.
    protocol: Option<Protocol>,
    /// Only events on this connection id.
    connection: Option<u64>,
    /// Only events with a larger sequence number.
    since: Option<u64>,
    /// Only accepted notifications whose payload lint has this level.
    lint: Option<crate::lint::Level>,
}

/// `limit=` of `GET /journal`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct LimitParam {
    /// At most this many (the newest) events; default 1000.
    limit: Option<u64>,
}

/// `n=` and `timeout_ms=` of `GET /journal/wait`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct WaitParams {
    /// How many matching events to wait for; default 1.
    n: Option<u64>,
    /// How long to wait, in ms; default 5000, at most 600000.
    timeout_ms: Option<u64>,
}

/// `GET /journal?kind=&token=&topic=&protocol=&connection=&since=&lint=&limit=`: the newest
/// `limit` matching events, oldest first (`lint=warn`: accepted notifications the payload lint
/// warned about).
#[utoipa::path(get, path = "/journal", tag = "journal", params(JournalFilter, LimitParam),
    responses(
        (status = 200, description = "The newest matching events, oldest first", body = JournalPage),
        (status = 400, description = "Unknown, repeated or malformed query key", body = ErrorBody)))]
pub(super) async fn query(
    State(s): State<ControlState>,
    pairs: Pairs,
) -> Result<Json<JournalPage>, ApiError> {
    let params = Params::parse(pairs, &["limit"])?;
    let limit = usize::try_from(params.get("limit", DEFAULT_LIMIT as u64)?).unwrap_or(usize::MAX);
    let journal = &s.core.journal;
    let head = head(journal, &params.filter);
    let mut events = journal.query(&params.filter);
    let matched = events.len();
    if matched > limit {
        events.drain(..matched - limit);
    }
    let mut body = listing(&events, head);
    body.matched = Some(matched);
    Ok(Json(body))
}

/// `GET /journal/wait?…&n=1&timeout_ms=5000`: blocks until `n` retained events match.
/// Give `since=<last_seq>` to wait for new events only.
#[utoipa::path(get, path = "/journal/wait", tag = "journal", params(JournalFilter, WaitParams),
    responses(
        (status = 200, description = "At least `n` matching events", body = JournalPage),
        (status = 400, description = "Unknown, repeated or malformed query key", body = ErrorBody),
        (status = 408, description = "Fewer than `n` matched in time", body = WaitTimeout),
        (status = 503, description = "The emulator is stopping", body = ErrorBody)))]
pub(super) async fn wait(
    State(s): State<ControlState>,
    pairs: Pairs,
) -> Result<Json<JournalPage>, ApiError> {
    let params = Params::parse(pairs, &["n", "timeout_ms"])?;
    let n = usize::try_from(params.get("n", 1)?).unwrap_or(usize::MAX);
    let timeout =
        Duration::from_millis(params.get("timeout_ms", DEFAULT_WAIT_MS)?.min(MAX_WAIT_MS));
    let journal = s.core.journal.clone();
    let mut stop = s.stop.clone();
    let outcome = tokio::select! {
        _ = stop.wait() => return Err(ApiError::shutting_down()),
        r = journal.wait_for(&params.filter, n, timeout) => r,
    };
    match outcome {
        Ok(events) => Ok(Json(listing(&events, head(&journal, &params.filter)))),
        Err(t) => Err(ApiError::typed(
            StatusCode::REQUEST_TIMEOUT,
            &WaitTimeout {
                error: "timeout".into(),
                found: t.found,
                wanted: t.wanted,
                first_seq: journal.first_seq(&params.filter),
                evicted: journal.evicted(),
            },
        )),
    }
}

/// `DELETE /journal`: forgets retained events (sequence numbers and metrics keep counting).
#[utoipa::path(delete, path = "/journal", tag = "journal",
    responses((status = 204, description = "Cleared")))]
pub(super) async fn clear(State(s): State<ControlState>) -> StatusCode {
    s.core.journal.clear();
    StatusCode::NO_CONTENT
}
