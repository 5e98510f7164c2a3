//! HPACK header compression (RFC 7541), written here rather than taken from a crate because the
//! conformance judge must know HOW a client encoded each header field (PROTOCOL.md 2.2: Apple asks
//! for `:path` and `authorization` as literals without indexing, `apns-id` and friends indexed once).

mod decoder;
mod encoder;
mod huffman;
mod table;

pub use decoder::Decoder;
pub use encoder::{Encoded, Encoder};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The SETTINGS_HEADER_TABLE_SIZE every HTTP/2 endpoint starts with (RFC 9113 6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// How a header field was represented on the wire (RFC 7541 6.1-6.2), which is what the
/// conformance judge grades against Apple's advice (PROTOCOL.md 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Representation {
    /// A reference to a static or dynamic table entry (RFC 7541 6.1).
    Indexed,
    /// A literal that was added to the dynamic table (RFC 7541 6.2.1).
    IncrementalIndexing,
    /// A literal that was not added to the dynamic table (RFC 7541 6.2.2).
    WithoutIndexing,
    /// A literal that intermediaries must never index (RFC 7541 6.2.3).
    NeverIndexed,
}

/// One decoded header field plus the encoding facts the journal and the judge report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// Field name as sent (HPACK does not change case; HTTP/2 validation is the caller's job).
    pub name: Bytes,
    /// Field value as sent.
    pub value: Bytes,
    /// How the field was represented.
    pub representation: Representation,
    /// Whether the name came from a table index rather than a literal.
    pub name_indexed: bool,
    /// Whether the value was Huffman coded (false for indexed fields).
    pub huffman: bool,
}

impl HeaderField {
    /// Size of the field as RFC 9113 6.5.2 counts it against SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn size(&self) -> usize {
        table::entry_size(&self.name, &self.value)
    }
}

/// Why a header block could not be decoded; all but `HeaderListTooLarge` are HTTP/2
/// COMPRESSION_ERRORs that end the connection (RFC 9113 4.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// An index of 0 or past the end of the static plus dynamic table (RFC 7541 2.3.3).
    #[error("header table index {0} is out of range")]
    IndexOutOfRange(usize),
    /// A prefixed integer too large to be meaningful (RFC 7541 5.1 leaves the limit to us).
    #[error("HPACK integer overflow")]
    IntegerOverflow,
    /// A string literal longer than what is left of the header block.
    #[error("string literal of {len} bytes but only {available} bytes remain in the block")]
    StringTooLong {
        /// Declared length.
        len: usize,
        /// Bytes left in the block.
        available: usize,
    },
    /// Bad Huffman data: EOS inside, or padding too long or not all ones (RFC 7541 5.2).
    #[error("invalid Huffman-coded string")]
    InvalidHuffman,
    /// A dynamic table size update above the SETTINGS_HEADER_TABLE_SIZE we advertised (RFC 7541 6.3).
    #[error("dynamic table size update to {requested} exceeds the advertised maximum {max}")]
    TableSizeUpdateTooLarge {
        /// Size the peer asked for.
        requested: usize,
        /// Our advertised maximum.
        max: usize,
    },
    /// A dynamic table size update after a header field (RFC 7541 4.2).
    #[error("dynamic table size update not at the start of the header block")]
    TableSizeUpdateNotAtStart,
    /// We lowered our table size below the peer's current one and its next block did not start
    /// with the size update RFC 7541 4.2 requires.
    #[error("dynamic table size update required at the start of the header block")]
    TableSizeUpdateMissing,
    /// The decoded header list exceeds the limit (RFC 9113 6.5.2). The whole block was still
    /// processed, so the dynamic table is in sync and the connection may continue (e.g. with 431).
    #[error("header list of {size} bytes exceeds the limit of {max}")]
    HeaderListTooLarge {
        /// Size of the complete header list (saturating).
        size: usize,
        /// The limit that applied.
        max: usize,
    },
    /// The block ended inside a representation.
    #[error("header block truncated")]
    Truncated,
}

impl HpackError {
    /// Whether the connection must end with COMPRESSION_ERROR (true) or only the stream is
    /// affected because the decoder state is still valid (false).
    pub fn is_connection_error(&self) -> bool {
        !matches!(self, HpackError::HeaderListTooLarge { .. })
    }
}

/// Largest integer we accept; far above any legitimate index, length or table size.
const MAX_INTEGER: u64 = u32::MAX as u64;

/// Reads an integer with an `prefix_bits`-bit prefix (RFC 7541 5.1) starting at `*pos`.
fn decode_integer(block: &[u8], pos: &mut usize, prefix_bits: u8) -> Result<usize, HpackError> {
    let mask: u8 = (1u16 << prefix_bits).wrapping_sub(1) as u8;
    let first = *block.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(value as usize);
    }
    let mut shift: u32 = 0;
    loop {
        let b = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
        value += u64::from(b & 0x7f) << shift;
        if value > MAX_INTEGER {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return usize::try_from(value).map_err(|_| HpackError::IntegerOverflow);
        }
        shift += 7;
    }
}

/// Writes an integer with an `prefix_bits`-bit prefix; `flags` fills the bits above the prefix.
fn encode_integer(value: usize, prefix_bits: u8, flags: u8, dst: &mut Vec<u8>) {
    let mask: usize = (1usize << prefix_bits) - 1;
    if value < mask {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        dst.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

/// Reads a string literal (RFC 7541 5.2); returns the bytes and whether they were Huffman coded.
/// The declared length is checked against the block before anything is allocated.
fn decode_string(block: &[u8], pos: &mut usize) -> Result<(Bytes, bool), HpackError> {
    let (raw, huffman) = string_literal(block, pos)?;
    Ok((decode_literal(raw, huffman)?, huffman))
}

/// Locates a string literal (RFC 7541 5.2) without decoding it: its wire bytes and whether they
/// are Huffman coded.
fn string_literal<'a>(block: &'a [u8], pos: &mut usize) -> Result<(&'a [u8], bool), HpackError> {
    let huffman = block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = decode_integer(block, pos, 7)?;
    let available = block.len().saturating_sub(*pos);
    if len > available {
        return Err(HpackError::StringTooLong { len, available });
    }
    let raw = block.get(*pos..*pos + len).ok_or(HpackError::Truncated)?;
    *pos += len;
    Ok((raw, huffman))
}

/// The value of a string literal's wire bytes.
fn decode_literal(raw: &[u8], huffman: bool) -> Result<Bytes, HpackError> {
    if huffman {
        Ok(Bytes::from(huffman::decode(raw)?))
    } else {
        Ok(Bytes::copy_from_slice(raw))
    }
}

/// Writes a string literal, Huffman coded when that is not longer; returns whether it was.
fn encode_string(s: &[u8], dst: &mut Vec<u8>) -> bool {
    let hlen = huffman::encoded_len(s);
    if hlen <= s.len() {
        encode_integer(hlen, 7, 0x80, dst);
        huffman::encode(s, dst);
        true
    } else {
        encode_integer(s.len(), 7, 0x00, dst);
        dst.extend_from_slice(s);
        false
    }
}

#[cfg(test)]
mod tests;
