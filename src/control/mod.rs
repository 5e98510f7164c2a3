//! The local control API (axum, HTTP/1.1): lets tests written in any language inspect the
//! journal, wait for events, manage tokens and feedback, move the clock and scrape metrics
//! while the emulator runs. It speaks the same JSON as the Rust model and the journal.

mod auth;
mod broadcast;
mod error;
mod events;
mod journal;
mod metrics;
mod origin;
mod payload;
mod query;
mod scenario;
mod status;
mod tokens;
mod ui;

pub use metrics::Metrics;

use crate::runtime::{Core, Shutdown};
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The default control port of `apnsim serve` (in-process emulators use an ephemeral one).
pub const DEFAULT_PORT: u16 = 2199;

/// What the handlers share: the emulator's core, the metrics follower's counts, the stop signal
/// (so long polls and event streams end with the emulator) and the optional bearer token.
#[derive(Clone)]
pub struct ControlState {
    core: Arc<Core>,
    metrics: Arc<Metrics>,
    stop: Shutdown,
    token: Option<Arc<str>>,
}

impl ControlState {
    /// State over one emulator's core; only the emulator can build it.
    pub(crate) fn new(core: Arc<Core>, metrics: Arc<Metrics>, stop: Shutdown) -> Self {
        ControlState {
            core,
            metrics,
            stop,
            token: None,
        }
    }

    /// Requires `Authorization: Bearer <token>` on every route but `/livez` and `/readyz`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty()).map(Arc::from);
        self
    }

    fn stopping(&self) -> bool {
        *self.stop.0.borrow()
    }
}

/// The control API's routes, for serving on its own port or mounting into another axum app.
pub fn router(state: ControlState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics::render))
        .route("/tokens", get(tokens::list).post(tokens::register))
        .route("/tokens/{token}", get(tokens::get).delete(tokens::remove))
        .route("/devices/{token}/online", post(tokens::online))
        .route("/devices/{token}/offline", post(tokens::offline))
        .route("/devices/{token}/inbox", get(tokens::inbox))
        .route(
            "/feedback",
            get(tokens::peek_feedback).post(tokens::add_feedback),
        )
        .route("/channels", get(broadcast::list))
        .route(
            "/subscriptions",
            post(broadcast::subscribe).delete(broadcast::unsubscribe),
        )
        .route("/journal", get(journal::query).delete(journal::clear))
        .route("/journal/wait", get(journal::wait))
        .route("/events", get(events::stream))
        .route("/clock", get(status::clock))
        .route("/clock/advance", post(status::advance))
        .route("/connections", get(status::connections))
        .route(
            "/scenario",
            get(scenario::get)
                .put(scenario::put)
                .delete(scenario::delete),
        )
        .route("/scenario/check", post(ui::check_scenario))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    Router::new()
        .route("/livez", get(status::livez))
        .route("/readyz", get(status::readyz))
        .merge(ui::routes())
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn(origin::guard))
        .with_state(state)
}

/// Bound on simultaneous control-API connections: a flood of idle ones must not exhaust the
/// process's file descriptors (and so lock out every listener).
pub const MAX_CONNECTIONS: usize = 512;

/// An HTTP/1 connection that has not sent a complete request head this long is closed (idle
/// keep-alive connections and slow headers alike; a long poll in progress is not idle).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the control API on `listener` until `shutdown` resolves, then drains open requests
/// (event streams and long polls end on the emulator's own stop signal). At most
/// [`MAX_CONNECTIONS`] at once (more are closed on accept, with a WARN at most once a minute);
/// idle connections close after [`IDLE_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    state: ControlState,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_with(
        listener,
        state.with_token(token),
        MAX_CONNECTIONS,
        IDLE_TIMEOUT,
        shutdown,
    )
    .await
}

/// [`serve`] with a chosen connection cap and idle timeout.
pub(crate) async fn serve_with(
    listener: TcpListener,
    state: ControlState,
    max_connections: usize,
    idle: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let app = router(state);
    let limit = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let conns = tokio_util::task::TaskTracker::new();
    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let mut warned: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::warn!(error = %e, "control API: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            if !warned.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60)) {
                warned = Some(tokio::time::Instant::now());
                tracing::warn!(%peer, max_connections, "control API: connection limit reached; closing new connections");
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut close = close_rx.clone();
        conns.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(idle);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { let _ = close.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
    let _ = close_tx.send(true);
    conns.close();
    conns.wait().await;
}
