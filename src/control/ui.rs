//! The web inspector: a page served at `/` on the control port that watches the journal live,
//! opens a notification or a connection, shows each device's lock screen, edits the scenario
//! and seeds tokens and feedback. Plain HTML, CSS and JavaScript embedded in the binary (no
//! build step, no CDN); the page only calls the documented control routes.

use super::error::ApiError;
use super::ControlState;
use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// The ready-made scenarios shipped in `fixtures/scenarios`, one click away in the editor.
const READY: [(&str, &str); 9] = [
    (
        "expired-jwt",
        include_str!("../../fixtures/scenarios/expired-jwt.toml"),
    ),
    (
        "flaky-network",
        include_str!("../../fixtures/scenarios/flaky-network.toml"),
    ),
    (
        "goaway-after-n",
        include_str!("../../fixtures/scenarios/goaway-after-n.toml"),
    ),
    (
        "hot-device-429",
        include_str!("../../fixtures/scenarios/hot-device-429.toml"),
    ),
    (
        "invalid-token-mid-batch",
        include_str!("../../fixtures/scenarios/invalid-token-mid-batch.toml"),
    ),
    (
        "sandbox-token-silent-drop",
        include_str!("../../fixtures/scenarios/sandbox-token-silent-drop.toml"),
    ),
    (
        "shutdown-mid-batch",
        include_str!("../../fixtures/scenarios/shutdown-mid-batch.toml"),
    ),
    (
        "token-refresh-too-often",
        include_str!("../../fixtures/scenarios/token-refresh-too-often.toml"),
    ),
    (
        "unregistered-with-feedback",
        include_str!("../../fixtures/scenarios/unregistered-with-feedback.toml"),
    ),
];

/// The page and its assets (open without a token: they hold no data; the page asks for the
/// token once and keeps it in the tab's session storage).
pub(super) fn routes() -> Router<ControlState> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/ui/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/ui/app.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route("/ui/scenarios", get(ready))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // The page may only talk to its own origin and never be framed by another site.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

/// `GET /ui/scenarios`: the ready-made scenarios by name, as TOML text.
async fn ready() -> Json<Value> {
    Json(Value::Object(
        READY
            .iter()
            .map(|(name, text)| (name.to_string(), Value::String(text.to_string())))
            .collect(),
    ))
}

/// `POST /scenario/check`: validates a scenario without loading it (the editor's as-you-type
/// check); 200 `{"ok": true}` or 400 with the same `line:column` errors as `check-scenario`.
pub(super) async fn check_scenario(
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let s = super::scenario::parse_body(&headers, &body)?;
    Ok(Json(json!({ "ok": true, "rules": s.rules.len() })))
}
