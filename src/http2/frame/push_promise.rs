//! PUSH_PROMISE frames (RFC 9113 6.6): parsed only so a client sending one can be told off.

use super::{
    flag, nom_fail, require_stream, strip_padding, write_padded, Frame, FrameError, FrameHeader,
};
use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::be_u32;

/// Reads a PUSH_PROMISE payload, padding stripped.
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(h, "PUSH_PROMISE on stream 0")?;
    let (rest, pad) = strip_padding(payload, h.flags & flag::PADDED != 0)?;
    let (rest, promised) = be_u32(rest).map_err(nom_fail)?;
    Ok(Frame::PushPromise {
        stream_id: h.stream_id,
        promised_id: promised & 0x7fff_ffff,
        end_headers: h.flags & flag::END_HEADERS != 0,
        fragment: Bytes::copy_from_slice(rest),
        pad,
    })
}

/// Writes a PUSH_PROMISE payload to `dst`; returns the flags.
pub(super) fn encode(
    promised_id: u32,
    end_headers: bool,
    fragment: &[u8],
    pad: Option<u8>,
    dst: &mut BytesMut,
) -> u8 {
    let f = if end_headers { flag::END_HEADERS } else { 0 };
    f | write_padded(dst, pad, |dst| {
        dst.put_u32(promised_id & 0x7fff_ffff);
        dst.extend_from_slice(fragment);
    })
}
