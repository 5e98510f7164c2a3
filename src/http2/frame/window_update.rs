//! WINDOW_UPDATE frames (RFC 9113 6.9): parse and encode.

use super::{nom_fail, ErrorCode, Frame, FrameError, FrameHeader};
use bytes::{BufMut, BytesMut};
use nom::number::complete::be_u32;

/// Reads a WINDOW_UPDATE payload (exactly 4 octets); a zero increment is the connection's to judge.
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    if h.length != 4 {
        return Err(FrameError::conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "WINDOW_UPDATE length is not 4",
        ));
    }
    let (_, inc) = be_u32(payload).map_err(nom_fail)?;
    Ok(Frame::WindowUpdate {
        stream_id: h.stream_id,
        increment: inc & 0x7fff_ffff,
    })
}

/// Writes a WINDOW_UPDATE payload to `dst`; returns the flags (none).
pub(super) fn encode(increment: u32, dst: &mut BytesMut) -> u8 {
    dst.put_u32(increment & 0x7fff_ffff);
    0
}
