//! The thin tokio driver of one HTTP/2 connection: it only moves bytes between the transport and
//! [`Connection`], hands requests to a [`Handler`] and carries out [`Command`]s. Every protocol
//! decision lives in `conn` and in the handler.

use crate::http2::conn::{ConnConfig, Connection, Event, Request, SettingsUpdate};
use crate::http2::frame::ErrorCode;
use bytes::{Buf, Bytes, BytesMut};
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// A response the handler chose; `then` runs right after it (e.g. GOAWAY after a rejection).
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header fields after `:status` (names are sent lowercase). Names are mostly fixed
    /// (`apns-id`), so they need no allocation per answer.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// Body; `None` or empty means a single HEADERS frame with END_STREAM (PROTOCOL.md 2.6).
    pub body: Option<Bytes>,
    /// Commands carried out right after the response, in order.
    pub then: Vec<Command>,
}

/// What the rest of apnsim can make a live connection do (the hooks that script APNs faults).
#[derive(Debug, Clone)]
pub enum Command {
    /// Answer a stream.
    Respond {
        /// The stream.
        stream_id: u32,
        /// The answer.
        response: Response,
    },
    /// RST_STREAM on a stream.
    Reset {
        /// The stream.
        stream_id: u32,
        /// Code.
        code: ErrorCode,
    },
    /// GOAWAY; `last_stream_id` `None` = highest processed (PROTOCOL.md 2.2: JSON debug data).
    GoAway {
        /// Code.
        code: ErrorCode,
        /// Last stream id to announce.
        last_stream_id: Option<u32>,
        /// Debug data.
        debug: Bytes,
    },
    /// GOAWAY before our SETTINGS, then close (only meaningful from [`Handler::on_open`]).
    GoAwayBeforeSettings {
        /// Code.
        code: ErrorCode,
        /// Debug data.
        debug: Bytes,
    },
    /// New SETTINGS (PROTOCOL.md 2.2: MAX_CONCURRENT_STREAMS 1 then 1000).
    Settings(SettingsUpdate),
    /// Stop or resume answering PINGs.
    IgnorePing(bool),
    /// Send a PING.
    Ping([u8; 8]),
    /// Drop the transport at once, without flushing or GOAWAY.
    CloseAbruptly,
}

/// A cloneable sender of [`Command`]s to one live connection.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    tx: mpsc::Sender<Command>,
}

/// The connection has ended; the command was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection has ended")]
pub struct ConnGone;

impl ConnHandle {
    /// Sends a command, waiting while the queue is full.
    pub async fn send(&self, cmd: Command) -> Result<(), ConnGone> {
        self.tx.send(cmd).await.map_err(|_| ConnGone)
    }

    /// Sends a command if the queue has room.
    pub fn try_send(&self, cmd: Command) -> Result<(), ConnGone> {
        self.tx.try_send(cmd).map_err(|_| ConnGone)
    }

    /// Whether the connection is still being served.
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// Creates the command channel of a connection: keep the handle, give the receiver to [`serve_connection`].
pub fn command_channel(capacity: usize) -> (ConnHandle, mpsc::Receiver<Command>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (ConnHandle { tx }, rx)
}

/// Decides the answer to each request; the APNs layer implements it.
pub trait Handler: Send + Sync + 'static {
    /// Called before anything is written: return commands to run first (e.g. GOAWAY before SETTINGS).
    fn on_open(&self, _handle: &ConnHandle) -> Vec<Command> {
        Vec::new()
    }

    /// Every event other than requests, for journaling and reactions.
    fn on_event(&self, _event: &Event, _handle: &ConnHandle) {}

    /// Called once the requests and events handled so far are done with and before any answer
    /// to them is written: a handler that batches work per read (one journal append for all the
    /// requests of a read) finishes it here, so nothing is answered before it is recorded.
    fn on_batch_end(&self) {}

    /// Answers a request; may take its time. `None` leaves the stream to commands sent via the handle.
    fn on_request(
        &self,
        req: Request,
        handle: ConnHandle,
    ) -> impl Future<Output = Option<Response>> + Send;
}

/// The handler used until APNs semantics are plugged in: `200` with an `apns-id` (PROTOCOL.md 2.6,
/// echoed from the request, else a generated lowercase UUID as PROTOCOL.md part 3 decides).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultHandler;

impl Handler for DefaultHandler {
    fn on_request(
        &self,
        req: Request,
        _handle: ConnHandle,
    ) -> impl Future<Output = Option<Response>> + Send {
        let id = req
            .header("apns-id")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
            .unwrap_or_else(fast_uuid_v4);
        std::future::ready(Some(Response {
            status: 200,
            headers: vec![("apns-id".into(), id)],
            body: None,
            then: Vec::new(),
        }))
    }
}

/// A random (v4) UUID from the thread-local generator: `Uuid::new_v4` asks the kernel for every
/// id, a system call per answer. Encoded straight into a buffer: `to_string` goes through the
/// formatting machinery, which costs more than the random bytes.
pub fn fast_uuid_v4() -> String {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    String::from(&*id.hyphenated().encode_lower(&mut buf))
}

/// How a connection ended, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The protocol finished (GOAWAY, error, EOF) and output was flushed.
    Closed,
    /// A [`Command::CloseAbruptly`].
    Abrupt,
    /// The peer stopped reading for longer than `write_stall_timeout`.
    WriteStalled,
    /// The transport failed.
    Io,
}

impl From<Ending> for crate::journal::ConnectionEnd {
    fn from(e: Ending) -> Self {
        use crate::journal::ConnectionEnd as End;
        match e {
            Ending::Closed => End::Closed,
            Ending::Abrupt => End::Abrupt,
            Ending::WriteStalled => End::WriteStalled,
            Ending::Io => End::Io(String::new()),
        }
    }
}

/// Serves one HTTP/2 connection (TLS with ALPN h2, or prior knowledge) until it ends.
///
/// Handler futures are polled once in place and only spawned if they are not ready, and all
/// answers to one read go out in one write: a task and a write per request would cost more than
/// the HTTP/2 work of a small APNs request.
pub async fn serve_connection<IO, H>(
    io: IO,
    cfg: ConnConfig,
    handler: Arc<H>,
    handle: ConnHandle,
    mut commands: mpsc::Receiver<Command>,
) -> Ending
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let stall = cfg.write_stall_timeout;
    let max_out = cfg.max_output_buffer;
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut conn = Connection::new(cfg);
    let mut tasks: JoinSet<(u32, Option<Response>)> = JoinSet::new();
    // Which stream each handler task answers, so a panicking handler still gets its stream reset.
    let mut task_streams: HashMap<tokio::task::Id, u32> = HashMap::new();
    for cmd in handler.on_open(&handle) {
        if apply(&mut conn, cmd) {
            return Ending::Abrupt;
        }
    }
    conn.send_preface_settings();
    let waker = Waker::from(Arc::new(NoopWake));
    let mut wbuf = BytesMut::new();
    let mut eof = false;
    let mut last_write = Instant::now();
    // One timer for every deadline, re-armed only when an earlier one appears: a later deadline
    // lets it fire early, which is harmless (`on_timeout` checks the time itself).
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    let ending = 'serve: loop {
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Request(req) => {
                    let id = req.stream_id;
                    let h = handler.clone();
                    let hd = handle.clone();
                    let mut fut = Box::pin(async move { h.on_request(req, hd).await });
                    match poll_once(fut.as_mut(), &waker) {
                        Some(Poll::Ready(Some(response))) => {
                            let cmd = Command::Respond {
                                stream_id: id,
                                response,
                            };
                            if apply(&mut conn, cmd) {
                                break 'serve Ending::Abrupt;
                            }
                        }
                        Some(Poll::Ready(None)) => {}
                        Some(Poll::Pending) => {
                            let ah = tasks.spawn(async move { (id, fut.await) });
                            task_streams.insert(ah.id(), id);
                        }
                        // The handler panicked: reset its stream, keep the connection.
                        None => {
                            let _ = conn.reset_stream(id, ErrorCode::INTERNAL_ERROR);
                        }
                    }
                }
                other => handler.on_event(&other, &handle),
            }
        }
        handler.on_batch_end();
        if wbuf.len() <= max_out {
            let was_empty = wbuf.is_empty();
            if conn.output_into(&mut wbuf) > 0 && was_empty {
                last_write = Instant::now();
            }
        }
        if wbuf.is_empty() && conn.wants_close() {
            break Ending::Closed;
        }
        if conn.input_blocked() && conn.output_len() <= max_out && wbuf.len() <= max_out {
            conn.recv(&[], std::time::Instant::now());
            continue;
        }
        let reading = !eof && conn.wants_read() && wbuf.len() <= max_out;
        let stall_at = stall
            .filter(|_| !wbuf.is_empty())
            .and_then(|d| last_write.checked_add(d));
        let due = match (conn.next_timeout().map(Instant::from_std), stall_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(d) = due {
            if !matches!(armed, Some(a) if a <= d) {
                timer.as_mut().reset(d);
                armed = Some(d);
            }
        }
        // Biased: commands and finished handlers first, then output before more input, so a
        // read's answers leave together and input cannot starve output.
        tokio::select! {
            biased;
            Some(cmd) = commands.recv() => {
                if apply(&mut conn, cmd) {
                    break Ending::Abrupt;
                }
            }
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => match joined {
                Ok((tid, (id, resp))) => {
                    task_streams.remove(&tid);
                    if let Some(resp) = resp {
                        if apply(&mut conn, Command::Respond { stream_id: id, response: resp }) {
                            break Ending::Abrupt;
                        }
                    }
                }
                Err(e) => {
                    if let Some(id) = task_streams.remove(&e.id()) {
                        let _ = conn.reset_stream(id, ErrorCode::INTERNAL_ERROR);
                    }
                }
            },
            w = wr.write(&wbuf), if !wbuf.is_empty() => match w {
                Ok(0) | Err(_) => break Ending::Io,
                Ok(n) => {
                    wbuf.advance(n.min(wbuf.len()));
                    last_write = Instant::now();
                    if wbuf.is_empty() && !flush(&mut wr, &waker, stall).await {
                        break Ending::Io;
                    }
                }
            },
            r = read_into(&mut rd, &mut conn), if reading => match r {
                Ok(0) => {
                    eof = true;
                    conn.recv_eof();
                }
                Ok(_) => {}
                Err(_) => break Ending::Io,
            },
            _ = &mut timer, if armed.is_some() => {
                armed = None;
                let now = Instant::now();
                if stall_at.is_some_and(|s| now >= s) {
                    break Ending::WriteStalled;
                }
                conn.on_timeout(now.into_std());
            }
            else => break Ending::Closed,
        }
    };
    if ending == Ending::Closed {
        let _ = tokio::time::timeout(Duration::from_secs(5), wr.shutdown()).await;
        // Read a little after our FIN so unread client bytes do not turn the close into a TCP
        // reset that could destroy the GOAWAY before the client reads it (RFC 9113 6.8 advice).
        let drain = async {
            let mut rbuf = vec![0u8; READ_CHUNK];
            let mut left: usize = 1 << 20;
            while left > 0 {
                match rd.read(&mut rbuf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
    }
    tasks.abort_all();
    ending
}

/// The most one read takes from the transport.
const READ_CHUNK: usize = 16 * 1024;

/// Reads once into a buffer on the stack of the poll and hands what arrived to the connection;
/// `Ok(0)` at EOF. The connection's task keeps no read buffer between reads: an idle connection
/// held 16 KiB of its own (issue 12). A pending read writes nothing, so the buffer may go.
async fn read_into<R: AsyncRead + Unpin>(
    rd: &mut R,
    conn: &mut Connection,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = tokio::io::ReadBuf::uninit(&mut space);
        std::task::ready!(Pin::new(&mut *rd).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        if n > 0 {
            conn.recv(buf.filled(), std::time::Instant::now());
        }
        Poll::Ready(Ok(n))
    })
    .await
}

/// A waker that does nothing, for polling a future once in place before deciding to spawn it.
struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Polls a future once; `None` if it panicked (the panic is contained, as a spawned task's is).
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> Option<Poll<F::Output>> {
    let mut cx = Context::from_waker(waker);
    std::panic::catch_unwind(AssertUnwindSafe(move || fut.poll(&mut cx))).ok()
}

/// Flushes the transport; `false` if it failed or stayed stuck past the stall timeout. Most
/// flushes finish at once, so the timeout's timer is only set up for those that do not.
async fn flush<W: AsyncWrite + Unpin>(wr: &mut W, waker: &Waker, stall: Option<Duration>) -> bool {
    let mut f = std::pin::pin!(wr.flush());
    match poll_once(f.as_mut(), waker) {
        Some(Poll::Ready(r)) => r.is_ok(),
        None => false,
        Some(Poll::Pending) => {
            let t = stall.unwrap_or(Duration::from_secs(30));
            matches!(tokio::time::timeout(t, f).await, Ok(Ok(())))
        }
    }
}

/// Carries out one command; `true` means close the transport at once.
fn apply(conn: &mut Connection, cmd: Command) -> bool {
    match cmd {
        Command::Respond {
            stream_id,
            response,
        } => {
            // The stream may be gone (client reset it): nothing to answer then.
            let _ = conn.respond_with(stream_id, response.status, &response.headers, response.body);
            for c in response.then {
                if apply(conn, c) {
                    return true;
                }
            }
        }
        Command::Reset { stream_id, code } => {
            let _ = conn.reset_stream(stream_id, code);
        }
        Command::GoAway {
            code,
            last_stream_id,
            debug,
        } => conn.goaway(code, last_stream_id, debug),
        Command::GoAwayBeforeSettings { code, debug } => conn.goaway_before_settings(code, debug),
        Command::Settings(u) => conn.update_settings(u),
        Command::IgnorePing(on) => conn.set_ignore_ping(on),
        Command::Ping(data) => conn.send_ping(data),
        Command::CloseAbruptly => return true,
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::{Frame, FrameHeader, HEADER_LEN, PREFACE};
    use crate::http2::hpack::{Decoder, Encoder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    async fn read_frame(io: &mut DuplexStream) -> Option<Frame> {
        let mut h = [0u8; HEADER_LEN];
        io.read_exact(&mut h).await.ok()?;
        let hdr = FrameHeader::parse(&h)?;
        let mut p = vec![0u8; hdr.length as usize];
        io.read_exact(&mut p).await.ok()?;
        Frame::parse(&hdr, &p).ok()
    }

    /// Reads frames until one matches, skipping the rest (SETTINGS, WINDOW_UPDATE...).
    async fn until<F: Fn(&Frame) -> bool>(io: &mut DuplexStream, f: F) -> Option<Frame> {
        loop {
            let fr = read_frame(io).await?;
            if f(&fr) {
                return Some(fr);
            }
        }
    }

    fn request_bytes(enc: &mut Encoder, id: u32) -> Vec<u8> {
        let mut block = BytesMut::new();
        enc.encode(
            [
                (&b":method"[..], &b"POST"[..]),
                (b":scheme", b"https"),
                (b":path", b"/3/device/abcd"),
                (b":authority", b"localhost"),
            ],
            &mut block,
        );
        let mut v = Vec::new();
        let mut out = BytesMut::new();
        Frame::Headers {
            stream_id: id,
            end_stream: false,
            end_headers: true,
            priority: None,
            fragment: block.freeze(),
            pad: None,
        }
        .encode(&mut out);
        Frame::Data {
            stream_id: id,
            end_stream: true,
            data: Bytes::from_static(b"{}"),
            pad: None,
        }
        .encode(&mut out);
        v.extend_from_slice(&out);
        v
    }

    fn client_start() -> Vec<u8> {
        let mut v = PREFACE.to_vec();
        v.extend_from_slice(
            &Frame::Settings {
                ack: false,
                params: vec![],
            }
            .to_bytes(),
        );
        v.extend_from_slice(
            &Frame::Settings {
                ack: true,
                params: vec![],
            }
            .to_bytes(),
        );
        v
    }

    fn spawn_server<H: Handler>(
        handler: H,
        cfg: ConnConfig,
    ) -> (DuplexStream, ConnHandle, tokio::task::JoinHandle<Ending>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (handle, rx) = command_channel(16);
        let h2 = handle.clone();
        let task =
            tokio::spawn(
                async move { serve_connection(server, cfg, Arc::new(handler), h2, rx).await },
            );
        (client, handle, task)
    }

    #[tokio::test]
    async fn default_handler_answers_200_with_apns_id() {
        let (mut io, _h, _t) = spawn_server(DefaultHandler, ConnConfig::default());
        io.write_all(&client_start()).await.unwrap();
        io.write_all(&request_bytes(&mut Encoder::new(), 1))
            .await
            .unwrap();
        let f = until(&mut io, |f| matches!(f, Frame::Headers { .. }))
            .await
            .unwrap();
        let Frame::Headers {
            fragment,
            end_stream,
            ..
        } = f
        else {
            unreachable!()
        };
        assert!(end_stream);
        let fields = Decoder::new(4096).decode(&fragment, 1 << 16).unwrap();
        assert_eq!(&fields[0].value[..], b"200");
        assert_eq!(&fields[1].name[..], b"apns-id");
        let id = std::str::from_utf8(&fields[1].value).unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok());
        assert_eq!(id, id.to_ascii_lowercase());
    }

    #[tokio::test]
    async fn goaway_hook_sends_debug_and_closes() {
        let (mut io, h, t) = spawn_server(DefaultHandler, ConnConfig::default());
        io.write_all(&client_start()).await.unwrap();
        io.write_all(&request_bytes(&mut Encoder::new(), 1))
            .await
            .unwrap();
        until(&mut io, |f| matches!(f, Frame::Headers { .. }))
            .await
            .unwrap();
        h.send(Command::GoAway {
            code: ErrorCode::NO_ERROR,
            last_stream_id: None,
            debug: Bytes::from_static(b"{\"reason\":\"Shutdown\"}"),
        })
        .await
        .unwrap();
        let f = until(&mut io, |f| matches!(f, Frame::GoAway { .. }))
            .await
            .unwrap();
        assert_eq!(
            f,
            Frame::GoAway {
                last_stream_id: 1,
                code: ErrorCode::NO_ERROR,
                debug: Bytes::from_static(b"{\"reason\":\"Shutdown\"}")
            }
        );
        assert_eq!(
            read_frame(&mut io).await,
            None,
            "then the connection closes"
        );
        assert_eq!(t.await.unwrap(), Ending::Closed);
    }

    struct GoAwayFirst;
    impl Handler for GoAwayFirst {
        fn on_open(&self, _h: &ConnHandle) -> Vec<Command> {
            vec![Command::GoAwayBeforeSettings {
                code: ErrorCode::NO_ERROR,
                debug: Bytes::from_static(b"{\"reason\":\"BadCertificate\"}"),
            }]
        }
        fn on_request(
            &self,
            _req: Request,
            _handle: ConnHandle,
        ) -> impl Future<Output = Option<Response>> + Send {
            std::future::ready(None)
        }
    }

    #[tokio::test]
    async fn goaway_before_settings_from_on_open() {
        let (mut io, _h, t) = spawn_server(GoAwayFirst, ConnConfig::default());
        let f = read_frame(&mut io).await.unwrap();
        assert!(matches!(f, Frame::GoAway { .. }), "{f:?}");
        assert_eq!(read_frame(&mut io).await, None);
        assert_eq!(t.await.unwrap(), Ending::Closed);
    }

    struct Slow;
    impl Handler for Slow {
        async fn on_request(&self, _req: Request, _handle: ConnHandle) -> Option<Response> {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some(Response {
                status: 403,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Some(Bytes::from_static(b"{\"reason\":\"Forbidden\"}")),
                then: vec![Command::Settings(SettingsUpdate {
                    max_concurrent_streams: Some(1),
                    ..Default::default()
                })],
            })
        }
    }

    #[tokio::test]
    async fn slow_handler_does_not_block_pings_and_then_runs() {
        let (mut io, _h, _t) = spawn_server(Slow, ConnConfig::default());
        io.write_all(&client_start()).await.unwrap();
        io.write_all(&request_bytes(&mut Encoder::new(), 1))
            .await
            .unwrap();
        io.write_all(
            &Frame::Ping {
                ack: false,
                data: [9; 8],
            }
            .to_bytes(),
        )
        .await
        .unwrap();
        let first = until(&mut io, |f| {
            matches!(f, Frame::Ping { ack: true, .. } | Frame::Headers { .. })
        })
        .await
        .unwrap();
        assert!(
            matches!(first, Frame::Ping { .. }),
            "PING answered before the slow response"
        );
        let d = until(&mut io, |f| matches!(f, Frame::Data { .. }))
            .await
            .unwrap();
        assert!(matches!(
            d,
            Frame::Data {
                end_stream: true,
                ..
            }
        ));
        let s = until(&mut io, |f| matches!(f, Frame::Settings { ack: false, .. }))
            .await
            .unwrap();
        assert_eq!(
            s,
            Frame::Settings {
                ack: false,
                params: vec![(crate::http2::frame::setting::MAX_CONCURRENT_STREAMS, 1)]
            }
        );
    }

    struct Panics;
    impl Handler for Panics {
        async fn on_request(&self, _req: Request, _handle: ConnHandle) -> Option<Response> {
            panic!("handler bug")
        }
    }

    #[tokio::test]
    async fn panicking_handler_resets_its_stream() {
        let (mut io, _h, _t) = spawn_server(Panics, ConnConfig::default());
        io.write_all(&client_start()).await.unwrap();
        io.write_all(&request_bytes(&mut Encoder::new(), 1))
            .await
            .unwrap();
        let f = until(&mut io, |f| matches!(f, Frame::RstStream { .. }))
            .await
            .unwrap();
        assert_eq!(
            f,
            Frame::RstStream {
                stream_id: 1,
                code: ErrorCode::INTERNAL_ERROR
            }
        );
    }

    #[tokio::test]
    async fn close_abruptly_drops_transport() {
        let (mut io, h, t) = spawn_server(DefaultHandler, ConnConfig::default());
        io.write_all(&client_start()).await.unwrap();
        until(&mut io, |f| matches!(f, Frame::Settings { ack: true, .. }))
            .await
            .unwrap();
        h.send(Command::CloseAbruptly).await.unwrap();
        assert_eq!(t.await.unwrap(), Ending::Abrupt);
        assert!(!h.is_alive());
    }

    #[tokio::test]
    async fn peer_that_never_reads_is_dropped() {
        let cfg = ConnConfig {
            write_stall_timeout: Some(Duration::from_millis(300)),
            max_output_buffer: 16 * 1024,
            ..ConnConfig::default()
        };
        let (mut io, _h, t) = spawn_server(DefaultHandler, cfg);
        io.write_all(&client_start()).await.unwrap();
        let ping = Frame::Ping {
            ack: false,
            data: [1; 8],
        }
        .to_bytes();
        let mut flood = Vec::new();
        for _ in 0..1000 {
            flood.extend_from_slice(&ping);
        }
        // Keep writing PINGs, never read: the server must give up within the stall timeout.
        let writer = tokio::spawn(async move {
            for _ in 0..200 {
                if io.write_all(&flood).await.is_err() {
                    break;
                }
            }
            io
        });
        let end = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end, Ending::WriteStalled);
        writer.abort();
    }
}
