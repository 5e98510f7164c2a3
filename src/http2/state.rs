//! HTTP/2 state shared by every connection of one emulator (keys, the JWT cache, forced answers,
//! the live connections and what was observed on each), apart from the connection loop so the
//! runtime and the control API reach it without depending on `server`.

use crate::http2::auth::{KeyRegistry, VerifyCache};
use crate::http2::driver::{Command, ConnHandle};
use crate::http2::reason::Reason;
use crate::model::{AuthKind, Environment};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How many observation records of one kind a connection keeps (bounded, like everything else).
pub(crate) const MAX_OBSERVATIONS: usize = 64;

/// HTTP/2 state shared by every connection of one emulator.
pub struct Http2State {
    /// Provider-token keys (key id → public key, team, scope).
    pub keys: RwLock<KeyRegistry>,
    /// Verified JWTs, shared so each distinct token is verified once.
    pub cache: VerifyCache,
    /// When set, every request is answered with this reason (the Rust API's way to produce
    /// IdleTimeout, Forbidden, InternalServerError, ServiceUnavailable, Shutdown, TooManyRequests).
    pub forced: RwLock<Option<Reason>>,
    /// Each team's current provider token, for the per-team update limit (PROTOCOL.md 2.8).
    pub teams: Arc<crate::http2::team_tokens::TeamTokenUpdates>,
    pub(crate) live: Mutex<HashMap<u64, LiveConn>>,
}

impl Http2State {
    /// Empty state with `keys` registered.
    pub fn new(keys: KeyRegistry) -> Self {
        Http2State {
            keys: RwLock::new(keys),
            cache: VerifyCache::new(),
            forced: RwLock::new(None),
            teams: Arc::default(),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The open HTTP/2 connections with what was observed on each.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let mut out: Vec<_> = self.live.lock().iter().map(|(id, c)| c.info(*id)).collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// Sends a hook command (GOAWAY, RST_STREAM, SETTINGS, ignore PING, close) to a live connection.
    pub fn command(&self, connection: u64, cmd: Command) -> bool {
        let handle = self.live.lock().get(&connection).map(|c| c.handle.clone());
        handle.is_some_and(|h| h.try_send(cmd).is_ok())
    }
}

/// What the control API and tests see of one open HTTP/2 connection.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionInfo {
    /// Connection id (journal `connection`).
    pub id: u64,
    /// Environment served.
    pub environment: Environment,
    /// Certificate or token.
    pub auth: AuthKind,
    /// What was observed so far.
    pub observations: Observations,
}

/// What a connection did that conformance grades (PROTOCOL.md 2.2: PRIORITY ignored, HPACK advice).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Observations {
    /// Whether the client negotiated ALPN `h2` (false: HTTP/2 straight after the handshake).
    pub alpn: bool,
    /// SNI as sent.
    pub sni: Option<String>,
    /// The client's last SETTINGS, in wire order, id → value (at most 64 values kept).
    #[schema(value_type = Vec<Vec<u32>>)]
    pub client_settings: Vec<(u16, u32)>,
    /// SETTINGS frames received from the client (only the first few are journaled one by one).
    pub settings_frames: u64,
    /// PRIORITY information received (frames or HEADERS flags), counted.
    pub priority_frames: u64,
    /// PINGs received from the client (only the first few are journaled one by one).
    pub pings: u64,
    /// Requests seen.
    pub requests: u64,
    /// How `authorization`, `apns-topic`, `apns-id` and `:path` were encoded, request by request
    /// (first requests only, bounded).
    pub hpack: BTreeMap<String, Vec<String>>,
    /// JWT deviations from Apple's minimal form (iat as float or string, extra claims, DER signatures).
    pub jwt: crate::http2::auth::JwtQuirks,
    /// GOAWAY or RST_STREAM the client sent.
    pub client_resets: u64,
    /// Streams refused for exceeding SETTINGS_MAX_CONCURRENT_STREAMS (PROTOCOL.md 2.2).
    pub refused_streams: u64,
}

/// One open connection as the control API reaches it.
pub(crate) struct LiveConn {
    pub(crate) handle: ConnHandle,
    pub(crate) environment: Environment,
    pub(crate) auth: AuthKind,
    pub(crate) observations: Arc<Mutex<Observations>>,
}

impl LiveConn {
    fn info(&self, id: u64) -> ConnectionInfo {
        ConnectionInfo {
            id,
            environment: self.environment,
            auth: self.auth,
            observations: self.observations.lock().clone(),
        }
    }
}
