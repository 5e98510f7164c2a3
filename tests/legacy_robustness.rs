//! Hostile and broken input on the gateway: absurd lengths, truncated frames, non-TLS bytes,
//! vanishing clients. The server answers as documented, never hangs, and keeps serving others.

mod common;

use apnsim::journal::{EventKind, Filter};
use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd2, item};
use common::{connect, read_to_close, send, ClientOpts};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A command-2 frame with items 1 to 3 and a minimal payload (PROTOCOL.md 1.4).
fn framed(id: u32, token_byte: u8) -> Vec<u8> {
    cmd2(&[
        item(1, &[token_byte; 32]),
        item(2, br#"{"aps":{}}"#),
        item(3, &id.to_be_bytes()),
    ])
}

#[tokio::test]
async fn absurd_frame_length_is_refused_before_the_body_arrives() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    send(&mut tls, &[2, 0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(
        read_to_close(&mut tls).await.unwrap(),
        vec![8, 128, 0, 0, 0, 0]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn truncated_frame_waits_then_idle_timeout_closes_and_others_are_served() {
    let emu = Emulator::builder()
        .settings(Settings {
            idle_timeout_secs: 1,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut stuck = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let frame = framed(1, 1);
    send(&mut stuck, &frame[..20]).await;
    // Meanwhile another provider is served normally.
    let mut other = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    send(&mut other, &framed(2, 2)).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    // The truncated frame is neither accepted nor answered; the idle timeout closes it.
    let started = std::time::Instant::now();
    let got = read_to_close(&mut stuck).await.unwrap();
    assert!(got.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    let closed = emu
        .journal()
        .query(&Filter::kind(EventKind::ConnectionClosed));
    assert!(closed
        .iter()
        .any(|e| e.detail.as_ref().unwrap()["cause"] == "idle-timeout"));
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 1);
    drop(other);
    emu.shutdown().await;
}

#[tokio::test]
async fn client_vanishing_mid_frame_is_logged_and_nothing_half_read_is_accepted() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let mut bytes = framed(1, 1);
    bytes.extend(&framed(2, 2)[..30]);
    send(&mut tls, &bytes).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    tls.get_mut().0.shutdown().await.unwrap();
    drop(tls);
    let closed = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::ConnectionClosed),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let cause = closed[0].detail.as_ref().unwrap()["cause"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cause.contains("mid-frame") || cause.starts_with("io"),
        "{cause}"
    );
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn plain_bytes_fail_the_handshake_and_the_listener_lives_on() {
    let emu = Emulator::builder().start().await.unwrap();
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[2, 0, 0, 0, 10, 1, 2, 3][..],
        &[0u8; 4096][..],
    ] {
        let mut tcp = TcpStream::connect(emu.legacy_addr()).await.unwrap();
        let _ = tcp.write_all(garbage).await;
        let mut sink = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
        assert!(r.is_ok(), "server hung on non-TLS bytes");
    }
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    send(&mut tls, &framed(1, 1)).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(
        emu.journal()
            .count(&Filter::kind(EventKind::ConnectionRefused))
            >= 3
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn many_connections_in_parallel_each_journal_exactly_their_notifications() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production).clone();
    let addr = emu.legacy_addr();
    let mut tasks = Vec::new();
    for c in 0..8u32 {
        let (ca, id) = (ca.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let mut tls = connect(addr, &ClientOpts::new(&ca, Some(&id)))
                .await
                .unwrap();
            let mut batch = Vec::new();
            for i in 0..250u32 {
                batch.extend(framed(c * 1000 + i, c as u8));
            }
            send(&mut tls, &batch).await;
            tls
        }));
    }
    let mut keep = Vec::new();
    for t in tasks {
        keep.push(t.await.unwrap());
    }
    let got = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            2000,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let mut ids: Vec<_> = got
        .iter()
        .map(|e| {
            e.notification
                .clone()
                .unwrap()
                .identifier
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2000, "every notification journaled exactly once");
    drop(keep);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_starts_tls_is_refused_after_the_handshake_timeout() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut silent = TcpStream::connect(emu.legacy_addr()).await.unwrap();
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), silent.read_to_end(&mut sink)).await;
    assert!(
        r.is_ok(),
        "the server kept a silent connection open past its handshake timeout"
    );
    assert!(started.elapsed() >= Duration::from_secs(9));
    let refused = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::ConnectionRefused),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        refused[0].detail.as_ref().unwrap()["reason"],
        "handshake not finished within 10 s"
    );
    emu.shutdown().await;
}
