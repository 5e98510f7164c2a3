//! The input side of the connection: preface, frame dispatch, and the per-frame rules of RFC 9113.

use super::stream::{self, ClosedHow, Stream};
use super::{Connection, Event, LocalSettings, PartialBlock, Phase, Request};
use crate::http2::frame::{
    self, setting, ErrorCode, ErrorScope, Frame, FrameHeader, PrioritySpec, DEFAULT_MAX_FRAME_SIZE,
    HEADER_LEN, MAX_MAX_FRAME_SIZE, MAX_WINDOW_SIZE, PREFACE,
};
use crate::http2::hpack::HeaderField;
use bytes::{Bytes, BytesMut};
use std::time::Instant;

impl Connection {
    /// The largest frame we accept: the larger of the value in force and any pending one.
    pub(super) fn recv_max_frame_size(&self) -> u32 {
        self.pending_local
            .iter()
            .map(|s| s.max_frame_size)
            .fold(self.local.max_frame_size, u32::max)
    }

    pub(super) fn process(&mut self, now: Instant) {
        self.input_blocked = false;
        loop {
            if self.phase == Phase::Closed {
                self.inbuf.clear();
                return;
            }
            if self.out.len() > self.cfg.max_output_buffer {
                self.input_blocked = !self.inbuf.is_empty();
                return;
            }
            if let Phase::Preface(matched) = self.phase {
                let want = &PREFACE[matched..];
                let n = want.len().min(self.inbuf.len());
                if self.inbuf.get(..n) != want.get(..n) {
                    // An HTTP/1.x client on the HTTP/2 port: say so, the journal cites it.
                    let line = &self.inbuf[..self.inbuf.len().min(256)];
                    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
                    let message = if matched == 0 && line.windows(7).any(|w| w == b"HTTP/1.") {
                        "HTTP/1.x request line instead of the HTTP/2 connection preface"
                    } else {
                        "invalid connection preface"
                    };
                    self.connection_error(ErrorCode::PROTOCOL_ERROR, message);
                    return;
                }
                let _ = self.inbuf.split_to(n);
                if matched + n < PREFACE.len() {
                    self.phase = Phase::Preface(matched + n);
                    return;
                }
                self.phase = Phase::FirstSettings;
            }
            let Some(h) = FrameHeader::parse(&self.inbuf) else {
                return;
            };
            if let Err(e) = h.check_size(self.recv_max_frame_size()) {
                self.connection_error(e.code, e.message);
                return;
            }
            if self.phase == Phase::FirstSettings
                && (h.kind != frame::kind::SETTINGS || h.flags & frame::flag::ACK != 0)
            {
                self.connection_error(ErrorCode::PROTOCOL_ERROR, "first frame is not SETTINGS");
                return;
            }
            // RFC 9113 6.10: inside a header block only CONTINUATION of the same stream may come.
            if let Some(p) = &self.partial {
                if h.kind != frame::kind::CONTINUATION || h.stream_id != p.stream_id {
                    self.connection_error(
                        ErrorCode::PROTOCOL_ERROR,
                        "frame interleaved in a header block",
                    );
                    return;
                }
            }
            let total = HEADER_LEN + h.length as usize;
            if self.inbuf.len() < total {
                return;
            }
            let bytes = self.inbuf.split_to(total);
            let payload = bytes.get(HEADER_LEN..).unwrap_or_default();
            if self.phase == Phase::FirstSettings {
                self.phase = Phase::Open;
            }
            if self.cfg.report_frames {
                self.events.push_back(Event::FrameReceived {
                    kind: h.kind,
                    flags: h.flags,
                    stream_id: h.stream_id,
                    length: h.length,
                });
            }
            match Frame::parse(&h, payload) {
                Ok(f) => self.on_frame(f, now),
                Err(e) => match e.scope {
                    ErrorScope::Connection => self.connection_error(e.code, e.message),
                    ErrorScope::Stream(id) => self.stream_error(id, e.code, e.message),
                },
            }
        }
    }

    fn on_frame(&mut self, f: Frame, now: Instant) {
        match f {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                pad,
            } => {
                let flow = data.len() + pad.map_or(0, |p| usize::from(p) + 1);
                self.on_data(stream_id, end_stream, data, flow as u32, now);
            }
            Frame::Headers {
                stream_id,
                end_stream,
                end_headers,
                priority,
                fragment,
                ..
            } => self.on_headers(stream_id, end_stream, end_headers, priority, fragment, now),
            Frame::Continuation {
                stream_id,
                end_headers,
                fragment,
            } => self.on_continuation(stream_id, end_headers, fragment, now),
            Frame::Priority { stream_id, spec } => {
                self.events.push_back(Event::Priority { stream_id, spec });
                if spec.dependency == stream_id {
                    self.stream_error(
                        stream_id,
                        ErrorCode::PROTOCOL_ERROR,
                        "stream depends on itself",
                    );
                }
            }
            Frame::RstStream { stream_id, code } => self.on_rst(stream_id, code, now),
            Frame::Settings { ack, params } => self.on_settings(ack, params),
            Frame::PushPromise { .. } => {
                self.connection_error(ErrorCode::PROTOCOL_ERROR, "PUSH_PROMISE from a client")
            }
            Frame::Ping { ack, data } => {
                if !ack {
                    self.last_activity = Some(now);
                }
                self.events.push_back(Event::Ping { ack, data });
                if !ack && !self.ignore_ping {
                    self.write(&Frame::Ping { ack: true, data });
                }
            }
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => {
                self.goaway_received = true;
                self.events.push_back(Event::GoAwayReceived {
                    last_stream_id,
                    code,
                    debug,
                });
                self.check_graceful_close();
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => self.on_window_update(stream_id, increment),
            Frame::Unknown { .. } => {}
        }
    }

    /// Whether `id` is a client stream id we have not seen yet (idle, RFC 9113 5.1).
    fn is_idle(&self, id: u32) -> bool {
        id > self.highest_stream
    }

    fn on_data(&mut self, id: u32, end_stream: bool, data: Bytes, flow: u32, now: Instant) {
        if self.is_idle(id) {
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream");
            return;
        }
        if !self.conn_recv.consume(flow) {
            self.connection_error(ErrorCode::FLOW_CONTROL_ERROR, "connection window exceeded");
            return;
        }
        // Every received octet is given back to the connection window at once: the request body
        // limit, not the window, bounds memory.
        if flow > 0 {
            let _ = self.conn_recv.increase(flow);
            self.write(&Frame::WindowUpdate {
                stream_id: 0,
                increment: flow,
            });
        }
        let Some(s) = self.streams.get_mut(&id) else {
            if self.closed.get(id) != Some(ClosedHow::ResetByUs) {
                self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA on a closed stream");
            }
            return;
        };
        if s.remote_closed {
            self.stream_error(id, ErrorCode::STREAM_CLOSED, "DATA after END_STREAM");
            return;
        }
        if !s.recv_window.consume(flow) {
            self.stream_error(id, ErrorCode::FLOW_CONTROL_ERROR, "stream window exceeded");
            return;
        }
        s.data_len = s.data_len.saturating_add(data.len() as u64);
        if s.content_length.is_some_and(|cl| s.data_len > cl) {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "DATA exceeds content-length");
            return;
        }
        let mut deliver_early = false;
        if !s.discard_body {
            let room = self.cfg.max_request_body.saturating_sub(s.body.len());
            if data.len() > room {
                s.body
                    .extend_from_slice(data.get(..room).unwrap_or_default());
                s.body_truncated = true;
                s.discard_body = true;
                deliver_early = true;
            } else {
                s.body.extend_from_slice(&data);
            }
        }
        if !end_stream && flow > 0 {
            let _ = s.recv_window.increase(flow);
            self.write(&Frame::WindowUpdate {
                stream_id: id,
                increment: flow,
            });
        }
        if deliver_early {
            self.deliver(id, now);
        }
        if end_stream {
            self.finish_remote(id, now);
        }
    }

    fn on_headers(
        &mut self,
        id: u32,
        end_stream: bool,
        end_headers: bool,
        priority: Option<PrioritySpec>,
        fragment: Bytes,
        now: Instant,
    ) {
        if id % 2 == 0 {
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "even stream id from a client");
            return;
        }
        if !self.is_idle(id) && !self.streams.contains_key(&id) && self.closed.get(id).is_none() {
            // RFC 9113 5.1.1: a new stream id must be larger than every id used before.
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "stream id not increasing");
            return;
        }
        if fragment.len() > self.cfg.max_header_block {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "header block too large");
            return;
        }
        let block = PartialBlock {
            stream_id: id,
            end_stream,
            priority,
            buf: BytesMut::from(&fragment[..]),
            continuations: 0,
        };
        if end_headers {
            self.on_header_block(block, now);
        } else {
            self.partial = Some(block);
        }
    }

    fn on_continuation(&mut self, id: u32, end_headers: bool, fragment: Bytes, now: Instant) {
        let Some(mut p) = self.partial.take() else {
            self.connection_error(
                ErrorCode::PROTOCOL_ERROR,
                "CONTINUATION without a header block",
            );
            return;
        };
        if p.stream_id != id {
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "CONTINUATION on another stream");
            return;
        }
        p.continuations += 1;
        if p.continuations > self.cfg.max_continuation_frames {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
            return;
        }
        if p.buf.len().saturating_add(fragment.len()) > self.cfg.max_header_block {
            self.connection_error(ErrorCode::ENHANCE_YOUR_CALM, "header block too large");
            return;
        }
        p.buf.extend_from_slice(&fragment);
        if end_headers {
            self.on_header_block(p, now);
        } else {
            self.partial = Some(p);
        }
    }

    /// A complete header block: decode it (always, to keep HPACK in sync), then apply stream rules.
    fn on_header_block(&mut self, b: PartialBlock, now: Instant) {
        let id = b.stream_id;
        let max_list = self
            .pending_local
            .iter()
            .map(|s| s.max_header_list_size)
            .fold(self.local.max_header_list_size, u32::max) as usize;
        let decoded = self.decoder.decode(&b.buf, max_list);
        let fields = match decoded {
            Ok(f) => Some(f),
            Err(e) if e.is_connection_error() => {
                self.connection_error(
                    ErrorCode::COMPRESSION_ERROR,
                    "header block cannot be decoded",
                );
                return;
            }
            Err(_) => None,
        };
        self.last_activity = Some(now);
        let is_new = self.is_idle(id);
        if is_new {
            self.highest_stream = id;
        }
        if let Some(spec) = b.priority {
            self.events.push_back(Event::Priority {
                stream_id: id,
                spec,
            });
            if spec.dependency == id {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "stream depends on itself");
                return;
            }
        }
        if !is_new {
            self.on_known_stream_headers(id, b.end_stream, fields, now);
            return;
        }
        if self.goaway_sent.is_some_and(|last| id > last) {
            // RFC 9113 6.8: streams above our GOAWAY's last id are ignored.
            self.closed.insert(id, ClosedHow::ResetByUs);
            return;
        }
        if self.streams.len() >= self.local.max_concurrent_streams as usize {
            // RFC 9113 5.1.2; PROTOCOL.md 2.2 (APNs lowers the limit to 1 on token connections).
            self.stream_error(id, ErrorCode::REFUSED_STREAM, "concurrent stream limit");
            return;
        }
        let mut s = Stream::new(
            self.peer_initial_window,
            self.local.initial_window_size,
            now,
        );
        s.remote_closed = false;
        let Some(fields) = fields else {
            // RFC 9113 10.5.1: a too large header list may be answered with 431.
            self.streams.insert(id, Box::new(s));
            self.last_processed = id;
            self.events.push_back(Event::RequestRejected {
                stream_id: id,
                status: 431,
            });
            if b.end_stream {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.remote_closed = true;
                    s.delivered = true;
                }
            } else if let Some(s) = self.streams.get_mut(&id) {
                s.discard_body = true;
                s.delivered = true;
            }
            let _ = self.respond(id, 431, &[], None);
            return;
        };
        match stream::validate_request(&fields) {
            Ok(meta) => {
                s.content_length = meta.content_length;
            }
            Err(msg) => {
                self.stream_error(id, ErrorCode::PROTOCOL_ERROR, msg);
                return;
            }
        }
        s.headers = fields;
        self.streams.insert(id, Box::new(s));
        self.last_processed = id;
        if b.end_stream {
            self.finish_remote(id, now);
        }
    }

    /// HEADERS on a stream that is not idle: trailers, or an error depending on its state.
    fn on_known_stream_headers(
        &mut self,
        id: u32,
        end_stream: bool,
        fields: Option<Vec<HeaderField>>,
        now: Instant,
    ) {
        let Some(s) = self.streams.get_mut(&id) else {
            match self.closed.get(id) {
                Some(ClosedHow::ResetByUs) => {}
                _ => self.connection_error(ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream"),
            }
            return;
        };
        if s.remote_closed {
            self.stream_error(id, ErrorCode::STREAM_CLOSED, "HEADERS after END_STREAM");
            return;
        }
        if !end_stream {
            // RFC 9113 8.1: a second HEADERS is a trailer section and must end the stream.
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "trailers without END_STREAM");
            return;
        }
        let Some(fields) = fields else {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "trailer list too large");
            return;
        };
        if let Err(msg) = stream::validate_trailers(&fields) {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, msg);
            return;
        }
        s.trailers = fields;
        self.finish_remote(id, now);
    }

    /// END_STREAM received: check content-length, hand out the request.
    fn finish_remote(&mut self, id: u32, now: Instant) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.remote_closed = true;
        if !s.body_truncated && s.content_length.is_some_and(|cl| cl != s.data_len) {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "content-length mismatch");
            return;
        }
        self.deliver(id, now);
        self.after_local_close(id);
    }

    fn deliver(&mut self, id: u32, _now: Instant) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.delivered {
            return;
        }
        s.delivered = true;
        let req = Request {
            stream_id: id,
            headers: std::mem::take(&mut s.headers),
            trailers: std::mem::take(&mut s.trailers),
            body: std::mem::take(&mut s.body).freeze(),
            body_truncated: s.body_truncated,
            received_at: s.received_at,
        };
        self.events.push_back(Event::Request(req));
    }

    fn on_rst(&mut self, id: u32, code: ErrorCode, now: Instant) {
        if self.is_idle(id) {
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on an idle stream");
            return;
        }
        // Rapid reset guard (CVE-2023-44487): too many resets of streams still at work end the
        // connection. A reset of a stream already answered cancels nothing (curl sends one
        // after every transfer of a reused connection), so it is not counted.
        if self.streams.contains_key(&id) && self.count_reset(now) {
            return;
        }
        if self.streams.remove(&id).is_some() {
            self.closed.insert(id, ClosedHow::ResetByPeer);
            self.events.push_back(Event::StreamReset {
                stream_id: id,
                code,
            });
            self.check_graceful_close();
        }
    }

    fn on_settings(&mut self, ack: bool, params: Vec<(u16, u32)>) {
        if ack {
            if let Some(next) = self.pending_local.pop_front() {
                self.apply_local(next);
            }
            self.settings_deadline = None;
            if !self.pending_local.is_empty() {
                self.arm_settings_timer();
            }
            self.events.push_back(Event::SettingsAcked);
            return;
        }
        for &(id, v) in &params {
            match id {
                setting::HEADER_TABLE_SIZE => self.encoder.set_max_table_size(v as usize),
                setting::ENABLE_PUSH if v > 1 => {
                    self.connection_error(
                        ErrorCode::PROTOCOL_ERROR,
                        "invalid SETTINGS_ENABLE_PUSH",
                    );
                    return;
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if v > MAX_WINDOW_SIZE {
                        self.connection_error(
                            ErrorCode::FLOW_CONTROL_ERROR,
                            "SETTINGS_INITIAL_WINDOW_SIZE too large",
                        );
                        return;
                    }
                    let old = self.peer_initial_window;
                    self.peer_initial_window = v;
                    for s in self.streams.values_mut() {
                        if s.send_window.adjust(old, v).is_err() {
                            self.connection_error(
                                ErrorCode::FLOW_CONTROL_ERROR,
                                "stream window overflow",
                            );
                            return;
                        }
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&v) {
                        self.connection_error(
                            ErrorCode::PROTOCOL_ERROR,
                            "invalid SETTINGS_MAX_FRAME_SIZE",
                        );
                        return;
                    }
                    self.peer_max_frame_size = v;
                }
                _ => {}
            }
        }
        self.write(&Frame::Settings {
            ack: true,
            params: Vec::new(),
        });
        self.events.push_back(Event::ClientSettings(params));
        self.flush_data();
    }

    /// Puts acknowledged SETTINGS values in force (RFC 9113 6.5.3).
    fn apply_local(&mut self, next: LocalSettings) {
        let old_window = self.local.initial_window_size;
        if next.initial_window_size != old_window {
            for s in self.streams.values_mut() {
                let _ = s.recv_window.adjust(old_window, next.initial_window_size);
            }
        }
        self.decoder
            .set_max_table_size(next.header_table_size as usize);
        self.local = next;
    }

    fn on_window_update(&mut self, id: u32, inc: u32) {
        if id == 0 {
            if inc == 0 {
                self.connection_error(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
                return;
            }
            if self.conn_send.increase(inc).is_err() {
                self.connection_error(ErrorCode::FLOW_CONTROL_ERROR, "connection window overflow");
                return;
            }
            self.flush_data();
            return;
        }
        if self.is_idle(id) {
            self.connection_error(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
            return;
        }
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if inc == 0 {
            self.stream_error(id, ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
            return;
        }
        if s.send_window.increase(inc).is_err() {
            self.stream_error(id, ErrorCode::FLOW_CONTROL_ERROR, "stream window overflow");
            return;
        }
        self.flush_data();
    }
}
