//! The HPACK decoder for request header blocks: besides the fields it reports how each one was
//! represented, which the conformance judge grades (PROTOCOL.md 2.2).

use super::table::{self, DynamicTable};
use super::{
    decode_integer, decode_literal, decode_string, string_literal, HeaderField, HpackError,
    Representation,
};
use bytes::Bytes;

/// Decoding state of one connection's request direction; feed it every header block in order.
#[derive(Debug, Clone)]
pub struct Decoder {
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertised: the ceiling for size updates.
    max_table_size: usize,
    /// The last `authorization` literal: wire bytes and value. A provider sends the same JWT,
    /// never indexed (PROTOCOL.md 2.2), on every request for up to an hour, and decoding its
    /// Huffman code again each time was the largest single cost of a token request.
    last_authorization: Option<(Bytes, bool, Bytes)>,
}

impl Decoder {
    /// A decoder for a connection where we advertised `max_table_size` (4096 by default).
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            last_authorization: None,
        }
    }

    /// Applies a new advertised SETTINGS_HEADER_TABLE_SIZE once the peer has acknowledged it. If it
    /// is below the table's current maximum, the peer's next block must start with a size update.
    pub fn set_max_table_size(&mut self, n: usize) {
        self.max_table_size = n;
    }

    /// Current dynamic table size in RFC 7541 4.1 bytes, for diagnostics and tests.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Decodes one complete header block (HEADERS plus CONTINUATIONs). The header list limit
    /// (RFC 9113 6.5.2) is enforced while decoding: once exceeded no more fields are kept, but
    /// the rest of the block is still processed so the dynamic table stays in sync.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_header_list_size: usize,
    ) -> Result<Vec<HeaderField>, HpackError> {
        // An APNs request has about ten fields: room for them at once, not three regrowths.
        let mut fields = Vec::with_capacity(16);
        let mut pos = 0;
        let mut list_size: usize = 0;
        let mut at_start = true;
        while let Some(&first) = block.get(pos) {
            if first & 0xe0 == 0x20 {
                // Dynamic table size update (RFC 7541 6.3).
                if !at_start {
                    return Err(HpackError::TableSizeUpdateNotAtStart);
                }
                let requested = decode_integer(block, &mut pos, 5)?;
                if requested > self.max_table_size {
                    return Err(HpackError::TableSizeUpdateTooLarge {
                        requested,
                        max: self.max_table_size,
                    });
                }
                self.table.set_capacity(requested);
                continue;
            }
            if at_start {
                at_start = false;
                if self.table.capacity() > self.max_table_size {
                    return Err(HpackError::TableSizeUpdateMissing);
                }
            }
            let field = self.decode_field(block, &mut pos, first)?;
            list_size = list_size.saturating_add(field.size());
            if list_size <= max_header_list_size {
                fields.push(field);
            }
        }
        if list_size > max_header_list_size {
            return Err(HpackError::HeaderListTooLarge {
                size: list_size,
                max: max_header_list_size,
            });
        }
        Ok(fields)
    }

    fn decode_field(
        &mut self,
        block: &[u8],
        pos: &mut usize,
        first: u8,
    ) -> Result<HeaderField, HpackError> {
        if first & 0x80 != 0 {
            // Indexed header field (RFC 7541 6.1).
            let index = decode_integer(block, pos, 7)?;
            let (name, value) =
                table::lookup(&self.table, index).ok_or(HpackError::IndexOutOfRange(index))?;
            return Ok(HeaderField {
                name,
                value,
                representation: Representation::Indexed,
                name_indexed: true,
                huffman: false,
            });
        }
        let (representation, prefix_bits) = if first & 0xc0 == 0x40 {
            (Representation::IncrementalIndexing, 6)
        } else if first & 0xf0 == 0x10 {
            (Representation::NeverIndexed, 4)
        } else {
            (Representation::WithoutIndexing, 4)
        };
        let index = decode_integer(block, pos, prefix_bits)?;
        let (name, name_indexed) = if index == 0 {
            (decode_string(block, pos)?.0, false)
        } else {
            let (name, _) =
                table::lookup(&self.table, index).ok_or(HpackError::IndexOutOfRange(index))?;
            (name, true)
        };
        let (raw, huffman) = string_literal(block, pos)?;
        let value = if &name[..] == b"authorization" {
            match &self.last_authorization {
                Some((wire, h, value)) if *h == huffman && wire[..] == *raw => value.clone(),
                _ => {
                    let value = decode_literal(raw, huffman)?;
                    self.last_authorization =
                        Some((Bytes::copy_from_slice(raw), huffman, value.clone()));
                    value
                }
            }
        } else {
            decode_literal(raw, huffman)?
        };
        if representation == Representation::IncrementalIndexing {
            self.table.insert(name.clone(), value.clone());
        }
        Ok(HeaderField {
            name,
            value,
            representation,
            name_indexed,
            huffman,
        })
    }

    #[cfg(test)]
    pub(super) fn table(&self) -> &DynamicTable {
        &self.table
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(super::DEFAULT_TABLE_SIZE)
    }
}
