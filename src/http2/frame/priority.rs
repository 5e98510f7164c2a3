//! PRIORITY frames (RFC 9113 6.3) and the stream dependency they share with HEADERS (5.3).

use super::{nom_fail, require_stream, ErrorCode, ErrorScope, Frame, FrameError, FrameHeader};
use bytes::{BufMut, BytesMut};
use nom::number::complete::{be_u32, be_u8};
use nom::IResult;

/// A stream dependency as carried by PRIORITY and prioritised HEADERS (RFC 9113 5.3, deprecated but parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrioritySpec {
    /// Exclusive flag.
    pub exclusive: bool,
    /// Stream this one depends on.
    pub dependency: u32,
    /// Weight as sent on the wire (0..=255, meaning 1..=256).
    pub weight: u8,
}

/// Reads the 5-octet dependency fields.
pub(super) fn priority_nom(i: &[u8]) -> IResult<&[u8], PrioritySpec> {
    let (i, dep) = be_u32(i)?;
    let (i, weight) = be_u8(i)?;
    Ok((
        i,
        PrioritySpec {
            exclusive: dep & 0x8000_0000 != 0,
            dependency: dep & 0x7fff_ffff,
            weight,
        },
    ))
}

impl PrioritySpec {
    /// Writes the 5-octet dependency fields.
    pub(super) fn encode(&self, dst: &mut BytesMut) {
        let excl = if self.exclusive { 0x8000_0000 } else { 0 };
        dst.put_u32(excl | (self.dependency & 0x7fff_ffff));
        dst.put_u8(self.weight);
    }
}

/// Reads a PRIORITY payload (exactly 5 octets, else a stream error).
pub(super) fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(h, "PRIORITY on stream 0")?;
    if h.length != 5 {
        // RFC 9113 6.3: a stream error, not a connection error.
        return Err(FrameError {
            code: ErrorCode::FRAME_SIZE_ERROR,
            scope: ErrorScope::Stream(h.stream_id),
            message: "PRIORITY length is not 5",
        });
    }
    let (_, spec) = priority_nom(payload).map_err(nom_fail)?;
    Ok(Frame::Priority {
        stream_id: h.stream_id,
        spec,
    })
}

/// Writes a PRIORITY payload to `dst`; returns the flags (none).
pub(super) fn encode(spec: &PrioritySpec, dst: &mut BytesMut) -> u8 {
    spec.encode(dst);
    0
}
