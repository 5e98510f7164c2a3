//! Per-stream state (RFC 9113 5.1), the memory of recently closed streams, and the HTTP message
//! checks of RFC 9113 8.2-8.3 that make a request malformed.

use super::flow::Window;
use crate::http2::any_byte;
use crate::http2::hpack::HeaderField;
use bytes::{Bytes, BytesMut};
use std::time::Instant;

/// A stream in the open or half-closed state; closed streams leave the map (RFC 9113 5.1).
#[derive(Debug)]
pub(crate) struct Stream {
    /// END_STREAM received: the stream is half-closed (remote).
    pub remote_closed: bool,
    /// END_STREAM sent: our response is complete.
    pub local_closed: bool,
    /// The request was handed out (at END_STREAM, or early when the body overflowed).
    pub delivered: bool,
    /// Our response HEADERS went out.
    pub responded: bool,
    /// Further request DATA is counted but dropped (the body went past the limit).
    pub discard_body: bool,
    /// Window for DATA we send.
    pub send_window: Window,
    /// Window for DATA we receive.
    pub recv_window: Window,
    /// Request header fields.
    pub headers: Vec<HeaderField>,
    /// Request trailer fields.
    pub trailers: Vec<HeaderField>,
    /// Request body collected so far (at most the configured limit).
    pub body: BytesMut,
    /// The request body was cut at the limit.
    pub body_truncated: bool,
    /// Declared content-length, checked against the DATA total (RFC 9113 8.1.1).
    pub content_length: Option<u64>,
    /// DATA payload octets received (padding excluded).
    pub data_len: u64,
    /// When the request's header block was complete.
    pub received_at: Instant,
    /// Response body still to send, waiting for flow-control window.
    pub pending: Bytes,
    /// Whether `pending` is the last of the response (END_STREAM on its last DATA).
    pub pending_active: bool,
}

impl Stream {
    pub fn new(send: u32, recv: u32, now: Instant) -> Self {
        Stream {
            remote_closed: false,
            local_closed: false,
            delivered: false,
            responded: false,
            discard_body: false,
            send_window: Window::new(send),
            recv_window: Window::new(recv),
            headers: Vec::new(),
            trailers: Vec::new(),
            body: BytesMut::new(),
            body_truncated: false,
            content_length: None,
            data_len: 0,
            received_at: now,
            pending: Bytes::new(),
            pending_active: false,
        }
    }
}

/// How a stream that is no longer in the map was closed: decides how late frames are treated (RFC 9113 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClosedHow {
    /// We sent RST_STREAM (or ignored the stream after GOAWAY): late frames are ignored.
    ResetByUs,
    /// The peer sent RST_STREAM: further frames are a STREAM_CLOSED error.
    ResetByPeer,
    /// Both sides sent END_STREAM.
    Finished,
}

/// A bounded memory of recently closed streams: enough to judge late frames without growing forever.
///
/// A ring indexed by the stream id: client stream ids only grow (RFC 9113 5.1.1), so the slot of
/// an id is taken over only after `cap` more streams, which is the bound. No hashing, no queue of
/// closures: every request closes a stream, and a hash map with its eviction queue was a
/// measurable share of a small request's cost. The ring starts small and doubles (up to `cap`)
/// when a slot it needs is still taken, so a connection of a few streams keeps a few slots.
#[derive(Debug)]
pub(crate) struct ClosedSet {
    /// `(id, how)` at `slot(id)`; id 0 (never a stream) marks an empty slot.
    ring: Vec<(u32, ClosedHow)>,
    cap: usize,
}

impl ClosedSet {
    /// Slots a ring starts with, at its first closure.
    const FIRST: usize = 16;

    pub fn new(cap: usize) -> Self {
        ClosedSet {
            ring: Vec::new(),
            cap: cap.max(1).next_power_of_two(),
        }
    }

    /// The slot of `id` in a ring of `len` (a power of two): odd (client) ids are consecutive
    /// slots.
    fn slot(id: u32, len: usize) -> usize {
        (id >> 1) as usize & (len - 1)
    }

    pub fn insert(&mut self, id: u32, how: ClosedHow) {
        if id == 0 {
            return;
        }
        if self.ring.is_empty() {
            self.ring = vec![(0, ClosedHow::Finished); Self::FIRST.min(self.cap)];
        }
        loop {
            let i = Self::slot(id, self.ring.len());
            let taken = self.ring[i].0;
            if taken == 0 || taken == id || self.ring.len() >= self.cap {
                self.ring[i] = (id, how);
                return;
            }
            self.grow();
        }
    }

    /// Doubles the ring, moving every entry to its slot in the larger one (distinct slots stay
    /// distinct).
    fn grow(&mut self) {
        let len = self.ring.len() * 2;
        let mut ring = vec![(0, ClosedHow::Finished); len];
        for &(id, how) in self.ring.iter().filter(|(id, _)| *id != 0) {
            ring[Self::slot(id, len)] = (id, how);
        }
        self.ring = ring;
    }

    pub fn get(&self, id: u32) -> Option<ClosedHow> {
        if self.ring.is_empty() || id == 0 {
            return None;
        }
        let (at, how) = self.ring[Self::slot(id, self.ring.len())];
        (at == id).then_some(how)
    }
}

/// What the request header checks extract for later checks on the body.
#[derive(Debug, Default)]
pub(crate) struct RequestMeta {
    pub content_length: Option<u64>,
}

/// Header names that are connection-specific and so malformed in HTTP/2 (RFC 9113 8.2.2).
const CONNECTION_SPECIFIC: &[&[u8]] = &[
    b"connection",
    b"proxy-connection",
    b"keep-alive",
    b"transfer-encoding",
    b"upgrade",
];

/// Checks one regular (non-pseudo) field: name and value characters, connection-specific fields, TE.
fn check_regular(f: &HeaderField) -> Result<(), &'static str> {
    if f.name.is_empty() {
        return Err("empty header name");
    }
    // RFC 9113 8.2.1: no 0x00-0x20, no uppercase, no 0x7f-0xff in names.
    // Branch-free per byte: every request's fields pass through here (a JWT is hundreds of bytes).
    if any_byte(&f.name, |c| {
        c <= 0x20 || c.is_ascii_uppercase() || c >= 0x7f
    }) {
        return Err("invalid character in header name");
    }
    if any_byte(&f.value, |c| c == 0 || c == b'\r' || c == b'\n') {
        return Err("invalid character in header value");
    }
    if let (Some(first), Some(last)) = (f.value.first(), f.value.last()) {
        if matches!(first, b' ' | b'\t') || matches!(last, b' ' | b'\t') {
            return Err("header value with leading or trailing whitespace");
        }
    }
    if CONNECTION_SPECIFIC.contains(&&f.name[..]) {
        return Err("connection-specific header field");
    }
    if &f.name[..] == b"te" && &f.value[..] != b"trailers" {
        return Err("TE header other than trailers");
    }
    Ok(())
}

fn parse_content_length(v: &[u8]) -> Result<u64, &'static str> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err("invalid content-length");
    }
    let s = std::str::from_utf8(v).map_err(|_| "invalid content-length")?;
    s.parse().map_err(|_| "invalid content-length")
}

/// Checks a request header list (RFC 9113 8.3.1 and 8.2); an error makes the request malformed.
pub(crate) fn validate_request(fields: &[HeaderField]) -> Result<RequestMeta, &'static str> {
    let mut seen_regular = false;
    let (mut method, mut scheme, mut path, mut authority) = (None, None, None, None);
    let mut meta = RequestMeta::default();
    for f in fields {
        if f.name.first() == Some(&b':') {
            if seen_regular {
                return Err("pseudo-header after a regular header");
            }
            let slot = match &f.name[..] {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":path" => &mut path,
                b":authority" => &mut authority,
                _ => return Err("unknown or response pseudo-header"),
            };
            if slot.is_some() {
                return Err("duplicated pseudo-header");
            }
            *slot = Some(&f.value[..]);
            continue;
        }
        seen_regular = true;
        check_regular(f)?;
        if &f.name[..] == b"content-length" {
            let n = parse_content_length(&f.value)?;
            if meta.content_length.is_some_and(|m| m != n) {
                return Err("conflicting content-length");
            }
            meta.content_length = Some(n);
        }
    }
    let Some(method) = method else {
        return Err("missing :method");
    };
    if method == b"CONNECT" {
        if authority.is_none() || scheme.is_some() || path.is_some() {
            return Err("malformed CONNECT request");
        }
        return Ok(meta);
    }
    if scheme.is_none() {
        return Err("missing :scheme");
    }
    match path {
        None => Err("missing :path"),
        Some([]) => Err("empty :path"),
        Some(_) => Ok(meta),
    }
}

/// Checks a trailer list: no pseudo-headers, same field rules as headers (RFC 9113 8.1).
pub(crate) fn validate_trailers(fields: &[HeaderField]) -> Result<(), &'static str> {
    for f in fields {
        if f.name.first() == Some(&b':') {
            return Err("pseudo-header in trailers");
        }
        check_regular(f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::hpack::Representation;

    fn hf(n: &str, v: &str) -> HeaderField {
        HeaderField {
            name: Bytes::copy_from_slice(n.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
            representation: Representation::WithoutIndexing,
            name_indexed: false,
            huffman: false,
        }
    }

    fn base() -> Vec<HeaderField> {
        vec![
            hf(":method", "POST"),
            hf(":scheme", "https"),
            hf(":path", "/3/device/ab"),
            hf(":authority", "api.push.apple.com"),
        ]
    }

    #[test]
    fn valid_request() {
        let mut h = base();
        h.push(hf("content-length", "12"));
        h.push(hf("te", "trailers"));
        assert_eq!(validate_request(&h).unwrap().content_length, Some(12));
    }

    #[test]
    fn malformed_requests() {
        let cases: Vec<Vec<HeaderField>> = vec![
            {
                let mut h = base();
                h.push(hf("Apns-Topic", "x"));
                h
            },
            {
                let mut h = base();
                h.push(hf(":foo", "x"));
                h
            },
            {
                let mut h = base();
                h.push(hf(":status", "200"));
                h
            },
            {
                let mut h = vec![hf("apns-topic", "x")];
                h.extend(base());
                h
            },
            {
                let mut h = base();
                h.push(hf("connection", "keep-alive"));
                h
            },
            {
                let mut h = base();
                h.push(hf("te", "gzip"));
                h
            },
            {
                let mut h = base();
                h[2] = hf(":path", "");
                h
            },
            base().into_iter().skip(1).collect(),
            base()
                .into_iter()
                .filter(|f| &f.name[..] != b":scheme")
                .collect(),
            base()
                .into_iter()
                .filter(|f| &f.name[..] != b":path")
                .collect(),
            {
                let mut h = base();
                h.insert(1, hf(":method", "GET"));
                h
            },
            {
                let mut h = base();
                h.push(hf("content-length", "x1"));
                h
            },
            {
                let mut h = base();
                h.push(hf("x", "a\nb"));
                h
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(validate_request(c).is_err(), "case {i}");
        }
    }

    #[test]
    fn trailers_rules() {
        assert!(validate_trailers(&[hf("x-check", "1")]).is_ok());
        assert!(validate_trailers(&[hf(":path", "/")]).is_err());
    }

    #[test]
    fn closed_set_is_bounded() {
        let mut c = ClosedSet::new(2);
        c.insert(1, ClosedHow::Finished);
        c.insert(3, ClosedHow::ResetByUs);
        c.insert(5, ClosedHow::ResetByPeer);
        assert_eq!(c.get(1), None);
        assert_eq!(c.get(3), Some(ClosedHow::ResetByUs));
        assert_eq!(c.get(5), Some(ClosedHow::ResetByPeer));
    }

    #[test]
    fn closed_set_keeps_closures_out_of_order_and_stays_small_when_few() {
        let mut c = ClosedSet::new(4096);
        for id in [7, 3, 5, 1] {
            c.insert(id, ClosedHow::Finished);
        }
        c.insert(3, ClosedHow::ResetByPeer);
        assert_eq!(c.get(1), Some(ClosedHow::Finished));
        assert_eq!(c.get(3), Some(ClosedHow::ResetByPeer));
        assert_eq!(c.get(9), None);
        assert_eq!(c.get(0), None);
        assert_eq!(c.ring.len(), ClosedSet::FIRST);
    }

    #[test]
    fn closed_set_remembers_many_ids() {
        let mut c = ClosedSet::new(4096);
        for id in (1..20_000u32).step_by(2) {
            c.insert(id, ClosedHow::Finished);
        }
        let first_kept = 19_999 - 2 * 4095;
        assert_eq!(c.get(first_kept - 2), None);
        for id in (first_kept..20_000).step_by(2) {
            assert_eq!(c.get(id), Some(ClosedHow::Finished), "{id}");
            assert_eq!(c.get(id + 1), None);
        }
        assert_eq!(c.ring.len(), 4096);
    }
}
