//! DATA frames (RFC 9113 6.1): parse and encode.

use super::{flag, require_stream, strip_padding, write_padded, Frame, FrameError, FrameHeader};
use bytes::{Bytes, BytesMut};

/// Reads a DATA payload, padding stripped.
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(h, "DATA on stream 0")?;
    let (data, pad) = strip_padding(payload, h.flags & flag::PADDED != 0)?;
    Ok(Frame::Data {
        stream_id: h.stream_id,
        end_stream: h.flags & flag::END_STREAM != 0,
        data: Bytes::copy_from_slice(data),
        pad,
    })
}

/// Writes a DATA payload to `dst`; returns the flags.
pub(super) fn encode(end_stream: bool, data: &[u8], pad: Option<u8>, dst: &mut BytesMut) -> u8 {
    let f = if end_stream { flag::END_STREAM } else { 0 };
    f | write_padded(dst, pad, |dst| dst.extend_from_slice(data))
}
