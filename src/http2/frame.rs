//! HTTP/2 frames (RFC 9113 section 4 and 6): nom parsers and encoders, side by side per frame type.
//!
//! Parsing is in two steps so that nothing is allocated before the length is known to be acceptable:
//! [`FrameHeader::parse`] reads the fixed 9-byte header, the caller checks the length against its
//! SETTINGS_MAX_FRAME_SIZE ([`FrameHeader::check_size`]) and waits for the whole payload, then
//! [`Frame::parse`] checks the per-type rules (stream id zero or not, fixed lengths, padding).
//! Rules that need connection state (stream states, settings values) live in the connection.

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::IResult;

/// Length of the fixed frame header that precedes every payload (RFC 9113 4.1).
pub const HEADER_LEN: usize = 9;
/// Default and smallest allowed SETTINGS_MAX_FRAME_SIZE (RFC 9113 6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// Largest allowed SETTINGS_MAX_FRAME_SIZE (RFC 9113 6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;
/// Largest flow-control window (RFC 9113 6.9.1).
pub const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;
/// Default initial flow-control window (RFC 9113 6.9.2).
pub const DEFAULT_WINDOW_SIZE: u32 = 65_535;
/// The client connection preface every HTTP/2 connection starts with (RFC 9113 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub use crate::model::wire::ErrorCode;

/// Frame type octets (RFC 9113 6), kept as constants so unknown types stay representable.
pub mod kind {
    /// DATA (6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (6.3).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flag bits (RFC 9113 6), shared by the frame types that define them.
pub mod flag {
    /// END_STREAM on DATA and HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS, PUSH_PROMISE and CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED on DATA, HEADERS and PUSH_PROMISE.
    pub const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS.
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameter identifiers (RFC 9113 6.5.2).
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Whether an error ends the whole connection or just one stream (RFC 9113 5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorScope {
    /// Connection error: GOAWAY and close (5.4.1).
    Connection,
    /// Stream error: RST_STREAM on this stream, the connection goes on (5.4.2).
    Stream(u32),
}

/// A frame that breaks RFC 9113, carrying what the connection must answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({scope:?}): {message}")]
pub struct FrameError {
    /// The error code to put in GOAWAY or RST_STREAM.
    pub code: ErrorCode,
    /// Connection or stream error.
    pub scope: ErrorScope,
    /// Human-readable detail for logs and GOAWAY debug data.
    pub message: &'static str,
}

impl FrameError {
    fn conn(code: ErrorCode, message: &'static str) -> Self {
        FrameError {
            code,
            scope: ErrorScope::Connection,
            message,
        }
    }
}

/// The fixed 9-byte frame header (RFC 9113 4.1): read first, so the payload length is checked before buffering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type octet.
    pub kind: u8,
    /// Flags octet.
    pub flags: u8,
    /// Stream identifier with the reserved bit cleared.
    pub stream_id: u32,
}

fn header_nom(i: &[u8]) -> IResult<&[u8], FrameHeader> {
    let (i, hi) = be_u16(i)?;
    let (i, lo) = be_u8(i)?;
    let (i, kind) = be_u8(i)?;
    let (i, flags) = be_u8(i)?;
    let (i, sid) = be_u32(i)?;
    Ok((
        i,
        FrameHeader {
            length: (u32::from(hi) << 8) | u32::from(lo),
            kind,
            flags,
            stream_id: sid & 0x7fff_ffff,
        },
    ))
}

impl FrameHeader {
    /// Reads the header from the start of `buf`; `None` while fewer than 9 bytes are available.
    pub fn parse(buf: &[u8]) -> Option<FrameHeader> {
        header_nom(buf).ok().map(|(_, h)| h)
    }

    /// Rejects a payload longer than our SETTINGS_MAX_FRAME_SIZE before it is buffered (RFC 9113 4.2).
    ///
    /// Every oversized frame is answered as a connection error: a field-block frame or a stream-0 frame
    /// must be, and for DATA the RFC allows it.
    pub fn check_size(&self, max_frame_size: u32) -> Result<(), FrameError> {
        if self.length > max_frame_size {
            return Err(FrameError::conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "frame larger than SETTINGS_MAX_FRAME_SIZE",
            ));
        }
        Ok(())
    }

    /// Writes the 9-byte header.
    pub fn encode(&self, dst: &mut BytesMut) {
        let len = self.length.min(MAX_MAX_FRAME_SIZE);
        dst.put_u8((len >> 16) as u8);
        dst.put_u16((len & 0xffff) as u16);
        dst.put_u8(self.kind);
        dst.put_u8(self.flags);
        dst.put_u32(self.stream_id & 0x7fff_ffff);
    }
}

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

fn priority_nom(i: &[u8]) -> IResult<&[u8], PrioritySpec> {
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
    fn encode(&self, dst: &mut BytesMut) {
        let excl = if self.exclusive { 0x8000_0000 } else { 0 };
        dst.put_u32(excl | (self.dependency & 0x7fff_ffff));
        dst.put_u8(self.weight);
    }
}

/// One HTTP/2 frame, decoded; unknown types are kept so they can be observed and ignored (RFC 9113 5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// DATA (6.1).
    Data {
        /// Stream id (never 0).
        stream_id: u32,
        /// END_STREAM flag.
        end_stream: bool,
        /// Payload without padding.
        data: Bytes,
        /// Pad length when PADDED was set (padding bytes are zero on encode).
        pad: Option<u8>,
    },
    /// HEADERS (6.2).
    Headers {
        /// Stream id (never 0).
        stream_id: u32,
        /// END_STREAM flag.
        end_stream: bool,
        /// END_HEADERS flag.
        end_headers: bool,
        /// Priority fields when the PRIORITY flag was set.
        priority: Option<PrioritySpec>,
        /// Field block fragment.
        fragment: Bytes,
        /// Pad length when PADDED was set.
        pad: Option<u8>,
    },
    /// PRIORITY (6.3).
    Priority {
        /// Stream id (never 0).
        stream_id: u32,
        /// Dependency fields.
        spec: PrioritySpec,
    },
    /// RST_STREAM (6.4).
    RstStream {
        /// Stream id (never 0).
        stream_id: u32,
        /// Error code.
        code: ErrorCode,
    },
    /// SETTINGS (6.5).
    Settings {
        /// ACK flag.
        ack: bool,
        /// (identifier, value) pairs in wire order; unknown identifiers included.
        params: Vec<(u16, u32)>,
    },
    /// PUSH_PROMISE (6.6): only parsed so a client sending one can be told off.
    PushPromise {
        /// Stream id.
        stream_id: u32,
        /// Promised stream id.
        promised_id: u32,
        /// END_HEADERS flag.
        end_headers: bool,
        /// Field block fragment.
        fragment: Bytes,
        /// Pad length when PADDED was set.
        pad: Option<u8>,
    },
    /// PING (6.7).
    Ping {
        /// ACK flag.
        ack: bool,
        /// Opaque data.
        data: [u8; 8],
    },
    /// GOAWAY (6.8).
    GoAway {
        /// Last stream id the sender will process.
        last_stream_id: u32,
        /// Error code.
        code: ErrorCode,
        /// Debug data (APNs puts `{"reason":"..."}` here, PROTOCOL.md 2.2).
        debug: Bytes,
    },
    /// WINDOW_UPDATE (6.9).
    WindowUpdate {
        /// Stream id, 0 for the connection.
        stream_id: u32,
        /// Window increment (1..=2^31-1 once checked by the connection).
        increment: u32,
    },
    /// CONTINUATION (6.10).
    Continuation {
        /// Stream id (never 0).
        stream_id: u32,
        /// END_HEADERS flag.
        end_headers: bool,
        /// Field block fragment.
        fragment: Bytes,
    },
    /// A frame type RFC 9113 does not define: ignored, except inside a field block.
    Unknown {
        /// Type octet.
        kind: u8,
        /// Flags octet.
        flags: u8,
        /// Stream id.
        stream_id: u32,
        /// Raw payload.
        payload: Bytes,
    },
}

/// Splits off the padding of a PADDED frame: returns the content between the pad-length octet and the padding.
fn strip_padding(payload: &[u8], padded: bool) -> Result<(&[u8], Option<u8>), FrameError> {
    if !padded {
        return Ok((payload, None));
    }
    let (&pad, rest) = payload.split_first().ok_or(FrameError::conn(
        ErrorCode::FRAME_SIZE_ERROR,
        "padded frame without a pad length",
    ))?;
    let pad_len = usize::from(pad);
    // RFC 9113 6.1 / 6.2: padding as long as the rest of the payload or longer is a PROTOCOL_ERROR.
    if pad_len >= payload.len() {
        return Err(FrameError::conn(
            ErrorCode::PROTOCOL_ERROR,
            "pad length too large for frame",
        ));
    }
    let end = rest.len() - pad_len;
    Ok((rest.get(..end).unwrap_or_default(), Some(pad)))
}

fn require_stream(h: &FrameHeader, what: &'static str) -> Result<(), FrameError> {
    if h.stream_id == 0 {
        return Err(FrameError::conn(ErrorCode::PROTOCOL_ERROR, what));
    }
    Ok(())
}

fn require_conn(h: &FrameHeader, what: &'static str) -> Result<(), FrameError> {
    if h.stream_id != 0 {
        return Err(FrameError::conn(ErrorCode::PROTOCOL_ERROR, what));
    }
    Ok(())
}

fn nom_fail(_: nom::Err<nom::error::Error<&[u8]>>) -> FrameError {
    FrameError::conn(ErrorCode::FRAME_SIZE_ERROR, "frame payload too short")
}

impl Frame {
    /// Decodes one frame from its header and exactly `header.length` payload bytes.
    pub fn parse(h: &FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
        if payload.len() != h.length as usize {
            return Err(FrameError::conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "payload length differs from header",
            ));
        }
        let padded = h.flags & flag::PADDED != 0;
        match h.kind {
            kind::DATA => {
                require_stream(h, "DATA on stream 0")?;
                let (data, pad) = strip_padding(payload, padded)?;
                Ok(Frame::Data {
                    stream_id: h.stream_id,
                    end_stream: h.flags & flag::END_STREAM != 0,
                    data: Bytes::copy_from_slice(data),
                    pad,
                })
            }
            kind::HEADERS => {
                require_stream(h, "HEADERS on stream 0")?;
                let (mut rest, pad) = strip_padding(payload, padded)?;
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
            kind::PRIORITY => {
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
            kind::RST_STREAM => {
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
            kind::SETTINGS => {
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
            kind::PUSH_PROMISE => {
                require_stream(h, "PUSH_PROMISE on stream 0")?;
                let (rest, pad) = strip_padding(payload, padded)?;
                let (rest, promised) = be_u32(rest).map_err(nom_fail)?;
                Ok(Frame::PushPromise {
                    stream_id: h.stream_id,
                    promised_id: promised & 0x7fff_ffff,
                    end_headers: h.flags & flag::END_HEADERS != 0,
                    fragment: Bytes::copy_from_slice(rest),
                    pad,
                })
            }
            kind::PING => {
                require_conn(h, "PING on a stream")?;
                let data: [u8; 8] = payload.try_into().map_err(|_| {
                    FrameError::conn(ErrorCode::FRAME_SIZE_ERROR, "PING length is not 8")
                })?;
                Ok(Frame::Ping {
                    ack: h.flags & flag::ACK != 0,
                    data,
                })
            }
            kind::GOAWAY => {
                require_conn(h, "GOAWAY on a stream")?;
                let (rest, last) = be_u32(payload).map_err(nom_fail)?;
                let (rest, code) = be_u32(rest).map_err(nom_fail)?;
                Ok(Frame::GoAway {
                    last_stream_id: last & 0x7fff_ffff,
                    code: ErrorCode(code),
                    debug: Bytes::copy_from_slice(rest),
                })
            }
            kind::WINDOW_UPDATE => {
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
            kind::CONTINUATION => {
                require_stream(h, "CONTINUATION on stream 0")?;
                Ok(Frame::Continuation {
                    stream_id: h.stream_id,
                    end_headers: h.flags & flag::END_HEADERS != 0,
                    fragment: Bytes::copy_from_slice(payload),
                })
            }
            k => Ok(Frame::Unknown {
                kind: k,
                flags: h.flags,
                stream_id: h.stream_id,
                payload: Bytes::copy_from_slice(payload),
            }),
        }
    }

    /// The stream the frame belongs to (0 for connection frames).
    pub fn stream_id(&self) -> u32 {
        match self {
            Frame::Data { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::Priority { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::PushPromise { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Continuation { stream_id, .. }
            | Frame::Unknown { stream_id, .. } => *stream_id,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => 0,
        }
    }

    /// Appends the encoded frame (header and payload) to `dst`.
    ///
    /// The caller keeps payloads within the peer's SETTINGS_MAX_FRAME_SIZE; lengths are not split here.
    pub fn encode(&self, dst: &mut BytesMut) {
        let mut payload = BytesMut::new();
        let (kind, flags, stream_id) = match self {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                pad,
            } => {
                let mut f = if *end_stream { flag::END_STREAM } else { 0 };
                if let Some(p) = pad {
                    f |= flag::PADDED;
                    payload.put_u8(*p);
                }
                payload.extend_from_slice(data);
                if let Some(p) = pad {
                    payload.put_bytes(0, usize::from(*p));
                }
                (kind::DATA, f, *stream_id)
            }
            Frame::Headers {
                stream_id,
                end_stream,
                end_headers,
                priority,
                fragment,
                pad,
            } => {
                let mut f = 0;
                if *end_stream {
                    f |= flag::END_STREAM;
                }
                if *end_headers {
                    f |= flag::END_HEADERS;
                }
                if let Some(p) = pad {
                    f |= flag::PADDED;
                    payload.put_u8(*p);
                }
                if let Some(p) = priority {
                    f |= flag::PRIORITY;
                    p.encode(&mut payload);
                }
                payload.extend_from_slice(fragment);
                if let Some(p) = pad {
                    payload.put_bytes(0, usize::from(*p));
                }
                (kind::HEADERS, f, *stream_id)
            }
            Frame::Priority { stream_id, spec } => {
                spec.encode(&mut payload);
                (kind::PRIORITY, 0, *stream_id)
            }
            Frame::RstStream { stream_id, code } => {
                payload.put_u32(code.0);
                (kind::RST_STREAM, 0, *stream_id)
            }
            Frame::Settings { ack, params } => {
                for (id, v) in params {
                    payload.put_u16(*id);
                    payload.put_u32(*v);
                }
                (kind::SETTINGS, if *ack { flag::ACK } else { 0 }, 0)
            }
            Frame::PushPromise {
                stream_id,
                promised_id,
                end_headers,
                fragment,
                pad,
            } => {
                let mut f = if *end_headers { flag::END_HEADERS } else { 0 };
                if let Some(p) = pad {
                    f |= flag::PADDED;
                    payload.put_u8(*p);
                }
                payload.put_u32(*promised_id & 0x7fff_ffff);
                payload.extend_from_slice(fragment);
                if let Some(p) = pad {
                    payload.put_bytes(0, usize::from(*p));
                }
                (kind::PUSH_PROMISE, f, *stream_id)
            }
            Frame::Ping { ack, data } => {
                payload.extend_from_slice(data);
                (kind::PING, if *ack { flag::ACK } else { 0 }, 0)
            }
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => {
                payload.put_u32(*last_stream_id & 0x7fff_ffff);
                payload.put_u32(code.0);
                payload.extend_from_slice(debug);
                (kind::GOAWAY, 0, 0)
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => {
                payload.put_u32(*increment & 0x7fff_ffff);
                (kind::WINDOW_UPDATE, 0, *stream_id)
            }
            Frame::Continuation {
                stream_id,
                end_headers,
                fragment,
            } => {
                payload.extend_from_slice(fragment);
                (
                    kind::CONTINUATION,
                    if *end_headers { flag::END_HEADERS } else { 0 },
                    *stream_id,
                )
            }
            Frame::Unknown {
                kind,
                flags,
                stream_id,
                payload: p,
            } => {
                payload.extend_from_slice(p);
                (*kind, *flags, *stream_id)
            }
        };
        let header = FrameHeader {
            length: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            kind,
            flags,
            stream_id,
        };
        dst.reserve(HEADER_LEN + payload.len());
        header.encode(dst);
        dst.extend_from_slice(&payload);
    }

    /// Convenience: the encoded bytes of this frame.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }
}

/// Decodes one whole frame from the front of `buf`, checking the length before looking at the payload.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some((frame, consumed)))` a complete frame. On a
/// stream-scoped error the caller may skip `HEADER_LEN + length` bytes and go on.
pub fn decode(buf: &[u8], max_frame_size: u32) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(h) = FrameHeader::parse(buf) else {
        return Ok(None);
    };
    h.check_size(max_frame_size)?;
    let total = HEADER_LEN + h.length as usize;
    let Some(payload) = buf.get(HEADER_LEN..total) else {
        return Ok(None);
    };
    Frame::parse(&h, payload).map(|f| Some((f, total)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(f: &Frame) {
        let b = f.to_bytes();
        let (g, n) = decode(&b, MAX_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(n, b.len());
        assert_eq!(&g, f);
    }

    #[test]
    fn known_bytes() {
        let f = Frame::Ping {
            ack: true,
            data: *b"abcdefgh",
        };
        assert_eq!(
            &f.to_bytes()[..],
            b"\x00\x00\x08\x06\x01\x00\x00\x00\x00abcdefgh"
        );
        let g = Frame::GoAway {
            last_stream_id: 7,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: Bytes::from_static(b"{}"),
        };
        assert_eq!(
            &g.to_bytes()[..],
            b"\x00\x00\x0a\x07\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x0b{}"
        );
    }

    #[test]
    fn header_check_before_payload() {
        // A header announcing 2^24-1 bytes is refused as soon as the 9 header bytes are there.
        let buf = [0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1];
        let e = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert_eq!(e.code, ErrorCode::FRAME_SIZE_ERROR);
        assert_eq!(decode(&buf[..8], DEFAULT_MAX_FRAME_SIZE).unwrap(), None);
    }

    #[test]
    fn padding_rules() {
        // PADDED DATA whose pad length equals the payload length (RFC 9113 6.1).
        let buf = [0, 0, 3, 0, flag::PADDED, 0, 0, 0, 1, 3, 0, 0];
        let e = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
        assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
        // One octet less is fine: no data, two octets of padding.
        let buf = [0, 0, 3, 0, flag::PADDED, 0, 0, 0, 1, 2, 0, 0];
        let (f, _) = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert!(matches!(f, Frame::Data { ref data, pad: Some(2), .. } if data.is_empty()));
        // PADDED HEADERS without even the pad-length octet.
        let buf = [0, 0, 0, kind::HEADERS, flag::PADDED, 0, 0, 0, 1];
        assert!(decode(&buf, DEFAULT_MAX_FRAME_SIZE).is_err());
        let buf = [0, 0, 3, 0, flag::PADDED, 0, 0, 0, 1, 1, b'x', 0];
        let (f, _) = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::Data {
                stream_id: 1,
                end_stream: false,
                data: Bytes::from_static(b"x"),
                pad: Some(1)
            }
        );
    }

    #[test]
    fn fixed_lengths_and_stream_zero() {
        let cases: &[(&[u8], ErrorCode, ErrorScope)] = &[
            (
                &[0, 0, 4, kind::PRIORITY, 0, 0, 0, 0, 3, 0, 0, 0, 1],
                ErrorCode::FRAME_SIZE_ERROR,
                ErrorScope::Stream(3),
            ),
            (
                &[0, 0, 3, kind::RST_STREAM, 0, 0, 0, 0, 1, 0, 0, 0],
                ErrorCode::FRAME_SIZE_ERROR,
                ErrorScope::Connection,
            ),
            (
                &[0, 0, 0, kind::SETTINGS, 0, 0, 0, 0, 1],
                ErrorCode::PROTOCOL_ERROR,
                ErrorScope::Connection,
            ),
            (
                &[0, 0, 6, kind::SETTINGS, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
                ErrorCode::FRAME_SIZE_ERROR,
                ErrorScope::Connection,
            ),
            (
                &[0, 0, 0, kind::DATA, 0, 0, 0, 0, 0],
                ErrorCode::PROTOCOL_ERROR,
                ErrorScope::Connection,
            ),
            (
                &[0, 0, 4, kind::PING, 0, 0, 0, 0, 0, 1, 2, 3, 4],
                ErrorCode::FRAME_SIZE_ERROR,
                ErrorScope::Connection,
            ),
        ];
        for (bytes, code, scope) in cases {
            let e = decode(bytes, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
            assert_eq!((e.code, e.scope), (*code, *scope), "{bytes:?}");
        }
    }

    #[test]
    fn reserved_bit_ignored() {
        let buf = [
            0,
            0,
            4,
            kind::WINDOW_UPDATE,
            0,
            0x80,
            0,
            0,
            1,
            0x80,
            0,
            0,
            5,
        ];
        let (f, _) = decode(&buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::WindowUpdate {
                stream_id: 1,
                increment: 5
            }
        );
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    fn arb_prio() -> impl Strategy<Value = PrioritySpec> {
        (any::<bool>(), 0u32..0x8000_0000, any::<u8>()).prop_map(
            |(exclusive, dependency, weight)| PrioritySpec {
                exclusive,
                dependency,
                weight,
            },
        )
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        let sid = 1u32..0x8000_0000;
        prop_oneof![
            (
                sid.clone(),
                any::<bool>(),
                arb_bytes(64),
                any::<Option<u8>>()
            )
                .prop_map(|(stream_id, end_stream, data, pad)| Frame::Data {
                    stream_id,
                    end_stream,
                    data,
                    pad
                }),
            (
                sid.clone(),
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(arb_prio()),
                arb_bytes(64),
                any::<Option<u8>>()
            )
                .prop_map(
                    |(stream_id, end_stream, end_headers, priority, fragment, pad)| {
                        Frame::Headers {
                            stream_id,
                            end_stream,
                            end_headers,
                            priority,
                            fragment,
                            pad,
                        }
                    }
                ),
            (sid.clone(), arb_prio())
                .prop_map(|(stream_id, spec)| Frame::Priority { stream_id, spec }),
            (sid.clone(), any::<u32>()).prop_map(|(stream_id, c)| Frame::RstStream {
                stream_id,
                code: ErrorCode(c)
            }),
            proptest::collection::vec((any::<u16>(), any::<u32>()), 0..8)
                .prop_map(|params| Frame::Settings { ack: false, params }),
            Just(Frame::Settings {
                ack: true,
                params: vec![]
            }),
            (
                sid.clone(),
                0u32..0x8000_0000,
                any::<bool>(),
                arb_bytes(32),
                any::<Option<u8>>()
            )
                .prop_map(|(stream_id, promised_id, end_headers, fragment, pad)| {
                    Frame::PushPromise {
                        stream_id,
                        promised_id,
                        end_headers,
                        fragment,
                        pad,
                    }
                }),
            (any::<bool>(), any::<[u8; 8]>()).prop_map(|(ack, data)| Frame::Ping { ack, data }),
            (0u32..0x8000_0000, any::<u32>(), arb_bytes(32)).prop_map(|(l, c, debug)| {
                Frame::GoAway {
                    last_stream_id: l,
                    code: ErrorCode(c),
                    debug,
                }
            }),
            (0u32..0x8000_0000, 0u32..0x8000_0000).prop_map(|(stream_id, increment)| {
                Frame::WindowUpdate {
                    stream_id,
                    increment,
                }
            }),
            (sid.clone(), any::<bool>(), arb_bytes(64)).prop_map(
                |(stream_id, end_headers, fragment)| Frame::Continuation {
                    stream_id,
                    end_headers,
                    fragment
                }
            ),
            (0x0au8..=0xff, any::<u8>(), 0u32..0x8000_0000, arb_bytes(32)).prop_map(
                |(kind, flags, stream_id, payload)| Frame::Unknown {
                    kind,
                    flags,
                    stream_id,
                    payload
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn encode_parse_roundtrip(f in arb_frame()) {
            roundtrip(&f);
        }

        #[test]
        fn parser_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200), max in 0u32..70_000) {
            let _ = decode(&buf, max);
        }

        #[test]
        fn truncated_frame_needs_more(f in arb_frame(), cut in 0usize..200) {
            let b = f.to_bytes();
            if cut < b.len() {
                prop_assert_eq!(decode(&b[..cut], MAX_MAX_FRAME_SIZE).unwrap(), None);
            }
        }
    }
}
