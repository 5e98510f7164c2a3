//! The legacy gateway's timing as providers met it over a real network (PROTOCOL.md 1.7): the
//! answer to a bad notification arrives a round trip later, and what the provider wrote meanwhile
//! is read and thrown away — with the default settings, the same way on every run.

mod common;

use apnsim::engine::TokenRecord;
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment};
use apnsim::{Emulator, ProviderKind};
use common::frames::{error_response, framed, tok};
use common::{connect, read_to_close, ClientOpts};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// (identifier, kind, status, reason) of every notification event since `since`.
fn verdicts(emu: &Emulator, since: u64) -> Vec<(u32, String, Option<u16>, Option<String>)> {
    let filter = Filter {
        since: Some(since),
        ..Filter::default()
    };
    emu.journal()
        .query(&filter)
        .into_iter()
        .filter_map(|e| {
            let id = e.notification.as_ref()?.identifier?;
            Some((
                u32::from_be_bytes(id.0),
                e.kind.as_str().to_string(),
                e.status,
                e.reason.clone(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn a_sandbox_token_at_10_of_20_written_every_10_ms_loses_11_to_20_on_every_run() {
    // Default settings: the seed story must reproduce out of the box.
    let emu = Emulator::builder().start().await.unwrap();
    let sandbox = tok(99);
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_bytes(sandbox.clone()),
        Some(Environment::Sandbox),
    ));
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut want: Vec<(u32, String, Option<u16>, Option<String>)> = (1..=9)
        .map(|i| (i, "accepted".to_string(), None, None))
        .collect();
    want.push((10, "rejected".into(), Some(8), Some("invalid_token".into())));
    want.extend((11..=20).map(|i| {
        (
            i,
            "discarded".to_string(),
            None,
            Some("after status 8 for #10".to_string()),
        )
    }));
    for run in 1..=20 {
        let since = emu.journal().last_seq();
        let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(id)))
            .await
            .unwrap();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for i in 1..=20u32 {
            tick.tick().await;
            let token = if i == 10 { sandbox.clone() } else { tok(1) };
            tls.write_all(&framed(i, &token)).await.unwrap();
            tls.flush().await.unwrap();
        }
        assert_eq!(
            read_to_close(&mut tls).await.unwrap(),
            error_response(8, 10),
            "run {run}"
        );
        emu.journal()
            .wait_for(
                &Filter {
                    since: Some(since),
                    ..Filter::kind(EventKind::ConnectionClosed)
                },
                1,
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(verdicts(&emu, since), want, "run {run}");
    }
    emu.shutdown().await;
}
