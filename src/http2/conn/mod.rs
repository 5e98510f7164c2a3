//! The server side of an HTTP/2 connection (RFC 9113) as a sans-IO state machine.
//!
//! We own this layer because APNs behaviour has to be scripted at the HTTP/2 level: GOAWAY with JSON
//! debug data and a chosen last-stream-id, GOAWAY before our SETTINGS, SETTINGS_MAX_CONCURRENT_STREAMS
//! changed on a live connection (PROTOCOL.md 2.2), and the conformance judge must see PRIORITY
//! frames and how each header field was HPACK-encoded.
//!
//! Use: feed received bytes with [`Connection::recv`] (time is passed in), write what
//! [`Connection::take_output`] returns, handle [`Connection::poll_event`] (requests among them) and
//! answer with [`Connection::respond`]. Call [`Connection::on_timeout`] at [`Connection::next_timeout`].
//! Close the transport once [`Connection::wants_close`] is true and the output is written.

mod event;
mod flow;
mod recv;
mod stream;

#[cfg(test)]
mod tests;

pub use event::{ConnConfig, ConnError, Event, Request, SettingsUpdate};

use crate::http2::frame::{
    setting, ErrorCode, Frame, PrioritySpec, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW_SIZE,
    HEADER_LEN, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE,
};
use crate::http2::hpack::{Decoder, Encoder};
use bytes::{Bytes, BytesMut};
use flow::Window;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use stream::{ClosedHow, ClosedSet, Stream};

/// The values of our SETTINGS, either in force (acknowledged) or sent and waiting for the ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LocalSettings {
    max_concurrent_streams: u32,
    initial_window_size: u32,
    max_frame_size: u32,
    header_table_size: u32,
    max_header_list_size: u32,
}

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the 24-octet client preface; the count says how much matched.
    Preface(usize),
    /// Preface read; the next frame must be SETTINGS (RFC 9113 3.4).
    FirstSettings,
    /// Normal operation.
    Open,
    /// Closing: no more input is processed; flush and close.
    Closed,
}

/// A header block being collected from HEADERS plus CONTINUATION frames.
#[derive(Debug)]
struct PartialBlock {
    stream_id: u32,
    end_stream: bool,
    priority: Option<PrioritySpec>,
    buf: BytesMut,
    continuations: usize,
}

/// The server side of one HTTP/2 connection, without IO.
#[derive(Debug)]
pub struct Connection {
    cfg: ConnConfig,
    phase: Phase,
    inbuf: BytesMut,
    out: BytesMut,
    events: VecDeque<Event>,
    decoder: Decoder,
    encoder: Encoder,
    settings_sent: bool,
    settings_suppressed: bool,
    local: LocalSettings,
    pending_local: VecDeque<LocalSettings>,
    settings_deadline: Option<Instant>,
    peer_initial_window: u32,
    peer_max_frame_size: u32,
    // Boxed: a stream is a few hundred bytes, and B-tree inserts and removals move values around.
    streams: BTreeMap<u32, Box<Stream>>,
    closed: ClosedSet,
    highest_stream: u32,
    last_processed: u32,
    partial: Option<PartialBlock>,
    conn_send: Window,
    conn_recv: Window,
    goaway_sent: Option<u32>,
    goaway_received: bool,
    peer_eof: bool,
    ignore_ping: bool,
    rst_times: VecDeque<Instant>,
    input_blocked: bool,
    now: Option<Instant>,
    last_activity: Option<Instant>,
}

impl Connection {
    /// A connection in its initial state; our SETTINGS go out with the first output.
    pub fn new(cfg: ConnConfig) -> Self {
        let local = LocalSettings {
            max_concurrent_streams: cfg.max_concurrent_streams,
            initial_window_size: cfg.initial_window_size.min(MAX_WINDOW_SIZE),
            max_frame_size: cfg
                .max_frame_size
                .clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE),
            header_table_size: cfg.header_table_size,
            max_header_list_size: cfg.max_header_list_size,
        };
        // Until the client ACKs our first SETTINGS, the RFC defaults are in force, except that we
        // enforce our own header table size from the start (the decoder never grows past it).
        let defaults = LocalSettings {
            // The RFC default is "unlimited"; we cap it at the RFC 9113 6.5.2 recommended minimum
            // of 100 (or the configured value if higher) so memory stays bounded before the ACK.
            max_concurrent_streams: cfg.max_concurrent_streams.max(100),
            initial_window_size: DEFAULT_WINDOW_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            header_table_size: 4096,
            // Advisory in HTTP/2, so we enforce our own from the start (bounds HPACK bombs).
            max_header_list_size: cfg.max_header_list_size,
        };
        Connection {
            decoder: Decoder::new(4096),
            encoder: Encoder::new(),
            closed: ClosedSet::new(cfg.closed_streams_remembered),
            phase: Phase::Preface(0),
            inbuf: BytesMut::new(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            settings_sent: false,
            settings_suppressed: false,
            local: defaults,
            pending_local: VecDeque::from([local]),
            settings_deadline: None,
            peer_initial_window: DEFAULT_WINDOW_SIZE,
            peer_max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            streams: BTreeMap::new(),
            highest_stream: 0,
            last_processed: 0,
            partial: None,
            conn_send: Window::new(DEFAULT_WINDOW_SIZE),
            conn_recv: Window::new(DEFAULT_WINDOW_SIZE),
            goaway_sent: None,
            goaway_received: false,
            peer_eof: false,
            ignore_ping: false,
            rst_times: VecDeque::new(),
            input_blocked: false,
            now: None,
            last_activity: None,
            cfg,
        }
    }

    // ----- public API -------------------------------------------------------------------------

    /// Feeds bytes read from the transport; `data` may be empty to resume after output drained.
    pub fn recv(&mut self, data: &[u8], now: Instant) {
        self.now = Some(now);
        self.send_preface_settings();
        if self.phase == Phase::Closed {
            return;
        }
        if self.settings_sent && !self.pending_local.is_empty() {
            self.arm_settings_timer();
        }
        // Idle means no stream or PING activity (issue 12): bytes alone, a byte a second, do not
        // keep a connection alive; the clock starts with the connection.
        if self.last_activity.is_none() {
            self.last_activity = Some(now);
        }
        self.inbuf.extend_from_slice(data);
        self.process(now);
        if self.phase != Phase::Closed && self.inbuf.len() > self.input_bound() {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "input backlog too large");
        }
    }

    /// Tells the connection the peer closed its sending side.
    pub fn recv_eof(&mut self) {
        self.peer_eof = true;
        if self.phase != Phase::Closed && self.streams.is_empty() {
            self.phase = Phase::Closed;
        }
    }

    /// Moves the bytes to write onto the end of `dst` (the network layer's write buffer); returns
    /// how many. An empty `dst` trades buffers with the connection instead of copying, so
    /// neither starts from zero capacity and grows again on the next read's answers.
    pub fn output_into(&mut self, dst: &mut BytesMut) -> usize {
        self.send_preface_settings();
        let n = self.out.len();
        if dst.is_empty() {
            std::mem::swap(dst, &mut self.out);
            self.out.clear();
        } else {
            dst.extend_from_slice(&self.out);
            self.out.clear();
        }
        n
    }

    /// Takes the bytes to write to the transport, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.send_preface_settings();
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.split().freeze())
        }
    }

    /// Bytes waiting in the output buffer.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Whether the driver should read more input (false while the output backlog is over its bound).
    pub fn wants_read(&self) -> bool {
        self.phase != Phase::Closed
            && !self.peer_eof
            && self.out.len() <= self.cfg.max_output_buffer
            && self.inbuf.len() <= self.input_bound() / 2
    }

    /// The input backlog bound, never below what two largest frames need.
    fn input_bound(&self) -> usize {
        let frame = HEADER_LEN + self.recv_max_frame_size() as usize;
        self.cfg.max_input_buffer.max(frame.saturating_mul(2))
    }

    /// Whether input processing stopped on the output bound: call `recv(&[], now)` once output drained.
    pub fn input_blocked(&self) -> bool {
        self.input_blocked && self.phase != Phase::Closed
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the transport should be closed once the pending output is written.
    pub fn wants_close(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Alias of [`Connection::wants_close`] for callers that think in terms of state.
    pub fn is_closed(&self) -> bool {
        self.wants_close()
    }

    /// Open or half-closed streams.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// The highest client stream id seen.
    pub fn highest_stream_id(&self) -> u32 {
        self.highest_stream
    }

    /// The MAX_CONCURRENT_STREAMS value in force (acknowledged by the client).
    pub fn max_concurrent_streams_in_force(&self) -> u32 {
        self.local.max_concurrent_streams
    }

    /// Stops answering PINGs (a fault to script: a server that looks dead to health checks).
    pub fn set_ignore_ping(&mut self, on: bool) {
        self.ignore_ping = on;
    }

    /// Sends our SETTINGS now if not sent yet; it is also done by the first `recv`/`take_output`.
    pub fn send_preface_settings(&mut self) {
        if self.settings_sent || self.settings_suppressed {
            return;
        }
        self.settings_sent = true;
        if let Some(s) = self.pending_local.front().copied() {
            // PROTOCOL.md 2.2: Apple's values were seen in this order (streams, table, window, frame, list).
            let params = vec![
                (setting::MAX_CONCURRENT_STREAMS, s.max_concurrent_streams),
                (setting::HEADER_TABLE_SIZE, s.header_table_size),
                (setting::INITIAL_WINDOW_SIZE, s.initial_window_size),
                (setting::MAX_FRAME_SIZE, s.max_frame_size),
                (setting::MAX_HEADER_LIST_SIZE, s.max_header_list_size),
            ];
            self.write(&Frame::Settings { ack: false, params });
            self.arm_settings_timer();
        }
    }

    /// Answers a request: HEADERS with END_STREAM when there is no body, else HEADERS then DATA
    /// (queued until the flow-control windows allow), PROTOCOL.md 2.6.
    pub fn respond(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<(), ConnError> {
        self.respond_with(stream_id, status, headers, body)
    }

    /// [`Connection::respond`] with the header fields in any string form (the driver's owned
    /// strings), so no list of borrowed copies is built for each answer.
    pub fn respond_with(
        &mut self,
        stream_id: u32,
        status: u16,
        headers: &[(impl AsRef<str>, impl AsRef<str>)],
        body: Option<Bytes>,
    ) -> Result<(), ConnError> {
        if self.phase == Phase::Closed {
            return Err(ConnError::Closed);
        }
        self.send_preface_settings();
        let Some(s) = self.streams.get(&stream_id) else {
            return Err(ConnError::NoSuchStream(stream_id));
        };
        if s.responded || s.local_closed {
            return Err(ConnError::AlreadyResponded(stream_id));
        }
        let body = body.filter(|b| !b.is_empty());
        // Three digits without a String; other values (not HTTP statuses) keep the decimal form.
        let digits = [
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        let long = (!(100..=999).contains(&status)).then(|| status.to_string());
        let status = long.as_ref().map_or(&digits[..], |l| l.as_bytes());
        // Names are almost always lowercase already: a lowercased copy only when one is not.
        let mut block = BytesMut::new();
        let status = std::iter::once((b":status".as_slice(), status));
        let upper = |n: &str| n.bytes().any(|c| c.is_ascii_uppercase());
        if headers.iter().any(|(n, _)| upper(n.as_ref())) {
            let lower: Vec<(String, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.as_ref()))
                .collect();
            let fields = lower.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
            self.encoder.encode(status.chain(fields), &mut block);
        } else {
            let fields = headers
                .iter()
                .map(|(n, v)| (n.as_ref().as_bytes(), v.as_ref().as_bytes()));
            self.encoder.encode(status.chain(fields), &mut block);
        }
        self.write_header_block(stream_id, block.freeze(), body.is_none());
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.responded = true;
            match body {
                Some(b) => {
                    s.pending = b;
                    s.pending_active = true;
                }
                None => s.local_closed = true,
            }
        }
        // Only a body can make DATA due: the windows did not change, and walking every open
        // stream on each answer cost as much as encoding it.
        if self
            .streams
            .get(&stream_id)
            .is_some_and(|s| s.pending_active)
        {
            self.flush_data();
        }
        self.after_local_close(stream_id);
        Ok(())
    }

    /// Sends RST_STREAM with `code` on a stream (a hook: the APNs layer or a fault rule decides).
    pub fn reset_stream(&mut self, stream_id: u32, code: ErrorCode) -> Result<(), ConnError> {
        if self.phase == Phase::Closed {
            return Err(ConnError::Closed);
        }
        if self.streams.remove(&stream_id).is_none() {
            return Err(ConnError::NoSuchStream(stream_id));
        }
        self.send_preface_settings();
        self.write(&Frame::RstStream { stream_id, code });
        self.closed.insert(stream_id, ClosedHow::ResetByUs);
        self.check_graceful_close();
        Ok(())
    }

    /// Sends GOAWAY. `last_stream_id` `None` means the highest stream we processed. With NO_ERROR
    /// streams up to the last id finish first; any other code drops them and closes at once.
    /// PROTOCOL.md 2.2: APNs puts `{"reason":"..."}` in `debug`.
    pub fn goaway(&mut self, code: ErrorCode, last_stream_id: Option<u32>, debug: Bytes) {
        if self.phase == Phase::Closed {
            return;
        }
        self.send_preface_settings();
        self.write_goaway(code, last_stream_id, debug);
    }

    /// Sends GOAWAY before our SETTINGS if they have not gone out yet (APNs does this for a bad
    /// certificate, PROTOCOL.md 2.2), then closes.
    pub fn goaway_before_settings(&mut self, code: ErrorCode, debug: Bytes) {
        if self.phase == Phase::Closed {
            return;
        }
        if !self.settings_sent {
            self.settings_suppressed = true;
        }
        self.write_goaway(code, Some(self.last_processed), debug);
        self.streams.clear();
        self.phase = Phase::Closed;
    }

    /// Advertises new SETTINGS; they are enforced once the client ACKs them (RFC 9113 6.5.3).
    pub fn update_settings(&mut self, update: SettingsUpdate) {
        if self.phase == Phase::Closed {
            return;
        }
        self.send_preface_settings();
        let base = self.pending_local.back().copied().unwrap_or(self.local);
        let mut next = base;
        let mut params = Vec::new();
        if let Some(v) = update.max_concurrent_streams {
            next.max_concurrent_streams = v;
            params.push((setting::MAX_CONCURRENT_STREAMS, v));
        }
        if let Some(v) = update.header_table_size {
            next.header_table_size = v;
            params.push((setting::HEADER_TABLE_SIZE, v));
        }
        if let Some(v) = update.initial_window_size {
            let v = v.min(MAX_WINDOW_SIZE);
            next.initial_window_size = v;
            params.push((setting::INITIAL_WINDOW_SIZE, v));
        }
        if let Some(v) = update.max_frame_size {
            let v = v.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
            next.max_frame_size = v;
            params.push((setting::MAX_FRAME_SIZE, v));
        }
        if let Some(v) = update.max_header_list_size {
            next.max_header_list_size = v;
            params.push((setting::MAX_HEADER_LIST_SIZE, v));
        }
        self.pending_local.push_back(next);
        self.write(&Frame::Settings { ack: false, params });
        self.arm_settings_timer();
    }

    /// Sends a PING (for tests of client PING handling).
    pub fn send_ping(&mut self, data: [u8; 8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.send_preface_settings();
        self.write(&Frame::Ping { ack: false, data });
    }

    /// Writes raw bytes as they are (a hook for scripted malformed output).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// The earliest instant at which [`Connection::on_timeout`] has work to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let idle = match (self.cfg.idle_timeout, self.last_activity) {
            (Some(d), Some(t)) if self.streams.is_empty() => t.checked_add(d),
            _ => None,
        };
        match (idle, self.settings_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers due at `now`: SETTINGS ACK timeout, idle timeout.
    pub fn on_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        if self.phase == Phase::Closed {
            return;
        }
        if self.last_activity.is_none() {
            self.last_activity = Some(now);
        }
        if self.settings_deadline.is_some_and(|d| now >= d) {
            self.settings_deadline = None;
            self.connection_error(ErrorCode::SETTINGS_TIMEOUT, "SETTINGS not acknowledged");
            return;
        }
        if let (Some(d), Some(t)) = (self.cfg.idle_timeout, self.last_activity) {
            if self.streams.is_empty() && t.checked_add(d).is_some_and(|x| now >= x) {
                self.send_preface_settings();
                let debug = self.cfg.idle_debug.clone();
                self.write_goaway(ErrorCode::NO_ERROR, None, debug);
                self.phase = Phase::Closed;
            }
        }
    }

    // ----- output helpers -----------------------------------------------------------------------

    fn write(&mut self, f: &Frame) {
        f.encode(&mut self.out);
    }

    fn arm_settings_timer(&mut self) {
        if let (Some(d), Some(now)) = (self.cfg.settings_ack_timeout, self.now) {
            if self.settings_deadline.is_none() {
                self.settings_deadline = now.checked_add(d);
            }
        }
    }

    fn write_goaway(&mut self, code: ErrorCode, last: Option<u32>, debug: Bytes) {
        let last = last.unwrap_or(self.last_processed);
        let last = self.goaway_sent.map_or(last, |prev| prev.min(last));
        self.write(&Frame::GoAway {
            last_stream_id: last,
            code,
            debug,
        });
        self.goaway_sent = Some(last);
        if code == ErrorCode::NO_ERROR {
            let dropped: Vec<u32> = self
                .streams
                .range(last.saturating_add(1)..)
                .map(|(k, _)| *k)
                .collect();
            for id in dropped {
                self.streams.remove(&id);
                self.closed.insert(id, ClosedHow::ResetByUs);
            }
            self.check_graceful_close();
        } else {
            self.streams.clear();
            self.phase = Phase::Closed;
        }
    }

    fn write_header_block(&mut self, stream_id: u32, block: Bytes, end_stream: bool) {
        let max = self.peer_max_frame_size as usize;
        let mut rest = block;
        let first = rest.split_to(rest.len().min(max));
        self.write(&Frame::Headers {
            stream_id,
            end_stream,
            end_headers: rest.is_empty(),
            priority: None,
            fragment: first,
            pad: None,
        });
        while !rest.is_empty() {
            let chunk = rest.split_to(rest.len().min(max));
            self.write(&Frame::Continuation {
                stream_id,
                end_headers: rest.is_empty(),
                fragment: chunk,
            });
        }
    }

    /// Sends queued response DATA as far as the windows allow, lowest stream first.
    fn flush_data(&mut self) {
        let max = self.peer_max_frame_size;
        let mut finished = Vec::new();
        let out = &mut self.out;
        for (&id, s) in self.streams.iter_mut() {
            if !s.pending_active {
                continue;
            }
            loop {
                let n = (s.pending.len().min(max as usize) as u32)
                    .min(s.send_window.available())
                    .min(self.conn_send.available());
                if n == 0 && !s.pending.is_empty() {
                    break;
                }
                let chunk = s.pending.split_to(n as usize);
                s.send_window.consume(n);
                self.conn_send.consume(n);
                let last = s.pending.is_empty();
                Frame::Data {
                    stream_id: id,
                    end_stream: last,
                    data: chunk,
                    pad: None,
                }
                .encode(out);
                if last {
                    s.pending_active = false;
                    s.local_closed = true;
                    finished.push(id);
                    break;
                }
            }
            if self.conn_send.available() == 0 {
                break;
            }
        }
        for id in finished {
            self.after_local_close(id);
        }
    }

    /// After END_STREAM went out: close the stream, or stop the unread request body (RFC 9113 8.1).
    fn after_local_close(&mut self, id: u32) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if !s.local_closed {
            return;
        }
        if s.remote_closed {
            self.streams.remove(&id);
            self.closed.insert(id, ClosedHow::Finished);
        } else {
            // A complete response before the complete request: ask the client to stop sending.
            self.streams.remove(&id);
            self.write(&Frame::RstStream {
                stream_id: id,
                code: ErrorCode::NO_ERROR,
            });
            self.closed.insert(id, ClosedHow::ResetByUs);
        }
        self.check_graceful_close();
    }

    fn check_graceful_close(&mut self) {
        if self.phase == Phase::Closed || !self.streams.is_empty() {
            return;
        }
        if self.goaway_sent.is_some() || self.goaway_received || self.peer_eof {
            self.phase = Phase::Closed;
        }
    }

    /// Counts a stream reset (the client's RST_STREAM, or one the client provoked with a stream
    /// error) and ends the connection with ENHANCE_YOUR_CALM when there are too many in the window:
    /// the rapid reset (CVE-2023-44487) and provoked reset (CVE-2025-8671) guards. `true` = ended.
    pub(super) fn count_reset(&mut self, now: Instant) -> bool {
        self.rst_times.push_back(now);
        while self
            .rst_times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.cfg.rst_window)
        {
            self.rst_times.pop_front();
        }
        if self.rst_times.len() > self.cfg.max_rst_per_window as usize {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "too many stream resets");
            return true;
        }
        false
    }

    /// Connection error (RFC 9113 5.4.1): GOAWAY with the code, then close.
    fn connection_error(&mut self, code: ErrorCode, message: &'static str) {
        if self.phase == Phase::Closed {
            return;
        }
        self.send_preface_settings();
        self.write_goaway(code, None, Bytes::from_static(message.as_bytes()));
        self.phase = Phase::Closed;
        self.inbuf.clear();
        self.partial = None;
        self.events
            .push_back(Event::ConnectionError { code, message });
    }

    /// Stream error (RFC 9113 5.4.2): RST_STREAM with the code; the stream is closed.
    fn stream_error(&mut self, stream_id: u32, code: ErrorCode, message: &'static str) {
        // Refusals cost us nothing, so only resets after real work count.
        if code != ErrorCode::REFUSED_STREAM {
            if let Some(now) = self.now {
                if self.count_reset(now) {
                    return;
                }
            }
        }
        self.streams.remove(&stream_id);
        self.write(&Frame::RstStream { stream_id, code });
        self.closed.insert(stream_id, ClosedHow::ResetByUs);
        self.events.push_back(Event::StreamError {
            stream_id,
            code,
            message,
        });
        self.check_graceful_close();
    }
}
