//! HTTP/2 frames (RFC 9113 section 4 and 6): nom parsers and encoders, side by side per frame type.
//!
//! Parsing is in two steps so that nothing is allocated before the length is known to be acceptable:
//! [`FrameHeader::parse`] reads the fixed 9-byte header, the caller checks the length against its
//! SETTINGS_MAX_FRAME_SIZE ([`FrameHeader::check_size`]) and waits for the whole payload, then
//! [`Frame::parse`] checks the per-type rules (stream id zero or not, fixed lengths, padding).
//! Rules that need connection state (stream states, settings values) live in the connection.
//!
//! One file per frame type holds its parse and encode side by side (as h2's `src/frame/` does);
//! this module holds what they share: the constants, the [`Frame`] enum and the dispatch on the type octet.

mod continuation;
mod data;
mod error;
mod go_away;
mod header;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod window_update;

pub use error::{ErrorCode, ErrorScope, FrameError};
pub use header::FrameHeader;
pub use priority::PrioritySpec;

use bytes::{BufMut, Bytes, BytesMut};

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

/// Writes a PADDED frame's body: the pad length, what `write` puts, then that many zero octets
/// (RFC 9113 6.1); returns the PADDED flag, or 0 without padding.
fn write_padded(dst: &mut BytesMut, pad: Option<u8>, write: impl FnOnce(&mut BytesMut)) -> u8 {
    if let Some(p) = pad {
        dst.put_u8(p);
    }
    write(dst);
    match pad {
        Some(p) => {
            dst.put_bytes(0, usize::from(p));
            flag::PADDED
        }
        None => 0,
    }
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
        match h.kind {
            kind::DATA => data::parse(h, payload),
            kind::HEADERS => headers::parse(h, payload),
            kind::PRIORITY => priority::parse(h, payload),
            kind::RST_STREAM => rst_stream::parse(h, payload),
            kind::SETTINGS => settings::parse(h, payload),
            kind::PUSH_PROMISE => push_promise::parse(h, payload),
            kind::PING => ping::parse(h, payload),
            kind::GOAWAY => go_away::parse(h, payload),
            kind::WINDOW_UPDATE => window_update::parse(h, payload),
            kind::CONTINUATION => continuation::parse(h, payload),
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
        // The payload is written in place after a room for the header, which is filled in once
        // the length is known: no buffer of its own and no copy (every response is a frame).
        let start = dst.len();
        dst.put_bytes(0, HEADER_LEN);
        let p = &mut *dst;
        let (kind, flags, stream_id) = match self {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                pad,
            } => (
                kind::DATA,
                data::encode(*end_stream, data, *pad, p),
                *stream_id,
            ),
            Frame::Headers {
                stream_id,
                end_stream,
                end_headers,
                priority,
                fragment,
                pad,
            } => {
                let f = headers::encode(
                    *end_stream,
                    *end_headers,
                    priority.as_ref(),
                    fragment,
                    *pad,
                    p,
                );
                (kind::HEADERS, f, *stream_id)
            }
            Frame::Priority { stream_id, spec } => {
                (kind::PRIORITY, priority::encode(spec, p), *stream_id)
            }
            Frame::RstStream { stream_id, code } => {
                (kind::RST_STREAM, rst_stream::encode(*code, p), *stream_id)
            }
            Frame::Settings { ack, params } => {
                (kind::SETTINGS, settings::encode(*ack, params, p), 0)
            }
            Frame::PushPromise {
                stream_id,
                promised_id,
                end_headers,
                fragment,
                pad,
            } => {
                let f = push_promise::encode(*promised_id, *end_headers, fragment, *pad, p);
                (kind::PUSH_PROMISE, f, *stream_id)
            }
            Frame::Ping { ack, data } => (kind::PING, ping::encode(*ack, data, p), 0),
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => (
                kind::GOAWAY,
                go_away::encode(*last_stream_id, *code, debug, p),
                0,
            ),
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => {
                let f = window_update::encode(*increment, p);
                (kind::WINDOW_UPDATE, f, *stream_id)
            }
            Frame::Continuation {
                stream_id,
                end_headers,
                fragment,
            } => {
                let f = continuation::encode(*end_headers, fragment, p);
                (kind::CONTINUATION, f, *stream_id)
            }
            Frame::Unknown {
                kind,
                flags,
                stream_id,
                payload: raw,
            } => {
                p.extend_from_slice(raw);
                (*kind, *flags, *stream_id)
            }
        };
        let header = FrameHeader {
            length: u32::try_from(dst.len() - start - HEADER_LEN).unwrap_or(u32::MAX),
            kind,
            flags,
            stream_id,
        };
        if let Some(room) = dst.get_mut(start..start + HEADER_LEN) {
            room.copy_from_slice(&header.to_array());
        }
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
mod tests;
