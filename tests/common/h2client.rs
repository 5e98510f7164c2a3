//! HTTP/2 provider clients for the integration tests: one on the `h2` crate (what a real provider
//! stack looks like), one raw-frame client over TLS built on apnsim's own frame codec and HPACK
//! encoder, for what `h2` hides: SETTINGS and GOAWAY frames as sent, PRIORITY frames, HPACK
//! representations, frame-exact response shapes.
#![allow(dead_code)]

use super::{connect, ClientOpts};
use apnsim::certs::Identity;
use apnsim::http2::auth::{sign_jwt, SignatureForm};
use apnsim::http2::frame::{self, Frame, PrioritySpec, PREFACE};
use apnsim::http2::hpack::{Decoder, Encoder, Representation};
use apnsim::Emulator;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A 64-hex-digit device token nobody registered (accepted by default, PROTOCOL.md Part 3).
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A small valid payload.
pub const PAYLOAD: &[u8] = br#"{"aps":{"alert":"hi"}}"#;
/// How long any single wait on the emulator may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// The path of a push to `token`.
pub fn device_path(token: &str) -> String {
    format!("/3/device/{token}")
}

/// A provider token for the emulator's default key, as a well-behaved provider holds one: issued
/// by the emulator's clock, and re-issued only once the last is 20 minutes old, since Apple counts
/// token updates per team across connections (PROTOCOL.md 2.8).
pub fn jwt_now(emu: &Emulator, form: SignatureForm) -> String {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static ISSUED: Mutex<Option<HashMap<SocketAddr, u64>>> = Mutex::new(None);
    let now = emu.clock().now_secs();
    let iat = {
        let mut issued = ISSUED.lock().unwrap_or_else(|e| e.into_inner());
        let last = issued
            .get_or_insert_with(HashMap::new)
            .entry(emu.http2_addr())
            .or_insert(now);
        if now < *last || now >= *last + 20 * 60 {
            *last = now;
        }
        *last
    };
    jwt_at(emu, iat, form)
}

/// A provider token for the emulator's default key with a chosen `iat`.
pub fn jwt_at(emu: &Emulator, iat: u64, form: SignatureForm) -> String {
    let k = emu.token_key();
    sign_jwt(&k.private_pem, &k.key_id, &k.team_id, iat, form).expect("sign jwt")
}

/// `bearer <jwt>`.
pub fn bearer(jwt: &str) -> String {
    format!("bearer {jwt}")
}

// ---------------------------------------------------------------------------------------------
// The h2 crate client.
// ---------------------------------------------------------------------------------------------

/// An answer as an `h2` client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// True when the response HEADERS carried END_STREAM (no body at all, PROTOCOL.md 2.6).
    pub headers_ended_stream: bool,
}

impl Reply {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.body_text()))
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One `h2` client connection; the connection future runs on its own task.
pub struct H2 {
    pub send: h2::client::SendRequest<Bytes>,
    pub task: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

/// TLS options for an HTTP/2 provider: ALPN `h2`, optional client certificate.
pub fn h2_opts<'a>(ca_pem: &'a str, identity: Option<&'a Identity>) -> ClientOpts<'a> {
    let mut o = ClientOpts::new(ca_pem, identity);
    o.alpn = vec![b"h2".to_vec()];
    o
}

/// Connects with the `h2` crate (ALPN h2).
pub async fn h2_connect(addr: SocketAddr, ca_pem: &str, identity: Option<&Identity>) -> H2 {
    h2_connect_with(addr, &h2_opts(ca_pem, identity)).await
}

/// Connects with the `h2` crate and chosen TLS options.
pub async fn h2_connect_with(addr: SocketAddr, opts: &ClientOpts<'_>) -> H2 {
    let tls = connect(addr, opts).await.expect("tls handshake");
    // As HTTP/2 clients do (Go, hyper, OkHttp): with Nagle on, a DATA frame written after its
    // HEADERS waits for the server's delayed ACK, 40 ms, and that is what latency figures showed.
    tls.get_ref().0.set_nodelay(true).expect("TCP_NODELAY");
    let (send, conn) = tokio::time::timeout(WAIT, h2::client::handshake(tls))
        .await
        .expect("h2 handshake timed out")
        .expect("h2 handshake");
    H2 {
        send,
        task: tokio::spawn(conn),
    }
}

/// A request under construction for [`H2::request`].
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    /// `POST /3/device/<TOKEN>` with the default payload and no headers.
    pub fn push() -> Self {
        Req {
            method: "POST".into(),
            path: device_path(TOKEN),
            headers: Vec::new(),
            body: PAYLOAD.to_vec(),
        }
    }

    /// Adds a header (a second call with the same name adds a second field).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the path.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    /// Replaces the method.
    pub fn method(mut self, m: &str) -> Self {
        self.method = m.into();
        self
    }

    /// Replaces the body.
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }

    /// The topic header.
    pub fn topic(self, t: &str) -> Self {
        self.header("apns-topic", t)
    }

    /// `authorization: bearer <jwt>`.
    pub fn jwt(self, jwt: &str) -> Self {
        self.header("authorization", &bearer(jwt))
    }
}

impl H2 {
    /// Sends one request and reads the whole answer.
    pub async fn request(&mut self, r: Req) -> Reply {
        tokio::time::timeout(WAIT, self.request_inner(r))
            .await
            .expect("response timed out")
    }

    async fn request_inner(&mut self, r: Req) -> Reply {
        let mut b = http::Request::builder()
            .method(r.method.as_str())
            .uri(format!("https://api.push.apple.com{}", r.path));
        for (n, v) in &r.headers {
            b = b.header(n.as_str(), v.as_str());
        }
        let req = b.body(()).expect("request");
        let send = self.send.clone();
        let mut send = send.ready().await.expect("ready");
        let (resp, mut stream) = send
            .send_request(req, r.body.is_empty())
            .expect("send request");
        if !r.body.is_empty() {
            stream
                .send_data(Bytes::from(r.body), true)
                .expect("send body");
        }
        let resp = resp.await.expect("response");
        let (parts, mut body) = resp.into_parts();
        let headers_ended_stream = body.is_end_stream();
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("body chunk");
            let _ = body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: out,
            headers_ended_stream,
        }
    }

    /// The peer's current SETTINGS_MAX_CONCURRENT_STREAMS as `h2` applies it.
    pub fn max_send_streams(&self) -> usize {
        self.send.current_max_send_streams()
    }

    /// Waits until `h2` has applied a SETTINGS_MAX_CONCURRENT_STREAMS of `want`; returns what it saw last.
    pub async fn wait_max_send_streams(&self, want: usize) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.max_send_streams();
            if now == want || tokio::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The raw-frame client.
// ---------------------------------------------------------------------------------------------

/// One response as frames: what the server wrote on the stream, in order.
#[derive(Debug, Default)]
pub struct RawResponse {
    /// Every frame of the stream, in arrival order.
    pub frames: Vec<Frame>,
    /// Decoded header fields of the first HEADERS block.
    pub headers: Vec<(String, String)>,
    /// Concatenated DATA payloads.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header value by name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `:status` as a number.
    pub fn status(&self) -> u16 {
        self.header(":status")
            .and_then(|s| s.parse().ok())
            .expect(":status")
    }
}

/// A hand-driven HTTP/2 client: it writes exactly the frames a test asks for, answers SETTINGS and
/// PING as any client must, and keeps every connection-level frame it received.
pub struct Raw {
    pub tls: TlsStream<TcpStream>,
    buf: BytesMut,
    pub encoder: Encoder,
    decoder: Decoder,
    next_stream: u32,
    /// Every non-ACK SETTINGS frame received, in order.
    pub settings: Vec<Vec<(u16, u32)>>,
    /// GOAWAY frames received.
    pub goaways: Vec<Frame>,
    /// Frames of streams not yet claimed by [`Raw::response`].
    pending: Vec<Frame>,
}

/// Encodes a header list with chosen HPACK representations.
pub type Fields<'a> = &'a [(&'a str, &'a str, Representation)];

impl Raw {
    /// Connects (TLS with `opts`, whatever ALPN they carry) and sends the preface and empty SETTINGS.
    pub async fn connect(addr: SocketAddr, opts: &ClientOpts<'_>) -> Raw {
        let tls = connect(addr, opts).await.expect("tls handshake");
        let mut raw = Raw {
            tls,
            buf: BytesMut::new(),
            encoder: Encoder::new(),
            decoder: Decoder::new(4096),
            next_stream: 1,
            settings: Vec::new(),
            goaways: Vec::new(),
            pending: Vec::new(),
        };
        let mut out = BytesMut::new();
        out.extend_from_slice(PREFACE);
        Frame::Settings {
            ack: false,
            params: Vec::new(),
        }
        .encode(&mut out);
        raw.write(&out).await;
        raw
    }

    /// Writes bytes and flushes.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).await.expect("write");
        self.tls.flush().await.expect("flush");
    }

    /// Writes one frame.
    pub async fn send_frame(&mut self, f: Frame) {
        let b = f.to_bytes();
        self.write(&b).await;
    }

    /// The next frame from the server, after answering SETTINGS and PING; `None` once it closed.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(WAIT, self.read_frame_inner())
            .await
            .expect("no frame from the server in time")
    }

    async fn read_frame_inner(&mut self) -> Option<Frame> {
        loop {
            match frame::decode(&self.buf, frame::MAX_MAX_FRAME_SIZE) {
                Ok(Some((f, used))) => {
                    let _ = self.buf.split_to(used);
                    match &f {
                        Frame::Settings { ack: false, params } => {
                            self.settings.push(params.clone());
                            self.send_frame(Frame::Settings {
                                ack: true,
                                params: Vec::new(),
                            })
                            .await;
                        }
                        Frame::Ping { ack: false, data } => {
                            let data = *data;
                            self.send_frame(Frame::Ping { ack: true, data }).await;
                        }
                        Frame::GoAway { .. } => self.goaways.push(f.clone()),
                        _ => {}
                    }
                    return Some(f);
                }
                Ok(None) => {}
                Err(e) => panic!("server sent a malformed frame: {e:?}"),
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until a frame matching `pred` arrives (kept frames of other streams stay pending).
    pub async fn until(&mut self, pred: impl Fn(&Frame) -> bool) -> Option<Frame> {
        loop {
            let f = self.read_frame().await?;
            if pred(&f) {
                return Some(f);
            }
            if f.stream_id() != 0 {
                self.pending.push(f);
            }
        }
    }

    /// Reads everything until the server closes the connection.
    pub async fn read_to_close(&mut self) -> Vec<Frame> {
        let mut all = Vec::new();
        while let Some(f) = self.read_frame().await {
            all.push(f);
        }
        all
    }

    /// Encodes a header block with the given representations.
    pub fn block(&mut self, fields: Fields<'_>) -> Bytes {
        let owned: Vec<(Bytes, Bytes, Representation)> = fields
            .iter()
            .map(|(n, v, r)| {
                (
                    Bytes::copy_from_slice(n.as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                    *r,
                )
            })
            .collect();
        let mut out = BytesMut::new();
        self.encoder.encode_with(&owned, &mut out);
        out.freeze()
    }

    /// Opens the next stream with HEADERS (optionally carrying priority) and an optional body.
    pub async fn request_with(
        &mut self,
        fields: Fields<'_>,
        body: &[u8],
        priority: Option<PrioritySpec>,
    ) -> u32 {
        let mut out = BytesMut::new();
        let stream_id = self.encode_request(fields, body, priority, &mut out);
        self.write(&out).await;
        stream_id
    }

    /// Encodes the next request into `out` without writing it, so several can go in one write.
    pub fn encode_request(
        &mut self,
        fields: Fields<'_>,
        body: &[u8],
        priority: Option<PrioritySpec>,
        out: &mut BytesMut,
    ) -> u32 {
        let stream_id = self.next_stream;
        self.next_stream += 2;
        let fragment = self.block(fields);
        Frame::Headers {
            stream_id,
            end_stream: body.is_empty(),
            end_headers: true,
            priority,
            fragment,
            pad: None,
        }
        .encode(out);
        if !body.is_empty() {
            Frame::Data {
                stream_id,
                end_stream: true,
                data: Bytes::copy_from_slice(body),
                pad: None,
            }
            .encode(out);
        }
        stream_id
    }

    /// Opens the next stream with HEADERS and no END_STREAM: the request stays open until
    /// [`Raw::finish`], so it counts against the concurrent-stream limit.
    pub async fn open_stream(&mut self, fields: Fields<'_>) -> u32 {
        let stream_id = self.next_stream;
        self.next_stream += 2;
        let fragment = self.block(fields);
        self.send_frame(Frame::Headers {
            stream_id,
            end_stream: false,
            end_headers: true,
            priority: None,
            fragment,
            pad: None,
        })
        .await;
        stream_id
    }

    /// Ends an open stream with a DATA frame carrying `body` and END_STREAM.
    pub async fn finish(&mut self, stream_id: u32, body: &[u8]) {
        self.send_frame(Frame::Data {
            stream_id,
            end_stream: true,
            data: Bytes::copy_from_slice(body),
            pad: None,
        })
        .await;
    }

    /// A push with the usual pseudo-headers followed by `extra`, every field incrementally indexed
    /// except those given another representation in `extra`.
    pub async fn push(&mut self, extra: Fields<'_>, body: &[u8]) -> u32 {
        let path = device_path(TOKEN);
        let mut fields: Vec<(&str, &str, Representation)> = vec![
            (":method", "POST", Representation::IncrementalIndexing),
            (":scheme", "https", Representation::IncrementalIndexing),
            (":path", &path, Representation::WithoutIndexing),
            (
                ":authority",
                "api.push.apple.com",
                Representation::IncrementalIndexing,
            ),
        ];
        fields.extend_from_slice(extra);
        self.request_with(&fields, body, None).await
    }

    /// Reads the whole response of `stream_id` (up to END_STREAM or RST_STREAM).
    pub async fn response(&mut self, stream_id: u32) -> RawResponse {
        let mut r = RawResponse::default();
        let mut queued: Vec<Frame> = std::mem::take(&mut self.pending);
        queued.reverse();
        loop {
            let f = match queued.pop() {
                Some(f) => f,
                None => match self.read_frame().await {
                    Some(f) => f,
                    None => panic!("connection closed before stream {stream_id} ended: {r:?}"),
                },
            };
            if f.stream_id() != stream_id {
                if f.stream_id() != 0 {
                    self.pending.push(f);
                }
                continue;
            }
            let done = match &f {
                Frame::Headers {
                    end_stream,
                    fragment,
                    ..
                } => {
                    let fields = self.decoder.decode(fragment, 1 << 20).expect("hpack");
                    if r.headers.is_empty() {
                        r.headers = fields
                            .into_iter()
                            .map(|f| {
                                (
                                    String::from_utf8_lossy(&f.name).into_owned(),
                                    String::from_utf8_lossy(&f.value).into_owned(),
                                )
                            })
                            .collect();
                    }
                    *end_stream
                }
                Frame::Data {
                    end_stream, data, ..
                } => {
                    r.body.extend_from_slice(data);
                    *end_stream
                }
                Frame::RstStream { .. } => true,
                _ => false,
            };
            r.frames.push(f);
            if done {
                self.pending.extend(queued.into_iter().rev());
                return r;
            }
        }
    }

    /// The last SETTINGS_MAX_CONCURRENT_STREAMS the server announced, if any.
    pub fn max_concurrent_streams(&self) -> Option<u32> {
        self.settings
            .iter()
            .flat_map(|s| s.iter())
            .filter(|(id, _)| *id == frame::setting::MAX_CONCURRENT_STREAMS)
            .map(|(_, v)| *v)
            .next_back()
    }

    /// Reads frames until the server's first SETTINGS has arrived.
    pub async fn await_settings(&mut self) {
        while self.settings.is_empty() {
            let f = self.read_frame().await.expect("server SETTINGS");
            if f.stream_id() != 0 {
                self.pending.push(f);
            }
        }
    }
}

/// A reference to a table entry (falls back to incremental indexing when there is none).
pub const INDEXED: Representation = Representation::Indexed;
/// Incremental indexing, the HPACK default of most encoders.
pub const INC: Representation = Representation::IncrementalIndexing;
/// Literal without indexing (Apple's advice for `:path` and `authorization`).
pub const NO_INDEX: Representation = Representation::WithoutIndexing;
/// Literal never indexed.
pub const NEVER: Representation = Representation::NeverIndexed;
