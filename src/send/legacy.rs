//! The legacy binary sender: command-2 frames pipelined on one TLS connection, error-responses and
//! silent closes handled the way a correct provider must (PROTOCOL.md 1.4, 1.6, 1.7), and the
//! feedback reader (PROTOCOL.md 1.8). What each connection end means is decided in `settle`.

use super::config::Job;
use super::connect::Connector;
use super::settle::{self, End, Settlement, Written};
use super::{error_outcome, sent_outcome};
use crate::legacy::frame::{self, ErrorResponse, LegacyNotification, ERROR_RESPONSE_LEN};
use crate::plan::{FeedbackTuple, Outcome, ResultKind};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

/// How long a careful write waits for an error-response or close (at most the quiet period).
/// Apple's error-response came 200–500 ms after the bad notification (PROTOCOL.md 1.7), and
/// apnsim's legacy answer delay (200 ms by default, plus the close gap) mimics it: a shorter wait
/// would call the culprit proven and blame the notification after it.
const CAREFUL_WINDOW: Duration = Duration::from_millis(500);
/// Pause before opening another connection after one that settled nothing, so a failing server
/// is not hammered.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Most times one notification may be pinned as the cause of a silent close (written alone, the
/// server closed right after it) before it is reported `failed`: a close can be the server's
/// random fault rather than the notification's (issue 12).
const MAX_ATTEMPTS: u8 = 4;
/// Most consecutive failed connection attempts before everything left is reported `error`.
const MAX_CONNECT_FAILURES: u8 = 4;
/// Most consecutive connections that settled and pinned nothing (the server closed before
/// anything written could be proven) before everything left is reported `error`.
const MAX_STALLS: u8 = 4;
/// Once a close has named nobody, at most this many notifications are written and not yet proven
/// by the quiet period: what the next silent close leaves unproven, to be resent, stays bounded.
const PIPELINE_WINDOW: usize = 32;
/// A write that blocks this long (the server stopped reading) counts as a dead connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the feedback service may take to send its list and close.
const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// The most feedback bytes read (a list of about 1.7 million tuples), so memory stays bounded.
const MAX_FEEDBACK_BYTES: usize = 64 * 1024 * 1024;

/// What the reader task saw first.
#[derive(Debug, Clone, Copy)]
enum ReadEnd {
    /// A complete error-response packet (PROTOCOL.md 1.6).
    Error(ErrorResponse),
    /// EOF, reset, or bytes that are not an error-response.
    Closed,
}

/// One notification waiting to be written.
#[derive(Debug, Clone, Copy)]
struct Pending {
    index: usize,
    careful: bool,
}

/// Sends the plan over the legacy gateway; one outcome per notification, in plan order.
pub async fn send(job: &Job) -> Vec<Outcome> {
    let notes = &job.plan.notifications;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; notes.len()];
    // Encode every frame once; a notification that cannot be encoded is an `error` right away.
    let mut frames: Vec<Option<Bytes>> = Vec::with_capacity(notes.len());
    for (i, n) in notes.iter().enumerate() {
        match encode(n.id, &n.token, &n.payload, n.expiry, n.priority) {
            Ok(b) => frames.push(Some(b)),
            Err(e) => {
                outcomes[i] = Some(error_outcome(n.id, e));
                frames.push(None);
            }
        }
    }
    let mut pending: VecDeque<Pending> = (0..notes.len())
        .filter(|&i| frames[i].is_some())
        .map(|index| Pending {
            index,
            careful: false,
        })
        .collect();

    let connector = match Connector::new(
        &job.ca_pem,
        job.identity.as_ref(),
        &job.target.host,
        job.target.port,
        &job.target.apple_host,
        false,
    ) {
        Ok(c) => c,
        Err(e) => {
            return finish(notes, outcomes, &format!("TLS setup: {e}"));
        }
    };
    // Times each notification was pinned as the cause of a silent close (an attempt the server
    // provably saw); a pipelined write the server may have discarded unread costs nothing.
    let mut pins = vec![0u8; notes.len()];
    let mut connect_failures = 0u8;
    let mut stalls = 0u8;
    let mut window = usize::MAX;
    let mut first = true;
    while !pending.is_empty() {
        // One stall is answered by a careful write, which settles or pins; more mean trouble.
        if !first && (stalls > 1 || connect_failures > 0) {
            tokio::time::sleep(RECONNECT_BACKOFF).await;
        }
        first = false;
        if stalls >= MAX_STALLS {
            return finish(
                notes,
                outcomes,
                "connection closed before anything was confirmed",
            );
        }
        let stream = match connector.connect().await {
            Ok(s) => {
                connect_failures = 0;
                s
            }
            Err(e) => {
                connect_failures = connect_failures.saturating_add(1);
                tracing::warn!("legacy connect failed: {e}");
                if connect_failures >= MAX_CONNECT_FAILURES {
                    return finish(notes, outcomes, &format!("connect: {e}"));
                }
                continue;
            }
        };
        let batch: Vec<Pending> = pending.drain(..).collect();
        let (written, end) = run_connection(stream, &batch, &frames, notes, job, window).await;
        let mut settlement =
            super::mutant::settlement(&written, end, settle::settle(&written, end));
        // A silent close pinned on a careful write: charge it an attempt, and retry it until it
        // has been pinned MAX_ATTEMPTS times.
        let mut retry_pinned = None;
        if let Some((i, f)) = &settlement.failed {
            if f.status.is_none() {
                pins[*i] = pins[*i].saturating_add(1);
                if pins[*i] < MAX_ATTEMPTS {
                    retry_pinned = Some(*i);
                }
            }
        }
        if retry_pinned.is_some() {
            settlement.failed = None;
        }
        let progress =
            !settlement.sent.is_empty() || settlement.failed.is_some() || retry_pinned.is_some();
        stalls = if progress {
            0
        } else {
            stalls.saturating_add(1)
        };
        // A close that named nobody (or a pinned random one): from now on keep what the next
        // one can leave unproven small.
        let unexplained = settlement.resend_careful
            || (matches!(end, End::Closed { .. }) && !settlement.resend.is_empty());
        if unexplained || retry_pinned.is_some() {
            window = window.min(PIPELINE_WINDOW);
        }
        apply(&settlement, notes, &mut outcomes);
        let unwritten = batch.get(written.len()..).unwrap_or(&[]);
        // The pinned one goes first and alone; after a close that proved nothing, the first of the
        // rest goes alone; everything else is pipelined.
        pending.extend(retry_pinned.map(|index| Pending {
            index,
            careful: true,
        }));
        pending.extend(
            settlement
                .resend
                .iter()
                .enumerate()
                .map(|(k, &index)| Pending {
                    index,
                    careful: k == 0 && settlement.resend_careful && retry_pinned.is_none(),
                }),
        );
        pending.extend(unwritten.iter().map(|p| Pending {
            index: p.index,
            careful: false,
        }));
    }
    finish(notes, outcomes, "not settled")
}

/// Records the settled outcomes.
fn apply(
    s: &Settlement,
    notes: &[crate::plan::PlanNotification],
    outcomes: &mut [Option<Outcome>],
) {
    for &i in &s.sent {
        outcomes[i] = Some(sent_outcome(notes[i].id, None));
    }
    if let Some((i, f)) = &s.failed {
        outcomes[*i] = Some(Outcome {
            id: notes[*i].id,
            result: ResultKind::Failed,
            reason: Some(f.reason.clone()),
            status: f.status.map(u16::from),
            timestamp: None,
            apns_id: None,
            channel: None,
        });
    }
}

/// Every outcome, with `error` for the notifications nothing was decided about.
fn finish(
    notes: &[crate::plan::PlanNotification],
    outcomes: Vec<Option<Outcome>>,
    why: &str,
) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .zip(notes)
        .map(|(o, n)| o.unwrap_or_else(|| error_outcome(n.id, why)))
        .collect()
}

/// A command-2 frame with items token, payload, identifier = plan id, expiry, priority
/// (PROTOCOL.md 1.4).
fn encode(
    id: u32,
    token_hex: &str,
    payload: &serde_json::Value,
    expiry: u32,
    priority: u8,
) -> Result<Bytes, String> {
    let token = hex::decode(token_hex).map_err(|e| format!("device token is not hex: {e}"))?;
    let payload = serde_json::to_vec(payload).map_err(|e| format!("payload: {e}"))?;
    let n = LegacyNotification::framed(id.to_be_bytes(), expiry, priority, token, payload);
    let mut buf = BytesMut::new();
    frame::encode_framed(&n, &mut buf).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// Reads until a full error-response or the end of the connection.
fn spawn_reader(mut rd: ReadHalf<TlsStream<TcpStream>>) -> JoinHandle<ReadEnd> {
    tokio::spawn(async move {
        let mut buf = [0u8; ERROR_RESPONSE_LEN];
        let mut n = 0usize;
        loop {
            let Some(rest) = buf.get_mut(n..) else {
                return ReadEnd::Closed;
            };
            match rd.read(rest).await {
                Ok(0) | Err(_) => return ReadEnd::Closed,
                Ok(k) => {
                    n = n.saturating_add(k);
                    if n >= ERROR_RESPONSE_LEN {
                        return match ErrorResponse::parse(&buf) {
                            Some(e) => ReadEnd::Error(e),
                            None => ReadEnd::Closed,
                        };
                    }
                }
            }
        }
    })
}

fn to_end(ev: Result<ReadEnd, tokio::task::JoinError>, right_after_last: bool) -> End {
    match ev {
        Ok(ReadEnd::Error(response)) => End::ErrorResponse {
            response,
            right_after_last,
        },
        _ => End::Closed { right_after_last },
    }
}

async fn write_frame(wr: &mut WriteHalf<TlsStream<TcpStream>>, bytes: &[u8]) -> io::Result<()> {
    let write = async {
        wr.write_all(bytes).await?;
        wr.flush().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
}

/// Writes `batch` on one connection (pipelined, with at most `window` writes not yet proven by
/// the quiet period, or alone-and-wait for careful ones) and says how the connection ended and
/// what was written on it.
async fn run_connection(
    stream: TlsStream<TcpStream>,
    batch: &[Pending],
    frames: &[Option<Bytes>],
    notes: &[crate::plan::PlanNotification],
    job: &Job,
    window: usize,
) -> (Vec<Written>, End) {
    let (rd, mut wr) = tokio::io::split(stream);
    let mut reader = spawn_reader(rd);
    let mut written: Vec<Written> = Vec::with_capacity(batch.len());
    // When each pipelined write finished; a write older than the quiet period at the end of
    // the connection was read and accepted (PROTOCOL.md 1.7: only silence proves success).
    let mut times: Vec<Instant> = Vec::with_capacity(batch.len());
    let quiet = Duration::from_millis(job.quiet_ms);
    // Writes (a prefix of `times`) already older than `quiet` while the connection was open.
    let mut proven = 0usize;
    // When a failed write showed the connection gone (before the wait for a last packet).
    let mut closed_at = None;
    let pace = Duration::from_millis(job.plan.pace_ms);
    let end = 'conn: {
        for (k, p) in batch.iter().enumerate() {
            let Some(Some(bytes)) = frames.get(p.index) else {
                continue;
            };
            if k > 0 && !pace.is_zero() {
                tokio::select! {
                    ev = &mut reader => break 'conn to_end(ev, false),
                    _ = tokio::time::sleep(pace) => {}
                }
            }
            // Keep at most `window` writes unproven: wait for the oldest to age past `quiet`.
            while written.len().saturating_sub(proven) >= window {
                let Some(&oldest) = times.get(proven) else {
                    break;
                };
                tokio::select! {
                    biased;
                    ev = &mut reader => break 'conn to_end(ev, false),
                    _ = tokio::time::sleep_until((oldest + quiet).into()) => proven += 1,
                }
            }
            written.push(Written {
                index: p.index,
                identifier: notes[p.index].id.to_be_bytes(),
                careful: p.careful,
                survived: false,
            });
            times.push(Instant::now());
            tokio::select! {
                biased;
                ev = &mut reader => break 'conn to_end(ev, p.careful),
                r = write_frame(&mut wr, bytes) => {
                    if r.is_err() {
                        closed_at = Some(Instant::now());
                        // The server may have answered before closing: give the packet a moment.
                        let ev = tokio::time::timeout(CAREFUL_WINDOW, &mut reader).await;
                        break 'conn match ev {
                            Ok(ev) => to_end(ev, p.careful),
                            Err(_) => End::Closed { right_after_last: p.careful },
                        };
                    }
                }
            }
            if let Some(t) = times.last_mut() {
                *t = Instant::now();
            }
            if p.careful {
                // PROTOCOL.md 1.7: careful mode, one notification then a wait for its verdict.
                match tokio::time::timeout(CAREFUL_WINDOW.min(quiet), &mut reader).await {
                    Ok(ev) => break 'conn to_end(ev, true),
                    Err(_) => {
                        if let Some(last) = written.last_mut() {
                            last.survived = true;
                        }
                    }
                }
            }
        }
        // PROTOCOL.md 1.7: an accepted notification gets no reply, so only silence proves success.
        match tokio::time::timeout(quiet, &mut reader).await {
            Ok(ev) => to_end(ev, false),
            Err(_) => End::Quiet,
        }
    };
    let ended = closed_at.unwrap_or_else(Instant::now);
    reader.abort();
    if end == End::Quiet {
        let _ = tokio::time::timeout(CAREFUL_WINDOW, wr.shutdown()).await;
    } else if window != usize::MAX {
        // Only a bounded window makes age a proof: an unbounded burst can leave the server far
        // behind the writes, so a write's age says nothing about whether it was read.
        mark_aged(&mut written, &times, ended, quiet);
    }
    (written, end)
}

/// Marks as survived every write that finished at least `quiet` before the connection ended: the
/// server read it and said nothing, which is how acceptance shows (PROTOCOL.md 1.7).
fn mark_aged(written: &mut [Written], times: &[Instant], ended: Instant, quiet: Duration) {
    for (w, &t) in written.iter_mut().zip(times) {
        if ended.saturating_duration_since(t) >= quiet {
            w.survived = true;
        }
    }
}

/// The feedback host that goes with a gateway host name (PROTOCOL.md 1.1).
fn feedback_host(apple_host: &str) -> String {
    match apple_host.strip_prefix("gateway.") {
        Some(rest) => format!("feedback.{rest}"),
        None => apple_host.to_string(),
    }
}

/// Reads the feedback service until it closes (PROTOCOL.md 1.8).
pub async fn read_feedback(job: &Job) -> io::Result<Vec<FeedbackTuple>> {
    let host = match job.target.protocol {
        crate::model::Protocol::Http2 => feedback_host(
            job.target
                .environment
                .apple_host(crate::model::Protocol::Legacy),
        ),
        _ => feedback_host(&job.target.apple_host),
    };
    let connector = Connector::new(
        &job.ca_pem,
        job.identity.as_ref(),
        &job.target.host,
        job.target.feedback_port,
        &host,
        false,
    )?;
    let mut stream = connector.connect().await?;
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                // A close without close_notify still ends the list.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                    if buf.len() > MAX_FEEDBACK_BYTES {
                        break;
                    }
                }
            }
        }
    };
    if tokio::time::timeout(FEEDBACK_TIMEOUT, read_all)
        .await
        .is_err()
    {
        tracing::warn!("feedback service did not close in time; using what was read");
    }
    let mut tuples = Vec::new();
    while let Ok(Some(t)) = frame::decode_feedback(&mut buf) {
        tuples.push(FeedbackTuple {
            token: hex::encode(&t.token),
            timestamp: u64::from(t.timestamp),
        });
    }
    Ok(tuples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_plan_id_as_identifier() {
        let b = encode(7, &"ab".repeat(32), &serde_json::json!({"aps":{}}), 5, 5).unwrap();
        let n = frame::decode(&mut BytesMut::from(&b[..]), &frame::Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(n.identifier, 7u32.to_be_bytes());
        assert_eq!((n.expiry, n.priority), (5, 5));
        assert_eq!(n.token.len(), 32);
        assert!(encode(1, "zz", &serde_json::json!({}), 0, 10).is_err());
    }

    #[test]
    fn feedback_host_follows_the_gateway() {
        assert_eq!(
            feedback_host("gateway.sandbox.push.apple.com"),
            "feedback.sandbox.push.apple.com"
        );
        assert_eq!(feedback_host("localhost"), "localhost");
    }
}
