//! The HPACK encoder for our response header blocks, and for test clients that must produce
//! exact representations to exercise the conformance judge (PROTOCOL.md 2.2).

use super::table::{static_name, DynamicTable, STATIC, STATIC_LEN};
use super::{encode_integer, encode_string, Representation, DEFAULT_TABLE_SIZE};
use bytes::{Bytes, BytesMut};

/// How the encoder actually wrote one field, so tests can compare it with what a decoder reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    /// The representation used (an `Indexed` request without a matching entry becomes
    /// `IncrementalIndexing`).
    pub representation: Representation,
    /// Whether the name was written as a table index.
    pub name_indexed: bool,
    /// Whether the value was Huffman coded.
    pub huffman: bool,
}

/// Encoding state of one connection's response direction; encode every header block in order.
#[derive(Debug, Clone)]
pub struct Encoder {
    table: DynamicTable,
    /// Size updates owed at the start of the next block: (smallest, final) (RFC 7541 4.2).
    pending_update: Option<(usize, usize)>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder using the default 4096-byte table every peer starts with.
    pub fn new() -> Self {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            pending_update: None,
        }
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE. We never use more than 4096 bytes, so only
    /// a smaller value changes our table; the size update goes out at the start of the next block.
    pub fn set_max_table_size(&mut self, n: usize) {
        let target = n.min(DEFAULT_TABLE_SIZE);
        let smallest = match self.pending_update {
            Some((smallest, _)) => smallest.min(target),
            None => target,
        };
        if self.pending_update.is_none() && target == self.table.capacity() {
            return;
        }
        self.pending_update = Some((smallest, target));
    }

    /// Encodes a response header block, choosing representations: a table reference for exact
    /// matches, incremental indexing for values that repeat across responses (`:status`,
    /// `content-type`), otherwise a literal without indexing.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        dst: &mut BytesMut,
    ) {
        // A response block (status, apns-id, maybe content-type) fits: no regrowth.
        let mut out = Vec::with_capacity(64);
        self.write_pending_update(&mut out);
        for (name, value) in fields {
            // One table search per field: an exact match is written here, not searched again.
            if let Some(index) = self.find_exact(name, value) {
                encode_integer(index, 7, 0x80, &mut out);
                continue;
            }
            let rep = if name == b":status" || name == b"content-type" {
                Representation::IncrementalIndexing
            } else {
                Representation::WithoutIndexing
            };
            self.encode_field(name, value, rep, &mut out);
        }
        dst.extend_from_slice(&out);
    }

    /// Encodes a header block with the given representation for each field, so test clients can
    /// follow or break Apple's advice on purpose. `Indexed` without a matching table entry is
    /// written as `IncrementalIndexing` (the only way to make it indexable).
    pub fn encode_with(&mut self, fields: &[(Bytes, Bytes, Representation)], dst: &mut BytesMut) {
        self.encode_reporting(fields, dst);
    }

    /// Like `encode_with`, and tells how each field was actually written.
    pub fn encode_reporting(
        &mut self,
        fields: &[(Bytes, Bytes, Representation)],
        dst: &mut BytesMut,
    ) -> Vec<Encoded> {
        let mut out = Vec::new();
        self.write_pending_update(&mut out);
        let report = fields
            .iter()
            .map(|(name, value, rep)| self.encode_field(name, value, *rep, &mut out))
            .collect();
        dst.extend_from_slice(&out);
        report
    }

    fn write_pending_update(&mut self, out: &mut Vec<u8>) {
        if let Some((smallest, target)) = self.pending_update.take() {
            if smallest < target {
                encode_integer(smallest, 5, 0x20, out);
                self.table.set_capacity(smallest);
            }
            encode_integer(target, 5, 0x20, out);
            self.table.set_capacity(target);
        }
    }

    fn encode_field(
        &mut self,
        name: &[u8],
        value: &[u8],
        rep: Representation,
        out: &mut Vec<u8>,
    ) -> Encoded {
        if rep == Representation::Indexed {
            if let Some(index) = self.find_exact(name, value) {
                encode_integer(index, 7, 0x80, out);
                return Encoded {
                    representation: Representation::Indexed,
                    name_indexed: true,
                    huffman: false,
                };
            }
        }
        let (rep, prefix_bits, flags) = match rep {
            Representation::Indexed | Representation::IncrementalIndexing => {
                (Representation::IncrementalIndexing, 6, 0x40)
            }
            Representation::WithoutIndexing => (Representation::WithoutIndexing, 4, 0x00),
            Representation::NeverIndexed => (Representation::NeverIndexed, 4, 0x10),
        };
        let name_index = self.find_name(name);
        encode_integer(name_index.unwrap_or(0), prefix_bits, flags, out);
        if name_index.is_none() {
            encode_string(name, out);
        }
        let huffman = encode_string(value, out);
        if rep == Representation::IncrementalIndexing {
            self.table
                .insert(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        }
        Encoded {
            representation: rep,
            name_indexed: name_index.is_some(),
            huffman,
        }
    }

    /// Index of an entry equal to (name, value), static table first.
    fn find_exact(&self, name: &[u8], value: &[u8]) -> Option<usize> {
        static_name(name)
            .and_then(|(first, count)| (first..first + count).find(|&i| STATIC[i - 1].1 == value))
            .or_else(|| {
                self.table
                    .iter()
                    .position(|(n, v)| n == name && v == value)
                    .map(|i| i + STATIC_LEN + 1)
            })
    }

    /// Index of an entry with this name, static table first.
    fn find_name(&self, name: &[u8]) -> Option<usize> {
        static_name(name).map(|(first, _)| first).or_else(|| {
            self.table
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| i + STATIC_LEN + 1)
        })
    }

    #[cfg(test)]
    pub(super) fn table(&self) -> &DynamicTable {
        &self.table
    }
}
