//! Legacy gateway throughput: command-2 frames with ~200-byte payloads through one TLS
//! connection, beside a raw TLS sink (same TLS config, same bytes, no parsing) in the same run.
//! Run: `cargo bench --bench legacy_throughput` (APNSIM_BENCH_N sets the count). The client
//! encrypts every record before the clock starts ([`push`]), so both servers are timed against
//! the same cheap client; the spread of the paired ratios is printed with their median.
//! Targets: median paired ratio ≥ 0.85× the sink (issue 15) and ≥ 500,000 notifications/s.
//! Then (feature `legacy-openssl`, unless APNSIM_BENCH_TLS10=0) the OpenSSL path of
//! `--legacy-tls-min 1.0` beside the rustls gateway, paired run by run: an OpenSSL client at
//! TLS 1.2 and at TLS 1.0 into an emulator started with `legacy_tls_min = "1.0"`.

use apnsim::journal::{EventKind, Filter};
use apnsim::legacy::frame::{encode_framed, LegacyNotification};
use apnsim::{Emulator, ProviderKind};
use bytes::BytesMut;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHUNK: usize = 1000;

fn chunk() -> Vec<u8> {
    let payload = format!(
        r#"{{"aps":{{"alert":{{"title":"Benchmark","body":"{}"}},"badge":1,"sound":"default"}}}}"#,
        "x".repeat(120)
    );
    let mut buf = BytesMut::new();
    for i in 0..CHUNK as u32 {
        let n = LegacyNotification::framed(
            i.to_be_bytes(),
            0,
            10,
            [7u8; 32].to_vec(),
            payload.clone().into_bytes(),
        );
        encode_framed(&n, &mut buf).expect("encode");
    }
    buf.to_vec()
}

fn client_config(ca_pem: &str, id: &apnsim::certs::Identity) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.expect("ca")).expect("ca");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .expect("tls12")
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from(id.cert_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
    )
    .expect("client auth");
    Arc::new(cfg)
}

/// Writes `rounds` chunks, closes its side, waits for the server to close: the server has then
/// consumed every byte. Returns the elapsed time.
///
/// The client is cheap and fixed, so the ratio measures the server: after the handshake, every
/// record (and the close_notify) is encrypted into memory before the clock starts, and the timed
/// part only writes those bytes to the socket. An encrypting client shares the 2 cores with the
/// server and moved the paired ratio by its own cost.
async fn push(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    data: &[u8],
    rounds: usize,
) -> Duration {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).ok();
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    // APNSIM_BENCH_CLIENT=encrypting: the client encrypts as it writes, inside the timed part
    // (how this benchmark measured before; for comparing with figures taken that way).
    if std::env::var("APNSIM_BENCH_CLIENT").as_deref() == Ok("encrypting") {
        let mut tls = tls;
        let start = Instant::now();
        for _ in 0..rounds {
            tls.write_all(data).await.expect("write");
        }
        tls.shutdown().await.expect("close_notify");
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        return start.elapsed();
    }
    let (mut tcp, mut conn) = tls.into_inner();
    conn.set_buffer_limit(None);
    let mut wire = Vec::with_capacity(rounds * (data.len() + data.len() / 512 + 64));
    for _ in 0..rounds {
        std::io::Write::write_all(&mut conn.writer(), data).expect("encrypt");
        while conn.wants_write() {
            conn.write_tls(&mut wire).expect("encrypt");
        }
    }
    conn.send_close_notify();
    while conn.wants_write() {
        conn.write_tls(&mut wire).expect("close_notify");
    }
    let start = Instant::now();
    tcp.write_all(&wire).await.expect("write");
    tcp.shutdown().await.expect("fin");
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest).await;
    start.elapsed()
}

/// A TLS server with apnsim's own legacy TLS configuration that reads and discards everything.
async fn sink(emu_tls: apnsim::tls::ListenerTls) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tls = Arc::new(emu_tls);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tcp.set_nodelay(true).ok();
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok((mut s, _)) =
                    apnsim::tls::accept(tcp, &tls, apnsim::model::Environment::Production).await
                else {
                    return;
                };
                let mut buf = BytesMut::with_capacity(64 * 1024);
                loop {
                    if buf.capacity() - buf.len() < 16 * 1024 {
                        buf.clear();
                        buf.reserve(64 * 1024);
                    }
                    match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => buf.clear(),
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn main() {
    let n: usize = std::env::var("APNSIM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rounds = (n / CHUNK).max(1);
    let total = rounds * CHUNK;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        // APNSIM_BENCH_JOURNAL=N: another journal capacity (what the journal's memory costs).
        let mut settings = apnsim::settings::Settings::default();
        if let Some(cap) = std::env::var("APNSIM_BENCH_JOURNAL")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            settings.journal_capacity = cap;
        }
        let emu = Emulator::builder()
            .settings(settings)
            .start()
            .await
            .expect("start");
        let cfg = client_config(&emu.ca_pem(), emu.identity(ProviderKind::Production));
        let server = emu.authority().issue_server().expect("server identity");
        let tls =
            apnsim::emulator::legacy_tls(emu.authority(), &server, emu.settings()).expect("tls");
        let sink_addr = sink(tls).await;
        let data = chunk();
        let bytes = data.len() * rounds;
        println!(
            "legacy_throughput: {total} command-2 notifications, {} bytes each, {:.1} MB per run",
            data.len() / CHUNK,
            bytes as f64 / 1e6
        );
        // Warm-up: fills the journal to its bound, so the timed runs measure the steady state.
        let warm = (emu.settings().journal_capacity / CHUNK).max(1) + 1;
        push(emu.legacy_addr(), cfg.clone(), &data, warm).await;
        push(sink_addr, cfg.clone(), &data, warm).await;
        let (mut best_sink, mut best_emu) = (Duration::MAX, Duration::MAX);
        // Each run pairs a sink push and an apnsim push back to back, so both see the same
        // machine load; the median of the paired ratios is the figure least moved by noise.
        let mut paired = Vec::new();
        let runs: usize = std::env::var("APNSIM_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        for run in 1..=runs {
            // APNSIM_BENCH_ONLY=apnsim skips the sink (for profiling the gateway alone).
            let s = if std::env::var("APNSIM_BENCH_ONLY").as_deref() == Ok("apnsim") {
                Duration::from_secs(1)
            } else {
                push(sink_addr, cfg.clone(), &data, rounds).await
            };
            let wait = Duration::from_secs(30);
            // Wait for the previous connection's close, so the sequence numbers below are this run's alone.
            let last_close = Filter {
                since: Some(emu.journal().last_seq().saturating_sub(1)),
                ..Filter::kind(EventKind::ConnectionClosed)
            };
            emu.journal()
                .wait_for(&last_close, 1, wait)
                .await
                .expect("previous connection closed");
            let before = emu.journal().last_seq();
            let e = push(emu.legacy_addr(), cfg.clone(), &data, rounds).await;
            let closed = Filter {
                since: Some(before),
                ..Filter::kind(EventKind::ConnectionClosed)
            };
            emu.journal()
                .wait_for(&closed, 1, wait)
                .await
                .expect("run closed");
            // Every notification was journaled as accepted (plus the open and close events).
            let after = emu.journal().last_seq();
            assert_eq!(
                after - before,
                total as u64 + 2,
                "journal did not record every notification"
            );
            println!(
                "  run {run}: sink {:>10.0}/s   apnsim {:>10.0}/s",
                total as f64 / s.as_secs_f64(),
                total as f64 / e.as_secs_f64()
            );
            best_sink = best_sink.min(s);
            best_emu = best_emu.min(e);
            paired.push(s.as_secs_f64() / e.as_secs_f64());
        }
        paired.sort_by(f64::total_cmp);
        let median_ratio = paired[paired.len() / 2];
        let sink_rate = total as f64 / best_sink.as_secs_f64();
        let emu_rate = total as f64 / best_emu.as_secs_f64();
        let ratio = emu_rate / sink_rate;
        println!(
            "best: raw TLS sink {sink_rate:.0} notifications/s ({:.0} MB/s)",
            bytes as f64 / best_sink.as_secs_f64() / 1e6
        );
        println!("best: apnsim gateway {emu_rate:.0} notifications/s");
        println!(
            "paired ratios apnsim/sink: {} (median {median_ratio:.2}, spread {:.2}-{:.2})",
            paired
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" "),
            paired[0],
            paired[paired.len() - 1]
        );
        println!(
            "apnsim / raw TLS sink {median_ratio:.2}x median of paired runs (target >= 0.85x): {}",
            if median_ratio >= 0.85 {
                "met"
            } else {
                "NOT met"
            }
        );
        println!(
            "ratio apnsim/sink, best vs best: {ratio:.2}; absolute target >= 500000/s: {}",
            if emu_rate >= 500_000.0 {
                "met"
            } else {
                "NOT met"
            }
        );
        #[cfg(feature = "legacy-openssl")]
        if std::env::var("APNSIM_BENCH_TLS10").as_deref() != Ok("0") {
            tls10::compare(&emu, cfg.clone(), &data, rounds, runs).await;
        }
        emu.shutdown().await;
    });
}

/// The TLS 1.0 path (OpenSSL acceptor) beside the default rustls gateway, in the same run.
#[cfg(feature = "legacy-openssl")]
mod tls10 {
    use super::*;
    use apnsim::settings::LegacyTlsMin;
    use openssl::pkey::PKey;
    use openssl::ssl::{SslConnector, SslMethod, SslVersion};
    use openssl::x509::X509;
    use std::pin::Pin;

    /// Waits until the connection pushed after `before` has closed, and checks every notification of
    /// it was journaled (plus its open and close events).
    async fn wait_run(emu: &Emulator, before: u64, total: usize) {
        let closed = Filter {
            since: Some(before),
            ..Filter::kind(EventKind::ConnectionClosed)
        };
        emu.journal()
            .wait_for(&closed, 1, Duration::from_secs(30))
            .await
            .expect("run closed");
        assert_eq!(
            emu.journal().last_seq() - before,
            total as u64 + 2,
            "journal did not record every notification"
        );
    }

    /// An OpenSSL provider speaking exactly `version`, at security level 0 as TLS 1.0 needs.
    fn connector(emu: &Emulator, version: SslVersion) -> SslConnector {
        let id = emu.identity(ProviderKind::Production);
        let mut b = SslConnector::builder(SslMethod::tls_client()).expect("connector");
        b.set_security_level(0);
        b.set_cipher_list("DEFAULT:@SECLEVEL=0").expect("ciphers");
        b.set_min_proto_version(Some(version)).expect("min");
        b.set_max_proto_version(Some(version)).expect("max");
        for ca in X509::stack_from_pem(emu.ca_pem().as_bytes()).expect("ca") {
            b.cert_store_mut().add_cert(ca).expect("ca");
        }
        b.set_certificate(&X509::from_der(&id.cert_der).expect("cert"))
            .expect("cert");
        b.set_private_key(&PKey::private_key_from_der(&id.key_der).expect("key"))
            .expect("key");
        b.build()
    }

    /// Like [`push`], through OpenSSL.
    async fn push_openssl(
        addr: SocketAddr,
        connector: &SslConnector,
        data: &[u8],
        rounds: usize,
    ) -> Duration {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.set_nodelay(true).ok();
        let ssl = connector
            .configure()
            .expect("configure")
            .into_ssl("localhost")
            .expect("ssl");
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).expect("stream");
        Pin::new(&mut tls).connect().await.expect("handshake");
        let start = Instant::now();
        for _ in 0..rounds {
            tls.write_all(data).await.expect("write");
        }
        tls.shutdown().await.expect("close_notify");
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        start.elapsed()
    }

    pub async fn compare(
        emu: &Emulator,
        cfg: Arc<rustls::ClientConfig>,
        data: &[u8],
        rounds: usize,
        runs: usize,
    ) {
        let total = rounds * CHUNK;
        let old = Emulator::builder()
            .legacy_tls_min(LegacyTlsMin::Tls1_0)
            .start()
            .await
            .expect("start with legacy_tls_min 1.0");
        let (v12, v10) = (
            connector(&old, SslVersion::TLS1_2),
            connector(&old, SslVersion::TLS1),
        );
        println!("legacy_throughput, TLS 1.0 path: OpenSSL acceptor beside the rustls gateway");
        let warm = (old.settings().journal_capacity / CHUNK).max(1) + 1;
        push_openssl(old.legacy_addr(), &v10, data, warm).await;
        let (mut r12, mut r10) = (Vec::new(), Vec::new());
        for run in 1..=runs {
            let before = emu.journal().last_seq();
            let a = push(emu.legacy_addr(), cfg.clone(), data, rounds).await;
            wait_run(emu, before, total).await;
            let before = old.journal().last_seq();
            let b = push_openssl(old.legacy_addr(), &v12, data, rounds).await;
            wait_run(&old, before, total).await;
            let before = old.journal().last_seq();
            let c = push_openssl(old.legacy_addr(), &v10, data, rounds).await;
            wait_run(&old, before, total).await;
            let rate = |d: Duration| total as f64 / d.as_secs_f64();
            println!(
                "  run {run}: rustls TLS 1.2 {:>10.0}/s   OpenSSL TLS 1.2 {:>10.0}/s   OpenSSL TLS 1.0 {:>10.0}/s",
                rate(a),
                rate(b),
                rate(c)
            );
            r12.push(a.as_secs_f64() / b.as_secs_f64());
            r10.push(a.as_secs_f64() / c.as_secs_f64());
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "paired ratios vs the rustls gateway (median): OpenSSL TLS 1.2 {:.2}, OpenSSL TLS 1.0 {:.2}",
            median(&mut r12),
            median(&mut r10)
        );
        old.shutdown().await;
    }
}
