//! What every listener shares at run time (settings, engine, journal, TLS configs) and the
//! accept loops that hand each connection to its protocol's loop.

use crate::clock::Clock;
use crate::engine::rules::RuleSet;
use crate::engine::scenario::Scenario;
use crate::engine::Engine;
use crate::journal::Journal;
use crate::model::{DeviceToken, Environment};
use crate::scenario_host::{KeyFiles, LoadError, LoadedScenario};
use crate::settings::Settings;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::warn;

/// State shared by all listeners of one emulator.
pub(crate) struct Core {
    pub settings: Settings,
    pub engine: Engine,
    pub journal: Journal,
    pub clock: Clock,
    pub legacy_tls: crate::acceptor::LegacyTls,
    pub http2_tls: crate::tls::ListenerTls,
    pub http2: crate::http2::state::Http2State,
    /// The scenario in force, if any (see [`Core::load_scenario`]).
    pub scenario: parking_lot::Mutex<Option<LoadedScenario>>,
    /// Broadcast channels and their subscribers (PROTOCOL.md 2.11).
    pub broadcast: parking_lot::Mutex<crate::broadcast::Channels>,
    /// When each refusal cause was last logged (once per cause per minute).
    pub refusals: crate::refusal::RefusalLog,
    next_id: AtomicU64,
}

impl Core {
    pub fn new(
        settings: Settings,
        engine: Engine,
        journal: Journal,
        clock: Clock,
        tls: (crate::acceptor::LegacyTls, crate::tls::ListenerTls),
        http2: crate::http2::state::Http2State,
    ) -> Self {
        let (legacy_tls, http2_tls) = tls;
        Core {
            settings,
            engine,
            journal,
            clock,
            legacy_tls,
            http2_tls,
            http2,
            scenario: parking_lot::Mutex::new(None),
            broadcast: parking_lot::Mutex::new(crate::broadcast::Channels::new()),
            refusals: Default::default(),
            next_id: AtomicU64::new(1),
        }
    }

    /// A fresh connection id (journal `connection` field).
    pub fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks a device online or offline and journals what the device model did; shared by the Rust
    /// and control APIs. False when the token is not registered.
    pub fn set_device_online(&self, token: &DeviceToken, online: bool) -> bool {
        match self
            .engine
            .set_device_online(token, online, self.clock.now_ms())
        {
            Some(events) => {
                if !events.is_empty() {
                    self.journal
                        .record_batch(events.into_iter().map(|e| e.into_event(0)));
                }
                true
            }
            None => false,
        }
    }

    /// Loads `scenario` into the running emulator; `.p8` paths resolve only through `key_files`.
    pub fn load_scenario(
        &self,
        scenario: &Scenario,
        key_files: &KeyFiles,
    ) -> Result<LoadedScenario, LoadError> {
        if let Some(s) = &scenario.settings {
            if *s != self.settings {
                let a = serde_json::to_value(s).unwrap_or_default();
                let b = serde_json::to_value(&self.settings).unwrap_or_default();
                let differ: Vec<String> = a
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| b.get(k.as_str()) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect();
                return Err(LoadError::SettingsAtRuntime(differ.join(", ")));
            }
        }
        let mut generated = BTreeMap::new();
        let mut keys = Vec::new();
        for spec in &scenario.keys {
            let (key, pem_generated) = crate::scenario_host::provider_key(spec, key_files)?;
            if let Some(pem) = pem_generated {
                generated.insert(spec.key_id.clone(), pem);
            }
            keys.push(key);
        }
        // Everything checked: now apply, keys and tokens first so the first rule sees them.
        {
            let mut registry = self.http2.keys.write();
            for key in keys {
                registry.insert(key);
            }
        }
        self.http2.cache.clear();
        scenario.register_tokens(self.engine.registry());
        self.engine.set_rules(scenario.rule_set());
        let loaded = LoadedScenario {
            scenario: scenario.clone(),
            generated_keys: generated,
        };
        *self.scenario.lock() = Some(loaded.clone());
        Ok(loaded)
    }

    /// Removes the scenario's rules, tokens and keys (the default key stays).
    pub fn clear_scenario(&self) -> Option<LoadedScenario> {
        let old = self.scenario.lock().take();
        self.engine.set_rules(RuleSet::empty());
        if let Some(old) = &old {
            for t in &old.scenario.tokens {
                self.engine.registry().remove(&t.token);
                self.engine.forget_device(&t.token);
            }
            let mut keys = self.http2.keys.write();
            for k in &old.scenario.keys {
                keys.remove(&k.key_id);
            }
            self.http2.cache.clear();
        }
        old
    }
}

/// How long a TLS handshake may take: a client that connects and never speaks must not hold a
/// connection slot forever.
pub(crate) const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Completes the TLS handshake of a new connection, or journals `connection-refused` with the cause
/// in plain words (and logs it at WARN, once per distinct cause per minute) and returns `None`;
/// every listener goes through here, whichever TLS library it runs.
pub(crate) async fn handshake<T: crate::acceptor::Accept>(
    core: &Core,
    tls: &T,
    stream: TcpStream,
    id: u64,
    protocol: crate::model::Protocol,
    listener_env: Environment,
    peer: SocketAddr,
) -> Option<(T::Stream, crate::tls::Handshake)> {
    use crate::refusal::{self, Cause, FirstBytes};
    // The first bytes tell a TLS 1.0 ClientHello or plaintext apart before the TLS library answers.
    let mut first_bytes = FirstBytes::Unknown;
    let attempt = async {
        let mut first = [0u8; 16];
        let n = stream.peek(&mut first).await.unwrap_or(0);
        first_bytes = refusal::classify(&first[..n]);
        tls.accept(stream, listener_env).await
    };
    let listener = |environment| refusal::Listener {
        protocol,
        environment,
        tls_min: tls.min_version(),
        tls13: tls.options().allow_tls13,
    };
    // Boxed: the TLS library's handshake future is ~3 KB, and inline it would size every
    // connection's task for its whole life, idle or not (issue 12).
    let attempt = Box::pin(attempt);
    let (cause, environment) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt).await {
        Ok(Ok(ok)) => return Some(ok),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "handshake failed");
            let environment = e.environment().unwrap_or(listener_env);
            let cause = refusal::cause(
                first_bytes,
                e.failure(),
                e.client_alert(),
                listener(environment),
            );
            (cause, environment)
        }
        Err(_) => (Cause::Timeout, listener_env),
    };
    let words = cause.to_string();
    if core.refusals.should_log(&words, std::time::Instant::now()) {
        warn!(%peer, service = protocol.as_str(), %environment, "connection refused: {words}");
    }
    core.journal.record(
        crate::journal::NewEvent::new(
            crate::journal::EventKind::ConnectionRefused,
            id,
            protocol,
            listener_env,
        )
        .detail(
            serde_json::json!({ "peer": peer.to_string(), "reason": words, "cause": cause.code() }),
        ),
    );
    None
}

/// A cloneable "the emulator is stopping" signal.
#[derive(Clone)]
pub(crate) struct Shutdown(pub watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once shutdown has begun.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// How often reaching the connection bound is journaled and logged (issue 12).
const CAP_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs an accept loop: each connection is served by `serve` under the connection bound.
pub(crate) fn spawn_listener<F, Fut>(
    tracker: &TaskTracker,
    listener: TcpListener,
    core: Arc<Core>,
    (env, protocol): (Environment, crate::model::Protocol),
    shutdown: Shutdown,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<Core>, Environment, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(core.settings.max_connections.max(1)));
    let conns = tracker.clone();
    tracker.spawn(async move {
        let mut stop = shutdown.clone();
        let mut refused = 0u64;
        let mut last_said = None;
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.wait() => return,
                accepted = listener.accept() => match accepted {
                    Ok(ok) => ok,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            // Bounded connections: over the limit, the connection is closed at once.
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                drop(stream);
                refused += 1;
                // Journaled and logged at most once a minute, with the count since the last.
                if !last_said.is_some_and(|t: tokio::time::Instant| t.elapsed() < CAP_REPORT_EVERY) {
                    last_said = Some(tokio::time::Instant::now());
                    let max = core.settings.max_connections;
                    warn!(%peer, max_connections = max, refused, "connection limit reached; closing new connections");
                    core.journal.record(
                        crate::journal::NewEvent::new(
                            crate::journal::EventKind::ConnectionRefused,
                            core.next_connection_id(),
                            protocol,
                            env,
                        )
                        .detail(serde_json::json!({
                            "peer": peer.to_string(),
                            "error": "connection limit reached",
                            "max_connections": max,
                            "refused_since_last_report": refused,
                        })),
                    );
                    refused = 0;
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            let fut = serve(stream, peer, core.clone(), env, shutdown.clone());
            conns.spawn(async move {
                fut.await;
                drop(permit);
            });
        }
    });
}

/// Makes dropping `tls` abort the TCP connection with a reset instead of a FIN (SO_LINGER 0): the
/// `reset = true` of `drop` and `close` rules, on every listener.
pub(crate) fn reset_on_close(tls: &impl crate::acceptor::OnTcp) {
    // Deprecated because a non-zero linger blocks the thread on drop; zero does not.
    #[allow(deprecated)]
    let _ = tls.tcp().set_linger(Some(std::time::Duration::ZERO));
}
