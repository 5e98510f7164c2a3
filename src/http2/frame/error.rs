//! The error a malformed frame yields (RFC 9113 5.4); the error codes themselves (RFC 9113 7) are
//! wire vocabulary the engine names too, so they live in `model::wire`.

pub use crate::model::wire::ErrorCode;

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
