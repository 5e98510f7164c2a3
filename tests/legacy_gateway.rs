//! The binary gateway over real TLS sockets: every status, the discard rule, the command-0
//! close, environments by listener and SNI, certificate refusal, shutdown status 10.
//! Frames are built byte by byte here (PROTOCOL.md 1.2–1.4), independently of apnsim's codec.

mod common;

use apnsim::engine::TokenRecord;
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment, Protocol};
use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd0, cmd1, cmd2, error_response, framed, framed_full, item, tok, PAYLOAD};
use common::{connect, read_to_close, send, ClientOpts};
use std::time::Duration;

async fn emulator(settings: Settings) -> Emulator {
    Emulator::builder()
        .settings(settings)
        .start()
        .await
        .expect("start")
}

/// Sends `bytes` on a fresh production connection and returns what the server wrote before closing.
async fn exchange(emu: &Emulator, bytes: &[u8]) -> Vec<u8> {
    let id = emu.identity(ProviderKind::Production);
    let ca = emu.ca_pem();
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .expect("connect");
    send(&mut tls, bytes).await;
    read_to_close(&mut tls)
        .await
        .expect("closed with close_notify")
}

async fn wait_closed(emu: &Emulator, n: usize) {
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::ConnectionClosed),
            n,
            Duration::from_secs(10),
        )
        .await
        .expect("connection closed");
}

#[tokio::test]
async fn accepts_all_three_commands_and_journals_fields() {
    let emu = emulator(Settings::default()).await;
    let id = emu.identity(ProviderKind::Production);
    let ca = emu.ca_pem();
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let mut batch = cmd0(&tok(1), PAYLOAD);
    batch.extend(cmd1(0x0102_0304, 1_900_000_000, &tok(2), PAYLOAD));
    batch.extend(framed(7, &tok(3)));
    batch.extend(cmd2(&[
        item(1, &tok(4)),
        item(2, PAYLOAD),
        item(3, &9u32.to_be_bytes()),
    ]));
    send(&mut tls, &batch).await;
    let got = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            4,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let n: Vec<_> = got
        .iter()
        .map(|e| e.notification.clone().unwrap())
        .collect();
    assert_eq!(n[0].command, Some(0));
    assert_eq!(n[0].identifier, None);
    assert_eq!(
        n[1].identifier.map(|i| i.to_string()).as_deref(),
        Some("01020304")
    );
    assert_eq!(n[1].expiry, Some(1_900_000_000));
    assert_eq!(n[2].identifier.map(|i| i.as_u32()), Some(7));
    assert_eq!(n[3].priority, 10, "missing priority item defaults to 10");
    assert_eq!(n[3].expiry, Some(0), "missing expiry item defaults to 0");
    assert_eq!(n[2].token, DeviceToken::from_bytes(tok(3)));
    assert_eq!(&n[2].payload[..], PAYLOAD);
    assert_eq!(n[2].topic.as_deref(), Some(emu.topic()));
    assert!(got
        .iter()
        .all(|e| e.protocol == Protocol::Legacy && e.environment == Environment::Production));
    // Accepted notifications get no reply; the connection stays open.
    let mut probe = [0u8; 1];
    let r = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::io::AsyncReadExt::read(&mut tls, &mut probe),
    )
    .await;
    assert!(
        r.is_err(),
        "server wrote or closed after accepted notifications"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn every_status_gets_its_six_byte_error_response_then_close() {
    let emu = emulator(Settings {
        legacy_max_payload: 256,
        ..Settings::default()
    })
    .await;
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_bytes(tok(0xee)),
        Some(Environment::Sandbox),
    ));
    let big = vec![b'x'; 257];
    let cases: Vec<(Vec<u8>, u8, u32)> = vec![
        (
            cmd2(&[item(2, PAYLOAD), item(3, &11u32.to_be_bytes())]),
            2,
            11,
        ),
        (cmd1(12, 0, &[], PAYLOAD), 2, 12),
        (
            cmd2(&[item(1, &tok(1)), item(3, &13u32.to_be_bytes())]),
            4,
            13,
        ),
        (cmd1(14, 0, &tok(1), b""), 4, 14),
        (cmd1(15, 0, &[1; 31], PAYLOAD), 5, 15),
        (framed(16, &[1; 33]), 5, 16),
        (cmd1(17, 0, &tok(1), &big), 7, 17),
        (framed_full(18, 0, &tok(1), &big), 7, 18),
        (framed(19, &tok(0xee)), 8, 19),
        (cmd1(20, 0, &tok(0xee), PAYLOAD), 8, 20),
        (vec![9, 1, 2, 3], 128, 0),
        (
            cmd2(&[
                item(1, &tok(1)),
                item(3, &21u32.to_be_bytes()),
                item(9, b"?"),
                item(2, PAYLOAD),
            ]),
            128,
            21,
        ),
        (
            cmd2(&[item(1, &tok(1)), item(1, &tok(1)), item(2, PAYLOAD)]),
            128,
            0,
        ),
        (
            cmd2(&[item(3, &[1, 2]), item(1, &tok(1)), item(2, PAYLOAD)]),
            128,
            0,
        ),
    ];
    for (i, (bytes, status, id)) in cases.iter().enumerate() {
        let got = exchange(&emu, bytes).await;
        assert_eq!(
            got,
            error_response(*status, *id),
            "case {i}: status {status}"
        );
    }
    wait_closed(&emu, cases.len()).await;
    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    assert_eq!(rejected.len(), cases.len());
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn frames_after_a_rejected_one_are_discarded_never_accepted() {
    let emu = emulator(Settings::default()).await;
    let mut batch = framed(1, &tok(1));
    batch.extend(framed(2, &tok(2)));
    batch.extend(framed(3, &[0; 5]));
    for i in 4..=10 {
        batch.extend(framed(i, &tok(i as u8)));
    }
    assert_eq!(exchange(&emu, &batch).await, error_response(5, 3));
    wait_closed(&emu, 1).await;
    let j = emu.journal();
    let accepted: Vec<_> = j
        .query(&Filter::kind(EventKind::Accepted))
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
    assert_eq!(accepted, vec!["00000001", "00000002"]);
    let discarded: Vec<_> = j
        .query(&Filter::kind(EventKind::Discarded))
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
    assert_eq!(discarded.len(), 7);
    assert_eq!(discarded[0], "00000004");
    // Rejected is journaled before the discarded ones, accepted ones before it.
    let rejected = &j.query(&Filter::kind(EventKind::Rejected))[0];
    assert!(j
        .query(&Filter::kind(EventKind::Discarded))
        .iter()
        .all(|e| e.seq > rejected.seq));
    emu.shutdown().await;
}

#[tokio::test]
async fn command_zero_is_closed_without_an_error_response() {
    let emu = emulator(Settings::default()).await;
    let mut batch = cmd0(&tok(1), PAYLOAD);
    batch.extend(cmd0(&[1; 7], PAYLOAD));
    batch.extend(cmd0(&tok(3), PAYLOAD));
    assert_eq!(exchange(&emu, &batch).await, Vec::<u8>::new());
    wait_closed(&emu, 1).await;
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 1);
    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    assert_eq!(rejected[0].status, Some(5));
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Discarded)), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn environment_comes_from_the_listener_or_sni() {
    let emu = emulator(Settings::default()).await;
    let ca = emu.ca_pem();
    let sandbox_token = tok(0x5a);
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_bytes(sandbox_token.clone()),
        Some(Environment::Sandbox),
    ));
    let universal = emu.identity(ProviderKind::Universal);

    // Sandbox listener: the sandbox token is fine.
    let mut tls = connect(
        emu.addr("sandbox_legacy").unwrap(),
        &ClientOpts::new(&ca, Some(universal)),
    )
    .await
    .unwrap();
    send(&mut tls, &framed(1, &sandbox_token)).await;
    // Production listener but sandbox SNI: sandbox too.
    let mut opts = ClientOpts::new(&ca, Some(universal));
    opts.sni = "gateway.sandbox.push.apple.com";
    let mut tls2 = connect(emu.legacy_addr(), &opts).await.unwrap();
    send(&mut tls2, &framed(2, &sandbox_token)).await;
    let got = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            2,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(got.iter().all(|e| e.environment == Environment::Sandbox));
    // Production listener with the production name: status 8, the classic sandbox-token mistake.
    let mut opts = ClientOpts::new(&ca, Some(universal));
    opts.sni = "gateway.push.apple.com";
    let mut tls3 = connect(emu.legacy_addr(), &opts).await.unwrap();
    send(&mut tls3, &framed(3, &sandbox_token)).await;
    assert_eq!(
        read_to_close(&mut tls3).await.unwrap(),
        error_response(8, 3)
    );
    drop((tls, tls2));
    emu.shutdown().await;
}

#[tokio::test]
async fn certificates_of_the_wrong_environment_or_ca_are_refused_in_the_handshake() {
    let emu = emulator(Settings::default()).await;
    let ca = emu.ca_pem();
    let refused = |r: std::io::Result<Vec<u8>>| r.is_err();
    // Sandbox certificate on the production gateway.
    let sandbox = emu.identity(ProviderKind::Sandbox);
    let outcome = match connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(sandbox))).await {
        Err(_) => true,
        Ok(mut tls) => {
            send_ignoring(&mut tls, &framed(1, &tok(1))).await;
            refused(read_to_close(&mut tls).await)
        }
    };
    assert!(outcome, "sandbox certificate was accepted on production");
    // A certificate from another CA.
    let other = apnsim::certs::Authority::new_in_memory().unwrap();
    let foreign = other
        .issue_provider(&apnsim::certs::ProviderSpec::new(
            emu.topic(),
            &[Environment::Production],
        ))
        .unwrap();
    let outcome = match connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(&foreign))).await {
        Err(_) => true,
        Ok(mut tls) => {
            send_ignoring(&mut tls, &framed(1, &tok(1))).await;
            refused(read_to_close(&mut tls).await)
        }
    };
    assert!(outcome, "foreign certificate was accepted");
    // No certificate at all.
    let outcome = match connect(emu.legacy_addr(), &ClientOpts::new(&ca, None)).await {
        Err(_) => true,
        Ok(mut tls) => {
            send_ignoring(&mut tls, &framed(1, &tok(1))).await;
            refused(read_to_close(&mut tls).await)
        }
    };
    assert!(outcome, "connection without certificate was accepted");
    // Sandbox certificate on the sandbox gateway is fine.
    let mut ok = connect(
        emu.addr("sandbox_legacy").unwrap(),
        &ClientOpts::new(&ca, Some(sandbox)),
    )
    .await
    .unwrap();
    send(&mut ok, &framed(1, &tok(1))).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 1);
    assert!(
        emu.journal()
            .count(&Filter::kind(EventKind::ConnectionRefused))
            >= 3
    );
    emu.shutdown().await;
}

async fn send_ignoring(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    bytes: &[u8],
) {
    let _ = tokio::io::AsyncWriteExt::write_all(tls, bytes).await;
    let _ = tokio::io::AsyncWriteExt::flush(tls).await;
}

#[tokio::test]
async fn tls13_is_refused_on_the_legacy_port_by_default() {
    let emu = emulator(Settings::default()).await;
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut opts = ClientOpts::new(&ca, Some(id));
    opts.tls13_only = true;
    assert!(connect(emu.legacy_addr(), &opts).await.is_err());
    emu.shutdown().await;
    let emu = emulator(Settings {
        legacy_tls13: true,
        ..Settings::default()
    })
    .await;
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut opts = ClientOpts::new(&ca, Some(id));
    opts.tls13_only = true;
    let mut tls = connect(emu.legacy_addr(), &opts)
        .await
        .expect("1.3 allowed by setting");
    send(&mut tls, &framed(1, &tok(1))).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn strict_tokens_refuse_unregistered_tokens_with_status_8() {
    let emu = emulator(Settings {
        strict_tokens: true,
        ..Settings::default()
    })
    .await;
    emu.registry()
        .register(TokenRecord::new(DeviceToken::from_bytes(tok(1)), None));
    let mut batch = framed(1, &tok(1));
    batch.extend(framed(2, &tok(2)));
    assert_eq!(exchange(&emu, &batch).await, error_response(8, 2));
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_status_10_with_the_last_accepted_identifier() {
    let emu = emulator(Settings::default()).await;
    let id = emu.identity(ProviderKind::Production).clone();
    let ca = emu.ca_pem();
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(&id)))
        .await
        .unwrap();
    let mut batch = framed(41, &tok(1));
    batch.extend(framed(42, &tok(2)));
    send(&mut tls, &batch).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            2,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let reader = tokio::spawn(async move { read_to_close(&mut tls).await });
    emu.shutdown().await;
    assert_eq!(reader.await.unwrap().unwrap(), error_response(10, 42));
}

#[tokio::test]
async fn error_delay_setting_holds_the_answer_and_discards_what_arrives_meanwhile() {
    let emu = emulator(Settings {
        legacy_answer_delay_ms: 300,
        ..Settings::default()
    })
    .await;
    let id = emu.identity(ProviderKind::Production);
    let ca = emu.ca_pem();
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    send(&mut tls, &framed(1, &[1; 3])).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&mut tls, &framed(2, &tok(2))).await;
    assert_eq!(read_to_close(&mut tls).await.unwrap(), error_response(5, 1));
    assert!(started.elapsed() >= Duration::from_millis(300));
    wait_closed(&emu, 1).await;
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Discarded)), 1);
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 0);
    emu.shutdown().await;
}
