//! CONTINUATION frames (RFC 9113 6.10): parse and encode.

use super::{flag, require_stream, Frame, FrameError, FrameHeader};
use bytes::{Bytes, BytesMut};

/// Reads a CONTINUATION payload (a field block fragment).
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(h, "CONTINUATION on stream 0")?;
    Ok(Frame::Continuation {
        stream_id: h.stream_id,
        end_headers: h.flags & flag::END_HEADERS != 0,
        fragment: Bytes::copy_from_slice(payload),
    })
}

/// Writes a CONTINUATION payload to `dst`; returns the flags.
pub(super) fn encode(end_headers: bool, fragment: &[u8], dst: &mut BytesMut) -> u8 {
    dst.extend_from_slice(fragment);
    if end_headers {
        flag::END_HEADERS
    } else {
        0
    }
}
