//! RST_STREAM frames (RFC 9113 6.4): parse and encode.

use super::{nom_fail, require_stream, ErrorCode, Frame, FrameError, FrameHeader};
use bytes::{BufMut, BytesMut};
use nom::number::complete::be_u32;

/// Reads a RST_STREAM payload (exactly 4 octets).
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(h, "RST_STREAM on stream 0")?;
    if h.length != 4 {
        return Err(FrameError::conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "RST_STREAM length is not 4",
        ));
    }
    let (_, code) = be_u32(payload).map_err(nom_fail)?;
    Ok(Frame::RstStream {
        stream_id: h.stream_id,
        code: ErrorCode(code),
    })
}

/// Writes a RST_STREAM payload to `dst`; returns the flags (none).
pub(super) fn encode(code: ErrorCode, dst: &mut BytesMut) -> u8 {
    dst.put_u32(code.0);
    0
}
