//! What a stranger can send must not hang, abort, exhaust or blind apnsim (issue 12). Each test
//! attacks a real emulator over sockets, bounded in time, and checks that a well-behaved client
//! running beside the attack is still served.

mod common;

use apnsim::journal::{EventKind, Filter};
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd2, item};
use common::{connect, send, ClientOpts};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A command-2 frame with a minimal payload (PROTOCOL.md 1.4).
fn framed(id: u32, token_byte: u8) -> Vec<u8> {
    cmd2(&[
        item(1, &[token_byte; 32]),
        item(2, br#"{"aps":{}}"#),
        item(3, &id.to_be_bytes()),
    ])
}

/// The well-behaved provider: connects to the legacy gateway, sends one notification and sees it
/// accepted in the journal, all within a few seconds.
async fn legacy_client_is_served(emu: &Emulator, id: u32) {
    let ca = emu.ca_pem();
    let ident = emu.identity(ProviderKind::Production);
    let token = [(id % 250) as u8 + 1; 32];
    let work = async {
        let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(ident)))
            .await
            .expect("the well-behaved client's handshake completes");
        send(&mut tls, &framed(id, token[0])).await;
        let filter = Filter {
            token: Some(hex::encode(token)),
            ..Filter::kind(EventKind::Accepted)
        };
        emu.journal()
            .wait_for(&filter, 1, Duration::from_secs(5))
            .await
            .expect("the well-behaved client's notification is accepted");
    };
    tokio::time::timeout(Duration::from_secs(15), work)
        .await
        .expect("the well-behaved client was served in time");
}

/// A test's scratch directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("apnsim-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Defect 1: a `p8` path naming a FIFO made the control API block both worker threads. Over the
/// control API keys come inline only, so the server never opens the file.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_path_over_the_control_api_is_refused_without_touching_the_file() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = scratch("fifo");
    let fifo = dir.join("AuthKey.p8");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let url = format!("http://{}/scenario", emu.control_addr().unwrap());
    let body = format!(
        "[[keys]]\nkey_id = \"ABC123DEFG\"\nteam_id = \"TEAM123456\"\np8 = {:?}\n",
        fifo.to_str().unwrap()
    );
    let client = reqwest::Client::new();
    let puts = (0..2).map(|_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let r =
                tokio::time::timeout(Duration::from_secs(5), client.put(&url).body(body).send())
                    .await
                    .expect("PUT /scenario answered in time")
                    .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    for (status, text) in futures_util::future::join_all(puts).await {
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("send the key inline as `pem`"), "{text}");
        // No file-read oracle: the answer is the same whatever the path is.
        assert!(
            !text.contains("regular") && !text.contains("No such"),
            "{text}"
        );
    }
    let live = reqwest::get(format!("http://{}/livez", emu.control_addr().unwrap()))
        .await
        .unwrap();
    assert!(live.status().is_success());
    legacy_client_is_served(&emu, 1).await;
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}

/// `--bind` beyond loopback with no token: the control API would let anyone clear the journal.
#[test]
fn serve_refuses_a_non_loopback_control_api_without_a_token() {
    let dir = scratch("bind");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .env_clear()
        .args(["serve", "--bind", "0.0.0.0", "--certs"])
        .arg(dir.join("certs"))
        .args(["--legacy-port", "0", "--feedback-port", "0"])
        .args(["--sandbox-legacy-port", "0", "--sandbox-feedback-port", "0"])
        .args(["--http2-port", "0", "--sandbox-http2-port", "0"])
        .args([
            "--manage-broadcast-port",
            "0",
            "--sandbox-manage-broadcast-port",
            "0",
        ])
        .args(["--control-port", "0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--control-token"), "{stderr}");
}

/// Defect 5: idle control-API connections exhausted file descriptors. Now they are capped
/// (the excess closed at once) and closed when idle, and the gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_control_connections_are_capped_and_time_out() {
    let emu = Emulator::builder()
        .control_idle_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let addr = emu.control_addr().unwrap();
    let n = apnsim::control::MAX_CONNECTIONS + 100;
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // The ones over the cap are closed at once; the rest after the idle timeout; none answer.
    let started = std::time::Instant::now();
    let reads = idle.iter_mut().map(|s| async move {
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .map(|r| r.unwrap_or(0))
    });
    let results = futures_util::future::join_all(reads).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(0))),
        "every idle connection is closed without an answer"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // A slowloris header (one byte a while) is closed too.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /livez HT")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let got = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("a stalled request head is closed in time");
    assert!(matches!(got, Ok(_) | Err(_)));
    // The API and the gateway still serve.
    let live = reqwest::get(format!("http://{addr}/livez")).await.unwrap();
    assert!(live.status().is_success());
    legacy_client_is_served(&emu, 2).await;
    emu.shutdown().await;
}

/// Defect 2: `legacy_max_frame = 4294967295` passed the check, then one client announcing a
/// 0xFFFFFFF0-byte frame made the server allocate until it aborted. Every setting has a range,
/// enforced at load with the file's line and column.
#[test]
fn out_of_range_settings_are_refused_at_load_with_line_and_column() {
    let dir = scratch("ranges");
    let file = dir.join("huge.toml");
    let text = "[settings]\nstrict_tokens = false\nlegacy_max_frame = 4294967295\n";
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .arg("check-scenario")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:3:20: ", file.display());
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert!(stderr.contains("legacy_max_frame"), "{stderr}");
}

/// The builder refuses the same settings, so no embedding can start with them either.
#[tokio::test]
async fn the_builder_refuses_out_of_range_settings() {
    let started = Emulator::builder()
        .settings(apnsim::settings::Settings {
            legacy_max_frame: 0xFFFF_FFFF,
            ..Default::default()
        })
        .start()
        .await;
    assert!(matches!(started, Err(apnsim::StartError::Settings(_))));
}

/// Resident set size of this process (the in-process emulator included), in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// An HTTP/2 frame header plus payload.
fn h2_frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// Defect 3: every PING and SETTINGS frame was journaled as its own event (a flood evicted every
/// verdict and grew memory by ~265 KB per 16 KB SETTINGS frame). Now the connection's record
/// counts them, only the first few are journaled, and memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_and_settings_flood_is_counted_not_journaled_frame_by_frame() {
    use tokio::io::AsyncWriteExt;
    const PINGS: u64 = 20_000;
    const SETTINGS: u64 = 400;
    let emu = Emulator::builder().start().await.unwrap();
    legacy_client_is_served(&emu, 1).await;
    let ca = emu.ca_pem();
    let mut opts = ClientOpts::new(&ca, Some(emu.identity(ProviderKind::Production)));
    opts.alpn = vec![b"h2".to_vec()];
    let tls = connect(emu.http2_addr(), &opts).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    // Counts what the server wrote: every PING and SETTINGS frame is acknowledged, so the count
    // tells when the server has processed a flood (then its memory is measured).
    let answered = Arc::new(AtomicU64::new(0));
    let drain = tokio::spawn({
        let answered = answered.clone();
        async move {
            let mut b = vec![0u8; 64 * 1024];
            while let Ok(n @ 1..) = rd.read(&mut b).await {
                answered.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    });
    let processed = |bytes: u64| {
        let answered = answered.clone();
        async move {
            for _ in 0..2000 {
                if answered.load(Ordering::SeqCst) >= bytes {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the server did not acknowledge the flood");
        }
    };
    let before = rss_bytes();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(4, 0, &[]));
    wr.write_all(&out).await.unwrap();
    let ping = h2_frame(6, 0, &[7; 8]);
    let mut pings = Vec::new();
    for _ in 0..1000 {
        pings.extend_from_slice(&ping);
    }
    for _ in 0..PINGS / 1000 {
        wr.write_all(&pings).await.unwrap();
    }
    // Each PING's ACK is 17 bytes (the server's SETTINGS and ACK come first).
    processed(PINGS * 17).await;
    let after_pings = rss_bytes();
    // 2,730 unknown settings (ignored, RFC 9113 6.5.2) fill a 16 KB frame.
    let mut params = Vec::new();
    for i in 0..2730u32 {
        params.extend_from_slice(&0x20u16.to_be_bytes());
        params.extend_from_slice(&i.to_be_bytes());
    }
    let settings = h2_frame(4, 0, &params);
    for _ in 0..SETTINGS {
        wr.write_all(&settings).await.unwrap();
    }
    wr.flush().await.unwrap();
    // Each SETTINGS frame's ACK is 9 bytes.
    processed(PINGS * 17 + SETTINGS * 9).await;
    let after_settings = rss_bytes();
    // A well-behaved provider beside the flood is served, and its verdicts stay in the journal.
    legacy_client_is_served(&emu, 2).await;
    wr.shutdown().await.unwrap();
    let closed = emu
        .journal()
        .wait_for(
            &Filter {
                protocol: Some(apnsim::model::Protocol::Http2),
                ..Filter::kind(EventKind::ConnectionClosed)
            },
            1,
            Duration::from_secs(20),
        )
        .await
        .expect("the flooding connection ends");
    let grown = rss_bytes().saturating_sub(before);
    drain.abort();
    let obs = &closed[0].detail.as_ref().unwrap()["observations"];
    assert_eq!(obs["pings"], PINGS, "{obs}");
    assert_eq!(obs["settings_frames"], SETTINGS + 1, "{obs}");
    let journaled = emu.journal().query(&Filter::kind(EventKind::Observation));
    let count = |key: &str| {
        journaled
            .iter()
            .filter(|e| e.detail.as_ref().is_some_and(|d| d.get(key).is_some()))
            .count()
    };
    assert!(count("ping") <= 64, "{} PINGs journaled", count("ping"));
    assert!(count("client_settings") <= 64);
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 2);
    // 400 × 16 KB SETTINGS once cost ~265 KB each (~100 MB); now memory stays flat.
    eprintln!(
        "RSS growth: {} KB after {PINGS} PINGs, {} KB more after {SETTINGS} 16 KB SETTINGS \
         ({} KB sent), {} KB in all at the end",
        after_pings.saturating_sub(before) / 1024,
        after_settings.saturating_sub(after_pings) / 1024,
        SETTINGS * settings.len() as u64 / 1024,
        grown / 1024
    );
    assert!(grown < 40 * 1024 * 1024, "RSS grew {} KB", grown / 1024);
    emu.shutdown().await;
}

/// A running `apnsim serve` (the real binary), killed on drop.
struct Serve {
    child: std::process::Child,
    dir: std::path::PathBuf,
    ready: serde_json::Value,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Serve {
    /// Starts `apnsim serve` on free loopback ports with `extra` arguments; stderr to a file.
    async fn start(name: &str, extra: &[&str]) -> Serve {
        let dir = scratch(name);
        let ready = dir.join("ready.json");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
            .env_clear()
            .arg("serve")
            .arg("--certs")
            .arg(dir.join("certs"))
            .arg("--ready-file")
            .arg(&ready)
            .args(["--legacy-port", "0", "--feedback-port", "0"])
            .args([
                "--sandbox-legacy-port",
                "off",
                "--sandbox-feedback-port",
                "off",
            ])
            .args(["--http2-port", "0", "--sandbox-http2-port", "off"])
            .args([
                "--manage-broadcast-port",
                "off",
                "--sandbox-manage-broadcast-port",
                "off",
            ])
            .args(["--control-port", "0"])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut serve = Serve {
            child,
            dir,
            ready: serde_json::Value::Null,
        };
        for _ in 0..900 {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                serve.ready = serde_json::from_str(&text).unwrap();
                return serve;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("apnsim serve did not become ready");
    }

    fn addr(&self, key: &str) -> std::net::SocketAddr {
        self.ready[key].as_str().unwrap().parse().unwrap()
    }

    fn ca(&self) -> String {
        std::fs::read_to_string(self.dir.join("certs").join("ca.pem")).unwrap()
    }

    fn identity(&self) -> apnsim::certs::Identity {
        apnsim::certs::Identity::load(&self.dir.join("certs"), "provider-production").unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// `GET /journal` with a query, as JSON.
    async fn journal(&self, query: &str) -> serde_json::Value {
        let url = format!("http://{}/journal?{query}", self.addr("control"));
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    /// The well-behaved provider against this server: one notification, accepted.
    async fn legacy_client_is_served(&self, id: u32) {
        let ca = self.ca();
        let ident = self.identity();
        let token = [(id % 250) as u8 + 1; 32];
        let mut tls = tokio::time::timeout(
            Duration::from_secs(10),
            connect(self.addr("legacy"), &ClientOpts::new(&ca, Some(&ident))),
        )
        .await
        .expect("the well-behaved client's handshake completes in time")
        .expect("the well-behaved client's handshake completes");
        send(&mut tls, &framed(id, token[0])).await;
        let url = format!(
            "http://{}/journal/wait?kind=accepted&token={}&n=1&timeout_ms=5000",
            self.addr("control"),
            hex::encode(token)
        );
        let got: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(
            got["events"].as_array().map(Vec::len),
            Some(1),
            "the well-behaved client's notification is accepted: {got}"
        );
    }
}

/// Reads until EOF or error; returns how long that took (`None` if still open after `bound`).
async fn closed_within<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    bound: Duration,
) -> Option<Duration> {
    let started = std::time::Instant::now();
    let drain = async {
        let mut buf = [0u8; 4096];
        while rd.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    };
    tokio::time::timeout(bound, drain)
        .await
        .ok()
        .map(|()| started.elapsed())
}

/// Defect 4: the idle timeout counted time between reads, so one byte a second kept a legacy
/// connection open for ever. Now a frame, once started, must arrive whole within a bound (30 s),
/// whatever trickles in; a well-behaved client beside the trickle is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_byte_a_second_client_is_closed_while_another_is_served() {
    use tokio::io::AsyncWriteExt;
    // Default settings: the 300 s idle timeout is not what closes it.
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let opts = ClientOpts::new(&ca, Some(emu.identity(ProviderKind::Production)));
    let tls = connect(emu.legacy_addr(), &opts).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    let frame = framed(1, 9);
    let trickle = tokio::spawn(async move {
        for b in frame.iter().cycle() {
            if wr.write_all(&[*b]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    });
    legacy_client_is_served(&emu, 2).await;
    let took = closed_within(&mut rd, Duration::from_secs(45))
        .await
        .expect("a frame trickling in a byte at a time is closed within the partial-frame bound");
    trickle.abort();
    eprintln!("byte-a-second legacy client closed after {took:?}");
    assert!(
        took >= Duration::from_secs(20),
        "closed too early: {took:?}"
    );
    legacy_client_is_served(&emu, 3).await;
    let closed = emu
        .journal()
        .query(&Filter::kind(EventKind::ConnectionClosed));
    assert!(!closed.is_empty(), "its end is journaled");
    assert_eq!(
        emu.journal().count(&Filter {
            token: Some(hex::encode([9u8; 32])),
            ..Filter::kind(EventKind::Accepted)
        }),
        0,
        "no notification came of the trickle"
    );
    emu.shutdown().await;
}

/// Defect 4, HTTP/2: frames that are neither a stream nor a PING (WINDOW_UPDATE, a byte at a
/// time) do not keep a connection open past the idle timeout; one beside it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_with_no_stream_or_ping_activity_idles_out() {
    use tokio::io::AsyncWriteExt;
    let emu = Emulator::builder()
        .settings(apnsim::settings::Settings {
            http2_idle_timeout_secs: 2,
            ..Default::default()
        })
        .start()
        .await
        .unwrap();
    let ca = emu.ca_pem();
    let mut opts = ClientOpts::new(&ca, Some(emu.identity(ProviderKind::Production)));
    opts.alpn = vec![b"h2".to_vec()];
    let tls = connect(emu.http2_addr(), &opts).await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(4, 0, &[]));
    wr.write_all(&hello).await.unwrap();
    let update = h2_frame(8, 0, &1u32.to_be_bytes());
    let trickle = tokio::spawn(async move {
        for b in update.iter().cycle() {
            if wr.write_all(&[*b]).await.is_err() || wr.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    legacy_client_is_served(&emu, 4).await;
    let took = closed_within(&mut rd, Duration::from_secs(15))
        .await
        .expect("a connection with no stream or PING activity is closed after the idle timeout");
    trickle.abort();
    eprintln!("trickling HTTP/2 client closed after {took:?}");
    legacy_client_is_served(&emu, 5).await;
    emu.shutdown().await;
}

/// Defect 4: when a listener's connection cap is hit the excess is closed at once, journaled and
/// said at WARN once per minute (not once per refused client); once an idle connection goes, a
/// well-behaved client is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_cap_is_journaled_once_and_frees_for_a_well_behaved_client() {
    let scn = scratch("cap-scenario");
    let file = scn.join("cap.toml");
    std::fs::write(&file, "[settings]\nmax_connections = 3\n").unwrap();
    let serve = Serve::start("cap", &["--scenario", file.to_str().unwrap()]).await;
    let _ = std::fs::remove_dir_all(&scn);
    let ca = serve.ca();
    let ident = serve.identity();
    let opts = ClientOpts::new(&ca, Some(&ident));
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(connect(serve.addr("legacy"), &opts).await.unwrap());
    }
    // Over the cap: closed before the handshake completes, every time.
    for _ in 0..5 {
        let refused =
            tokio::time::timeout(Duration::from_secs(5), connect(serve.addr("legacy"), &opts))
                .await
                .expect("a refused connection is closed at once, not left hanging");
        assert!(refused.is_err(), "a fourth connection is over the cap");
    }
    let j = serve.journal("kind=connection-refused").await;
    let events = j["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "journaled once per minute: {j}");
    assert_eq!(
        events[0]["detail"]["error"], "connection limit reached",
        "{j}"
    );
    assert_eq!(events[0]["detail"]["max_connections"], 3, "{j}");
    let warns = serve
        .stderr()
        .lines()
        .filter(|l| l.contains("connection limit reached"))
        .count();
    assert_eq!(warns, 1, "one WARN per minute: {}", serve.stderr());
    // One idle connection goes: a well-behaved client gets its place.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    serve.legacy_client_is_served(7).await;
}

/// Defect 3: `apnsim serve --journal-file` streams every event as a JSON line, so nothing is lost
/// to the journal's bound: with a capacity of 8, `GET /journal` says what it evicted, and the
/// file still holds every event, in sequence, each notification once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_journal_file_keeps_every_event_past_eviction() {
    const N: u32 = 40;
    let file =
        std::env::temp_dir().join(format!("apnsim-journal-file-{}.jsonl", std::process::id()));
    let serve = Serve::start(
        "journal-file",
        &[
            "--journal-capacity",
            "8",
            "--journal-file",
            file.to_str().unwrap(),
        ],
    )
    .await;
    let ca = serve.ca();
    let ident = serve.identity();
    let mut tls = connect(serve.addr("legacy"), &ClientOpts::new(&ca, Some(&ident)))
        .await
        .unwrap();
    let mut frames = Vec::new();
    for id in 1..=N {
        frames.extend(framed(id, 0x40));
    }
    send(&mut tls, &frames).await;
    drop(tls);
    let mut lines: Vec<serde_json::Value> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON event"))
            .collect();
        if lines.iter().any(|e| e["kind"] == "connection-closed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_file(&file);
    let seqs: Vec<u64> = lines.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, in order"
    );
    let accepted: Vec<&serde_json::Value> =
        lines.iter().filter(|e| e["kind"] == "accepted").collect();
    assert_eq!(accepted.len(), N as usize, "every notification, once");
    assert!(lines.iter().any(|e| e["kind"] == "connection-opened"));
    assert!(lines.iter().any(|e| e["kind"] == "connection-closed"));
    let head = serve.journal("limit=100").await;
    assert!(head["evicted"].as_u64().unwrap() > 0, "{head}");
    assert!(head["first_seq"].as_u64().unwrap() > 1, "{head}");
    // Verdicts and other events have a bound each (8 here): far fewer than the 42 events.
    assert!(
        head["events"].as_array().unwrap().len() <= 16,
        "the in-memory journal stays bounded: {head}"
    );
}
