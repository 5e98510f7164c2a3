//! One legacy gateway connection's protocol logic, sans-IO (in the style of quinn-proto's
//! `Connection` under quinn): it owns the read buffer, the pending run of frames, the stop reason,
//! the discard rule and the rule bookkeeping, and turns "these bytes arrived at `now`" into
//! [`Effect`]s — journal events, bytes to write, how to close, when to stop reading or wake up.
//!
//! The gateway (`gateway.rs`) only reads into [`Session::buffer`], runs the effects and keeps the
//! timers; every answer Apple gave is decided here (PROTOCOL.md 1.6, 1.7, Part 3), so it is unit
//! tested without sockets or sleeps: time is an `Instant` passed in, and delays come back as
//! instants in [`Effect::Stall`] and [`Effect::WakeAt`].

use crate::clock::Clock;
use crate::engine::devices::Origin;
use crate::engine::rules::{Action, Fired, LegacyAction};
use crate::engine::{ConnState, Engine, Refusal, Verdict};
use crate::journal::{ConnectionEnd, EventKind, NewEvent};
use crate::legacy::frame::{
    self, Command, ErrorResponse, FrameError, FrameRef, LegacyNotification, Limits,
};
use crate::model::wire::Status;
use crate::model::{DeviceToken, Environment, Identifier, Notification, Protocol};
use crate::settings::UnknownCommand;
use bytes::{Buf, Bytes, BytesMut};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the session asks the network layer to do, in order.
// `Journal` is the common effect (one per notification) and is moved straight into the journal:
// boxing it would cost an allocation per notification on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Record this event (consecutive ones may be recorded as one batch).
    Journal(NewEvent),
    /// Write these bytes and flush.
    Write(Bytes),
    /// Stop reading until this instant (`None`: until shutdown), then call
    /// [`Session::handle_timeout`].
    Stall(Option<Instant>),
    /// Read at most this many bytes per second from now on (a `throttle` rule).
    Throttle(u64),
    /// Keep reading, and call [`Session::handle_timeout`] at this instant.
    WakeAt(Instant),
    /// Close the connection this way; the session is over and `end` is its journaled cause.
    Close {
        /// How the bytes stop.
        how: CloseHow,
        /// Why (the `cause` of `connection-closed`).
        end: ConnectionEnd,
    },
}

pub use crate::engine::rules::CloseHow;

/// Read-buffer capacity reserved when bytes arrive on a connection with nothing pending (grown to
/// 64 KiB when busy). An idle connection holds no read buffer at all (issue 12): the network layer
/// waits for readability on a zero-capacity [`Session::buffer`], then reserves this much.
pub(crate) const IDLE_BUFFER: usize = 4 * 1024;

/// A run of valid frames at least this long is sliced out of the read buffer rather than copied.
const ZERO_COPY_RUN: usize = 16 * 1024;

/// The settings a session answers by (from [`crate::settings::Settings`]).
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Codec limits (PROTOCOL.md Part 3).
    pub limits: Limits,
    /// How long Apple took to answer a verdict that ends the connection (PROTOCOL.md 1.7),
    /// reading and discarding meanwhile.
    pub answer_delay: Duration,
    /// The read buffer bound: past it, reading stops during a pause.
    pub read_buffer: usize,
    /// Answer to an unknown command byte (status 128 or a silent close).
    pub unknown_command: UnknownCommand,
}

impl SessionConfig {
    /// The configuration the emulator's settings imply.
    pub fn from_settings(s: &crate::settings::Settings) -> Self {
        SessionConfig {
            limits: Limits {
                token_len: s.legacy_token_length,
                max_payload: s.legacy_max_payload,
                max_frame: s.legacy_max_frame,
            },
            answer_delay: Duration::from_millis(s.legacy_answer_delay_ms),
            read_buffer: s.legacy_read_buffer,
            unknown_command: s.legacy_unknown_command,
        }
    }
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
        // strict_payload (an apnsim extension): status 255, Apple's catch-all (PROTOCOL.md 1.6).
        Verdict::Reject(Refusal::LintedPayload) => Some(Stop::Refuse(Status::Unknown)),
        // Legacy has no topic or unregistered answer; the engine does not send these here.
        Verdict::Reject(Refusal::TokenNotForTopic | Refusal::Unregistered(_)) => None,
        Verdict::Drop => Some(Stop::Drop),
        Verdict::Fault(fired) => Some(Stop::Fault(fired)),
    }
}

/// A faulted notification waiting out its rule's delay.
#[derive(Debug)]
struct Held {
    fired: Fired,
    slot: Slot,
    notification: Notification,
}

/// What to do when a pause ends.
#[derive(Debug)]
enum Resume {
    /// Go on deciding what is buffered.
    Decide,
    /// Carry out a rule's action on a notification (its delay is over).
    Fault(Box<Held>),
    /// Carry out a connect rule (its delay is over), then the rest of them.
    Connect(Fired),
}

/// Where the connection stands.
#[derive(Debug)]
enum Phase {
    /// Reading and deciding.
    Open,
    /// Not deciding until `until` (`None`: until shutdown); reading on into the buffer (up to
    /// its bound) when `reading` (a rule's delay), not at all otherwise (a stall).
    Paused {
        until: Option<Instant>,
        resume: Resume,
        reading: bool,
    },
    /// A verdict ends the connection: reading on until `at`, every complete frame that arrives is
    /// journaled as `discarded` at once with reason `after` (issue 2: never as accepted), then
    /// `answer` is written and the connection closed `how`.
    Closing {
        at: Instant,
        answer: Option<Bytes>,
        how: CloseHow,
        end: ConnectionEnd,
        /// False after a framing error: what follows cannot be split into frames.
        framed: bool,
        /// Why the frames read meanwhile are discarded ("after status 8 for #10").
        after: Arc<str>,
    },
    /// Over: a [`Effect::Close`] was emitted.
    Closed,
}

/// The sans-IO state of one legacy gateway connection.
#[derive(Debug)]
pub struct Session<'a> {
    engine: &'a Engine,
    clock: Clock,
    cfg: SessionConfig,
    state: ConnState,
    topic: Option<Arc<str>>,
    last_accepted: [u8; 4],
    buf: BytesMut,
    /// `buf.len()` when it was last handed out for a read (so the next call knows the read's size).
    len_before_read: usize,
    /// Scratch for [`Session::accept_run`]: where the frames of one run lie in `buf`.
    run: Vec<Slot>,
    phase: Phase,
    /// Connect rules not yet carried out (one may be waiting out its delay).
    connect: VecDeque<Fired>,
}

impl<'a> Session<'a> {
    /// A session for connection `id` in `environment`; `topic` is the certificate's first topic.
    pub fn new(
        engine: &'a Engine,
        clock: Clock,
        cfg: SessionConfig,
        id: u64,
        environment: Environment,
        topic: Option<Arc<str>>,
    ) -> Self {
        Session {
            engine,
            clock,
            cfg,
            state: ConnState {
                id,
                protocol: Protocol::Legacy,
                environment,
                decided: 0,
            },
            topic,
            last_accepted: [0; 4],
            buf: BytesMut::new(),
            len_before_read: 0,
            run: Vec::new(),
            phase: Phase::Open,
            connect: VecDeque::new(),
        }
    }

    /// The read buffer: the network layer appends what it reads, then calls [`Self::handle_read`].
    /// With nothing pending after a small read it has no capacity: the network layer waits until
    /// the connection is readable before reserving [`IDLE_BUFFER`], so an idle connection holds no
    /// read buffer (issue 12); a busy connection keeps its large one.
    pub fn buffer(&mut self) -> &mut BytesMut {
        let last_read = self.buf.len().saturating_sub(self.len_before_read);
        if self.buf.is_empty() && last_read < IDLE_BUFFER {
            if self.buf.capacity() > 0 {
                self.buf = BytesMut::new();
            }
        } else if self.buf.capacity() - self.buf.len() < IDLE_BUFFER {
            self.buf.reserve(64 * 1024);
        }
        self.len_before_read = self.buf.len();
        &mut self.buf
    }

    /// Whether the network layer should read now (not while paused, not past the discard bound).
    pub fn wants_read(&self) -> bool {
        match &self.phase {
            Phase::Open => true,
            Phase::Paused { reading, .. } => *reading && self.buf.len() < self.cfg.read_buffer,
            Phase::Closed => false,
            Phase::Closing { .. } => self.buf.len() < self.cfg.read_buffer,
        }
    }

    /// Whether a [`Effect::Close`] was emitted.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Notifications decided so far (journaled in `connection-closed`).
    pub fn decided(&self) -> u64 {
        self.state.decided
    }

    /// The connection is up: connect rules (`on = "connect"`) fire — drop at once, stall or
    /// throttle from the first byte.
    pub fn handle_connect(&mut self, now: Instant, out: &mut Vec<Effect>) {
        self.connect = self.engine.on_connection(&self.state).into();
        self.run_connect_rules(now, out);
    }

    /// Bytes were appended to [`Self::buffer`].
    pub fn handle_read(&mut self, now: Instant, out: &mut Vec<Effect>) {
        match self.phase {
            Phase::Open => self.process(now, out),
            // What Apple read while its answer was on the way: journaled now, never processed.
            Phase::Closing { .. } => self.discard(out),
            // Buffered until the pause ends (bounded by [`Self::wants_read`]).
            Phase::Paused { .. } | Phase::Closed => {}
        }
    }

    /// The provider closed its side (a read returned 0).
    pub fn handle_eof(&mut self, _now: Instant, out: &mut Vec<Effect>) {
        match &self.phase {
            Phase::Open => {
                let end = match self.buf.len() {
                    0 => ConnectionEnd::PeerClosed,
                    n => ConnectionEnd::PeerVanishedMidFrame(n),
                };
                let how = match end {
                    ConnectionEnd::PeerClosed => CloseHow::Graceful,
                    _ => CloseHow::Fin,
                };
                self.close(how, end, out);
            }
            // The answer still goes out when the delay is over (nothing more will be read).
            Phase::Closing { at, .. } => out.push(Effect::Stall(Some(*at))),
            // A rule's delay: what was read is decided when it ends (then the EOF is seen again).
            Phase::Paused {
                until,
                reading: true,
                ..
            } => out.push(Effect::Stall(*until)),
            Phase::Paused { .. } | Phase::Closed => {}
        }
    }

    /// A read failed.
    pub fn handle_read_error(&mut self, error: String, _now: Instant, out: &mut Vec<Effect>) {
        match &self.phase {
            Phase::Closing { at, .. } => out.push(Effect::Stall(Some(*at))),
            Phase::Open | Phase::Paused { .. } => {
                self.close(CloseHow::Fin, ConnectionEnd::Io(error), out)
            }
            Phase::Closed => {}
        }
    }

    /// Nothing arrived for the idle timeout.
    pub fn handle_idle(&mut self, _now: Instant, out: &mut Vec<Effect>) {
        if matches!(self.phase, Phase::Open) {
            self.close(CloseHow::Graceful, ConnectionEnd::IdleTimeout, out);
        }
    }

    /// A time asked for by [`Effect::Stall`] or [`Effect::WakeAt`] has come.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Effect>) {
        match &self.phase {
            Phase::Paused {
                until: Some(until), ..
            } if *until <= now => self.resume(now, out),
            Phase::Closing { at, .. } if *at <= now => self.finish_closing(out),
            Phase::Open | Phase::Paused { .. } | Phase::Closing { .. } | Phase::Closed => {}
        }
    }

    /// The emulator is stopping: what is buffered is decided first; then, after the answer delay
    /// like every verdict that ends a connection (reading on, and discarding what arrives
    /// meanwhile: PROTOCOL.md 1.7), status 10 names the last notification accepted (PROTOCOL.md
    /// 1.6) and the connection closes.
    pub fn handle_shutdown(&mut self, now: Instant, out: &mut Vec<Effect>) {
        loop {
            match &self.phase {
                Phase::Paused { .. } => self.resume(now, out),
                Phase::Closing { .. } => return self.finish_closing(out),
                Phase::Closed => return,
                Phase::Open => break,
            }
        }
        let resp = ErrorResponse::new(Status::Shutdown, self.last_accepted);
        let closing = Closing {
            answer: Some(Bytes::copy_from_slice(&resp.encode())),
            how: CloseHow::Graceful,
            end: ConnectionEnd::Shutdown,
            framed: true,
            after: format!(
                "after status {} (the emulator is stopping)",
                Status::Shutdown.code()
            ),
        };
        self.start_closing(closing, Duration::ZERO, now, out);
    }

    fn close(&mut self, how: CloseHow, end: ConnectionEnd, out: &mut Vec<Effect>) {
        self.phase = Phase::Closed;
        out.push(Effect::Close { how, end });
    }

    /// Stops deciding (and reading, unless `reading`) until `until`.
    fn pause(
        &mut self,
        until: Option<Instant>,
        resume: Resume,
        reading: bool,
        out: &mut Vec<Effect>,
    ) {
        self.phase = Phase::Paused {
            until,
            resume,
            reading,
        };
        match until {
            Some(at) if reading => out.push(Effect::WakeAt(at)),
            _ => out.push(Effect::Stall(until)),
        }
    }

    fn resume(&mut self, now: Instant, out: &mut Vec<Effect>) {
        let Phase::Paused { resume, .. } = std::mem::replace(&mut self.phase, Phase::Open) else {
            return;
        };
        match resume {
            Resume::Decide => {}
            Resume::Fault(held) => {
                let Held {
                    fired,
                    slot,
                    notification,
                } = *held;
                self.fault(fired, slot, notification, Duration::ZERO, now, out);
            }
            Resume::Connect(fired) => {
                self.connect_rule(fired, now, out);
                if !matches!(self.phase, Phase::Open) {
                    return;
                }
                self.run_connect_rules(now, out);
            }
        }
        if matches!(self.phase, Phase::Open) {
            self.process(now, out);
        }
    }

    fn run_connect_rules(&mut self, now: Instant, out: &mut Vec<Effect>) {
        while matches!(self.phase, Phase::Open) {
            let Some(mut fired) = self.connect.pop_front() else {
                return;
            };
            match fired.delay.take() {
                // Reading on during the delay, as for a notification rule's: nothing the
                // provider writes meanwhile goes unjournaled (PROTOCOL.md 1.7).
                Some(delay) => {
                    self.pause(Some(now + delay), Resume::Connect(fired), true, out);
                }
                None => self.connect_rule(fired, now, out),
            }
        }
    }

    /// One connect rule, its delay over.
    fn connect_rule(&mut self, fired: Fired, now: Instant, out: &mut Vec<Effect>) {
        match transport_effect(&fired, now) {
            Some(Effect::Close { how, end }) => {
                out.push(Effect::Journal(
                    self.event(EventKind::Dropped)
                        .detail(json!({ "rule": fired.journal_detail() })),
                ));
                // What arrived during the rule's delay is journaled as discarded, then the cut.
                self.phase = Phase::Closing {
                    at: now,
                    answer: None,
                    how,
                    end,
                    framed: true,
                    after: format!("after {} on connect", fired.action.name()).into(),
                };
                self.finish_closing(out);
            }
            Some(Effect::Stall(until)) => self.pause(until, Resume::Decide, false, out),
            Some(effect) => out.push(effect),
            // Not connection-capable, or not legacy: never fired on a legacy connect.
            None => {}
        }
    }

    /// Decodes and decides every complete frame buffered: runs of valid frames in bulk
    /// ([`Self::accept_run`]), anything else one frame at a time.
    fn process(&mut self, now: Instant, out: &mut Vec<Effect>) {
        let limits = self.cfg.limits;
        while matches!(self.phase, Phase::Open) {
            if let Some((stop, slot, notification)) = self.accept_run(&limits, out) {
                self.carry_out(stop, slot, *notification, now, out);
                continue;
            }
            let (slot, notification, valid) = match frame::peek(&self.buf, &limits) {
                Ok(Some(f)) => (
                    header(&f),
                    owned_notification(&f, self.topic.as_ref()),
                    f.validate(&limits),
                ),
                Ok(None) => return,
                Err(e) => return self.protocol_error(e, now, out),
            };
            self.buf.advance(slot.len as usize);
            if let Err(status) = valid {
                return self.refuse(slot, notification, status, Ending::default(), now, out);
            }
            let verdict = self.engine.decide(&self.state, &notification);
            self.state.decided += 1;
            match stop_for(verdict) {
                None => self.accept(slot, notification, out),
                Some(stop) => self.carry_out(stop, slot, notification, now, out),
            }
        }
    }

    /// The hot path. Finds the leading run of complete, valid frames in `buf` without copying,
    /// takes their tokens and payloads as slices of the buffer (a long run) or of one exact-size
    /// copy (a short one), then decides them in order, emits their `accepted` events, and takes them
    /// off `buf`. Returns the first frame the engine does not accept (`buf` then starts after it);
    /// the bytes of the frames after it stay in the copy unused: at most one read's worth, once per
    /// connection, since the connection ends.
    #[allow(clippy::type_complexity)]
    fn accept_run(
        &mut self,
        limits: &Limits,
        out: &mut Vec<Effect>,
    ) -> Option<(Stop, Slot, Box<Notification>)> {
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
            return None;
        }
        // Where tokens and payloads are sliced from: a run that fills at least half of the read
        // buffer is cut off the buffer itself (no copy: the journal then pins at most twice the
        // bytes it keeps); a shorter one is copied to an exact-size buffer, so a trickle of small
        // reads never pins a 64 KiB buffer per notification.
        let (arena, mut offset, copied) = if at >= ZERO_COPY_RUN && at * 2 >= self.buf.capacity() {
            (self.buf.split_to(at).freeze(), 0usize, false)
        } else {
            let mut arena = BytesMut::with_capacity(copy_len);
            for s in &self.run {
                arena.extend_from_slice(&self.buf[range(s.token)]);
                arena.extend_from_slice(&self.buf[range(s.payload)]);
            }
            (arena.freeze(), 0usize, true)
        };
        let mut stop = None;
        let mut consumed = at;
        let (connection, environment) = (self.state.id, self.state.environment);
        // The device model only runs when some token is registered: one atomic load per run.
        let devices = self.engine.devices_active().then(|| self.clock.now_ms());
        out.reserve(self.run.len());
        for s in &self.run {
            let (token, payload) = if copied {
                let token = arena.slice(offset..offset + s.token.1 as usize);
                offset += s.token.1 as usize;
                let payload = arena.slice(offset..offset + s.payload.1 as usize);
                offset += s.payload.1 as usize;
                (token, payload)
            } else {
                (arena.slice(range(s.token)), arena.slice(range(s.payload)))
            };
            let notification = notification_of(s, token, payload, self.topic.as_ref());
            let verdict = self.engine.decide(&self.state, &notification);
            self.state.decided += 1;
            if let Some(st) = stop_for(verdict) {
                consumed = (s.start + s.len) as usize;
                stop = Some((st, *s, Box::new(notification)));
                break;
            }
            self.last_accepted = s.identifier;
            accepted_events(
                self.engine,
                devices,
                connection,
                environment,
                notification,
                out,
            );
        }
        if copied {
            self.buf.advance(consumed);
        } else if consumed < at {
            // The run was cut off the buffer whole: the frames after a stop go back in front of
            // what is still buffered, unread (once per connection, which then ends).
            let mut rest = BytesMut::with_capacity(at - consumed + self.buf.len());
            rest.extend_from_slice(&arena[consumed..]);
            rest.extend_from_slice(&self.buf);
            self.buf = rest;
        }
        stop
    }

    fn accept(&mut self, slot: Slot, notification: Notification, out: &mut Vec<Effect>) {
        self.last_accepted = slot.identifier;
        let devices = self.engine.devices_active().then(|| self.clock.now_ms());
        let (connection, environment) = (self.state.id, self.state.environment);
        accepted_events(
            self.engine,
            devices,
            connection,
            environment,
            notification,
            out,
        );
    }

    /// Carries out a verdict other than a plain accept, for a frame already taken off `buf`.
    fn carry_out(
        &mut self,
        stop: Stop,
        slot: Slot,
        notification: Notification,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        match stop {
            Stop::Refuse(status) => {
                self.refuse(slot, notification, status, Ending::default(), now, out)
            }
            Stop::Drop => self.drop_connection(notification, Ending::default(), now, out),
            Stop::Fault(mut fired) => match fired.delay.take() {
                // A rule's delay before an action that ends the connection: the verdict is
                // journaled now, and the delay adds to the answer's (reading and discarding).
                Some(delay) if ends_connection(&fired.action) => {
                    self.fault(fired, slot, notification, delay, now, out)
                }
                // Any other action waits its delay reading on: what arrives meanwhile is decided
                // after it, in order.
                Some(delay) => {
                    let held = Box::new(Held {
                        fired,
                        slot,
                        notification,
                    });
                    self.pause(Some(now + delay), Resume::Fault(held), true, out);
                }
                None => self.fault(fired, slot, notification, Duration::ZERO, now, out),
            },
        }
    }

    /// A scenario rule's action on one notification (`wait`: the rule's delay still to add to the
    /// answer delay, for an action that ends the connection).
    fn fault(
        &mut self,
        fired: Fired,
        slot: Slot,
        notification: Notification,
        wait: Duration,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let rule = fired.journal_detail();
        match fired.action {
            Action::Legacy(LegacyAction::Error { status, close }) => {
                // PROTOCOL.md 1.6: status 10 names the last notification accepted, not this one.
                let identifier = if status == Status::Shutdown {
                    self.last_accepted
                } else {
                    slot.identifier
                };
                let slot = Slot { identifier, ..slot };
                if close {
                    let ending = Ending {
                        rule: Some(rule),
                        close: fired.close,
                        wait,
                    };
                    return self.refuse(slot, notification, status, ending, now, out);
                }
                let sent = slot.command.reports_errors();
                out.push(Effect::Journal(
                    self.event(EventKind::Rejected)
                        .notification(notification)
                        .status(status.code(), status.name())
                        .detail(json!({ "error_response_sent": sent, "rule": rule })),
                ));
                if sent {
                    let resp = ErrorResponse::new(status, identifier);
                    out.push(Effect::Write(Bytes::copy_from_slice(&resp.encode())));
                }
            }
            Action::Legacy(LegacyAction::Drop { reset }) => {
                let close = match (fired.close, reset) {
                    (Some(how), _) => how,
                    (None, true) => CloseHow::Reset,
                    (None, false) => CloseHow::Fin,
                };
                let ending = Ending {
                    rule: Some(rule),
                    close: Some(close),
                    wait,
                };
                self.drop_connection(notification, ending, now, out)
            }
            Action::Legacy(LegacyAction::Stall { for_ms }) => {
                self.accept(slot, notification, out);
                // Stop reading: the provider's writes pile up in TCP buffers until they block.
                let until = for_ms.map(|ms| now + Duration::from_millis(ms));
                self.pause(until, Resume::Decide, false, out);
            }
            Action::Legacy(LegacyAction::Throttle { bytes_per_sec }) => {
                self.accept(slot, notification, out);
                out.push(Effect::Throttle(bytes_per_sec.max(1)));
            }
            // `accept` with a delay, and HTTP/2-only actions a scenario cannot attach to legacy.
            Action::Accept | Action::Http2(_) => self.accept(slot, notification, out),
        }
    }

    /// Journals the notification as dropped (with the rule that asked, so a silent close can be
    /// traced in the journal), then after the answer delay (reading and discarding meanwhile)
    /// cuts the connection with no answer: FIN, or as the rule says.
    fn drop_connection(
        &mut self,
        notification: Notification,
        ending: Ending,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let how = ending.close.unwrap_or(CloseHow::Fin);
        let after = format!(
            "after {} at {}",
            if how == CloseHow::Reset {
                "reset"
            } else {
                "drop"
            },
            numbered(&notification)
        );
        let mut e = self.event(EventKind::Dropped).notification(notification);
        if let Some(rule) = ending.rule {
            e = e.detail(json!({ "rule": rule, "reset": how == CloseHow::Reset }));
        }
        out.push(Effect::Journal(e));
        let closing = Closing {
            answer: None,
            how,
            end: ConnectionEnd::Dropped,
            framed: true,
            after,
        };
        self.start_closing(closing, ending.wait, now, out);
    }

    /// Refuses one notification: error-response after the answer delay (never for command 0:
    /// PROTOCOL.md 1.7), every frame that arrives meanwhile discarded, then close.
    fn refuse(
        &mut self,
        slot: Slot,
        notification: Notification,
        status: Status,
        ending: Ending,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let silent = !slot.command.reports_errors();
        let mut detail = json!({ "error_response_sent": !silent });
        if !silent {
            // The identifier the error-response names (status 10: the last accepted, PROTOCOL.md 1.6).
            detail["identifier"] = json!(hex::encode(slot.identifier));
        }
        if let Some(rule) = ending.rule {
            detail["rule"] = rule;
        }
        let after = format!(
            "after status {} for {}",
            status.code(),
            numbered(&notification)
        );
        out.push(Effect::Journal(
            self.event(EventKind::Rejected)
                .notification(notification)
                .status(status.code(), status.name())
                .detail(detail),
        ));
        // Command 0 has no error-response: the connection just closes (PROTOCOL.md 1.7).
        let answer = (!silent)
            .then(|| Bytes::copy_from_slice(&ErrorResponse::new(status, slot.identifier).encode()));
        let closing = Closing {
            answer,
            how: ending.close.unwrap_or(CloseHow::Graceful),
            end: ConnectionEnd::Refused,
            framed: true,
            after,
        };
        self.start_closing(closing, ending.wait, now, out);
    }

    /// Answers a frame the codec could not parse (PROTOCOL.md Part 3: status 128, or a silent close).
    fn protocol_error(&mut self, e: FrameError, now: Instant, out: &mut Vec<Effect>) {
        let silent = match &e {
            FrameError::UnknownCommand(_) => {
                self.cfg.unknown_command == UnknownCommand::SilentClose
            }
            _ => false,
        };
        let response = if silent { None } else { e.response() };
        out.push(Effect::Journal(
            self.event(EventKind::Rejected)
                .status(Status::ProtocolError.code(), Status::ProtocolError.name())
                .detail(
                    json!({ "error": e.to_string(), "error_response_sent": response.is_some() }),
                ),
        ));
        // What follows an unparseable frame cannot be split into frames: it is not journaled.
        let closing = Closing {
            answer: response.map(|r| Bytes::copy_from_slice(&r.encode())),
            how: CloseHow::Graceful,
            end: ConnectionEnd::Refused,
            framed: false,
            after: String::new(),
        };
        self.start_closing(closing, Duration::ZERO, now, out);
    }

    /// Waits `wait` plus the answer delay (still reading, as Apple's late answer let more
    /// arrive: PROTOCOL.md 1.7), then answers and closes; what is buffered is discarded now.
    fn start_closing(&mut self, c: Closing, wait: Duration, now: Instant, out: &mut Vec<Effect>) {
        let at = now + wait + self.cfg.answer_delay;
        self.phase = Phase::Closing {
            at,
            answer: c.answer,
            how: c.how,
            end: c.end,
            framed: c.framed,
            after: c.after.into(),
        };
        if at <= now {
            self.finish_closing(out);
        } else {
            self.discard(out);
            out.push(Effect::WakeAt(at));
        }
    }

    fn finish_closing(&mut self, out: &mut Vec<Effect>) {
        self.discard(out);
        self.buf.clear();
        if let Phase::Closing {
            answer, how, end, ..
        } = std::mem::replace(&mut self.phase, Phase::Closed)
        {
            if let Some(answer) = answer {
                out.push(Effect::Write(answer));
            }
            self.close(how, end, out);
        }
    }

    /// Journals the complete frames buffered behind a verdict that ends the connection as
    /// `discarded` (issue 2: never as accepted), leaving a partial one buffered.
    fn discard(&mut self, out: &mut Vec<Effect>) {
        let Phase::Closing {
            framed: true,
            after,
            ..
        } = &self.phase
        else {
            return;
        };
        let after = after.clone();
        let limits = self.cfg.limits;
        while let Ok(Some(f)) = frame::peek(&self.buf, &limits) {
            let (len, notification) = (f.len, owned_notification(&f, self.topic.as_ref()));
            self.buf.advance(len);
            out.push(Effect::Journal(
                self.event(EventKind::Discarded)
                    .notification(notification)
                    .reason(&*after),
            ));
        }
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

/// How a connection that a verdict ends is answered and closed (gathered for
/// [`Session::start_closing`]).
struct Closing {
    answer: Option<Bytes>,
    how: CloseHow,
    end: ConnectionEnd,
    framed: bool,
    after: String,
}

/// What a rule adds to a verdict that ends the connection.
#[derive(Default)]
struct Ending {
    /// The `rule` object for the journal.
    rule: Option<serde_json::Value>,
    /// The rule's `close`.
    close: Option<CloseHow>,
    /// The rule's delay, added to the answer delay.
    wait: Duration,
}

/// Whether a rule's action ends the legacy connection (its delay then reads and discards).
fn ends_connection(action: &Action) -> bool {
    matches!(
        action,
        Action::Legacy(LegacyAction::Error { close: true, .. } | LegacyAction::Drop { .. })
    )
}

/// A notification as a discard reason names it: `#10` (its identifier as a number), or
/// "a command-0 notification", which has none.
fn numbered(n: &Notification) -> String {
    match n.identifier {
        Some(Identifier(id)) => format!("#{}", u32::from_be_bytes(id)),
        None => "a command-0 notification".into(),
    }
}

/// What a transport fault (`drop`, `stall`, `throttle`) asks of the network layer at `now`, the
/// same for the gateway and the feedback service; `None` for any other action. A `drop` closes as
/// the rule's `close` says, else FIN (or RST with `reset = true`).
pub fn transport_effect(fired: &Fired, now: Instant) -> Option<Effect> {
    match &fired.action {
        Action::Legacy(LegacyAction::Drop { reset }) => Some(Effect::Close {
            how: match (fired.close, reset) {
                (Some(how), _) => how,
                (None, true) => CloseHow::Reset,
                (None, false) => CloseHow::Fin,
            },
            end: ConnectionEnd::Dropped,
        }),
        Action::Legacy(LegacyAction::Stall { for_ms }) => Some(Effect::Stall(
            for_ms.map(|ms| now + Duration::from_millis(ms)),
        )),
        Action::Legacy(LegacyAction::Throttle { bytes_per_sec }) => {
            Some(Effect::Throttle((*bytes_per_sec).max(1)))
        }
        Action::Accept | Action::Legacy(LegacyAction::Error { .. }) | Action::Http2(_) => None,
    }
}

/// Lifts a decoded legacy frame into the protocol-neutral notification the engine and journal use.
/// Token and payload keep sharing `n`'s storage (the session itself journals exact-size copies).
pub fn to_notification(n: &LegacyNotification, topic: Option<&Arc<str>>) -> Notification {
    let simple = n.command == Command::Simple;
    Notification {
        token: DeviceToken::from_bytes(n.token.clone()),
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
    engine: &Engine,
    devices: Option<u64>,
    connection: u64,
    environment: Environment,
    n: Notification,
    out: &mut Vec<Effect>,
) {
    let extra = match devices {
        Some(now_ms) => engine.device_events(
            Origin {
                protocol: Protocol::Legacy,
                environment,
            },
            &n,
            now_ms,
        ),
        None => Vec::new(),
    };
    out.push(Effect::Journal(accepted_event(connection, environment, n)));
    out.extend(
        extra
            .into_iter()
            .map(|d| Effect::Journal(d.into_event(connection))),
    );
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
        token: DeviceToken::from_bytes(token),
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

#[cfg(test)]
mod tests;
