//! What a correct HTTP/2 provider does with each answer (PROTOCOL.md 2.6, 2.7): report it, retry it
//! after a pause, or retry it with a fresh provider token; and how long the pause is.

use crate::http2::reason::Reason;
use std::str::FromStr;
use std::time::Duration;

/// Most attempts of one notification (first send included).
pub const MAX_ATTEMPTS: u8 = 4;
/// The first retry's pause; each further retry doubles it.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// The verdict on one HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 200: delivered.
    Sent,
    /// 410: the device token is gone (report `token-invalid` with the timestamp).
    TokenInvalid,
    /// A rejection Apple says not to retry (PROTOCOL.md 2.6): report `failed`.
    Fail,
    /// Throttled or a server error: retry the same request after a backoff.
    RetryLater,
    /// ExpiredProviderToken: sign a new JWT and retry now (PROTOCOL.md 2.8).
    RetryWithNewToken,
    /// TooManyProviderTokenUpdates: this connection refuses the token for a while (PROTOCOL.md
    /// 2.8, Apple forum 675879): retry after a backoff on a new connection, same token.
    RetryOnNewConnection,
}

/// Classifies an answer by status and reason string.
pub fn classify(status: u16, reason: Option<&str>) -> Verdict {
    let reason = reason.and_then(|r| Reason::from_str(r).ok());
    match status {
        200 => Verdict::Sent,
        410 => Verdict::TokenInvalid,
        // PROTOCOL.md 2.7: TooManyRequests and TooManyProviderTokenUpdates are both 429.
        429 if reason == Some(Reason::TooManyProviderTokenUpdates) => Verdict::RetryOnNewConnection,
        429 => Verdict::RetryLater,
        403 if reason == Some(Reason::ExpiredProviderToken) => Verdict::RetryWithNewToken,
        // PROTOCOL.md 2.6: 5xx are worth retrying (Apple says after a delay).
        500..=599 => Verdict::RetryLater,
        _ => Verdict::Fail,
    }
}

/// The pause before retry number `retry` (1 for the first retry): 250 ms × 2^(retry−1).
pub fn backoff(retry: u8) -> Duration {
    let shift = u32::from(retry.saturating_sub(1)).min(8);
    BACKOFF_BASE.saturating_mul(1u32 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_apples_advice() {
        assert_eq!(classify(200, None), Verdict::Sent);
        assert_eq!(classify(410, Some("Unregistered")), Verdict::TokenInvalid);
        assert_eq!(classify(410, Some("ExpiredToken")), Verdict::TokenInvalid);
        assert_eq!(classify(400, Some("BadDeviceToken")), Verdict::Fail);
        assert_eq!(classify(413, Some("PayloadTooLarge")), Verdict::Fail);
        assert_eq!(classify(403, Some("InvalidProviderToken")), Verdict::Fail);
        assert_eq!(
            classify(403, Some("ExpiredProviderToken")),
            Verdict::RetryWithNewToken
        );
        assert_eq!(classify(429, Some("TooManyRequests")), Verdict::RetryLater);
        assert_eq!(
            classify(429, Some("TooManyProviderTokenUpdates")),
            Verdict::RetryOnNewConnection
        );
        assert_eq!(
            classify(500, Some("InternalServerError")),
            Verdict::RetryLater
        );
        assert_eq!(classify(503, Some("Shutdown")), Verdict::RetryLater);
        assert_eq!(classify(503, None), Verdict::RetryLater);
    }

    #[test]
    fn backoff_doubles_and_never_overflows() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_millis(1000));
        assert!(backoff(u8::MAX) <= Duration::from_millis(250 * 256));
    }
}
