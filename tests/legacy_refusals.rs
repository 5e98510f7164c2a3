//! Refused connections on the legacy ports say why in plain words, in the journal's
//! `connection-refused` detail (issue: the legacy gateway as providers met it, part 5): an old TLS
//! version, a certificate of the other environment or another CA, no certificate, plaintext.

mod common;

use apnsim::journal::{EventKind, Filter};
use apnsim::model::Environment;
use apnsim::{Emulator, ProviderKind};
use common::frames::{framed, tok};
use common::{connect, read_to_close, ClientOpts};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(10);

/// Connects with `opts`, writes one notification and reads to the close, ignoring every error:
/// the refusal is read from the journal.
async fn attempt(addr: SocketAddr, opts: &ClientOpts<'_>) {
    if let Ok(mut tls) = connect(addr, opts).await {
        let _ = tls.write_all(&framed(1, &tok(1))).await;
        let _ = tls.flush().await;
        let _ = read_to_close(&mut tls).await;
    }
}

/// The `reason` of the next `connection-refused` event, after clearing the journal.
async fn refusal(emu: &Emulator) -> String {
    let events = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::ConnectionRefused), 1, WAIT)
        .await
        .expect("connection-refused journaled");
    let detail = events[0].detail.clone().expect("detail");
    emu.journal().clear();
    let reason = detail["reason"].as_str().expect("reason").to_string();
    assert!(
        !reason.contains("http"),
        "a link reached the user: {reason}"
    );
    reason
}

/// A Python `ssl` client limited to TLS 1.0, as pyOpenSSL `TLSv1_METHOD` daemons are; security
/// level 0 so this OpenSSL lets it speak 1.0 at all. Prints the server's bytes, or the error.
pub fn python_tls10_client(
    addr: SocketAddr,
    ca: &str,
    pem: &str,
    host: &str,
    frame: &[u8],
) -> String {
    format!(
        "import ssl, socket, sys\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
         ctx.minimum_version = ssl.TLSVersion.TLSv1\n\
         ctx.maximum_version = ssl.TLSVersion.TLSv1\n\
         ctx.set_ciphers('DEFAULT:@SECLEVEL=0')\n\
         ctx.load_verify_locations('{ca}')\n\
         ctx.load_cert_chain('{pem}')\n\
         try:\n    s = ctx.wrap_socket(socket.create_connection(('{ip}', {port})), server_hostname='{host}')\n    s.sendall(bytes.fromhex('{hex}'))\n    print('sent', s.version())\n    s.close()\n\
         except Exception as e:\n    print('error', e)\n",
        ip = addr.ip(),
        port = addr.port(),
        hex = hex::encode(frame),
    )
}

#[tokio::test]
async fn every_refusal_says_why_in_plain_words() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let addr = emu.legacy_addr();

    attempt(
        addr,
        &ClientOpts::new(&ca, Some(emu.identity(ProviderKind::Sandbox))),
    )
    .await;
    assert_eq!(
        refusal(&emu).await,
        "client certificate is for sandbox, this is the production gateway"
    );

    let foreign = apnsim::certs::Authority::new_in_memory()
        .unwrap()
        .issue_provider(&apnsim::certs::ProviderSpec::new(
            emu.topic(),
            &[Environment::Production],
        ))
        .unwrap();
    attempt(addr, &ClientOpts::new(&ca, Some(&foreign))).await;
    assert_eq!(
        refusal(&emu).await,
        "client certificate not signed by apnsim's CA (certs/ca.pem)"
    );

    attempt(addr, &ClientOpts::new(&ca, None)).await;
    assert_eq!(refusal(&emu).await, "no client certificate");

    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(refusal(&emu).await, "plaintext / HTTP/1.1 on a TLS port");
    drop(plain);
    emu.shutdown().await;
}

/// A TLS 1.0-only provider is refused on a default (TLS 1.2) listener with the reason that names
/// the flag, and nothing it sent is journaled as accepted.
#[tokio::test]
async fn a_tls10_only_client_is_refused_by_default_and_told_why() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("apnsim-tls10-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, emu.ca_pem()).unwrap();
    let pem = dir.join("provider.pem");
    let id = emu.identity(ProviderKind::Production);
    std::fs::write(&pem, format!("{}{}", id.cert_pem, id.key_pem)).unwrap();
    let script = python_tls10_client(
        emu.legacy_addr(),
        &ca.display().to_string(),
        &pem.display().to_string(),
        "gateway.push.apple.com",
        &framed(1, &tok(1)),
    );
    let out = tokio::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .await
        .expect("python3 is needed by this test");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.starts_with("error"),
        "client: {said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        refusal(&emu).await,
        "client offered only TLS 1.0 (this listener needs ≥ 1.2; see --legacy-tls-min)"
    );
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 0);
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}
