//! The legacy codec's size facts that the settings default to (PROTOCOL.md 1.4, 1.5, Part 3):
//! here, below both `settings` and `legacy::frame`, so neither imports the other for them.

use serde::{Deserialize, Serialize};

/// Bytes before an item's data: item id u8 + item length u16 (PROTOCOL.md 1.4).
pub const ITEM_HEADER_LEN: usize = 3;
/// Token length every legacy library sends and apnsim requires by default (PROTOCOL.md 1.5, Part 3).
pub const DEFAULT_TOKEN_LEN: usize = 32;
/// Upper token length of the 2018 documentation, allowed under [`TokenLen::UpTo100`] (PROTOCOL.md 1.5).
pub const MAX_TOKEN_LEN_2018: usize = 100;
/// Largest command-2 frame length that five maximal items can fill; longer frames are refused unread.
pub const DEFAULT_MAX_FRAME: usize = 5 * (ITEM_HEADER_LEN + u16::MAX as usize);

/// Which token lengths count as valid, because the sources disagree (PROTOCOL.md 1.5, Part 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLen {
    /// Exactly 32 bytes, as every legacy library sends (apnsim's default, PROTOCOL.md Part 3).
    #[default]
    Exact32,
    /// 1 to 100 bytes, as the 2018 documentation allows (PROTOCOL.md 1.5).
    UpTo100,
}

impl TokenLen {
    /// Whether a non-empty token of `len` bytes has a valid size (status 5 otherwise).
    pub fn accepts(self, len: usize) -> bool {
        match self {
            TokenLen::Exact32 => len == DEFAULT_TOKEN_LEN,
            TokenLen::UpTo100 => (1..=MAX_TOKEN_LEN_2018).contains(&len),
        }
    }
}
