//! The protocol-neutral vocabulary every listener, the engine, the journal and the control API share.

pub mod whole;
pub mod wire;

pub use wire::PushType;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Which APNs world a connection, token, certificate or key belongs to: crossing them is the classic bug.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// The development service (gateway.sandbox, api.sandbox / api.development).
    Sandbox,
    /// The production service.
    Production,
}

impl Environment {
    /// The environment's name as it appears in the journal, the control API and scenario files.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    /// Apple's host name of this environment for a protocol (PROTOCOL.md 1.1, 2.1): the SNI
    /// and `:authority` providers send, and the inverse of [`Environment::from_host`].
    pub fn apple_host(self, protocol: Protocol) -> &'static str {
        match (protocol, self) {
            (Protocol::Http2, Environment::Production) => "api.push.apple.com",
            (Protocol::Http2, Environment::Sandbox) => "api.sandbox.push.apple.com",
            (_, Environment::Production) => "gateway.push.apple.com",
            (_, Environment::Sandbox) => "gateway.sandbox.push.apple.com",
        }
    }

    /// Apple's channel-management host of this environment (PROTOCOL.md 2.11).
    pub fn manage_host(self) -> &'static str {
        match self {
            Environment::Production => "api-manage-broadcast.push.apple.com",
            Environment::Sandbox => "api-manage-broadcast.sandbox.push.apple.com",
        }
    }

    /// The environment a TLS SNI host name selects (PROTOCOL.md 1.1, 2.1); `None` for other names.
    pub fn from_host(host: &str) -> Option<Environment> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match host.as_str() {
            "gateway.push.apple.com"
            | "feedback.push.apple.com"
            | "api.push.apple.com"
            | "api-manage-broadcast.push.apple.com" => Some(Environment::Production),
            "gateway.sandbox.push.apple.com"
            | "feedback.sandbox.push.apple.com"
            | "api.sandbox.push.apple.com"
            | "api.development.push.apple.com"
            | "api-manage-broadcast.sandbox.push.apple.com" => Some(Environment::Sandbox),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which wire protocol carried an event, so one journal can hold both and filters can split them.
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
pub enum Protocol {
    /// The binary gateway (commands 0, 1, 2).
    Legacy,
    /// The feedback service.
    Feedback,
    /// The HTTP/2 provider API.
    Http2,
}

impl Protocol {
    /// The protocol's name in the journal and the control API.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Legacy => "legacy",
            Protocol::Feedback => "feedback",
            Protocol::Http2 => "http2",
        }
    }
}

/// The value of each byte as a hex digit (either case), 0xff for bytes that are not one.
const HEX_DIGITS: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// A device token as raw bytes: legacy frames carry bytes, HTTP/2 paths carry hex, and both must compare equal.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceToken(Bytes);

impl DeviceToken {
    /// Wraps raw token bytes as they came off a legacy frame.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        DeviceToken(bytes.into())
    }

    /// Parses hex in either case (PROTOCOL.md Part 3: case-insensitive); `None` when not even-length hex.
    pub fn from_hex(hex_str: &str) -> Option<Self> {
        // By hand rather than `hex::decode`: every HTTP/2 request parses its path's token, and
        // the crate's iterator chain cost several times this table lookup.
        let src = hex_str.as_bytes();
        if src.len() % 2 != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(src.len() / 2);
        for pair in src.chunks_exact(2) {
            let &[hi, lo] = pair else { return None };
            let (hi, lo) = (HEX_DIGITS[usize::from(hi)], HEX_DIGITS[usize::from(lo)]);
            if (hi | lo) > 0x0f {
                return None;
            }
            out.push((hi << 4) | lo);
        }
        Some(DeviceToken(out.into()))
    }

    /// The raw bytes, for encoding frames and feedback tuples.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex: the one spelling used in the journal, the registry and the control API.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Length in bytes (legacy status 5 and HTTP/2 token-size rules look at it).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a zero-length token (legacy status 2).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceToken({})", self.to_hex())
    }
}

impl fmt::Display for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for DeviceToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// OpenAPI: a device token is hex text (lowercase in answers; empty only for a legacy frame that
/// carried none, status 2).
impl utoipa::PartialSchema for DeviceToken {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^([0-9a-fA-F]{2})*$"))
            .description(Some("device token, hex"))
            .into()
    }
}

impl utoipa::ToSchema for DeviceToken {}

impl<'de> Deserialize<'de> for DeviceToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeviceToken::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("device token must be hex"))
    }
}

/// Delivery priority: legacy commands 0/1 imply 10 (PROTOCOL.md 1.2); HTTP/2 allows 10, 5 and 1.
pub type Priority = u8;

/// How the provider proved who it is, recorded per connection and per notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// A TLS client certificate (legacy always; HTTP/2 optionally).
    Certificate,
    /// A JWT provider token (HTTP/2 only).
    Token,
    /// Nothing presented yet.
    None,
}

/// One notification as any protocol delivered it: what the engine judges and the journal keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// The device token.
    pub token: DeviceToken,
    /// The payload bytes exactly as received: in JSON `payload` (the text) when they are UTF-8,
    /// else `payload_base64`, so bytes and text that look alike never serialize alike.
    #[serde(flatten, with = "payload_serde")]
    #[schema(value_type = PayloadJson)]
    pub payload: Bytes,
    /// Legacy: the 4-byte identifier (opaque, PROTOCOL.md 1.3); HTTP/2: unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Expiry in UNIX seconds (0 = do not store); `None` when the provider did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<u32>,
    /// Priority (10 when the protocol carries none).
    pub priority: Priority,
    /// The topic (bundle id) from apns-topic or the client certificate (shared, not copied, per notification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub topic: Option<Arc<str>>,
    /// apns-push-type (HTTP/2), when the provider sent a valid one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_type: Option<PushType>,
    /// apns-collapse-id (HTTP/2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_id: Option<String>,
    /// apns-id (HTTP/2), as echoed back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apns_id: Option<String>,
    /// Legacy command byte (0, 1 or 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<u8>,
}

/// A legacy notification identifier: 4 opaque bytes echoed raw in error-responses (PROTOCOL.md 1.3),
/// shown as 8 hex digits (the big-endian u32 libraries write).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Identifier(pub [u8; 4]);

impl Identifier {
    /// The identifier of a provider that writes a big-endian u32 (every library does).
    pub fn from_u32(v: u32) -> Self {
        Identifier(v.to_be_bytes())
    }

    /// The big-endian u32 reading of the 4 bytes.
    pub fn as_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identifier({self})")
    }
}

impl Serialize for Identifier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// OpenAPI: an identifier is 8 hex digits.
impl utoipa::PartialSchema for Identifier {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-fA-F]{8}$"))
            .description(Some("legacy notification identifier, 8 hex digits"))
            .into()
    }
}

impl utoipa::ToSchema for Identifier {}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 4];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|_| serde::de::Error::custom("identifier must be 8 hex digits"))?;
        Ok(Identifier(out))
    }
}

/// The JSON form of a payload (see `payload_serde`), for the OpenAPI document: exactly one of
/// the two keys is present.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PayloadJson {
    /// The payload as received, when it is UTF-8.
    payload: Option<String>,
    /// The payload as received, base64, when it is not UTF-8.
    payload_base64: Option<String>,
}

mod payload_serde {
    use base64::Engine as _;
    use bytes::Bytes;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(p: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match std::str::from_utf8(p) {
            Ok(text) => map.serialize_entry("payload", text)?,
            Err(_) => map.serialize_entry("payload_base64", &B64.encode(p))?,
        }
        map.end()
    }

    #[derive(Deserialize)]
    struct Raw {
        payload: Option<String>,
        payload_base64: Option<String>,
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        match Raw::deserialize(d)? {
            Raw {
                payload: Some(text),
                payload_base64: None,
            } => Ok(Bytes::from(text.into_bytes())),
            Raw {
                payload: None,
                payload_base64: Some(b),
            } => B64
                .decode(b)
                .map(Bytes::from)
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "a notification has exactly one of `payload` and `payload_base64`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_hex_agrees_with_the_hex_crate() {
        let cases = [
            "",
            "0",
            "ab",
            "AB01",
            "aBcD",
            "0g",
            "g0",
            "zz",
            " 1",
            "1 ",
            "ff00",
            "abc",
            "0123456789abcdefABCDEF00",
            "é1",
            "1/",
            ":0",
            "@0",
            "`0",
            "G0",
        ];
        for s in cases {
            let ours = DeviceToken::from_hex(s).map(|t| t.as_bytes().to_vec());
            assert_eq!(ours, hex::decode(s).ok(), "{s:?}");
        }
        for b in 0..=255u8 {
            let s = format!("{}0", b as char);
            let ours = DeviceToken::from_hex(&s).map(|t| t.as_bytes().to_vec());
            assert_eq!(ours, hex::decode(&s).ok(), "{s:?}");
        }
    }

    #[test]
    fn apple_hosts_select_their_own_environment() {
        for env in [Environment::Production, Environment::Sandbox] {
            for protocol in [Protocol::Legacy, Protocol::Http2] {
                assert_eq!(Environment::from_host(env.apple_host(protocol)), Some(env));
            }
        }
        assert_eq!(
            Environment::Sandbox.apple_host(Protocol::Http2),
            "api.sandbox.push.apple.com"
        );
    }

    #[test]
    fn payload_bytes_and_lookalike_text_serialize_apart() {
        let mut n = Notification {
            token: DeviceToken::from_hex("AB01").unwrap(),
            payload: Bytes::from_static(b"\xff\xfe"),
            identifier: None,
            expiry: None,
            priority: 10,
            topic: None,
            push_type: None,
            collapse_id: None,
            apns_id: None,
            command: None,
        };
        let bytes = serde_json::to_value(&n).unwrap();
        n.payload = Bytes::from_static(b"hex:fffe");
        let text = serde_json::to_value(&n).unwrap();
        assert_ne!(bytes, text);
        assert_eq!(text["payload"], "hex:fffe");
        assert_eq!(bytes["payload_base64"], "//4=");
    }

    #[test]
    fn notification_json_round_trip() {
        let n = Notification {
            token: DeviceToken::from_hex("AB01").unwrap(),
            payload: Bytes::from_static(b"\xff\x00"),
            identifier: Some(Identifier::from_u32(0x0102_0304)),
            expiry: Some(5),
            priority: 10,
            topic: Some("com.a".into()),
            push_type: None,
            collapse_id: None,
            apns_id: None,
            command: Some(2),
        };
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["token"], "ab01");
        assert_eq!(json["identifier"], "01020304");
        assert_eq!(json["payload_base64"], "/wA=");
        assert!(json.get("payload").is_none());
        let back: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(back, n);
        assert_eq!(
            Environment::from_host("API.development.push.apple.com."),
            Some(Environment::Sandbox)
        );
        assert_eq!(Environment::from_host("localhost"), None);
    }
}
