//! The per-connection loop of the binary gateway: moves bytes between TLS and the sans-IO codec
//! and carries out the engine's verdicts. No protocol decision is made here.

use crate::engine::devices::Origin;
use crate::engine::rules::{Action, Fired};
use crate::engine::{ConnState, Refusal, Verdict};
use crate::journal::{EventKind, NewEvent};
use crate::legacy::frame::{
    self, Command, ErrorResponse, FrameError, FrameRef, LegacyNotification,
};
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
        let Some((tls, hs)) = crate::runtime::handshake(
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
            buf: BytesMut::with_capacity(IDLE_BUFFER),
            pending: Vec::new(),
            run: Vec::new(),
            throttle: None,
            reset: false,
            stop: shutdown.clone(),
        };
        let ending = match conn.on_connect().await {
            Some(ending) => ending,
            None => conn.run(shutdown).await,
        };
        core.engine.connection_closed(id);
        if conn.reset {
            // A `drop` rule with `reset = true`: RST instead of FIN (SO_LINGER 0, then close).
            // Deprecated because a non-zero linger blocks the thread on drop; zero does not.
            #[allow(deprecated)]
            let _ = conn.io.get_ref().0.set_linger(Some(Duration::ZERO));
        }
        drop(conn.io);
        debug!(ending = %ending.as_str(), "closed");
        core.journal.record(
            NewEvent::new(EventKind::ConnectionClosed, id, Protocol::Legacy, env)
                .detail(json!({ "cause": ending.as_str(), "notifications": conn.state.decided })),
        );
    }
    .instrument(span)
    .await
}

/// How long a frame, once its first byte arrived, may take to arrive whole.
const PARTIAL_FRAME_BOUND: Duration = Duration::from_secs(30);

/// Read-buffer capacity of a connection with nothing pending.
const IDLE_BUFFER: usize = 4 * 1024;

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
    /// A `throttle` rule: read at most this many bytes per second from now on.
    throttle: Option<u64>,
    /// A `drop` rule asked for a TCP reset rather than a close.
    reset: bool,
    /// The emulator's stop signal, so a stalled connection still ends with it.
    stop: Shutdown,
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
    /// Boxed: this happens at most once per connection, and keeps the common return small.
    Stop(Stop, Slot, Box<Notification>),
}

/// A verdict other than a plain accept, in legacy terms.
#[derive(Debug, Clone)]
enum Stop {
    /// Answer with this status (unless command 0), discard what follows, close.
    Refuse(Status),
    /// Journal as dropped, cut the connection with no answer.
    Drop,
    /// A scenario rule's action (which may or may not end the connection).
    Fault(Fired),
}

/// What a verdict means on the legacy gateway; `None` = accepted.
fn stop_for(verdict: Verdict) -> Option<Stop> {
    match verdict {
        Verdict::Accept => None,
        // PROTOCOL.md 1.6 status 8: unknown (strict) or other-environment token.
        Verdict::Reject(Refusal::InvalidToken) => Some(Stop::Refuse(Status::InvalidToken)),
        // Legacy has no topic or unregistered answer; the engine does not send these here.
        Verdict::Reject(Refusal::TokenNotForTopic | Refusal::Unregistered(_)) => None,
        Verdict::Drop => Some(Stop::Drop),
        Verdict::Fault(fired) => Some(Stop::Fault(fired)),
    }
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
        // Idle = no complete frame within `idle` (issue 12): a byte a second does not keep a
        // connection; a frame once started must complete within PARTIAL_FRAME_BOUND too.
        let mut deadline = tokio::time::Instant::now() + idle;
        let mut partial_since: Option<tokio::time::Instant> = None;
        let mut decided = self.state.decided;
        let mut last_read = 0usize;
        let ending = loop {
            if let Step::End(ending) = self.process_buffer().await {
                break ending;
            }
            let now = tokio::time::Instant::now();
            if self.state.decided != decided {
                decided = self.state.decided;
                deadline = now + idle;
                partial_since = None;
            }
            if self.buf.is_empty() {
                partial_since = None;
            } else if partial_since.is_none() {
                partial_since = Some(now);
            }
            let due = partial_since.map_or(deadline, |t| deadline.min(t + PARTIAL_FRAME_BOUND));
            if self.buf.is_empty() && self.buf.capacity() > IDLE_BUFFER && last_read < IDLE_BUFFER {
                // Nothing pending: give the large read buffer back, so thousands of idle
                // connections cost little (a busy one, reading more than that at a time, keeps it).
                self.buf = BytesMut::with_capacity(IDLE_BUFFER);
            } else if self.buf.capacity() - self.buf.len() < IDLE_BUFFER {
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
                read = tokio::time::timeout_at(due, self.read_some()) => match read {
                    Err(_) => break Ending::IdleTimeout,
                    Ok(Err(e)) => break Ending::Io(e.to_string()),
                    Ok(Ok(0)) if self.buf.is_empty() => break Ending::PeerClosed,
                    Ok(Ok(0)) => break Ending::PeerVanishedMidFrame(self.buf.len()),
                    Ok(Ok(n)) => last_read = n,
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
            if let RunEnd::Stop(stop, slot, notification) = self.accept_run(&limits) {
                match self.carry_out(stop, slot, *notification).await {
                    Some(ending) => return Step::End(ending),
                    None => continue,
                }
            }
            let (slot, notification, valid) = match frame::peek(&self.buf, &limits) {
                Ok(Some(f)) => (
                    header(&f),
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
            match stop_for(verdict) {
                None => {
                    self.last_accepted = slot.identifier;
                    self.pending.push(notification);
                }
                Some(stop) => {
                    if let Some(ending) = self.carry_out(stop, slot, notification).await {
                        return Step::End(ending);
                    }
                }
            }
        }
    }

    /// The hot path. Finds the leading run of complete, valid frames in `buf` without copying,
    /// copies all their tokens and payloads into one exact-size buffer (so the journal never pins
    /// the read buffer), then decides and journals them in order, and takes them off `buf`. Stops at the first frame the engine does not accept, or at the end of the
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
            let slot = slot_of(&self.buf, &f, at);
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
        // Anything queued by the frame-by-frame path goes first, then the run is decided and
        // journaled in one pass under one journal lock: each accepted event is built straight
        // into the journal, never parked in between.
        self.flush();
        let GatewayConn {
            core,
            state,
            topic,
            last_accepted,
            run,
            ..
        } = self;
        let (connection, environment) = (state.id, state.environment);
        // The device model only runs when some token is registered: one atomic load per run.
        let devices = core.engine.devices_active().then(|| core.clock.now_ms());
        let mut decide = |s: &Slot| {
            let token = arena.slice(offset..offset + s.token.1 as usize);
            offset += s.token.1 as usize;
            let payload = arena.slice(offset..offset + s.payload.1 as usize);
            offset += s.payload.1 as usize;
            let notification = notification_of(s, token, payload, topic.as_ref());
            let verdict = core.engine.decide(state, &notification);
            state.decided += 1;
            if let Some(stop) = stop_for(verdict) {
                consumed = (s.start + s.len) as usize;
                end = RunEnd::Stop(stop, *s, Box::new(notification));
                return None;
            }
            *last_accepted = s.identifier;
            Some(notification)
        };
        match devices {
            // The usual case: one event per notification, built straight into the journal (a
            // flattening adapter here moved each ~240-byte event several times over).
            None => core.journal.record_batch(
                run.iter()
                    .map_while(|s| decide(s).map(|n| accepted_event(connection, environment, n))),
            ),
            Some(_) => core.journal.record_batch(
                run.iter()
                    .map_while(|s| {
                        decide(s)
                            .map(|n| accepted_events(core, devices, connection, environment, n))
                    })
                    .flatten(),
            ),
        };
        self.buf.advance(consumed);
        end
    }

    /// Carries out a verdict other than a plain accept, for a frame already taken off `buf`;
    /// `None` when the connection goes on.
    async fn carry_out(
        &mut self,
        stop: Stop,
        slot: Slot,
        notification: Notification,
    ) -> Option<Ending> {
        match stop {
            Stop::Refuse(status) => Some(self.refuse(slot, notification, status).await),
            Stop::Drop => Some(self.drop_connection(notification, false, None).await),
            Stop::Fault(fired) => self.fault(fired, slot, notification).await,
        }
    }

    /// A scenario rule's action on one notification (the rule-level delay first).
    async fn fault(
        &mut self,
        fired: Fired,
        slot: Slot,
        notification: Notification,
    ) -> Option<Ending> {
        self.flush();
        if let Some(delay) = fired.delay {
            tokio::time::sleep(delay).await;
        }
        let rule = json!({ "rule": fired.rule, "name": fired.name, "action": fired.action.name() });
        match fired.action {
            Action::Error { status, close } => {
                // PROTOCOL.md 1.6: status 10 names the last notification accepted, not this one.
                let identifier = if status == Status::Shutdown {
                    self.last_accepted
                } else {
                    slot.identifier
                };
                if close {
                    return Some(
                        self.refuse_by(
                            Slot { identifier, ..slot },
                            notification,
                            status,
                            Some(rule),
                        )
                        .await,
                    );
                }
                self.record(
                    self.event(EventKind::Rejected)
                        .notification(notification)
                        .status(status.code(), status.name())
                        .detail(json!({ "error_response_sent": slot.command.reports_errors(), "rule": rule })),
                );
                if slot.command.reports_errors() {
                    let resp = ErrorResponse::new(status, identifier);
                    if let Err(e) = self.io.write_all(&resp.encode()).await {
                        return Some(Ending::Io(e.to_string()));
                    }
                    let _ = self.io.flush().await;
                }
                None
            }
            Action::Drop { reset } => {
                Some(self.drop_connection(notification, reset, Some(rule)).await)
            }
            Action::Stall { for_ms } => {
                self.accept_one(slot, notification);
                self.flush();
                // Stop reading: the provider's writes pile up in TCP buffers until they block.
                self.stall(for_ms).await;
                None
            }
            Action::Throttle { bytes_per_sec } => {
                self.accept_one(slot, notification);
                self.throttle = Some(bytes_per_sec.max(1));
                None
            }
            // `accept` with a delay, and HTTP/2-only actions a scenario cannot attach to legacy.
            _ => {
                self.accept_one(slot, notification);
                None
            }
        }
    }

    /// Stops reading for `for_ms` (or until shutdown), as a `stall` rule asks.
    async fn stall(&mut self, for_ms: Option<u64>) {
        let wait = async {
            match for_ms {
                Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = self.stop.wait() => {}
        }
    }

    /// Connection-level rules (`on = "connect"`): drop at once, stall or throttle from the first byte.
    async fn on_connect(&mut self) -> Option<Ending> {
        for fired in self.core.engine.on_connection(&self.state) {
            if let Some(delay) = fired.delay {
                tokio::time::sleep(delay).await;
            }
            match fired.action {
                Action::Drop { reset } => {
                    self.reset = reset;
                    self.record(
                        self.event(EventKind::Dropped)
                            .detail(json!({ "rule": fired.rule, "on": "connect" })),
                    );
                    return Some(Ending::Dropped);
                }
                Action::Stall { for_ms } => self.stall(for_ms).await,
                Action::Throttle { bytes_per_sec } => self.throttle = Some(bytes_per_sec.max(1)),
                _ => {}
            }
        }
        None
    }

    /// One read into `buf`, paced when a `throttle` rule is in force.
    async fn read_some(&mut self) -> std::io::Result<usize> {
        let Some(bps) = self.throttle else {
            return self.io.read_buf(&mut self.buf).await;
        };
        let mut chunk = vec![
            0u8;
            usize::try_from(bps / 10)
                .unwrap_or(16 * 1024)
                .clamp(1, 16 * 1024)
        ];
        let n = self.io.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
        Ok(n)
    }

    fn accept_one(&mut self, slot: Slot, notification: Notification) {
        self.last_accepted = slot.identifier;
        self.pending.push(notification);
    }

    /// Journals the notification as dropped (with the rule that asked, so a silent close can be
    /// traced in the journal) and cuts the connection with no answer; with `reset`, as a TCP
    /// reset (linger 0) instead of close_notify and FIN.
    async fn drop_connection(
        &mut self,
        notification: Notification,
        reset: bool,
        rule: Option<serde_json::Value>,
    ) -> Ending {
        let mut e = self.event(EventKind::Dropped).notification(notification);
        if let Some(rule) = rule {
            e = e.detail(json!({ "rule": rule, "reset": reset }));
        }
        self.record(e);
        self.discard_rest().await;
        if reset {
            self.reset = true;
        }
        Ending::Dropped
    }

    /// Refuses one notification: error-response (never for command 0: PROTOCOL.md 1.7), discard what followed, close.
    async fn refuse(&mut self, slot: Slot, notification: Notification, status: Status) -> Ending {
        self.refuse_by(slot, notification, status, None).await
    }

    /// [`Self::refuse`], journaling the scenario rule that chose the status, if one did.
    async fn refuse_by(
        &mut self,
        slot: Slot,
        notification: Notification,
        status: Status,
        rule: Option<serde_json::Value>,
    ) -> Ending {
        let silent = !slot.command.reports_errors();
        let mut detail = json!({ "error_response_sent": !silent });
        if let Some(rule) = rule {
            detail["rule"] = rule;
        }
        self.record(
            self.event(EventKind::Rejected)
                .notification(notification)
                .status(status.code(), status.name())
                .detail(detail),
        );
        if silent {
            self.discard_rest().await;
            let _ = self.io.shutdown().await;
        } else {
            let resp = ErrorResponse::new(status, slot.identifier);
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
        while let Ok(Some(f)) = frame::peek(&self.buf, &limits) {
            let (len, notification) = (f.len, owned_notification(&f, self.topic.as_ref()));
            self.buf.advance(len);
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

    /// Journals the queued accepted notifications, in order, under one journal lock.
    ///
    /// The guarantee: everything decided from one read is journaled here before the next read
    /// and before any answer or other event ([`Self::record`] flushes first), so nothing the
    /// provider can observe precedes it. Every queued notification already owns an exact-size
    /// copy of its bytes ([`Self::accept_run`], [`owned_notification`]), never the read buffer.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (connection, environment) = (self.state.id, self.state.environment);
        let core = self.core;
        let devices = core.engine.devices_active().then(|| core.clock.now_ms());
        core.journal.record_batch(
            self.pending
                .drain(..)
                .flat_map(|n| accepted_events(core, devices, connection, environment, n)),
        );
    }

    /// Journals one event after everything queued before it.
    fn record(&mut self, e: NewEvent) {
        self.flush();
        self.core.journal.record(e);
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
/// Token and payload keep sharing `n`'s storage (the gateway itself journals exact-size copies
/// instead; see [`GatewayConn::flush`]).
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

/// The slot of frame `f`, which [`frame::peek`] found at offset `at` of `buf`.
fn slot_of(buf: &[u8], f: &FrameRef<'_>, at: usize) -> Slot {
    // Offsets fit in u32: runs stop before 4 GiB (and read buffers stay far below it).
    let place = |p: Option<&[u8]>| {
        p.map_or((0, 0), |p| {
            let start = (p.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
            (start as u32, p.len() as u32)
        })
    };
    Slot {
        start: at as u32,
        token: place(f.token),
        payload: place(f.payload),
        ..header(f)
    }
}

/// The fields of `f` that are not bytes, as a slot (offsets left at 0).
fn header(f: &FrameRef<'_>) -> Slot {
    Slot {
        command: f.command,
        identifier: f.identifier,
        expiry: f.expiry,
        priority: f.priority,
        start: 0,
        len: f.len as u32,
        token: (0, 0),
        payload: (0, 0),
    }
}

/// The `accepted` event of a legacy notification.
#[inline]
fn accepted_event(connection: u64, environment: Environment, n: Notification) -> NewEvent {
    NewEvent {
        connection,
        protocol: Protocol::Legacy,
        environment,
        kind: EventKind::Accepted,
        notification: Some(n),
        status: None,
        reason: None,
        detail: None,
    }
}

/// The `accepted` event of a legacy notification followed by what the device model did with it
/// (`devices` = the time, when any token is registered; otherwise nothing more is looked up).
#[inline]
fn accepted_events(
    core: &Core,
    devices: Option<u64>,
    connection: u64,
    environment: Environment,
    n: Notification,
) -> impl Iterator<Item = NewEvent> {
    let extra = match devices {
        Some(now_ms) => core.engine.device_events(
            Origin {
                protocol: Protocol::Legacy,
                environment,
            },
            &n,
            now_ms,
        ),
        None => Vec::new(),
    };
    std::iter::once(accepted_event(connection, environment, n))
        .chain(extra.into_iter().map(move |d| d.into_event(connection)))
}

/// A (start, len) pair as a range.
fn range((start, len): (u32, u32)) -> std::ops::Range<usize> {
    start as usize..start as usize + len as usize
}

/// The notification of a run slot whose token and payload were copied out to `token`, `payload`.
fn notification_of(
    s: &Slot,
    token: Bytes,
    payload: Bytes,
    topic: Option<&Arc<str>>,
) -> Notification {
    let simple = s.command == Command::Simple;
    Notification {
        token: crate::model::DeviceToken::from_bytes(token),
        payload,
        identifier: (!simple).then_some(Identifier(s.identifier)),
        expiry: (!simple).then_some(s.expiry),
        priority: s.priority,
        topic: topic.cloned(),
        push_type: None,
        collapse_id: None,
        apns_id: None,
        command: Some(s.command.byte()),
    }
}

/// The notification of one frame, its token and payload copied into one exact-size buffer of
/// their own (the frame-by-frame path: refusals, discards, and frames at a read's edge).
fn owned_notification(f: &FrameRef<'_>, topic: Option<&Arc<str>>) -> Notification {
    let (t, p) = (f.token_bytes(), f.payload_bytes());
    let mut bytes = BytesMut::with_capacity(t.len() + p.len());
    bytes.extend_from_slice(t);
    bytes.extend_from_slice(p);
    let bytes = bytes.freeze();
    notification_of(
        &header(f),
        bytes.slice(..t.len()),
        bytes.slice(t.len()..),
        topic,
    )
}
