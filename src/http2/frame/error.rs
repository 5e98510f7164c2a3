//! HTTP/2 error codes and the error a malformed frame yields (RFC 9113 5.4, 7).

use std::fmt;

/// RFC 9113 error code: an open newtype so codes we do not know still round-trip and show in journals.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown, or "no error" in RST_STREAM after a complete response.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// Generic protocol violation.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// Unexpected internal error.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// Flow-control protocol violated.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// SETTINGS not acknowledged in time.
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// Frame received on a half-closed or closed stream.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// Frame with an invalid size.
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// Stream refused before any processing (safe to retry).
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// Stream no longer needed.
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    /// Header compression state can no longer be maintained.
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// CONNECT tunnel failed.
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// The peer behaves in a way that may generate excessive load.
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// Transport security requirements not met.
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// HTTP/1.1 must be used instead.
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The RFC name of a known code, for logs and the journal; `None` for codes RFC 9113 does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "ErrorCode(0x{:x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
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
    /// A connection error (RFC 9113 5.4.1) with this code.
    pub(super) fn conn(code: ErrorCode, message: &'static str) -> Self {
        FrameError {
            code,
            scope: ErrorScope::Connection,
            message,
        }
    }
}
