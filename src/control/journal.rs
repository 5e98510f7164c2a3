//! `GET /journal`, `GET /journal/wait` and `DELETE /journal`: the journal for tests that are not
//! written in Rust, including a server-side wait so they need no polling loops.

use super::error::ApiError;
use super::payload;
use super::query::{Pairs, Params};
use super::ControlState;
use crate::journal::{Event, Filter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
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
fn head(journal: &crate::journal::Journal, filter: &Filter) -> Value {
    json!({
        "last_seq": journal.last_seq(),
        "first_seq": journal.first_seq(filter),
        "evicted": journal.evicted(),
    })
}

fn listing(events: &[Event], mut head: Value) -> Value {
    head["events"] = json!(payload::events_json(events));
    head
}

/// `GET /journal?kind=&token=&topic=&protocol=&connection=&since=&lint=&limit=`: the newest
/// `limit` matching events, oldest first (`lint=warn`: accepted notifications the payload lint
/// warned about).
pub(super) async fn query(
    State(s): State<ControlState>,
    pairs: Pairs,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(pairs, &["limit", "lint"])?;
    let lint = payload::level_param(&params)?;
    let limit = usize::try_from(params.get("limit", DEFAULT_LIMIT as u64)?).unwrap_or(usize::MAX);
    let journal = &s.core.journal;
    let head = head(journal, &params.filter);
    let mut events = journal.query(&params.filter);
    if lint.is_some() {
        events.retain(|e| payload::matches(e, lint));
    }
    let matched = events.len();
    if matched > limit {
        events.drain(..matched - limit);
    }
    let mut body = listing(&events, head);
    body["matched"] = json!(matched);
    Ok(Json(body))
}

/// `GET /journal/wait?…&n=1&timeout_ms=5000`: blocks until `n` retained events match.
/// Give `since=<last_seq>` to wait for new events only.
pub(super) async fn wait(
    State(s): State<ControlState>,
    pairs: Pairs,
) -> Result<Json<Value>, ApiError> {
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
        Err(t) => Err(ApiError::with_body(
            StatusCode::REQUEST_TIMEOUT,
            json!({
                "error": "timeout",
                "found": t.found,
                "wanted": t.wanted,
                "first_seq": journal.first_seq(&params.filter),
                "evicted": journal.evicted(),
            }),
        )),
    }
}

/// `DELETE /journal`: forgets retained events (sequence numbers and metrics keep counting).
pub(super) async fn clear(State(s): State<ControlState>) -> StatusCode {
    s.core.journal.clear();
    StatusCode::NO_CONTENT
}
