//! SETTINGS frames (RFC 9113 6.5): parse and encode.

use super::{flag, require_conn, ErrorCode, Frame, FrameError, FrameHeader};
use bytes::{BufMut, BytesMut};

/// Reads a SETTINGS payload: (identifier, value) pairs in wire order, or an empty ACK.
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_conn(h, "SETTINGS on a stream")?;
    let ack = h.flags & flag::ACK != 0;
    if ack && h.length != 0 {
        return Err(FrameError::conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "SETTINGS ACK with a payload",
        ));
    }
    if h.length % 6 != 0 {
        return Err(FrameError::conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "SETTINGS length not a multiple of 6",
        ));
    }
    let params = payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    Ok(Frame::Settings { ack, params })
}

/// Writes a SETTINGS payload to `dst`; returns the flags.
pub(super) fn encode(ack: bool, params: &[(u16, u32)], dst: &mut BytesMut) -> u8 {
    for (id, v) in params {
        dst.put_u16(*id);
        dst.put_u32(*v);
    }
    if ack {
        flag::ACK
    } else {
        0
    }
}
