//! The SETTINGS values a connection may advertise mid-way (RFC 9113 6.5.2), named by `settings` rules.

use serde::Serialize;

/// New SETTINGS values to advertise on a live connection; `None` keeps the current value (and is
/// not serialised, so a rule's JSON shows only what it sends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SettingsUpdate {
    /// SETTINGS_HEADER_TABLE_SIZE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_table_size: Option<u32>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (PROTOCOL.md 2.2: 1 until a valid JWT, then 1000; 1 after a rejection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE (at most 2^31-1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE (16384..=16777215).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_list_size: Option<u32>,
}

impl SettingsUpdate {
    /// True when no parameter is set (a SETTINGS action with nothing to send).
    pub fn is_empty(&self) -> bool {
        *self == SettingsUpdate::default()
    }
}
