//! PING frames (RFC 9113 6.7): parse and encode.

use super::{flag, require_conn, ErrorCode, Frame, FrameError, FrameHeader};
use bytes::BytesMut;

/// Reads a PING payload (exactly 8 octets).
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_conn(h, "PING on a stream")?;
    let data: [u8; 8] = payload
        .try_into()
        .map_err(|_| FrameError::conn(ErrorCode::FRAME_SIZE_ERROR, "PING length is not 8"))?;
    Ok(Frame::Ping {
        ack: h.flags & flag::ACK != 0,
        data,
    })
}

/// Writes a PING payload to `dst`; returns the flags.
pub(super) fn encode(ack: bool, data: &[u8; 8], dst: &mut BytesMut) -> u8 {
    dst.extend_from_slice(data);
    if ack {
        flag::ACK
    } else {
        0
    }
}
