//! APNs over HTTP/2 (PROTOCOL.md Part 2) on one TLS connection: the handler turns each request
//! into a `Notification` or a `Reason`, asks the engine, journals, and answers as Apple does.
//! Framing and flow control live in `conn`; validation in `request` and `auth`; this file wires.

use crate::engine::devices::Origin;
use crate::engine::rules::{Action, Fired, Http2Action, LastStreamId};
use crate::engine::{ConnState, Refusal, Verdict};
use crate::http2::auth::{AuthSettings, TokenAuth};
use crate::http2::conn::{ConnConfig, Event, Request, SettingsUpdate};
use crate::http2::driver::{self, Command, ConnHandle, Handler, Response};
use crate::http2::frame::ErrorCode;
use crate::http2::hpack::HeaderField;
use crate::http2::reason::{self, Reason};
use crate::http2::request::{self, ConnAuth, RequestContext, RequestSettings};
use crate::http2::state;
pub use crate::http2::state::{ConnectionInfo, Http2State, Observations};
use crate::journal::{ConnectionEnd, EventKind, NewEvent};
use crate::model::{AuthKind, DeviceToken, Environment, Notification, Protocol};
use crate::runtime::{Core, Shutdown};
use crate::settings::Settings;
use crate::tls::ClientIdentity;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tracing::{debug, info_span, Instrument};

mod broadcast;

/// Counts a client GOAWAY or RST_STREAM; returns the count so far.
fn count_reset(observations: &Mutex<Observations>) -> u64 {
    let mut o = observations.lock();
    o.client_resets += 1;
    o.client_resets
}

/// The request settings the emulator's settings imply (PROTOCOL.md 2.3–2.5, Part 3).
fn request_settings(s: &Settings) -> RequestSettings {
    RequestSettings {
        strict_token_len: s.http2_strict_token_length,
        max_payload: s.http2_max_payload,
        max_payload_voip: s.http2_max_payload_voip,
        ..RequestSettings::default()
    }
}

/// Serves one TCP connection of an HTTP/2 listener until it ends.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    core: Arc<Core>,
    listener_env: Environment,
    shutdown: Shutdown,
) {
    let id = core.next_connection_id();
    async move {
        let Some((tls, hs)) = crate::runtime::handshake(
            &core,
            &core.http2_tls,
            stream,
            id,
            Protocol::Http2,
            listener_env,
            peer,
        )
        .await
        else {
            return;
        };
        let env = hs.environment;
        let auth = if hs.client.is_some() {
            AuthKind::Certificate
        } else {
            AuthKind::Token
        };
        let observations = Arc::new(Mutex::new(Observations {
            alpn: hs.alpn.as_deref() == Some(b"h2"),
            sni: hs.sni.clone(),
            ..Observations::default()
        }));
        let s = &core.settings;
        let cfg = ConnConfig {
            // PROTOCOL.md 2.2 / Part 3: one stream on a token connection until a valid JWT.
            max_concurrent_streams: match auth {
                AuthKind::Token => s.http2_streams_before_auth,
                _ => s.http2_max_streams,
            },
            idle_timeout: (s.http2_idle_timeout_secs > 0)
                .then(|| Duration::from_secs(s.http2_idle_timeout_secs)),
            idle_debug: Bytes::from(reason::goaway_debug(Reason::IdleTimeout)),
            ..ConnConfig::default()
        };
        core.journal.record(
            NewEvent::new(EventKind::ConnectionOpened, id, Protocol::Http2, env).detail(json!({
                "peer": peer.to_string(),
                "sni": hs.sni,
                "alpn": hs.alpn.as_ref().map(|a| String::from_utf8_lossy(a).into_owned()),
                "tls_version": hs.tls_version,
                "auth": auth,
                "topics": hs.client.as_ref().map(|c| c.topics.clone()),
                "certificate_environments": hs.client.as_ref().map(|c| c.environments.clone()),
            })),
        );
        let (handle, commands) = driver::command_channel(64);
        core.http2.live.lock().insert(
            id,
            state::LiveConn {
                handle: handle.clone(),
                environment: env,
                auth,
                observations: observations.clone(),
            },
        );
        let reset = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler = Arc::new(ApnsHandler {
            reset: reset.clone(),
            cut_above: std::sync::atomic::AtomicU32::new(u32::MAX),
            max_decided: std::sync::atomic::AtomicU32::new(0),
            core: core.clone(),
            id,
            environment: env,
            client: hs.client.clone(),
            observations: observations.clone(),
            state: Mutex::new(AuthState {
                token: TokenAuth::with_settings(AuthSettings {
                    future_tolerance_secs: core.settings.jwt_future_tolerance_secs,
                    max_token_age_secs: core.settings.jwt_max_age_secs,
                    min_update_interval_secs: core.settings.jwt_min_update_secs,
                })
                .counting_updates(core.settings.token_update_scope, &core.http2.teams),
                raised: auth == AuthKind::Certificate,
            }),
            settings: request_settings(&core.settings),
        });
        // Graceful shutdown: GOAWAY {"reason":"Shutdown"}, in-flight streams finish (issue 4).
        let stopper = {
            let handle = handle.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.wait().await;
                let _ = handle
                    .send(Command::GoAway {
                        code: ErrorCode::NO_ERROR,
                        last_stream_id: None,
                        debug: Bytes::from(reason::goaway_debug(Reason::Shutdown)),
                    })
                    .await;
            })
        };
        let mut tls = tls;
        // Lent, not given: after an abrupt end we still hold the socket, to reset it if asked.
        let ending = driver::serve_connection(&mut tls, cfg, handler, handle, commands).await;
        if reset.load(std::sync::atomic::Ordering::Acquire) {
            crate::runtime::reset_on_close(&tls);
        }
        drop(tls);
        stopper.abort();
        core.engine.connection_closed(id);
        core.http2.live.lock().remove(&id);
        let obs = observations.lock().clone();
        debug!(?ending, "closed");
        core.journal.record(
            NewEvent::new(EventKind::ConnectionClosed, id, Protocol::Http2, env).detail(json!({
                "cause": ConnectionEnd::from(ending).as_str(),
                "observations": obs,
            })),
        );
    }
    .instrument(info_span!("http2", conn = id, %peer))
    .await
}

struct AuthState {
    token: TokenAuth,
    /// Whether the stream limit has been raised (certificate connections start raised).
    raised: bool,
}

/// The APNs semantics of one connection.
struct ApnsHandler {
    core: Arc<Core>,
    id: u64,
    environment: Environment,
    client: Option<ClientIdentity>,
    observations: Arc<Mutex<Observations>>,
    state: Mutex<AuthState>,
    settings: RequestSettings,
    /// Set by a `close` rule with `reset = true`: end with a TCP reset, not a FIN.
    reset: Arc<std::sync::atomic::AtomicBool>,
    /// Set by a GOAWAY or close rule: requests on streams above this id, already read in the
    /// same batch, are not processed (RFC 9113 6.8; PROTOCOL.md 2.2), so what the server
    /// announced and what it journaled agree.
    cut_above: std::sync::atomic::AtomicU32,
    /// The highest stream id decided so far: clients complete requests out of stream order,
    /// so a GOAWAY's automatic last-stream-id must cover every stream already processed.
    max_decided: std::sync::atomic::AtomicU32,
}

/// The outcome of one request before it is written.
struct Answer {
    /// HTTP status; 0 = no response at all (the stream is left to `then`).
    status: u16,
    reason: Option<Reason>,
    apns_id: String,
    timestamp_ms: Option<u64>,
    then: Vec<Command>,
    /// Hold the answer this long (a `delay` rule, or a rule's own `delay_ms`).
    delay: Option<Duration>,
    /// The scenario rule that shaped this answer, for the journal.
    rule: Option<serde_json::Value>,
    /// Already journaled as discarded (a stream above a GOAWAY's last id): no event, no answer.
    discarded: bool,
}

impl ApnsHandler {
    fn event(&self, kind: EventKind) -> NewEvent {
        NewEvent::new(kind, self.id, Protocol::Http2, self.environment)
    }

    fn observe(&self, f: impl FnOnce(&mut Observations)) {
        f(&mut self.observations.lock());
    }

    fn observe_request(&self, req: &Request) {
        self.observe(|o| {
            o.requests += 1;
            for name in ["authorization", "apns-topic", "apns-id", ":path"] {
                if let Some(field) = req.headers.iter().find(|f| &f.name[..] == name.as_bytes()) {
                    let seen = o.hpack.entry(name.to_string()).or_default();
                    if seen.len() < state::MAX_OBSERVATIONS {
                        seen.push(representation(field));
                    }
                }
            }
        });
    }

    fn generate_id(&self) -> String {
        // Thread-local randomness: `Uuid::new_v4` makes a getrandom system call per answer.
        let id = crate::http2::driver::fast_uuid_v4();
        if self.core.settings.http2_uppercase_apns_id {
            id.to_uppercase()
        } else {
            id
        }
    }

    /// Decides one request: validation (PROTOCOL.md 2.3–2.5, 2.8, 2.9), then the engine.
    fn decide(&self, req: Request) -> (Answer, Option<Notification>) {
        let stream_id = req.stream_id;
        let headers: Vec<(Bytes, Bytes)> = req
            .headers
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect();
        let cut = self.cut_above.load(std::sync::atomic::Ordering::Acquire);
        if stream_id > cut {
            let n = partial_notification(&headers, &req.body);
            let mut e = self
                .event(EventKind::Discarded)
                .detail(json!({ "stream_id": stream_id, "after": "goaway-or-close" }));
            if let Some(n) = n {
                e = e.notification(n);
            }
            self.core.journal.record(e);
            let answer = Answer {
                status: 0,
                reason: None,
                apns_id: String::new(),
                timestamp_ms: None,
                then: Vec::new(),
                delay: None,
                rule: None,
                discarded: true,
            };
            return (answer, None);
        }
        let requested_id = req
            .header("apns-id")
            .filter(|v| request::valid_apns_id(v))
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned);
        if let Some(forced) = *self.core.http2.forced.read() {
            // PROTOCOL.md 2.6: every 410 body carries a timestamp (ms); a forced one says "now".
            let timestamp_ms = (forced.status() == 410).then(|| self.core.clock.now_ms());
            return (
                self.reject(forced, requested_id, timestamp_ms),
                partial_notification(&headers, &req.body),
            );
        }
        // PROTOCOL.md 2.9: a certificate of the other environment gets 403, then GOAWAY and close.
        if let Some(client) = &self.client {
            if !client.covers(self.environment) {
                let mut a = self.reject(Reason::BadCertificateEnvironment, requested_id, None);
                a.then.push(goaway(Reason::BadCertificateEnvironment));
                return (a, partial_notification(&headers, &req.body));
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
            settings: &self.settings,
        };
        let now = self.core.clock.now_secs();
        let body = req.body.clone();
        let (validated, raise) = {
            let mut st = self.state.lock();
            let keys = self.core.http2.keys.read();
            let v = request::validate(
                &headers,
                body,
                &ctx,
                &mut st.token,
                &keys,
                &self.core.http2.cache,
                now,
            );
            // Copied only when it changed: serializing it per request cost ~7% of the HTTP/2 hot path.
            self.observe(|o| {
                if o.jwt != *st.token.quirks() {
                    o.jwt = st.token.quirks().clone();
                }
            });
            // PROTOCOL.md 2.2: the first valid JWT lifts the one-stream limit.
            let raise = !st.raised && st.token.first_valid_seen();
            st.raised |= raise;
            (v, raise)
        };
        let mut answer = match validated {
            Err(rej) => {
                // PROTOCOL.md 2.6: `request` decided whether the id may be echoed
                // (a malformed or repeated apns-id is not).
                let id = rej.apns_id;
                (
                    self.reject(rej.reason, id, None),
                    partial_notification(&headers, &req.body),
                )
            }
            Ok(v) => {
                if let Some(a) = v.auth.as_ref().filter(|a| a.token_changed) {
                    // Only on a change: lets conformance see each refresh (PROTOCOL.md 2.8).
                    self.core
                        .journal
                        .record(self.event(EventKind::Observation).detail(json!({
                            "jwt": { "kid": &*a.key_id, "iss": &*a.team_id, "iat": a.issued_at,
                                     "fingerprint": format!("{:016x}", a.fingerprint) }
                        })));
                }
                self.judge(v.request.into_notification(), stream_id)
            }
        };
        if answer.0.reason == Some(Reason::ExpiredProviderToken) {
            self.state.lock().token.expired();
        }
        self.max_decided
            .fetch_max(stream_id, std::sync::atomic::Ordering::AcqRel);
        if raise {
            answer.0.then.insert(
                0,
                Command::Settings(SettingsUpdate {
                    max_concurrent_streams: Some(self.core.settings.http2_max_streams),
                    ..SettingsUpdate::default()
                }),
            );
        }
        answer
    }

    /// Asks the engine about a well-formed, authenticated notification.
    fn judge(&self, n: Notification, stream_id: u32) -> (Answer, Option<Notification>) {
        let conn = self.conn_state();
        let verdict = self.core.engine.decide(&conn, &n);
        self.carry_out(verdict, n, stream_id)
    }

    fn conn_state(&self) -> ConnState {
        ConnState {
            id: self.id,
            protocol: Protocol::Http2,
            environment: self.environment,
            decided: 0,
        }
    }

    /// A scenario rule's action on one request (PROTOCOL.md 2.2 for what APNs itself was seen doing).
    fn fault(
        &self,
        fired: Fired,
        n: Notification,
        stream_id: u32,
    ) -> (Answer, Option<Notification>) {
        let rule = fired.journal_detail();
        let normal = |this: &Self, n: Notification| {
            let verdict = this.core.engine.default_verdict(&this.conn_state(), &n);
            this.carry_out(verdict, n, stream_id)
        };
        let silent = |this: &Self, n: &Notification, then: Vec<Command>| Answer {
            status: 0,
            reason: None,
            apns_id: n.apns_id.clone().unwrap_or_else(|| this.generate_id()),
            timestamp_ms: None,
            then,
            delay: None,
            rule: None,
            discarded: false,
        };
        let (mut answer, n) = match fired.action {
            Action::Http2(Http2Action::Reject {
                reason,
                status,
                timestamp_ms,
                max_concurrent_streams,
            }) => {
                let ts = timestamp_ms
                    .or_else(|| (reason.status() == 410).then(|| self.core.clock.now_ms()));
                let mut a = self.reject(reason, n.apns_id.clone(), ts);
                if let Some(status) = status {
                    a.status = status;
                }
                if let Some(m) = max_concurrent_streams {
                    a.then.push(settings(m));
                }
                (a, Some(n))
            }
            Action::Http2(Http2Action::Goaway {
                reason,
                code,
                last_stream_id,
                ..
            }) => {
                let debug = debug_data(reason);
                let goaway = |last: u32| Command::GoAway {
                    code,
                    last_stream_id: Some(last),
                    debug: debug.clone(),
                };
                let processed = self.max_decided.load(std::sync::atomic::Ordering::Acquire);
                match last_stream_id {
                    // A higher stream was already processed (requests complete out of order):
                    // this one is processed too, and the GOAWAY that follows its answer covers
                    // both, so what is announced and what was done agree (RFC 9113 6.8).
                    LastStreamId::Auto if processed > stream_id => {
                        self.cut_above
                            .fetch_min(processed, std::sync::atomic::Ordering::AcqRel);
                        let (mut a, n) = normal(self, n);
                        a.then.push(goaway(processed));
                        (a, n)
                    }
                    // This stream is not processed: announce the one before it, unless the rule says.
                    last => {
                        let last = match last {
                            LastStreamId::Auto => stream_id.saturating_sub(2),
                            LastStreamId::Id(id) => id,
                        };
                        self.cut_above
                            .fetch_min(last, std::sync::atomic::Ordering::AcqRel);
                        (silent(self, &n, vec![goaway(last)]), Some(n))
                    }
                }
            }
            Action::Http2(Http2Action::RstStream { code }) => {
                let cmd = Command::Reset { stream_id, code };
                (silent(self, &n, vec![cmd]), Some(n))
            }
            Action::Http2(Http2Action::Close { reset }) => {
                self.reset
                    .fetch_or(reset, std::sync::atomic::Ordering::AcqRel);
                self.cut_above
                    .fetch_min(stream_id, std::sync::atomic::Ordering::AcqRel);
                (silent(self, &n, vec![Command::CloseAbruptly]), Some(n))
            }
            Action::Http2(Http2Action::Delay { ms }) => {
                let (mut a, n) = normal(self, n);
                a.delay = Some(Duration::from_millis(ms));
                (a, n)
            }
            Action::Http2(Http2Action::Settings(s)) => {
                let (mut a, n) = normal(self, n);
                a.then.push(Command::Settings(s));
                (a, n)
            }
            Action::Http2(Http2Action::IgnorePing) => {
                let (mut a, n) = normal(self, n);
                a.then.push(Command::IgnorePing(true));
                (a, n)
            }
            // `accept` (with a delay: Accept without one never reaches here) and legacy-only actions.
            Action::Accept | Action::Legacy(_) => self.carry_out(Verdict::Accept, n, stream_id),
        };
        answer.delay = match (answer.delay, fired.delay) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        answer.rule = Some(rule);
        (answer, n)
    }

    /// Carries out an engine verdict (a rule's action through [`Self::fault`]).
    fn carry_out(
        &self,
        verdict: Verdict,
        mut n: Notification,
        stream_id: u32,
    ) -> (Answer, Option<Notification>) {
        let apns_id = n.apns_id.clone();
        match verdict {
            Verdict::Fault(fired) => self.fault(fired, n, stream_id),
            Verdict::Accept => {
                let id = apns_id.unwrap_or_else(|| self.generate_id());
                n.apns_id = Some(id.clone());
                (
                    Answer {
                        status: 200,
                        reason: None,
                        apns_id: id,
                        timestamp_ms: None,
                        then: Vec::new(),
                        delay: None,
                        rule: None,
                        discarded: false,
                    },
                    Some(n),
                )
            }
            // PROTOCOL.md Part 3: a token of the other environment (or unknown under strict) is BadDeviceToken.
            Verdict::Reject(Refusal::InvalidToken) => {
                (self.reject(Reason::BadDeviceToken, apns_id, None), Some(n))
            }
            // strict_payload (an apnsim extension): the broadcast API's payload reason (PROTOCOL.md 2.11).
            Verdict::Reject(Refusal::LintedPayload) => (
                self.reject(Reason::BadRequestPayload, apns_id, None),
                Some(n),
            ),
            Verdict::Reject(Refusal::TokenNotForTopic) => (
                self.reject(Reason::DeviceTokenNotForTopic, apns_id, None),
                Some(n),
            ),
            // PROTOCOL.md 2.6: 410 with the time APNs learnt the token was gone, in ms.
            Verdict::Reject(Refusal::Unregistered(at)) => (
                self.reject(Reason::Unregistered, apns_id, Some(at)),
                Some(n),
            ),
            Verdict::Drop => {
                let id = apns_id.unwrap_or_else(|| self.generate_id());
                (
                    Answer {
                        status: 0,
                        reason: None,
                        apns_id: id,
                        timestamp_ms: None,
                        then: vec![Command::CloseAbruptly],
                        delay: None,
                        rule: None,
                        discarded: false,
                    },
                    Some(n),
                )
            }
        }
    }

    fn reject(&self, reason: Reason, apns_id: Option<String>, timestamp_ms: Option<u64>) -> Answer {
        let reason = reason.effective(self.core.settings.http2_reasons);
        Answer {
            status: reason.status(),
            reason: Some(reason),
            apns_id: apns_id.unwrap_or_else(|| self.generate_id()),
            timestamp_ms: timestamp_ms
                .filter(|_| reason == Reason::Unregistered || reason == Reason::ExpiredToken),
            then: Vec::new(),
            delay: None,
            rule: None,
            discarded: false,
        }
    }

    /// Journals the outcome (before the client can see it: ARCHITECTURE "Nothing lost") and builds the response.
    fn answer(&self, a: Answer, n: Option<Notification>) -> Option<Response> {
        if a.discarded {
            return None;
        }
        let mut e = match a.reason {
            None if a.status == 200 => self.event(EventKind::Accepted),
            None => self.event(EventKind::Dropped),
            Some(r) => self
                .event(EventKind::Rejected)
                .reason(r.as_str())
                .detail(json!({ "status": a.status, "apns_id": a.apns_id })),
        };
        // The device model follows the accepted event (registered tokens only).
        let devices = match (&n, e.kind) {
            (Some(n), EventKind::Accepted) if self.core.engine.devices_active() => {
                self.core.engine.device_events(
                    Origin {
                        protocol: Protocol::Http2,
                        environment: self.environment,
                    },
                    n,
                    self.core.clock.now_ms(),
                )
            }
            _ => Vec::new(),
        };
        // PROTOCOL.md 2.10: what a device would do with a Live Activity push (not an HTTP matter).
        let live_activity = n
            .as_ref()
            .filter(|_| e.kind == EventKind::Accepted)
            .and_then(crate::broadcast::liveactivity::device_verdict);
        if let Some(n) = n {
            e = e.notification(n);
        }
        if let Some(v) = &live_activity {
            let mut detail = e.detail.take().unwrap_or_else(|| json!({}));
            detail["live_activity"] = json!(v);
            e = e.detail(detail);
        }
        if let Some(rule) = &a.rule {
            let mut detail = e.detail.take().unwrap_or_else(|| json!({}));
            detail["rule"] = rule.clone();
            e = e.detail(detail);
        }
        if devices.is_empty() {
            self.core.journal.record(e);
        } else {
            let id = self.id;
            self.core
                .journal
                .record_batch(std::iter::once(e).chain(devices.into_iter().map(|d| {
                    crate::broadcast::liveactivity::annotate(d.into_event(id), &live_activity)
                })));
        }
        if a.status == 0 {
            return None;
        }
        let mut headers = Vec::with_capacity(3);
        let body = match a.reason {
            // PROTOCOL.md 2.6: success is one HEADERS frame; apns-unique-id on sandbox only.
            None => {
                headers.push(("apns-id".to_string(), a.apns_id));
                if self.environment == Environment::Sandbox {
                    headers.push((
                        "apns-unique-id".to_string(),
                        crate::http2::driver::fast_uuid_v4(),
                    ));
                }
                None
            }
            // PROTOCOL.md 2.6: error = HEADERS with content-type and apns-id, then DATA {"reason":…}.
            Some(r) => {
                headers.push(("content-type".to_string(), "application/json".to_string()));
                headers.push(("apns-id".to_string(), a.apns_id));
                Some(Bytes::from(reason::body(r, a.timestamp_ms)))
            }
        };
        Some(Response {
            status: a.status,
            headers,
            body,
            then: a.then,
        })
    }
}

impl Handler for ApnsHandler {
    /// Connection-level rules (`on = "connect"`): GOAWAY before or after our SETTINGS, new
    /// SETTINGS, ignoring PINGs, closing at once.
    fn on_open(&self, _handle: &ConnHandle) -> Vec<Command> {
        let fired = self.core.engine.on_connection(&self.conn_state());
        let mut commands = Vec::new();
        for f in fired {
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
                    self.reset
                        .fetch_or(reset, std::sync::atomic::Ordering::AcqRel);
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
            self.core
                .journal
                .record(self.event(EventKind::Observation).detail(json!({
                    "rule": f.journal_detail()
                })));
            commands.push(cmd);
        }
        commands
    }

    fn on_event(&self, event: &Event, _handle: &ConnHandle) {
        let note = match event {
            Event::ClientSettings(values) => {
                // A flood of (large) SETTINGS frames is counted, not kept: the first few are
                // journaled, each with at most state::MAX_OBSERVATIONS values (issue 12).
                let kept: Vec<(u16, u32)> = values
                    .iter()
                    .copied()
                    .take(state::MAX_OBSERVATIONS)
                    .collect();
                let n = {
                    let mut o = self.observations.lock();
                    o.settings_frames += 1;
                    o.client_settings.clone_from(&kept);
                    o.settings_frames
                };
                (n <= state::MAX_OBSERVATIONS as u64)
                    .then(|| json!({ "client_settings": kept, "entries": values.len() }))
            }
            Event::Priority { stream_id, .. } => {
                let n = {
                    let mut o = self.observations.lock();
                    o.priority_frames += 1;
                    o.priority_frames
                };
                // Journal the first few only: a client may send thousands.
                (n <= state::MAX_OBSERVATIONS as u64)
                    .then(|| json!({ "priority": { "stream_id": stream_id } }))
            }
            Event::Ping { ack: false, .. } => {
                let n = {
                    let mut o = self.observations.lock();
                    o.pings += 1;
                    o.pings
                };
                // The first few only; the count goes into the connection's record.
                (n <= state::MAX_OBSERVATIONS as u64).then(|| json!({ "ping": true }))
            }
            Event::GoAwayReceived {
                last_stream_id,
                code,
                ..
            } => {
                let n = count_reset(&self.observations);
                (n <= state::MAX_OBSERVATIONS as u64).then(|| {
                    json!({ "client_goaway": { "last_stream_id": last_stream_id, "code": code.0 } })
                })
            }
            Event::StreamReset { stream_id, code } => {
                let n = count_reset(&self.observations);
                (n <= state::MAX_OBSERVATIONS as u64).then(
                    || json!({ "client_rst_stream": { "stream_id": stream_id, "code": code.0 } }),
                )
            }
            Event::StreamError {
                stream_id,
                code: ErrorCode::REFUSED_STREAM,
                ..
            } => {
                let n = {
                    let mut o = self.observations.lock();
                    o.refused_streams += 1;
                    o.refused_streams
                };
                (n <= state::MAX_OBSERVATIONS as u64)
                    .then(|| json!({ "refused_stream": { "stream_id": stream_id } }))
            }
            Event::ConnectionError { code, message } => {
                Some(json!({ "connection_error": { "code": code.0, "message": message } }))
            }
            _ => None,
        };
        if let Some(detail) = note {
            self.core
                .journal
                .record(self.event(EventKind::Observation).detail(detail));
        }
    }

    fn on_request(
        &self,
        req: Request,
        handle: ConnHandle,
    ) -> impl Future<Output = Option<Response>> + Send {
        self.observe_request(&req);
        // PROTOCOL.md 2.11: `/1/…` channel management and `/4/…` broadcasts have their own module.
        if req
            .header(":path")
            .is_some_and(crate::broadcast::request::is_broadcast_path)
        {
            let (response, hold) = self.broadcast(&req);
            return futures_util::future::Either::Left(async move {
                if let Some(d) = hold {
                    tokio::time::sleep(d).await;
                }
                response
            });
        }
        let (mut answer, notification) = self.decide(req);
        let delay = answer.delay.take();
        // No response at all (a drop, GOAWAY, RST_STREAM or close): the commands carry it out.
        let silent = if answer.status == 0 {
            std::mem::take(&mut answer.then)
        } else {
            Vec::new()
        };
        let prepared = (answer, notification);
        let this = self;
        futures_util::future::Either::Right(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let response = this.answer(prepared.0, prepared.1);
            for cmd in silent {
                let _ = handle.send(cmd).await;
            }
            response
        })
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
fn goaway(r: Reason) -> Command {
    Command::GoAway {
        code: ErrorCode::NO_ERROR,
        last_stream_id: None,
        debug: Bytes::from(reason::goaway_debug(r)),
    }
}

/// The notification as far as a rejected request lets us read it, so the journal can be filtered
/// by token even for refusals.
fn partial_notification(headers: &[(Bytes, Bytes)], body: &Bytes) -> Option<Notification> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| &n[..] == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let token = get(":path")?
        .strip_prefix("/3/device/")
        .and_then(DeviceToken::from_hex)?;
    Some(Notification {
        token,
        payload: body.clone(),
        identifier: None,
        expiry: get("apns-expiration").and_then(|v| v.parse().ok()),
        priority: get("apns-priority")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
        topic: get("apns-topic").map(Into::into),
        push_type: get("apns-push-type").map(str::to_owned),
        collapse_id: get("apns-collapse-id").map(str::to_owned),
        apns_id: get("apns-id").map(str::to_owned),
        command: None,
    })
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
