//! The HTTP/2 sender: concurrent requests on one `h2` client connection over TLS (ALPN h2), with
//! the retries Apple asks for (PROTOCOL.md 2.6), provider tokens reused and refreshed as Apple
//! allows (PROTOCOL.md 2.8), one stream first on a token connection (PROTOCOL.md 2.2), and a new
//! connection for whatever a GOAWAY, reset or dead connection left unanswered.

use super::config::Job;
use super::connect::Connector;
use super::jwt::JwtCache;
use super::mutant::{self, Mutant};
use super::retry::{backoff, classify, Verdict, MAX_ATTEMPTS};
use super::{error_outcome, sent_outcome};
use crate::model::AuthKind;
use crate::plan::{Outcome, PlanNotification, ResultKind};
use bytes::Bytes;
use h2::client::SendRequest;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Pause before opening another connection after a failed attempt.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Most consecutive failed connection attempts before everything left is reported `error`.
const MAX_CONNECT_FAILURES: u8 = 4;
/// A request without a complete answer after this long counts as lost with its connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The HTTP/2 handshake (after TLS) may take this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most requests in flight at once; h2 itself queues beyond the server's stream limit.
const MAX_IN_FLIGHT: usize = 1000;
/// Largest response body kept; APNs bodies are a few dozen bytes (PROTOCOL.md 2.6).
const MAX_BODY: usize = 64 * 1024;

/// What came back for one request.
#[derive(Debug)]
enum Answer {
    /// A complete HTTP response.
    Response {
        status: u16,
        apns_id: Option<String>,
        reason: Option<String>,
        timestamp: Option<u64>,
    },
    /// No answer, and the connection is gone or going (GOAWAY, reset, I/O error, REFUSED_STREAM,
    /// timeout): retry on a new connection.
    ConnectionLost(String),
    /// The stream alone was reset: retry after a pause.
    StreamFailed(String),
}

/// One finished request.
#[derive(Debug)]
struct Done {
    index: usize,
    generation: u64,
    jwt_serial: Option<u64>,
    probe: bool,
    answer: Answer,
}

/// The connection requests currently go to.
struct Conn {
    send: SendRequest<Bytes>,
    driver: JoinHandle<()>,
    generation: u64,
    /// Token auth: an answer other than 403 came back, so more streams may be opened.
    validated: bool,
    /// Token auth: the lone first request is in flight.
    probe_in_flight: bool,
}

/// Per-notification progress.
struct Ledger<'a> {
    notes: &'a [PlanNotification],
    outcomes: Vec<Option<Outcome>>,
    attempts: Vec<u8>,
    ready: BTreeSet<usize>,
    delayed: Vec<(Instant, usize)>,
}

impl Ledger<'_> {
    fn settle(&mut self, i: usize, o: Outcome) {
        if let Some(slot) = self.outcomes.get_mut(i) {
            *slot = Some(o);
        }
    }

    /// Schedules another attempt, or reports `last` once the attempts are used up.
    fn retry(&mut self, i: usize, delay: Duration, last: Outcome) {
        if self.attempts.get(i).copied().unwrap_or(MAX_ATTEMPTS) >= MAX_ATTEMPTS {
            self.settle(i, last);
        } else if delay.is_zero() {
            self.ready.insert(i);
        } else {
            self.delayed.push((Instant::now() + delay, i));
        }
    }

    /// Reports `error` for everything not yet sent or in flight.
    fn give_up_waiting(&mut self, why: &str) {
        let waiting: Vec<usize> = self
            .ready
            .iter()
            .copied()
            .chain(self.delayed.iter().map(|&(_, i)| i))
            .collect();
        self.ready.clear();
        self.delayed.clear();
        for i in waiting {
            if let Some(n) = self.notes.get(i) {
                let o = error_outcome(n.id, why);
                self.settle(i, o);
            }
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sends the plan over the HTTP/2 API; one outcome per notification, in plan order.
pub async fn send(job: &Job) -> Vec<Outcome> {
    let notes = &job.plan.notifications;
    // The plan's pace_ms spaces first sends (retries keep their own backoff).
    let pace = Duration::from_millis(job.plan.pace_ms);
    let start = Instant::now();
    let paced = |k: usize| start + pace * u32::try_from(k).unwrap_or(u32::MAX);
    let mut ledger = Ledger {
        notes,
        outcomes: vec![None; notes.len()],
        attempts: vec![0; notes.len()],
        ready: if pace.is_zero() {
            (0..notes.len()).collect()
        } else {
            (0..notes.len().min(1)).collect()
        },
        delayed: if pace.is_zero() {
            Vec::new()
        } else {
            (1..notes.len()).map(|k| (paced(k), k)).collect()
        },
    };
    let token_auth = job.target.auth == AuthKind::Token;
    let mut jwt = job.token.clone().map(JwtCache::shared);
    let connector = match Connector::new(
        &job.ca_pem,
        if token_auth {
            None
        } else {
            job.identity.as_ref()
        },
        &job.target.host,
        job.target.port,
        &job.target.apple_host,
        true,
    ) {
        Ok(c) => c,
        Err(e) => {
            ledger.give_up_waiting(&format!("TLS setup: {e}"));
            return collect(ledger);
        }
    };

    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut task_index: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut conn: Option<Conn> = None;
    let mut generation = 0u64;
    let mut connect_failures = 0u8;
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        ledger.delayed.retain(|&(t, i)| {
            if t <= now {
                due.push(i);
                false
            } else {
                true
            }
        });
        ledger.ready.extend(due);
        if ledger.ready.is_empty() && ledger.delayed.is_empty() && tasks.is_empty() {
            break;
        }
        if conn.as_ref().is_some_and(|c| c.driver.is_finished()) {
            conn = None;
        }
        if !ledger.ready.is_empty() && conn.is_none() {
            if generation > 0 && mutant::is(Mutant::NoReconnect) {
                ledger.give_up_waiting("connection lost");
                continue;
            }
            if connect_failures > 0 {
                tokio::time::sleep(RECONNECT_BACKOFF).await;
            }
            match open(&connector, token_auth).await {
                Ok((send, driver)) => {
                    connect_failures = 0;
                    generation = generation.saturating_add(1);
                    conn = Some(Conn {
                        send,
                        driver,
                        generation,
                        validated: !token_auth,
                        probe_in_flight: false,
                    });
                }
                Err(e) => {
                    tracing::warn!("http2 connect failed: {e}");
                    connect_failures = connect_failures.saturating_add(1);
                    if connect_failures >= MAX_CONNECT_FAILURES {
                        ledger.give_up_waiting(&format!("connect: {e}"));
                    }
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            while let Some(&i) = ledger.ready.first() {
                // PROTOCOL.md 2.2: one stream on a token connection until a token was accepted.
                let probe = !c.validated;
                if (probe && c.probe_in_flight) || tasks.len() >= MAX_IN_FLIGHT {
                    break;
                }
                ledger.ready.remove(&i);
                let Some(n) = notes.get(i) else { continue };
                let signed = match jwt.as_mut().map(|j| j.token(now_secs())) {
                    None => None,
                    Some(Ok(s)) => Some(s),
                    Some(Err(e)) => {
                        ledger.settle(i, error_outcome(n.id, format!("signing the JWT: {e}")));
                        continue;
                    }
                };
                let request = match build_request(n, job, signed.as_ref().map(|s| &s.jwt)) {
                    Ok(r) => r,
                    Err(e) => {
                        ledger.settle(i, error_outcome(n.id, e));
                        continue;
                    }
                };
                let body = match serde_json::to_vec(&n.payload) {
                    Ok(b) => Bytes::from(b),
                    Err(e) => {
                        ledger.settle(i, error_outcome(n.id, format!("payload: {e}")));
                        continue;
                    }
                };
                if let Some(a) = ledger.attempts.get_mut(i) {
                    *a = a.saturating_add(1);
                }
                c.probe_in_flight |= probe;
                let send = c.send.clone();
                let generation = c.generation;
                let jwt_serial = signed.map(|s| s.serial);
                let handle = tasks.spawn(async move {
                    Done {
                        index: i,
                        generation,
                        jwt_serial,
                        probe,
                        answer: exchange(send, request, body).await,
                    }
                });
                task_index.insert(handle.id(), i);
                if probe || mutant::is(Mutant::ConnectionPerNotification) {
                    break;
                }
            }
        }
        if mutant::is(Mutant::ConnectionPerNotification) && !tasks.is_empty() {
            conn = None;
        }
        let next_due = ledger.delayed.iter().map(|&(t, _)| t).min();
        tokio::select! {
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let done = match joined {
                    Ok((id, done)) => {
                        task_index.remove(&id);
                        done
                    }
                    Err(e) => {
                        // A request task died: treat its notification as unanswered.
                        let Some(i) = task_index.remove(&e.id()) else { continue };
                        Done {
                            index: i,
                            generation: 0,
                            jwt_serial: None,
                            probe: false,
                            answer: Answer::ConnectionLost(format!("request task failed: {e}")),
                        }
                    }
                };
                handle_done(done, &mut ledger, &mut conn, jwt.as_mut());
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
            else => {}
        }
    }
    if let Some(c) = conn.take() {
        // Dropping the last handle lets h2 close the connection cleanly.
        drop(c.send);
        let mut driver = c.driver;
        if tokio::time::timeout(Duration::from_secs(1), &mut driver)
            .await
            .is_err()
        {
            driver.abort();
        }
    }
    collect(ledger)
}

/// Applies one answer: report it, or schedule the retry Apple asks for.
fn handle_done(
    done: Done,
    ledger: &mut Ledger,
    conn: &mut Option<Conn>,
    jwt: Option<&mut JwtCache>,
) {
    let i = done.index;
    let Some(n) = ledger.notes.get(i) else { return };
    let id = n.id;
    let current_generation = conn.as_ref().map(|c| c.generation);
    let current = conn.as_mut().filter(|c| c.generation == done.generation);
    match done.answer {
        Answer::Response {
            status,
            apns_id,
            reason,
            timestamp,
        } => {
            if let Some(c) = current {
                if done.probe {
                    c.probe_in_flight = false;
                }
                if status != 403 {
                    c.validated = true;
                }
            }
            let verdict = classify(status, reason.as_deref());
            let answered = |result| Outcome {
                id,
                result,
                reason: reason.clone(),
                status: Some(status),
                timestamp: None,
                apns_id: apns_id.clone(),
                channel: None,
            };
            match verdict {
                Verdict::Sent => ledger.settle(i, sent_outcome(id, apns_id.clone())),
                Verdict::TokenInvalid => {
                    let o = Outcome {
                        timestamp,
                        ..answered(ResultKind::TokenInvalid)
                    };
                    ledger.settle(i, o);
                }
                Verdict::Fail => ledger.settle(i, answered(ResultKind::Failed)),
                Verdict::RetryLater => {
                    let tries = ledger.attempts.get(i).copied().unwrap_or(MAX_ATTEMPTS);
                    ledger.retry(
                        i,
                        mutant::pause(backoff(tries)),
                        answered(ResultKind::Failed),
                    );
                }
                Verdict::RetryOnNewConnection => {
                    // The connection keeps refusing token updates for a while: stop using it.
                    if current_generation == Some(done.generation) {
                        *conn = None;
                    }
                    let tries = ledger.attempts.get(i).copied().unwrap_or(MAX_ATTEMPTS);
                    ledger.retry(i, backoff(tries), answered(ResultKind::Failed));
                }
                Verdict::RetryWithNewToken => {
                    // PROTOCOL.md 2.8: a fresh token right after ExpiredProviderToken is allowed.
                    if let (Some(j), Some(serial)) = (jwt, done.jwt_serial) {
                        if !mutant::is(Mutant::NoResign) {
                            j.expired(serial);
                        }
                    }
                    ledger.retry(i, Duration::ZERO, answered(ResultKind::Failed));
                }
            }
        }
        Answer::ConnectionLost(why) => {
            if current.is_some() {
                *conn = None;
            }
            ledger.retry(i, Duration::ZERO, error_outcome(id, why));
        }
        Answer::StreamFailed(why) => {
            if let Some(c) = current {
                if done.probe {
                    c.probe_in_flight = false;
                }
            }
            let tries = ledger.attempts.get(i).copied().unwrap_or(MAX_ATTEMPTS);
            ledger.retry(i, backoff(tries), error_outcome(id, why));
        }
    }
}

/// Every outcome in plan order (`error` for anything left undecided, which should not happen).
fn collect(ledger: Ledger) -> Vec<Outcome> {
    ledger
        .outcomes
        .into_iter()
        .zip(ledger.notes)
        .map(|(o, n)| o.unwrap_or_else(|| error_outcome(n.id, "not settled")))
        .collect()
}

/// Opens TLS (ALPN h2) and the HTTP/2 connection; the connection future runs on its own task.
async fn open(
    connector: &Connector,
    token_auth: bool,
) -> Result<(SendRequest<Bytes>, JoinHandle<()>), String> {
    let tls = connector.connect().await.map_err(|e| e.to_string())?;
    let mut builder = h2::client::Builder::new();
    if token_auth {
        // PROTOCOL.md 2.2: until the server's SETTINGS say otherwise, assume one stream.
        builder.initial_max_send_streams(1);
    }
    match mutant::wire() {
        Some(broken) => handshake(builder, super::mutant_wire::Rewrite::new(tls, broken)).await,
        None => handshake(builder, tls).await,
    }
}

/// The HTTP/2 handshake over `io`, the connection driven by a task of its own.
async fn handshake<T>(
    builder: h2::client::Builder,
    io: T,
) -> Result<(SendRequest<Bytes>, JoinHandle<()>), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = tokio::time::timeout(HANDSHAKE_TIMEOUT, builder.handshake(io))
        .await
        .map_err(|_| "HTTP/2 handshake timed out".to_string())?
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("http2 connection ended: {e}");
        }
    });
    Ok((send, driver))
}

/// The request a correct provider sends (PROTOCOL.md 2.3).
fn build_request(
    n: &PlanNotification,
    job: &Job,
    jwt: Option<&Arc<str>>,
) -> Result<http::Request<()>, String> {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(format!(
            "https://{}/3/device/{}",
            job.target.apple_host, n.token
        ))
        .header("apns-push-type", n.push_type.as_deref().unwrap_or("alert"))
        .header("apns-priority", n.priority.to_string());
    if let Some(topic) = &job.topic {
        b = b.header("apns-topic", topic.as_str());
    }
    if n.expiry != 0 {
        b = b.header("apns-expiration", n.expiry.to_string());
    }
    if let Some(c) = &n.collapse_id {
        b = b.header("apns-collapse-id", c.as_str());
    }
    if let Some(jwt) = jwt {
        b = b.header("authorization", format!("bearer {jwt}"));
    }
    b.body(()).map_err(|e| format!("request: {e}"))
}

/// What an h2 error means for the request: retry elsewhere, or retry here.
fn lost(e: h2::Error) -> Answer {
    if e.is_reset() && e.reason() != Some(h2::Reason::REFUSED_STREAM) {
        Answer::StreamFailed(format!("stream reset: {e}"))
    } else {
        // GOAWAY (streams above last-stream-id were never processed), REFUSED_STREAM, I/O.
        Answer::ConnectionLost(e.to_string())
    }
}

/// One request and its complete answer.
async fn exchange(send: SendRequest<Bytes>, request: http::Request<()>, body: Bytes) -> Answer {
    let attempt = async {
        let mut send = send.ready().await?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(body, true)?;
        let response = response.await?;
        let status = response.status().as_u16();
        let apns_id = response
            .headers()
            .get("apns-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if data.len().saturating_add(chunk.len()) <= MAX_BODY {
                data.extend_from_slice(&chunk);
            }
        }
        Ok::<_, h2::Error>((status, apns_id, data))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
        Err(_) => Answer::ConnectionLost("no answer in time".into()),
        Ok(Err(e)) => lost(e),
        Ok(Ok((status, apns_id, data))) => {
            let (reason, timestamp) = parse_body(&data);
            Answer::Response {
                status,
                apns_id,
                reason,
                timestamp,
            }
        }
    }
}

/// `reason` and `timestamp` of an error body (PROTOCOL.md 2.6); the timestamp kept in full
/// milliseconds.
fn parse_body(data: &[u8]) -> (Option<String>, Option<u64>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return (None, None);
    };
    let reason = v.get("reason").and_then(|r| r.as_str()).map(str::to_owned);
    let timestamp = v.get("timestamp").and_then(|t| {
        t.as_u64().or_else(|| {
            // A whole number written as a float still names an exact millisecond.
            t.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        })
    });
    (reason, timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_keep_the_millisecond_timestamp() {
        let (r, t) = parse_body(br#"{"reason":"Unregistered","timestamp":1508249865488}"#);
        assert_eq!(r.as_deref(), Some("Unregistered"));
        assert_eq!(t, Some(1_508_249_865_488));
        assert_eq!(parse_body(b""), (None, None));
        assert_eq!(
            parse_body(br#"{"reason":"BadDeviceToken"}"#),
            (Some("BadDeviceToken".into()), None)
        );
    }
}
