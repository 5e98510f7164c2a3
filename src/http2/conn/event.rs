//! The vocabulary of the connection: its configuration, the events it reports, its errors.

use crate::http2::frame::{ErrorCode, PrioritySpec, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW_SIZE};
use crate::http2::hpack::HeaderField;
pub use crate::model::wire::SettingsUpdate;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Limits and advertised settings of one connection: every bound the connection enforces is here.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise first (PROTOCOL.md 2.2: 1000 after auth, 1 before).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise (PROTOCOL.md 2.2: 65535 seen).
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise (PROTOCOL.md 2.2: 16384 seen).
    pub max_frame_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise (PROTOCOL.md 2.2: 4096 seen).
    pub header_table_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce (PROTOCOL.md 2.2: 8000 seen).
    pub max_header_list_size: u32,
    /// Largest request body kept; longer bodies are cut and the request is handed out early.
    pub max_request_body: usize,
    /// Largest compressed header block (HEADERS plus CONTINUATIONs) buffered before giving up.
    pub max_header_block: usize,
    /// Most CONTINUATION frames accepted for one header block (CONTINUATION flood guard).
    pub max_continuation_frames: usize,
    /// Most RST_STREAM frames from the client within `rst_window` (rapid reset guard).
    pub max_rst_per_window: u32,
    /// The window for `max_rst_per_window`.
    pub rst_window: Duration,
    /// Output backlog above which input is no longer processed (a peer that does not read).
    pub max_output_buffer: usize,
    /// Unprocessed input above which the connection is dropped with ENHANCE_YOUR_CALM.
    pub max_input_buffer: usize,
    /// Close with GOAWAY(NO_ERROR) after this long without frames and without open streams.
    pub idle_timeout: Option<Duration>,
    /// Debug data of that idle GOAWAY (APNs: `{"reason":"IdleTimeout"}`, PROTOCOL.md 2.2, 2.7).
    pub idle_debug: Bytes,
    /// Connection error SETTINGS_TIMEOUT when our SETTINGS are not acknowledged in time.
    pub settings_ack_timeout: Option<Duration>,
    /// How many closed streams are remembered to judge late frames on them.
    pub closed_streams_remembered: usize,
    /// Used by the driver: close when output cannot be written for this long.
    pub write_stall_timeout: Option<Duration>,
    /// Report every received frame header as [`Event::FrameReceived`] (for conformance grading).
    pub report_frames: bool,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            max_concurrent_streams: 1000,
            initial_window_size: DEFAULT_WINDOW_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            header_table_size: 4096,
            max_header_list_size: 8000,
            max_request_body: 16 * 1024,
            max_header_block: 64 * 1024,
            max_continuation_frames: 64,
            max_rst_per_window: 200,
            rst_window: Duration::from_secs(10),
            max_output_buffer: 1024 * 1024,
            max_input_buffer: 256 * 1024,
            idle_timeout: None,
            idle_debug: Bytes::new(),
            settings_ack_timeout: Some(Duration::from_secs(30)),
            closed_streams_remembered: 4096,
            write_stall_timeout: Some(Duration::from_secs(30)),
            report_frames: false,
        }
    }
}

/// A complete request: what the APNs layer turns into a notification or an error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The stream to answer on.
    pub stream_id: u32,
    /// Header fields in wire order, with how each was HPACK-encoded (PROTOCOL.md 2.2).
    pub headers: Vec<HeaderField>,
    /// Trailer fields, if any.
    pub trailers: Vec<HeaderField>,
    /// The body (at most `max_request_body` octets).
    pub body: Bytes,
    /// The body was longer than `max_request_body` and was cut (the request came out early).
    pub body_truncated: bool,
    /// When the header block was complete.
    pub received_at: Instant,
}

impl Request {
    /// The first field called `name` (pseudo or regular), for quick lookups.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|f| &f.name[..] == name.as_bytes())
            .map(|f| &f.value[..])
    }

    /// The `:method` pseudo-header.
    pub fn method(&self) -> Option<&[u8]> {
        self.header(":method")
    }

    /// The `:path` pseudo-header.
    pub fn path(&self) -> Option<&[u8]> {
        self.header(":path")
    }
}

/// Something the connection observed that its owner may act on or journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete request to answer with [`Connection::respond`].
    Request(Request),
    /// The client's SETTINGS parameters, in wire order (already applied and acknowledged).
    ClientSettings(Vec<(u16, u32)>),
    /// The client acknowledged our SETTINGS; the values are now in force (RFC 9113 6.5.3).
    SettingsAcked,
    /// PRIORITY information (APNs ignores it, PROTOCOL.md 2.2, but the judge may look).
    Priority {
        /// Stream the priority is for.
        stream_id: u32,
        /// Dependency, weight and exclusive flag.
        spec: PrioritySpec,
    },
    /// A PING from the client (answered automatically unless PINGs are ignored).
    Ping {
        /// ACK flag.
        ack: bool,
        /// Opaque data.
        data: [u8; 8],
    },
    /// The client reset a stream.
    StreamReset {
        /// The stream.
        stream_id: u32,
        /// The client's error code.
        code: ErrorCode,
    },
    /// We reset a stream because of a stream error.
    StreamError {
        /// The stream.
        stream_id: u32,
        /// Code sent in RST_STREAM.
        code: ErrorCode,
        /// Why.
        message: &'static str,
    },
    /// We answered a request ourselves (e.g. 431 for a too large header list).
    RequestRejected {
        /// The stream.
        stream_id: u32,
        /// HTTP status sent.
        status: u16,
    },
    /// The client sent GOAWAY.
    GoAwayReceived {
        /// Last stream the client will process.
        last_stream_id: u32,
        /// Its error code.
        code: ErrorCode,
        /// Its debug data.
        debug: Bytes,
    },
    /// A frame arrived (only with `report_frames`): lets a judge see what the client sent.
    FrameReceived {
        /// Frame type octet.
        kind: u8,
        /// Flags octet.
        flags: u8,
        /// Stream id.
        stream_id: u32,
        /// Payload length.
        length: u32,
    },
    /// We ended the connection with GOAWAY because of a connection error.
    ConnectionError {
        /// Code sent in GOAWAY.
        code: ErrorCode,
        /// Why.
        message: &'static str,
    },
}

/// Why an action on the connection could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The stream is not open (closed, reset, refused or never opened).
    #[error("stream {0} is not open")]
    NoSuchStream(u32),
    /// The stream already has a response.
    #[error("stream {0} already has a response")]
    AlreadyResponded(u32),
    /// The connection is closing or closed.
    #[error("connection is closed")]
    Closed,
}
