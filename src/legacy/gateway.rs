//! The per-connection loop of the binary gateway: moves bytes between TLS and the sans-IO codec
//! and carries out the engine's verdicts. No protocol decision is made here.

use crate::engine::{ConnState, Refusal, Verdict};
use crate::journal::{EventKind, NewEvent};
use crate::legacy::frame::{self, Command, ErrorResponse, FrameError, FrameRef, LegacyNotification};
use crate::legacy::status::Status;
use crate::model::{Environment, Identifier, Notification, Protocol};
use crate::runtime::{Core, Shutdown};
use crate::settings::UnknownCommand;
use bytes::{Buf, Bytes, BytesMut};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info_span, Instrument};

/// Why a gateway connection ended; journaled in `connection-closed`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// The provider closed cleanly between frames.
    PeerClosed,
    /// The provider vanished with a partial frame buffered.
    PeerVanishedMidFrame(usize),
    /// We sent an error-response (or closed silently) after a refusal.
    Refused,
    /// The engine chose to cut the connection with no answer.
    Dropped,
    /// Nothing arrived for the idle timeout.
    IdleTimeout,
    /// The emulator is shutting down (status 10 sent).
    Shutdown,
    /// A read or write failed.
    Io(String),
}

impl Ending {
    fn as_str(&self) -> String {
        match self {
            Ending::PeerClosed => "peer-closed".into(),
            Ending::PeerVanishedMidFrame(n) => {
                format!("peer-vanished-mid-frame ({n} bytes buffered)")
            }
            Ending::Refused => "refused".into(),
            Ending::Dropped => "dropped".into(),
            Ending::IdleTimeout => "idle-timeout".into(),
            Ending::Shutdown => "shutdown".into(),
            Ending::Io(e) => format!("io: {e}"),
        }
    }
}

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
        let (tls, hs) = match crate::tls::accept(stream, &core.legacy_tls, listener_env).await {
            Ok(ok) => ok,
            Err(e) => {
                debug!(error = %e, "handshake failed");
                core.journal.record(
                    NewEvent::new(
                        EventKind::ConnectionRefused,
                        id,
                        Protocol::Legacy,
                        listener_env,
                    )
                    .detail(json!({ "peer": peer.to_string(), "error": e.to_string() })),
                );
                return;
            }
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
                "topic": topic,
                "certificate_environments": hs.client.as_ref().map(|c| c.environments.clone()),
            })),
        );
        let mut conn = GatewayConn {
            core: &core,
            state: ConnState {
                id,
                protocol: Protocol::Legacy,
                environment: env,
                decided: 0,
            },
            topic,
            last_accepted: [0; 4],
            io: tls,
            buf: BytesMut::with_capacity(64 * 1024),
            pending: Vec::new(),
            run: Vec::new(),
        };
        let ending = conn.run(shutdown).await;
        debug!(ending = %ending.as_str(), "closed");
        core.journal.record(
            NewEvent::new(EventKind::ConnectionClosed, id, Protocol::Legacy, env)
                .detail(json!({ "cause": ending.as_str(), "notifications": conn.state.decided })),
        );
    }
    .instrument(span)
    .await
}

struct GatewayConn<'a, IO> {
    core: &'a Core,
    state: ConnState,
    topic: Option<Arc<str>>,
    last_accepted: [u8; 4],
    io: IO,
    buf: BytesMut,
    /// Accepted notifications not yet journaled (see [`GatewayConn::flush`]); reused across reads.
    pending: Vec<Notification>,
    /// Scratch for [`GatewayConn::accept_run`]: where the frames of one run lie in `buf`.
    run: Vec<Slot>,
}

/// One complete, valid frame of a run, as offsets into the read buffer (small and `Copy`, so a
/// run costs no reference counts until its bytes are copied out).
#[derive(Debug, Clone, Copy)]
struct Slot {
    command: Command,
    identifier: [u8; 4],
    expiry: u32,
    priority: u8,
    /// Frame start and length in `buf`.
    start: u32,
    len: u32,
    /// Token and payload as (start, len) in `buf`.
    token: (u32, u32),
    payload: (u32, u32),
}

/// Why [`GatewayConn::accept_run`] stopped before the end of the buffer's complete frames.
enum RunEnd {
    /// The next buffered frame is incomplete, malformed or invalid (or there is none): the
    /// frame-by-frame path takes it from here.
    SlowPath,
    /// The engine did not accept this (complete, valid) frame; `buf` already starts after it.
    Verdict(Verdict, Slot, Notification),
}

/// What to do after decoding what is buffered.
enum Step {
    NeedMore,
    End(Ending),
}

impl<IO: AsyncRead + AsyncWrite + Unpin> GatewayConn<'_, IO> {
    async fn run(&mut self, mut shutdown: Shutdown) -> Ending {
        let idle = match self.core.settings.idle_timeout_secs {
            0 => Duration::from_secs(u64::MAX / 4),
            s => Duration::from_secs(s),
        };
        let ending = loop {
            if let Step::End(ending) = self.process_buffer().await {
                break ending;
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            tokio::select! {
                biased;
                _ = shutdown.wait() => {
                    // Issue 2 / PROTOCOL.md 1.6 status 10: identifier = last notification accepted.
                    let resp = ErrorResponse::new(Status::Shutdown, self.last_accepted);
                    let _ = self.write_then_close(&resp.encode()).await;
                    return Ending::Shutdown;
                }
                read = tokio::time::timeout(idle, self.io.read_buf(&mut self.buf)) => match read {
                    Err(_) => break Ending::IdleTimeout,
                    Ok(Err(e)) => break Ending::Io(e.to_string()),
                    Ok(Ok(0)) if self.buf.is_empty() => break Ending::PeerClosed,
                    Ok(Ok(0)) => break Ending::PeerVanishedMidFrame(self.buf.len()),
                    Ok(Ok(_)) => {}
                },
            }
        };
        if matches!(ending, Ending::IdleTimeout | Ending::PeerClosed) {
            let _ = self.io.shutdown().await;
        }
        ending
    }

    /// Decodes and decides every complete frame buffered: runs of valid frames in bulk
    /// ([`Self::accept_run`]), anything else one frame at a time.
    async fn process_buffer(&mut self) -> Step {
        let limits = self.core.legacy_limits;
        loop {
            if let RunEnd::Verdict(verdict, slot, notification) = self.accept_run(&limits) {
                return Step::End(self.carry_out(verdict, slot, notification).await);
            }
            let (slot, notification, valid) = match frame::peek(&self.buf, &limits) {
                Ok(Some(f)) => (
                    slot_of(&f, 0),
                    owned_notification(&f, self.topic.as_ref()),
                    f.validate(&limits),
                ),
                Ok(None) => {
                    self.flush();
                    return Step::NeedMore;
                }
                Err(e) => return Step::End(self.protocol_error(e).await),
            };
            self.buf.advance(slot.len as usize);
            if let Err(status) = valid {
                return Step::End(self.refuse(slot, notification, status).await);
            }
            let verdict = self.core.engine.decide(&self.state, &notification);
            self.state.decided += 1;
            if verdict == Verdict::Accept {
                self.last_accepted = slot.identifier;
                self.pending.push(notification);
            } else {
                return Step::End(self.carry_out(verdict, slot, notification).await);
            }
        }
    }

    /// The hot path. Finds the leading run of complete, valid frames in `buf` without copying,
    /// copies all their tokens and payloads into one exact-size buffer (so the journal never pins
    /// the read buffer), then decides them in order, queueing the accepted in `pending`, and takes
    /// them off `buf`. Stops at the first frame the engine does not accept, or at the end of the
    /// run. If the engine stops it early, the bytes of the frames after that one stay in the
    /// copy unused: at most one read's worth, once per connection, since the connection ends.
    fn accept_run(&mut self, limits: &frame::Limits) -> RunEnd {
        self.run.clear();
        let mut at = 0usize;
        let mut copy_len = 0usize;
        // Offsets are u32: the read buffer is bounded far below 4 GiB (legacy_read_buffer).
        while let Ok(Some(f)) = frame::peek(&self.buf[at..], limits) {
            if f.validate(limits).is_err() || at + f.len > u32::MAX as usize {
                break;
            }
            let slot = slot_of(&f, at);
            copy_len += f.token_bytes().len() + f.payload_bytes().len();
            at += f.len;
            self.run.push(slot);
        }
        if self.run.is_empty() {
            return RunEnd::SlowPath;
        }
        let mut arena = BytesMut::with_capacity(copy_len);
        for s in &self.run {
            arena.extend_from_slice(&self.buf[range(s.token)]);
            arena.extend_from_slice(&self.buf[range(s.payload)]);
        }
        let arena = arena.freeze();
        let mut offset = 0;
        let mut end = RunEnd::SlowPath;
        let mut consumed = at;
        self.pending.reserve(self.run.len());
        for s in &self.run {
            let token = arena.slice(offset..offset + s.token.1 as usize);
            offset += s.token.1 as usize;
            let payload = arena.slice(offset..offset + s.payload.1 as usize);
            offset += s.payload.1 as usize;
            let notification = notification_of(s, token, payload, self.topic.as_ref());
            let verdict = self.core.engine.decide(&self.state, &notification);
            self.state.decided += 1;
            if verdict != Verdict::Accept {
                consumed = (s.start + s.len) as usize;
                end = RunEnd::Verdict(verdict, *s, notification);
                break;
            }
            self.last_accepted = s.identifier;
            self.pending.push(notification);
        }
        self.buf.advance(consumed);
        end
    }

    /// Carries out a verdict other than a plain accept for a frame already taken off `buf`.
    async fn carry_out(&mut self, verdict: Verdict, slot: Slot, notification: Notification) -> Ending {
        match verdict {
            // PROTOCOL.md 1.6 status 8: unknown (strict) or other-environment token.
            Verdict::Reject(Refusal::InvalidToken) => {
                self.refuse(slot, notification, Status::InvalidToken).await
            }
            // Legacy has no topic or unregistered answer; the engine does not send these here.
            Verdict::Accept | Verdict::Reject(Refusal::TokenNotForTopic | Refusal::Unregistered(_)) => {
                self.last_accepted = slot.identifier;
                self.pending.push(notification);
                // Nothing ends the connection here: go on with what is buffered.
                match Box::pin(self.process_buffer()).await {
                    Step::End(ending) => ending,
                    Step::NeedMore => Ending::Continue,
                }
            }
            Verdict::Drop => {
                self.record(self.event(EventKind::Dropped).notification(notification));
                self.discard_rest().await;
                Ending::Dropped
            }
        }
    }

    /// Refuses one notification: error-response (never for command 0: PROTOCOL.md 1.7), discard what followed, close.
    async fn refuse(
        &mut self,
        decoded: &LegacyNotification,
        notification: Notification,
        status: Status,
    ) -> Ending {
        let silent = !decoded.command.reports_errors();
        self.record(
            self.event(EventKind::Rejected)
                .notification(notification)
                .status(status.code(), status.name())
                .detail(json!({ "error_response_sent": !silent })),
        );
        if silent {
            self.discard_rest().await;
            let _ = self.io.shutdown().await;
        } else {
            let resp = ErrorResponse::new(status, decoded.identifier);
            self.delay_then_discard().await;
            let _ = self.write_then_close(&resp.encode()).await;
        }
        Ending::Refused
    }

    /// Answers a frame the codec could not parse (PROTOCOL.md Part 3: status 128, or a silent close).
    async fn protocol_error(&mut self, e: FrameError) -> Ending {
        let silent = match &e {
            FrameError::UnknownCommand(_) => {
                self.core.settings.legacy_unknown_command == UnknownCommand::SilentClose
            }
            _ => false,
        };
        let response = if silent { None } else { e.response() };
        self.record(
            self.event(EventKind::Rejected)
                .status(Status::ProtocolError.code(), Status::ProtocolError.name())
                .detail(
                    json!({ "error": e.to_string(), "error_response_sent": response.is_some() }),
                ),
        );
        match response {
            Some(resp) => {
                self.delay_then_discard().await;
                let _ = self.write_then_close(&resp.encode()).await;
            }
            None => {
                let _ = self.io.shutdown().await;
            }
        }
        Ending::Refused
    }

    /// Waits the configured error delay (still reading, as Apple's late error let more arrive), then
    /// journals every complete frame received after the refused one as `discarded`.
    async fn delay_then_discard(&mut self) {
        let delay = Duration::from_millis(self.core.settings.legacy_error_delay_ms);
        if !delay.is_zero() {
            let deadline = tokio::time::Instant::now() + delay;
            while self.buf.len() < self.core.settings.legacy_read_buffer {
                self.buf.reserve(16 * 1024);
                match tokio::time::timeout_at(deadline, self.io.read_buf(&mut self.buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    Ok(Ok(_)) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    _ => break,
                }
            }
            tokio::time::sleep_until(deadline).await;
        }
        self.discard_rest().await;
    }

    /// Journals the frames already buffered behind a refusal as `discarded` (issue 2: never as accepted).
    async fn discard_rest(&mut self) {
        let limits = self.core.legacy_limits;
        while let Ok(Some(n)) = frame::decode(&mut self.buf, &limits) {
            let notification = to_notification(&n, self.topic.as_ref());
            self.record(self.event(EventKind::Discarded).notification(notification));
        }
        self.buf.clear();
    }

    /// Writes the 6 bytes in one write, flushes, then sends close_notify (PROTOCOL.md 1.7).
    async fn write_then_close(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        self.io.shutdown().await
    }

    /// Queues an `accepted` event; queued events are journaled, in order, before the next read and
    /// before any answer or other event, so nothing the provider can observe precedes them.
    fn accepted(&mut self, notification: Notification) {
        let e = self.event(EventKind::Accepted).notification(notification);
        self.pending.push(e);
    }

    /// Journals the queued events.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            compact(&mut self.pending);
            self.core.journal.record_batch(self.pending.drain(..));
        }
    }

    /// Journals one event after everything queued before it.
    fn record(&mut self, e: NewEvent) {
        self.pending.push(e);
        self.flush();
    }

    fn event(&self, kind: EventKind) -> NewEvent {
        NewEvent::new(
            kind,
            self.state.id,
            Protocol::Legacy,
            self.state.environment,
        )
    }
}

/// Lifts a decoded legacy frame into the protocol-neutral notification the engine and journal use.
/// Token and payload still share the read buffer here; [`compact`] copies them out before the
/// journal keeps them.
pub fn to_notification(n: &LegacyNotification, topic: Option<&Arc<str>>) -> Notification {
    let simple = n.command == Command::Simple;
    Notification {
        token: crate::model::DeviceToken::from_bytes(n.token.clone()),
        payload: n.payload.clone(),
        identifier: (!simple).then_some(Identifier(n.identifier)),
        expiry: (!simple).then_some(n.expiry),
        priority: n.priority,
        topic: topic.cloned(),
        push_type: None,
        collapse_id: None,
        apns_id: None,
        command: Some(n.command.byte()),
    }
}

/// Copies the tokens and payloads of a batch of events into one exact-size buffer and re-points
/// them at it: one allocation per read instead of two per notification, and the journal never
/// pins a read buffer (whose capacity can be far larger than the frames it held).
fn compact(events: &mut [NewEvent]) {
    let total: usize = events
        .iter()
        .filter_map(|e| e.notification.as_ref())
        .map(|n| n.token.len() + n.payload.len())
        .sum();
    let mut arena = BytesMut::with_capacity(total);
    for n in events.iter().filter_map(|e| e.notification.as_ref()) {
        arena.extend_from_slice(n.token.as_bytes());
        arena.extend_from_slice(&n.payload);
    }
    let arena = arena.freeze();
    let mut at = 0;
    for n in events.iter_mut().filter_map(|e| e.notification.as_mut()) {
        let (t, p) = (n.token.len(), n.payload.len());
        n.token = crate::model::DeviceToken::from_bytes(arena.slice(at..at + t));
        n.payload = arena.slice(at + t..at + t + p);
        at += t + p;
    }
}
