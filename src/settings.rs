//! apnsim's answers to the questions Apple's documents leave open (PROTOCOL.md Part 3), and its
//! limits: each a setting so a test can pick the other side.

use serde::{Deserialize, Serialize};

pub use crate::model::wire::legacy_limits::TokenLen;

/// What the gateway does with an unknown command byte (PROTOCOL.md 1.7, Part 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownCommand {
    /// Error-response status 128, identifier 0, then close (the default).
    #[default]
    ProtocolError,
    /// Close with no error-response.
    SilentClose,
}

/// The lowest TLS version the legacy gateway and feedback ports speak (`--legacy-tls-min`). Apple's
/// binary gateway took TLS 1.0 for most of its life and providers of that era hard-code it
/// (PROTOCOL.md 1.1); below 1.2 the listeners are served by OpenSSL at security level 0, since
/// rustls never speaks TLS 1.0 or 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum LegacyTlsMin {
    /// TLS 1.0 and up (OpenSSL).
    #[serde(rename = "1.0")]
    Tls1_0,
    /// TLS 1.1 and up (OpenSSL).
    #[serde(rename = "1.1")]
    Tls1_1,
    /// TLS 1.2 only, or 1.2 and 1.3 with `legacy_tls13` (rustls; the default).
    #[default]
    #[serde(rename = "1.2")]
    Tls1_2,
}

impl LegacyTlsMin {
    /// The version number as the wire spells it (0x0301 for TLS 1.0).
    pub fn wire(self) -> u16 {
        match self {
            LegacyTlsMin::Tls1_0 => 0x0301,
            LegacyTlsMin::Tls1_1 => 0x0302,
            LegacyTlsMin::Tls1_2 => 0x0303,
        }
    }

    /// "1.0", "1.1" or "1.2", as the flag and the settings key spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyTlsMin::Tls1_0 => "1.0",
            LegacyTlsMin::Tls1_1 => "1.1",
            LegacyTlsMin::Tls1_2 => "1.2",
        }
    }
}

impl std::str::FromStr for LegacyTlsMin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1.0" => Ok(LegacyTlsMin::Tls1_0),
            "1.1" => Ok(LegacyTlsMin::Tls1_1),
            "1.2" => Ok(LegacyTlsMin::Tls1_2),
            other => Err(format!(
                "legacy TLS minimum {other:?}: expected 1.0, 1.1 or 1.2"
            )),
        }
    }
}

impl std::fmt::Display for LegacyTlsMin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every knob of the emulator's default behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Legacy token length rule.
    pub legacy_token_length: TokenLen,
    /// Legacy payload limit in bytes (PROTOCOL.md Part 3: 2048).
    pub legacy_max_payload: usize,
    /// Legacy unknown command byte handling.
    pub legacy_unknown_command: UnknownCommand,
    /// How long the gateway takes to answer a verdict that ends a legacy connection, in ms, reading
    /// and discarding meanwhile: error-response, command-0 close, `drop`, reset (PROTOCOL.md 1.7:
    /// a transatlantic round trip plus Apple's processing). `legacy_error_delay_ms` is its old name.
    #[serde(alias = "legacy_error_delay_ms")]
    pub legacy_answer_delay_ms: u64,
    /// Gap between a legacy connection's last data and its close_notify, in ms, on the gateway
    /// and the feedback service (PROTOCOL.md 1.1: over a real network they arrive apart).
    pub legacy_close_gap_ms: u64,
    /// How the feedback service ends its stream after the last tuple (`graceful`: the gap, then
    /// close_notify; `burst`: the last tuple and close_notify in one write, which clients that drop
    /// the data of a read ending in EOF lose; `fin`; `reset`).
    pub feedback_close: CloseHow,
    /// Largest command-2 frame length accepted before the frame is refused unread.
    pub legacy_max_frame: usize,
    /// Allow TLS 1.3 on the legacy and feedback ports (off: TLS 1.2, as the gateway spoke it).
    pub legacy_tls13: bool,
    /// Lowest TLS version on the legacy and feedback ports (1.0 and 1.1 need the `legacy-openssl` feature).
    pub legacy_tls_min: LegacyTlsMin,
    /// Close a legacy connection idle (or stuck mid-frame) this long, in seconds (0 = never).
    pub idle_timeout_secs: u64,
    /// Refuse tokens that are not registered (status 8 / BadDeviceToken).
    pub strict_tokens: bool,
    /// Refuse accepted notifications whose payload lint warns (HTTP/2 400 BadRequestPayload,
    /// legacy status 255): an apnsim extension for strict CI, off by default since APNs accepts them.
    pub strict_payload: bool,
    /// Bound on journal events kept.
    pub journal_capacity: usize,
    /// Bound on simultaneously open connections per listener.
    pub max_connections: usize,
    /// Bound on bytes buffered from one legacy connection before it is read further.
    pub legacy_read_buffer: usize,
    /// HTTP/2 device tokens must be exactly 64 hex digits (PROTOCOL.md Part 3: default 64 to 200).
    pub http2_strict_token_length: bool,
    /// HTTP/2 payload limit (PROTOCOL.md 2.5: 4096).
    pub http2_max_payload: usize,
    /// HTTP/2 VoIP payload limit (PROTOCOL.md 2.5: 5120).
    pub http2_max_payload_voip: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS on a token connection before its first valid JWT (PROTOCOL.md 2.2: 1).
    pub http2_streams_before_auth: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS once trusted, and on certificate connections (PROTOCOL.md Part 3: 1000).
    pub http2_max_streams: u32,
    /// Generated apns-id values in uppercase (PROTOCOL.md 2.6 saw both; default lowercase).
    pub http2_uppercase_apns_id: bool,
    /// Close an HTTP/2 connection with no stream or PING activity this long with GOAWAY
    /// `{"reason":"IdleTimeout"}`, in seconds (0 = never).
    pub http2_idle_timeout_secs: u64,
    /// JWT `iat` this far in the future is still accepted (PROTOCOL.md Part 3: 60 s).
    pub jwt_future_tolerance_secs: u64,
    /// A JWT older than this is ExpiredProviderToken (PROTOCOL.md 2.8: one hour); conformance
    /// compresses the hour to seconds, since a library signs with its own clock.
    pub jwt_max_age_secs: u64,
    /// Ages a JWT from the later of its `iat` and the moment this connection first saw it, not
    /// from `iat` alone (Apple's rule, the default). For conformance's compressed token life: a
    /// library that signs at start-up and is slow to send must not see its token expire before
    /// its first request, or the grade would measure the machine's load, not the library.
    pub jwt_age_from_first_use: bool,
    /// A new JWT on a connection sooner than this after the last is TooManyProviderTokenUpdates
    /// (PROTOCOL.md 2.8: 20 minutes).
    pub jwt_min_update_secs: u64,
    /// Whether the token-update limit counts per team across connections (Apple, the default) or
    /// per connection (PROTOCOL.md 2.8).
    pub token_update_scope: TokenUpdateScope,
    /// Which newer reasons are emitted; older clients can be served their older equivalents (PROTOCOL.md 2.7).
    pub http2_reasons: crate::model::wire::reason::CompatSettings,
    /// Broadcast push and channel management (PROTOCOL.md 2.11; its [uncertain] points).
    pub broadcast: crate::broadcast::BroadcastSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            legacy_token_length: TokenLen::Exact32,
            legacy_max_payload: 2048,
            legacy_unknown_command: UnknownCommand::ProtocolError,
            legacy_answer_delay_ms: DEFAULT_ANSWER_DELAY_MS,
            legacy_close_gap_ms: DEFAULT_CLOSE_GAP_MS,
            feedback_close: CloseHow::Graceful,
            legacy_max_frame: crate::model::wire::legacy_limits::DEFAULT_MAX_FRAME,
            legacy_tls13: false,
            legacy_tls_min: LegacyTlsMin::Tls1_2,
            idle_timeout_secs: 300,
            strict_tokens: false,
            strict_payload: false,
            journal_capacity: crate::journal::DEFAULT_CAPACITY,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            legacy_read_buffer: 512 * 1024,
            http2_strict_token_length: false,
            http2_max_payload: 4096,
            http2_max_payload_voip: 5120,
            http2_streams_before_auth: 1,
            http2_max_streams: 1000,
            http2_uppercase_apns_id: false,
            // Longer than the hour after which Apple suggests a PING (PROTOCOL.md 2.2).
            http2_idle_timeout_secs: 3900,
            jwt_future_tolerance_secs: 60,
            jwt_max_age_secs: 3600,
            jwt_age_from_first_use: false,
            jwt_min_update_secs: 1200,
            token_update_scope: Default::default(),
            http2_reasons: crate::model::wire::reason::CompatSettings::default(),
            broadcast: crate::broadcast::BroadcastSettings::default(),
        }
    }
}

/// Default answer delay: a transatlantic round trip (about 80–100 ms) plus Apple's processing;
/// node-apn saw the error-response up to about 200 ms after the bad notification (PROTOCOL.md 1.7).
pub const DEFAULT_ANSWER_DELAY_MS: u64 = 200;

/// Default gap between the last data and close_notify on the legacy ports (PROTOCOL.md 1.1).
pub const DEFAULT_CLOSE_GAP_MS: u64 = 20;

/// Old setting names still read, with the name they stand for (scenario `[settings]` and
/// `--config`; the serialized settings use the new name).
pub const SETTING_ALIASES: [(&str, &str); 1] =
    [("legacy_error_delay_ms", "legacy_answer_delay_ms")];

/// Default bound on simultaneous connections per listener: thousands of idle providers must not
/// lock out the next one.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// A setting outside its range, or two settings that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// One setting out of its range.
    #[error("{field} = {value} is out of range: expected {min} to {max}")]
    OutOfRange {
        /// The setting's name.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// A frame the gateway accepts must fit in the bytes it buffers per connection.
    #[error("legacy_max_frame = {max_frame} does not fit legacy_read_buffer = {read_buffer} (a frame plus its 5-byte header must fit)")]
    FrameOverBuffer {
        /// `legacy_max_frame`.
        max_frame: u64,
        /// `legacy_read_buffer`.
        read_buffer: u64,
    },
}

const DAY: u64 = 86_400;
const MIB: u64 = 1024 * 1024;

impl Settings {
    /// Every numeric setting with its value and accepted range: values outside would abort the
    /// server (allocations), disable a bound or make it useless.
    pub fn ranges(&self) -> [(&'static str, u64, u64, u64); 16] {
        let n = |v: usize| v as u64;
        [
            // Payload lengths are u16 on the wire (PROTOCOL.md 1.3).
            ("legacy_max_payload", n(self.legacy_max_payload), 1, 65_535),
            (
                "legacy_answer_delay_ms",
                self.legacy_answer_delay_ms,
                0,
                60_000,
            ),
            ("legacy_close_gap_ms", self.legacy_close_gap_ms, 0, 10_000),
            ("legacy_max_frame", n(self.legacy_max_frame), 64, 16 * MIB),
            ("idle_timeout_secs", self.idle_timeout_secs, 0, DAY),
            ("journal_capacity", n(self.journal_capacity), 1, 50_000_000),
            ("max_connections", n(self.max_connections), 1, 1_000_000),
            (
                "legacy_read_buffer",
                n(self.legacy_read_buffer),
                4096,
                64 * MIB,
            ),
            ("http2_max_payload", n(self.http2_max_payload), 1, MIB),
            (
                "http2_max_payload_voip",
                n(self.http2_max_payload_voip),
                1,
                MIB,
            ),
            (
                "http2_streams_before_auth",
                u64::from(self.http2_streams_before_auth),
                0,
                100_000,
            ),
            (
                "http2_max_streams",
                u64::from(self.http2_max_streams),
                1,
                100_000,
            ),
            (
                "http2_idle_timeout_secs",
                self.http2_idle_timeout_secs,
                0,
                DAY,
            ),
            (
                "jwt_future_tolerance_secs",
                self.jwt_future_tolerance_secs,
                0,
                365 * DAY,
            ),
            ("jwt_max_age_secs", self.jwt_max_age_secs, 1, 365 * DAY),
            (
                "jwt_min_update_secs",
                self.jwt_min_update_secs,
                0,
                365 * DAY,
            ),
        ]
    }

    /// The range error of one setting, if its value is out of range.
    pub fn check_field(&self, field: &str) -> Result<(), SettingError> {
        for (name, value, min, max) in self.ranges() {
            if name == field && !(min..=max).contains(&value) {
                return Err(SettingError::OutOfRange {
                    field: name,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Checks every range, then the settings against each other; run at load and at start.
    pub fn check(&self) -> Result<(), SettingError> {
        for (name, ..) in self.ranges() {
            self.check_field(name)?;
        }
        self.check_combined()
    }

    /// The checks across settings (each setting already in range).
    pub fn check_combined(&self) -> Result<(), SettingError> {
        if self.legacy_max_frame + 5 > self.legacy_read_buffer {
            return Err(SettingError::FrameOverBuffer {
                max_frame: self.legacy_max_frame as u64,
                read_buffer: self.legacy_read_buffer as u64,
            });
        }
        Ok(())
    }
}

/// Where the 20-minute token-update limit is counted (PROTOCOL.md 2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenUpdateScope {
    /// Across every connection of a team, as Apple counts it (the default).
    #[default]
    Team,
    /// Per connection only (apnsim's older behaviour, kept for comparison).
    Connection,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_in_range() {
        Settings::default().check().unwrap();
    }

    #[test]
    fn the_old_error_delay_name_still_sets_the_answer_delay() {
        let s: Settings = toml::from_str("legacy_error_delay_ms = 7").unwrap();
        assert_eq!(s.legacy_answer_delay_ms, 7);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["legacy_answer_delay_ms"], 7);
        assert!(json.get("legacy_error_delay_ms").is_none());
    }

    #[test]
    fn legacy_tls_min_reads_as_the_flag_spells_it() {
        let s: Settings = toml::from_str("legacy_tls_min = \"1.0\"").unwrap();
        assert_eq!(s.legacy_tls_min, LegacyTlsMin::Tls1_0);
        assert_eq!(s.legacy_tls_min.wire(), 0x0301);
        assert_eq!(Settings::default().legacy_tls_min, LegacyTlsMin::Tls1_2);
        assert_eq!("1.1".parse::<LegacyTlsMin>(), Ok(LegacyTlsMin::Tls1_1));
        assert!("1.3".parse::<LegacyTlsMin>().is_err());
        assert!(toml::from_str::<Settings>("legacy_tls_min = \"1.3\"").is_err());
    }

    #[test]
    fn a_4_gib_frame_limit_is_refused() {
        let s = Settings {
            legacy_max_frame: 4_294_967_295,
            ..Settings::default()
        };
        assert!(matches!(
            s.check(),
            Err(SettingError::OutOfRange {
                field: "legacy_max_frame",
                ..
            })
        ));
        let s = Settings {
            legacy_max_frame: 1024 * 1024,
            ..Settings::default()
        };
        assert!(matches!(
            s.check(),
            Err(SettingError::FrameOverBuffer { .. })
        ));
    }
}

/// How a legacy connection is closed after its last bytes (PROTOCOL.md 1.1, 1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseHow {
    /// The last data, a gap (`legacy_close_gap_ms`), then close_notify and FIN: as the bytes and
    /// the close arrived over a real network (the error-response's default).
    Graceful,
    /// The last data and close_notify in one write: what loopback did before, and what makes
    /// clients that drop the data of a read ending in EOF lose the error-response.
    Burst,
    /// TCP FIN with no close_notify (a silent drop's default).
    Fin,
    /// A TCP reset (SO_LINGER 0).
    Reset,
}

impl CloseHow {
    /// Every way, in the order the scenario reference lists them.
    pub const ALL: [CloseHow; 4] = [
        CloseHow::Graceful,
        CloseHow::Burst,
        CloseHow::Fin,
        CloseHow::Reset,
    ];

    /// The scenario spelling (`close = "burst"`).
    pub fn name(self) -> &'static str {
        match self {
            CloseHow::Graceful => "graceful",
            CloseHow::Burst => "burst",
            CloseHow::Fin => "fin",
            CloseHow::Reset => "reset",
        }
    }
}
