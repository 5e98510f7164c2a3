//! The legacy binary protocol's error-response status codes (PROTOCOL.md 1.6).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One status byte of the legacy error-response packet, named once for the codec, journal and scenarios.
// PROTOCOL.md 1.6: Apple's table A-4. Code 9 does not exist; 10 and 128 were added later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Status {
    /// Listed by Apple; some clients read a close without a packet as this.
    NoErrors = 0,
    /// Apple-side failure, not the provider's fault.
    ProcessingError = 1,
    /// Token length 0 or item 1 absent.
    MissingDeviceToken = 2,
    /// The topic could not be derived from the certificate.
    MissingTopic = 3,
    /// Payload length 0 or item 2 absent.
    MissingPayload = 4,
    /// The token has the wrong length.
    InvalidTokenSize = 5,
    /// The certificate's topic has a bad size.
    InvalidTopicSize = 6,
    /// The payload is too large.
    InvalidPayloadSize = 7,
    /// The token is unknown or belongs to the other environment.
    InvalidToken = 8,
    /// The server is closing; the identifier names the last notification sent successfully.
    Shutdown = 10,
    /// APNs could not parse the notification.
    ProtocolError = 128,
    /// Catch-all for an unknown failure.
    Unknown = 255,
}

impl Status {
    /// Every status, in code order, so tables, scenario checks and tests can enumerate them.
    pub const ALL: [Status; 12] = [
        Status::NoErrors,
        Status::ProcessingError,
        Status::MissingDeviceToken,
        Status::MissingTopic,
        Status::MissingPayload,
        Status::InvalidTokenSize,
        Status::InvalidTopicSize,
        Status::InvalidPayloadSize,
        Status::InvalidToken,
        Status::Shutdown,
        Status::ProtocolError,
        Status::Unknown,
    ];

    /// The byte written on the wire (PROTOCOL.md 1.6).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Reads a wire byte; `None` for codes Apple never defined, so callers keep the raw byte instead.
    pub fn from_code(code: u8) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The stable snake_case name used in the journal, the control API and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Status::NoErrors => "no_errors",
            Status::ProcessingError => "processing_error",
            Status::MissingDeviceToken => "missing_device_token",
            Status::MissingTopic => "missing_topic",
            Status::MissingPayload => "missing_payload",
            Status::InvalidTokenSize => "invalid_token_size",
            Status::InvalidTopicSize => "invalid_topic_size",
            Status::InvalidPayloadSize => "invalid_payload_size",
            Status::InvalidToken => "invalid_token",
            Status::Shutdown => "shutdown",
            Status::ProtocolError => "protocol_error",
            Status::Unknown => "unknown",
        }
    }

    /// Reads a name written by [`Status::name`], e.g. from a scenario file; exact match only.
    pub fn from_name(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Apple's wording for the code (PROTOCOL.md 1.6, table A-4), for reports and logs.
    pub fn description(self) -> &'static str {
        match self {
            Status::NoErrors => "No errors encountered",
            Status::ProcessingError => "Processing error",
            Status::MissingDeviceToken => "Missing device token",
            Status::MissingTopic => "Missing topic",
            Status::MissingPayload => "Missing payload",
            Status::InvalidTokenSize => "Invalid token size",
            Status::InvalidTopicSize => "Invalid topic size",
            Status::InvalidPayloadSize => "Invalid payload size",
            Status::InvalidToken => "Invalid token",
            Status::Shutdown => "Shutdown",
            Status::ProtocolError => "Protocol error (APNs could not parse the notification)",
            Status::Unknown => "None (unknown)",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a status name from a scenario or control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown legacy status name {0:?}")]
pub struct UnknownStatusName(pub String);

impl FromStr for Status {
    type Err = UnknownStatusName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::from_name(s).ok_or_else(|| UnknownStatusName(s.to_owned()))
    }
}

impl From<Status> for u8 {
    fn from(s: Status) -> u8 {
        s.code()
    }
}

impl TryFrom<u8> for Status {
    type Error = u8;

    fn try_from(code: u8) -> Result<Self, Self::Error> {
        Status::from_code(code).ok_or(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_apple_table() {
        // PROTOCOL.md 1.6
        let expected: [(u8, Status); 12] = [
            (0, Status::NoErrors),
            (1, Status::ProcessingError),
            (2, Status::MissingDeviceToken),
            (3, Status::MissingTopic),
            (4, Status::MissingPayload),
            (5, Status::InvalidTokenSize),
            (6, Status::InvalidTopicSize),
            (7, Status::InvalidPayloadSize),
            (8, Status::InvalidToken),
            (10, Status::Shutdown),
            (128, Status::ProtocolError),
            (255, Status::Unknown),
        ];
        for (code, status) in expected {
            assert_eq!(status.code(), code);
            assert_eq!(Status::from_code(code), Some(status));
            assert_eq!(u8::from(status), code);
            assert_eq!(Status::try_from(code), Ok(status));
        }
    }

    #[test]
    fn undefined_codes_are_none() {
        let defined: Vec<u8> = Status::ALL.iter().map(|s| s.code()).collect();
        for code in 0..=u8::MAX {
            if !defined.contains(&code) {
                assert_eq!(Status::from_code(code), None, "code {code}");
                assert_eq!(Status::try_from(code), Err(code));
            }
        }
        assert_eq!(Status::from_code(9), None);
        assert_eq!(Status::from_code(254), None);
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for s in Status::ALL {
            assert_eq!(Status::from_name(s.name()), Some(s));
            assert_eq!(s.name().parse::<Status>(), Ok(s));
            assert_eq!(s.to_string(), s.name());
            assert!(s.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        let mut names: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Status::ALL.len());
        assert_eq!(Status::InvalidToken.name(), "invalid_token");
        assert_eq!(Status::from_name("Invalid_Token"), None);
        assert!("nope".parse::<Status>().is_err());
    }

    #[test]
    fn serde_uses_the_name() {
        for s in Status::ALL {
            let json = serde_json::to_string(&s).expect("serialize");
            assert_eq!(json, format!("\"{}\"", s.name()));
            let back: Status = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, s);
        }
        assert!(serde_json::from_str::<Status>("\"bogus\"").is_err());
        assert!(serde_json::from_str::<Status>("8").is_err());
    }

    #[test]
    fn descriptions_are_distinct() {
        let mut d: Vec<&str> = Status::ALL.iter().map(|s| s.description()).collect();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), Status::ALL.len());
        assert_eq!(Status::MissingPayload.description(), "Missing payload");
    }
}
