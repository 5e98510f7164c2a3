//! GOAWAY frames (RFC 9113 6.8): parse and encode.

use super::{nom_fail, require_conn, ErrorCode, Frame, FrameError, FrameHeader};
use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::be_u32;

/// Reads a GOAWAY payload: last stream id, error code, debug data.
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_conn(h, "GOAWAY on a stream")?;
    let (rest, last) = be_u32(payload).map_err(nom_fail)?;
    let (rest, code) = be_u32(rest).map_err(nom_fail)?;
    Ok(Frame::GoAway {
        last_stream_id: last & 0x7fff_ffff,
        code: ErrorCode(code),
        debug: Bytes::copy_from_slice(rest),
    })
}

/// Writes a GOAWAY payload to `dst`; returns the flags (none).
pub(super) fn encode(last_stream_id: u32, code: ErrorCode, debug: &[u8], dst: &mut BytesMut) -> u8 {
    dst.put_u32(last_stream_id & 0x7fff_ffff);
    dst.put_u32(code.0);
    dst.extend_from_slice(debug);
    0
}
