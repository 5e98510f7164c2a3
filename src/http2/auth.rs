//! Provider-token (JWT ES256) authentication for the HTTP/2 API: keys, parsing, verification, caching
//! and the per-connection token rules (PROTOCOL.md 2.2, 2.8, Part 3).
//!
//! Sans-IO: every time-dependent check takes `now` (UNIX seconds) from the caller.

use crate::http2::reason::Reason;
use crate::http2::team_tokens::{TeamTokenUpdates, TokenUpdateScope};
use crate::model::wire::topic_bundle;
use crate::model::Environment;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Longest JWT we look at: real ones are ~200 bytes; the cap bounds parsing and cache memory.
pub const MAX_JWT_LEN: usize = 2048;
/// Default number of distinct JWT strings the shared verification cache remembers.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Cap on recorded quirk names per connection, so a hostile client cannot grow them.
const MAX_QUIRK_NAMES: usize = 16;
/// Cap on the length of one recorded quirk name.
const MAX_QUIRK_NAME_LEN: usize = 32;

/// base64url that tolerates padding on input, since some JWT libraries pad (RFC 7515 says not to).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a key could not be loaded or a token could not be signed: surfaced to users loading .p8 files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The PEM is neither a PKCS#8 P-256 private key, a SEC1 EC private key, nor a P-256 public key.
    #[error("not a P-256 key in PEM form (expected a .p8 PKCS#8 private key or a public key)")]
    NotAP256Key,
    /// A signing operation needs the private half.
    #[error("a private key (.p8) is needed to sign")]
    NotPrivate,
    /// Encoding a generated key failed.
    #[error("could not encode the key: {0}")]
    Encode(String),
}

/// How a JWT signature was encoded: APNs accepts both (PROTOCOL.md 2.8), and a conformance report says which.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SignatureForm {
    /// JOSE's 64-byte r‖s (RFC 7518 3.4).
    Raw,
    /// ASN.1 DER, as Java's SHA256withECDSA produces (pushy).
    Der,
}

/// How the `iat` claim was written: Apple documents an integer, libraries differ (PROTOCOL.md Part 3).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum IatForm {
    /// A JSON integer.
    Integer,
    /// A JSON number with a fraction or exponent (truncated to whole seconds).
    Float,
    /// A JSON string holding a number.
    String,
}

/// One registered provider key: what APNs knows about a key id (PROTOCOL.md 2.8, A-TOKEN, A-NEWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    /// The 10-character key id carried in the JWT header `kid`.
    pub key_id: String,
    /// The team the key belongs to; the JWT `iss` must equal it.
    pub team_id: String,
    /// The public key that verifies the JWT signature.
    pub verifying_key: VerifyingKey,
    /// `Some` for a key scoped to one environment; `None` for an older key valid in both.
    pub environment: Option<Environment>,
    /// `Some` for a topic-specific key (bundle ids it may push to); `None` for a team key.
    pub topics: Option<Vec<String>>,
    /// The one related key a topic-specific key may share a connection with.
    pub related_key_id: Option<String>,
}

impl ProviderKey {
    /// A team key valid in both environments, the pre-2025 default.
    pub fn new(
        key_id: impl Into<String>,
        team_id: impl Into<String>,
        verifying_key: VerifyingKey,
    ) -> Self {
        ProviderKey {
            key_id: key_id.into(),
            team_id: team_id.into(),
            verifying_key,
            environment: None,
            topics: None,
            related_key_id: None,
        }
    }

    /// Loads a key from a `.p8` (PKCS#8 private key, public key derived), SEC1 EC or public-key PEM.
    pub fn from_pem(
        key_id: impl Into<String>,
        team_id: impl Into<String>,
        pem: &str,
    ) -> Result<Self, KeyError> {
        Ok(ProviderKey::new(
            key_id,
            team_id,
            verifying_key_from_pem(pem)?,
        ))
    }

    /// Scopes the key to one environment (A-NEWS: team-scoped keys since 2025-02).
    pub fn scoped_to(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Makes the key topic-specific (A-NEWS).
    pub fn for_topics(mut self, topics: Vec<String>) -> Self {
        self.topics = Some(topics);
        self
    }

    /// Names the key's one related key, which may share a connection with it (A-NEWS).
    pub fn related_to(mut self, key_id: impl Into<String>) -> Self {
        self.related_key_id = Some(key_id.into());
        self
    }

    /// Whether a topic-specific key covers a topic, counting push-type suffixes of its bundle ids.
    pub fn allows_topic(&self, topic: &str) -> bool {
        match &self.topics {
            None => true,
            Some(list) => {
                let bundle = topic_bundle(topic);
                list.iter().any(|t| t == topic || t == bundle)
            }
        }
    }
}

/// Derives the verifying key from any of the PEM forms users hold.
fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    if let Ok(sk) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(*sk.verifying_key());
    }
    if let Ok(sk) = p256::SecretKey::from_sec1_pem(pem) {
        return Ok(*SigningKey::from(sk).verifying_key());
    }
    VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::NotAP256Key)
}

/// Reads the private half of a key for signing (`.p8` PKCS#8 or SEC1).
fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    if let Ok(sk) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(sk);
    }
    if let Ok(sk) = p256::SecretKey::from_sec1_pem(pem) {
        return Ok(SigningKey::from(sk));
    }
    if VerifyingKey::from_public_key_pem(pem).is_ok() {
        return Err(KeyError::NotPrivate);
    }
    Err(KeyError::NotAP256Key)
}

/// The key ids APNs knows, by `kid`: what the emulator was told about the provider's keys.
#[derive(Debug, Clone, Default)]
pub struct KeyRegistry {
    keys: HashMap<String, ProviderKey>,
}

impl KeyRegistry {
    /// An empty registry: every token is InvalidProviderToken until keys are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a key; the verification cache notices a replaced public key.
    pub fn insert(&mut self, key: ProviderKey) -> Option<ProviderKey> {
        self.keys.insert(key.key_id.clone(), key)
    }

    /// Revokes a key, so later requests with it fail as Apple's would.
    pub fn remove(&mut self, key_id: &str) -> Option<ProviderKey> {
        self.keys.remove(key_id)
    }

    /// Looks a key up by `kid`.
    pub fn get(&self, key_id: &str) -> Option<&ProviderKey> {
        self.keys.get(key_id)
    }

    /// Number of keys, for the control API.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// All keys, for listing in the control API.
    pub fn iter(&self) -> impl Iterator<Item = &ProviderKey> {
        self.keys.values()
    }

    /// Whether two key ids may share a connection: the same key, or each other's related key (A-NEWS).
    pub fn related(&self, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        let points_to = |from: &str, to: &str| {
            self.keys
                .get(from)
                .and_then(|k| k.related_key_id.as_deref())
                .is_some_and(|r| r == to)
        };
        points_to(a, b) || points_to(b, a)
    }
}

/// What a verified JWT says, kept in the shared cache so repeated use of one JWT costs no ECDSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// Header `kid`.
    pub key_id: Arc<str>,
    /// Claim `iss` (team id).
    pub team_id: Arc<str>,
    /// Claim `iat`, whole seconds.
    pub issued_at: u64,
    /// The key the signature was checked against (a replaced key invalidates the cache entry).
    verified_with: VerifyingKey,
    /// How this token was written.
    pub quirks: TokenQuirks,
}

/// Deviations of one JWT from Apple's minimal form, for conformance reports (PROTOCOL.md 2.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenQuirks {
    /// The `iat` form.
    pub iat_form: IatForm,
    /// The signature encoding.
    pub signature_form: SignatureForm,
    /// Header fields besides `alg` and `kid` (e.g. `typ`).
    pub extra_header_fields: Vec<String>,
    /// Claims besides `iss` and `iat` (e.g. `exp`).
    pub extra_claims: Vec<String>,
}

/// Everything a connection's tokens did that Apple's minimal form does not, accumulated per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JwtQuirks {
    /// `iat` forms seen.
    pub iat_forms: BTreeSet<IatForm>,
    /// Signature encodings seen.
    pub signature_forms: BTreeSet<SignatureForm>,
    /// Spellings of the `bearer` scheme seen (e.g. `Bearer`).
    pub scheme_spellings: BTreeSet<String>,
    /// Extra header fields seen.
    pub extra_header_fields: BTreeSet<String>,
    /// Extra claims seen.
    pub extra_claims: BTreeSet<String>,
}

impl JwtQuirks {
    fn absorb(&mut self, q: &TokenQuirks) {
        self.iat_forms.insert(q.iat_form);
        self.signature_forms.insert(q.signature_form);
        for name in &q.extra_header_fields {
            bounded_insert(&mut self.extra_header_fields, name);
        }
        for name in &q.extra_claims {
            bounded_insert(&mut self.extra_claims, name);
        }
    }
}

fn bounded_insert(set: &mut BTreeSet<String>, name: &str) {
    if set.len() < MAX_QUIRK_NAMES && !set.contains(name) {
        set.insert(truncate(name));
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(MAX_QUIRK_NAME_LEN).collect()
}

/// A cache entry: the outcome of one ECDSA verification of one JWT string.
#[derive(Debug, Clone)]
enum CacheEntry {
    Valid(Arc<VerifiedJwt>),
    BadSignature { key_id: Arc<str>, key: VerifyingKey },
}

/// Verification results shared by all connections: providers reuse one JWT for up to an hour, so the
/// hot path must not run ECDSA per request (PROTOCOL.md 2.8).
///
/// Cloning shares the cache. When full it is cleared (simple and bounded).
#[derive(Debug, Clone)]
pub struct VerifyCache {
    inner: Arc<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    map: Mutex<HashMap<Box<str>, CacheEntry>>,
    capacity: usize,
    verifications: AtomicU64,
    hits: AtomicU64,
}

impl Default for VerifyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl VerifyCache {
    /// A cache of [`DEFAULT_CACHE_CAPACITY`] entries.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// A cache of a chosen size (at least 1), for tests and tuning.
    pub fn with_capacity(capacity: usize) -> Self {
        VerifyCache {
            inner: Arc::new(CacheInner {
                map: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                verifications: AtomicU64::new(0),
                hits: AtomicU64::new(0),
            }),
        }
    }

    /// How many ECDSA verifications ran: proves the cache works and feeds metrics.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    /// How many lookups were answered from the cache.
    pub fn hits(&self) -> u64 {
        self.inner.hits.load(Ordering::Relaxed)
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.map.lock().len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything, e.g. after the key registry changed wholesale.
    pub fn clear(&self) {
        self.inner.map.lock().clear();
    }

    fn get(&self, jwt: &str) -> Option<CacheEntry> {
        self.inner.map.lock().get(jwt).cloned()
    }

    fn put(&self, jwt: &str, entry: CacheEntry) {
        let mut map = self.inner.map.lock();
        if map.len() >= self.inner.capacity && !map.contains_key(jwt) {
            map.clear();
        }
        map.insert(jwt.into(), entry);
    }

    /// Checks a JWT's structure and signature against the registry, using the cache when it can.
    ///
    /// Time-independent: age, team binding and topic rules are the caller's (see [`TokenAuth::check`]).
    /// Any failure is InvalidProviderToken (PROTOCOL.md 2.8, pushy: undecodable, unknown kid, bad signature).
    pub fn verify(&self, jwt: &str, registry: &KeyRegistry) -> Result<Arc<VerifiedJwt>, Reason> {
        if jwt.len() > MAX_JWT_LEN {
            return Err(Reason::InvalidProviderToken);
        }
        if let Some(entry) = self.get(jwt) {
            match entry {
                CacheEntry::Valid(v) => {
                    if registry
                        .get(&v.key_id)
                        .is_some_and(|k| k.verifying_key == v.verified_with)
                    {
                        self.inner.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(v);
                    }
                }
                CacheEntry::BadSignature { key_id, key } => {
                    if registry
                        .get(&key_id)
                        .is_some_and(|k| k.verifying_key == key)
                    {
                        self.inner.hits.fetch_add(1, Ordering::Relaxed);
                        return Err(Reason::InvalidProviderToken);
                    }
                }
            }
            // The key behind the entry changed or vanished: fall through and decide afresh.
        }
        let parsed = parse_jwt(jwt).ok_or(Reason::InvalidProviderToken)?;
        let key = registry
            .get(&parsed.key_id)
            .ok_or(Reason::InvalidProviderToken)?
            .verifying_key;
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        let ok = verify_signature(&key, parsed.signing_input.as_bytes(), &parsed.signature);
        let key_id: Arc<str> = parsed.key_id.into();
        if !ok {
            self.put(jwt, CacheEntry::BadSignature { key_id, key });
            return Err(Reason::InvalidProviderToken);
        }
        let verified = Arc::new(VerifiedJwt {
            key_id,
            team_id: parsed.team_id.into(),
            issued_at: parsed.issued_at,
            verified_with: key,
            quirks: parsed.quirks,
        });
        self.put(jwt, CacheEntry::Valid(Arc::clone(&verified)));
        Ok(verified)
    }
}

/// ECDSA P-256/SHA-256 check; high-S signatures (Java produces them) are accepted like low-S ones.
fn verify_signature(key: &VerifyingKey, msg: &[u8], sig: &Signature) -> bool {
    if key.verify(msg, sig).is_ok() {
        return true;
    }
    match sig.normalize_s() {
        Some(low) => key.verify(msg, &low).is_ok(),
        None => false,
    }
}

/// A structurally valid JWT, before its signature is checked.
struct ParsedJwt<'a> {
    key_id: String,
    team_id: String,
    issued_at: u64,
    signing_input: &'a str,
    signature: Signature,
    quirks: TokenQuirks,
}

/// Decodes `header.claims.signature`; `None` for anything APNs would call undecodable.
fn parse_jwt(jwt: &str) -> Option<ParsedJwt<'_>> {
    let mut parts = jwt.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let signing_input = jwt.get(..h.len().checked_add(1)?.checked_add(c.len())?)?;

    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&B64URL.decode(h).ok()?).ok()?;
    // PROTOCOL.md 2.8: only ES256.
    if header.get("alg")?.as_str()? != "ES256" {
        return None;
    }
    let key_id = header.get("kid")?.as_str()?;
    if key_id.is_empty() {
        return None;
    }
    let extra_header_fields = extra_names(&header, &["alg", "kid"]);

    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&B64URL.decode(c).ok()?).ok()?;
    let team_id = claims.get("iss")?.as_str()?;
    if team_id.is_empty() {
        return None;
    }
    let (issued_at, iat_form) = parse_iat(claims.get("iat")?)?;
    let extra_claims = extra_names(&claims, &["iss", "iat"]);

    let sig_bytes = B64URL.decode(s).ok()?;
    // PROTOCOL.md 2.8 / Part 3: raw r‖s or DER.
    let (signature, signature_form) = if sig_bytes.len() == 64 {
        (Signature::from_slice(&sig_bytes).ok()?, SignatureForm::Raw)
    } else {
        (Signature::from_der(&sig_bytes).ok()?, SignatureForm::Der)
    };

    Some(ParsedJwt {
        key_id: key_id.to_owned(),
        team_id: team_id.to_owned(),
        issued_at,
        signing_input,
        signature,
        quirks: TokenQuirks {
            iat_form,
            signature_form,
            extra_header_fields,
            extra_claims,
        },
    })
}

fn extra_names(map: &serde_json::Map<String, serde_json::Value>, known: &[&str]) -> Vec<String> {
    map.keys()
        .filter(|k| !known.contains(&k.as_str()))
        .take(MAX_QUIRK_NAMES)
        .map(|k| truncate(k))
        .collect()
}

/// Largest `iat` we take seriously (year ~33658); beyond it the token is nonsense.
const MAX_IAT: u64 = 1 << 40;

/// `iat` as integer, float or numeric string (PROTOCOL.md Part 3: record the form).
fn parse_iat(v: &serde_json::Value) -> Option<(u64, IatForm)> {
    let (secs, form) = match v {
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(i) => (i, IatForm::Integer),
            None => (float_secs(n.as_f64()?)?, IatForm::Float),
        },
        serde_json::Value::String(s) => {
            let s = s.trim();
            if s.is_empty() || s.len() > 32 {
                return None;
            }
            let secs = match s.parse::<u64>() {
                Ok(i) => i,
                Err(_) => float_secs(s.parse::<f64>().ok()?)?,
            };
            (secs, IatForm::String)
        }
        _ => return None,
    };
    (secs <= MAX_IAT).then_some((secs, form))
}

fn float_secs(f: f64) -> Option<u64> {
    // The range check keeps the cast exact and excludes NaN and infinities.
    (f.is_finite() && (0.0..=MAX_IAT as f64).contains(&f)).then(|| f.trunc() as u64)
}

/// Extracts the JWT from an `authorization` value (PROTOCOL.md 2.3, Part 3: `bearer` any case).
///
/// Returns the JWT and the scheme as spelled. A missing, empty or non-bearer value is
/// MissingProviderToken (pushy); bytes that are not UTF-8 are InvalidProviderToken.
pub fn parse_authorization(value: Option<&[u8]>) -> Result<(&str, &str), Reason> {
    let raw = value.ok_or(Reason::MissingProviderToken)?;
    let text = std::str::from_utf8(raw).map_err(|_| Reason::InvalidProviderToken)?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t');
    if text.is_empty() {
        return Err(Reason::MissingProviderToken);
    }
    let (scheme, rest) = match text.find([' ', '\t']) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Reason::MissingProviderToken);
    }
    let jwt = rest.trim_matches(|c: char| c == ' ' || c == '\t');
    if jwt.is_empty() {
        return Err(Reason::MissingProviderToken);
    }
    Ok((jwt, scheme))
}

/// Token-age and update-rate limits, as settings so tests and scenarios can move them (PROTOCOL.md 2.8, Part 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct AuthSettings {
    /// A token older than this (seconds since `iat`) is ExpiredProviderToken (A-TOKEN: 1 hour).
    pub max_token_age_secs: u64,
    /// An `iat` further than this in the future is InvalidProviderToken (Part 3: 60 s).
    pub future_tolerance_secs: u64,
    /// A new token sooner than this after the previous one is TooManyProviderTokenUpdates (A-TOKEN: 20 min).
    pub min_update_interval_secs: u64,
    /// Age a token from the later of `iat` and its first use on the connection (conformance's
    /// compressed token life; Apple ages from `iat`).
    pub age_from_first_use: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            max_token_age_secs: 3600,
            future_tolerance_secs: 60,
            min_update_interval_secs: 1200,
            age_from_first_use: false,
        }
    }
}

/// A successful token check: who the provider is, and whether the connection just became trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOk {
    /// The team bound to the connection.
    pub team_id: Arc<str>,
    /// The key that signed this request's token.
    pub key_id: Arc<str>,
    /// True on the connection's first valid token: the stream limit may rise from 1 (PROTOCOL.md 2.2).
    pub newly_valid: bool,
    /// True when this request brought a different JWT than the connection's previous one.
    pub token_changed: bool,
    /// The token's `iat`: conformance checks that a refresh really signed anew.
    pub issued_at: u64,
    /// A short hash of the JWT, so the journal can tell tokens apart without storing them.
    pub fingerprint: u64,
}

/// Per-connection token state: one team per connection, related keys only, and at most one token
/// update per 20 minutes (PROTOCOL.md 2.2, 2.8). One per HTTP/2 connection.
#[derive(Debug, Clone, Default)]
pub struct TokenAuth {
    settings: AuthSettings,
    team_id: Option<Arc<str>>,
    first_key_id: Option<Arc<str>>,
    current: Option<Current>,
    last_absorbed: Option<Box<str>>,
    quirks: JwtQuirks,
    /// The emulator's per-team update table; `None` counts updates per connection.
    teams: Option<Arc<TeamTokenUpdates>>,
    /// The environment of the connection's first valid token, for the per-team table.
    environment: Option<Environment>,
    /// When each recent token (by fingerprint) was first presented on this connection, for
    /// `age_from_first_use`; bounded to [`FIRST_USES`] entries.
    first_uses: Vec<(u64, u64)>,
}

/// Tokens whose first use a connection remembers (a provider rotates through very few).
const FIRST_USES: usize = 16;

#[derive(Debug, Clone)]
struct Current {
    jwt: Box<str>,
    verified: Arc<VerifiedJwt>,
    since: u64,
}

impl TokenAuth {
    /// Fresh state for a new connection, with Apple's limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fresh state with chosen limits.
    pub fn with_settings(settings: AuthSettings) -> Self {
        TokenAuth {
            settings,
            ..Self::default()
        }
    }

    /// Counts token updates per team across connections in `teams`, or per connection, as
    /// `scope` says (PROTOCOL.md 2.8).
    pub fn counting_updates(
        mut self,
        scope: TokenUpdateScope,
        teams: &Arc<TeamTokenUpdates>,
    ) -> Self {
        self.teams = (scope == TokenUpdateScope::Team).then(|| Arc::clone(teams));
        self
    }

    /// When `jwt` was first presented on this connection (now, if never before).
    fn first_use(&mut self, jwt: &str, now: u64) -> u64 {
        let fp = fingerprint(jwt);
        if let Some((_, at)) = self.first_uses.iter().find(|(f, _)| *f == fp) {
            return *at;
        }
        if self.first_uses.len() >= FIRST_USES {
            self.first_uses.remove(0);
        }
        self.first_uses.push((fp, now));
        now
    }

    /// True once a valid token was posted: the stream limit rises from 1 to 1000 (PROTOCOL.md 2.2, Part 3).
    pub fn first_valid_seen(&self) -> bool {
        self.current.is_some()
    }

    /// The team bound to the connection by its first valid token.
    pub fn team_id(&self) -> Option<&str> {
        self.team_id.as_deref()
    }

    /// How this connection's tokens deviate from Apple's minimal form.
    pub fn quirks(&self) -> &JwtQuirks {
        &self.quirks
    }

    /// Judges one request's `authorization` header (PROTOCOL.md 2.8 rules, pushy's order).
    ///
    /// Order: header → structure/kid/signature → `iss` vs key team → connection team →
    /// key environment → key relation → age → topic-specific key → update rate.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        authorization: Option<&[u8]>,
        topic: Option<&str>,
        env: Environment,
        now: u64,
        registry: &KeyRegistry,
        cache: &VerifyCache,
    ) -> Result<AuthOk, Reason> {
        let (jwt, scheme) = parse_authorization(authorization)?;
        if scheme != "bearer" && self.quirks.scheme_spellings.len() < MAX_QUIRK_NAMES {
            self.quirks.scheme_spellings.insert(scheme.to_owned());
        }

        // Hot path: the connection's current JWT, still verified against the same key.
        let reuse = self.current.as_ref().and_then(|c| {
            let same = &*c.jwt == jwt
                && registry
                    .get(&c.verified.key_id)
                    .is_some_and(|k| k.verifying_key == c.verified.verified_with);
            same.then(|| Arc::clone(&c.verified))
        });
        let token_changed = reuse.is_none();
        let verified = match reuse {
            Some(v) => v,
            None => cache.verify(jwt, registry)?,
        };
        if token_changed && self.last_absorbed.as_deref() != Some(jwt) {
            self.quirks.absorb(&verified.quirks);
            self.last_absorbed = Some(jwt.into());
        }

        let key = registry
            .get(&verified.key_id)
            .ok_or(Reason::InvalidProviderToken)?;
        // pushy: team mismatch with the key → InvalidProviderToken.
        if *key.team_id != *verified.team_id {
            return Err(Reason::InvalidProviderToken);
        }
        // PROTOCOL.md 2.2 / Part 3: one team per connection; a second team → InvalidProviderToken.
        if self
            .team_id
            .as_ref()
            .is_some_and(|t| *t != verified.team_id)
        {
            return Err(Reason::InvalidProviderToken);
        }
        // PROTOCOL.md 2.8 (A-NEWS): a key scoped to the other environment.
        if key.environment.is_some_and(|e| e != env) {
            return Err(Reason::BadEnvironmentKeyIdInToken);
        }
        // PROTOCOL.md 2.7/2.8: kid unrelated to the connection's first key.
        if let Some(first) = &self.first_key_id {
            if !registry.related(first, &verified.key_id) {
                return Err(Reason::UnrelatedKeyIdInToken);
            }
        }
        // PROTOCOL.md 2.8: more than an hour old → ExpiredProviderToken.
        let born = if self.settings.age_from_first_use {
            verified.issued_at.max(self.first_use(jwt, now))
        } else {
            verified.issued_at
        };
        if now > born.saturating_add(self.settings.max_token_age_secs) {
            return Err(Reason::ExpiredProviderToken);
        }
        // PROTOCOL.md Part 3: iat too far in the future → InvalidProviderToken.
        if verified.issued_at > now.saturating_add(self.settings.future_tolerance_secs) {
            return Err(Reason::InvalidProviderToken);
        }
        // pushy: a topic the topic-specific key does not cover → InvalidProviderToken. [inferred for Apple]
        if key.topics.is_some() && !topic.is_some_and(|t| key.allows_topic(t)) {
            return Err(Reason::InvalidProviderToken);
        }
        // PROTOCOL.md 2.8 (A-TOKEN): a new token within 20 minutes of the previous one.
        // With per-team counting (the default) the team's table decides, across connections.
        if token_changed {
            let interval = self.settings.min_update_interval_secs;
            match &self.teams {
                Some(teams) => teams
                    .update(env, &verified.team_id, verified.issued_at, now, interval)
                    .map_err(|_| Reason::TooManyProviderTokenUpdates)?,
                None => {
                    if let Some(c) = &self.current {
                        if now < c.since.saturating_add(interval) {
                            return Err(Reason::TooManyProviderTokenUpdates);
                        }
                    }
                }
            }
        }

        let newly_valid = self.current.is_none();
        if newly_valid {
            self.team_id = Some(Arc::clone(&verified.team_id));
            self.first_key_id = Some(Arc::clone(&verified.key_id));
            self.environment = Some(env);
        }
        if token_changed {
            self.current = Some(Current {
                jwt: jwt.into(),
                verified: Arc::clone(&verified),
                since: now,
            });
        }
        Ok(AuthOk {
            team_id: Arc::clone(&verified.team_id),
            key_id: Arc::clone(&verified.key_id),
            newly_valid,
            token_changed,
            issued_at: verified.issued_at,
            fingerprint: if token_changed { fingerprint(jwt) } else { 0 },
        })
    }

    /// After ExpiredProviderToken the provider must sign anew, so its next token is not an
    /// update "too often" (PROTOCOL.md 2.8: the 20-minute rule is about replacing valid tokens).
    pub fn expired(&mut self) {
        if let Some(c) = &mut self.current {
            c.since = 0;
        }
        if let (Some(teams), Some(team), Some(env)) = (&self.teams, &self.team_id, self.environment)
        {
            teams.expired(env, team);
        }
    }
}

/// FNV-1a over the token: stable, cheap, and only computed when a connection's token changes.
fn fingerprint(jwt: &str) -> u64 {
    jwt.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Signs an APNs provider token the way Apple documents it (PROTOCOL.md 2.8), in either signature form:
/// for tests, the reference provider and users of the emulator.
pub fn sign_jwt(
    key_pem_p8: &str,
    key_id: &str,
    team_id: &str,
    iat: u64,
    form: SignatureForm,
) -> Result<String, KeyError> {
    let key = signing_key_from_pem(key_pem_p8)?;
    let header = serde_json::json!({ "alg": "ES256", "kid": key_id }).to_string();
    let claims = serde_json::json!({ "iss": team_id, "iat": iat }).to_string();
    Ok(sign_parts(&key, &header, &claims, form))
}

/// Signs arbitrary header and claims JSON, so tests and fault scenarios can produce quirky tokens.
pub fn sign_parts(
    key: &SigningKey,
    header_json: &str,
    claims_json: &str,
    form: SignatureForm,
) -> String {
    let mut out = String::with_capacity(header_json.len() * 2 + claims_json.len() * 2 + 100);
    out.push_str(&B64URL.encode(header_json));
    out.push('.');
    out.push_str(&B64URL.encode(claims_json));
    let sig: Signature = key.sign(out.as_bytes());
    out.push('.');
    match form {
        SignatureForm::Raw => out.push_str(&B64URL.encode(sig.to_bytes())),
        SignatureForm::Der => out.push_str(&B64URL.encode(sig.to_der().as_bytes())),
    }
    out
}

/// Reads a `.p8` for [`sign_parts`].
pub fn signing_key(key_pem_p8: &str) -> Result<SigningKey, KeyError> {
    signing_key_from_pem(key_pem_p8)
}

/// A fresh random P-256 key as `.p8` PEM, like the file Apple lets a developer download once.
pub fn generate_p8() -> Result<String, KeyError> {
    crate::certs::TokenKey::generate()
        .map(|k| k.private_pem)
        .map_err(|e| KeyError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const T0: u64 = 1_700_000_000;

    /// Deterministic test keys: `.p8` PEMs derived from fixed scalars.
    fn p8(seed: u8) -> String {
        let sk = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        sk.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    }

    fn keys() -> &'static [String; 4] {
        static KEYS: OnceLock<[String; 4]> = OnceLock::new();
        KEYS.get_or_init(|| [p8(1), p8(2), p8(3), p8(4)])
    }

    /// KEY1 (team A), KEY2 (team A, related to KEY1), KEY3 (team A, unrelated), KEYB (team B),
    /// KEYS (team A, sandbox only), KEYT (team A, topic-specific com.t).
    fn registry() -> KeyRegistry {
        let k = keys();
        let mut r = KeyRegistry::new();
        r.insert(ProviderKey::from_pem("KEY1", "TEAMA", &k[0]).unwrap());
        r.insert(
            ProviderKey::from_pem("KEY2", "TEAMA", &k[1])
                .unwrap()
                .related_to("KEY1"),
        );
        r.insert(ProviderKey::from_pem("KEY3", "TEAMA", &k[2]).unwrap());
        r.insert(ProviderKey::from_pem("KEYB", "TEAMB", &k[3]).unwrap());
        r.insert(
            ProviderKey::from_pem("KEYS", "TEAMA", &k[0])
                .unwrap()
                .scoped_to(Environment::Sandbox),
        );
        r.insert(
            ProviderKey::from_pem("KEYT", "TEAMA", &k[1])
                .unwrap()
                .for_topics(vec!["com.t".into()]),
        );
        r
    }

    fn jwt(key_idx: usize, kid: &str, team: &str, iat: u64) -> String {
        sign_jwt(&keys()[key_idx], kid, team, iat, SignatureForm::Raw).unwrap()
    }

    fn bearer(jwt: &str) -> Vec<u8> {
        format!("bearer {jwt}").into_bytes()
    }

    fn check(
        auth: &mut TokenAuth,
        jwt: &str,
        now: u64,
        reg: &KeyRegistry,
        cache: &VerifyCache,
    ) -> Result<AuthOk, Reason> {
        auth.check(
            Some(&bearer(jwt)),
            Some("com.x"),
            Environment::Production,
            now,
            reg,
            cache,
        )
    }

    #[test]
    fn both_signature_forms_verify() {
        let reg = registry();
        let cache = VerifyCache::new();
        for form in [SignatureForm::Raw, SignatureForm::Der] {
            let t = sign_jwt(&keys()[0], "KEY1", "TEAMA", T0, form).unwrap();
            let mut a = TokenAuth::new();
            let ok = check(&mut a, &t, T0 + 5, &reg, &cache).unwrap();
            assert!(ok.newly_valid);
            assert_eq!(&*ok.team_id, "TEAMA");
            assert!(a.quirks().signature_forms.contains(&form));
            assert!(a.first_valid_seen());
        }
    }

    #[test]
    fn age_from_first_use_counts_from_the_later_of_iat_and_first_sight() {
        let reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(0, "KEY1", "TEAMA", T0);
        let settings = AuthSettings {
            max_token_age_secs: 3,
            age_from_first_use: true,
            ..AuthSettings::default()
        };
        // Signed at T0, first sent 10 s later: alive for 3 s from that first use.
        let mut a = TokenAuth::with_settings(settings);
        assert!(check(&mut a, &t, T0 + 10, &reg, &cache).is_ok());
        assert!(check(&mut a, &t, T0 + 13, &reg, &cache).is_ok());
        assert_eq!(
            check(&mut a, &t, T0 + 14, &reg, &cache),
            Err(Reason::ExpiredProviderToken),
            "and still expired when retried"
        );
        assert_eq!(
            check(&mut a, &t, T0 + 20, &reg, &cache),
            Err(Reason::ExpiredProviderToken)
        );
        // Apple's rule (the default) counts from iat alone.
        let mut b = TokenAuth::with_settings(AuthSettings {
            age_from_first_use: false,
            ..settings
        });
        assert_eq!(
            check(&mut b, &t, T0 + 10, &reg, &cache),
            Err(Reason::ExpiredProviderToken)
        );
    }

    #[test]
    fn high_s_der_signature_verifies() {
        let sk = signing_key(&keys()[0]).unwrap();
        let header = r#"{"alg":"ES256","kid":"KEY1"}"#;
        let claims = format!(r#"{{"iss":"TEAMA","iat":{T0}}}"#);
        let input = format!("{}.{}", B64URL.encode(header), B64URL.encode(&claims));
        let sig: Signature = sk.sign(input.as_bytes());
        let (r, s) = sig.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        assert!(
            high.normalize_s().is_some(),
            "test signature must be high-S"
        );
        let t = format!("{input}.{}", B64URL.encode(high.to_der().as_bytes()));
        let mut a = TokenAuth::new();
        assert!(check(&mut a, &t, T0, &registry(), &VerifyCache::new()).is_ok());
    }

    #[test]
    fn iat_forms_are_accepted_and_recorded() {
        let sk = signing_key(&keys()[0]).unwrap();
        let header = r#"{"alg":"ES256","kid":"KEY1","typ":"JWT"}"#;
        let cases = [
            (format!(r#"{{"iss":"TEAMA","iat":{T0}}}"#), IatForm::Integer),
            (
                format!(r#"{{"iss":"TEAMA","iat":{T0}.75}}"#),
                IatForm::Float,
            ),
            (
                format!(r#"{{"iss":"TEAMA","iat":"{T0}"}}"#),
                IatForm::String,
            ),
            (
                format!(r#"{{"iss":"TEAMA","iat":{T0},"exp":{}}}"#, T0 + 3600),
                IatForm::Integer,
            ),
        ];
        for (claims, form) in cases {
            let t = sign_parts(&sk, header, &claims, SignatureForm::Der);
            let mut a = TokenAuth::new();
            check(&mut a, &t, T0 + 1, &registry(), &VerifyCache::new()).unwrap();
            assert_eq!(a.quirks().iat_forms, BTreeSet::from([form]));
            assert!(a.quirks().extra_header_fields.contains("typ"));
            // Float iat truncates: expiry boundary is computed from whole seconds.
            let mut b = TokenAuth::new();
            assert_eq!(
                check(&mut b, &t, T0 + 3601, &registry(), &VerifyCache::new()),
                Err(Reason::ExpiredProviderToken)
            );
        }
        let mut a = TokenAuth::new();
        let t = sign_parts(
            &sk,
            header,
            &format!(r#"{{"iss":"TEAMA","iat":{T0},"exp":1}}"#),
            SignatureForm::Raw,
        );
        check(&mut a, &t, T0, &registry(), &VerifyCache::new()).unwrap();
        assert!(a.quirks().extra_claims.contains("exp"));
    }

    #[test]
    fn bad_iat_values_are_invalid() {
        let sk = signing_key(&keys()[0]).unwrap();
        for iat in [
            r#"-5"#, r#""abc""#, r#"null"#, r#"true"#, r#"1e300"#, r#""""#, r#"[1]"#,
        ] {
            let claims = format!(r#"{{"iss":"TEAMA","iat":{iat}}}"#);
            let t = sign_parts(
                &sk,
                r#"{"alg":"ES256","kid":"KEY1"}"#,
                &claims,
                SignatureForm::Raw,
            );
            let mut a = TokenAuth::new();
            assert_eq!(
                check(&mut a, &t, T0, &registry(), &VerifyCache::new()),
                Err(Reason::InvalidProviderToken),
                "iat {iat}"
            );
        }
    }

    #[test]
    fn authorization_header_rules() {
        let reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(0, "KEY1", "TEAMA", T0);
        let run = |v: Option<&[u8]>| {
            TokenAuth::new().check(v, Some("com.x"), Environment::Production, T0, &reg, &cache)
        };
        assert_eq!(run(None), Err(Reason::MissingProviderToken));
        assert_eq!(run(Some(b"")), Err(Reason::MissingProviderToken));
        assert_eq!(run(Some(b"bearer")), Err(Reason::MissingProviderToken));
        assert_eq!(run(Some(b"bearer   ")), Err(Reason::MissingProviderToken));
        assert_eq!(
            run(Some(format!("Basic {t}").as_bytes())),
            Err(Reason::MissingProviderToken)
        );
        assert_eq!(
            run(Some(b"bearer \xff\xfe")),
            Err(Reason::InvalidProviderToken)
        );
        assert_eq!(
            run(Some(b"bearer not.a.jwt")),
            Err(Reason::InvalidProviderToken)
        );
        assert_eq!(run(Some(b"bearer abc")), Err(Reason::InvalidProviderToken));
        for scheme in ["bearer", "Bearer", "BEARER"] {
            let mut a = TokenAuth::new();
            let v = format!("{scheme} {t}");
            a.check(
                Some(v.as_bytes()),
                Some("com.x"),
                Environment::Production,
                T0,
                &reg,
                &cache,
            )
            .unwrap();
            assert_eq!(
                a.quirks().scheme_spellings.contains(scheme),
                scheme != "bearer"
            );
        }
    }

    #[test]
    fn invalid_tokens() {
        let reg = registry();
        let cache = VerifyCache::new();
        let sk = signing_key(&keys()[0]).unwrap();
        let claims = format!(r#"{{"iss":"TEAMA","iat":{T0}}}"#);
        let bad = [
            // Unknown kid.
            jwt(0, "NOPE", "TEAMA", T0),
            // Signed by another key than KEY1's.
            jwt(2, "KEY1", "TEAMA", T0),
            // iss is not the key's team.
            jwt(0, "KEY1", "TEAMB", T0),
            // Wrong algorithm, missing kid, empty kid, missing iss.
            sign_parts(
                &sk,
                r#"{"alg":"ES384","kid":"KEY1"}"#,
                &claims,
                SignatureForm::Raw,
            ),
            sign_parts(&sk, r#"{"alg":"ES256"}"#, &claims, SignatureForm::Raw),
            sign_parts(
                &sk,
                r#"{"alg":"ES256","kid":""}"#,
                &claims,
                SignatureForm::Raw,
            ),
            sign_parts(
                &sk,
                r#"{"alg":"ES256","kid":"KEY1"}"#,
                r#"{"iat":1}"#,
                SignatureForm::Raw,
            ),
            // Not JSON objects.
            sign_parts(&sk, r#"["ES256"]"#, &claims, SignatureForm::Raw),
            // iat in the future beyond tolerance.
            jwt(0, "KEY1", "TEAMA", T0 + 61),
            // Too long.
            format!(
                "{}.{}",
                jwt(0, "KEY1", "TEAMA", T0),
                "A".repeat(MAX_JWT_LEN)
            ),
        ];
        for t in &bad {
            let mut a = TokenAuth::new();
            assert_eq!(
                check(&mut a, t, T0, &reg, &cache),
                Err(Reason::InvalidProviderToken),
                "{t}"
            );
            assert!(!a.first_valid_seen());
        }
        // Tampered claims keep the old signature.
        let good = jwt(0, "KEY1", "TEAMA", T0);
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = B64URL.encode(format!(r#"{{"iss":"TEAMA","iat":{}}}"#, T0 + 10));
        parts[1] = &forged;
        assert_eq!(
            check(&mut TokenAuth::new(), &parts.join("."), T0, &reg, &cache),
            Err(Reason::InvalidProviderToken)
        );
        // Within the 60 s tolerance is fine.
        assert!(check(
            &mut TokenAuth::new(),
            &jwt(0, "KEY1", "TEAMA", T0 + 60),
            T0,
            &reg,
            &cache
        )
        .is_ok());
    }

    #[test]
    fn expiry_follows_now() {
        let reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(0, "KEY1", "TEAMA", T0);
        let mut a = TokenAuth::new();
        assert!(check(&mut a, &t, T0, &reg, &cache).is_ok());
        assert!(check(&mut a, &t, T0 + 3600, &reg, &cache).is_ok());
        assert_eq!(
            check(&mut a, &t, T0 + 3601, &reg, &cache),
            Err(Reason::ExpiredProviderToken)
        );
    }

    #[test]
    fn token_update_rate_limit() {
        let reg = registry();
        let cache = VerifyCache::new();
        let first = jwt(0, "KEY1", "TEAMA", T0);
        let at19 = jwt(0, "KEY1", "TEAMA", T0 + 19 * 60);
        let at21 = jwt(0, "KEY1", "TEAMA", T0 + 21 * 60);
        let mut a = TokenAuth::new();
        let ok = check(&mut a, &first, T0, &reg, &cache).unwrap();
        assert!(ok.newly_valid && ok.token_changed);
        let ok = check(&mut a, &first, T0 + 60, &reg, &cache).unwrap();
        assert!(!ok.newly_valid && !ok.token_changed);
        assert_eq!(
            check(&mut a, &at19, T0 + 19 * 60, &reg, &cache),
            Err(Reason::TooManyProviderTokenUpdates)
        );
        // The old token keeps working.
        assert!(check(&mut a, &first, T0 + 19 * 60, &reg, &cache).is_ok());
        let ok = check(&mut a, &at21, T0 + 21 * 60, &reg, &cache).unwrap();
        assert!(ok.token_changed && !ok.newly_valid);
        // Switching back to the first token is another update, too soon.
        assert_eq!(
            check(&mut a, &first, T0 + 22 * 60, &reg, &cache),
            Err(Reason::TooManyProviderTokenUpdates)
        );
    }

    #[test]
    fn one_team_per_connection() {
        let reg = registry();
        let cache = VerifyCache::new();
        let mut a = TokenAuth::new();
        check(&mut a, &jwt(0, "KEY1", "TEAMA", T0), T0, &reg, &cache).unwrap();
        assert_eq!(a.team_id(), Some("TEAMA"));
        let other_team = jwt(3, "KEYB", "TEAMB", T0 + 1500);
        assert_eq!(
            check(&mut a, &other_team, T0 + 1500, &reg, &cache),
            Err(Reason::InvalidProviderToken)
        );
        // The same token is fine on its own connection.
        assert!(check(&mut TokenAuth::new(), &other_team, T0 + 1500, &reg, &cache).is_ok());
    }

    #[test]
    fn related_and_unrelated_keys() {
        let reg = registry();
        let cache = VerifyCache::new();
        let later = T0 + 1500;
        let mut a = TokenAuth::new();
        check(&mut a, &jwt(0, "KEY1", "TEAMA", T0), T0, &reg, &cache).unwrap();
        assert_eq!(
            check(&mut a, &jwt(2, "KEY3", "TEAMA", later), later, &reg, &cache),
            Err(Reason::UnrelatedKeyIdInToken)
        );
        let ok = check(&mut a, &jwt(1, "KEY2", "TEAMA", later), later, &reg, &cache).unwrap();
        assert_eq!(&*ok.key_id, "KEY2");
        // Relation is symmetric: a connection started with KEY2 accepts KEY1.
        let mut b = TokenAuth::new();
        check(&mut b, &jwt(1, "KEY2", "TEAMA", T0), T0, &reg, &cache).unwrap();
        assert!(check(&mut b, &jwt(0, "KEY1", "TEAMA", later), later, &reg, &cache).is_ok());
    }

    #[test]
    fn environment_scoped_key() {
        let reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(0, "KEYS", "TEAMA", T0);
        let run =
            |env| TokenAuth::new().check(Some(&bearer(&t)), Some("com.x"), env, T0, &reg, &cache);
        assert_eq!(
            run(Environment::Production),
            Err(Reason::BadEnvironmentKeyIdInToken)
        );
        assert!(run(Environment::Sandbox).is_ok());
        // An unscoped key works in both.
        let u = jwt(0, "KEY1", "TEAMA", T0);
        for env in [Environment::Sandbox, Environment::Production] {
            assert!(TokenAuth::new()
                .check(Some(&bearer(&u)), Some("com.x"), env, T0, &reg, &cache)
                .is_ok());
        }
    }

    #[test]
    fn topic_specific_key() {
        let reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(1, "KEYT", "TEAMA", T0);
        let run = |topic: Option<&str>| {
            TokenAuth::new().check(
                Some(&bearer(&t)),
                topic,
                Environment::Production,
                T0,
                &reg,
                &cache,
            )
        };
        assert!(run(Some("com.t")).is_ok());
        assert!(run(Some("com.t.voip")).is_ok());
        assert!(run(Some("com.t.push-type.liveactivity")).is_ok());
        assert_eq!(run(Some("com.other")), Err(Reason::InvalidProviderToken));
        assert_eq!(run(Some("com.tx")), Err(Reason::InvalidProviderToken));
        assert_eq!(run(None), Err(Reason::InvalidProviderToken));
    }

    #[test]
    fn cache_hit_does_not_reverify() {
        let reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(0, "KEY1", "TEAMA", T0);
        let mut a = TokenAuth::new();
        for i in 0..50 {
            check(&mut a, &t, T0 + i, &reg, &cache).unwrap();
        }
        assert_eq!(cache.verifications(), 1);
        // Other connections reuse the shared cache.
        for i in 0..20 {
            check(&mut TokenAuth::new(), &t, T0 + i, &reg, &cache).unwrap();
        }
        assert_eq!(cache.verifications(), 1);
        assert_eq!(cache.hits(), 20);
        // Bad signatures are cached too.
        let bad = jwt(2, "KEY1", "TEAMA", T0);
        for _ in 0..5 {
            assert_eq!(
                check(&mut TokenAuth::new(), &bad, T0, &reg, &cache),
                Err(Reason::InvalidProviderToken)
            );
        }
        assert_eq!(cache.verifications(), 2);
    }

    #[test]
    fn replaced_key_invalidates_cached_result() {
        let mut reg = registry();
        let cache = VerifyCache::new();
        let t = jwt(0, "KEY1", "TEAMA", T0);
        let mut a = TokenAuth::new();
        check(&mut a, &t, T0, &reg, &cache).unwrap();
        reg.insert(ProviderKey::from_pem("KEY1", "TEAMA", &keys()[2]).unwrap());
        assert_eq!(
            check(&mut a, &t, T0, &reg, &cache),
            Err(Reason::InvalidProviderToken)
        );
        assert_eq!(
            check(&mut TokenAuth::new(), &t, T0, &reg, &cache),
            Err(Reason::InvalidProviderToken)
        );
        reg.remove("KEY1");
        assert_eq!(
            check(&mut TokenAuth::new(), &t, T0, &reg, &cache),
            Err(Reason::InvalidProviderToken)
        );
    }

    #[test]
    fn cache_is_bounded() {
        let reg = registry();
        let cache = VerifyCache::with_capacity(3);
        for i in 0..10 {
            let _ = check(
                &mut TokenAuth::new(),
                &jwt(0, "KEY1", "TEAMA", T0 + i),
                T0,
                &reg,
                &cache,
            );
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn key_loading() {
        let pem = keys()[0].clone();
        let k = ProviderKey::from_pem("K", "T", &pem).unwrap();
        let sk = signing_key(&pem).unwrap();
        let public_pem =
            p256::pkcs8::EncodePublicKey::to_public_key_pem(sk.verifying_key(), LineEnding::LF)
                .unwrap();
        let k2 = ProviderKey::from_pem("K", "T", &public_pem).unwrap();
        assert_eq!(k.verifying_key, k2.verifying_key);
        assert_eq!(
            sign_jwt(&public_pem, "K", "T", 0, SignatureForm::Raw),
            Err(KeyError::NotPrivate)
        );
        assert_eq!(
            ProviderKey::from_pem("K", "T", "garbage").unwrap_err(),
            KeyError::NotAP256Key
        );
        let generated = generate_p8().unwrap();
        assert!(generated.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(ProviderKey::from_pem("K", "T", &generated).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_jwts_never_panic(s in ".{0,400}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let reg = registry();
            let cache = VerifyCache::new();
            let mut a = TokenAuth::new();
            let _ = check(&mut a, &s, T0, &reg, &cache);
            let _ = a.check(Some(&bytes), None, Environment::Sandbox, T0, &reg, &cache);
            prop_assert!(!a.first_valid_seen());
        }

        #[test]
        fn arbitrary_dotted_base64_never_panics(parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,120}", 0..5)) {
            let reg = registry();
            let cache = VerifyCache::new();
            let _ = check(&mut TokenAuth::new(), &parts.join("."), T0, &reg, &cache);
        }

        #[test]
        fn mangled_valid_jwt_is_rejected_or_identical(pos in 0usize..300, byte in 0x21u8..0x7f) {
            let reg = registry();
            let cache = VerifyCache::new();
            let t = jwt(0, "KEY1", "TEAMA", T0);
            let mut b = t.clone().into_bytes();
            let i = pos % b.len();
            b[i] = byte;
            let m = String::from_utf8(b).unwrap();
            let r = check(&mut TokenAuth::new(), &m, T0, &reg, &cache);
            // Canonical base64 and a real signature: any changed character must be refused.
            prop_assert_eq!(r.is_ok(), m == t);
        }
    }
}
