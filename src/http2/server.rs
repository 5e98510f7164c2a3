//! APNs over HTTP/2 (PROTOCOL.md Part 2) on one TLS connection, the network side: the TLS
//! handshake, the connection's journal records, and running what [`apns::Session`] decides
//! (journal events, responses, commands, holds). Framing and flow control live in `conn` and
//! `driver`; every APNs decision lives in `apns`.

use crate::http2::apns;
use crate::http2::auth::{AuthSettings, TokenAuth};
use crate::http2::conn::{ConnConfig, Event, Request};
use crate::http2::driver::{self, Command, ConnHandle, Handler, Response};
use crate::http2::frame::ErrorCode;
use crate::http2::reason::{self, Reason};
use crate::http2::state;
pub use crate::http2::state::{ConnectionInfo, Http2State, Observations};
use crate::journal::{ConnectionEnd, EventKind, NewEvent};
use crate::model::{AuthKind, Environment, Protocol};
use crate::runtime::{Core, Shutdown};
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
        let session = Arc::new(apns::Session::new(
            id,
            env,
            hs.client.clone(),
            apns::SessionConfig::from_settings(&core.settings),
            TokenAuth::with_settings(AuthSettings {
                future_tolerance_secs: core.settings.jwt_future_tolerance_secs,
                max_token_age_secs: core.settings.jwt_max_age_secs,
                min_update_interval_secs: core.settings.jwt_min_update_secs,
                age_from_first_use: core.settings.jwt_age_from_first_use,
            })
            .counting_updates(core.settings.token_update_scope, &core.http2.teams),
            observations.clone(),
        ));
        let handler = Arc::new(ApnsHandler {
            core: core.clone(),
            apns: session.clone(),
            pending: Mutex::new(Vec::new()),
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
        let ending =
            driver::serve_connection(&mut tls, cfg, handler.clone(), handle, commands).await;
        // What the last read decided, when the connection ended before its batch was closed.
        handler.on_batch_end();
        if session.wants_reset() {
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

/// The APNs semantics of one connection: the [`apns::Session`] and the shared state it decides with.
struct ApnsHandler {
    core: Arc<Core>,
    apns: Arc<apns::Session>,
    /// Journal events of the requests and connection events of the current read, appended in
    /// one batch (one lock, one wake of the journal's waiters) before their answers are written.
    pending: Mutex<Vec<NewEvent>>,
}

impl ApnsHandler {
    /// Queues events for the journal's next batch, in order.
    fn journal(&self, events: impl IntoIterator<Item = NewEvent>) {
        self.pending.lock().extend(events);
    }

    fn deps(&self) -> apns::Deps<'_> {
        apns::Deps {
            engine: &self.core.engine,
            http2: &self.core.http2,
        }
    }
}

impl Handler for ApnsHandler {
    fn on_open(&self, _handle: &ConnHandle) -> Vec<Command> {
        let opened = self.apns.open(&self.core.engine);
        for e in opened.journal {
            self.core.journal.record(e);
        }
        opened.commands
    }

    fn on_event(&self, event: &Event, _handle: &ConnHandle) {
        if let Some(e) = self.apns.observe_event(event) {
            self.journal(Some(e));
        }
    }

    fn on_batch_end(&self) {
        let events = {
            let mut pending = self.pending.lock();
            if pending.is_empty() {
                return;
            }
            std::mem::take(&mut *pending)
        };
        self.core.journal.record_batch(events);
    }

    fn on_request(
        &self,
        req: Request,
        handle: ConnHandle,
    ) -> impl Future<Output = Option<Response>> + Send {
        self.apns.observe_request(&req);
        // PROTOCOL.md 2.11: `/1/…` channel management and `/4/…` broadcasts have their own module.
        // PROTOCOL.md 2.11: so does any request to the management host (it serves nothing else).
        let path = req.header(":path").unwrap_or_default();
        // `:authority` first: the SNI (behind a lock) only when a request has none.
        let host = |name: Option<&str>| name.map(crate::broadcast::request::Host::named);
        let manage = match host(
            req.header(":authority")
                .and_then(|v| std::str::from_utf8(v).ok()),
        ) {
            Some(h) => h,
            None => {
                host(self.apns.sni().as_deref()).unwrap_or(crate::broadcast::request::Host::Other)
            }
        } == crate::broadcast::request::Host::Manage;
        if crate::broadcast::request::is_broadcast_path(path) || manage {
            // The broadcast module journals directly: what this read queued goes first.
            self.on_batch_end();
            let out = self.broadcast(&req);
            return futures_util::future::Either::Left(async move {
                if let Some(d) = out.hold {
                    tokio::time::sleep(d).await;
                }
                for cmd in out.commands {
                    let _ = handle.send(cmd).await;
                }
                out.response
            });
        }
        let now = apns::Now::of(&self.core.clock);
        let mut decision = self.apns.decide(self.deps(), &req, now);
        self.journal(std::mem::take(&mut decision.journal));
        let core = &self.core;
        let apns = &self.apns;
        futures_util::future::Either::Right(async move {
            // The clock is read again only when a rule's delay passed since the decision.
            let ms = match decision.delay {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    core.clock.now_ms()
                }
                None => now.ms,
            };
            let done = apns.finish(&core.engine, decision, ms);
            // Appended with the rest of the read (on_batch_end), before the answer is written.
            self.journal(done.journal);
            for cmd in done.commands {
                let _ = handle.send(cmd).await;
            }
            done.response
        })
    }
}
