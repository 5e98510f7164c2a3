//! TLS 1.0 and 1.1 on the legacy ports (issue: the legacy gateway as providers met it, part 3):
//! with `--legacy-tls-min 1.0|1.1` an OpenSSL acceptor lets providers that hard-code old TLS in,
//! with the same certificate checks, SNI rules, journal events and refusal words as the rustls
//! path; without it they are refused with a reason that names the flag. The clients are Python's
//! `ssl` (OpenSSL), limited to one version as pyOpenSSL `TLSv1_METHOD` daemons are. python3 is
//! needed: a missing python3 fails these tests.
#![cfg(feature = "legacy-openssl")]

mod common;

use apnsim::engine::{FeedbackEntry, TokenRecord};
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment};
use apnsim::settings::{LegacyTlsMin, Settings};
use apnsim::{Emulator, ProviderKind};
use common::frames::{error_response, framed, tok};
use common::{connect, read_to_close, ClientOpts};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(10);

/// A provider on Python's `ssl`: TLS versions `min..=max`, security level 0 so this OpenSSL speaks
/// 1.0 at all; writes the bytes, reads to the close, prints `ok VERSION HEX` or `error WHY`.
const CLIENT: &str = r#"
import ssl, socket, sys
ip, port, host, vmin, vmax, ca, pem, send = sys.argv[1:9]
V = {'1.0': ssl.TLSVersion.TLSv1, '1.1': ssl.TLSVersion.TLSv1_1,
     '1.2': ssl.TLSVersion.TLSv1_2, '1.3': ssl.TLSVersion.TLSv1_3}
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.set_ciphers('DEFAULT:@SECLEVEL=0')
ctx.minimum_version = V[vmin]
ctx.maximum_version = V[vmax]
ctx.load_verify_locations(ca)
if pem != '-':
    ctx.load_cert_chain(pem)
try:
    s = ctx.wrap_socket(socket.create_connection((ip, int(port)), timeout=20), server_hostname=host)
    s.sendall(bytes.fromhex(send))
    data = b''
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    print('ok', s.version(), data.hex())
except Exception as e:
    print('error', e)
"#;

/// PEM files a Python client loads, in a directory removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(emu: &Emulator, tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("apnsim-tls10-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), emu.ca_pem()).unwrap();
        for (name, kind) in [
            ("production", ProviderKind::Production),
            ("sandbox", ProviderKind::Sandbox),
        ] {
            let id = emu.identity(kind);
            std::fs::write(
                dir.join(format!("{name}.pem")),
                format!("{}{}", id.cert_pem, id.key_pem),
            )
            .unwrap();
        }
        let foreign = apnsim::certs::Authority::new_in_memory()
            .unwrap()
            .issue_provider(&apnsim::certs::ProviderSpec::new(
                emu.topic(),
                &[Environment::Production, Environment::Sandbox],
            ))
            .unwrap();
        std::fs::write(
            dir.join("foreign.pem"),
            format!("{}{}", foreign.cert_pem, foreign.key_pem),
        )
        .unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One Python client run: `versions` as "min-max", `cert` a file stem or `-` for none.
async fn python(
    files: &Files,
    addr: SocketAddr,
    host: &str,
    (min, max): (&str, &str),
    cert: &str,
    send: &[u8],
) -> String {
    let pem = if cert == "-" {
        "-".to_string()
    } else {
        files.path(&format!("{cert}.pem"))
    };
    run_client(&files.path("ca.pem"), &pem, addr, host, (min, max), send).await
}

/// Runs [`CLIENT`] with the CA and combined certificate+key PEM at these paths (`-`: none).
async fn run_client(
    ca: &str,
    pem: &str,
    addr: SocketAddr,
    host: &str,
    (min, max): (&str, &str),
    send: &[u8],
) -> String {
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            host,
            min,
            max,
            ca,
            pem,
            &hex::encode(send),
        ])
        .output()
        .await
        .expect("python3 is needed by this test");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn emulator(min: LegacyTlsMin) -> Emulator {
    Emulator::builder()
        .legacy_tls_min(min)
        .start()
        .await
        .unwrap()
}

/// Two good notifications then a bad token (status 5): the answer proves the write path too.
fn batch() -> Vec<u8> {
    let mut b = framed(1, &tok(1));
    b.extend(framed(2, &tok(2)));
    b.extend(framed(3, &[0; 5]));
    b
}

/// The `reason` of the next `connection-refused` event, after which the journal is cleared.
async fn refusal(emu: &Emulator) -> String {
    let events = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::ConnectionRefused), 1, WAIT)
        .await
        .expect("connection-refused journaled");
    let detail = events[0].detail.clone().expect("detail");
    emu.journal().clear();
    detail["reason"].as_str().expect("reason").to_string()
}

/// Asserts the batch was delivered at `version` (journal spelling) and clears the journal.
async fn assert_delivered(emu: &Emulator, said: &str, python_version: &str, version: &str) {
    assert_eq!(
        said,
        format!("ok {python_version} {}", hex::encode(error_response(5, 3)))
    );
    let accepted = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::Accepted), 2, WAIT)
        .await
        .expect("two notifications accepted");
    assert_eq!(accepted.len(), 2);
    let opened = emu
        .journal()
        .query(&Filter::kind(EventKind::ConnectionOpened));
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].detail.as_ref().unwrap()["tls_version"],
        version,
        "{opened:?}"
    );
    emu.journal()
        .wait_for(&Filter::kind(EventKind::ConnectionClosed), 1, WAIT)
        .await
        .expect("closed");
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 2);
    emu.journal().clear();
}

#[tokio::test]
async fn a_tls10_only_provider_delivers_with_min_1_0_and_is_refused_without() {
    let emu = emulator(LegacyTlsMin::Tls1_0).await;
    let files = Files::new(&emu, "10");
    let host = "gateway.push.apple.com";
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.0", "1.0"),
        "production",
        &batch(),
    )
    .await;
    assert_delivered(&emu, &said, "TLSv1", "TLSv1_0").await;
    emu.shutdown().await;

    // The same client against the default listener: refused, told why, nothing accepted.
    let emu = emulator(LegacyTlsMin::Tls1_2).await;
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.0", "1.0"),
        "production",
        &batch(),
    )
    .await;
    assert!(said.starts_with("error"), "{said}");
    assert_eq!(
        refusal(&emu).await,
        "client offered only TLS 1.0 (this listener needs ≥ 1.2; see --legacy-tls-min)"
    );
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_tls11_only_provider_delivers_with_min_1_1_and_a_tls10_one_is_told_why() {
    let emu = emulator(LegacyTlsMin::Tls1_1).await;
    let files = Files::new(&emu, "11");
    let host = "gateway.push.apple.com";
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.1", "1.1"),
        "production",
        &batch(),
    )
    .await;
    assert_delivered(&emu, &said, "TLSv1.1", "TLSv1_1").await;
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.0", "1.0"),
        "production",
        &batch(),
    )
    .await;
    assert!(said.starts_with("error"), "{said}");
    assert_eq!(
        refusal(&emu).await,
        "client offered only TLS 1.0 (this listener needs ≥ 1.1; see --legacy-tls-min)"
    );
    emu.shutdown().await;

    let emu = emulator(LegacyTlsMin::Tls1_2).await;
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.1", "1.1"),
        "production",
        &batch(),
    )
    .await;
    assert!(said.starts_with("error"), "{said}");
    assert_eq!(
        refusal(&emu).await,
        "client offered only TLS 1.1 (this listener needs ≥ 1.2; see --legacy-tls-min)"
    );
    emu.shutdown().await;
}

/// The OpenSSL path still serves modern clients: Python up to 1.3 gets 1.2 (legacy ports speak
/// no 1.3 by default), a rustls client gets 1.2, a 1.3-only client hears why it is refused, and
/// `legacy_tls13` lets 1.3 in.
#[tokio::test]
async fn tls12_and_tls13_clients_on_the_openssl_path() {
    let emu = emulator(LegacyTlsMin::Tls1_0).await;
    let files = Files::new(&emu, "12");
    let host = "gateway.push.apple.com";
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.0", "1.3"),
        "production",
        &batch(),
    )
    .await;
    assert_delivered(&emu, &said, "TLSv1.2", "TLSv1_2").await;

    let ca = emu.ca_pem();
    let mut tls = connect(
        emu.legacy_addr(),
        &ClientOpts::new(&ca, Some(emu.identity(ProviderKind::Production))),
    )
    .await
    .expect("rustls client on the OpenSSL path");
    tls.write_all(&batch()).await.unwrap();
    assert_eq!(read_to_close(&mut tls).await.unwrap(), error_response(5, 3));
    emu.journal()
        .wait_for(&Filter::kind(EventKind::Accepted), 2, WAIT)
        .await
        .expect("accepted");
    emu.journal().clear();

    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.3", "1.3"),
        "production",
        &batch(),
    )
    .await;
    assert!(said.starts_with("error"), "{said}");
    assert_eq!(
        refusal(&emu).await,
        "client offered only TLS 1.3 (this gateway speaks TLS 1.2, as Apple's did)"
    );
    emu.shutdown().await;

    let emu = Emulator::builder()
        .settings(Settings {
            legacy_tls13: true,
            legacy_tls_min: LegacyTlsMin::Tls1_0,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let files = Files::new(&emu, "13");
    let said = python(
        &files,
        emu.legacy_addr(),
        host,
        ("1.0", "1.3"),
        "production",
        &batch(),
    )
    .await;
    assert_delivered(&emu, &said, "TLSv1.3", "TLSv1_3").await;
    emu.shutdown().await;
}

/// The certificate checks and their words are the rustls path's (see legacy_refusals.rs), over TLS 1.0.
#[tokio::test]
async fn certificate_refusals_over_tls10_say_the_same_as_on_rustls() {
    let emu = emulator(LegacyTlsMin::Tls1_0).await;
    let files = Files::new(&emu, "refusals");
    let addr = emu.legacy_addr();
    let v10 = ("1.0", "1.0");
    for (host, cert, words) in [
        (
            "gateway.push.apple.com",
            "sandbox",
            "client certificate is for sandbox, this is the production gateway",
        ),
        // No SNI (an IP address): the listener's own environment, production here.
        (
            "127.0.0.1",
            "sandbox",
            "client certificate is for sandbox, this is the production gateway",
        ),
        (
            "gateway.push.apple.com",
            "foreign",
            "client certificate not signed by apnsim's CA (certs/ca.pem)",
        ),
        ("gateway.push.apple.com", "-", "no client certificate"),
    ] {
        let said = python(&files, addr, host, v10, cert, &batch()).await;
        assert!(said.starts_with("error"), "{cert} at {host}: {said}");
        assert_eq!(refusal(&emu).await, words, "{cert} at {host}");
    }
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(refusal(&emu).await, "plaintext / HTTP/1.1 on a TLS port");
    drop(plain);
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 0);

    // SNI picks the environment, as on rustls: the sandbox certificate is good for the sandbox
    // host name on the production listener.
    let said = python(
        &files,
        addr,
        "gateway.sandbox.push.apple.com",
        v10,
        "sandbox",
        &batch(),
    )
    .await;
    assert!(said.starts_with("ok TLSv1 "), "{said}");
    let opened = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::ConnectionOpened), 1, WAIT)
        .await
        .unwrap();
    assert_eq!(opened[0].environment, Environment::Sandbox);
    assert_eq!(
        opened[0].detail.as_ref().unwrap()["sni"],
        "gateway.sandbox.push.apple.com"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn feedback_is_served_over_tls10() {
    let emu = emulator(LegacyTlsMin::Tls1_0).await;
    let files = Files::new(&emu, "feedback");
    emu.registry().register(TokenRecord {
        topic: Some(emu.topic().to_string()),
        unregistered_at: Some(1_600_000_000_000),
        ..TokenRecord::new(
            DeviceToken::from_bytes(vec![0xab; 32]),
            Some(Environment::Production),
        )
    });
    emu.registry().add_feedback(
        Some(Environment::Production),
        emu.topic(),
        FeedbackEntry {
            timestamp: 1_600_000_100,
            token: DeviceToken::from_bytes(vec![0xcd; 32]),
        },
    );
    let said = python(
        &files,
        emu.feedback_addr(),
        "feedback.push.apple.com",
        ("1.0", "1.0"),
        "production",
        &[],
    )
    .await;
    let mut want = Vec::new();
    want.extend(1_600_000_000u32.to_be_bytes());
    want.extend(32u16.to_be_bytes());
    want.extend([0xab; 32]);
    want.extend(1_600_000_100u32.to_be_bytes());
    want.extend(32u16.to_be_bytes());
    want.extend([0xcd; 32]);
    assert_eq!(said, format!("ok TLSv1 {}", hex::encode(&want)));
    let served = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::FeedbackServed), 1, WAIT)
        .await
        .unwrap();
    assert_eq!(served[0].detail.as_ref().unwrap()["tls_version"], "TLSv1_0");

    // The wrong environment is refused on feedback too, with the feedback service's words.
    let said = python(
        &files,
        emu.feedback_addr(),
        "feedback.push.apple.com",
        ("1.0", "1.0"),
        "sandbox",
        &[],
    )
    .await;
    assert!(said.starts_with("error"), "{said}");
    assert_eq!(
        refusal(&emu).await,
        "client certificate is for sandbox, this is the production feedback service"
    );
    emu.shutdown().await;
}

/// The serve flag: `apnsim serve --legacy-tls-min 1.0` lets the TLS 1.0 provider deliver, with the
/// certificates `serve` generated.
#[tokio::test]
async fn serve_takes_legacy_tls_min() {
    let dir = std::env::temp_dir().join(format!("apnsim-tls10-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ready = dir.join("ready.json");
    let certs = dir.join("certs");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .arg("serve")
        .args(["--legacy-tls-min", "1.0"])
        .args(["--certs", &certs.display().to_string()])
        .args(["--ready-file", &ready.display().to_string()])
        .args(["--legacy-port", "0", "--sandbox-legacy-port", "off"])
        .args(["--feedback-port", "off", "--sandbox-feedback-port", "off"])
        .args(["--http2-port", "off", "--sandbox-http2-port", "off"])
        .args([
            "--manage-broadcast-port",
            "off",
            "--sandbox-manage-broadcast-port",
            "off",
        ])
        .args(["--control-port", "off"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    let addr: SocketAddr = json["legacy"].as_str().unwrap().parse().unwrap();
    let said = run_client(
        &certs.join("ca.pem").display().to_string(),
        &certs
            .join("provider-production-combined.pem")
            .display()
            .to_string(),
        addr,
        "gateway.push.apple.com",
        ("1.0", "1.0"),
        &batch(),
    )
    .await;
    assert_eq!(
        said,
        format!("ok TLSv1 {}", hex::encode(error_response(5, 3)))
    );
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
