//! The broadcast and channel-management APIs' rejection reasons (PROTOCOL.md 2.11, A-BERR): a
//! table of their own, apart from `/3/device`'s, because Apple documents them apart.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why APNs refused a broadcast or channel-management request: one value per A-BERR row.
///
/// Serialised (serde) as Apple's string, e.g. `"BadChannelId"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BroadcastReason {
    /// 400: broadcast is not enabled for the app.
    FeatureNotEnabled,
    /// 400: no `apns-channel-id` header.
    MissingChannelId,
    /// 400: `apns-channel-id` is not a base64 channel id.
    BadChannelId,
    /// 400: no such channel in this environment (never created, or deleted).
    ChannelNotRegistered,
    /// 400: a request field is missing or invalid (storage policy, a repeated header).
    BadRequestParams,
    /// 400: the body is not the JSON expected.
    BadRequestPayload,
    /// 400: empty body.
    PayloadEmpty,
    /// 400: bad `apns-id` or `apns-request-id`.
    BadMessageId,
    /// 400: no push type.
    MissingPushType,
    /// 400: push type other than Live Activity.
    InvalidPushType,
    /// 400: over the channel limit of the environment.
    CannotCreateChannelConfig,
    /// 400: bad `apns-expiration`, or not 0 on a channel without message storage.
    BadExpirationDate,
    /// 400: the topic has no push-type suffix.
    TopicDisallowed,
    /// 400: bad `apns-priority`.
    BadPriority,
    /// 403: invalid client certificate.
    BadCertificate,
    /// 403: client certificate of the other environment.
    BadCertificateEnvironment,
    /// 403: the credentials do not cover this app.
    TopicMismatch,
    /// 403: neither a client certificate nor a bearer token.
    MissingProviderToken,
    /// 403: JWT `iat` more than an hour old.
    ExpiredProviderToken,
    /// 403: JWT invalid or its signature fails.
    InvalidProviderToken,
    /// 404: invalid `:path`.
    BadPath,
    /// 405: method not allowed on this path.
    MethodNotAllowed,
    /// 413: body too big.
    PayloadTooLarge,
    /// 429: too many requests.
    TooManyRequests,
    /// 429: provider token changed more often than every 20 minutes.
    TooManyProviderTokenUpdates,
    /// 500: internal server error.
    InternalServerError,
    /// 503: service unavailable (wire spelling is a setting: PROTOCOL.md 2.11 [uncertain]).
    ServiceUnavailable,
    /// 503: the server is shutting down.
    Shutdown,
}

/// Error returned when a string names no broadcast reason, so scenario files fail loudly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown broadcast reason {0:?}")]
pub struct UnknownBroadcastReason(pub String);

impl BroadcastReason {
    /// Every reason in A-BERR's order, so tests can prove each one is produced.
    pub const ALL: [BroadcastReason; 28] = {
        use BroadcastReason::*;
        [
            FeatureNotEnabled,
            MissingChannelId,
            BadChannelId,
            ChannelNotRegistered,
            BadRequestParams,
            BadRequestPayload,
            PayloadEmpty,
            BadMessageId,
            MissingPushType,
            InvalidPushType,
            CannotCreateChannelConfig,
            BadExpirationDate,
            TopicDisallowed,
            BadPriority,
            BadCertificate,
            BadCertificateEnvironment,
            TopicMismatch,
            MissingProviderToken,
            ExpiredProviderToken,
            InvalidProviderToken,
            BadPath,
            MethodNotAllowed,
            PayloadTooLarge,
            TooManyRequests,
            TooManyProviderTokenUpdates,
            InternalServerError,
            ServiceUnavailable,
            Shutdown,
        ]
    };

    /// The HTTP `:status` of the reason (PROTOCOL.md 2.11 table).
    pub fn status(self) -> u16 {
        use BroadcastReason::*;
        match self {
            FeatureNotEnabled
            | MissingChannelId
            | BadChannelId
            | ChannelNotRegistered
            | BadRequestParams
            | BadRequestPayload
            | PayloadEmpty
            | BadMessageId
            | MissingPushType
            | InvalidPushType
            | CannotCreateChannelConfig
            | BadExpirationDate
            | TopicDisallowed
            | BadPriority => 400,
            BadCertificate
            | BadCertificateEnvironment
            | TopicMismatch
            | MissingProviderToken
            | ExpiredProviderToken
            | InvalidProviderToken => 403,
            BadPath => 404,
            MethodNotAllowed => 405,
            PayloadTooLarge => 413,
            TooManyRequests | TooManyProviderTokenUpdates => 429,
            InternalServerError => 500,
            ServiceUnavailable | Shutdown => 503,
        }
    }

    /// Apple's string for the reason (ServiceUnavailable: see [`Self::wire`]).
    pub fn as_str(self) -> &'static str {
        use BroadcastReason::*;
        match self {
            FeatureNotEnabled => "FeatureNotEnabled",
            MissingChannelId => "MissingChannelId",
            BadChannelId => "BadChannelId",
            ChannelNotRegistered => "ChannelNotRegistered",
            BadRequestParams => "BadRequestParams",
            BadRequestPayload => "BadRequestPayload",
            PayloadEmpty => "PayloadEmpty",
            BadMessageId => "BadMessageId",
            MissingPushType => "MissingPushType",
            InvalidPushType => "InvalidPushType",
            CannotCreateChannelConfig => "CannotCreateChannelConfig",
            BadExpirationDate => "BadExpirationDate",
            TopicDisallowed => "TopicDisallowed",
            BadPriority => "BadPriority",
            BadCertificate => "BadCertificate",
            BadCertificateEnvironment => "BadCertificateEnvironment",
            TopicMismatch => "TopicMismatch",
            MissingProviderToken => "MissingProviderToken",
            ExpiredProviderToken => "ExpiredProviderToken",
            InvalidProviderToken => "InvalidProviderToken",
            BadPath => "BadPath",
            MethodNotAllowed => "MethodNotAllowed",
            PayloadTooLarge => "PayloadTooLarge",
            TooManyRequests => "TooManyRequests",
            TooManyProviderTokenUpdates => "TooManyProviderTokenUpdates",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
            Shutdown => "Shutdown",
        }
    }

    /// The string written on the wire: A-BERR prints "Service Unavailable" with a space, the
    /// `/3/device` table (and so every client) "ServiceUnavailable" (PROTOCOL.md 2.11 [uncertain]).
    pub fn wire(self, spaced_service_unavailable: bool) -> &'static str {
        match self {
            BroadcastReason::ServiceUnavailable if spaced_service_unavailable => {
                "Service Unavailable"
            }
            r => r.as_str(),
        }
    }

    /// The broadcast reason of the same name as a `/3/device` reason, for the auth stage shared
    /// with `/3/device` and for reasons forced through the Rust or control API. Key-id reasons
    /// that A-BERR does not list become InvalidProviderToken **[inferred]**.
    pub fn from_apns(r: crate::model::wire::Reason) -> Option<BroadcastReason> {
        use crate::model::wire::Reason as R;
        Some(match r {
            R::UnrelatedKeyIdInToken | R::BadEnvironmentKeyIdInToken => {
                BroadcastReason::InvalidProviderToken
            }
            R::Forbidden | R::IdleTimeout => return None,
            other => other.as_str().parse().ok()?,
        })
    }
}

impl fmt::Display for BroadcastReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BroadcastReason {
    type Err = UnknownBroadcastReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BroadcastReason::ALL
            .into_iter()
            .find(|r| {
                r.as_str() == s
                    || (s == "Service Unavailable" && r.as_str() == "ServiceUnavailable")
            })
            .ok_or_else(|| UnknownBroadcastReason(s.to_owned()))
    }
}

/// An error body `{"reason":"…"}` (PROTOCOL.md 2.6 shape, reused by A-BERR).
pub fn body(reason: BroadcastReason, spaced_service_unavailable: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "reason": reason.wire(spaced_service_unavailable) }))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_and_has_its_table_status() {
        for r in BroadcastReason::ALL {
            assert_eq!(r.as_str().parse::<BroadcastReason>().unwrap(), r);
            assert!(matches!(
                r.status(),
                400 | 403 | 404 | 405 | 413 | 429 | 500 | 503
            ));
        }
        assert_eq!(BroadcastReason::CannotCreateChannelConfig.status(), 400);
        assert_eq!(BroadcastReason::TopicMismatch.status(), 403);
    }

    #[test]
    fn service_unavailable_spelling_is_a_setting() {
        let r = BroadcastReason::ServiceUnavailable;
        assert_eq!(body(r, false), br#"{"reason":"ServiceUnavailable"}"#);
        assert_eq!(body(r, true), br#"{"reason":"Service Unavailable"}"#);
    }

    #[test]
    fn apns_reasons_map_by_name() {
        use crate::model::wire::Reason as R;
        assert_eq!(
            BroadcastReason::from_apns(R::ExpiredProviderToken),
            Some(BroadcastReason::ExpiredProviderToken)
        );
        assert_eq!(
            BroadcastReason::from_apns(R::UnrelatedKeyIdInToken),
            Some(BroadcastReason::InvalidProviderToken)
        );
        assert_eq!(BroadcastReason::from_apns(R::BadDeviceToken), None);
        assert_eq!(
            BroadcastReason::from_apns(R::ServiceUnavailable),
            Some(BroadcastReason::ServiceUnavailable)
        );
    }
}
