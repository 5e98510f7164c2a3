//! The HTTP/2 provider API's rejection reasons: status code, Apple's exact string, response bodies.
//!
//! Every reason string is written once, here (PROTOCOL.md 2.7); the journal, the control API, GOAWAY
//! debug data and error bodies all go through [`Reason::as_str`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why APNs refused a request or closed a connection: one value per row of Apple's reason table.
///
/// Serialised (serde) as Apple's exact string, e.g. `"BadDeviceToken"` (PROTOCOL.md 2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    /// 400: apns-collapse-id over 64 bytes.
    BadCollapseId,
    /// 400: device token malformed or of the other environment.
    BadDeviceToken,
    /// 400: bad apns-expiration.
    BadExpirationDate,
    /// 400: bad apns-id.
    BadMessageId,
    /// 400: bad apns-priority.
    BadPriority,
    /// 400: bad apns-topic.
    BadTopic,
    /// 400: the token belongs to another topic.
    DeviceTokenNotForTopic,
    /// 400: a header was repeated.
    DuplicateHeaders,
    /// 400: idle timeout.
    IdleTimeout,
    /// 400: bad apns-push-type (a newer reason: see [`CompatSettings`]).
    InvalidPushType,
    /// 400: no device token in `:path`.
    MissingDeviceToken,
    /// 400: a topic is required but absent.
    MissingTopic,
    /// 400: empty body.
    PayloadEmpty,
    /// 400: pushing to this topic is not allowed.
    TopicDisallowed,
    /// 400: the payload is unusable (Apple's broadcast reason, PROTOCOL.md 2.11); on
    /// `/3/device` only under `strict_payload`, when the payload lint warns.
    BadRequestPayload,
    /// 403: invalid client certificate.
    BadCertificate,
    /// 403: client certificate of the other environment.
    BadCertificateEnvironment,
    /// 403: JWT `iat` more than an hour old.
    ExpiredProviderToken,
    /// 403: action not allowed.
    Forbidden,
    /// 403: JWT invalid or its signature fails.
    InvalidProviderToken,
    /// 403: neither a client certificate nor a bearer token.
    MissingProviderToken,
    /// 403: key id unrelated to the connection's first key (a newer reason).
    UnrelatedKeyIdInToken,
    /// 403: key scoped to the other environment (a newer reason).
    BadEnvironmentKeyIdInToken,
    /// 404: invalid `:path`.
    BadPath,
    /// 405: `:method` is not POST.
    MethodNotAllowed,
    /// 410: the device token expired (a newer reason).
    ExpiredToken,
    /// 410: the token is no longer active for the topic (body carries a timestamp).
    Unregistered,
    /// 413: body too big.
    PayloadTooLarge,
    /// 429: provider token changed more often than every 20 minutes.
    TooManyProviderTokenUpdates,
    /// 429: too many consecutive pushes to one device token.
    TooManyRequests,
    /// 500: internal server error.
    InternalServerError,
    /// 503: service unavailable.
    ServiceUnavailable,
    /// 503: the server is shutting down.
    Shutdown,
}

/// Error returned when a string names no reason in Apple's table, so scenario files fail loudly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown APNs reason {0:?}")]
pub struct UnknownReason(pub String);

impl Reason {
    /// Every reason in table order, so tests and the control API can enumerate them (PROTOCOL.md 2.7);
    /// BadRequestPayload, from the broadcast table (2.11), is only sent under `strict_payload`.
    pub const ALL: [Reason; 32] = [
        Reason::BadCollapseId,
        Reason::BadDeviceToken,
        Reason::BadExpirationDate,
        Reason::BadMessageId,
        Reason::BadPriority,
        Reason::BadTopic,
        Reason::DeviceTokenNotForTopic,
        Reason::DuplicateHeaders,
        Reason::IdleTimeout,
        Reason::InvalidPushType,
        Reason::MissingDeviceToken,
        Reason::MissingTopic,
        Reason::PayloadEmpty,
        Reason::TopicDisallowed,
        Reason::BadCertificate,
        Reason::BadCertificateEnvironment,
        Reason::ExpiredProviderToken,
        Reason::Forbidden,
        Reason::InvalidProviderToken,
        Reason::MissingProviderToken,
        Reason::UnrelatedKeyIdInToken,
        Reason::BadEnvironmentKeyIdInToken,
        Reason::BadPath,
        Reason::MethodNotAllowed,
        Reason::ExpiredToken,
        Reason::Unregistered,
        Reason::PayloadTooLarge,
        Reason::TooManyProviderTokenUpdates,
        Reason::TooManyRequests,
        Reason::InternalServerError,
        Reason::ServiceUnavailable,
        Reason::Shutdown,
    ];

    /// The HTTP `:status` that goes with the reason (PROTOCOL.md 2.7).
    pub fn status(self) -> u16 {
        use Reason::*;
        match self {
            BadCollapseId
            | BadDeviceToken
            | BadExpirationDate
            | BadMessageId
            | BadPriority
            | BadTopic
            | DeviceTokenNotForTopic
            | DuplicateHeaders
            | IdleTimeout
            | InvalidPushType
            | MissingDeviceToken
            | MissingTopic
            | PayloadEmpty
            | TopicDisallowed
            | BadRequestPayload => 400,
            BadCertificate
            | BadCertificateEnvironment
            | ExpiredProviderToken
            | Forbidden
            | InvalidProviderToken
            | MissingProviderToken
            | UnrelatedKeyIdInToken
            | BadEnvironmentKeyIdInToken => 403,
            BadPath => 404,
            MethodNotAllowed => 405,
            ExpiredToken | Unregistered => 410,
            PayloadTooLarge => 413,
            TooManyProviderTokenUpdates | TooManyRequests => 429,
            InternalServerError => 500,
            ServiceUnavailable | Shutdown => 503,
        }
    }

    /// Apple's exact reason string, the one spelling on the wire and in the journal (PROTOCOL.md 2.7).
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            BadCollapseId => "BadCollapseId",
            BadDeviceToken => "BadDeviceToken",
            BadExpirationDate => "BadExpirationDate",
            BadMessageId => "BadMessageId",
            BadPriority => "BadPriority",
            BadTopic => "BadTopic",
            DeviceTokenNotForTopic => "DeviceTokenNotForTopic",
            DuplicateHeaders => "DuplicateHeaders",
            IdleTimeout => "IdleTimeout",
            InvalidPushType => "InvalidPushType",
            MissingDeviceToken => "MissingDeviceToken",
            MissingTopic => "MissingTopic",
            PayloadEmpty => "PayloadEmpty",
            TopicDisallowed => "TopicDisallowed",
            BadRequestPayload => "BadRequestPayload",
            BadCertificate => "BadCertificate",
            BadCertificateEnvironment => "BadCertificateEnvironment",
            ExpiredProviderToken => "ExpiredProviderToken",
            Forbidden => "Forbidden",
            InvalidProviderToken => "InvalidProviderToken",
            MissingProviderToken => "MissingProviderToken",
            UnrelatedKeyIdInToken => "UnrelatedKeyIdInToken",
            BadEnvironmentKeyIdInToken => "BadEnvironmentKeyIdInToken",
            BadPath => "BadPath",
            MethodNotAllowed => "MethodNotAllowed",
            ExpiredToken => "ExpiredToken",
            Unregistered => "Unregistered",
            PayloadTooLarge => "PayloadTooLarge",
            TooManyProviderTokenUpdates => "TooManyProviderTokenUpdates",
            TooManyRequests => "TooManyRequests",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
            Shutdown => "Shutdown",
        }
    }

    /// Apple's meaning of the reason, for logs, the control API and conformance reports (PROTOCOL.md 2.7).
    pub fn description(self) -> &'static str {
        use Reason::*;
        match self {
            BadCollapseId => "The collapse identifier exceeds the maximum allowed size (64 bytes).",
            BadDeviceToken => {
                "The device token is malformed or belongs to the other environment."
            }
            BadExpirationDate => "The apns-expiration value is bad.",
            BadMessageId => "The apns-id value is bad.",
            BadPriority => "The apns-priority value is bad.",
            BadTopic => "The apns-topic value is bad.",
            DeviceTokenNotForTopic => "The device token doesn't match the specified topic.",
            DuplicateHeaders => "One or more headers are repeated.",
            IdleTimeout => "Idle timeout.",
            InvalidPushType => "The apns-push-type value is invalid.",
            MissingDeviceToken => "The device token isn't specified in the request :path.",
            MissingTopic => "The apns-topic header is required but missing.",
            PayloadEmpty => "The message payload is empty.",
            TopicDisallowed => "Pushing to this topic is not allowed.",
            BadRequestPayload => "The payload is invalid.",
            BadCertificate => "The certificate is invalid.",
            BadCertificateEnvironment => "The client certificate is for the wrong environment.",
            ExpiredProviderToken => "The provider token is stale (issued more than an hour ago).",
            Forbidden => "The specified action is not allowed.",
            InvalidProviderToken => {
                "The provider token is not valid, or its signature can't be verified."
            }
            MissingProviderToken => {
                "No provider certificate was used and no provider token was in the authorization header."
            }
            UnrelatedKeyIdInToken => {
                "The key ID is not related to the key used for this connection's first push."
            }
            BadEnvironmentKeyIdInToken => "The key ID is scoped to the other environment.",
            BadPath => "The request contained an invalid :path value.",
            MethodNotAllowed => "The specified :method value isn't POST.",
            ExpiredToken => "The device token has expired.",
            Unregistered => "The device token is inactive for the specified topic.",
            PayloadTooLarge => "The message payload is too large.",
            TooManyProviderTokenUpdates => "The provider's authentication token is being updated too often.",
            TooManyRequests => "Too many requests were made consecutively to the same device token.",
            InternalServerError => "An internal server error occurred.",
            ServiceUnavailable => "The service is unavailable.",
            Shutdown => "The APNs server is shutting down.",
        }
    }

    /// True for the four reasons older clients cannot parse (PROTOCOL.md 2.7 "Client compatibility").
    pub fn is_newer(self) -> bool {
        matches!(
            self,
            Reason::ExpiredToken
                | Reason::InvalidPushType
                | Reason::UnrelatedKeyIdInToken
                | Reason::BadEnvironmentKeyIdInToken
        )
    }

    /// The reason actually sent once the compatibility switches are applied (PROTOCOL.md Part 3).
    ///
    /// Idempotent: a substitute is never itself one of the switchable reasons.
    pub fn effective(self, compat: CompatSettings) -> Reason {
        match self {
            Reason::ExpiredToken if !compat.expired_token => Reason::Unregistered,
            Reason::InvalidPushType if !compat.invalid_push_type => Reason::BadTopic,
            Reason::UnrelatedKeyIdInToken if !compat.unrelated_key_id_in_token => {
                Reason::InvalidProviderToken
            }
            Reason::BadEnvironmentKeyIdInToken if !compat.bad_environment_key_id_in_token => {
                Reason::InvalidProviderToken
            }
            other => other,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = UnknownReason;

    /// Exact, case-sensitive match on Apple's string: clients compare reasons that way too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .iter()
            .copied()
            .chain([Reason::BadRequestPayload])
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.chars().take(64).collect()))
    }
}

/// Per-reason switches for the four newer reasons, so older clients (a2, PyAPNs2, pushy) can be tested
/// without crashing on a string they do not know (PROTOCOL.md 2.7, Part 3).
///
/// `true` (the default) emits the reason where Apple would. `false` answers the older equivalent:
/// - ExpiredToken → Unregistered: same 410 status and the same "stop sending to this token" meaning.
/// - InvalidPushType → BadTopic: same 400 status; push types are defined by topic suffixes
///   (PROTOCOL.md 2.4), so before the push-type header existed a type/topic mismatch was a topic
///   error. **[inferred]**
/// - UnrelatedKeyIdInToken → InvalidProviderToken: same 403; pushy's mock answers a foreign key or
///   team on a connection this way (PROTOCOL.md 2.2, 2.8).
/// - BadEnvironmentKeyIdInToken → InvalidProviderToken: same 403; before scoped keys a key unusable
///   here was simply an invalid token. **[inferred]**
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct CompatSettings {
    /// Emit ExpiredToken (else Unregistered).
    pub expired_token: bool,
    /// Emit InvalidPushType (else BadTopic).
    pub invalid_push_type: bool,
    /// Emit UnrelatedKeyIdInToken (else InvalidProviderToken).
    pub unrelated_key_id_in_token: bool,
    /// Emit BadEnvironmentKeyIdInToken (else InvalidProviderToken).
    pub bad_environment_key_id_in_token: bool,
}

impl Default for CompatSettings {
    fn default() -> Self {
        CompatSettings::MODERN
    }
}

impl CompatSettings {
    /// All four newer reasons emitted: today's Apple (PROTOCOL.md Part 3 default).
    pub const MODERN: CompatSettings = CompatSettings {
        expired_token: true,
        invalid_push_type: true,
        unrelated_key_id_in_token: true,
        bad_environment_key_id_in_token: true,
    };

    /// All four switched off, for clients that know only the older table (a2 0.10, PyAPNs2).
    pub const LEGACY_CLIENTS: CompatSettings = CompatSettings {
        expired_token: false,
        invalid_push_type: false,
        unrelated_key_id_in_token: false,
        bad_environment_key_id_in_token: false,
    };
}

/// The JSON error body of an HTTP/2 rejection, byte-exact to Apple's (PROTOCOL.md 2.6).
///
/// `timestamp_ms` is milliseconds since the epoch; Apple sends it with 410 responses only, so the
/// caller passes `Some` for Unregistered/ExpiredToken and `None` otherwise.
pub fn body(reason: Reason, timestamp_ms: Option<u64>) -> Vec<u8> {
    // Reason strings are plain ASCII identifiers: no JSON escaping needed.
    match timestamp_ms {
        Some(ts) => format!(
            "{{\"reason\":\"{}\",\"timestamp\":{}}}",
            reason.as_str(),
            ts
        ),
        None => format!("{{\"reason\":\"{}\"}}", reason.as_str()),
    }
    .into_bytes()
}

/// The GOAWAY debug data APNs sends when it closes a connection (PROTOCOL.md 2.2).
pub fn goaway_debug(reason: Reason) -> Vec<u8> {
    body(reason, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_has_32_distinct_reasons_and_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "duplicate {r}");
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
            assert_eq!(
                format!("{r:?}"),
                r.as_str(),
                "variant name is Apple's string"
            );
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Reason>(&json).unwrap(), r);
            assert!(!r.description().is_empty());
        }
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn statuses_match_table() {
        let count = |s| Reason::ALL.iter().filter(|r| r.status() == s).count();
        assert_eq!(count(400), 14);
        assert_eq!(count(403), 8);
        assert_eq!(count(404), 1);
        assert_eq!(count(405), 1);
        assert_eq!(count(410), 2);
        assert_eq!(count(413), 1);
        assert_eq!(count(429), 2);
        assert_eq!(count(500), 1);
        assert_eq!(count(503), 2);
        assert_eq!(Reason::BadEnvironmentKeyIdInToken.status(), 403);
        assert_eq!(Reason::Unregistered.status(), 410);
        assert_eq!(Reason::PayloadTooLarge.status(), 413);
    }

    #[test]
    fn unknown_strings_are_rejected() {
        assert!("BadEnvironmentKeyInToken".parse::<Reason>().is_err());
        assert!("baddevicetoken".parse::<Reason>().is_err());
        assert!("".parse::<Reason>().is_err());
        assert!(serde_json::from_str::<Reason>("\"Nope\"").is_err());
    }

    #[test]
    fn bodies_are_byte_exact() {
        assert_eq!(
            body(Reason::Unregistered, Some(1508249865488)),
            br#"{"reason":"Unregistered","timestamp":1508249865488}"#.to_vec()
        );
        assert_eq!(
            body(Reason::BadDeviceToken, None),
            br#"{"reason":"BadDeviceToken"}"#.to_vec()
        );
        assert_eq!(
            goaway_debug(Reason::BadCertificateEnvironment),
            br#"{"reason":"BadCertificateEnvironment"}"#.to_vec()
        );
        let v: serde_json::Value =
            serde_json::from_slice(&body(Reason::ExpiredToken, Some(0))).unwrap();
        assert_eq!(v["reason"], "ExpiredToken");
        assert_eq!(v["timestamp"], 0);
    }

    #[test]
    fn compat_maps_only_the_four_newer_reasons() {
        let newer: Vec<_> = Reason::ALL
            .iter()
            .copied()
            .filter(|r| r.is_newer())
            .collect();
        assert_eq!(newer.len(), 4);
        for r in Reason::ALL {
            assert_eq!(r.effective(CompatSettings::MODERN), r);
            let old = r.effective(CompatSettings::LEGACY_CLIENTS);
            if r.is_newer() {
                assert_ne!(old, r);
                assert!(!old.is_newer());
                assert_eq!(old.status(), r.status(), "{r} keeps its status class");
            } else {
                assert_eq!(old, r);
            }
            assert_eq!(old.effective(CompatSettings::LEGACY_CLIENTS), old);
        }
        let only_expired = CompatSettings {
            expired_token: false,
            ..CompatSettings::MODERN
        };
        assert_eq!(
            Reason::ExpiredToken.effective(only_expired),
            Reason::Unregistered
        );
        assert_eq!(
            Reason::InvalidPushType.effective(only_expired),
            Reason::InvalidPushType
        );
    }

    #[test]
    fn compat_settings_deserialize_with_defaults() {
        let c: CompatSettings = serde_json::from_str(r#"{"expired-token":false}"#).unwrap();
        assert!(!c.expired_token);
        assert!(c.invalid_push_type);
    }
}
