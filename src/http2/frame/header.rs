//! The fixed 9-byte frame header (RFC 9113 4.1).

use super::{ErrorCode, FrameError, MAX_MAX_FRAME_SIZE};
use bytes::BytesMut;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::IResult;

/// The fixed 9-byte frame header (RFC 9113 4.1): read first, so the payload length is checked before buffering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type octet.
    pub kind: u8,
    /// Flags octet.
    pub flags: u8,
    /// Stream identifier with the reserved bit cleared.
    pub stream_id: u32,
}

fn header_nom(i: &[u8]) -> IResult<&[u8], FrameHeader> {
    let (i, hi) = be_u16(i)?;
    let (i, lo) = be_u8(i)?;
    let (i, kind) = be_u8(i)?;
    let (i, flags) = be_u8(i)?;
    let (i, sid) = be_u32(i)?;
    Ok((
        i,
        FrameHeader {
            length: (u32::from(hi) << 8) | u32::from(lo),
            kind,
            flags,
            stream_id: sid & 0x7fff_ffff,
        },
    ))
}

impl FrameHeader {
    /// Reads the header from the start of `buf`; `None` while fewer than 9 bytes are available.
    pub fn parse(buf: &[u8]) -> Option<FrameHeader> {
        header_nom(buf).ok().map(|(_, h)| h)
    }

    /// Rejects a payload longer than our SETTINGS_MAX_FRAME_SIZE before it is buffered (RFC 9113 4.2).
    ///
    /// Every oversized frame is answered as a connection error: a field-block frame or a stream-0 frame
    /// must be, and for DATA the RFC allows it.
    pub fn check_size(&self, max_frame_size: u32) -> Result<(), FrameError> {
        if self.length > max_frame_size {
            return Err(FrameError::conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "frame larger than SETTINGS_MAX_FRAME_SIZE",
            ));
        }
        Ok(())
    }

    /// Writes the 9-byte header.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(&self.to_array());
    }

    /// The 9-byte header as an array, for filling in a room left before a payload written in place.
    pub fn to_array(&self) -> [u8; 9] {
        let len = self.length.min(MAX_MAX_FRAME_SIZE).to_be_bytes();
        let id = (self.stream_id & 0x7fff_ffff).to_be_bytes();
        [
            len[1], len[2], len[3], self.kind, self.flags, id[0], id[1], id[2], id[3],
        ]
    }
}
