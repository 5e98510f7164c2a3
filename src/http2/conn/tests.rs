//! Byte-level tests of the connection state machine, with a small DSL that builds client frames.

use super::*;
use crate::http2::frame::{decode, flag, kind, setting, MAX_MAX_FRAME_SIZE, PREFACE};
use crate::http2::hpack::Representation;
use proptest::prelude::*;
use std::time::Duration;

/// A scripted client: builds frames (header blocks through a real HPACK encoder).
struct Client {
    enc: Encoder,
}

impl Client {
    fn new() -> Self {
        Client {
            enc: Encoder::new(),
        }
    }

    fn preface(params: &[(u16, u32)]) -> Vec<u8> {
        let mut v = PREFACE.to_vec();
        v.extend_from_slice(&settings(params));
        v
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Bytes {
        let owned: Vec<(Bytes, Bytes, Representation)> = fields
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::copy_from_slice(n.as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                    // Indexed when the table has the field, else a literal that gets indexed.
                    Representation::Indexed,
                )
            })
            .collect();
        let mut b = BytesMut::new();
        self.enc.encode_with(&owned, &mut b);
        b.freeze()
    }

    fn headers(&mut self, id: u32, fields: &[(&str, &str)], end_stream: bool) -> Bytes {
        let fragment = self.block(fields);
        Frame::Headers {
            stream_id: id,
            end_stream,
            end_headers: true,
            priority: None,
            fragment,
            pad: None,
        }
        .to_bytes()
    }

    fn post(&mut self, id: u32, body: &[u8]) -> Vec<u8> {
        let mut v = self.headers(id, &post_fields(), body.is_empty()).to_vec();
        if !body.is_empty() {
            v.extend_from_slice(&data(id, body, true));
        }
        v
    }
}

fn post_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "POST"),
        (":scheme", "https"),
        (
            ":path",
            "/3/device/00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0",
        ),
        (":authority", "api.push.apple.com"),
        ("apns-topic", "com.example.app"),
    ]
}

fn settings(params: &[(u16, u32)]) -> Bytes {
    Frame::Settings {
        ack: false,
        params: params.to_vec(),
    }
    .to_bytes()
}

fn settings_ack() -> Bytes {
    Frame::Settings {
        ack: true,
        params: vec![],
    }
    .to_bytes()
}

fn data(id: u32, d: &[u8], end_stream: bool) -> Bytes {
    Frame::Data {
        stream_id: id,
        end_stream,
        data: Bytes::copy_from_slice(d),
        pad: None,
    }
    .to_bytes()
}

fn rst(id: u32, code: ErrorCode) -> Bytes {
    Frame::RstStream {
        stream_id: id,
        code,
    }
    .to_bytes()
}

fn window_update(id: u32, increment: u32) -> Bytes {
    Frame::WindowUpdate {
        stream_id: id,
        increment,
    }
    .to_bytes()
}

fn ping(data: [u8; 8]) -> Bytes {
    Frame::Ping { ack: false, data }.to_bytes()
}

/// Every frame the server wrote since the last call.
fn frames(c: &mut Connection) -> Vec<Frame> {
    let mut out = Vec::new();
    let Some(b) = c.take_output() else {
        return out;
    };
    let mut rest = &b[..];
    while !rest.is_empty() {
        let (f, n) = decode(rest, MAX_MAX_FRAME_SIZE).unwrap().unwrap();
        out.push(f);
        rest = &rest[n..];
    }
    out
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn requests(c: &mut Connection) -> Vec<Request> {
    events(c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Request(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn goaway_code(fs: &[Frame]) -> Option<ErrorCode> {
    fs.iter().find_map(|f| match f {
        Frame::GoAway { code, .. } => Some(*code),
        _ => None,
    })
}

fn rst_of(fs: &[Frame], id: u32) -> Option<ErrorCode> {
    fs.iter().find_map(|f| match f {
        Frame::RstStream { stream_id, code } if *stream_id == id => Some(*code),
        _ => None,
    })
}

/// A connection past the handshake: prefaces exchanged, our SETTINGS acknowledged, output drained.
fn open_with(cfg: ConnConfig, client_settings: &[(u16, u32)]) -> (Connection, Client, Instant) {
    let now = Instant::now();
    let mut c = Connection::new(cfg);
    c.recv(&Client::preface(client_settings), now);
    c.recv(&settings_ack(), now);
    let _ = frames(&mut c);
    let _ = events(&mut c);
    (c, Client::new(), now)
}

fn open() -> (Connection, Client, Instant) {
    open_with(ConnConfig::default(), &[])
}

fn decode_block(fs: &[Frame]) -> Vec<(String, String)> {
    let mut dec = Decoder::new(4096);
    let mut out = Vec::new();
    for f in fs {
        if let Frame::Headers { fragment, .. } = f {
            for h in dec.decode(fragment, 1 << 20).unwrap() {
                out.push((
                    String::from_utf8_lossy(&h.name).into_owned(),
                    String::from_utf8_lossy(&h.value).into_owned(),
                ));
            }
        }
    }
    out
}

#[test]
fn handshake_sends_settings_first_and_acks() {
    let now = Instant::now();
    let mut c = Connection::new(ConnConfig::default());
    c.recv(
        &Client::preface(&[(setting::INITIAL_WINDOW_SIZE, 1000)]),
        now,
    );
    let fs = frames(&mut c);
    assert_eq!(
        fs[0],
        Frame::Settings {
            ack: false,
            params: vec![
                (setting::MAX_CONCURRENT_STREAMS, 1000),
                (setting::HEADER_TABLE_SIZE, 4096),
                (setting::INITIAL_WINDOW_SIZE, 65_535),
                (setting::MAX_FRAME_SIZE, 16_384),
                (setting::MAX_HEADER_LIST_SIZE, 8000),
            ]
        }
    );
    assert_eq!(
        fs[1],
        Frame::Settings {
            ack: true,
            params: vec![]
        }
    );
    assert_eq!(
        events(&mut c),
        vec![Event::ClientSettings(vec![(
            setting::INITIAL_WINDOW_SIZE,
            1000
        )])]
    );
    c.recv(&settings_ack(), now);
    assert_eq!(events(&mut c), vec![Event::SettingsAcked]);
    assert_eq!(c.max_concurrent_streams_in_force(), 1000);
}

#[test]
fn invalid_preface_is_a_connection_error() {
    let now = Instant::now();
    let mut c = Connection::new(ConnConfig::default());
    c.recv(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", now);
    let fs = frames(&mut c);
    assert_eq!(goaway_code(&fs), Some(ErrorCode::PROTOCOL_ERROR));
    assert!(c.wants_close());
    let debug = |fs: &[Frame]| -> String {
        fs.iter()
            .filter_map(|f| match f {
                Frame::GoAway { debug, .. } => Some(String::from_utf8_lossy(debug).into_owned()),
                _ => None,
            })
            .collect()
    };
    assert!(
        debug(&fs).contains("HTTP/1.x request line"),
        "{}",
        debug(&fs)
    );
    let mut c = Connection::new(ConnConfig::default());
    c.recv(b"\x16\x03\x01 not http at all\r\n", now);
    assert_eq!(debug(&frames(&mut c)), "invalid connection preface");
}

#[test]
fn first_frame_must_be_settings() {
    let now = Instant::now();
    let mut c = Connection::new(ConnConfig::default());
    let mut v = PREFACE.to_vec();
    v.extend_from_slice(&ping([0; 8]));
    c.recv(&v, now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
}

#[test]
fn post_then_success_is_a_single_headers_frame() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b"{\"aps\":{}}"), now);
    let reqs = requests(&mut c);
    assert_eq!(reqs.len(), 1);
    assert_eq!(&reqs[0].body[..], b"{\"aps\":{}}");
    assert_eq!(reqs[0].method(), Some(&b"POST"[..]));
    assert_eq!(
        reqs[0].headers[4].representation,
        Representation::IncrementalIndexing
    );
    let _ = frames(&mut c);
    c.respond(1, 200, &[("apns-id", "abc")], None).unwrap();
    let fs = frames(&mut c);
    // PROTOCOL.md 2.6: a single HEADERS frame with END_STREAM.
    assert_eq!(fs.len(), 1);
    assert!(matches!(
        fs[0],
        Frame::Headers {
            stream_id: 1,
            end_stream: true,
            end_headers: true,
            ..
        }
    ));
    assert_eq!(
        decode_block(&fs),
        vec![
            (":status".into(), "200".into()),
            ("apns-id".into(), "abc".into())
        ]
    );
    assert_eq!(c.active_streams(), 0);
    assert_eq!(
        c.respond(1, 200, &[], None),
        Err(ConnError::NoSuchStream(1))
    );
}

#[test]
fn error_response_is_headers_then_data() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b"{}"), now);
    let _ = (requests(&mut c), frames(&mut c));
    let body = Bytes::from_static(b"{\"reason\":\"BadDeviceToken\"}");
    c.respond(
        1,
        400,
        &[("Content-Type", "application/json")],
        Some(body.clone()),
    )
    .unwrap();
    let fs = frames(&mut c);
    assert_eq!(fs.len(), 2);
    assert!(matches!(
        fs[0],
        Frame::Headers {
            end_stream: false,
            ..
        }
    ));
    assert_eq!(
        fs[1],
        Frame::Data {
            stream_id: 1,
            end_stream: true,
            data: body,
            pad: None
        }
    );
    assert_eq!(decode_block(&fs)[1].0, "content-type");
}

#[test]
fn goaway_before_settings_and_debug_data() {
    let mut c = Connection::new(ConnConfig::default());
    c.goaway_before_settings(
        ErrorCode::NO_ERROR,
        Bytes::from_static(b"{\"reason\":\"BadCertificateEnvironment\"}"),
    );
    let fs = frames(&mut c);
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!(
        fs[0],
        Frame::GoAway {
            last_stream_id: 0,
            code: ErrorCode::NO_ERROR,
            debug: Bytes::from_static(b"{\"reason\":\"BadCertificateEnvironment\"}")
        }
    );
    assert!(c.wants_close());
    c.recv(&Client::preface(&[]), Instant::now());
    assert!(frames(&mut c).is_empty());
}

#[test]
fn graceful_goaway_with_chosen_last_stream() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b"x"), now);
    c.recv(&cl.post(3, b"x"), now);
    let _ = (requests(&mut c), frames(&mut c));
    c.goaway(
        ErrorCode::NO_ERROR,
        Some(1),
        Bytes::from_static(b"{\"reason\":\"Shutdown\"}"),
    );
    let fs = frames(&mut c);
    assert!(matches!(
        fs[0],
        Frame::GoAway {
            last_stream_id: 1,
            ..
        }
    ));
    // Stream 3 is beyond the last id: dropped. Stream 1 still finishes.
    assert!(!c.wants_close());
    assert_eq!(
        c.respond(3, 200, &[], None),
        Err(ConnError::NoSuchStream(3))
    );
    c.respond(1, 200, &[], None).unwrap();
    assert!(c.wants_close());
    // Auto last-stream-id is the highest processed stream.
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(5, b"x"), now);
    let _ = frames(&mut c);
    c.goaway(ErrorCode::ENHANCE_YOUR_CALM, None, Bytes::new());
    assert!(matches!(
        frames(&mut c)[0],
        Frame::GoAway {
            last_stream_id: 5,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            ..
        }
    ));
    assert!(c.wants_close());
}

#[test]
fn max_concurrent_streams_enforced_after_ack() {
    let (mut c, mut cl, now) = open();
    // PROTOCOL.md 2.2: drop to 1 on a live connection.
    c.update_settings(SettingsUpdate {
        max_concurrent_streams: Some(1),
        ..Default::default()
    });
    let fs = frames(&mut c);
    assert_eq!(
        fs,
        vec![Frame::Settings {
            ack: false,
            params: vec![(setting::MAX_CONCURRENT_STREAMS, 1)]
        }]
    );
    // Not ACKed yet: two streams are still allowed.
    c.recv(&cl.post(1, b"a"), now);
    c.recv(&cl.post(3, b"b"), now);
    assert_eq!(requests(&mut c).len(), 2);
    c.recv(&settings_ack(), now);
    assert_eq!(c.max_concurrent_streams_in_force(), 1);
    let _ = (frames(&mut c), events(&mut c));
    c.recv(&cl.post(5, b"c"), now);
    assert_eq!(rst_of(&frames(&mut c), 5), Some(ErrorCode::REFUSED_STREAM));
    c.respond(1, 200, &[], None).unwrap();
    c.respond(3, 200, &[], None).unwrap();
    let _ = (frames(&mut c), events(&mut c));
    c.recv(&cl.post(7, b"d"), now);
    assert_eq!(requests(&mut c).len(), 1);
    c.recv(&cl.post(9, b"e"), now);
    assert_eq!(rst_of(&frames(&mut c), 9), Some(ErrorCode::REFUSED_STREAM));
}

#[test]
fn flow_control_respects_client_window() {
    let (mut c, mut cl, now) =
        open_with(ConnConfig::default(), &[(setting::INITIAL_WINDOW_SIZE, 1)]);
    c.recv(&cl.post(1, b""), now);
    let _ = (requests(&mut c), frames(&mut c));
    c.respond(1, 200, &[], Some(Bytes::from_static(b"hello")))
        .unwrap();
    let fs = frames(&mut c);
    assert_eq!(fs.len(), 2);
    assert_eq!(
        fs[1],
        Frame::Data {
            stream_id: 1,
            end_stream: false,
            data: Bytes::from_static(b"h"),
            pad: None
        }
    );
    // Shrinking the window makes it negative: nothing may be sent until it is positive again.
    c.recv(&settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]), now);
    let _ = frames(&mut c);
    c.recv(&window_update(1, 1), now);
    assert!(frames(&mut c).is_empty());
    c.recv(&window_update(1, 10), now);
    let fs = frames(&mut c);
    assert_eq!(
        fs,
        vec![Frame::Data {
            stream_id: 1,
            end_stream: true,
            data: Bytes::from_static(b"ello"),
            pad: None
        }]
    );
    assert_eq!(c.active_streams(), 0);
}

#[test]
fn connection_window_limits_all_streams() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b""), now);
    c.recv(&cl.post(3, b""), now);
    let _ = (requests(&mut c), frames(&mut c));
    let big = Bytes::from(vec![7u8; 70_000]);
    c.respond(1, 200, &[], Some(big.clone())).unwrap();
    c.respond(3, 200, &[], Some(big)).unwrap();
    let sent: usize = frames(&mut c)
        .iter()
        .map(|f| match f {
            Frame::Data { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(sent, 65_535);
    c.recv(&window_update(0, 100), now);
    let fs = frames(&mut c);
    assert_eq!(fs.len(), 1);
    // Stream 1 used up its own window; the connection credit goes to stream 3.
    assert!(matches!(&fs[0], Frame::Data { stream_id: 3, data, .. } if data.len() == 100));
}

#[test]
fn window_overflow_errors() {
    let (mut c, _cl, now) = open();
    c.recv(&window_update(0, MAX_WINDOW_SIZE), now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
    let (mut c, mut cl, now) = open();
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&window_update(1, MAX_WINDOW_SIZE), now);
    assert_eq!(
        rst_of(&frames(&mut c), 1),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
    assert!(!c.wants_close());
    let (mut c, _cl, now) = open();
    c.recv(
        &settings(&[(setting::INITIAL_WINDOW_SIZE, MAX_WINDOW_SIZE + 1)]),
        now,
    );
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
}

#[test]
fn received_data_is_given_back_and_overrun_is_an_error() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&data(1, &[1; 100], false), now);
    let fs = frames(&mut c);
    assert!(fs.contains(&Frame::WindowUpdate {
        stream_id: 0,
        increment: 100
    }));
    assert!(fs.contains(&Frame::WindowUpdate {
        stream_id: 1,
        increment: 100
    }));
    // A client that ignores our (small) stream window: FLOW_CONTROL_ERROR on the stream.
    let cfg = ConnConfig {
        initial_window_size: 10,
        ..ConnConfig::default()
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&data(1, &[0; 11], false), now);
    assert_eq!(
        rst_of(&frames(&mut c), 1),
        Some(ErrorCode::FLOW_CONTROL_ERROR)
    );
    assert!(!c.wants_close());
}

#[test]
fn continuation_sequencing() {
    let (mut c, mut cl, now) = open();
    let block = cl.block(&post_fields());
    let (a, b) = block.split_at(5);
    let mut v = Frame::Headers {
        stream_id: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        fragment: Bytes::copy_from_slice(a),
        pad: None,
    }
    .to_vec();
    v.extend_from_slice(
        &Frame::Continuation {
            stream_id: 1,
            end_headers: true,
            fragment: Bytes::copy_from_slice(b),
        }
        .to_bytes(),
    );
    c.recv(&v, now);
    assert_eq!(requests(&mut c).len(), 1);
    // Anything between HEADERS and CONTINUATION is a PROTOCOL_ERROR, even an unknown frame.
    let (mut c, mut cl, now) = open();
    let block = cl.block(&post_fields());
    let mut v = Frame::Headers {
        stream_id: 1,
        end_stream: true,
        end_headers: false,
        priority: None,
        fragment: block,
        pad: None,
    }
    .to_vec();
    v.extend_from_slice(
        &Frame::Unknown {
            kind: 0x42,
            flags: 0,
            stream_id: 0,
            payload: Bytes::new(),
        }
        .to_bytes(),
    );
    c.recv(&v, now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
    // CONTINUATION without a header block.
    let (mut c, _cl, now) = open();
    c.recv(
        &Frame::Continuation {
            stream_id: 1,
            end_headers: true,
            fragment: Bytes::new(),
        }
        .to_bytes(),
        now,
    );
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
}

impl Frame {
    fn to_vec(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }
}

#[test]
fn continuation_flood_is_cut() {
    let (mut c, mut cl, now) = open();
    let block = cl.block(&post_fields());
    c.recv(
        &Frame::Headers {
            stream_id: 1,
            end_stream: true,
            end_headers: false,
            priority: None,
            fragment: block,
            pad: None,
        }
        .to_bytes(),
        now,
    );
    let empty = Frame::Continuation {
        stream_id: 1,
        end_headers: false,
        fragment: Bytes::new(),
    }
    .to_bytes();
    for _ in 0..1000 {
        c.recv(&empty, now);
    }
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
    assert!(c.wants_close());
    // Large fragments hit the byte bound first.
    let (mut c, mut cl, now) = open();
    let block = cl.block(&post_fields());
    c.recv(
        &Frame::Headers {
            stream_id: 1,
            end_stream: true,
            end_headers: false,
            priority: None,
            fragment: block,
            pad: None,
        }
        .to_bytes(),
        now,
    );
    let big = Frame::Continuation {
        stream_id: 1,
        end_headers: false,
        fragment: Bytes::from(vec![0x40; 16_000]),
    }
    .to_bytes();
    for _ in 0..10 {
        c.recv(&big, now);
    }
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn oversized_header_list_gets_431_and_hpack_stays_in_sync() {
    let (mut c, mut cl, now) = open();
    let long = "x".repeat(9000);
    let mut fields = post_fields();
    fields.push(("x-big", &long));
    c.recv(&cl.headers(1, &fields, true), now);
    assert!(events(&mut c).contains(&Event::RequestRejected {
        stream_id: 1,
        status: 431
    }));
    let fs = frames(&mut c);
    assert_eq!(decode_block(&fs), vec![(":status".into(), "431".into())]);
    assert!(!c.wants_close());
    // The next request reuses the dynamic table entries of the rejected block.
    c.recv(&cl.post(3, b"ok"), now);
    let r = requests(&mut c);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].headers[0].representation, Representation::Indexed);
}

#[test]
fn rapid_reset_guard() {
    let cfg = ConnConfig {
        max_rst_per_window: 10,
        ..ConnConfig::default()
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    let mut id = 1;
    for _ in 0..10 {
        c.recv(&cl.headers(id, &post_fields(), false), now);
        c.recv(&rst(id, ErrorCode::CANCEL), now);
        id += 2;
    }
    assert!(!c.wants_close());
    c.recv(&cl.headers(id, &post_fields(), false), now);
    c.recv(&rst(id, ErrorCode::CANCEL), now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
    // Spread over time, the same number is fine.
    let cfg = ConnConfig {
        max_rst_per_window: 10,
        rst_window: Duration::from_secs(1),
        ..ConnConfig::default()
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    for i in 0..30u32 {
        let t = now + Duration::from_millis(200 * u64::from(i));
        let id = 1 + 2 * i;
        c.recv(&cl.headers(id, &post_fields(), false), t);
        c.recv(&rst(id, ErrorCode::CANCEL), t);
    }
    assert!(!c.wants_close());
}

#[test]
fn resets_of_answered_streams_do_not_count_as_rapid_reset() {
    // curl resets every stream of a reused connection after its response: nothing is cancelled.
    let cfg = ConnConfig {
        max_rst_per_window: 10,
        ..ConnConfig::default()
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    for i in 0..50u32 {
        let id = 1 + 2 * i;
        c.recv(&cl.headers(id, &post_fields(), true), now);
        c.respond(id, 200, &[], None).unwrap();
        c.recv(&rst(id, ErrorCode::NO_ERROR), now);
    }
    assert!(!c.wants_close());
    assert_ne!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
}

#[test]
fn peer_that_never_reads_is_bounded() {
    let cfg = ConnConfig {
        max_output_buffer: 4096,
        max_input_buffer: 8192,
        ..ConnConfig::default()
    };
    let (mut c, _cl, now) = open_with(cfg, &[]);
    let p = ping([1; 8]);
    let mut closed_at = None;
    for i in 0..10_000 {
        if c.wants_read() {
            c.recv(&p, now);
        } else {
            // The driver stops reading here; a buggy driver that keeps feeding gets cut off.
            c.recv(&p, now);
        }
        assert!(c.output_len() <= 4096 + 64);
        if c.wants_close() {
            closed_at = Some(i);
            break;
        }
    }
    assert!(c.input_blocked() || c.wants_close());
    assert!(closed_at.is_some());
    let fs = frames(&mut c);
    assert_eq!(goaway_code(&fs), Some(ErrorCode::ENHANCE_YOUR_CALM));
}

#[test]
fn blocked_input_resumes_when_output_drains() {
    let cfg = ConnConfig {
        max_output_buffer: 100,
        ..ConnConfig::default()
    };
    let (mut c, _cl, now) = open_with(cfg, &[]);
    let mut v = Vec::new();
    for i in 0..20u8 {
        v.extend_from_slice(&ping([i; 8]));
    }
    c.recv(&v, now);
    assert!(!c.wants_read());
    let mut acks = 0;
    for _ in 0..20 {
        acks += frames(&mut c)
            .iter()
            .filter(|f| matches!(f, Frame::Ping { ack: true, .. }))
            .count();
        c.recv(&[], now);
    }
    assert_eq!(acks, 20);
    assert!(c.wants_read());
}

#[test]
fn zero_window_stall_keeps_data_queued() {
    let (mut c, mut cl, now) =
        open_with(ConnConfig::default(), &[(setting::INITIAL_WINDOW_SIZE, 0)]);
    c.recv(&cl.post(1, b""), now);
    let _ = (requests(&mut c), frames(&mut c));
    c.respond(1, 400, &[], Some(Bytes::from(vec![b'x'; 10_000])))
        .unwrap();
    let fs = frames(&mut c);
    assert_eq!(fs.len(), 1, "only HEADERS goes out");
    for _ in 0..100 {
        c.recv(&ping([0; 8]), now);
    }
    assert!(c.output_len() < 2000);
    assert_eq!(c.active_streams(), 1);
    // The client gives up on the stream: the queued body is dropped with it.
    c.recv(&rst(1, ErrorCode::CANCEL), now);
    assert_eq!(c.active_streams(), 0);
}

#[test]
fn long_body_is_cut_and_delivered_early() {
    let cfg = ConnConfig {
        max_request_body: 10,
        ..ConnConfig::default()
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&data(1, &[b'a'; 8], false), now);
    assert!(requests(&mut c).is_empty());
    c.recv(&data(1, &[b'b'; 8], false), now);
    let r = requests(&mut c);
    assert_eq!(r.len(), 1);
    assert!(r[0].body_truncated);
    assert_eq!(&r[0].body[..], b"aaaaaaaabb");
    let _ = frames(&mut c);
    c.respond(
        1,
        413,
        &[],
        Some(Bytes::from_static(b"{\"reason\":\"PayloadTooLarge\"}")),
    )
    .unwrap();
    let fs = frames(&mut c);
    // RFC 9113 8.1: complete response first, then RST_STREAM(NO_ERROR) to stop the upload.
    assert_eq!(rst_of(&fs, 1), Some(ErrorCode::NO_ERROR));
    // Late DATA on the reset stream is ignored.
    c.recv(&data(1, &[b'c'; 8], true), now);
    let fs = frames(&mut c);
    assert_eq!(rst_of(&fs, 1), None);
    assert!(!c.wants_close());
}

#[test]
fn malformed_requests_are_stream_errors() {
    let cases: Vec<Vec<(&str, &str)>> = vec![
        {
            let mut f = post_fields();
            f.push(("Apns-Topic", "x"));
            f
        },
        {
            let mut f = post_fields();
            f.push(("connection", "close"));
            f
        },
        post_fields().into_iter().skip(1).collect(),
    ];
    for fields in cases {
        let (mut c, mut cl, now) = open();
        c.recv(&cl.headers(1, &fields, true), now);
        assert_eq!(rst_of(&frames(&mut c), 1), Some(ErrorCode::PROTOCOL_ERROR));
        assert!(requests(&mut c).is_empty());
        assert!(!c.wants_close());
    }
    // content-length that does not match the DATA.
    let (mut c, mut cl, now) = open();
    let mut f = post_fields();
    f.push(("content-length", "5"));
    c.recv(&cl.headers(1, &f, false), now);
    c.recv(&data(1, b"abc", true), now);
    assert_eq!(rst_of(&frames(&mut c), 1), Some(ErrorCode::PROTOCOL_ERROR));
    assert!(requests(&mut c).is_empty());
}

#[test]
fn trailers_complete_the_request() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&data(1, b"{}", false), now);
    c.recv(&cl.headers(1, &[("x-trailer", "ok")], true), now);
    let r = requests(&mut c);
    assert_eq!(r.len(), 1);
    assert_eq!(&r[0].trailers[0].name[..], b"x-trailer");
    // Trailers without END_STREAM are malformed.
    let (mut c, mut cl, now) = open();
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&cl.headers(1, &[("x-trailer", "ok")], false), now);
    assert_eq!(rst_of(&frames(&mut c), 1), Some(ErrorCode::PROTOCOL_ERROR));
}

#[test]
fn priority_is_reported_and_self_dependency_refused() {
    let (mut c, _cl, now) = open();
    let spec = PrioritySpec {
        exclusive: true,
        dependency: 0,
        weight: 255,
    };
    c.recv(&Frame::Priority { stream_id: 3, spec }.to_bytes(), now);
    assert_eq!(events(&mut c), vec![Event::Priority { stream_id: 3, spec }]);
    assert!(frames(&mut c).is_empty());
    c.recv(
        &Frame::Priority {
            stream_id: 5,
            spec: PrioritySpec {
                dependency: 5,
                ..spec
            },
        }
        .to_bytes(),
        now,
    );
    assert_eq!(rst_of(&frames(&mut c), 5), Some(ErrorCode::PROTOCOL_ERROR));
}

#[test]
fn ping_answered_unless_ignored() {
    let (mut c, _cl, now) = open();
    c.recv(&ping(*b"12345678"), now);
    assert_eq!(
        frames(&mut c),
        vec![Frame::Ping {
            ack: true,
            data: *b"12345678"
        }]
    );
    c.set_ignore_ping(true);
    c.recv(&ping(*b"12345678"), now);
    assert!(frames(&mut c).is_empty());
    assert_eq!(events(&mut c).len(), 2);
}

#[test]
fn settings_timeout_and_idle_timeout() {
    let cfg = ConnConfig {
        settings_ack_timeout: Some(Duration::from_secs(5)),
        ..ConnConfig::default()
    };
    let now = Instant::now();
    let mut c = Connection::new(cfg);
    c.recv(&Client::preface(&[]), now);
    let t = c.next_timeout().unwrap();
    assert_eq!(t, now + Duration::from_secs(5));
    c.on_timeout(t);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::SETTINGS_TIMEOUT)
    );
    let cfg = ConnConfig {
        idle_timeout: Some(Duration::from_secs(60)),
        ..ConnConfig::default()
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    c.recv(&cl.post(1, b"x"), now);
    let _ = frames(&mut c);
    assert_eq!(c.next_timeout(), None, "a stream is open");
    c.respond(1, 200, &[], None).unwrap();
    let t = c.next_timeout().unwrap();
    c.on_timeout(t - Duration::from_secs(1));
    assert!(!c.wants_close());
    c.on_timeout(t);
    assert_eq!(goaway_code(&frames(&mut c)), Some(ErrorCode::NO_ERROR));
    assert!(c.wants_close());
}

#[test]
fn stream_state_rules() {
    // DATA after END_STREAM: stream error STREAM_CLOSED.
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b""), now);
    c.recv(&data(1, b"late", true), now);
    assert_eq!(rst_of(&frames(&mut c), 1), Some(ErrorCode::STREAM_CLOSED));
    // HEADERS on a finished stream: connection error STREAM_CLOSED.
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b""), now);
    c.respond(1, 200, &[], None).unwrap();
    c.recv(&cl.headers(1, &post_fields(), true), now);
    assert_eq!(goaway_code(&frames(&mut c)), Some(ErrorCode::STREAM_CLOSED));
    // Decreasing stream id: connection error PROTOCOL_ERROR.
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(5, b""), now);
    c.recv(&cl.post(3, b""), now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
    // Even stream id.
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(2, b""), now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
    // Frames on idle streams.
    for f in [
        data(1, b"x", true),
        rst(1, ErrorCode::CANCEL),
        window_update(1, 1),
    ] {
        let (mut c, _cl, now) = open();
        c.recv(&f, now);
        assert_eq!(
            goaway_code(&frames(&mut c)),
            Some(ErrorCode::PROTOCOL_ERROR)
        );
    }
    // PUSH_PROMISE from a client.
    let (mut c, _cl, now) = open();
    c.recv(
        &Frame::PushPromise {
            stream_id: 1,
            promised_id: 2,
            end_headers: true,
            fragment: Bytes::new(),
            pad: None,
        }
        .to_bytes(),
        now,
    );
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::PROTOCOL_ERROR)
    );
}

#[test]
fn client_reset_drops_the_response() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b"x"), now);
    c.recv(&rst(1, ErrorCode::CANCEL), now);
    assert!(events(&mut c).contains(&Event::StreamReset {
        stream_id: 1,
        code: ErrorCode::CANCEL
    }));
    assert_eq!(
        c.respond(1, 200, &[], None),
        Err(ConnError::NoSuchStream(1))
    );
}

#[test]
fn response_headers_split_into_continuation() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.post(1, b""), now);
    let _ = frames(&mut c);
    let big = "v".repeat(40_000);
    c.respond(1, 200, &[("x-big", &big)], None).unwrap();
    let fs = frames(&mut c);
    assert!(fs.len() >= 3);
    assert!(matches!(
        fs[0],
        Frame::Headers {
            end_headers: false,
            end_stream: true,
            ..
        }
    ));
    assert!(matches!(
        fs.last(),
        Some(Frame::Continuation {
            end_headers: true,
            ..
        })
    ));
}

#[test]
fn unknown_frames_and_flags_are_ignored() {
    let (mut c, mut cl, now) = open();
    let mut v = Frame::Unknown {
        kind: 0xfa,
        flags: 0xff,
        stream_id: 7,
        payload: Bytes::from_static(b"whatever"),
    }
    .to_vec();
    let mut h = cl.headers(1, &post_fields(), true).to_vec();
    h[4] |= 0x10 | 0x02; // undefined HEADERS flags
    v.extend_from_slice(&h);
    c.recv(&v, now);
    assert_eq!(requests(&mut c).len(), 1);
    assert!(!c.wants_close());
    let _ = kind::DATA;
    let _ = flag::PADDED;
}

/// A valid client conversation used by the split-feed property.
fn scripted_conversation() -> Vec<u8> {
    let mut cl = Client::new();
    let mut v = Client::preface(&[(setting::INITIAL_WINDOW_SIZE, 100)]);
    v.extend_from_slice(&settings_ack());
    v.extend_from_slice(&cl.post(1, b"{\"aps\":{\"alert\":\"hi\"}}"));
    v.extend_from_slice(&ping(*b"pingpong"));
    v.extend_from_slice(&cl.headers(3, &post_fields(), false));
    v.extend_from_slice(
        &Frame::Data {
            stream_id: 3,
            end_stream: false,
            data: Bytes::from_static(b"part1"),
            pad: Some(3),
        }
        .to_bytes(),
    );
    v.extend_from_slice(&data(3, b"part2", true));
    v.extend_from_slice(&window_update(0, 1000));
    v.extend_from_slice(&cl.post(5, b""));
    v.extend_from_slice(&rst(5, ErrorCode::CANCEL));
    v
}

fn run_split(input: &[u8], cuts: &[usize], now: Instant) -> (Vec<Event>, Vec<u8>) {
    let mut c = Connection::new(ConnConfig::default());
    let mut evs = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    for cut in cuts.into_iter().chain(std::iter::once(input.len())) {
        c.recv(&input[pos..cut], now);
        pos = cut;
        evs.extend(events(&mut c));
        if let Some(b) = c.take_output() {
            out.extend_from_slice(&b);
        }
    }
    (evs, out)
}

proptest! {
    #[test]
    fn split_feed_gives_same_events(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let input = scripted_conversation();
        let now = Instant::now();
        let whole = run_split(&input, &[], now);
        let split = run_split(&input, &cuts, now);
        prop_assert_eq!(&whole.0, &split.0);
        prop_assert_eq!(&whole.1, &split.1);
        prop_assert!(whole.0.iter().filter(|e| matches!(e, Event::Request(_))).count() == 3);
    }

    #[test]
    fn arbitrary_input_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let now = Instant::now();
        let mut c = Connection::new(ConnConfig::default());
        let mut v = Client::preface(&[]);
        v.extend_from_slice(&tail);
        c.recv(&v, now);
        let _ = c.take_output();
        let _ = events(&mut c);
    }

    #[test]
    fn arbitrary_frames_never_panic(fs in proptest::collection::vec(
        (0u8..12, any::<u8>(), 0u32..12, proptest::collection::vec(any::<u8>(), 0..40)), 0..20)) {
        let (mut c, _cl, now) = open();
        for (k, fl, sid, payload) in fs {
            let f = Frame::Unknown { kind: k, flags: fl, stream_id: sid, payload: Bytes::from(payload) };
            c.recv(&f.to_bytes(), now);
            let _ = c.respond(sid, 200, &[], Some(Bytes::from_static(b"body")));
        }
        let _ = c.take_output();
    }
}

#[test]
fn provoked_resets_count_but_refusals_do_not() {
    let cfg = ConnConfig {
        max_rst_per_window: 5,
        ..ConnConfig::default()
    };
    // Malformed requests make us reset: the sixth ends the connection.
    let (mut c, mut cl, now) = open_with(cfg.clone(), &[]);
    let mut bad = post_fields();
    bad.push(("Upper", "x"));
    for i in 0..6u32 {
        assert!(!c.wants_close(), "closed early at {i}");
        c.recv(&cl.headers(1 + 2 * i, &bad, true), now);
    }
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::ENHANCE_YOUR_CALM)
    );
    // Streams over the concurrency limit are refused without counting.
    let cfg = ConnConfig {
        max_concurrent_streams: 1,
        ..cfg
    };
    let (mut c, mut cl, now) = open_with(cfg, &[]);
    c.recv(&cl.headers(1, &post_fields(), false), now);
    for i in 1..50u32 {
        c.recv(&cl.headers(1 + 2 * i, &post_fields(), true), now);
    }
    let fs = frames(&mut c);
    assert_eq!(rst_of(&fs, 99), Some(ErrorCode::REFUSED_STREAM));
    assert!(!c.wants_close());
}

#[test]
fn frames_are_reported_on_request() {
    let cfg = ConnConfig {
        report_frames: true,
        ..ConnConfig::default()
    };
    let (mut c, _cl, now) = open_with(cfg, &[]);
    c.recv(&window_update(0, 5), now);
    assert_eq!(
        events(&mut c),
        vec![Event::FrameReceived {
            kind: kind::WINDOW_UPDATE,
            flags: 0,
            stream_id: 0,
            length: 4
        }]
    );
    let (mut c, _cl, now) = open();
    c.recv(&window_update(0, 5), now);
    assert!(events(&mut c).is_empty());
}

#[test]
fn client_settings_are_validated() {
    let bad = [
        ((setting::ENABLE_PUSH, 2), ErrorCode::PROTOCOL_ERROR),
        ((setting::MAX_FRAME_SIZE, 16_383), ErrorCode::PROTOCOL_ERROR),
        (
            (setting::MAX_FRAME_SIZE, 1 << 24),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            (setting::INITIAL_WINDOW_SIZE, 1 << 31),
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
    ];
    for (param, code) in bad {
        let (mut c, _cl, now) = open();
        c.recv(&settings(&[param]), now);
        assert_eq!(goaway_code(&frames(&mut c)), Some(code), "{param:?}");
    }
    // Unknown identifiers are ignored and acknowledged.
    let (mut c, _cl, now) = open();
    c.recv(&settings(&[(0x99, 7)]), now);
    assert_eq!(
        frames(&mut c),
        vec![Frame::Settings {
            ack: true,
            params: vec![]
        }]
    );
}

#[test]
fn larger_client_frames_allow_larger_data() {
    let (mut c, mut cl, now) = open_with(
        ConnConfig::default(),
        &[
            (setting::MAX_FRAME_SIZE, 100_000),
            (setting::INITIAL_WINDOW_SIZE, 200_000),
        ],
    );
    c.recv(&window_update(0, 200_000), now);
    c.recv(&cl.post(1, b""), now);
    let _ = frames(&mut c);
    c.respond(1, 200, &[], Some(Bytes::from(vec![1; 90_000])))
        .unwrap();
    let fs = frames(&mut c);
    assert!(matches!(&fs[1], Frame::Data { data, end_stream: true, .. } if data.len() == 90_000));
}

#[test]
fn our_frame_size_limit_applies() {
    let (mut c, mut cl, now) = open();
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&data(1, &vec![0; 16_385], false), now);
    assert_eq!(
        goaway_code(&frames(&mut c)),
        Some(ErrorCode::FRAME_SIZE_ERROR)
    );
    // Once a larger SETTINGS_MAX_FRAME_SIZE is advertised, larger frames pass.
    let (mut c, mut cl, now) = open();
    c.update_settings(SettingsUpdate {
        max_frame_size: Some(32_768),
        ..Default::default()
    });
    c.recv(&cl.headers(1, &post_fields(), false), now);
    c.recv(&data(1, &vec![0; 20_000], true), now);
    assert_eq!(requests(&mut c).len(), 1);
}

#[test]
fn client_table_size_change_reaches_our_encoder() {
    let (mut c, mut cl, now) = open_with(ConnConfig::default(), &[(setting::HEADER_TABLE_SIZE, 0)]);
    c.recv(&cl.post(1, b""), now);
    let _ = frames(&mut c);
    c.respond(1, 200, &[("apns-id", "x")], None).unwrap();
    let fs = frames(&mut c);
    let Frame::Headers { fragment, .. } = &fs[0] else {
        panic!("{fs:?}")
    };
    // RFC 7541 6.3: the block starts with a dynamic table size update to 0.
    assert_eq!(fragment[0], 0x20);
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let (mut c, _cl, now) = open();
    let p = ping(*b"abcdefgh");
    for b in p.iter() {
        c.recv(&[*b], now);
    }
    assert_eq!(
        frames(&mut c),
        vec![Frame::Ping {
            ack: true,
            data: *b"abcdefgh"
        }]
    );
}
