//! HEADERS frames (RFC 9113 6.2): parse and encode.

use super::priority::priority_nom;
use super::{
    flag, nom_fail, require_stream, strip_padding, write_padded, Frame, FrameError, FrameHeader,
    PrioritySpec,
};
use bytes::{Bytes, BytesMut};

/// Reads a HEADERS payload: padding stripped, the priority fields read when flagged.
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(h, "HEADERS on stream 0")?;
    let (mut rest, pad) = strip_padding(payload, h.flags & flag::PADDED != 0)?;
    let priority = if h.flags & flag::PRIORITY != 0 {
        let (r, p) = priority_nom(rest).map_err(nom_fail)?;
        rest = r;
        Some(p)
    } else {
        None
    };
    Ok(Frame::Headers {
        stream_id: h.stream_id,
        end_stream: h.flags & flag::END_STREAM != 0,
        end_headers: h.flags & flag::END_HEADERS != 0,
        priority,
        fragment: Bytes::copy_from_slice(rest),
        pad,
    })
}

/// Writes a HEADERS payload to `dst`; returns the flags.
pub(super) fn encode(
    end_stream: bool,
    end_headers: bool,
    priority: Option<&PrioritySpec>,
    fragment: &[u8],
    pad: Option<u8>,
    dst: &mut BytesMut,
) -> u8 {
    let mut f = 0;
    if end_stream {
        f |= flag::END_STREAM;
    }
    if end_headers {
        f |= flag::END_HEADERS;
    }
    if priority.is_some() {
        f |= flag::PRIORITY;
    }
    f | write_padded(dst, pad, |dst| {
        if let Some(p) = priority {
            p.encode(dst);
        }
        dst.extend_from_slice(fragment);
    })
}
