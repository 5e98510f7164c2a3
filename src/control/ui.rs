//! The web inspector: a page served at `/` on the control port that watches the journal live,
//! opens a notification or a connection, shows each device's lock screen, edits the scenario
//! and seeds tokens and feedback. Plain HTML, CSS and JavaScript embedded in the binary (no
//! build step, no CDN); the page only calls the documented control routes.

use super::bodies::{ScenarioCheck, ScenarioInvalid};
use super::error::ApiError;
use super::ControlState;
use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
pub(super) fn routes() -> OpenApiRouter<ControlState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(script))
        .routes(routes!(style))
        .routes(routes!(ready))
}

/// `GET /`: the inspector page.
#[utoipa::path(get, path = "/", tag = "inspector", security(()),
    responses((status = 200, description = "The inspector page", content_type = "text/html", body = String)))]
async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX).await
}

/// `GET /ui/app.js`: the page's script.
#[utoipa::path(get, path = "/ui/app.js", tag = "inspector", security(()),
    responses((status = 200, description = "The page's script", content_type = "text/javascript", body = String)))]
async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT).await
}

/// `GET /ui/app.css`: the page's style sheet.
#[utoipa::path(get, path = "/ui/app.css", tag = "inspector", security(()),
    responses((status = 200, description = "The page's style sheet", content_type = "text/css", body = String)))]
async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE).await
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
#[utoipa::path(get, path = "/ui/scenarios", tag = "inspector", security(()),
    responses((status = 200, description = "Scenario name → TOML text", body = BTreeMap<String, String>)))]
async fn ready() -> Json<BTreeMap<&'static str, &'static str>> {
    Json(READY.into_iter().collect())
}

/// `POST /scenario/check`: validates a scenario without loading it (the editor's as-you-type
/// check); 200 `{"ok": true}` or 400 with the same `line:column` errors as `check-scenario`.
#[utoipa::path(post, path = "/scenario/check", tag = "scenario",
    request_body(description = "A scenario file: TOML, or the same structure as JSON",
        content((String = "application/toml"), (Object = "application/json"))),
    responses(
        (status = 200, description = "Valid", body = ScenarioCheck),
        (status = 400, description = "Invalid: every error with its line and column", body = ScenarioInvalid)))]
pub(super) async fn check_scenario(
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ScenarioCheck>, ApiError> {
    let s = super::scenario::parse_body(&headers, &body)?;
    Ok(Json(ScenarioCheck {
        ok: true,
        rules: s.rules.len(),
    }))
}
