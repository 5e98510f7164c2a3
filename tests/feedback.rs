//! The feedback service over real TLS: tuples for the certificate's topic, cleared once read,
//! an empty list closes right after the handshake (PROTOCOL.md 1.8).

mod common;

use apnsim::engine::{FeedbackEntry, TokenRecord};
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment};
use apnsim::{Emulator, ProviderKind};
use common::{connect, read_to_close, ClientOpts};
use std::time::Duration;

#[tokio::test]
async fn serves_tuples_for_the_topic_once_then_nothing() {
    let emu = Emulator::builder().start().await.unwrap();
    let gone = DeviceToken::from_bytes(vec![0xab; 32]);
    emu.registry().register(TokenRecord {
        topic: Some(emu.topic().to_string()),
        unregistered_at: Some(1_600_000_000_000),
        ..TokenRecord::new(gone.clone(), Some(Environment::Production))
    });
    emu.registry().add_feedback(
        Some(Environment::Production),
        emu.topic(),
        FeedbackEntry {
            timestamp: 1_600_000_100,
            token: DeviceToken::from_bytes(vec![0xcd; 32]),
        },
    );
    // Another app's entry must not leak to this certificate.
    emu.registry().add_feedback(
        Some(Environment::Production),
        "com.other.app",
        FeedbackEntry {
            timestamp: 1,
            token: DeviceToken::from_bytes(vec![1; 32]),
        },
    );
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.feedback_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let bytes = read_to_close(&mut tls).await.unwrap();
    let mut want = Vec::new();
    want.extend(1_600_000_000u32.to_be_bytes());
    want.extend(32u16.to_be_bytes());
    want.extend([0xab; 32]);
    want.extend(1_600_000_100u32.to_be_bytes());
    want.extend(32u16.to_be_bytes());
    want.extend([0xcd; 32]);
    assert_eq!(bytes, want);
    // Cleared once read: the next connection gets nothing and is closed at once.
    let mut tls = connect(emu.feedback_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    assert!(read_to_close(&mut tls).await.unwrap().is_empty());
    let served = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::FeedbackServed),
            2,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        served[0].detail.as_ref().unwrap()["tuples"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The sandbox feedback list is separate.
    let sandbox = emu.identity(ProviderKind::Sandbox);
    let mut tls = connect(
        emu.addr("sandbox_feedback").unwrap(),
        &ClientOpts::new(&ca, Some(sandbox)),
    )
    .await
    .unwrap();
    assert!(read_to_close(&mut tls).await.unwrap().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_feedback_drop_rule_closes_without_taking_the_list() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.registry().add_feedback(
        Some(Environment::Production),
        emu.topic(),
        FeedbackEntry {
            timestamp: 7,
            token: DeviceToken::from_bytes(vec![0xee; 32]),
        },
    );
    let scenario = apnsim::engine::scenario::parse_toml(
        "[[rules]]\nname = \"feedback down\"\nwhen = { on = \"connect\", protocol = \"feedback\" }\nthen = { action = \"drop\" }\ntimes = 1\n",
    )
    .unwrap();
    emu.load_scenario(&scenario).unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.feedback_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut got).await;
    assert!(got.is_empty(), "a dropped feedback connection sent {got:?}");
    let dropped = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::Dropped), 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        dropped[0].detail.as_ref().unwrap()["rule"]["name"],
        "feedback down"
    );
    // The rule healed after one connection, and the list was still there.
    let mut tls = connect(emu.feedback_addr(), &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    let bytes = read_to_close(&mut tls).await.unwrap();
    assert_eq!(bytes.len(), 38);
    assert_eq!(&bytes[6..], &[0xee; 32]);
    emu.shutdown().await;
}
