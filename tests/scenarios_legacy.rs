//! Scripted faults on the binary gateway, proven with a real TLS client: every legacy action
//! (`error`, `drop`, `stall`, `throttle`, `accept`) seen on the wire and in the journal, the legacy
//! side of each ready-made scenario, the classic "sandbox token in a production batch" story, and
//! determinism of seeded faults. Frames are built by hand (PROTOCOL.md 1.2–1.4).

mod common;

use apnsim::engine::TokenRecord;
use apnsim::journal::{Event, EventKind, Filter};
use apnsim::model::{DeviceToken, Environment, Protocol};
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd0, error_response, framed, tok};
use common::scenarios::{emulator_with, fixture, scenario};
use common::{connect, send, ClientOpts};
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The sandbox device token named by `fixtures/scenarios/sandbox-token-silent-drop.toml`.
const SANDBOX_HEX: &str = "5a4d1f7c0e9b2a6d8c3f1e7b9a0d2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c";
const WAIT: Duration = Duration::from_secs(10);

fn sandbox_token() -> Vec<u8> {
    hex::decode(SANDBOX_HEX).unwrap()
}

/// Frames `ids` for `tok(1)`, concatenated (one write, as a batching provider sends them).
fn batch(ids: impl IntoIterator<Item = u32>) -> Vec<u8> {
    ids.into_iter().flat_map(|i| framed(i, &tok(1))).collect()
}

async fn open(emu: &Emulator) -> TlsStream<TcpStream> {
    open_on(emu, emu.legacy_addr()).await
}

async fn open_on(emu: &Emulator, addr: std::net::SocketAddr) -> TlsStream<TcpStream> {
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Universal);
    connect(addr, &ClientOpts::new(&ca, Some(id)))
        .await
        .expect("connect")
}

/// Everything the server wrote until it closed, and how it closed: `None` = clean TLS close,
/// otherwise the error kind the client's read ended with (UnexpectedEof for a bare FIN,
/// ConnectionReset for an RST).
async fn read_until_closed(tls: &mut TlsStream<TcpStream>) -> (Vec<u8>, Option<ErrorKind>) {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, tls.read(&mut chunk)).await {
            Err(_) => panic!("server did not close; got {out:?}"),
            Ok(Ok(0)) => return (out, None),
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return (out, Some(e.kind())),
        }
    }
}

/// Reads exactly `n` bytes (panics on close or timeout).
async fn read_exact(tls: &mut TlsStream<TcpStream>, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(WAIT, tls.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("read");
    buf
}

/// Asserts nothing arrives (and the connection stays open) for `ms`.
async fn assert_silent_open(tls: &mut TlsStream<TcpStream>, ms: u64) {
    let mut b = [0u8; 16];
    match tokio::time::timeout(Duration::from_millis(ms), tls.read(&mut b)).await {
        Err(_) => {}
        Ok(r) => panic!("expected silence on an open connection, got {r:?}"),
    }
}

fn legacy(kind: EventKind) -> Filter {
    Filter {
        protocol: Some(Protocol::Legacy),
        ..Filter::kind(kind)
    }
}

fn events(emu: &Emulator, kind: EventKind) -> Vec<Event> {
    emu.journal().query(&legacy(kind))
}

async fn wait(emu: &Emulator, kind: EventKind, n: usize) -> Vec<Event> {
    emu.journal()
        .wait_for(&legacy(kind), n, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

/// The identifiers (as u32) of the journaled notifications of `kind`, in order.
fn ids(emu: &Emulator, kind: EventKind) -> Vec<u32> {
    events(emu, kind)
        .iter()
        .filter_map(|e| e.notification.as_ref()?.identifier)
        .map(|i| i.as_u32())
        .collect()
}

fn rule_name(e: &Event) -> Option<String> {
    e.detail.as_ref()?["rule"]["name"]
        .as_str()
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Every legacy action.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn error_action_answers_its_status_after_the_rule_delay_then_closes() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "payload too large on the 2nd"
when = { protocol = "legacy", nth = 2 }
then = { action = "error", status = 7 }
delay_ms = 200
"#,
    ))
    .await;
    let mut tls = open(&emu).await;
    let sent = Instant::now();
    send(&mut tls, &batch(1..=3)).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    let elapsed = sent.elapsed();
    assert_eq!(
        bytes,
        error_response(7, 2),
        "status 7 with the 2nd's identifier"
    );
    assert_eq!(
        how, None,
        "error-response then a clean close (PROTOCOL.md 1.7)"
    );
    assert!(
        elapsed >= Duration::from_millis(200),
        "the rule's delay_ms holds the answer: {elapsed:?}"
    );
    wait(&emu, EventKind::ConnectionClosed, 1).await;
    assert_eq!(ids(&emu, EventKind::Accepted), vec![1]);
    let rejected = events(&emu, EventKind::Rejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].status, Some(7));
    assert_eq!(
        rule_name(&rejected[0]).as_deref(),
        Some("payload too large on the 2nd")
    );
    assert_eq!(ids(&emu, EventKind::Rejected), vec![2]);
    assert_eq!(
        ids(&emu, EventKind::Discarded),
        vec![3],
        "after the error: thrown away"
    );
}

#[tokio::test]
async fn error_action_with_close_false_keeps_the_connection() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
when = { protocol = "legacy", nth = 2 }
then = { action = "error", status = "invalid_token", close = false }
"#,
    ))
    .await;
    let mut tls = open(&emu).await;
    send(&mut tls, &batch(1..=3)).await;
    assert_eq!(read_exact(&mut tls, 6).await, error_response(8, 2));
    wait(&emu, EventKind::Accepted, 2).await;
    assert_eq!(ids(&emu, EventKind::Accepted), vec![1, 3]);
    assert_eq!(ids(&emu, EventKind::Rejected), vec![2]);
    assert!(events(&emu, EventKind::Discarded).is_empty());
    assert_silent_open(&mut tls, 200).await;
    // Later notifications on the same connection are still taken.
    send(&mut tls, &framed(4, &tok(1))).await;
    wait(&emu, EventKind::Accepted, 3).await;
    assert_eq!(ids(&emu, EventKind::Accepted), vec![1, 3, 4]);
    assert_eq!(events(&emu, EventKind::ConnectionClosed).len(), 0);
    assert_silent_open(&mut tls, 50).await;
}

#[tokio::test]
async fn drop_action_closes_silently_or_resets() {
    let reset_token = "0202020202020202020202020202020202020202020202020202020202020202";
    let plain_token = "0303030303030303030303030303030303030303030303030303030303030303";
    let emu = emulator_with(scenario(&format!(
        r#"
[[rules]]
name = "reset"
when = {{ protocol = "legacy", token = "{reset_token}" }}
then = {{ action = "drop", reset = true }}

[[rules]]
name = "plain"
when = {{ protocol = "legacy", token = "{plain_token}" }}
then = {{ action = "drop" }}
"#
    )))
    .await;

    // Plain drop: no error-response, a close the client sees as EOF (never a reset).
    let mut tls = open(&emu).await;
    send(&mut tls, &framed(1, &tok(1))).await;
    send(&mut tls, &framed(2, &tok(3))).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    assert!(bytes.is_empty(), "no error-response: {bytes:?}");
    assert!(
        matches!(how, None | Some(ErrorKind::UnexpectedEof)),
        "plain close, got {how:?}"
    );
    wait(&emu, EventKind::ConnectionClosed, 1).await;

    // reset = true: the client's read fails with ECONNRESET.
    let mut tls = open(&emu).await;
    send(&mut tls, &framed(3, &tok(2))).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    assert!(bytes.is_empty(), "no error-response: {bytes:?}");
    assert_eq!(how, Some(ErrorKind::ConnectionReset));
    wait(&emu, EventKind::ConnectionClosed, 2).await;

    assert_eq!(ids(&emu, EventKind::Accepted), vec![1]);
    assert_eq!(ids(&emu, EventKind::Dropped), vec![2, 3]);
    assert!(events(&emu, EventKind::Rejected).is_empty());
    let names: Vec<_> = events(&emu, EventKind::Dropped)
        .iter()
        .map(|e| rule_name(e).unwrap_or_default())
        .collect();
    assert_eq!(names, ["plain", "reset"]);
    for e in events(&emu, EventKind::ConnectionClosed) {
        assert_eq!(e.detail.as_ref().unwrap()["cause"], "dropped");
    }
}

#[tokio::test]
async fn stall_action_reads_nothing_until_it_ends() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
when = { protocol = "legacy", nth = 1 }
then = { action = "stall", for_ms = 400 }
"#,
    ))
    .await;
    let mut tls = open(&emu).await;
    send(&mut tls, &framed(1, &tok(1))).await;
    wait(&emu, EventKind::Accepted, 1).await;
    let stalled_at = Instant::now();
    send(&mut tls, &framed(2, &tok(1))).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        ids(&emu, EventKind::Accepted),
        vec![1],
        "written during the stall: not read yet"
    );
    wait(&emu, EventKind::Accepted, 2).await;
    let waited = stalled_at.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "accepted only after the stall: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "the stall ends: {waited:?}"
    );
    assert_eq!(ids(&emu, EventKind::Accepted), vec![1, 2]);
    assert_silent_open(&mut tls, 50).await;
}

#[tokio::test]
async fn throttle_action_reads_at_the_given_rate() {
    const RATE: u64 = 8_000;
    let emu = emulator_with(scenario(&format!(
        r#"
[[rules]]
when = {{ protocol = "legacy", on = "connect" }}
then = {{ action = "throttle", bytes_per_sec = {RATE} }}
"#
    )))
    .await;
    let mut tls = open(&emu).await;
    let bytes = batch(1..=60);
    let expected = Duration::from_secs_f64(bytes.len() as f64 / RATE as f64);
    let start = Instant::now();
    send(&mut tls, &bytes).await;
    wait(&emu, EventKind::Accepted, 1).await;
    let first = start.elapsed();
    wait(&emu, EventKind::Accepted, 60).await;
    let all = start.elapsed();
    assert!(
        all >= expected.mul_f64(0.8) && all <= expected * 3,
        "{} bytes at {RATE} B/s should take about {expected:?}, took {all:?}",
        bytes.len()
    );
    assert!(
        first < all / 2,
        "read progressively: first {first:?}, all {all:?}"
    );
    assert_eq!(ids(&emu, EventKind::Accepted), (1..=60).collect::<Vec<_>>());

    // Without the rule the same batch is read at once.
    emu.clear_scenario();
    let mut tls = open(&emu).await;
    let start = Instant::now();
    send(&mut tls, &batch(61..=120)).await;
    wait(&emu, EventKind::Accepted, 120).await;
    assert!(
        start.elapsed() < expected / 2,
        "unthrottled: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn accept_action_overrides_the_wrong_environment_refusal() {
    let rule = r#"
[[tokens]]
token = "5a4d1f7c0e9b2a6d8c3f1e7b9a0d2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c"
environment = "sandbox"

[[rules]]
name = "let sandbox tokens through"
when = { protocol = "legacy", token_environment_mismatch = true }
then = { action = "accept" }
"#;
    let emu = emulator_with(scenario(rule)).await;
    let mut tls = open(&emu).await;
    send(&mut tls, &framed(1, &sandbox_token())).await;
    send(&mut tls, &framed(2, &tok(1))).await;
    wait(&emu, EventKind::Accepted, 2).await;
    assert_silent_open(&mut tls, 150).await;
    assert_eq!(ids(&emu, EventKind::Accepted), vec![1, 2]);
    assert!(events(&emu, EventKind::Rejected).is_empty());

    // The default it overrides: status 8, then close (PROTOCOL.md 1.6).
    emu.clear_scenario();
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_bytes(sandbox_token()),
        Some(Environment::Sandbox),
    ));
    let mut tls = open(&emu).await;
    send(&mut tls, &framed(3, &sandbox_token())).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    assert_eq!(bytes, error_response(8, 3));
    assert_eq!(how, None);
}

// ---------------------------------------------------------------------------------------------
// The classic story: sandbox-token-silent-drop.toml.
// ---------------------------------------------------------------------------------------------

/// 100 notifications, the sandbox token at position 40, each payload naming its position.
fn classic_batch(frame: impl Fn(u32, &[u8], &[u8]) -> Vec<u8>) -> Vec<u8> {
    (1..=100u32)
        .flat_map(|i| {
            let token = if i == 40 { sandbox_token() } else { tok(1) };
            let payload = format!(r#"{{"aps":{{"alert":"n{i}"}}}}"#);
            frame(i, &token, payload.as_bytes())
        })
        .collect()
}

fn payloads(evts: &[Event]) -> Vec<String> {
    evts.iter()
        .map(|e| {
            let n = e.notification.as_ref().expect("notification");
            String::from_utf8_lossy(&n.payload).into_owned()
        })
        .collect()
}

#[tokio::test]
async fn classic_story_sandbox_token_in_a_production_batch() {
    let emu = emulator_with(fixture("sandbox-token-silent-drop.toml")).await;
    let mut tls = open(&emu).await;
    send(&mut tls, &classic_batch(|_, t, p| cmd0(t, p))).await;
    let (bytes, _how) = read_until_closed(&mut tls).await;
    // Reset or FIN depends on whether unread bytes were still queued; either way no error-response.
    assert!(
        bytes.is_empty(),
        "closed without an error-response: {bytes:?}"
    );
    wait(&emu, EventKind::ConnectionClosed, 1).await;

    let accepted = events(&emu, EventKind::Accepted);
    let want: Vec<String> = (1..=39)
        .map(|i| format!(r#"{{"aps":{{"alert":"n{i}"}}}}"#))
        .collect();
    assert_eq!(
        payloads(&accepted),
        want,
        "exactly the 39 before the sandbox token"
    );
    let dropped = events(&emu, EventKind::Dropped);
    assert_eq!(dropped.len(), 1);
    assert_eq!(
        dropped[0].notification.as_ref().unwrap().token.to_hex(),
        SANDBOX_HEX
    );
    assert!(events(&emu, EventKind::Rejected).is_empty());
    // Whatever of 41..100 was read is journaled as discarded, never as accepted.
    for p in payloads(&events(&emu, EventKind::Discarded)) {
        let n: u32 = p
            .trim_start_matches(r#"{"aps":{"alert":"n"#)
            .trim_end_matches(r#""}}"#)
            .parse()
            .unwrap();
        assert!(n > 40, "discarded {n}");
    }
    let closed = &events(&emu, EventKind::ConnectionClosed)[0];
    assert_eq!(closed.detail.as_ref().unwrap()["cause"], "dropped");
}

#[tokio::test]
async fn classic_story_with_command_2_default_error_versus_silent_rule() {
    let frame2 = |i: u32, t: &[u8], _p: &[u8]| framed(i, t);

    // Default (the token known as sandbox, no rule): status 8 naming the 40th, then close.
    let emu = Emulator::builder().start().await.unwrap();
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_bytes(sandbox_token()),
        Some(Environment::Sandbox),
    ));
    let mut tls = open(&emu).await;
    send(&mut tls, &classic_batch(frame2)).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    assert_eq!(bytes, error_response(8, 40));
    assert_eq!(how, None);
    wait(&emu, EventKind::ConnectionClosed, 1).await;
    assert_eq!(ids(&emu, EventKind::Accepted), (1..=39).collect::<Vec<_>>());
    assert_eq!(ids(&emu, EventKind::Rejected), vec![40]);

    // With the scenario's rule: the same batch ends in a silent close.
    let emu = emulator_with(fixture("sandbox-token-silent-drop.toml")).await;
    let mut tls = open(&emu).await;
    send(&mut tls, &classic_batch(frame2)).await;
    let (bytes, _how) = read_until_closed(&mut tls).await;
    assert!(bytes.is_empty(), "silent: {bytes:?}");
    wait(&emu, EventKind::ConnectionClosed, 1).await;
    assert_eq!(ids(&emu, EventKind::Accepted), (1..=39).collect::<Vec<_>>());
    assert_eq!(ids(&emu, EventKind::Dropped), vec![40]);
    assert!(events(&emu, EventKind::Rejected).is_empty());
    assert_eq!(
        rule_name(&events(&emu, EventKind::Dropped)[0]).as_deref(),
        Some("sandbox token: silent drop"),
        "the journal names the rule behind the silent close"
    );
}

// ---------------------------------------------------------------------------------------------
// The legacy side of the other ready-made scenarios.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn fixture_invalid_token_mid_batch_legacy() {
    let emu = emulator_with(fixture("invalid-token-mid-batch.toml")).await;
    assert_eq!(
        emu.settings().legacy_answer_delay_ms,
        300,
        "[settings] applied"
    );
    let mut tls = open(&emu).await;
    let start = Instant::now();
    send(&mut tls, &batch(1..=20)).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    assert_eq!(bytes, error_response(8, 10));
    assert_eq!(how, None);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "Apple's late error: {:?}",
        start.elapsed()
    );
    wait(&emu, EventKind::ConnectionClosed, 1).await;
    assert_eq!(ids(&emu, EventKind::Accepted), (1..=9).collect::<Vec<_>>());
    assert_eq!(ids(&emu, EventKind::Rejected), vec![10]);
    assert_eq!(
        ids(&emu, EventKind::Discarded),
        (11..=20).collect::<Vec<_>>()
    );

    // Per connection: the next connection's 10th fails again.
    let mut tls = open(&emu).await;
    send(&mut tls, &batch(101..=110)).await;
    let (bytes, _) = read_until_closed(&mut tls).await;
    assert_eq!(bytes, error_response(8, 110));
}

#[tokio::test]
async fn fixture_shutdown_mid_batch_legacy() {
    let emu = emulator_with(fixture("shutdown-mid-batch.toml")).await;
    let mut tls = open(&emu).await;
    send(&mut tls, &batch(1..=60)).await;
    let (bytes, how) = read_until_closed(&mut tls).await;
    // PROTOCOL.md 1.6: status 10 names the last notification sent successfully.
    assert_eq!(bytes, error_response(10, 50));
    assert_eq!(how, None);
    wait(&emu, EventKind::ConnectionClosed, 1).await;
    assert_eq!(ids(&emu, EventKind::Accepted), (1..=50).collect::<Vec<_>>());
    let rejected = events(&emu, EventKind::Rejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].status, Some(10));
    assert_eq!(
        ids(&emu, EventKind::Discarded),
        (52..=60).collect::<Vec<_>>()
    );

    // times = 1: the gateway is back after the restart.
    let mut tls = open(&emu).await;
    send(&mut tls, &batch(61..=70)).await;
    wait(&emu, EventKind::Accepted, 60).await;
    assert_silent_open(&mut tls, 100).await;
}

#[tokio::test]
async fn fixture_unregistered_with_feedback_legacy() {
    let emu = Emulator::builder()
        .scenario(fixture("unregistered-with-feedback.toml"), None)
        .start()
        .await
        .unwrap();
    assert_eq!(emu.topic(), "com.example.app");
    // The gateway takes pushes to uninstalled apps silently (PROTOCOL.md 1.8)…
    let mut tls = open(&emu).await;
    send(&mut tls, &framed(1, &[0x11; 32])).await;
    send(&mut tls, &framed(2, &[0x22; 32])).await;
    send(&mut tls, &framed(3, &[0x33; 32])).await;
    wait(&emu, EventKind::Accepted, 3).await;
    assert_silent_open(&mut tls, 100).await;

    // …and the feedback service lists them once.
    let mut fb = open_on(&emu, emu.feedback_addr()).await;
    let (bytes, how) = read_until_closed(&mut fb).await;
    assert_eq!(how, None);
    let mut want = Vec::new();
    for (ts, b) in [(1_700_000_000u32, 0x11u8), (1_700_000_300, 0x22)] {
        want.extend(ts.to_be_bytes());
        want.extend(32u16.to_be_bytes());
        want.extend([b; 32]);
    }
    assert_eq!(bytes, want);
    let mut fb = open_on(&emu, emu.feedback_addr()).await;
    assert!(
        read_until_closed(&mut fb).await.0.is_empty(),
        "cleared once read"
    );
    // The offline device is not unregistered: sandbox feedback lists only the 1111 token (no env).
    let mut fb = open_on(&emu, emu.addr("sandbox_feedback").unwrap()).await;
    let (bytes, _) = read_until_closed(&mut fb).await;
    assert_eq!(bytes.len(), 38);
    assert_eq!(&bytes[6..], &[0x11; 32]);
}

// ---------------------------------------------------------------------------------------------
// flaky-network.toml: seeded, so the same input gives the same verdicts.
// ---------------------------------------------------------------------------------------------

/// Pushes notifications 1..=n through the flaky scenario like a provider that resends after a
/// drop (learning the dropped one from the journal), and returns the verdict of every
/// notification the engine decided, in order, plus how the client saw each drop.
async fn flaky_run(seed: Option<u64>, n: u32) -> (Vec<(u32, EventKind)>, Vec<Option<ErrorKind>>) {
    let mut s = fixture("flaky-network.toml");
    if seed.is_some() {
        s.seed = seed;
    }
    let emu = emulator_with(s).await;
    let mut next = 1;
    let mut closes = Vec::new();
    while next <= n {
        let mut tls = open(&emu).await;
        let drops_before = events(&emu, EventKind::Dropped).len();
        // A reset may cut the write short; what matters is what the server decided.
        let _ = tls.write_all(&batch(next..=n)).await;
        let _ = tls.flush().await;
        let deadline = Instant::now() + WAIT;
        loop {
            let dropped = ids(&emu, EventKind::Dropped);
            if dropped.len() > drops_before {
                let d = *dropped.last().unwrap();
                closes.push(read_until_closed(&mut tls).await.1);
                next = d + 1;
                break;
            }
            if ids(&emu, EventKind::Accepted).last() == Some(&n) {
                next = n + 1;
                break;
            }
            assert!(Instant::now() < deadline, "flaky run stuck at {next}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let verdicts = emu
        .journal()
        .query(&Filter {
            protocol: Some(Protocol::Legacy),
            ..Filter::default()
        })
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Accepted | EventKind::Dropped))
        .map(|e| (e.notification.unwrap().identifier.unwrap().as_u32(), e.kind))
        .collect();
    emu.shutdown_with(Duration::from_millis(200)).await;
    (verdicts, closes)
}

#[tokio::test]
async fn fixture_flaky_network_is_deterministic_per_seed() {
    const N: u32 = 400;
    let (a, closes) = flaky_run(None, N).await;
    let (b, _) = flaky_run(None, N).await;
    let drops: Vec<u32> = a
        .iter()
        .filter(|(_, k)| *k == EventKind::Dropped)
        .map(|(i, _)| *i)
        .collect();
    assert!(!drops.is_empty(), "2% of {N} should drop some");
    assert!(drops.len() < 30, "about 2%: {drops:?}");
    assert_eq!(
        a.len(),
        N as usize,
        "every notification decided exactly once"
    );
    assert_eq!(
        a.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>()
    );
    assert_eq!(a, b, "same scenario, seed and input: same verdicts");
    assert!(
        closes
            .iter()
            .all(|c| *c == Some(ErrorKind::ConnectionReset)),
        "the fixture's drops are TCP resets: {closes:?}"
    );
    let (c, _) = flaky_run(Some(1), N).await;
    assert_ne!(a, c, "another seed drops other notifications");
}
