//! The local control API (axum, HTTP/1.1): lets tests written in any language inspect the
//! journal, wait for events, manage tokens and feedback, move the clock and scrape metrics
//! while the emulator runs. It speaks the same JSON as the Rust model and the journal.

mod auth;
pub mod bodies;
mod broadcast;
mod error;
mod events;
mod journal;
mod metrics;
mod openapi;
mod origin;
mod payload;
mod query;
mod scenario;
mod status;
mod tokens;
mod ui;

pub use metrics::Metrics;

use crate::runtime::{Core, Shutdown};
use axum::{Json, Router};
use error::ApiError;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    let routes: Router<ControlState> = documented_routes(state.clone()).into();
    routes
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn(origin::guard))
        .with_state(state)
}

/// The OpenAPI 3.1 document of every route: derived from the handlers' annotations and the
/// body types, so it cannot drift from what the routes do.
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| openapi::finish(documented_routes_unlayered().into_openapi()))
        .clone()
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "status", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", body = Object)))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// Every documented route; the protected ones behind the bearer-token check.
fn documented_routes(state: ControlState) -> OpenApiRouter<ControlState> {
    let protected =
        protected_routes().route_layer(axum::middleware::from_fn_with_state(state, auth::require));
    open_routes().merge(protected)
}

/// The same routes without the token layer (for the document alone).
fn documented_routes_unlayered() -> OpenApiRouter<ControlState> {
    open_routes().merge(protected_routes())
}

/// Routes open without a token: health checks and the inspector's assets (no data).
fn open_routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(status::livez))
        .routes(routes!(status::readyz))
        .routes(routes!(openapi_json))
        .merge(ui::routes())
}

/// Routes that need the bearer token when one is set.
fn protected_routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(metrics::render))
        .routes(routes!(tokens::list, tokens::register))
        .routes(routes!(tokens::get, tokens::remove))
        .routes(routes!(tokens::online))
        .routes(routes!(tokens::offline))
        .routes(routes!(tokens::inbox))
        .routes(routes!(tokens::peek_feedback, tokens::add_feedback))
        .routes(routes!(broadcast::list))
        .routes(routes!(broadcast::subscribe, broadcast::unsubscribe))
        .routes(routes!(journal::query, journal::clear))
        .routes(routes!(journal::wait))
        .routes(routes!(events::stream))
        .routes(routes!(status::clock))
        .routes(routes!(status::advance))
        .routes(routes!(status::connections))
        .routes(routes!(scenario::get, scenario::put, scenario::delete))
        .routes(routes!(ui::check_scenario))
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
