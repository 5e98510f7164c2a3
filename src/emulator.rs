//! The embedding API: start a whole emulator in-process (ephemeral ports, in-memory certificates)
//! from a Rust test, and reach its addresses, identities, registry, journal and clock.

use crate::certs::{Authority, CertError, Identity, ProviderSpec, TokenKey};
use crate::clock::Clock;
use crate::control::{ControlState, Metrics};
use crate::engine::devices::DeviceView;
use crate::engine::scenario::Scenario;
use crate::engine::{Engine, Registry};
use crate::http2::auth::{KeyError, KeyRegistry, ProviderKey};
use crate::http2::driver::Command;
use crate::http2::reason::Reason;
use crate::http2::state::{ConnectionInfo, Http2State};
use crate::journal::Journal;
use crate::journal_file::JournalFile;
use crate::model::{DeviceToken, Environment};
use crate::runtime::{spawn_listener, Core, Shutdown};
use crate::scenario_host::{LoadError, LoadedScenario};
use crate::settings::{SettingError, Settings};
use crate::tls::TlsError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// Errors that stop an emulator from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Certificates could not be generated or loaded.
    #[error("certificates: {0}")]
    Certs(#[from] CertError),
    /// The token key could not be registered with the HTTP/2 listener.
    #[error("certificates: {0}")]
    TokenKey(#[from] KeyError),
    /// TLS configuration failed.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// The legacy ports' TLS minimum cannot be served by this build.
    #[error("tls: {0}")]
    LegacyTls(crate::acceptor::LegacyTlsError),
    /// The control API would listen beyond loopback with no token.
    #[error("refusing to serve the control API on {0} (not loopback) without a control token; give --control-token, or --control-insecure to accept the risk")]
    ControlExposed(IpAddr),
    /// The journal file could not be created.
    #[error("{0}")]
    JournalFile(String),
    /// A setting is out of its range.
    #[error("settings: {0}")]
    Settings(#[from] SettingError),
    /// The scenario could not be loaded.
    #[error("scenario: {0}")]
    Scenario(#[from] LoadError),
    /// A start-up step run on the blocking pool (reading certificate or key files) did not finish.
    #[error("start-up task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Where the emulator's CA and server certificate come from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Generated in memory for this emulator only (the default for tests).
    InMemory,
    /// Loaded from a directory, generated there first if missing (what `serve` uses).
    Dir(PathBuf),
}

/// Which protocol a listener serves.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Gateway,
    Feedback,
    Http2,
}

/// Which provider identity to hand a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Certificate valid for production only.
    Production,
    /// Certificate valid for sandbox only.
    Sandbox,
    /// Certificate valid for both.
    Universal,
}

impl ProviderKind {
    /// The Apple environment extensions a certificate of this kind carries (PROTOCOL.md 1.9).
    pub fn environments(self) -> &'static [Environment] {
        match self {
            ProviderKind::Production => &[Environment::Production],
            ProviderKind::Sandbox => &[Environment::Sandbox],
            ProviderKind::Universal => &[Environment::Sandbox, Environment::Production],
        }
    }

    /// All three kinds, in file-name order.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::Production,
        ProviderKind::Sandbox,
        ProviderKind::Universal,
    ];
}

/// Configures an emulator before it starts.
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    bind: IpAddr,
    legacy_port: Option<u16>,
    feedback_port: Option<u16>,
    sandbox_legacy_port: Option<u16>,
    sandbox_feedback_port: Option<u16>,
    http2_port: Option<u16>,
    sandbox_http2_port: Option<u16>,
    manage_broadcast_port: Option<u16>,
    sandbox_manage_broadcast_port: Option<u16>,
    certs: CertSource,
    topic: String,
    settings: Settings,
    registry: Registry,
    clock: Clock,
    scenario: Option<(Scenario, Option<PathBuf>)>,
    control_port: Option<u16>,
    control_token: Option<String>,
    control_insecure: bool,
    control_idle_timeout: Duration,
    journal_file: Option<PathBuf>,
    listener_ips: BTreeMap<String, IpAddr>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            legacy_port: Some(0),
            feedback_port: Some(0),
            sandbox_legacy_port: Some(0),
            sandbox_feedback_port: Some(0),
            http2_port: Some(0),
            sandbox_http2_port: Some(0),
            manage_broadcast_port: Some(0),
            sandbox_manage_broadcast_port: Some(0),
            certs: CertSource::InMemory,
            topic: crate::DEFAULT_TOPIC.to_string(),
            settings: Settings::default(),
            registry: Registry::new(),
            clock: Clock::new(),
            scenario: None,
            control_port: Some(0),
            listener_ips: BTreeMap::new(),
            control_token: None,
            control_insecure: false,
            control_idle_timeout: crate::control::IDLE_TIMEOUT,
            journal_file: None,
        }
    }
}

impl EmulatorBuilder {
    /// The address every listener binds (loopback by default).
    pub fn bind(mut self, ip: IpAddr) -> Self {
        self.bind = ip;
        self
    }

    /// Production gateway port (`0` = ephemeral, `None` = off).
    pub fn legacy_port(mut self, port: Option<u16>) -> Self {
        self.legacy_port = port;
        self
    }

    /// Production feedback port.
    pub fn feedback_port(mut self, port: Option<u16>) -> Self {
        self.feedback_port = port;
        self
    }

    /// Sandbox gateway port.
    pub fn sandbox_legacy_port(mut self, port: Option<u16>) -> Self {
        self.sandbox_legacy_port = port;
        self
    }

    /// Sandbox feedback port.
    pub fn sandbox_feedback_port(mut self, port: Option<u16>) -> Self {
        self.sandbox_feedback_port = port;
        self
    }

    /// Production HTTP/2 API port (PROTOCOL.md 2.1: 443 or 2197).
    pub fn http2_port(mut self, port: Option<u16>) -> Self {
        self.http2_port = port;
        self
    }

    /// Sandbox HTTP/2 API port.
    pub fn sandbox_http2_port(mut self, port: Option<u16>) -> Self {
        self.sandbox_http2_port = port;
        self
    }

    /// Production channel-management port (Apple: api-manage-broadcast.push.apple.com:2196,
    /// PROTOCOL.md 2.11; `apnsim serve` defaults to 2198 so as not to collide with feedback).
    pub fn manage_broadcast_port(mut self, port: Option<u16>) -> Self {
        self.manage_broadcast_port = port;
        self
    }

    /// Sandbox channel-management port (Apple: 2195; `apnsim serve` defaults to 2298).
    pub fn sandbox_manage_broadcast_port(mut self, port: Option<u16>) -> Self {
        self.sandbox_manage_broadcast_port = port;
        self
    }

    /// Where certificates come from.
    pub fn certs(mut self, source: CertSource) -> Self {
        self.certs = source;
        self
    }

    /// The app topic (bundle id) of the generated provider certificates.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Behaviour settings (PROTOCOL.md Part 3 decisions and limits).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Lowest TLS version on the gateway and feedback ports (`--legacy-tls-min`): 1.0 and 1.1 are
    /// served by OpenSSL for providers that hard-code them. Call after `settings`, which replaces it.
    pub fn legacy_tls_min(mut self, min: crate::settings::LegacyTlsMin) -> Self {
        self.settings.legacy_tls_min = min;
        self
    }

    /// Starts with this token registry (shared: later changes through it are seen live).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Loads this scenario at start; its `[settings]`, if any, replace the builder's settings.
    /// `base` resolves relative `.p8` paths (the scenario file's folder).
    pub fn scenario(mut self, scenario: Scenario, base: Option<PathBuf>) -> Self {
        if let Some(s) = &scenario.settings {
            self.settings = s.clone();
        }
        self.scenario = Some((scenario, base));
        self
    }

    /// Shares a clock (e.g. one a test advances).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// One listener's own address instead of `bind` (`"sandbox_legacy"`, `"legacy"`, …, as in
    /// [`Emulator::addr`]), so old daemons with one port constant can pick the environment by host
    /// name: production on 127.0.0.1:2195, sandbox on 127.0.0.2:2195.
    pub fn listener_ip(mut self, listener: &str, ip: IpAddr) -> Self {
        self.listener_ips.insert(listener.to_string(), ip);
        self
    }

    /// Control API port (`0` = ephemeral, the default; `None` = off; `serve` uses 2199).
    pub fn control_port(mut self, port: Option<u16>) -> Self {
        self.control_port = port;
        self
    }

    /// Bearer token the control API requires (`None` = open, fine on loopback).
    pub fn control_token(mut self, token: Option<String>) -> Self {
        self.control_token = token;
        self
    }

    /// Serve the control API beyond loopback with no token (refused by default: anyone who can
    /// reach it could clear the journal or load scenarios).
    pub fn control_insecure(mut self, insecure: bool) -> Self {
        self.control_insecure = insecure;
        self
    }

    /// How long a control-API connection may sit without sending a complete request head.
    pub fn control_idle_timeout(mut self, idle: Duration) -> Self {
        self.control_idle_timeout = idle;
        self
    }

    /// Streams every journal event to this file as JSON lines (created or truncated at start).
    pub fn journal_file(mut self, path: Option<PathBuf>) -> Self {
        self.journal_file = path;
        self
    }

    /// Binds every listener, then serves in the background; returns once all are listening.
    pub async fn start(self) -> Result<Emulator, StartError> {
        let token_set = self.control_token.as_deref().is_some_and(|t| !t.is_empty());
        let control_ip = self
            .listener_ips
            .get("control")
            .copied()
            .unwrap_or(self.bind);
        if self.control_port.is_some()
            && !control_ip.is_loopback()
            && !token_set
            && !self.control_insecure
        {
            return Err(StartError::ControlExposed(control_ip));
        }
        self.settings.check()?;
        // Certificate files are read (or generated) on the blocking pool, never on the runtime.
        let certs = self.certs.clone();
        let topic = self.topic.clone();
        let (authority, server, token_key) =
            tokio::task::spawn_blocking(move || load_identities(&certs, &topic)).await??;
        let legacy_tls = legacy_acceptor(&authority, &server, &self.settings)?;
        let http2_tls = crate::tls::ListenerTls::new(
            &authority.ca_pem(),
            &server,
            crate::tls::TlsOptions::http2(),
        )?;
        // The generated key is registered by default (issue 4), valid in both environments.
        let mut keys = KeyRegistry::new();
        keys.insert(ProviderKey::from_pem(
            &token_key.key_id,
            &token_key.team_id,
            &token_key.private_pem,
        )?);
        let journal = Journal::new(self.settings.journal_capacity, self.clock.clone());
        if let Some(path) = self.journal_file.clone() {
            let file = tokio::task::spawn_blocking(move || JournalFile::create(&path))
                .await
                .map_err(|e| StartError::JournalFile(e.to_string()))?
                .map_err(|e| StartError::JournalFile(e.to_string()))?;
            journal.stream_to(file);
        }
        let engine = Engine::new(self.settings.clone(), self.registry.clone());
        let core = Arc::new(Core::new(
            self.settings.clone(),
            engine,
            journal,
            self.clock.clone(),
            (legacy_tls, http2_tls),
            Http2State::new(keys),
        ));
        if let Some((scenario, base)) = &self.scenario {
            let (sc, b) = (scenario.clone(), base.clone());
            let key_files = tokio::task::spawn_blocking(move || {
                crate::scenario_host::read_key_files(&sc, b.as_deref())
            })
            .await??;
            core.load_scenario(scenario, &key_files)?;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let shutdown = Shutdown(stop_rx);
        let tracker = TaskTracker::new();
        let mut addrs = BTreeMap::new();

        let plan = [
            (
                "legacy",
                self.legacy_port,
                Environment::Production,
                Kind::Gateway,
            ),
            (
                "feedback",
                self.feedback_port,
                Environment::Production,
                Kind::Feedback,
            ),
            (
                "sandbox_legacy",
                self.sandbox_legacy_port,
                Environment::Sandbox,
                Kind::Gateway,
            ),
            (
                "sandbox_feedback",
                self.sandbox_feedback_port,
                Environment::Sandbox,
                Kind::Feedback,
            ),
            (
                "http2",
                self.http2_port,
                Environment::Production,
                Kind::Http2,
            ),
            (
                "sandbox_http2",
                self.sandbox_http2_port,
                Environment::Sandbox,
                Kind::Http2,
            ),
            // PROTOCOL.md 2.11: the channel-management hosts speak the same HTTP/2 API.
            (
                "manage_broadcast",
                self.manage_broadcast_port,
                Environment::Production,
                Kind::Http2,
            ),
            (
                "sandbox_manage_broadcast",
                self.sandbox_manage_broadcast_port,
                Environment::Sandbox,
                Kind::Http2,
            ),
        ];
        for (key, port, env, kind) in plan {
            let Some(port) = port else { continue };
            let ip = self.listener_ips.get(key).copied().unwrap_or(self.bind);
            let addr = SocketAddr::new(ip, port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            addrs.insert(key.to_string(), local);
            let (core, sd) = (core.clone(), shutdown.clone());
            match kind {
                Kind::Gateway => spawn_listener(
                    &tracker,
                    listener,
                    core,
                    (env, crate::model::Protocol::Legacy),
                    sd,
                    crate::legacy::gateway::serve,
                ),
                Kind::Feedback => spawn_listener(
                    &tracker,
                    listener,
                    core,
                    (env, crate::model::Protocol::Feedback),
                    sd,
                    crate::legacy::feedback::serve,
                ),
                Kind::Http2 => spawn_listener(
                    &tracker,
                    listener,
                    core,
                    (env, crate::model::Protocol::Http2),
                    sd,
                    crate::http2::server::serve,
                ),
            }
        }
        // The journal counts every event as it appends, so metrics need no task of their own.
        let metrics = Arc::new(Metrics::new());
        // The control port opens last, so `/readyz` answering means every listener is bound.
        if let Some(port) = self.control_port {
            let addr = SocketAddr::new(control_ip, port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            addrs.insert("control".to_string(), local);
            let state = ControlState::new(core.clone(), metrics.clone(), shutdown.clone());
            let mut stop = shutdown.clone();
            tracker.spawn(crate::control::serve_with(
                listener,
                state.with_token(self.control_token.clone()),
                crate::control::MAX_CONNECTIONS,
                self.control_idle_timeout,
                async move { stop.wait().await },
            ));
        }
        let mut identities = Vec::new();
        for kind in ProviderKind::ALL {
            let spec = ProviderSpec::new(&self.topic, kind.environments());
            identities.push(authority.issue_provider(&spec)?);
        }
        Ok(Emulator {
            token_key,
            identities,
            addrs,
            core,
            authority: Arc::new(authority),
            stop_tx,
            tracker,
            topic: self.topic,
            metrics,
            control_token: self.control_token,
        })
    }
}

/// The CA, the server identity and the token key: loaded from (or first generated into) a
/// directory, or generated in memory. Blocking.
fn load_identities(
    certs: &CertSource,
    topic: &str,
) -> Result<(Authority, Identity, TokenKey), StartError> {
    match certs {
        CertSource::InMemory => {
            let authority = Authority::new_in_memory()?;
            let server = authority.issue_server()?;
            Ok((authority, server, TokenKey::generate()?))
        }
        CertSource::Dir(dir) => {
            crate::certs::ensure(dir, topic)?;
            Ok((
                Authority::load(dir)?,
                Identity::load(dir, "server")?,
                TokenKey::load(dir)?,
            ))
        }
    }
}

/// The TLS policy of the gateway and feedback ports (PROTOCOL.md 1.1; TLS 1.2 unless the setting allows 1.3).
pub fn legacy_tls(
    authority: &Authority,
    server: &Identity,
    settings: &Settings,
) -> Result<crate::tls::ListenerTls, StartError> {
    let mut options = crate::tls::TlsOptions::legacy();
    options.allow_tls13 = settings.legacy_tls13;
    Ok(crate::tls::ListenerTls::new(
        &authority.ca_pem(),
        server,
        options,
    )?)
}

/// The gateway and feedback ports' TLS as the settings ask: rustls at TLS 1.2 by default, OpenSSL
/// when `legacy_tls_min` lets TLS 1.0 or 1.1 in (PROTOCOL.md 1.1).
pub fn legacy_acceptor(
    authority: &Authority,
    server: &Identity,
    settings: &Settings,
) -> Result<crate::acceptor::LegacyTls, StartError> {
    let mut options = crate::tls::TlsOptions::legacy();
    options.allow_tls13 = settings.legacy_tls13;
    Ok(crate::acceptor::LegacyTls::new(
        &authority.ca_pem(),
        server,
        options,
        settings.legacy_tls_min,
    )?)
}

impl From<crate::acceptor::LegacyTlsError> for StartError {
    fn from(e: crate::acceptor::LegacyTlsError) -> Self {
        match e {
            crate::acceptor::LegacyTlsError::Tls(e) => StartError::Tls(e),
            other => StartError::LegacyTls(other),
        }
    }
}

/// A running emulator. Dropping it without `shutdown` leaves its tasks to end with the runtime.
pub struct Emulator {
    token_key: TokenKey,
    identities: Vec<Identity>,
    addrs: BTreeMap<String, SocketAddr>,
    core: Arc<Core>,
    authority: Arc<Authority>,
    stop_tx: watch::Sender<bool>,
    tracker: TaskTracker,
    topic: String,
    metrics: Arc<Metrics>,
    control_token: Option<String>,
}

/// The bound addresses, keyed as in the ready file (`legacy`, `feedback`, `sandbox_legacy`, …).
#[derive(Debug, Clone, Serialize)]
pub struct Addrs(pub BTreeMap<String, SocketAddr>);

impl Emulator {
    /// A builder with test-friendly defaults: loopback, ephemeral ports, in-memory certificates.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Every bound address by ready-file key.
    pub fn addrs(&self) -> Addrs {
        Addrs(self.addrs.clone())
    }

    /// The address under a ready-file key, if that listener is on.
    pub fn addr(&self, key: &str) -> Option<SocketAddr> {
        self.addrs.get(key).copied()
    }

    /// The production gateway's address.
    pub fn legacy_addr(&self) -> SocketAddr {
        self.addrs["legacy"]
    }

    /// The production HTTP/2 API's address.
    pub fn http2_addr(&self) -> SocketAddr {
        self.addrs["http2"]
    }

    /// The control API's address (`None` when its port is off); serve it `http://` + this.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.addrs.get("control").copied()
    }

    /// The control API as an axum router (same token), to mount inside another server.
    pub fn control_router(&self) -> axum::Router {
        let state = ControlState::new(
            self.core.clone(),
            self.metrics.clone(),
            Shutdown(self.stop_tx.subscribe()),
        )
        .with_token(self.control_token.clone());
        crate::control::router(state)
    }

    /// The production feedback service's address.
    pub fn feedback_addr(&self) -> SocketAddr {
        self.addrs["feedback"]
    }

    /// The CA certificate (PEM) providers must trust.
    pub fn ca_pem(&self) -> String {
        self.authority.ca_pem()
    }

    /// The topic of the default provider identities.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A provider client certificate of `kind` for the emulator's topic, issued at start.
    pub fn identity(&self, kind: ProviderKind) -> &Identity {
        let i = ProviderKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        &self.identities[i]
    }

    /// The certificate authority, to issue other identities (another topic, another environment).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The token registry (changes apply to the running emulator).
    pub fn registry(&self) -> &Registry {
        self.core.engine.registry()
    }

    /// Marks a registered device online or offline (as `POST /devices/{token}/online|offline`);
    /// coming online delivers or expires what was stored for it, journaled on connection 0.
    /// False when the token is not registered.
    pub fn set_device_online(&self, token: &DeviceToken, online: bool) -> bool {
        self.core.set_device_online(token, online)
    }

    /// What a registered device displayed and what waits for it (as `GET /devices/{token}/inbox`);
    /// `None` when the token is not registered.
    pub fn inbox(&self, token: &DeviceToken) -> Option<DeviceView> {
        self.core.engine.device_view(token)
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.core.journal
    }

    /// The emulator's clock (advance it to age JWTs and registrations).
    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }

    /// The ES256 provider-token key registered by default (the `.p8`, key id and team id).
    pub fn token_key(&self) -> &TokenKey {
        &self.token_key
    }

    /// Registers another provider-token key (or replaces one with the same key id).
    pub fn register_key(&self, key: ProviderKey) {
        self.core.http2.keys.write().insert(key);
        self.core.http2.cache.clear();
    }

    /// Loads a scenario into the running emulator (tokens, keys, rules); its `[settings]` must
    /// match the running ones (settings are chosen at start: [`EmulatorBuilder::scenario`]).
    /// Keys come inline (`pem`) or generated; `p8` paths are read only at start.
    pub fn load_scenario(&self, scenario: &Scenario) -> Result<LoadedScenario, LoadError> {
        self.core.load_scenario(scenario, &Default::default())
    }

    /// Removes the loaded scenario's rules, tokens and keys; returns it.
    pub fn clear_scenario(&self) -> Option<LoadedScenario> {
        self.core.clear_scenario()
    }

    /// The scenario in force, with any keys apnsim generated for it.
    pub fn scenario(&self) -> Option<LoadedScenario> {
        self.core.scenario.lock().clone()
    }

    /// Answers every HTTP/2 request with `reason` until set back to `None` (IdleTimeout, Forbidden,
    /// InternalServerError, ServiceUnavailable, Shutdown, TooManyRequests… on demand).
    pub fn force_http2_reason(&self, reason: Option<Reason>) {
        *self.core.http2.forced.write() = reason;
    }

    /// The open HTTP/2 connections and what was observed on each.
    pub fn http2_connections(&self) -> Vec<ConnectionInfo> {
        self.core.http2.connections()
    }

    /// Sends a hook to a live HTTP/2 connection (GOAWAY with any code, last-stream-id and debug
    /// data; RST_STREAM; new SETTINGS; ignore PINGs; close abruptly). False if it is gone.
    pub fn http2_command(&self, connection: u64, command: Command) -> bool {
        self.core.http2.command(connection, command)
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.core.settings
    }

    /// Graceful shutdown: listeners stop, each legacy connection gets status 10 and is closed;
    /// waits up to `grace` for connections to finish.
    pub async fn shutdown_with(self, grace: Duration) {
        let _ = self.stop_tx.send(true);
        self.tracker.close();
        let _ = tokio::time::timeout(grace, self.tracker.wait()).await;
        // Everything journaled is on disk before shutdown returns.
        if let Some(file) = self.core.journal.close_file() {
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || file.finish()).await {
                tracing::warn!(error = %e, "journal file");
            }
        }
    }

    /// Graceful shutdown with a 5-second grace period.
    pub async fn shutdown(self) {
        self.shutdown_with(Duration::from_secs(5)).await
    }
}

/// Broadcast channels and subscriptions (PROTOCOL.md 2.11), for tests written in Rust.
impl Emulator {
    /// Creates a channel as `POST /1/apps/<bundle>/channels` would (no request, no journal).
    pub fn create_channel(
        &self,
        env: Environment,
        bundle_id: &str,
        policy: crate::broadcast::StoragePolicy,
    ) -> Result<crate::broadcast::Channel, crate::broadcast::ChannelError> {
        let max = self.core.settings.broadcast.max_channels;
        let now = self.core.clock.now_ms();
        self.core
            .broadcast
            .lock()
            .create(env, bundle_id, policy, max, now, rand::random)
    }

    /// The live channels of an environment, with their subscribers.
    pub fn channels(&self, env: Environment) -> Vec<crate::broadcast::Channel> {
        self.core.broadcast.lock().all(env)
    }

    /// Subscribes a device to a channel: its broadcasts reach the device's inbox (registered
    /// tokens only, as every delivery). True when it was not subscribed yet.
    pub fn subscribe(
        &self,
        env: Environment,
        channel: &str,
        token: DeviceToken,
    ) -> Result<bool, crate::broadcast::ChannelError> {
        self.core.broadcast.lock().subscribe(env, channel, token)
    }

    /// Unsubscribes a device from a channel; true when it was subscribed.
    pub fn unsubscribe(
        &self,
        env: Environment,
        channel: &str,
        token: &DeviceToken,
    ) -> Result<bool, crate::broadcast::ChannelError> {
        self.core.broadcast.lock().unsubscribe(env, channel, token)
    }
}
