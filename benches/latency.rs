//! Accept-to-verdict latency on an idle server (issue 15: p99 ≤ 1 ms), both protocols, 10,000
//! notifications one at a time on one connection each:
//! - HTTP/2: from writing the request (headers and ~200-byte body) to its response's headers;
//! - legacy: from writing the command-2 frame to its `accepted` event in the journal (an accepted
//!   legacy notification gets no answer on the wire, so the journal is where its verdict shows).
//!
//! Run: `cargo bench --bench latency` or `scripts/latency.sh` (APNSIM_LATENCY_N sets the count).

use apnsim::journal::{EventKind, Filter};
use apnsim::legacy::frame::{encode_framed, LegacyNotification};
use apnsim::{Emulator, ProviderKind};
use bytes::{Bytes, BytesMut};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PAYLOAD: &str = r#"{"aps":{"alert":{"title":"Benchmark","body":"A notification of about two hundred bytes, as providers send them: a title, a body, a badge and a sound."},"badge":1,"sound":"default"},"id":42}"#;

fn client_config(emu: &Emulator, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let id = emu.identity(ProviderKind::Production);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut emu.ca_pem().as_bytes()) {
        roots.add(c.expect("ca")).expect("ca");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(id.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
    )
    .expect("client auth");
    if !alpn.is_empty() {
        cfg.alpn_protocols = vec![alpn.to_vec()];
    }
    Arc::new(cfg)
}

async fn tls(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).ok();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake")
}

/// p50 and p99 of `took`, sorted in place.
fn percentiles(took: &mut [Duration]) -> (Duration, Duration) {
    took.sort();
    let pct = |p: usize| took[(took.len() * p / 100).min(took.len() - 1)];
    (pct(50), pct(99))
}

fn report(name: &str, n: usize, took: &mut [Duration]) {
    let (p50, p99) = percentiles(took);
    let met = if p99 <= Duration::from_millis(1) {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "{name:<7} accept-to-verdict over {n} one at a time: p50 {:>7.1} us  p99 {:>7.1} us   target p99 <= 1000 us  {met}",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

async fn legacy(emu: &Emulator, n: usize) -> Vec<Duration> {
    let mut conn = tls(emu.legacy_addr(), client_config(emu, b"")).await;
    let mut took = Vec::with_capacity(n);
    let mut frame = BytesMut::new();
    for i in 0..n as u32 {
        frame.clear();
        let note = LegacyNotification::framed(
            i.to_be_bytes(),
            0,
            10,
            [7u8; 32].to_vec(),
            PAYLOAD.as_bytes().to_vec(),
        );
        encode_framed(&note, &mut frame).expect("encode");
        let filter = Filter {
            since: Some(emu.journal().last_seq()),
            ..Filter::kind(EventKind::Accepted)
        };
        let t = Instant::now();
        conn.write_all(&frame).await.expect("write");
        conn.flush().await.expect("flush");
        emu.journal()
            .wait_for(&filter, 1, Duration::from_secs(5))
            .await
            .expect("accepted");
        took.push(t.elapsed());
    }
    took
}

async fn http2(emu: &Emulator, n: usize) -> Vec<Duration> {
    let addr = emu.addr("http2").expect("http2 listener");
    let io = tls(addr, client_config(emu, b"h2")).await;
    let (mut client, connection) = h2::client::handshake(io).await.expect("h2 handshake");
    tokio::spawn(connection);
    let device = "1".to_string() + &"a".repeat(63);
    let body = Bytes::from_static(PAYLOAD.as_bytes());
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let req = http::Request::post(format!("https://localhost/3/device/{device}"))
            .header("apns-topic", apnsim::DEFAULT_TOPIC)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .body(())
            .expect("request");
        let t = Instant::now();
        client = client.ready().await.expect("ready");
        let (resp, mut send) = client.send_request(req, false).expect("send");
        send.send_data(body.clone(), true).expect("body");
        let resp = resp.await.expect("response");
        took.push(t.elapsed());
        assert_eq!(resp.status(), 200, "the notification was accepted");
    }
    took
}

fn main() {
    let n: usize = std::env::var("APNSIM_LATENCY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let emu = Emulator::builder()
            .http2_port(Some(0))
            .start()
            .await
            .expect("start");
        // Warm-up: connection setup and first allocations are not what is measured.
        legacy(&emu, 100).await;
        http2(&emu, 100).await;
        report("legacy", n, &mut legacy(&emu, n).await);
        report("http2", n, &mut http2(&emu, n).await);
        emu.shutdown().await;
    });
}
