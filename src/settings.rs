//! apnsim's answers to the questions Apple's documents leave open (PROTOCOL.md Part 3), and its
//! limits: each a setting so a test can pick the other side.

use serde::{Deserialize, Serialize};

pub use crate::legacy::frame::TokenLen;

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
    /// Delay before a legacy error-response, in ms (Apple took 200–500 ms: PROTOCOL.md 1.7).
    pub legacy_error_delay_ms: u64,
    /// Largest command-2 frame length accepted before the frame is refused unread.
    pub legacy_max_frame: usize,
    /// Allow TLS 1.3 on the legacy and feedback ports (off: TLS 1.2, as the gateway spoke it).
    pub legacy_tls13: bool,
    /// Close a legacy connection idle (or stuck mid-frame) this long, in seconds (0 = never).
    pub idle_timeout_secs: u64,
    /// Refuse tokens that are not registered (status 8 / BadDeviceToken).
    pub strict_tokens: bool,
    /// Bound on journal events kept.
    pub journal_capacity: usize,
    /// Bound on simultaneously open connections per listener.
    pub max_connections: usize,
    /// Bound on bytes buffered from one legacy connection before it is read further.
    pub legacy_read_buffer: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            legacy_token_length: TokenLen::Exact32,
            legacy_max_payload: 2048,
            legacy_unknown_command: UnknownCommand::ProtocolError,
            legacy_error_delay_ms: 0,
            legacy_max_frame: crate::legacy::frame::DEFAULT_MAX_FRAME,
            legacy_tls13: false,
            idle_timeout_secs: 300,
            strict_tokens: false,
            journal_capacity: crate::journal::DEFAULT_CAPACITY,
            max_connections: 1024,
            legacy_read_buffer: 256 * 1024,
        }
    }
}
