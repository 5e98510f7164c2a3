//! The per-connection loop of the binary gateway: reads into the sans-IO [`Session`], runs the
//! effects it returns (journal, write, close, stall, throttle, wake-up) and keeps the timers. No
//! protocol decision is made here.

use crate::journal::{ConnectionEnd, EventKind, NewEvent};
use crate::legacy::close::{self, CloseWays};
use crate::legacy::ready::ReadReady;
use crate::legacy::session::{CloseHow, Effect, Session, SessionConfig, IDLE_BUFFER};
use crate::model::{Environment, Protocol};
use crate::runtime::{Core, Shutdown};
use bytes::BytesMut;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info_span, Instrument};

/// Accepts TLS on one TCP connection of the gateway and serves it until it ends.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    core: Arc<Core>,
    listener_env: Environment,
    shutdown: Shutdown,
) {
    let id = core.next_connection_id();
    let span = info_span!("legacy", conn = id, %peer);
    async move {
        let Some((mut tls, hs)) = crate::runtime::handshake(
            &core,
            &core.legacy_tls,
            stream,
            id,
            Protocol::Legacy,
            listener_env,
            peer,
        )
        .await
        else {
            return;
        };
        let env = hs.environment;
        let topic: Option<Arc<str>> = hs
            .client
            .as_ref()
            .and_then(|c| c.topics.first().map(|t| Arc::from(t.as_str())));
        core.journal.record(
            NewEvent::new(EventKind::ConnectionOpened, id, Protocol::Legacy, env).detail(json!({
                "peer": peer.to_string(),
                "sni": hs.sni,
                "tls_version": hs.tls_version,
                "topic": topic,
                "certificate_environments": hs.client.as_ref().map(|c| c.environments.clone()),
            })),
        );
        let cfg = SessionConfig::from_settings(&core.settings);
        let mut session = Session::new(&core.engine, core.clock.clone(), cfg, id, env, topic);
        let (how, ending) = drive(&core, &mut session, &mut tls, shutdown).await;
        core.engine.connection_closed(id);
        if how == CloseHow::Reset {
            tls.arm_reset();
        }
        drop(tls);
        debug!(ending = %ending.as_str(), "closed");
        core.journal.record(
            NewEvent::new(EventKind::ConnectionClosed, id, Protocol::Legacy, env)
                .detail(json!({ "cause": ending.as_str(), "notifications": session.decided() })),
        );
    }
    .instrument(span)
    .await
}

/// What the effects asked of the transport, between two waits.
#[derive(Debug, Default)]
struct Transport {
    /// A `throttle` rule: read at most this many bytes per second.
    throttle: Option<u64>,
    /// Not reading (a stall, or the wait after the provider closed during the error delay).
    stalled: bool,
    /// When to call [`Session::handle_timeout`].
    wake: Option<Instant>,
    /// The shutdown signal was handed to the session (it is not waited on again).
    shut: bool,
}

/// How long a frame, once its first byte arrived, may take to arrive whole (issue 12).
const PARTIAL_FRAME_BOUND: Duration = Duration::from_secs(30);

/// Runs one session to its end: the only `select!` of a legacy connection (shutdown, the
/// session's timer, reads with the idle timeout). Returns how to close and why.
async fn drive<IO: AsyncRead + CloseWays + ReadReady>(
    core: &Core,
    session: &mut Session<'_>,
    io: &mut IO,
    mut shutdown: Shutdown,
) -> (CloseHow, ConnectionEnd) {
    let idle = match core.settings.idle_timeout_secs {
        0 => Duration::from_secs(u64::MAX / 4),
        s => Duration::from_secs(s),
    };
    // Grown by the first busy read and kept (an effect is ~230 bytes: a preallocated list cost
    // every idle connection ~57 KB, issue 12).
    let mut out = Vec::new();
    let mut t = Transport::default();
    session.handle_connect(now(), &mut out);
    // Idle = no complete frame within `idle` (issue 12): a byte a second keeps nothing open, and
    // bytes of a frame, once they start, must make a whole frame within PARTIAL_FRAME_BOUND.
    let mut decided = session.decided();
    let mut deadline = Instant::now() + idle;
    let mut partial_since: Option<Instant> = None;
    loop {
        if let Some(end) = run_effects(core, io, &mut out, &mut t).await {
            return end;
        }
        if session.decided() != decided {
            decided = session.decided();
            deadline = Instant::now() + idle;
            partial_since = None;
        }
        let due = partial_since.map_or(deadline, |p| deadline.min(p + PARTIAL_FRAME_BOUND));
        let wake = t.wake;
        let read = !t.stalled && session.wants_read();
        tokio::select! {
            biased;
            _ = shutdown.wait(), if !t.shut => {
                t.shut = true;
                session.handle_shutdown(now(), &mut out);
            }
            _ = sleep_until(wake), if wake.is_some() => {
                t.wake = None;
                t.stalled = false;
                session.handle_timeout(now(), &mut out);
            }
            r = tokio::time::timeout_at(due, read_some(io, session.buffer(), t.throttle)), if read => {
                match r {
                    Err(_) => session.handle_idle(now(), &mut out),
                    Ok(Err(e)) => session.handle_read_error(crate::refusal::plain_io(&e), now(), &mut out),
                    Ok(Ok(0)) => session.handle_eof(now(), &mut out),
                    Ok(Ok(_)) => {
                        partial_since.get_or_insert_with(Instant::now);
                        session.handle_read(now(), &mut out);
                    }
                }
            }
            // Stalled for good after shutdown was handled: cannot happen (shutdown closes the
            // session), but a loop with nothing to wait for must end rather than spin.
            else => return (CloseHow::Fin, ConnectionEnd::Shutdown),
        }
    }
}

/// The session's clock.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `at` (never, for `None`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the effects in order: consecutive journal events under one journal lock; returns how
/// and why to close once a close is asked for (after closing the way it says: [`close::finish`]).
///
/// A run of journal events is taken out of `out` in place and moved straight into the journal:
/// an event is ~250 bytes, and a chain of iterator adapters in between (drain, peekable,
/// from_fn, chain) copied each one several times over, which cost the hot path ~10%.
async fn run_effects<IO: CloseWays>(
    core: &Core,
    io: &mut IO,
    out: &mut Vec<Effect>,
    t: &mut Transport,
) -> Option<(CloseHow, ConnectionEnd)> {
    let mut failed: Option<std::io::Error> = None;
    let mut wrote = false;
    let mut last: Option<bytes::Bytes> = None;
    let mut effects = std::mem::take(out);
    let mut i = 0;
    let mut end = None;
    while i < effects.len() {
        // Everything decided from one read goes in under one lock, before any answer.
        let journal = effects[i..]
            .iter()
            .take_while(|e| matches!(e, Effect::Journal(_)))
            .count();
        if journal > 0 {
            core.journal
                .record_batch(effects[i..i + journal].iter_mut().filter_map(|e| {
                    match std::mem::replace(e, Effect::Throttle(0)) {
                        Effect::Journal(e) => Some(e),
                        _ => None,
                    }
                }));
            i += journal;
            continue;
        }
        let burst_next = matches!(
            effects.get(i + 1),
            Some(Effect::Close {
                how: CloseHow::Burst,
                ..
            })
        );
        let effect = std::mem::replace(&mut effects[i], Effect::Throttle(0));
        i += 1;
        match effect {
            Effect::Journal(e) => {
                core.journal.record(e);
            }
            // The last data before a burst close leaves in the same write as close_notify.
            Effect::Write(bytes) if burst_next => last = Some(bytes),
            Effect::Write(bytes) => {
                wrote = true;
                if failed.is_none() {
                    let r = async {
                        io.write_all(&bytes).await?;
                        io.flush().await
                    }
                    .await;
                    failed = r.err();
                }
            }
            Effect::Stall(until) => {
                t.stalled = true;
                t.wake = until.map(Instant::from_std);
            }
            Effect::WakeAt(at) => t.wake = Some(Instant::from_std(at)),
            Effect::Throttle(bps) => t.throttle = Some(bps),
            Effect::Close { how, end: why } => {
                // A write error before a close does not change why the connection ended.
                if failed.is_none() {
                    let gap = Duration::from_millis(core.settings.legacy_close_gap_ms);
                    let _ = close::finish(io, last.as_deref(), wrote, how, gap).await;
                }
                end = Some((how, why));
                break;
            }
        }
    }
    // Keep the buffer's capacity for the next read's effects.
    effects.clear();
    *out = effects;
    if end.is_some() {
        return end;
    }
    failed.map(|e| {
        (
            CloseHow::Fin,
            ConnectionEnd::Io(crate::refusal::plain_io(&e)),
        )
    })
}

/// One read into `buf`, paced when a `throttle` rule is in force. A `buf` with no capacity is an
/// idle connection's (issue 12): it is reserved only once the connection is readable, then the
/// read is awaited like any other. Readiness can be early (part of a TLS record, or a TLS
/// library's own state), so the read must be awaited, never retried in place: retrying spun a
/// worker thread on an OpenSSL connection.
async fn read_some<IO: AsyncRead + ReadReady + Unpin>(
    io: &mut IO,
    buf: &mut BytesMut,
    throttle: Option<u64>,
) -> std::io::Result<usize> {
    let Some(bps) = throttle else {
        if buf.capacity() == 0 {
            io.read_ready().await?;
            buf.reserve(IDLE_BUFFER);
        }
        return io.read_buf(buf).await;
    };
    let mut chunk = vec![
        0u8;
        usize::try_from(bps / 10)
            .unwrap_or(16 * 1024)
            .clamp(1, 16 * 1024)
    ];
    let n = io.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
    Ok(n)
}
