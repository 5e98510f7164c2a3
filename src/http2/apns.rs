//! APNs over HTTP/2, sans-IO: one connection's decisions (PROTOCOL.md Part 2), in the style of
//! quinn-proto's `Connection` under quinn. A request's headers and body go in with the time; a
//! [`Decision`] comes out (an [`Answer`], the notification, a hold, events to journal at once),
//! and [`Session::finish`] turns it into the journal events and the response after the hold.
//!
//! `server.rs` only moves frames and runs what comes back; every answer Apple gives is decided
//! here, so it is unit tested without sockets or sleeps (`apns/tests.rs`).

use crate::engine::devices::Origin;
use crate::engine::rules::{Action, Fired, Http2Action, LastStreamId};
use crate::engine::{ConnState, DefaultVerdict, Engine, Refusal, Verdict};
use crate::http2::auth::TokenAuth;
use crate::http2::conn::{Event, Request, SettingsUpdate};
use crate::http2::driver::{Command, Response};
use crate::http2::frame::ErrorCode;
use crate::http2::hpack::HeaderField;
use crate::http2::reason::{self, CompatSettings, Reason};
use crate::http2::request::{self, ConnAuth, RequestContext, RequestSettings};
use crate::http2::state::{self, Http2State, Observations};
use crate::journal::{EventKind, NewEvent};
use crate::model::{Environment, Notification, Protocol};
use crate::tls::ClientIdentity;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Adds the verdict (when there is one) to a journal event's `detail.live_activity`.
fn annotate_live_activity(
    mut e: crate::journal::NewEvent,
    verdict: &Option<crate::broadcast::liveactivity::Verdict>,
) -> crate::journal::NewEvent {
    if let Some(v) = verdict {
        let mut detail = e.detail.take().unwrap_or_else(|| serde_json::json!({}));
        detail["live_activity"] = serde_json::json!(v);
        e = e.detail(detail);
    }
    e
}

#[cfg(test)]
mod tests;

/// The settings a session answers by (from [`crate::settings::Settings`]).
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Request validation knobs (PROTOCOL.md 2.3–2.5, Part 3).
    pub request: RequestSettings,
    /// Which reasons Apple's older answers are written as (PROTOCOL.md 2.7).
    pub reasons: CompatSettings,
    /// Generate apns-id in uppercase (PROTOCOL.md 2.6 leaves the case to the server).
    pub uppercase_apns_id: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS once a connection is trusted (PROTOCOL.md 2.2).
    pub max_streams: u32,
}

impl SessionConfig {
    /// The configuration the emulator's settings imply (PROTOCOL.md 2.3–2.5, Part 3).
    pub fn from_settings(s: &crate::settings::Settings) -> Self {
        SessionConfig {
            request: RequestSettings {
                strict_token_len: s.http2_strict_token_length,
                max_payload: s.http2_max_payload,
                max_payload_voip: s.http2_max_payload_voip,
                ..RequestSettings::default()
            },
            reasons: s.http2_reasons,
            uppercase_apns_id: s.http2_uppercase_apns_id,
            max_streams: s.http2_max_streams,
        }
    }
}

/// The time a decision is made at (the emulator's clock, which tests and scenarios may shift).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// UNIX seconds (JWT ages, PROTOCOL.md 2.8).
    pub secs: u64,
    /// UNIX milliseconds (410 timestamps, PROTOCOL.md 2.6).
    pub ms: u64,
}

impl Now {
    /// The clock's reading now (read once: both fields are the same instant).
    pub fn of(clock: &crate::clock::Clock) -> Self {
        let ms = clock.now_ms();
        Now {
            secs: ms / 1000,
            ms,
        }
    }
}

/// What the server does with one request (the shape of its answer, before it is journaled).
#[derive(Debug, Clone)]
pub enum Answer {
    /// Answer on the stream: 200 with no reason, else an error (PROTOCOL.md 2.6), then `then`.
    Respond {
        /// HTTP `:status`.
        status: u16,
        /// Apple's reason; `None` for success.
        reason: Option<Reason>,
        /// The apns-id header: the request's own when valid, else generated.
        apns_id: String,
        /// The 410 body's timestamp in ms.
        timestamp_ms: Option<u64>,
        /// Commands right after the response (SETTINGS, GOAWAY).
        then: Vec<Command>,
    },
    /// No answer on the stream (a drop, GOAWAY, RST_STREAM or close): `then` carries it out.
    Silent {
        /// The commands that end the stream or the connection.
        then: Vec<Command>,
    },
    /// A stream above an announced GOAWAY or close: journaled at once as discarded, no answer.
    Discarded,
}

/// One request decided: what to answer, about which notification, after how long.
#[derive(Debug, Clone)]
pub struct Decision {
    /// What to answer.
    pub answer: Answer,
    /// The notification as far as the request could be read (journal filters by token).
    pub notification: Option<Notification>,
    /// Hold the answer this long (a `delay` rule, or a rule's own `delay_ms`).
    pub delay: Option<Duration>,
    /// The scenario rule that shaped the answer (`Fired::journal_detail`).
    pub rule: Option<serde_json::Value>,
    /// Events to journal now, before the hold (a JWT refresh, a discarded stream).
    pub journal: Vec<NewEvent>,
}

/// What the server runs once a decision's hold is over.
#[derive(Debug)]
pub struct Finished {
    /// Journal these, in one batch, before the client can see the answer
    /// (ARCHITECTURE "Nothing lost").
    pub journal: Vec<NewEvent>,
    /// The response to write on the stream.
    pub response: Option<Response>,
    /// Commands to send on the connection (a silent answer's GOAWAY, RST_STREAM, close).
    pub commands: Vec<Command>,
}

/// What a connection-level rule (`on = "connect"`) asks for.
#[derive(Debug, Default)]
pub struct Opened {
    /// One observation per fired rule.
    pub journal: Vec<NewEvent>,
    /// Commands to run before anything is written.
    pub commands: Vec<Command>,
}

/// What the session decides with besides its own state: the engine and the shared HTTP/2 state.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    /// Scenario rules, the registry, the device model.
    pub engine: &'a Engine,
    /// Provider keys, the JWT cache, a forced answer.
    pub http2: &'a Http2State,
}

struct AuthState {
    token: TokenAuth,
    /// Whether the stream limit has been raised (certificate connections start raised).
    raised: bool,
}

/// One HTTP/2 connection's APNs state. Requests of one connection are decided concurrently
/// (each stream's answer may be held), so the state is behind a lock and atomics.
pub struct Session {
    id: u64,
    environment: Environment,
    client: Option<ClientIdentity>,
    config: SessionConfig,
    auth: Mutex<AuthState>,
    observations: Arc<Mutex<Observations>>,
    /// Set by a `close` rule with `reset = true`: end with a TCP reset, not a FIN.
    reset: AtomicBool,
    /// Set by a GOAWAY or close rule: requests on streams above this id, already read in the
    /// same batch, are not processed (RFC 9113 6.8; PROTOCOL.md 2.2), so what the server
    /// announced and what it journaled agree.
    cut_above: AtomicU32,
    /// The highest stream id decided so far: clients complete requests out of stream order,
    /// so a GOAWAY's automatic last-stream-id must cover every stream already processed.
    max_decided: AtomicU32,
}

impl Session {
    /// A session for connection `id`, authenticated by `client` (a certificate) or by JWTs
    /// checked with `token`.
    pub fn new(
        id: u64,
        environment: Environment,
        client: Option<ClientIdentity>,
        config: SessionConfig,
        token: TokenAuth,
        observations: Arc<Mutex<Observations>>,
    ) -> Self {
        let raised = client.is_some();
        Session {
            id,
            environment,
            client,
            config,
            auth: Mutex::new(AuthState { token, raised }),
            observations,
            reset: AtomicBool::new(false),
            cut_above: AtomicU32::new(u32::MAX),
            max_decided: AtomicU32::new(0),
        }
    }

    /// The connection id (journal `connection`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The TLS SNI the client sent, if any.
    pub fn sni(&self) -> Option<String> {
        self.observations.lock().sni.clone()
    }

    /// The environment served.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The client certificate, on a certificate connection.
    pub fn client(&self) -> Option<&ClientIdentity> {
        self.client.as_ref()
    }

    /// Whether a rule asked to end the connection with a TCP reset.
    pub fn wants_reset(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }

    /// A journal event of this connection.
    pub fn event(&self, kind: EventKind) -> NewEvent {
        NewEvent::new(kind, self.id, Protocol::Http2, self.environment)
    }

    /// What the engine knows of this connection.
    pub fn conn_state(&self) -> ConnState {
        ConnState {
            id: self.id,
            protocol: Protocol::Http2,
            environment: self.environment,
            decided: 0,
        }
    }

    /// A fresh apns-id (PROTOCOL.md 2.6; the case as configured).
    pub fn generate_id(&self) -> String {
        // Thread-local randomness: `Uuid::new_v4` makes a getrandom system call per answer.
        let id = crate::http2::driver::fast_uuid_v4();
        if self.config.uppercase_apns_id {
            id.to_uppercase()
        } else {
            id
        }
    }

    /// Runs `f` on the connection's JWT state.
    pub fn with_token<T>(&self, f: impl FnOnce(&mut TokenAuth) -> T) -> T {
        f(&mut self.auth.lock().token)
    }

    /// Whether the stream limit rises now: the first valid JWT was just seen (PROTOCOL.md 2.2).
    /// True once per connection.
    pub fn take_raise(&self) -> bool {
        let mut st = self.auth.lock();
        let raise = !st.raised && st.token.first_valid_seen();
        st.raised |= raise;
        raise
    }

    /// New SETTINGS lifting the one-stream limit of an untrusted token connection (PROTOCOL.md 2.2).
    pub fn raise_command(&self) -> Command {
        settings(self.config.max_streams)
    }

    /// Connection-level rules (`on = "connect"`): GOAWAY before or after our SETTINGS, new
    /// SETTINGS, ignoring PINGs, closing at once.
    pub fn open(&self, engine: &Engine) -> Opened {
        let mut out = Opened::default();
        for f in engine.on_connection(&self.conn_state()) {
            let cmd = match f.action {
                Action::Http2(Http2Action::Goaway {
                    reason,
                    code,
                    last_stream_id,
                    before_settings,
                }) => {
                    let debug = debug_data(reason);
                    if before_settings {
                        Command::GoAwayBeforeSettings { code, debug }
                    } else {
                        let last = match last_stream_id {
                            LastStreamId::Auto => 0,
                            LastStreamId::Id(id) => id,
                        };
                        Command::GoAway {
                            code,
                            last_stream_id: Some(last),
                            debug,
                        }
                    }
                }
                Action::Http2(Http2Action::Settings(s)) => Command::Settings(s),
                Action::Http2(Http2Action::IgnorePing) => Command::IgnorePing(true),
                Action::Http2(Http2Action::Close { reset }) => {
                    self.reset.fetch_or(reset, Ordering::AcqRel);
                    Command::CloseAbruptly
                }
                // Not connection-capable, or not HTTP/2: never fired on an HTTP/2 connect.
                Action::Accept
                | Action::Legacy(_)
                | Action::Http2(
                    Http2Action::Reject { .. }
                    | Http2Action::RstStream { .. }
                    | Http2Action::Delay { .. },
                ) => continue,
            };
            out.journal.push(
                self.event(EventKind::Observation)
                    .detail(json!({ "rule": f.journal_detail() })),
            );
            out.commands.push(cmd);
        }
        out
    }

    /// Counts a request and how its headers were encoded (PROTOCOL.md 2.2, HPACK advice).
    pub fn observe_request(&self, req: &Request) {
        let mut o = self.observations.lock();
        o.requests += 1;
        for name in ["authorization", "apns-topic", "apns-id", ":path"] {
            // Full after the first few requests: nothing to look up or allocate any more.
            if o.hpack
                .get(name)
                .is_some_and(|seen| seen.len() >= state::MAX_OBSERVATIONS)
            {
                continue;
            }
            if let Some(field) = req.headers.iter().find(|f| &f.name[..] == name.as_bytes()) {
                let r = representation(field);
                match o.hpack.get_mut(name) {
                    Some(seen) => seen.push(r),
                    None => {
                        o.hpack.insert(name.to_string(), vec![r]);
                    }
                }
            }
        }
    }

    /// Counts a connection event conformance grades; the first few of each kind are journaled
    /// (a client may send thousands: issue 12).
    pub fn observe_event(&self, event: &Event) -> Option<NewEvent> {
        const KEEP: u64 = state::MAX_OBSERVATIONS as u64;
        let mut o = self.observations.lock();
        let detail = match event {
            Event::ClientSettings(values) => {
                // Counted, not kept: each journaled with at most MAX_OBSERVATIONS values.
                let kept: Vec<(u16, u32)> = values
                    .iter()
                    .copied()
                    .take(state::MAX_OBSERVATIONS)
                    .collect();
                o.settings_frames += 1;
                o.client_settings.clone_from(&kept);
                (o.settings_frames <= KEEP)
                    .then(|| json!({ "client_settings": kept, "entries": values.len() }))
            }
            Event::Priority { stream_id, .. } => {
                o.priority_frames += 1;
                (o.priority_frames <= KEEP)
                    .then(|| json!({ "priority": { "stream_id": stream_id } }))
            }
            Event::Ping { ack: false, .. } => {
                o.pings += 1;
                (o.pings <= KEEP).then(|| json!({ "ping": true }))
            }
            Event::GoAwayReceived {
                last_stream_id,
                code,
                ..
            } => {
                o.client_resets += 1;
                (o.client_resets <= KEEP).then(|| {
                    json!({ "client_goaway": { "last_stream_id": last_stream_id, "code": code.0 } })
                })
            }
            Event::StreamReset { stream_id, code } => {
                o.client_resets += 1;
                (o.client_resets <= KEEP).then(
                    || json!({ "client_rst_stream": { "stream_id": stream_id, "code": code.0 } }),
                )
            }
            Event::StreamError {
                stream_id,
                code: ErrorCode::REFUSED_STREAM,
                ..
            } => {
                o.refused_streams += 1;
                (o.refused_streams <= KEEP)
                    .then(|| json!({ "refused_stream": { "stream_id": stream_id } }))
            }
            Event::ConnectionError { code, message } => {
                Some(json!({ "connection_error": { "code": code.0, "message": message } }))
            }
            _ => None,
        };
        drop(o);
        detail.map(|d| self.event(EventKind::Observation).detail(d))
    }

    /// Decides one `/3/device` request: validation (PROTOCOL.md 2.3–2.5, 2.8, 2.9), then the engine.
    pub fn decide(&self, deps: Deps<'_>, req: &Request, now: Now) -> Decision {
        let stream_id = req.stream_id;
        let headers = &req.headers[..];
        let partial = || request::partial_notification(headers, &req.body);
        if stream_id > self.cut_above.load(Ordering::Acquire) {
            let mut e = self
                .event(EventKind::Discarded)
                .detail(json!({ "stream_id": stream_id, "after": "goaway-or-close" }));
            if let Some(n) = partial() {
                e = e.notification(n);
            }
            return Decision {
                answer: Answer::Discarded,
                notification: None,
                delay: None,
                rule: None,
                journal: vec![e],
            };
        }
        let requested_id = req
            .header("apns-id")
            .filter(|v| request::valid_apns_id(v))
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned);
        if let Some(forced) = *deps.http2.forced.read() {
            // PROTOCOL.md 2.6: every 410 body carries a timestamp (ms); a forced one says "now".
            let timestamp_ms = (forced.status() == 410).then_some(now.ms);
            return self.plain(self.reject(forced, requested_id, timestamp_ms), partial());
        }
        // PROTOCOL.md 2.9: a certificate of the other environment gets 403, then GOAWAY and close.
        if let Some(client) = &self.client {
            if !client.covers(self.environment) {
                let mut a = self.reject(Reason::BadCertificateEnvironment, requested_id, None);
                push_then(&mut a, goaway(Reason::BadCertificateEnvironment));
                return self.plain(a, partial());
            }
        }
        let auth = match &self.client {
            Some(c) => ConnAuth::Certificate {
                topics: c.topics.clone(),
                environments: c.environments.clone(),
            },
            None => ConnAuth::Token,
        };
        let ctx = RequestContext {
            environment: self.environment,
            auth: &auth,
            settings: &self.config.request,
        };
        let validated = self.with_token(|token| {
            let keys = deps.http2.keys.read();
            let v = request::validate(
                headers,
                req.body.clone(),
                &ctx,
                token,
                &keys,
                &deps.http2.cache,
                now.secs,
            );
            // Copied only when it changed: serializing it per request cost ~7% of the HTTP/2 hot path.
            let mut o = self.observations.lock();
            if o.jwt != *token.quirks() {
                o.jwt = token.quirks().clone();
            }
            v
        });
        let raise = self.take_raise();
        let mut decision = match validated {
            // PROTOCOL.md 2.6: `request` decided whether the id may be echoed (a malformed or
            // repeated apns-id is not).
            Err(rej) => self.plain(self.reject(rej.reason, rej.apns_id, None), partial()),
            Ok(v) => {
                let mut d = self.judge(deps.engine, v.request.into_notification(), stream_id, now);
                if let Some(a) = v.auth.as_ref().filter(|a| a.token_changed) {
                    // Only on a change: lets conformance see each refresh (PROTOCOL.md 2.8).
                    d.journal
                        .push(self.event(EventKind::Observation).detail(json!({
                            "jwt": { "kid": &*a.key_id, "iss": &*a.team_id, "iat": a.issued_at,
                                     "fingerprint": format!("{:016x}", a.fingerprint) }
                        })));
                }
                d
            }
        };
        if let Answer::Respond {
            reason: Some(Reason::ExpiredProviderToken),
            ..
        } = decision.answer
        {
            self.auth.lock().token.expired();
        }
        self.max_decided.fetch_max(stream_id, Ordering::AcqRel);
        if raise {
            match &mut decision.answer {
                Answer::Respond { then, .. } | Answer::Silent { then } => {
                    then.insert(0, self.raise_command())
                }
                Answer::Discarded => {}
            }
        }
        decision
    }

    /// A decision with no rule and no hold.
    fn plain(&self, answer: Answer, notification: Option<Notification>) -> Decision {
        Decision {
            answer,
            notification,
            delay: None,
            rule: None,
            journal: Vec::new(),
        }
    }

    /// Asks the engine about a well-formed, authenticated notification.
    fn judge(&self, engine: &Engine, n: Notification, stream_id: u32, now: Now) -> Decision {
        match engine.decide(&self.conn_state(), &n) {
            Verdict::Accept => self.verdict(DefaultVerdict::Accept, n),
            Verdict::Reject(r) => self.verdict(DefaultVerdict::Reject(r), n),
            Verdict::Drop => self.plain(
                Answer::Silent {
                    then: vec![Command::CloseAbruptly],
                },
                Some(n),
            ),
            Verdict::Fault(fired) => self.fault(engine, fired, n, stream_id, now),
        }
    }

    /// Apple's own answer to a verdict no rule shaped (PROTOCOL.md 2.6, Part 3).
    fn verdict(&self, v: DefaultVerdict, mut n: Notification) -> Decision {
        let apns_id = n.apns_id.clone();
        let answer = match v {
            DefaultVerdict::Accept => {
                let id = apns_id.unwrap_or_else(|| self.generate_id());
                n.apns_id = Some(id.clone());
                Answer::Respond {
                    status: 200,
                    reason: None,
                    apns_id: id,
                    timestamp_ms: None,
                    then: Vec::new(),
                }
            }
            // PROTOCOL.md Part 3: a token of the other environment (or unknown under strict) is BadDeviceToken.
            DefaultVerdict::Reject(Refusal::InvalidToken) => {
                self.reject(Reason::BadDeviceToken, apns_id, None)
            }
            // strict_payload (an apnsim extension): the broadcast API's payload reason (PROTOCOL.md 2.11).
            DefaultVerdict::Reject(Refusal::LintedPayload) => {
                self.reject(Reason::BadRequestPayload, apns_id, None)
            }
            DefaultVerdict::Reject(Refusal::TokenNotForTopic) => {
                self.reject(Reason::DeviceTokenNotForTopic, apns_id, None)
            }
            // PROTOCOL.md 2.6: 410 with the time APNs learnt the token was gone, in ms.
            DefaultVerdict::Reject(Refusal::Unregistered(at)) => {
                self.reject(Reason::Unregistered, apns_id, Some(at))
            }
        };
        self.plain(answer, Some(n))
    }

    /// A scenario rule's action on one request (PROTOCOL.md 2.2 for what APNs itself was seen
    /// doing). Actions that answer "as usual" take Apple's default verdict, never the rules again.
    fn fault(
        &self,
        engine: &Engine,
        fired: Fired,
        n: Notification,
        stream_id: u32,
        now: Now,
    ) -> Decision {
        let normal =
            |n: Notification| self.verdict(engine.default_verdict(&self.conn_state(), &n), n);
        let silent = |then: Command, n: Notification| {
            self.plain(Answer::Silent { then: vec![then] }, Some(n))
        };
        let mut d = match fired.action.clone() {
            Action::Http2(Http2Action::Reject {
                reason,
                status,
                timestamp_ms,
                max_concurrent_streams,
            }) => {
                let ts = timestamp_ms.or_else(|| (reason.status() == 410).then_some(now.ms));
                let mut a = self.reject(reason, n.apns_id.clone(), ts);
                if let (Some(s), Answer::Respond { status, .. }) = (status, &mut a) {
                    *status = s;
                }
                if let Some(m) = max_concurrent_streams {
                    push_then(&mut a, settings(m));
                }
                self.plain(a, Some(n))
            }
            Action::Http2(
                a @ (Http2Action::Goaway { .. }
                | Http2Action::RstStream { .. }
                | Http2Action::Close { .. }),
            ) => match self.cut(&a, stream_id) {
                Some(Cut::After(cmd)) => {
                    let mut d = normal(n);
                    push_then(&mut d.answer, cmd);
                    d
                }
                Some(Cut::Silent(cmd)) => silent(cmd, n),
                None => unreachable!("cut covers GOAWAY, RST_STREAM and close"),
            },
            Action::Http2(Http2Action::Delay { ms }) => {
                let mut d = normal(n);
                d.delay = Some(Duration::from_millis(ms));
                d
            }
            Action::Http2(Http2Action::Settings(s)) => {
                let mut d = normal(n);
                push_then(&mut d.answer, Command::Settings(s));
                d
            }
            Action::Http2(Http2Action::IgnorePing) => {
                let mut d = normal(n);
                push_then(&mut d.answer, Command::IgnorePing(true));
                d
            }
            // `accept` (with a delay: Accept without one is a plain verdict) and legacy-only actions.
            Action::Accept | Action::Legacy(_) => self.verdict(DefaultVerdict::Accept, n),
        };
        d.delay = match (d.delay, fired.delay) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        d.rule = Some(fired.journal_detail());
        d
    }

    /// Whether a request on `stream_id` comes after a scripted GOAWAY or close: it is discarded.
    pub fn is_cut(&self, stream_id: u32) -> bool {
        stream_id > self.cut_above.load(Ordering::Acquire)
    }

    /// Records that the request on `stream_id` was decided, so an honest GOAWAY covers it.
    pub fn decided(&self, stream_id: u32) {
        self.max_decided.fetch_max(stream_id, Ordering::AcqRel);
    }

    /// How a scripted GOAWAY, RST_STREAM or close ends the request on `stream_id`, whatever API
    /// it is on (PROTOCOL.md 2.2), with the stream bookkeeping; `None` for any other action.
    pub fn cut(&self, action: &Http2Action, stream_id: u32) -> Option<Cut> {
        Some(match *action {
            Http2Action::Goaway {
                reason,
                code,
                last_stream_id,
                ..
            } => {
                let goaway = |last: u32| Command::GoAway {
                    code,
                    last_stream_id: Some(last),
                    debug: debug_data(reason),
                };
                let processed = self.max_decided.load(Ordering::Acquire);
                match last_stream_id {
                    // A higher stream was already processed (requests complete out of order):
                    // this one is processed too, and the GOAWAY that follows its answer covers
                    // both, so what is announced and what was done agree (RFC 9113 6.8).
                    LastStreamId::Auto if processed > stream_id => {
                        self.cut_above.fetch_min(processed, Ordering::AcqRel);
                        Cut::After(goaway(processed))
                    }
                    // This stream is not processed: announce the one before it, unless the rule says.
                    last => {
                        let last = match last {
                            LastStreamId::Auto => stream_id.saturating_sub(2),
                            LastStreamId::Id(id) => id,
                        };
                        self.cut_above.fetch_min(last, Ordering::AcqRel);
                        Cut::Silent(goaway(last))
                    }
                }
            }
            Http2Action::RstStream { code } => Cut::Silent(Command::Reset { stream_id, code }),
            Http2Action::Close { reset } => {
                self.reset.fetch_or(reset, Ordering::AcqRel);
                self.cut_above.fetch_min(stream_id, Ordering::AcqRel);
                Cut::Silent(Command::CloseAbruptly)
            }
            _ => return None,
        })
    }

    /// Refuses with Apple's reason (as the compatibility settings write it, PROTOCOL.md 2.7).
    fn reject(&self, reason: Reason, apns_id: Option<String>, timestamp_ms: Option<u64>) -> Answer {
        let reason = reason.effective(self.config.reasons);
        Answer::Respond {
            status: reason.status(),
            reason: Some(reason),
            apns_id: apns_id.unwrap_or_else(|| self.generate_id()),
            timestamp_ms: timestamp_ms
                .filter(|_| reason == Reason::Unregistered || reason == Reason::ExpiredToken),
            then: Vec::new(),
        }
    }

    /// After the hold: the journal events (the outcome, then what registered devices did) and
    /// the response. The events must be recorded before the response is written.
    pub fn finish(&self, engine: &Engine, d: Decision, now_ms: u64) -> Finished {
        let Decision {
            answer,
            notification: n,
            rule,
            ..
        } = d;
        let mut e = match &answer {
            Answer::Discarded => {
                return Finished {
                    journal: Vec::new(),
                    response: None,
                    commands: Vec::new(),
                }
            }
            Answer::Silent { .. } => self.event(EventKind::Dropped),
            Answer::Respond { reason: None, .. } => self.event(EventKind::Accepted),
            Answer::Respond {
                status,
                reason: Some(r),
                apns_id,
                ..
            } => self
                .event(EventKind::Rejected)
                .status(*status, r.as_str())
                .detail(json!({ "apns_id": apns_id })),
        };
        let accepted = e.kind == EventKind::Accepted;
        // The device model follows the accepted event (registered tokens only).
        let devices = match &n {
            Some(n) if accepted && engine.devices_active() => engine.device_events(
                Origin {
                    protocol: Protocol::Http2,
                    environment: self.environment,
                },
                n,
                now_ms,
            ),
            _ => Vec::new(),
        };
        // PROTOCOL.md 2.10: what a device would do with a Live Activity push (not an HTTP matter).
        let live_activity = n
            .as_ref()
            .filter(|_| accepted)
            .and_then(crate::broadcast::liveactivity::device_verdict);
        if let Some(n) = n {
            e = e.notification(n);
        }
        if let Some(v) = &live_activity {
            let mut detail = e.detail.take().unwrap_or_else(|| json!({}));
            detail["live_activity"] = json!(v);
            e = e.detail(detail);
        }
        if let Some(rule) = rule {
            let mut detail = e.detail.take().unwrap_or_else(|| json!({}));
            detail["rule"] = rule;
            e = e.detail(detail);
        }
        let mut journal = Vec::with_capacity(1 + devices.len());
        journal.push(e);
        journal.extend(
            devices
                .into_iter()
                .map(|d| annotate_live_activity(d.into_event(self.id), &live_activity)),
        );
        let (response, commands) = match answer {
            Answer::Discarded => unreachable!("returned above"),
            Answer::Silent { then } => (None, then),
            Answer::Respond {
                status,
                reason,
                apns_id,
                timestamp_ms,
                then,
            } => (
                Some(self.response(status, reason, apns_id, timestamp_ms, then)),
                Vec::new(),
            ),
        };
        Finished {
            journal,
            response,
            commands,
        }
    }

    /// The HTTP answer (PROTOCOL.md 2.6).
    fn response(
        &self,
        status: u16,
        reason: Option<Reason>,
        apns_id: String,
        timestamp_ms: Option<u64>,
        then: Vec<Command>,
    ) -> Response {
        let mut headers = Vec::with_capacity(3);
        let body = match reason {
            // PROTOCOL.md 2.6: success is one HEADERS frame; apns-unique-id on sandbox only.
            None => {
                headers.push(("apns-id".into(), apns_id));
                if self.environment == Environment::Sandbox {
                    headers.push((
                        "apns-unique-id".into(),
                        crate::http2::driver::fast_uuid_v4(),
                    ));
                }
                None
            }
            // PROTOCOL.md 2.6: error = HEADERS with content-type and apns-id, then DATA {"reason":…}.
            Some(r) => {
                headers.push(("content-type".into(), "application/json".to_string()));
                headers.push(("apns-id".into(), apns_id));
                Some(Bytes::from(reason::body(r, timestamp_ms)))
            }
        };
        Response {
            status,
            headers,
            body,
            then,
        }
    }
}

/// How a scripted GOAWAY, RST_STREAM or close ends a request ([`Session::cut`]).
#[derive(Debug)]
pub enum Cut {
    /// Do not answer; run this instead.
    Silent(Command),
    /// Answer as usual, then run this (a GOAWAY that covers a request already processed).
    After(Command),
}

/// Appends a command to run after the answer (nothing for a discarded stream).
fn push_then(a: &mut Answer, cmd: Command) {
    match a {
        Answer::Respond { then, .. } | Answer::Silent { then } => then.push(cmd),
        Answer::Discarded => {}
    }
}

/// New SETTINGS with this stream limit (PROTOCOL.md 2.2: APNs drops to 1 after a rejection).
fn settings(max_concurrent_streams: u32) -> Command {
    Command::Settings(SettingsUpdate {
        max_concurrent_streams: Some(max_concurrent_streams),
        ..SettingsUpdate::default()
    })
}

/// GOAWAY debug data for a rule: `{"reason":…}` when it names one (PROTOCOL.md 2.2), else empty.
fn debug_data(r: Option<Reason>) -> Bytes {
    r.map(|r| Bytes::from(reason::goaway_debug(r)))
        .unwrap_or_default()
}

/// GOAWAY carrying `{"reason":…}` (PROTOCOL.md 2.2).
pub fn goaway(r: Reason) -> Command {
    Command::GoAway {
        code: ErrorCode::NO_ERROR,
        last_stream_id: None,
        debug: Bytes::from(reason::goaway_debug(r)),
    }
}

/// How a field was encoded, as conformance reports it.
fn representation(f: &HeaderField) -> String {
    let r = serde_json::to_value(f.representation)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    if f.huffman {
        format!("{r}+huffman")
    } else {
        r
    }
}
