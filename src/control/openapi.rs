//! The control API's OpenAPI 3.1 document: the paths and schemas come from the handlers'
//! `#[utoipa::path]` annotations and the types in `bodies`; this file adds what no handler
//! says (title, version, the optional bearer token).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, Required};

/// The name of the bearer-token scheme (`--control-token`).
const BEARER: &str = "bearer";

/// Completes `doc` with its info, the bearer scheme and the default security: a token when
/// `--control-token` is set, none otherwise (routes marked `security(())` never need one).
pub(super) fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("apnsim control API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Inspect and drive a running apnsim: the journal, tokens and feedback, devices, \
             broadcast channels, the clock, scenarios. Every error is {\"error\": \"…\"}.",
        ))
        .build();
    let mut components = doc
        .components
        .take()
        .unwrap_or_else(|| ComponentsBuilder::new().build());
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    doc.components = Some(components);
    // An empty scenario is a valid scenario (no rules), so these bodies may be empty.
    for (path, put) in [("/scenario", true), ("/scenario/check", false)] {
        let item = doc.paths.paths.get_mut(path);
        let op = item.and_then(|i| if put { i.put.as_mut() } else { i.post.as_mut() });
        if let Some(body) = op.and_then(|o| o.request_body.as_mut()) {
            body.required = Some(Required::False);
        }
    }
    doc.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::default(),
    ]);
    doc
}
