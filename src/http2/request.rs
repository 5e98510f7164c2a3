//! One HTTP/2 push request (`POST /3/device/<token>`): header and path validation, the auth stage,
//! and payload limits, producing either an [`ApnsRequest`] or a [`Rejection`] (PROTOCOL.md 2.3–2.5, 2.9).
//!
//! Check order (a documented choice; Apple's own order is unknown, PROTOCOL.md 2.8): pushy's header
//! order first, then authentication, then the payload:
//! 1. [`parse_headers`]: DuplicateHeaders, apns-id, `:method`, apns-topic presence, apns-collapse-id,
//!    apns-expiration, apns-priority, apns-push-type (value, topic suffix, background priority), `:path`;
//! 2. the caller's registry checks (Unregistered, DeviceTokenNotForTopic) may run here, as in pushy;
//! 3. auth: [`check_certificate`] or [`TokenAuth::check`];
//! 4. [`check_payload`]: PayloadEmpty, PayloadTooLarge.
//!
//! Reasons are Apple's current ones; apply [`crate::http2::reason::CompatSettings`] when writing the
//! response.

use crate::http2::any_byte;
use crate::http2::auth::{AuthOk, KeyRegistry, TokenAuth, VerifyCache};
use crate::http2::reason::Reason;
use crate::model::{DeviceToken, Environment, Notification, Priority, PushType};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The only path prefix of the device API (PROTOCOL.md 2.3).
const PATH_PREFIX: &[u8] = b"/3/device/";
use crate::model::wire::{MAX_COLLAPSE_ID_BYTES, MAX_TOPIC_BYTES};

/// How the connection authenticated, which decides topic rules (PROTOCOL.md 2.3, 2.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnAuth {
    /// A TLS client certificate: its topics (subject UID first, then the .3.6 list) and environments.
    Certificate {
        /// Topics the certificate may push to; the first is the subject UID.
        topics: Vec<String>,
        /// Environments the certificate is valid for (both for a universal certificate).
        environments: Vec<Environment>,
    },
    /// Provider tokens (JWT) in the `authorization` header.
    Token,
}

/// Request-level knobs from PROTOCOL.md Part 3, so scenarios can choose either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct RequestSettings {
    /// Device tokens must be exactly 64 hex characters (pushy's rule) instead of 64..=200.
    pub strict_token_len: bool,
    /// Payload limit in bytes for all push types but VoIP (PROTOCOL.md 2.5: 4096).
    pub max_payload: usize,
    /// Payload limit for VoIP (PROTOCOL.md 2.5: 5120).
    pub max_payload_voip: usize,
    /// Accept `apns-push-type: background` with `apns-priority: 10` (Apple calls it an error).
    pub allow_background_priority_10: bool,
}

impl Default for RequestSettings {
    fn default() -> Self {
        RequestSettings {
            strict_token_len: false,
            max_payload: 4096,
            max_payload_voip: 5120,
            allow_background_priority_10: false,
        }
    }
}

/// What a request is judged against: the connection's environment, authentication and settings.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The environment the connection's host name selected.
    pub environment: Environment,
    /// How the connection authenticated.
    pub auth: &'a ConnAuth,
    /// Request settings in force.
    pub settings: &'a RequestSettings,
}

/// A refused request: the reason, and the apns-id to echo when the request carried a valid one
/// (otherwise the responder generates one, PROTOCOL.md 2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub reason: Reason,
    /// The request's apns-id, verbatim, if it was present and well-formed.
    pub apns_id: Option<String>,
}

/// A request whose headers passed validation: every piece the engine and journal need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsRequest {
    /// The device token from `:path`.
    pub token: DeviceToken,
    /// apns-id exactly as sent (case preserved, PROTOCOL.md 2.6).
    pub apns_id: Option<String>,
    /// apns-expiration in UNIX seconds.
    pub expiry: Option<u32>,
    /// apns-priority, 10 when absent (PROTOCOL.md 2.3).
    pub priority: Priority,
    /// True when apns-priority was absent.
    pub priority_defaulted: bool,
    /// The topic: apns-topic, or a single-topic certificate's UID.
    pub topic: Option<String>,
    /// True when the topic came from the certificate, not the request.
    pub topic_defaulted: bool,
    /// The effective push type: as sent, else implied by the topic suffix, else alert.
    pub push_type: PushType,
    /// True when apns-push-type was absent (Apple may then drop or delay, PROTOCOL.md 2.3).
    pub push_type_defaulted: bool,
    /// apns-collapse-id.
    pub collapse_id: Option<String>,
    /// The raw `authorization` value (only meaningful on token connections).
    pub authorization: Option<Bytes>,
    /// `:authority`, or `host` when the client sent that instead.
    pub authority: Option<String>,
    /// The body.
    pub payload: Bytes,
}

impl ApnsRequest {
    /// Converts into the protocol-neutral record; `push_type` is what the provider sent (None if absent).
    pub fn into_notification(self) -> Notification {
        Notification {
            token: self.token,
            payload: self.payload,
            identifier: None,
            expiry: self.expiry,
            priority: self.priority,
            topic: self.topic.map(Into::into),
            push_type: (!self.push_type_defaulted).then_some(self.push_type),
            collapse_id: self.collapse_id,
            apns_id: self.apns_id,
            command: None,
        }
    }

    fn reject(&self, reason: Reason) -> Rejection {
        Rejection {
            reason,
            apns_id: self.apns_id.clone(),
        }
    }
}

impl From<ApnsRequest> for Notification {
    fn from(r: ApnsRequest) -> Self {
        r.into_notification()
    }
}

/// A decoded header field as validation reads it: the connection's decoded fields are read in
/// place, where a copied list of name/value pairs per request cost an allocation and a
/// reference count per field.
pub trait Field {
    /// The name as received (lowercase on a valid request).
    fn name(&self) -> &[u8];
    /// The value as received.
    fn value(&self) -> &Bytes;
}

impl Field for (Bytes, Bytes) {
    fn name(&self) -> &[u8] {
        &self.0
    }
    fn value(&self) -> &Bytes {
        &self.1
    }
}

impl Field for crate::http2::hpack::HeaderField {
    fn name(&self) -> &[u8] {
        &self.name
    }
    fn value(&self) -> &Bytes {
        &self.value
    }
}

/// The headers we look at, borrowed from the decoded list.
#[derive(Default)]
struct Fields<'h> {
    method: Option<&'h [u8]>,
    path: Option<&'h [u8]>,
    authority: Option<&'h [u8]>,
    host: Option<&'h [u8]>,
    authorization: Option<&'h Bytes>,
    apns_id: Option<&'h [u8]>,
    expiry: Option<&'h [u8]>,
    priority: Option<&'h [u8]>,
    topic: Option<&'h [u8]>,
    push_type: Option<&'h [u8]>,
    collapse_id: Option<&'h [u8]>,
}

impl<'h> Fields<'h> {
    /// Picks the headers we look at out of the decoded list (the first of a repeated name:
    /// a repetition is refused as DuplicateHeaders before any other field is used).
    fn read(headers: &'h [impl Field]) -> Self {
        let mut f = Fields::default();
        for h in headers.iter().rev() {
            let value = h.value();
            let v = Some(value.as_ref());
            match h.name() {
                b":method" => f.method = v,
                b":path" => f.path = v,
                b":authority" => f.authority = v,
                b"host" => f.host = v,
                b"authorization" => f.authorization = Some(value),
                b"apns-id" => f.apns_id = v,
                b"apns-expiration" => f.expiry = v,
                b"apns-priority" => f.priority = v,
                b"apns-topic" => f.topic = v,
                b"apns-push-type" => f.push_type = v,
                b"apns-collapse-id" => f.collapse_id = v,
                // PROTOCOL.md 2.3: other headers are ignored.
                _ => {}
            }
        }
        f
    }

    /// The notification as far as the fields read, with no check applied.
    fn partial(&self, body: &Bytes) -> Option<Notification> {
        fn text(v: Option<&[u8]>) -> Option<&str> {
            v.and_then(|v| std::str::from_utf8(v).ok())
        }
        let token = text(self.path)?
            .strip_prefix("/3/device/")
            .and_then(DeviceToken::from_hex)?;
        Some(Notification {
            token,
            payload: body.clone(),
            identifier: None,
            expiry: text(self.expiry).and_then(|v| v.parse().ok()),
            priority: text(self.priority)
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
            topic: text(self.topic).map(Into::into),
            push_type: self.push_type.and_then(PushType::from_header),
            collapse_id: text(self.collapse_id).map(str::to_owned),
            apns_id: text(self.apns_id).map(str::to_owned),
            command: None,
        })
    }
}

/// The notification as far as a refused request lets us read it (the same reading of the
/// headers as [`parse_headers`], no check applied), so the journal can be filtered by token even
/// for refusals; `None` when `:path` names no token.
pub fn partial_notification(headers: &[impl Field], body: &Bytes) -> Option<Notification> {
    Fields::read(headers).partial(body)
}

/// True when some header name occurs twice (PROTOCOL.md 2.3: DuplicateHeaders, any name).
fn has_duplicate_names(headers: &[impl Field]) -> bool {
    // A request has a dozen fields: comparing pairs beats collecting and sorting.
    if headers.len() <= 32 {
        return headers.iter().enumerate().any(|(i, a)| {
            let rest = headers.get(i + 1..).unwrap_or_default();
            rest.iter().any(|b| a.name() == b.name())
        });
    }
    let mut names: Vec<&[u8]> = headers.iter().map(Field::name).collect();
    names.sort_unstable();
    names.windows(2).any(|w| w[0] == w[1])
}

/// apns-id must be a canonical 8-4-4-4-12 UUID, either case (PROTOCOL.md 2.3, Part 3); the one
/// check for both validating a request and echoing an id back.
pub fn valid_apns_id(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Validates the header list of one request (stage 1; PROTOCOL.md 2.3–2.4, order in the module doc).
///
/// `headers` are the decoded fields with names as received (lowercase), pseudo-headers included.
/// The body is stored, not checked: see [`check_payload`].
pub fn parse_headers(
    headers: &[impl Field],
    body: Bytes,
    ctx: &RequestContext<'_>,
) -> Result<ApnsRequest, Rejection> {
    let f = Fields::read(headers);

    // apns-id first (pushy), so that every later rejection can echo it.
    let apns_id_ok = f.apns_id.map(valid_apns_id);
    let echo = match (f.apns_id, apns_id_ok) {
        (Some(v), Some(true)) => std::str::from_utf8(v).ok().map(str::to_owned),
        _ => None,
    };
    let reject = |reason| Rejection {
        reason,
        apns_id: echo.clone(),
    };

    // PROTOCOL.md 2.3: a repeated header.
    if has_duplicate_names(headers) {
        let dup_id = headers.iter().filter(|h| h.name() == b"apns-id").count() > 1;
        return Err(Rejection {
            reason: Reason::DuplicateHeaders,
            apns_id: if dup_id { None } else { echo.clone() },
        });
    }
    if apns_id_ok == Some(false) {
        return Err(reject(Reason::BadMessageId));
    }

    // PROTOCOL.md 2.3: non-POST → 405.
    if f.method != Some(b"POST".as_slice()) {
        return Err(reject(Reason::MethodNotAllowed));
    }

    // PROTOCOL.md 2.3 / 2.9: topic required with tokens and multi-topic certificates.
    let (topic, topic_defaulted) = match f.topic {
        Some(t) if !t.is_empty() => (
            Some(parse_topic(t).ok_or_else(|| reject(Reason::BadTopic))?),
            false,
        ),
        _ => match ctx.auth {
            ConnAuth::Certificate { topics, .. } if topics.len() == 1 => {
                (topics.first().cloned(), true)
            }
            _ => return Err(reject(Reason::MissingTopic)),
        },
    };

    // PROTOCOL.md 2.3: collapse id at most 64 bytes.
    let collapse_id = match f.collapse_id {
        None => None,
        Some(c) if c.len() <= MAX_COLLAPSE_ID_BYTES => Some(
            std::str::from_utf8(c)
                .map_err(|_| reject(Reason::BadCollapseId))?
                .to_owned(),
        ),
        Some(_) => return Err(reject(Reason::BadCollapseId)),
    };

    // PROTOCOL.md 2.3: decimal epoch seconds. Values past u32 are BadExpirationDate. [inferred]
    let expiry = match f.expiry {
        None => None,
        Some(e) => Some(parse_decimal_u32(e).ok_or_else(|| reject(Reason::BadExpirationDate))?),
    };

    // PROTOCOL.md 2.3: 10, 5 or 1; absent means 10.
    let (priority, priority_defaulted) = match f.priority {
        None => (10, true),
        Some(b"10") => (10, false),
        Some(b"5") => (5, false),
        Some(b"1") => (1, false),
        Some(_) => return Err(reject(Reason::BadPriority)),
    };

    // PROTOCOL.md 2.4: the push type.
    let (push_type, push_type_defaulted) = match f.push_type {
        Some(p) => (
            PushType::from_header(p).ok_or_else(|| reject(Reason::InvalidPushType))?,
            false,
        ),
        // Absent: infer from the topic suffix (PyAPNs2), else alert (apns2). Apple may drop such
        // pushes (PROTOCOL.md 2.3); the flag lets the engine or a rule act on it.
        None => (
            topic
                .as_deref()
                .and_then(PushType::implied_by_topic)
                .unwrap_or(PushType::Alert),
            true,
        ),
    };
    // PROTOCOL.md 2.4: suffix-bearing types need their suffix on the topic. A-BERR answers the
    // broadcast equivalent ("no push-type suffix on the bundle ID") with TopicDisallowed. [inferred]
    if let (Some(suffix), Some(t)) = (push_type.topic_suffix(), topic.as_deref()) {
        if !(t.len() > suffix.len() && t.ends_with(suffix)) {
            return Err(reject(Reason::TopicDisallowed));
        }
    }
    // PROTOCOL.md 2.4: background must use priority 5 (explicit 10 is the error; absent is let
    // through since Apple documents 10 as the default for every push). [inferred]
    if push_type == PushType::Background
        && priority == 10
        && !priority_defaulted
        && !ctx.settings.allow_background_priority_10
    {
        return Err(reject(Reason::BadPriority));
    }

    let token = parse_path(f.path, ctx.settings.strict_token_len).map_err(reject)?;

    let authority = f
        .authority
        .or(f.host)
        .and_then(|a| std::str::from_utf8(a).ok())
        .map(str::to_owned);

    Ok(ApnsRequest {
        token,
        apns_id: echo,
        expiry,
        priority,
        priority_defaulted,
        topic,
        topic_defaulted,
        push_type,
        push_type_defaulted,
        collapse_id,
        authorization: f.authorization.cloned(),
        authority,
        payload: body,
    })
}

/// A topic must be UTF-8, at most 255 bytes, with no whitespace or control characters. **[inferred]**
fn parse_topic(t: &[u8]) -> Option<String> {
    if t.len() > MAX_TOPIC_BYTES {
        return None;
    }
    let s = std::str::from_utf8(t).ok()?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(s.to_owned())
}

/// Plain decimal digits (no sign, no spaces) that fit in u32.
fn parse_decimal_u32(v: &[u8]) -> Option<u32> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// `:path` rules (PROTOCOL.md 2.3, Part 3).
///
/// `/3/device/` alone → MissingDeviceToken; anything not under `/3/device/`, or with a further `/`,
/// a query (`?`) or a fragment (`#`) → BadPath (APNs documents no query parameters, so a query is
/// treated as a malformed path **[inferred]**); a token segment that is not even-length hex of
/// 64..=200 characters (exactly 64 with `strict_token_len`) → BadDeviceToken. Hex of either case.
fn parse_path(path: Option<&[u8]>, strict: bool) -> Result<DeviceToken, Reason> {
    let path = path.ok_or(Reason::BadPath)?;
    let rest = path.strip_prefix(PATH_PREFIX).ok_or(Reason::BadPath)?;
    if rest.is_empty() {
        return Err(Reason::MissingDeviceToken);
    }
    if any_byte(rest, |b| matches!(b, b'/' | b'?' | b'#')) {
        return Err(Reason::BadPath);
    }
    let len_ok = if strict {
        rest.len() == 64
    } else {
        (64..=200).contains(&rest.len()) && rest.len() % 2 == 0
    };
    if !len_ok || any_byte(rest, |b| !b.is_ascii_hexdigit()) {
        return Err(Reason::BadDeviceToken);
    }
    let hex_str = std::str::from_utf8(rest).map_err(|_| Reason::BadDeviceToken)?;
    DeviceToken::from_hex(hex_str).ok_or(Reason::BadDeviceToken)
}

/// Certificate-connection auth stage (PROTOCOL.md 2.4, 2.9).
///
/// Certificate of the other environment → BadCertificateEnvironment; location and liveactivity
/// (token auth only) → TopicDisallowed **[inferred]**; a topic outside the certificate's list →
/// BadTopic (pushy).
pub fn check_certificate(
    req: &ApnsRequest,
    topics: &[String],
    environments: &[Environment],
    env: Environment,
) -> Result<(), Rejection> {
    if !environments.contains(&env) {
        return Err(req.reject(Reason::BadCertificateEnvironment));
    }
    if req.push_type.token_auth_only() {
        return Err(req.reject(Reason::TopicDisallowed));
    }
    match req.topic.as_deref() {
        Some(t) if topics.iter().any(|c| c == t) => Ok(()),
        _ => Err(req.reject(Reason::BadTopic)),
    }
}

/// Payload stage (PROTOCOL.md 2.5): empty → PayloadEmpty; over 4096 (VoIP 5120) → PayloadTooLarge.
pub fn check_payload(req: &ApnsRequest, settings: &RequestSettings) -> Result<(), Rejection> {
    let limit = if req.push_type == PushType::Voip {
        settings.max_payload_voip
    } else {
        settings.max_payload
    };
    if req.payload.is_empty() {
        Err(req.reject(Reason::PayloadEmpty))
    } else if req.payload.len() > limit {
        Err(req.reject(Reason::PayloadTooLarge))
    } else {
        Ok(())
    }
}

/// A request that passed every stage, with the token-auth outcome on token connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// The parsed request.
    pub request: ApnsRequest,
    /// `Some` on token connections: team, key and whether the connection just became trusted.
    pub auth: Option<AuthOk>,
}

/// Runs all stages in order (headers, auth, payload) for callers with no registry checks to insert.
///
/// `token_auth`, `registry` and `cache` are used on token connections only; `now` is UNIX seconds.
#[allow(clippy::too_many_arguments)]
pub fn validate(
    headers: &[impl Field],
    body: Bytes,
    ctx: &RequestContext<'_>,
    token_auth: &mut TokenAuth,
    registry: &KeyRegistry,
    cache: &VerifyCache,
    now: u64,
) -> Result<Validated, Rejection> {
    let request = parse_headers(headers, body, ctx)?;
    let auth = match ctx.auth {
        ConnAuth::Certificate {
            topics,
            environments,
        } => {
            check_certificate(&request, topics, environments, ctx.environment)?;
            None
        }
        ConnAuth::Token => Some(
            token_auth
                .check(
                    request.authorization.as_deref(),
                    request.topic.as_deref(),
                    ctx.environment,
                    now,
                    registry,
                    cache,
                )
                .map_err(|r| request.reject(r))?,
        ),
    };
    check_payload(&request, ctx.settings)?;
    Ok(Validated { request, auth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::auth::{sign_jwt, ProviderKey, SignatureForm};
    use crate::model::wire::topic_bundle;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    use proptest::prelude::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const ID: &str = "123e4567-e89b-12d3-a456-426614174000";
    const NOW: u64 = 1_700_000_000;

    fn h(pairs: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::copy_from_slice(n.as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                )
            })
            .collect()
    }

    fn base(path: &str) -> Vec<(&'static str, String)> {
        vec![
            (":method", "POST".into()),
            (":scheme", "https".into()),
            (":path", path.into()),
            (":authority", "api.push.apple.com".into()),
            ("apns-topic", "com.x".into()),
        ]
    }

    fn headers_with(extra: &[(&str, &str)], drop: &[&str]) -> Vec<(Bytes, Bytes)> {
        let path = format!("/3/device/{TOKEN}");
        let mut v: Vec<(String, String)> = base(&path)
            .into_iter()
            .filter(|(n, _)| !drop.contains(n))
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        for (n, val) in extra {
            if let Some(slot) = v.iter_mut().find(|(k, _)| k == n) {
                slot.1 = (*val).to_owned();
            } else {
                v.push(((*n).to_owned(), (*val).to_owned()));
            }
        }
        let refs: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        h(&refs)
    }

    fn cert_auth(topics: &[&str]) -> ConnAuth {
        ConnAuth::Certificate {
            topics: topics.iter().map(|s| s.to_string()).collect(),
            environments: vec![Environment::Production],
        }
    }

    fn parse_with(
        headers: &[(Bytes, Bytes)],
        auth: &ConnAuth,
        settings: &RequestSettings,
    ) -> Result<ApnsRequest, Rejection> {
        let ctx = RequestContext {
            environment: Environment::Production,
            auth,
            settings,
        };
        parse_headers(headers, Bytes::from_static(b"{}"), &ctx)
    }

    fn parse(extra: &[(&str, &str)], drop: &[&str]) -> Result<ApnsRequest, Reason> {
        parse_with(
            &headers_with(extra, drop),
            &ConnAuth::Token,
            &RequestSettings::default(),
        )
        .map_err(|r| r.reason)
    }

    #[test]
    fn minimal_request_parses() {
        let r = parse(&[], &[]).unwrap();
        assert_eq!(r.token.to_hex(), TOKEN);
        assert_eq!(r.priority, 10);
        assert!(r.priority_defaulted);
        assert_eq!(r.push_type, PushType::Alert);
        assert!(r.push_type_defaulted);
        assert_eq!(r.topic.as_deref(), Some("com.x"));
        assert_eq!(r.authority.as_deref(), Some("api.push.apple.com"));
        let n = r.into_notification();
        assert_eq!(n.push_type, None);
        assert_eq!(&n.payload[..], b"{}");
        assert_eq!(n.priority, 10);
    }

    #[test]
    fn full_request_parses_and_converts() {
        let upper = ID.to_uppercase();
        let r = parse(
            &[
                ("apns-id", &upper),
                ("apns-expiration", "1700000000"),
                ("apns-priority", "5"),
                ("apns-push-type", "voip"),
                ("apns-topic", "com.x.voip"),
                ("apns-collapse-id", "c1"),
                ("authorization", "bearer x"),
                ("x-unknown", "ignored"),
            ],
            &[":authority"],
        )
        .unwrap();
        assert_eq!(
            r.apns_id.as_deref(),
            Some(upper.as_str()),
            "echoed verbatim"
        );
        assert_eq!(r.expiry, Some(1_700_000_000));
        assert_eq!(r.priority, 5);
        assert_eq!(r.push_type, PushType::Voip);
        assert_eq!(r.authorization.as_deref(), Some(b"bearer x".as_slice()));
        assert_eq!(r.authority, None);
        let n: Notification = r.into();
        assert_eq!(n.push_type, Some(PushType::Voip));
        assert_eq!(n.collapse_id.as_deref(), Some("c1"));
        assert_eq!(n.expiry, Some(1_700_000_000));
        assert_eq!(n.apns_id.as_deref(), Some(upper.as_str()));
    }

    #[test]
    fn host_instead_of_authority() {
        let r = parse(&[("host", "api.sandbox.push.apple.com")], &[":authority"]).unwrap();
        assert_eq!(r.authority.as_deref(), Some("api.sandbox.push.apple.com"));
    }

    #[test]
    fn duplicate_headers() {
        for name in [
            "apns-topic",
            "apns-priority",
            "x-anything",
            ":path",
            "apns-id",
        ] {
            let mut hs = headers_with(
                &[
                    ("apns-id", ID),
                    ("apns-priority", "10"),
                    ("x-anything", "1"),
                ],
                &[],
            );
            let dup = hs
                .iter()
                .find(|(n, _)| n.as_ref() == name.as_bytes())
                .unwrap()
                .clone();
            hs.push(dup);
            let e = parse_with(&hs, &ConnAuth::Token, &RequestSettings::default()).unwrap_err();
            assert_eq!(e.reason, Reason::DuplicateHeaders, "{name}");
            assert_eq!(e.apns_id.is_some(), name != "apns-id");
        }
    }

    #[test]
    fn apns_id_rules() {
        assert!(parse(&[("apns-id", ID)], &[]).is_ok());
        for bad in [
            "",
            "nope",
            "123e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-42661417400g",
            "{123e4567-e89b-12d3-a456-426614174000}",
            " 123e4567-e89b-12d3-a456-42661417400",
        ] {
            assert_eq!(
                parse(&[("apns-id", bad)], &[]).unwrap_err(),
                Reason::BadMessageId,
                "{bad:?}"
            );
        }
        // Later rejections echo a valid id.
        let e = parse_with(
            &headers_with(&[("apns-id", ID), ("apns-priority", "7")], &[]),
            &ConnAuth::Token,
            &RequestSettings::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            Rejection {
                reason: Reason::BadPriority,
                apns_id: Some(ID.into())
            }
        );
    }

    #[test]
    fn method_rules() {
        assert_eq!(
            parse(&[(":method", "GET")], &[]).unwrap_err(),
            Reason::MethodNotAllowed
        );
        assert_eq!(
            parse(&[(":method", "post")], &[]).unwrap_err(),
            Reason::MethodNotAllowed
        );
        assert_eq!(
            parse(&[], &[":method"]).unwrap_err(),
            Reason::MethodNotAllowed
        );
        // Method is checked before the path (pushy's order).
        assert_eq!(
            parse(&[(":method", "GET"), (":path", "/x")], &[]).unwrap_err(),
            Reason::MethodNotAllowed
        );
    }

    #[test]
    fn path_rules() {
        let p = |path: &str| parse(&[(":path", path)], &[]);
        assert_eq!(p("/3/device/").unwrap_err(), Reason::MissingDeviceToken);
        assert_eq!(p("/3/device").unwrap_err(), Reason::BadPath);
        assert_eq!(p("/").unwrap_err(), Reason::BadPath);
        assert_eq!(p("/4/broadcasts/apps/com.x").unwrap_err(), Reason::BadPath);
        assert_eq!(
            p(&format!("/3/device/{TOKEN}?x=1")).unwrap_err(),
            Reason::BadPath
        );
        assert_eq!(
            p(&format!("/3/device/{TOKEN}/")).unwrap_err(),
            Reason::BadPath
        );
        assert_eq!(
            p(&format!("/3/device/{TOKEN}#f")).unwrap_err(),
            Reason::BadPath
        );
        assert_eq!(parse(&[], &[":path"]).unwrap_err(), Reason::BadPath);
        assert_eq!(p("/3/device/abc").unwrap_err(), Reason::BadDeviceToken);
        assert_eq!(
            p(&format!("/3/device/{}", &TOKEN[..63])).unwrap_err(),
            Reason::BadDeviceToken
        );
        assert_eq!(
            p(&format!("/3/device/{}g", &TOKEN[..63])).unwrap_err(),
            Reason::BadDeviceToken
        );
        assert_eq!(
            p(&format!("/3/device/{}", "ab".repeat(101))).unwrap_err(),
            Reason::BadDeviceToken
        );
        // Variable length and uppercase accepted (Part 3).
        let long = "AB".repeat(80);
        let r = p(&format!("/3/device/{long}")).unwrap();
        assert_eq!(r.token.len(), 80);
        assert_eq!(r.token.to_hex(), long.to_lowercase());
        assert!(p(&format!("/3/device/{}", "ab".repeat(100))).is_ok());
        // Strict: exactly 64.
        let strict = RequestSettings {
            strict_token_len: true,
            ..Default::default()
        };
        let hs = headers_with(&[(":path", &format!("/3/device/{long}"))], &[]);
        assert_eq!(
            parse_with(&hs, &ConnAuth::Token, &strict)
                .unwrap_err()
                .reason,
            Reason::BadDeviceToken
        );
        assert!(parse_with(&headers_with(&[], &[]), &ConnAuth::Token, &strict).is_ok());
    }

    #[test]
    fn expiry_rules() {
        assert_eq!(
            parse(&[("apns-expiration", "0")], &[]).unwrap().expiry,
            Some(0)
        );
        assert_eq!(
            parse(&[("apns-expiration", "4294967295")], &[])
                .unwrap()
                .expiry,
            Some(u32::MAX)
        );
        for bad in [
            "",
            "-1",
            "+5",
            "1.5",
            "abc",
            " 1",
            "4294967296",
            "99999999999999999999999",
        ] {
            assert_eq!(
                parse(&[("apns-expiration", bad)], &[]).unwrap_err(),
                Reason::BadExpirationDate,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn priority_rules() {
        for (v, p) in [("10", 10), ("5", 5), ("1", 1)] {
            let r = parse(&[("apns-priority", v)], &[]).unwrap();
            assert_eq!(r.priority, p);
            assert!(!r.priority_defaulted);
        }
        for bad in ["", "0", "2", "05", "10 ", "high", "11"] {
            assert_eq!(
                parse(&[("apns-priority", bad)], &[]).unwrap_err(),
                Reason::BadPriority,
                "{bad:?}"
            );
        }
        // Background with explicit 10 is an error; with 5 or absent it is not.
        assert_eq!(
            parse(
                &[("apns-push-type", "background"), ("apns-priority", "10")],
                &[]
            )
            .unwrap_err(),
            Reason::BadPriority
        );
        assert!(parse(
            &[("apns-push-type", "background"), ("apns-priority", "5")],
            &[]
        )
        .is_ok());
        assert!(parse(&[("apns-push-type", "background")], &[]).is_ok());
        let lax = RequestSettings {
            allow_background_priority_10: true,
            ..Default::default()
        };
        let hs = headers_with(
            &[("apns-push-type", "background"), ("apns-priority", "10")],
            &[],
        );
        assert!(parse_with(&hs, &ConnAuth::Token, &lax).is_ok());
    }

    #[test]
    fn push_type_rules() {
        for p in PushType::ALL {
            let topic = format!("com.x{}", p.topic_suffix().unwrap_or(""));
            let r = parse(
                &[
                    ("apns-push-type", p.as_str()),
                    ("apns-topic", &topic),
                    ("apns-priority", "5"),
                ],
                &[],
            )
            .unwrap();
            assert_eq!(r.push_type, p);
            assert!(!r.push_type_defaulted);
            assert_eq!(topic_bundle(&topic), "com.x");
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
        for bad in ["", "Alert", "ALERT", "notification", "alert "] {
            assert_eq!(
                parse(&[("apns-push-type", bad)], &[]).unwrap_err(),
                Reason::InvalidPushType,
                "{bad:?}"
            );
        }
        // Suffix mismatch.
        assert_eq!(
            parse(&[("apns-push-type", "voip")], &[]).unwrap_err(),
            Reason::TopicDisallowed
        );
        assert_eq!(
            parse(
                &[
                    ("apns-push-type", "liveactivity"),
                    ("apns-topic", "com.x.liveactivity")
                ],
                &[]
            )
            .unwrap_err(),
            Reason::TopicDisallowed
        );
        assert_eq!(
            parse(&[("apns-push-type", "voip"), ("apns-topic", ".voip")], &[]).unwrap_err(),
            Reason::TopicDisallowed
        );
        // Missing push type: implied by the topic suffix.
        let r = parse(&[("apns-topic", "com.x.voip")], &[]).unwrap();
        assert_eq!((r.push_type, r.push_type_defaulted), (PushType::Voip, true));
        assert_eq!(topic_bundle("com.x"), "com.x");
        assert_eq!(topic_bundle(".voip"), ".voip");
    }

    #[test]
    fn topic_rules_token_auth() {
        assert_eq!(
            parse(&[], &["apns-topic"]).unwrap_err(),
            Reason::MissingTopic
        );
        assert_eq!(
            parse(&[("apns-topic", "")], &[]).unwrap_err(),
            Reason::MissingTopic
        );
        assert_eq!(
            parse(&[("apns-topic", "com x")], &[]).unwrap_err(),
            Reason::BadTopic
        );
        assert_eq!(
            parse(&[("apns-topic", &"a".repeat(256))], &[]).unwrap_err(),
            Reason::BadTopic
        );
        let hs = vec![(
            Bytes::from_static(b"apns-topic"),
            Bytes::from_static(b"\xff"),
        )];
        let mut all = headers_with(&[], &["apns-topic"]);
        all.extend(hs);
        assert_eq!(
            parse_with(&all, &ConnAuth::Token, &RequestSettings::default())
                .unwrap_err()
                .reason,
            Reason::BadTopic
        );
    }

    #[test]
    fn topic_rules_certificate_auth() {
        let s = RequestSettings::default();
        let single = cert_auth(&["com.x"]);
        let r = parse_with(&headers_with(&[], &["apns-topic"]), &single, &s).unwrap();
        assert_eq!(r.topic.as_deref(), Some("com.x"));
        assert!(r.topic_defaulted);
        let multi = cert_auth(&["com.x", "com.x.voip", "com.x.complication"]);
        assert_eq!(
            parse_with(&headers_with(&[], &["apns-topic"]), &multi, &s)
                .unwrap_err()
                .reason,
            Reason::MissingTopic
        );
    }

    #[test]
    fn collapse_id_rules() {
        let ok = "c".repeat(64);
        assert_eq!(
            parse(&[("apns-collapse-id", &ok)], &[])
                .unwrap()
                .collapse_id
                .as_deref(),
            Some(ok.as_str())
        );
        assert_eq!(
            parse(&[("apns-collapse-id", &"c".repeat(65))], &[]).unwrap_err(),
            Reason::BadCollapseId
        );
        // 22 three-byte characters = 66 bytes although only 22 chars.
        assert_eq!(
            parse(&[("apns-collapse-id", &"€".repeat(22))], &[]).unwrap_err(),
            Reason::BadCollapseId
        );
    }

    fn run_cert(
        auth: &ConnAuth,
        extra: &[(&str, &str)],
        drop: &[&str],
        body: &[u8],
        env: Environment,
    ) -> Result<Validated, Rejection> {
        let settings = RequestSettings::default();
        let ctx = RequestContext {
            environment: env,
            auth,
            settings: &settings,
        };
        validate(
            &headers_with(extra, drop),
            Bytes::copy_from_slice(body),
            &ctx,
            &mut TokenAuth::new(),
            &KeyRegistry::new(),
            &VerifyCache::new(),
            NOW,
        )
    }

    #[test]
    fn certificate_stage() {
        let auth = cert_auth(&["com.x", "com.x.voip", "com.x.complication"]);
        let p = Environment::Production;
        assert!(run_cert(&auth, &[], &[], b"{}", p).unwrap().auth.is_none());
        assert!(run_cert(
            &auth,
            &[("apns-topic", "com.x.voip"), ("apns-push-type", "voip")],
            &[],
            b"{}",
            p
        )
        .is_ok());
        let e = run_cert(
            &auth,
            &[("apns-topic", "com.y"), ("apns-id", ID)],
            &[],
            b"{}",
            p,
        )
        .unwrap_err();
        assert_eq!(
            e,
            Rejection {
                reason: Reason::BadTopic,
                apns_id: Some(ID.into())
            }
        );
        assert_eq!(
            run_cert(
                &auth,
                &[
                    ("apns-topic", "com.x.push-type.liveactivity"),
                    ("apns-push-type", "liveactivity")
                ],
                &[],
                b"{}",
                p
            )
            .unwrap_err()
            .reason,
            Reason::TopicDisallowed
        );
        assert_eq!(
            run_cert(
                &auth,
                &[
                    ("apns-topic", "com.x.location-query"),
                    ("apns-push-type", "location")
                ],
                &[],
                b"{}",
                p
            )
            .unwrap_err()
            .reason,
            Reason::TopicDisallowed
        );
        assert_eq!(
            run_cert(&auth, &[], &[], b"{}", Environment::Sandbox)
                .unwrap_err()
                .reason,
            Reason::BadCertificateEnvironment
        );
        // The authorization header is ignored on certificate connections (PROTOCOL.md 2.9).
        assert!(run_cert(&auth, &[("authorization", "bearer junk")], &[], b"{}", p).is_ok());
    }

    #[test]
    fn payload_stage() {
        let auth = cert_auth(&["com.x", "com.x.voip"]);
        let p = Environment::Production;
        assert_eq!(
            run_cert(&auth, &[], &[], b"", p).unwrap_err().reason,
            Reason::PayloadEmpty
        );
        assert!(run_cert(&auth, &[], &[], &[b' '; 4096], p).is_ok());
        assert_eq!(
            run_cert(&auth, &[], &[], &[b' '; 4097], p)
                .unwrap_err()
                .reason,
            Reason::PayloadTooLarge
        );
        let voip = [("apns-topic", "com.x.voip"), ("apns-push-type", "voip")];
        assert!(run_cert(&auth, &voip, &[], &[b' '; 5120], p).is_ok());
        assert_eq!(
            run_cert(&auth, &voip, &[], &[b' '; 5121], p)
                .unwrap_err()
                .reason,
            Reason::PayloadTooLarge
        );
    }

    fn p8() -> String {
        p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into())
            .unwrap()
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn token_connection_end_to_end() {
        let pem = p8();
        let mut reg = KeyRegistry::new();
        reg.insert(ProviderKey::from_pem("KID1234567", "TEAM123456", &pem).unwrap());
        let cache = VerifyCache::new();
        let settings = RequestSettings::default();
        let auth = ConnAuth::Token;
        let ctx = RequestContext {
            environment: Environment::Sandbox,
            auth: &auth,
            settings: &settings,
        };
        let mut conn = TokenAuth::new();
        let jwt = sign_jwt(&pem, "KID1234567", "TEAM123456", NOW, SignatureForm::Der).unwrap();
        let bearer = format!("bearer {jwt}");

        let run =
            |conn: &mut TokenAuth, extra: &[(&str, &str)], drop: &[&str], body: &[u8], now: u64| {
                validate(
                    &headers_with(extra, drop),
                    Bytes::copy_from_slice(body),
                    &ctx,
                    conn,
                    &reg,
                    &cache,
                    now,
                )
            };
        // Missing token.
        let e = run(&mut conn, &[("apns-id", ID)], &[], b"{}", NOW).unwrap_err();
        assert_eq!(
            e,
            Rejection {
                reason: Reason::MissingProviderToken,
                apns_id: Some(ID.into())
            }
        );
        assert!(!conn.first_valid_seen());
        // Header errors come before auth.
        assert_eq!(
            run(&mut conn, &[("apns-priority", "3")], &[], b"{}", NOW)
                .unwrap_err()
                .reason,
            Reason::BadPriority
        );
        // Valid.
        let v = run(&mut conn, &[("authorization", &bearer)], &[], b"{}", NOW).unwrap();
        assert!(v.auth.unwrap().newly_valid);
        assert!(conn.first_valid_seen());
        // Auth comes before the payload.
        assert_eq!(
            run(&mut conn, &[], &[], b"", NOW).unwrap_err().reason,
            Reason::MissingProviderToken
        );
        assert_eq!(
            run(&mut conn, &[("authorization", &bearer)], &[], b"", NOW)
                .unwrap_err()
                .reason,
            Reason::PayloadEmpty
        );
        assert_eq!(
            run(
                &mut conn,
                &[("authorization", &bearer)],
                &[],
                b"{}",
                NOW + 3601
            )
            .unwrap_err()
            .reason,
            Reason::ExpiredProviderToken
        );
        let v = run(
            &mut conn,
            &[("authorization", &bearer)],
            &[],
            b"{}",
            NOW + 10,
        )
        .unwrap();
        assert!(!v.auth.unwrap().newly_valid);
    }

    proptest! {
        #[test]
        fn arbitrary_header_lists_never_panic(
            raw in proptest::collection::vec(
                (prop_oneof![
                    Just(b":method".to_vec()), Just(b":path".to_vec()), Just(b"apns-id".to_vec()),
                    Just(b"apns-topic".to_vec()), Just(b"apns-priority".to_vec()), Just(b"apns-expiration".to_vec()),
                    Just(b"apns-push-type".to_vec()), Just(b"apns-collapse-id".to_vec()), Just(b"authorization".to_vec()),
                    Just(b"host".to_vec()), proptest::collection::vec(any::<u8>(), 0..12)
                ], proptest::collection::vec(any::<u8>(), 0..80)),
                0..14),
            body in proptest::collection::vec(any::<u8>(), 0..64),
            token_auth in any::<bool>(),
        ) {
            let hs: Vec<(Bytes, Bytes)> = raw.into_iter().map(|(n, v)| (Bytes::from(n), Bytes::from(v))).collect();
            let auth = if token_auth { ConnAuth::Token } else { cert_auth(&["com.x", "com.x.voip"]) };
            let settings = RequestSettings::default();
            let ctx = RequestContext { environment: Environment::Sandbox, auth: &auth, settings: &settings };
            let _ = validate(&hs, Bytes::from(body), &ctx, &mut TokenAuth::new(), &KeyRegistry::new(), &VerifyCache::new(), NOW);
        }

        #[test]
        fn arbitrary_paths_never_panic_and_valid_tokens_round_trip(path in ".{0,260}", bytes in proptest::collection::vec(any::<u8>(), 32..=100)) {
            let _ = parse(&[(":path", &path)], &[]);
            let hex_token = hex::encode(&bytes);
            let r = parse(&[(":path", &format!("/3/device/{hex_token}"))], &[]).unwrap();
            prop_assert_eq!(r.token.as_bytes(), &bytes[..]);
        }
    }
}
