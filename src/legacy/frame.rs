//! Sans-IO codec for the legacy binary protocol: commands 0, 1 and 2, the error-response packet and
//! feedback tuples (PROTOCOL.md Part 1).
//!
//! Decoding is two-pass, as in mini-redis: [`check`] walks the bytes without allocating and reports
//! the length of the first complete frame (or [`FrameError::Incomplete`]); [`parse`] / [`decode`] then
//! build a [`LegacyNotification`] whose token and payload share the input buffer. Structural defects
//! are [`FrameError`]s (always status 128); semantic defects come from the separate [`validate`].

use crate::legacy::status::Status;
use bytes::{BufMut, Bytes, BytesMut};
use nom::multi::length_data;
use nom::number::streaming::{be_u16, be_u32, be_u8};
use nom::IResult;
use serde::{Deserialize, Serialize};
use std::ops::Range;

// The size facts the settings default to live with the wire vocabulary, below both.
pub use crate::model::wire::legacy_limits::{
    TokenLen, DEFAULT_MAX_FRAME, DEFAULT_TOKEN_LEN, ITEM_HEADER_LEN, MAX_TOKEN_LEN_2018,
};

/// Command byte of the simple format, which cannot report errors (PROTOCOL.md 1.2).
pub const CMD_SIMPLE: u8 = 0;
/// Command byte of the enhanced format, which adds identifier and expiry (PROTOCOL.md 1.3).
pub const CMD_ENHANCED: u8 = 1;
/// Command byte of the framed, item-based format (PROTOCOL.md 1.4).
pub const CMD_FRAMED: u8 = 2;
/// Command byte of the 6-byte error-response packet the gateway writes back (PROTOCOL.md 1.6).
pub const CMD_ERROR_RESPONSE: u8 = 8;

/// Item id of the device token inside a command-2 frame (PROTOCOL.md 1.4).
pub const ITEM_TOKEN: u8 = 1;
/// Item id of the JSON payload inside a command-2 frame (PROTOCOL.md 1.4).
pub const ITEM_PAYLOAD: u8 = 2;
/// Item id of the opaque 4-byte notification identifier (PROTOCOL.md 1.4).
pub const ITEM_IDENTIFIER: u8 = 3;
/// Item id of the u32 expiration date (PROTOCOL.md 1.4).
pub const ITEM_EXPIRY: u8 = 4;
/// Item id of the 1-byte priority (PROTOCOL.md 1.4).
pub const ITEM_PRIORITY: u8 = 5;

/// Bytes before a command-2 frame's items: command u8 + frame length u32 (PROTOCOL.md 1.4).
pub const FRAMED_HEADER_LEN: usize = 5;
/// Size of the error-response packet, which is always exactly this long (PROTOCOL.md 1.6).
pub const ERROR_RESPONSE_LEN: usize = 6;
/// Bytes before a feedback tuple's token: timestamp u32 + token length u16 (PROTOCOL.md 1.8).
pub const FEEDBACK_HEADER_LEN: usize = 6;

/// Priority assumed for commands 0/1 and for a command-2 frame without item 5 (PROTOCOL.md 1.2, 1.4).
pub const DEFAULT_PRIORITY: u8 = 10;
/// Payload limit of the iOS 8+ binary interface, apnsim's default (PROTOCOL.md 1.5, Part 3).
pub const DEFAULT_MAX_PAYLOAD: usize = 2048;
/// Payload limit of the pre-iOS 8 era, selectable by setting (PROTOCOL.md 1.5, Part 3).
pub const PRE_IOS8_MAX_PAYLOAD: usize = 256;

/// Which notification format a frame used, because the formats differ in what they can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Command {
    /// Command 0 (PROTOCOL.md 1.2).
    Simple = CMD_SIMPLE,
    /// Command 1 (PROTOCOL.md 1.3).
    Enhanced = CMD_ENHANCED,
    /// Command 2 (PROTOCOL.md 1.4).
    Framed = CMD_FRAMED,
}

impl Command {
    /// The command byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Command::Simple => CMD_SIMPLE,
            Command::Enhanced => CMD_ENHANCED,
            Command::Framed => CMD_FRAMED,
        }
    }

    /// Maps a wire byte to a notification command; `None` for anything else (including 8).
    pub fn from_byte(byte: u8) -> Option<Command> {
        match byte {
            CMD_SIMPLE => Some(Command::Simple),
            CMD_ENHANCED => Some(Command::Enhanced),
            CMD_FRAMED => Some(Command::Framed),
            _ => None,
        }
    }

    /// Whether the gateway may answer this command with an error-response; command 0 is only ever
    /// cut off silently (PROTOCOL.md 1.7).
    pub fn reports_errors(self) -> bool {
        !matches!(self, Command::Simple)
    }
}

/// The knobs that make the codec strict or lenient, so scenarios can pick either side of a disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Valid token sizes (status 5 outside them).
    pub token_len: TokenLen,
    /// Largest payload accepted (status 7 above it).
    pub max_payload: usize,
    /// Largest command-2 frame length (the u32 after the command byte); longer frames are refused
    /// with status 128 before any byte of them is buffered. Commands 0 and 1 are bounded by their
    /// u16 length fields instead.
    pub max_frame: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            token_len: TokenLen::Exact32,
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// One notification as it came off the legacy wire, before the engine turns it into a `Notification`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyNotification {
    /// The format used; decides whether errors may be reported (PROTOCOL.md 1.7).
    pub command: Command,
    /// The 4 raw identifier bytes, never byte-swapped (PROTOCOL.md 1.3); 0 for command 0 or no item 3.
    pub identifier: [u8; 4],
    /// Expiry in UNIX seconds; 0 = do not store (PROTOCOL.md 1.3, 1.4).
    pub expiry: u32,
    /// Raw priority byte; 10 for commands 0/1 and when item 5 is absent (PROTOCOL.md 1.2, 1.4).
    pub priority: u8,
    /// The device token; empty when absent.
    pub token: Bytes,
    /// The payload; empty when absent.
    pub payload: Bytes,
    /// False only when a command-2 frame had no item 1 (status 2); `token` is then empty.
    pub has_token: bool,
    /// False only when a command-2 frame had no item 2 (status 4); `payload` is then empty.
    pub has_payload: bool,
}

impl LegacyNotification {
    /// Builds a command-0 notification, for tests and senders.
    pub fn simple(token: impl Into<Bytes>, payload: impl Into<Bytes>) -> Self {
        LegacyNotification {
            command: Command::Simple,
            identifier: [0; 4],
            expiry: 0,
            priority: DEFAULT_PRIORITY,
            token: token.into(),
            payload: payload.into(),
            has_token: true,
            has_payload: true,
        }
    }

    /// Builds a command-1 notification, for tests and senders.
    pub fn enhanced(
        identifier: [u8; 4],
        expiry: u32,
        token: impl Into<Bytes>,
        payload: impl Into<Bytes>,
    ) -> Self {
        LegacyNotification {
            command: Command::Enhanced,
            identifier,
            expiry,
            priority: DEFAULT_PRIORITY,
            token: token.into(),
            payload: payload.into(),
            has_token: true,
            has_payload: true,
        }
    }

    /// Builds a command-2 notification with both token and payload present, for tests and senders.
    pub fn framed(
        identifier: [u8; 4],
        expiry: u32,
        priority: u8,
        token: impl Into<Bytes>,
        payload: impl Into<Bytes>,
    ) -> Self {
        LegacyNotification {
            command: Command::Framed,
            identifier,
            expiry,
            priority,
            token: token.into(),
            payload: payload.into(),
            has_token: true,
            has_payload: true,
        }
    }

    /// The token as it counts for validation: empty when item 1 was absent.
    pub fn token_bytes(&self) -> &[u8] {
        if self.has_token {
            &self.token
        } else {
            &[]
        }
    }

    /// The payload as it counts for validation: empty when item 2 was absent.
    pub fn payload_bytes(&self) -> &[u8] {
        if self.has_payload {
            &self.payload
        } else {
            &[]
        }
    }

    /// The packet to answer a rejection with; `None` for command 0, which is closed silently (PROTOCOL.md 1.7).
    pub fn error_response(&self, status: Status) -> Option<ErrorResponse> {
        self.command
            .reports_errors()
            .then(|| ErrorResponse::new(status, self.identifier))
    }

    /// Encodes in this notification's own format (fields the format lacks are dropped).
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self.command {
            Command::Simple => encode_simple(self.token_bytes(), self.payload_bytes(), dst),
            Command::Enhanced => encode_enhanced(
                self.identifier,
                self.expiry,
                self.token_bytes(),
                self.payload_bytes(),
                dst,
            ),
            Command::Framed => encode_framed(self, dst),
        }
    }
}

/// What is wrong inside a command-2 frame, kept apart so tests and the journal can tell defects apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ItemDefect {
    /// An item id outside 1..=5.
    #[error("unknown item id {id}")]
    UnknownItem {
        /// The offending item id.
        id: u8,
    },
    /// Item 3, 4 or 5 with a length other than 4, 4 or 1.
    #[error("item {id} has length {length}")]
    BadItemLength {
        /// The offending item id.
        id: u8,
        /// The announced length.
        length: u16,
    },
    /// The same item id twice in one frame (items 1 and 2 are "exactly one", PROTOCOL.md 1.4).
    #[error("item {id} appears twice")]
    DuplicateItem {
        /// The repeated item id.
        id: u8,
    },
    /// An item whose length runs past the end of the frame.
    #[error("item {id} announces {length} bytes but only {remaining} remain in the frame")]
    ItemOverrun {
        /// The offending item id.
        id: u8,
        /// The announced length.
        length: u16,
        /// Bytes left in the frame after the item header.
        remaining: usize,
    },
    /// 1 or 2 bytes left at the end of the frame, too few for an item header.
    #[error("{count} trailing bytes after the last item")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
}

/// Why bytes from a provider are not (yet) a notification; all but `Incomplete` end the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FrameError {
    /// More bytes are needed; not an error to the caller, just a signal to read again.
    #[error("incomplete frame: more bytes needed")]
    Incomplete,
    /// A first byte that is not 0, 1 or 2 (PROTOCOL.md Part 3: status 128, identifier 0).
    #[error("unknown command byte {0}")]
    UnknownCommand(u8),
    /// A command-2 frame length above [`Limits::max_frame`], refused before buffering it.
    #[error("frame length {length} exceeds the limit of {max} bytes")]
    FrameTooLong {
        /// The announced frame length.
        length: u32,
        /// The configured limit.
        max: usize,
    },
    /// A command-2 frame whose items do not parse (PROTOCOL.md Part 3: status 128).
    #[error("malformed frame: {defect}")]
    Malformed {
        /// What is wrong.
        defect: ItemDefect,
        /// The frame's item 3, if it was read before the defect.
        identifier: Option<[u8; 4]>,
    },
}

impl FrameError {
    /// Whether the caller should just read more bytes.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, FrameError::Incomplete)
    }

    /// The command byte of the offending frame where known, so the caller can tell command 0 apart.
    pub fn command(&self) -> Option<u8> {
        match self {
            FrameError::Incomplete => None,
            FrameError::UnknownCommand(c) => Some(*c),
            FrameError::FrameTooLong { .. } | FrameError::Malformed { .. } => Some(CMD_FRAMED),
        }
    }

    /// The packet the gateway answers with before closing; `None` for `Incomplete`. Structural errors
    /// only arise for command 2 and unknown commands, never command 0 (which always parses).
    // PROTOCOL.md Part 3: status 128; identifier of item 3 when already read, else 0.
    pub fn response(&self) -> Option<ErrorResponse> {
        let identifier = match self {
            FrameError::Incomplete => return None,
            FrameError::UnknownCommand(_) | FrameError::FrameTooLong { .. } => [0; 4],
            FrameError::Malformed { identifier, .. } => identifier.unwrap_or([0; 4]),
        };
        Some(ErrorResponse::new(Status::ProtocolError, identifier))
    }
}

/// Why a value could not be written: a length does not fit its wire field. Encoders never panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EncodeError {
    /// The token is longer than a u16 length can say.
    #[error("token of {0} bytes does not fit a u16 length field")]
    TokenTooLong(usize),
    /// The payload is longer than a u16 length can say.
    #[error("payload of {0} bytes does not fit a u16 length field")]
    PayloadTooLong(usize),
    /// A raw item is longer than a u16 length can say.
    #[error("item {id} of {len} bytes does not fit a u16 length field")]
    ItemTooLong {
        /// The item id.
        id: u8,
        /// The data length.
        len: usize,
    },
    /// The items together are longer than a u32 frame length can say.
    #[error("frame of {0} bytes does not fit a u32 length field")]
    FrameTooLong(usize),
}

/// The 6-byte packet the gateway sends before closing (PROTOCOL.md 1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorResponse {
    /// The raw status byte, kept raw so codes Apple never defined still round-trip.
    pub status: u8,
    /// The 4 raw identifier bytes of the rejected notification (PROTOCOL.md 1.3).
    pub identifier: [u8; 4],
}

impl ErrorResponse {
    /// Builds the answer for a known status.
    pub fn new(status: Status, identifier: [u8; 4]) -> Self {
        ErrorResponse {
            status: status.code(),
            identifier,
        }
    }

    /// The status as a known code, `None` for bytes Apple never defined.
    pub fn known_status(&self) -> Option<Status> {
        Status::from_code(self.status)
    }

    /// The wire form: `0x08 | status | identifier` (PROTOCOL.md 1.6).
    pub fn encode(&self) -> [u8; ERROR_RESPONSE_LEN] {
        let [a, b, c, d] = self.identifier;
        [CMD_ERROR_RESPONSE, self.status, a, b, c, d]
    }

    /// Reads a packet as clients do; `None` unless exactly 6 bytes starting with command 8.
    pub fn parse(bytes: &[u8]) -> Option<ErrorResponse> {
        match *bytes {
            [CMD_ERROR_RESPONSE, status, a, b, c, d] => Some(ErrorResponse {
                status,
                identifier: [a, b, c, d],
            }),
            _ => None,
        }
    }
}

/// One entry of the feedback service: when APNs decided the app was gone from a device (PROTOCOL.md 1.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedbackTuple {
    /// Epoch seconds of the decision.
    pub timestamp: u32,
    /// The device token.
    pub token: Bytes,
}

impl FeedbackTuple {
    /// Writes `timestamp u32 | token length u16 | token` (PROTOCOL.md 1.8).
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let len = u16::try_from(self.token.len())
            .map_err(|_| EncodeError::TokenTooLong(self.token.len()))?;
        dst.reserve(FEEDBACK_HEADER_LEN + self.token.len());
        dst.put_u32(self.timestamp);
        dst.put_u16(len);
        dst.put_slice(&self.token);
        Ok(())
    }
}

/// One raw command-2 item, so tests and provider authors can build any frame, malformed ones included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// Item 1.
    Token(Bytes),
    /// Item 2.
    Payload(Bytes),
    /// Item 3.
    Identifier([u8; 4]),
    /// Item 4.
    Expiry(u32),
    /// Item 5.
    Priority(u8),
    /// Any id with any data, for unknown ids and wrong lengths.
    Raw {
        /// The item id byte.
        id: u8,
        /// The item data.
        data: Bytes,
    },
}

impl Item {
    /// The item id byte.
    pub fn id(&self) -> u8 {
        match self {
            Item::Token(_) => ITEM_TOKEN,
            Item::Payload(_) => ITEM_PAYLOAD,
            Item::Identifier(_) => ITEM_IDENTIFIER,
            Item::Expiry(_) => ITEM_EXPIRY,
            Item::Priority(_) => ITEM_PRIORITY,
            Item::Raw { id, .. } => *id,
        }
    }

    fn data_len(&self) -> usize {
        match self {
            Item::Token(b) | Item::Payload(b) | Item::Raw { data: b, .. } => b.len(),
            Item::Identifier(_) | Item::Expiry(_) => 4,
            Item::Priority(_) => 1,
        }
    }

    fn checked_len(&self) -> Result<u16, EncodeError> {
        let len = self.data_len();
        u16::try_from(len).map_err(|_| match self {
            Item::Token(_) => EncodeError::TokenTooLong(len),
            Item::Payload(_) => EncodeError::PayloadTooLong(len),
            _ => EncodeError::ItemTooLong { id: self.id(), len },
        })
    }

    fn put(&self, len: u16, dst: &mut BytesMut) {
        dst.put_u8(self.id());
        dst.put_u16(len);
        match self {
            Item::Token(b) | Item::Payload(b) | Item::Raw { data: b, .. } => dst.put_slice(b),
            Item::Identifier(id) => dst.put_slice(id),
            Item::Expiry(e) => dst.put_u32(*e),
            Item::Priority(p) => dst.put_u8(*p),
        }
    }
}

/// Writes a command-0 frame (PROTOCOL.md 1.2); refuses fields over 65535 bytes, leaving `dst` untouched.
pub fn encode_simple(token: &[u8], payload: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
    let (tl, pl) = classic_lens(token, payload)?;
    dst.reserve(5 + token.len() + payload.len());
    dst.put_u8(CMD_SIMPLE);
    dst.put_u16(tl);
    dst.put_slice(token);
    dst.put_u16(pl);
    dst.put_slice(payload);
    Ok(())
}

/// Writes a command-1 frame (PROTOCOL.md 1.3), identifier bytes verbatim; refuses fields over 65535 bytes.
pub fn encode_enhanced(
    identifier: [u8; 4],
    expiry: u32,
    token: &[u8],
    payload: &[u8],
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (tl, pl) = classic_lens(token, payload)?;
    dst.reserve(13 + token.len() + payload.len());
    dst.put_u8(CMD_ENHANCED);
    dst.put_slice(&identifier);
    dst.put_u32(expiry);
    dst.put_u16(tl);
    dst.put_slice(token);
    dst.put_u16(pl);
    dst.put_slice(payload);
    Ok(())
}

fn classic_lens(token: &[u8], payload: &[u8]) -> Result<(u16, u16), EncodeError> {
    let tl = u16::try_from(token.len()).map_err(|_| EncodeError::TokenTooLong(token.len()))?;
    let pl =
        u16::try_from(payload.len()).map_err(|_| EncodeError::PayloadTooLong(payload.len()))?;
    Ok((tl, pl))
}

/// Writes a command-2 frame the way node-apn does: items 1, 2, 3, then 4 only if expiry ≠ 0 and 5
/// only if priority ≠ 10 (PROTOCOL.md 1.4). Items 1/2 are left out when `has_token`/`has_payload`
/// is false. Ignores `n.command`.
pub fn encode_framed(n: &LegacyNotification, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let mut items = Vec::with_capacity(5);
    if n.has_token {
        items.push(Item::Token(n.token.clone()));
    }
    if n.has_payload {
        items.push(Item::Payload(n.payload.clone()));
    }
    items.push(Item::Identifier(n.identifier));
    if n.expiry != 0 {
        items.push(Item::Expiry(n.expiry));
    }
    if n.priority != DEFAULT_PRIORITY {
        items.push(Item::Priority(n.priority));
    }
    encode_items(&items, dst)
}

/// Writes a command-2 frame holding exactly `items` in order, valid or not; `dst` is untouched on error.
/// It does not apply [`Limits::max_frame`], so tests can build oversized frames.
pub fn encode_items(items: &[Item], dst: &mut BytesMut) -> Result<(), EncodeError> {
    let mut lens = Vec::with_capacity(items.len());
    let mut total: usize = 0;
    for item in items {
        let len = item.checked_len()?;
        lens.push(len);
        total = total
            .checked_add(ITEM_HEADER_LEN + usize::from(len))
            .ok_or(EncodeError::FrameTooLong(usize::MAX))?;
    }
    let frame_len = u32::try_from(total).map_err(|_| EncodeError::FrameTooLong(total))?;
    dst.reserve(FRAMED_HEADER_LEN.saturating_add(total));
    dst.put_u8(CMD_FRAMED);
    dst.put_u32(frame_len);
    for (item, len) in items.iter().zip(lens) {
        item.put(len, dst);
    }
    Ok(())
}

/// Where the fields of one complete frame sit in the buffer; computed without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    len: usize,
    command: Command,
    identifier: [u8; 4],
    expiry: u32,
    priority: u8,
    token: Option<Range<usize>>,
    payload: Option<Range<usize>>,
}

/// Streaming nom parsers only fail with `Incomplete` on byte input; anything else is treated alike.
fn incomplete<E>(_: nom::Err<E>) -> FrameError {
    FrameError::Incomplete
}

/// The byte range of `piece`, which nom just took from `buf` leaving `rest` behind.
fn span(buf: &[u8], rest: &[u8], piece: &[u8]) -> Range<usize> {
    let end = buf.len().saturating_sub(rest.len());
    end.saturating_sub(piece.len())..end
}

/// Like [`span`] for a piece of a command-2 frame body, shifted past the frame header.
fn body_span(data: &[u8], rest: &[u8], piece: &[u8]) -> Range<usize> {
    let r = span(data, rest, piece);
    r.start.saturating_add(FRAMED_HEADER_LEN)..r.end.saturating_add(FRAMED_HEADER_LEN)
}

fn u16_data(input: &[u8]) -> IResult<&[u8], &[u8]> {
    length_data(be_u16)(input)
}

fn scan(buf: &[u8], limits: &Limits) -> Result<Layout, FrameError> {
    let (rest, command) = be_u8::<_, ()>(buf).map_err(incomplete)?;
    match command {
        CMD_SIMPLE => scan_classic(buf, rest, Command::Simple),
        CMD_ENHANCED => scan_classic(buf, rest, Command::Enhanced),
        CMD_FRAMED => scan_framed(rest, limits),
        // PROTOCOL.md Part 3: unknown command byte → status 128, identifier 0.
        other => Err(FrameError::UnknownCommand(other)),
    }
}

// PROTOCOL.md 1.2 and 1.3: [identifier u32, expiry u32,] token length u16, token, payload length u16, payload.
fn scan_classic(buf: &[u8], input: &[u8], command: Command) -> Result<Layout, FrameError> {
    let (input, identifier, expiry) = if command == Command::Enhanced {
        let (i, id) = be_u32::<_, ()>(input).map_err(incomplete)?;
        let (i, expiry) = be_u32::<_, ()>(i).map_err(incomplete)?;
        // PROTOCOL.md 1.3: opaque; to_be_bytes restores the exact wire bytes.
        (i, id.to_be_bytes(), expiry)
    } else {
        (input, [0; 4], 0)
    };
    let (after_token, token) = u16_data(input).map_err(incomplete)?;
    let (rest, payload) = u16_data(after_token).map_err(incomplete)?;
    Ok(Layout {
        len: buf.len().saturating_sub(rest.len()),
        command,
        identifier,
        expiry,
        // PROTOCOL.md 1.2: commands 0 and 1 imply priority 10.
        priority: DEFAULT_PRIORITY,
        token: Some(span(buf, after_token, token)),
        payload: Some(span(buf, rest, payload)),
    })
}

// PROTOCOL.md 1.4: 0x02 | frame length u32 | items.
fn scan_framed(input: &[u8], limits: &Limits) -> Result<Layout, FrameError> {
    let (input, length) = be_u32::<_, ()>(input).map_err(incomplete)?;
    let too_long = FrameError::FrameTooLong {
        length,
        max: limits.max_frame,
    };
    // Bounded allocations: refuse before waiting for (and buffering) the frame body.
    let frame_len = usize::try_from(length).map_err(|_| too_long)?;
    if frame_len > limits.max_frame {
        return Err(too_long);
    }
    let data = input.get(..frame_len).ok_or(FrameError::Incomplete)?;
    let total = FRAMED_HEADER_LEN.checked_add(frame_len).ok_or(too_long)?;
    let mut layout = Layout {
        len: total,
        command: Command::Framed,
        // PROTOCOL.md 1.4 [inferred]: defaults for missing items.
        identifier: [0; 4],
        expiry: 0,
        priority: DEFAULT_PRIORITY,
        token: None,
        payload: None,
    };
    scan_items(data, &mut layout)?;
    Ok(layout)
}

/// Walks the items of `data`, the frame body that starts right after the 5-byte header.
fn scan_items(data: &[u8], layout: &mut Layout) -> Result<(), FrameError> {
    use nom::number::complete::{be_u16 as c_u16, be_u8 as c_u8};
    let mut input = data;
    let mut seen: u8 = 0;
    let mut identifier: Option<[u8; 4]> = None;
    while !input.is_empty() {
        // PROTOCOL.md Part 3: malformed items → 128 with item 3's identifier if already read.
        let malformed = |defect| FrameError::Malformed { defect, identifier };
        let count = input.len();
        let Ok((i, id)) = c_u8::<_, ()>(input) else {
            return Err(malformed(ItemDefect::TrailingBytes { count }));
        };
        let Ok((i, length)) = c_u16::<_, ()>(i) else {
            return Err(malformed(ItemDefect::TrailingBytes { count }));
        };
        let expected_len = match id {
            ITEM_TOKEN | ITEM_PAYLOAD => None,
            ITEM_IDENTIFIER | ITEM_EXPIRY => Some(4),
            ITEM_PRIORITY => Some(1),
            _ => return Err(malformed(ItemDefect::UnknownItem { id })),
        };
        let bit = 1u8 << id; // id is 1..=5 here
        if seen & bit != 0 {
            return Err(malformed(ItemDefect::DuplicateItem { id }));
        }
        if expected_len.is_some_and(|e| e != length) {
            return Err(malformed(ItemDefect::BadItemLength { id, length }));
        }
        let Some(item) = i.get(..usize::from(length)) else {
            return Err(malformed(ItemDefect::ItemOverrun {
                id,
                length,
                remaining: i.len(),
            }));
        };
        let rest = i.get(usize::from(length)..).unwrap_or_default();
        seen |= bit;
        match *item {
            [a, b, c, d] if id == ITEM_IDENTIFIER => {
                identifier = Some([a, b, c, d]);
                layout.identifier = [a, b, c, d];
            }
            [a, b, c, d] if id == ITEM_EXPIRY => layout.expiry = u32::from_be_bytes([a, b, c, d]),
            [p] if id == ITEM_PRIORITY => layout.priority = p,
            _ if id == ITEM_TOKEN => layout.token = Some(body_span(data, rest, item)),
            _ => layout.payload = Some(body_span(data, rest, item)),
        }
        input = rest;
    }
    Ok(())
}

fn slice(frame: &Bytes, range: &Range<usize>) -> Bytes {
    if range.start <= range.end && range.end <= frame.len() {
        frame.slice(range.clone())
    } else {
        Bytes::new()
    }
}

fn build(frame: &Bytes, layout: &Layout) -> LegacyNotification {
    LegacyNotification {
        command: layout.command,
        identifier: layout.identifier,
        expiry: layout.expiry,
        priority: layout.priority,
        token: layout
            .token
            .as_ref()
            .map_or_else(Bytes::new, |r| slice(frame, r)),
        payload: layout
            .payload
            .as_ref()
            .map_or_else(Bytes::new, |r| slice(frame, r)),
        has_token: layout.token.is_some(),
        has_payload: layout.payload.is_some(),
    }
}

/// First pass: the length of the complete frame at the start of `buf`, or why there is none yet.
/// Detects every structural error without allocating; `Incomplete` means read more.
pub fn check(buf: &[u8], limits: &Limits) -> Result<usize, FrameError> {
    scan(buf, limits).map(|l| l.len)
}

/// Second pass: the notification at the start of `buf` (bytes after it are ignored; [`check`] gives
/// its length). Token and payload share `buf`'s storage.
pub fn parse(buf: &Bytes, limits: &Limits) -> Result<LegacyNotification, FrameError> {
    let layout = scan(buf, limits)?;
    Ok(build(buf, &layout))
}

/// Sans-IO entry point: takes exactly one complete frame off the front of `buf`. `Ok(None)` when more
/// bytes are needed; on `Err` the connection is done, and `buf` is left untouched in both cases.
pub fn decode(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<LegacyNotification>, FrameError> {
    let layout = match scan(buf, limits) {
        Ok(layout) => layout,
        Err(FrameError::Incomplete) => return Ok(None),
        Err(e) => return Err(e),
    };
    if layout.len > buf.len() {
        return Ok(None); // unreachable by construction; keeps split_to panic-free
    }
    let frame = buf.split_to(layout.len).freeze();
    Ok(Some(build(&frame, &layout)))
}

/// A complete frame seen in place: token and payload borrow the buffer it was scanned in.
/// What [`peek`] returns, so a server can validate, decide and copy a frame straight into its
/// own storage without a reference-counted view of the read buffer per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// Bytes the frame occupies at the start of the buffer (what to skip past it).
    pub len: usize,
    /// See [`LegacyNotification::command`].
    pub command: Command,
    /// See [`LegacyNotification::identifier`].
    pub identifier: [u8; 4],
    /// See [`LegacyNotification::expiry`].
    pub expiry: u32,
    /// See [`LegacyNotification::priority`].
    pub priority: u8,
    /// The device token; `None` only when a command-2 frame had no item 1.
    pub token: Option<&'a [u8]>,
    /// The payload; `None` only when a command-2 frame had no item 2.
    pub payload: Option<&'a [u8]>,
}

impl<'a> FrameRef<'a> {
    /// The token as it counts for validation: empty when item 1 was absent.
    pub fn token_bytes(&self) -> &'a [u8] {
        self.token.unwrap_or_default()
    }

    /// The payload as it counts for validation: empty when item 2 was absent.
    pub fn payload_bytes(&self) -> &'a [u8] {
        self.payload.unwrap_or_default()
    }

    /// The same checks, in the same order, as [`validate`].
    pub fn validate(&self, limits: &Limits) -> Result<(), Status> {
        validate_parts(self.token_bytes(), self.payload_bytes(), limits)
    }

    /// An owned copy, equal to what [`decode`] returns for the same bytes.
    pub fn to_notification(&self) -> LegacyNotification {
        LegacyNotification {
            command: self.command,
            identifier: self.identifier,
            expiry: self.expiry,
            priority: self.priority,
            token: Bytes::copy_from_slice(self.token_bytes()),
            payload: Bytes::copy_from_slice(self.payload_bytes()),
            has_token: self.token.is_some(),
            has_payload: self.payload.is_some(),
        }
    }
}

/// Sans-IO, borrowing: the complete frame at the start of `buf` without taking it off. `Ok(None)`
/// when more bytes are needed; errors are exactly [`decode`]'s. The caller advances past
/// [`FrameRef::len`] bytes once done with the frame.
pub fn peek<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<FrameRef<'a>>, FrameError> {
    let layout = match scan(buf, limits) {
        Ok(layout) => layout,
        Err(FrameError::Incomplete) => return Ok(None),
        Err(e) => return Err(e),
    };
    let part = |r: Option<Range<usize>>| r.map(|r| buf.get(r).unwrap_or_default());
    Ok(Some(FrameRef {
        len: layout.len,
        command: layout.command,
        identifier: layout.identifier,
        expiry: layout.expiry,
        priority: layout.priority,
        token: part(layout.token),
        payload: part(layout.payload),
    }))
}

/// Reads one feedback tuple off the front of `buf` (PROTOCOL.md 1.8), for clients and tests;
/// `Ok(None)` when incomplete. Every complete tuple is valid, so no error is currently produced.
pub fn decode_feedback(buf: &mut BytesMut) -> Result<Option<FeedbackTuple>, FrameError> {
    let parsed = be_u32::<_, ()>(&buf[..]).and_then(|(i, ts)| {
        let (rest, token) = length_data(be_u16::<_, ()>)(i)?;
        Ok((ts, token.len(), buf.len().saturating_sub(rest.len())))
    });
    let (timestamp, token_len, total) = match parsed {
        Ok(v) => v,
        Err(_) => return Ok(None), // streaming parsers on bytes only fail with Incomplete
    };
    if total > buf.len() || token_len > total {
        return Ok(None); // unreachable by construction; keeps split_to panic-free
    }
    let tuple = buf.split_to(total).freeze();
    let token = tuple.slice(total - token_len..);
    Ok(Some(FeedbackTuple { timestamp, token }))
}

/// Semantic checks on a structurally sound notification, in a fixed order: token before payload
/// (missing token 2, token size 5, missing payload 4, payload size 7). Apple documents no order;
/// checking the token first matches the item order on the wire. [inferred]
// PROTOCOL.md 1.6 and Part 3 for the status mapping.
pub fn validate(n: &LegacyNotification, limits: &Limits) -> Result<(), Status> {
    validate_parts(n.token_bytes(), n.payload_bytes(), limits)
}

/// [`validate`] on the parts, shared with [`FrameRef::validate`] so both paths judge alike.
fn validate_parts(token: &[u8], payload: &[u8], limits: &Limits) -> Result<(), Status> {
    if token.is_empty() {
        return Err(Status::MissingDeviceToken);
    }
    if !limits.token_len.accepts(token.len()) {
        return Err(Status::InvalidTokenSize);
    }
    if payload.is_empty() {
        return Err(Status::MissingPayload);
    }
    if payload.len() > limits.max_payload {
        return Err(Status::InvalidPayloadSize);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: [u8; 32] = [0xAB; 32];
    const PAYLOAD: &[u8] = br#"{"aps":{"alert":"hi"}}"#;

    fn lim() -> Limits {
        Limits::default()
    }

    fn frame_of(items: &[Item]) -> BytesMut {
        let mut b = BytesMut::new();
        encode_items(items, &mut b).expect("encode items");
        b
    }

    fn good_items() -> Vec<Item> {
        vec![
            Item::Token(Bytes::from_static(&TOKEN)),
            Item::Payload(Bytes::from_static(PAYLOAD)),
            Item::Identifier([1, 2, 3, 4]),
        ]
    }

    fn decode_err(mut b: BytesMut) -> FrameError {
        let before = b.clone();
        let e = decode(&mut b, &lim()).expect_err("should fail");
        assert_eq!(b, before, "buffer must be untouched on error");
        assert_eq!(check(&before, &lim()), Err(e));
        e
    }

    #[test]
    fn simple_round_trip_and_wire_bytes() {
        let mut b = BytesMut::new();
        encode_simple(&[9, 8], b"{}", &mut b).unwrap();
        assert_eq!(&b[..], &[0, 0, 2, 9, 8, 0, 2, b'{', b'}']);
        assert_eq!(check(&b, &lim()), Ok(9));
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert!(b.is_empty());
        assert_eq!(n, LegacyNotification::simple(vec![9, 8], &b"{}"[..]));
        assert_eq!(n.priority, 10); // PROTOCOL.md 1.2
        assert_eq!(n.identifier, [0; 4]);
        assert_eq!(n.error_response(Status::InvalidToken), None); // PROTOCOL.md 1.7
    }

    #[test]
    fn enhanced_keeps_identifier_bytes_verbatim() {
        let mut b = BytesMut::new();
        encode_enhanced(
            [0x78, 0x56, 0x34, 0x12],
            0x0102_0304,
            &TOKEN,
            PAYLOAD,
            &mut b,
        )
        .unwrap();
        assert_eq!(&b[..9], &[1, 0x78, 0x56, 0x34, 0x12, 1, 2, 3, 4]);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert_eq!(n.command, Command::Enhanced);
        assert_eq!(n.identifier, [0x78, 0x56, 0x34, 0x12]);
        assert_eq!(n.expiry, 0x0102_0304);
        assert_eq!(n.priority, 10);
        let r = n.error_response(Status::InvalidToken).unwrap();
        assert_eq!(r.encode(), [8, 8, 0x78, 0x56, 0x34, 0x12]);
    }

    #[test]
    fn framed_writes_node_apn_order_and_omits_defaults() {
        let n = LegacyNotification::framed([0, 0, 0, 7], 0, 10, vec![0xAA; 2], &b"{}"[..]);
        let mut b = BytesMut::new();
        encode_framed(&n, &mut b).unwrap();
        let expected: &[u8] = &[
            2, 0, 0, 0, 17, // header: 3 items = (3+2)+(3+2)+(3+4)
            1, 0, 2, 0xAA, 0xAA, //
            2, 0, 2, b'{', b'}', //
            3, 0, 4, 0, 0, 0, 7,
        ];
        assert_eq!(&b[..], expected);
        let n2 = LegacyNotification::framed([9, 9, 9, 9], 5, 5, vec![1], &b"x"[..]);
        let mut b2 = BytesMut::new();
        encode_framed(&n2, &mut b2).unwrap();
        let ids: Vec<u8> = vec![b2[5], b2[9], b2[13], b2[20], b2[27]];
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        assert_eq!(decode(&mut b2, &lim()).unwrap().unwrap(), n2);
    }

    #[test]
    fn framed_defaults_for_missing_items() {
        // PROTOCOL.md 1.4 [inferred]: identifier 0, expiry 0, priority 10.
        let mut b = frame_of(&[
            Item::Payload(Bytes::from_static(PAYLOAD)),
            Item::Token(Bytes::from_static(&TOKEN)),
        ]);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert_eq!(n.identifier, [0; 4]);
        assert_eq!(n.expiry, 0);
        assert_eq!(n.priority, 10);
        assert_eq!(n.token_bytes(), &TOKEN);
        assert_eq!(n.payload_bytes(), PAYLOAD);
        assert_eq!(validate(&n, &lim()), Ok(()));
    }

    #[test]
    fn framed_absent_items_are_distinguishable() {
        let mut b = frame_of(&[Item::Payload(Bytes::from_static(PAYLOAD))]);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert!(!n.has_token && n.token.is_empty() && n.has_payload);
        assert_eq!(validate(&n, &lim()), Err(Status::MissingDeviceToken));

        let mut b = frame_of(&[Item::Token(Bytes::from_static(&TOKEN))]);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert!(n.has_token && !n.has_payload && n.payload.is_empty());
        assert_eq!(validate(&n, &lim()), Err(Status::MissingPayload));

        // present but empty items are distinguishable from absent ones, and give the same statuses
        let mut b = frame_of(&[Item::Token(Bytes::new()), Item::Payload(Bytes::new())]);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert!(n.has_token && n.has_payload);
        assert_eq!(validate(&n, &lim()), Err(Status::MissingDeviceToken));
        let mut b = frame_of(&[
            Item::Token(Bytes::from_static(&TOKEN)),
            Item::Payload(Bytes::new()),
        ]);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert_eq!(validate(&n, &lim()), Err(Status::MissingPayload));

        let mut b = frame_of(&[]);
        assert_eq!(b.len(), 5);
        let n = decode(&mut b, &lim()).unwrap().unwrap();
        assert!(!n.has_token && !n.has_payload);
        assert_eq!(validate(&n, &lim()), Err(Status::MissingDeviceToken));
    }

    #[test]
    fn validate_each_status_and_order() {
        let l = lim();
        let ok = LegacyNotification::enhanced([0; 4], 0, TOKEN.to_vec(), PAYLOAD);
        assert_eq!(validate(&ok, &l), Ok(()));
        let with =
            |t: &[u8], p: &[u8]| LegacyNotification::enhanced([0; 4], 0, t.to_vec(), p.to_vec());
        assert_eq!(
            validate(&with(&[], PAYLOAD), &l),
            Err(Status::MissingDeviceToken)
        );
        assert_eq!(
            validate(&with(&[], &[]), &l),
            Err(Status::MissingDeviceToken)
        );
        assert_eq!(
            validate(&with(&[1; 31], PAYLOAD), &l),
            Err(Status::InvalidTokenSize)
        );
        assert_eq!(
            validate(&with(&[1; 33], PAYLOAD), &l),
            Err(Status::InvalidTokenSize)
        );
        // token checks come before payload checks
        assert_eq!(
            validate(&with(&[1; 31], &[]), &l),
            Err(Status::InvalidTokenSize)
        );
        assert_eq!(
            validate(&with(&TOKEN, &[]), &l),
            Err(Status::MissingPayload)
        );
        assert_eq!(validate(&with(&TOKEN, &[b'x'; 2048]), &l), Ok(()));
        assert_eq!(
            validate(&with(&TOKEN, &[b'x'; 2049]), &l),
            Err(Status::InvalidPayloadSize)
        );
        assert_eq!(
            validate(&with(&[1; 31], &[b'x'; 2049]), &l),
            Err(Status::InvalidTokenSize)
        );
        let small = Limits {
            max_payload: PRE_IOS8_MAX_PAYLOAD,
            ..l
        };
        assert_eq!(validate(&with(&TOKEN, &[b'x'; 256]), &small), Ok(()));
        assert_eq!(
            validate(&with(&TOKEN, &[b'x'; 257]), &small),
            Err(Status::InvalidPayloadSize)
        );
        let wide = Limits {
            token_len: TokenLen::UpTo100,
            ..l
        };
        for len in [1usize, 32, 64, 100] {
            assert_eq!(
                validate(&with(&vec![1; len], PAYLOAD), &wide),
                Ok(()),
                "{len}"
            );
        }
        assert_eq!(
            validate(&with(&[1; 101], PAYLOAD), &wide),
            Err(Status::InvalidTokenSize)
        );
        assert_eq!(
            validate(&with(&[], PAYLOAD), &wide),
            Err(Status::MissingDeviceToken)
        );
    }

    #[test]
    fn unknown_command_needs_one_byte() {
        for cmd in [3u8, 7, 8, 128, 255] {
            let e = decode_err(BytesMut::from(&[cmd][..]));
            assert_eq!(e, FrameError::UnknownCommand(cmd));
            assert_eq!(e.command(), Some(cmd));
            assert_eq!(e.response().unwrap().encode(), [8, 128, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn empty_and_partial_buffers_are_incomplete() {
        let mut all = BytesMut::new();
        encode_simple(&TOKEN, PAYLOAD, &mut all).unwrap();
        encode_enhanced([1; 4], 9, &TOKEN, PAYLOAD, &mut all).unwrap();
        let framed = LegacyNotification::framed([1, 2, 3, 4], 7, 5, TOKEN.to_vec(), PAYLOAD);
        encode_framed(&framed, &mut all).unwrap();
        let mut start = 0;
        while start < all.len() {
            let total = check(&all[start..], &lim()).unwrap();
            for cut in 0..total {
                let mut b = BytesMut::from(&all[start..start + cut]);
                assert_eq!(check(&b, &lim()), Err(FrameError::Incomplete));
                assert_eq!(decode(&mut b, &lim()), Ok(None));
                assert_eq!(b.len(), cut, "untouched when incomplete");
            }
            start += total;
        }
        assert_eq!(FrameError::Incomplete.response(), None);
        assert_eq!(FrameError::Incomplete.command(), None);
        assert!(FrameError::Incomplete.is_incomplete());
    }

    #[test]
    fn huge_frame_length_refused_with_five_bytes() {
        let e = decode_err(BytesMut::from(&[2u8, 0xFF, 0xFF, 0xFF, 0xFF][..]));
        assert!(matches!(
            e,
            FrameError::FrameTooLong {
                length: u32::MAX,
                ..
            }
        ));
        assert_eq!(e.response().unwrap().encode(), [8, 128, 0, 0, 0, 0]);
        assert_eq!(e.command(), Some(CMD_FRAMED));
        // Exactly at the limit is only incomplete; one above is refused.
        let small = Limits {
            max_frame: 10,
            ..lim()
        };
        let mut at = BytesMut::from(&[2u8, 0, 0, 0, 10][..]);
        assert_eq!(decode(&mut at, &small), Ok(None));
        let mut over = BytesMut::from(&[2u8, 0, 0, 0, 11][..]);
        assert!(matches!(
            decode(&mut over, &small),
            Err(FrameError::FrameTooLong {
                length: 11,
                max: 10
            })
        ));
        let max = u32::try_from(DEFAULT_MAX_FRAME).unwrap();
        let mut b = BytesMut::new();
        b.put_u8(2);
        b.put_u32(max + 1);
        assert!(matches!(decode_err(b), FrameError::FrameTooLong { .. }));
    }

    fn malformed(e: FrameError) -> (ItemDefect, Option<[u8; 4]>) {
        match e {
            FrameError::Malformed { defect, identifier } => (defect, identifier),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn unknown_item_identifier_depends_on_order() {
        let raw = Item::Raw {
            id: 6,
            data: Bytes::from_static(b"x"),
        };
        let mut after = good_items();
        after.push(raw.clone());
        let e = decode_err(frame_of(&after));
        assert_eq!(
            malformed(e),
            (ItemDefect::UnknownItem { id: 6 }, Some([1, 2, 3, 4]))
        );
        assert_eq!(e.response().unwrap().encode(), [8, 128, 1, 2, 3, 4]);

        let mut before = good_items();
        before.insert(0, raw);
        let e = decode_err(frame_of(&before));
        assert_eq!(malformed(e), (ItemDefect::UnknownItem { id: 6 }, None));
        assert_eq!(e.response().unwrap().encode(), [8, 128, 0, 0, 0, 0]);

        for id in [0u8, 9, 255] {
            let e = decode_err(frame_of(&[Item::Raw {
                id,
                data: Bytes::new(),
            }]));
            assert_eq!(malformed(e).0, ItemDefect::UnknownItem { id });
        }
    }

    #[test]
    fn wrong_item_lengths() {
        for (id, bad) in [(3u8, 3usize), (3, 5), (4, 0), (4, 8), (5, 0), (5, 2)] {
            let mut items = vec![Item::Identifier([5, 6, 7, 8])];
            if id == 3 {
                items.clear();
            }
            items.push(Item::Raw {
                id,
                data: Bytes::from(vec![0; bad]),
            });
            let e = decode_err(frame_of(&items));
            let expect_id = (id != 3).then_some([5, 6, 7, 8]);
            assert_eq!(
                malformed(e),
                (
                    ItemDefect::BadItemLength {
                        id,
                        length: bad as u16
                    },
                    expect_id
                )
            );
        }
    }

    #[test]
    fn duplicate_items() {
        let dups = [
            Item::Token(Bytes::from_static(&TOKEN)),
            Item::Payload(Bytes::from_static(PAYLOAD)),
            Item::Identifier([9, 9, 9, 9]),
            Item::Expiry(1),
            Item::Priority(5),
        ];
        for d in dups {
            let mut items = good_items();
            items.push(Item::Expiry(3));
            items.push(Item::Priority(10));
            items.push(d.clone());
            let e = decode_err(frame_of(&items));
            // the first identifier stays the frame's identifier
            assert_eq!(
                malformed(e),
                (ItemDefect::DuplicateItem { id: d.id() }, Some([1, 2, 3, 4]))
            );
        }
    }

    #[test]
    fn item_overrun_and_trailing_bytes() {
        // item 2 announces 10 bytes but the frame holds 2 after its header
        let mut b = BytesMut::from(&[2u8, 0, 0, 0, 5, 2, 0, 10, b'{', b'}'][..]);
        assert_eq!(
            malformed(decode_err(b.clone())).0,
            ItemDefect::ItemOverrun {
                id: 2,
                length: 10,
                remaining: 2
            }
        );
        // the bytes after the frame must not rescue it
        b.extend_from_slice(&[0; 20]);
        assert!(matches!(
            malformed(decode_err(b)).0,
            ItemDefect::ItemOverrun { .. }
        ));
        for extra in [1usize, 2] {
            let mut items = frame_of(&good_items());
            let new_len =
                u32::from_be_bytes([items[1], items[2], items[3], items[4]]) + extra as u32;
            items[1..5].copy_from_slice(&new_len.to_be_bytes());
            items.extend_from_slice(&vec![1; extra]);
            let e = decode_err(items);
            assert_eq!(
                malformed(e),
                (
                    ItemDefect::TrailingBytes { count: extra },
                    Some([1, 2, 3, 4])
                )
            );
        }
    }

    #[test]
    fn encoders_refuse_oversized_fields_without_writing() {
        let big = vec![0u8; usize::from(u16::MAX) + 1];
        let mut b = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            encode_simple(&big, PAYLOAD, &mut b),
            Err(EncodeError::TokenTooLong(65536))
        );
        assert_eq!(
            encode_simple(&TOKEN, &big, &mut b),
            Err(EncodeError::PayloadTooLong(65536))
        );
        assert_eq!(
            encode_enhanced([0; 4], 0, &big, PAYLOAD, &mut b),
            Err(EncodeError::TokenTooLong(65536))
        );
        assert_eq!(
            encode_enhanced([0; 4], 0, &TOKEN, &big, &mut b),
            Err(EncodeError::PayloadTooLong(65536))
        );
        let n = LegacyNotification::framed([0; 4], 0, 10, TOKEN.to_vec(), big.clone());
        assert_eq!(
            encode_framed(&n, &mut b),
            Err(EncodeError::PayloadTooLong(65536))
        );
        let raw = Item::Raw {
            id: 7,
            data: Bytes::from(big.clone()),
        };
        assert_eq!(
            encode_items(&[Item::Identifier([0; 4]), raw], &mut b),
            Err(EncodeError::ItemTooLong { id: 7, len: 65536 })
        );
        let fb = FeedbackTuple {
            timestamp: 1,
            token: Bytes::from(big),
        };
        assert_eq!(fb.encode(&mut b), Err(EncodeError::TokenTooLong(65536)));
        assert_eq!(&b[..], b"keep");
        // the largest encodable fields still work
        let max = vec![1u8; usize::from(u16::MAX)];
        encode_simple(&max, &max, &mut b).unwrap();
        assert_eq!(b.len(), 4 + 5 + 2 * 65535);
    }

    #[test]
    fn error_response_encode_parse() {
        let r = ErrorResponse::new(Status::Shutdown, [1, 2, 3, 4]);
        assert_eq!(r.encode(), [8, 10, 1, 2, 3, 4]);
        assert_eq!(ErrorResponse::parse(&r.encode()), Some(r));
        assert_eq!(r.known_status(), Some(Status::Shutdown));
        let odd = ErrorResponse::parse(&[8, 200, 0, 0, 0, 1]).unwrap();
        assert_eq!(odd.status, 200);
        assert_eq!(odd.known_status(), None);
        assert_eq!(odd.encode(), [8, 200, 0, 0, 0, 1]);
        assert_eq!(ErrorResponse::parse(&[8, 8, 0, 0, 0]), None);
        assert_eq!(ErrorResponse::parse(&[8, 8, 0, 0, 0, 0, 0]), None);
        assert_eq!(ErrorResponse::parse(&[7, 8, 0, 0, 0, 0]), None);
        assert_eq!(ErrorResponse::parse(&[]), None);
    }

    #[test]
    fn feedback_tuple_wire_and_stream() {
        let t = FeedbackTuple {
            timestamp: 0x5F00_0001,
            token: Bytes::from_static(&TOKEN),
        };
        let mut b = BytesMut::new();
        t.encode(&mut b).unwrap();
        assert_eq!(b.len(), 38); // PROTOCOL.md 1.8
        assert_eq!(&b[..6], &[0x5F, 0, 0, 1, 0, 32]);
        for cut in 0..38 {
            let mut part = BytesMut::from(&b[..cut]);
            assert_eq!(decode_feedback(&mut part), Ok(None));
            assert_eq!(part.len(), cut);
        }
        b.extend_from_slice(&[1, 2]);
        assert_eq!(decode_feedback(&mut b), Ok(Some(t)));
        assert_eq!(&b[..], &[1, 2]);
    }

    #[test]
    fn command_bytes() {
        for c in [Command::Simple, Command::Enhanced, Command::Framed] {
            assert_eq!(Command::from_byte(c.byte()), Some(c));
        }
        assert_eq!(Command::from_byte(CMD_ERROR_RESPONSE), None);
        assert!(!Command::Simple.reports_errors());
        assert!(Command::Enhanced.reports_errors());
        assert!(Command::Framed.reports_errors());
        assert_eq!(Command::Enhanced as u8, CMD_ENHANCED);
        assert_eq!(Command::Framed as u8, CMD_FRAMED);
    }

    #[test]
    fn parse_shares_storage_and_ignores_following_bytes() {
        let mut b = BytesMut::new();
        encode_enhanced([4; 4], 1, &TOKEN, PAYLOAD, &mut b).unwrap();
        let len = b.len();
        b.extend_from_slice(&[0xFF; 3]);
        let bytes = b.freeze();
        assert_eq!(check(&bytes, &lim()), Ok(len));
        let n = parse(&bytes, &lim()).unwrap();
        assert_eq!(n.payload_bytes(), PAYLOAD);
        assert!(bytes.as_ptr_range().contains(&n.payload.as_ptr()));
        // framed too, with a following frame in the same buffer
        let mut b = BytesMut::new();
        let f = LegacyNotification::framed([1; 4], 2, 5, TOKEN.to_vec(), PAYLOAD);
        encode_framed(&f, &mut b).unwrap();
        let len = b.len();
        encode_simple(&[7; 3], b"zz", &mut b).unwrap();
        let bytes = b.freeze();
        assert_eq!(check(&bytes, &lim()), Ok(len));
        let n = parse(&bytes, &lim()).unwrap();
        assert_eq!(n, f);
        assert!(bytes.as_ptr_range().contains(&n.token.as_ptr()));
    }

    // ---- properties ----

    fn arb_notification() -> impl Strategy<Value = LegacyNotification> {
        let bytes = |max| proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from);
        (
            0u8..3,
            any::<[u8; 4]>(),
            any::<u32>(),
            any::<u8>(),
            proptest::option::of(bytes(120)),
            proptest::option::of(bytes(300)),
        )
            .prop_map(
                |(c, identifier, expiry, priority, token, payload)| match c {
                    0 => LegacyNotification::simple(
                        token.unwrap_or_default(),
                        payload.unwrap_or_default(),
                    ),
                    1 => LegacyNotification::enhanced(
                        identifier,
                        expiry,
                        token.unwrap_or_default(),
                        payload.unwrap_or_default(),
                    ),
                    _ => LegacyNotification {
                        command: Command::Framed,
                        identifier,
                        expiry,
                        priority,
                        has_token: token.is_some(),
                        has_payload: payload.is_some(),
                        token: token.unwrap_or_default(),
                        payload: payload.unwrap_or_default(),
                    },
                },
            )
    }

    fn arb_item() -> impl Strategy<Value = Item> {
        let bytes = |max| proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from);
        prop_oneof![
            bytes(40).prop_map(Item::Token),
            bytes(40).prop_map(Item::Payload),
            any::<[u8; 4]>().prop_map(Item::Identifier),
            any::<u32>().prop_map(Item::Expiry),
            any::<u8>().prop_map(Item::Priority),
            (any::<u8>(), bytes(6)).prop_map(|(id, data)| Item::Raw { id, data }),
        ]
    }

    /// Reference model of PROTOCOL.md 1.4 / Part 3 over a well-formed item list.
    fn model(items: &[Item]) -> Result<LegacyNotification, (ItemDefect, Option<[u8; 4]>)> {
        let mut n = LegacyNotification {
            command: Command::Framed,
            identifier: [0; 4],
            expiry: 0,
            priority: 10,
            token: Bytes::new(),
            payload: Bytes::new(),
            has_token: false,
            has_payload: false,
        };
        let mut seen = Vec::new();
        let mut ident = None;
        for item in items {
            let mut data = BytesMut::new();
            item.put(item.checked_len().unwrap(), &mut data);
            let data = data.split_off(3).freeze();
            let id = item.id();
            if !(1..=5).contains(&id) {
                return Err((ItemDefect::UnknownItem { id }, ident));
            }
            if seen.contains(&id) {
                return Err((ItemDefect::DuplicateItem { id }, ident));
            }
            let want = [None, None, Some(4), Some(4), Some(1)][usize::from(id - 1)];
            if want.is_some_and(|w| w != data.len()) {
                let length = data.len() as u16;
                return Err((ItemDefect::BadItemLength { id, length }, ident));
            }
            seen.push(id);
            match id {
                1 => (n.token, n.has_token) = (data, true),
                2 => (n.payload, n.has_payload) = (data, true),
                3 => {
                    let a: [u8; 4] = data[..].try_into().unwrap();
                    n.identifier = a;
                    ident = Some(a);
                }
                4 => n.expiry = u32::from_be_bytes(data[..].try_into().unwrap()),
                _ => n.priority = data[0],
            }
        }
        Ok(n)
    }

    proptest! {
        #[test]
        fn round_trip_every_command(n in arb_notification()) {
            let mut b = BytesMut::new();
            n.encode(&mut b).unwrap();
            prop_assert_eq!(b[0], n.command.byte());
            prop_assert_eq!(check(&b, &lim()), Ok(b.len()));
            let back = decode(&mut b, &lim()).unwrap().unwrap();
            prop_assert!(b.is_empty());
            prop_assert_eq!(back, n);
        }

        #[test]
        fn peek_agrees_with_decode(items in proptest::collection::vec(arb_item(), 0..8), cut in any::<usize>()) {
            let mut b = frame_of(&items);
            b.truncate(cut % (b.len() + 1));
            let borrowed = b.clone();
            let peeked = peek(&borrowed, &lim());
            let decoded = decode(&mut b, &lim());
            match (peeked, decoded) {
                (Ok(Some(r)), Ok(Some(n))) => {
                    prop_assert_eq!(r.len, borrowed.len() - b.len());
                    prop_assert_eq!(r.validate(&lim()), validate(&n, &lim()));
                    prop_assert_eq!(r.to_notification(), n);
                }
                (p, d) => prop_assert_eq!(p.map(|o| o.map(|r| r.len)), d.map(|o| o.map(|_| 0))),
            }
        }

        #[test]
        fn items_match_reference_model(items in proptest::collection::vec(arb_item(), 0..8)) {
            let mut b = frame_of(&items);
            let got = decode(&mut b, &lim());
            match model(&items) {
                Ok(n) => {
                    prop_assert_eq!(got, Ok(Some(n)));
                    prop_assert!(b.is_empty());
                }
                Err((defect, identifier)) => {
                    prop_assert_eq!(got.clone(), Err(FrameError::Malformed { defect, identifier }));
                    let r = got.unwrap_err().response().unwrap();
                    prop_assert_eq!(r.status, 128);
                    prop_assert_eq!(r.identifier, identifier.unwrap_or([0; 4]));
                }
            }
        }

        #[test]
        fn error_response_round_trip(status in any::<u8>(), identifier in any::<[u8; 4]>()) {
            let r = ErrorResponse { status, identifier };
            let wire = r.encode();
            prop_assert_eq!(wire[0], 8);
            prop_assert_eq!(ErrorResponse::parse(&wire), Some(r));
            prop_assert_eq!(r.known_status().map(Status::code), Status::from_code(status).map(Status::code));
        }

        #[test]
        fn feedback_stream_in_chunks(
            tuples in proptest::collection::vec(
                (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..70)), 0..6),
            chunk in 1usize..50,
        ) {
            let tuples: Vec<FeedbackTuple> = tuples
                .into_iter()
                .map(|(timestamp, t)| FeedbackTuple { timestamp, token: Bytes::from(t) })
                .collect();
            let mut wire = BytesMut::new();
            for t in &tuples {
                t.encode(&mut wire).unwrap();
            }
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(t) = decode_feedback(&mut buf).unwrap() {
                    got.push(t);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, tuples);
        }

        #[test]
        fn never_panics_and_makes_progress(
            data in proptest::collection::vec(any::<u8>(), 0..400),
            first in 0u8..4,
            max_frame in 0usize..500,
        ) {
            let mut data = data;
            if let Some(b) = data.first_mut() {
                *b = if first == 3 { *b } else { first };
            }
            for limits in [lim(), Limits { max_frame, ..lim() }] {
                let checked = check(&data, &limits);
                let bytes = Bytes::from(data.clone());
                let parsed = parse(&bytes, &limits);
                let mut buf = BytesMut::from(&data[..]);
                let before = buf.len();
                match decode(&mut buf, &limits) {
                    Ok(Some(n)) => {
                        let used = before - buf.len();
                        prop_assert!(used >= 1);
                        prop_assert_eq!(checked, Ok(used));
                        prop_assert_eq!(parsed, Ok(n.clone()));
                        let _ = validate(&n, &limits);
                    }
                    Ok(None) => {
                        prop_assert_eq!(buf.len(), before);
                        prop_assert_eq!(checked, Err(FrameError::Incomplete));
                    }
                    Err(e) => {
                        prop_assert_eq!(buf.len(), before);
                        prop_assert_eq!(checked, Err(e));
                        prop_assert!(e.response().is_some());
                    }
                }
                let mut fb = BytesMut::from(&data[..]);
                let _ = decode_feedback(&mut fb);
            }
        }

        #[test]
        fn chunked_stream_equals_whole(
            ns in proptest::collection::vec(arb_notification(), 1..6),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut wire = BytesMut::new();
            for n in &ns {
                n.encode(&mut wire).unwrap();
            }
            let mut whole = wire.clone();
            let mut expected = Vec::new();
            while let Some(n) = decode(&mut whole, &lim()).unwrap() {
                expected.push(n);
            }
            prop_assert!(whole.is_empty());
            prop_assert_eq!(&expected, &ns);

            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            let mut i = 0;
            while pos < wire.len() {
                let step = cuts[i % cuts.len()].min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + step]);
                pos += step;
                i += 1;
                while let Some(n) = decode(&mut buf, &lim()).unwrap() {
                    got.push(n);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, expected);
        }
    }
}
