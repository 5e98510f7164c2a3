//! `GET /events`: the journal as server-sent events, live, so a dashboard or a test in any
//! language can watch what happens without polling.

use super::bodies::ErrorBody;
use super::error::ApiError;
use super::payload;
use super::query::{Pairs, Params};
use super::ControlState;
use crate::journal::{Event, Filter, Journal};
use crate::runtime::Shutdown;
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::stream::{self, Stream, StreamExt};
use std::convert::Infallible;

/// Streams every event after `since` (default: the newest at connect time, or the client's
/// `Last-Event-ID` on reconnect) that matches the journal filters, until the emulator stops.
/// Each event is one `data:` line of the journal JSON with `id:` set to its sequence number;
/// events evicted before the stream read them are announced by an SSE comment.
#[utoipa::path(get, path = "/events", tag = "journal", params(super::journal::JournalFilter),
    responses(
        (status = 200, description = "Server-sent events: each `data:` line one JournalEvent as JSON, `id:` its seq; runs until the emulator stops", content_type = "text/event-stream", body = String),
        (status = 400, description = "Unknown or malformed query key", body = ErrorBody)))]
pub(super) async fn stream(
    axum::extract::State(s): axum::extract::State<ControlState>,
    headers: HeaderMap,
    pairs: Pairs,
) -> Result<impl IntoResponse, ApiError> {
    let mut params = Params::parse(pairs, &[])?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = params
        .filter
        .since
        .take()
        .or(resume)
        .unwrap_or_else(|| s.core.journal.last_seq());
    let events = follow(s.core.journal.clone(), after, params.filter, s.stop.clone());
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn follow(
    journal: Journal,
    after: u64,
    filter: Filter,
    stop: Shutdown,
) -> impl Stream<Item = Result<sse::Event, Infallible>> {
    stream::unfold(
        (journal, after, filter, stop),
        |(journal, after, filter, mut stop)| async move {
            let batch = tokio::select! {
                _ = stop.wait() => return None,
                batch = journal.next_after(after) => batch,
            };
            let next = batch.last().map_or(after, |e| e.seq);
            let items = render(&batch, after, &filter);
            Some((stream::iter(items), (journal, next, filter, stop)))
        },
    )
    .flatten()
}

fn render(batch: &[Event], after: u64, filter: &Filter) -> Vec<Result<sse::Event, Infallible>> {
    let mut out = Vec::with_capacity(batch.len() + 1);
    if let Some(first) = batch.first() {
        let missed = first.seq.saturating_sub(after).saturating_sub(1);
        if missed > 0 {
            out.push(Ok(sse::Event::default().comment(format!(
                "{missed} events were evicted or cleared before they could be sent"
            ))));
        }
    }
    for e in batch.iter().filter(|e| filter.matches(e)) {
        let Ok(json) = serde_json::to_string(&payload::journal_event(e)) else {
            continue;
        };
        out.push(Ok(sse::Event::default().id(e.seq.to_string()).data(json)));
    }
    out
}
