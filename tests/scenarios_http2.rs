//! Scripted faults on the HTTP/2 API, proven frame by frame with a raw client (and the `h2`
//! crate where a provider's view is enough): every HTTP/2 action (`reject`, `goaway`,
//! `rst_stream`, `delay`, `close`, `settings`, `ignore_ping`, `accept`) on the wire and in the
//! journal, and the HTTP/2 side of each ready-made scenario (PROTOCOL.md 2.2, 2.6–2.8).

mod common;

use apnsim::engine::TokenRecord;
use apnsim::http2::auth::{sign_jwt, SignatureForm};
use apnsim::http2::frame::{setting, ErrorCode, Frame};
use apnsim::http2::hpack::Representation;
use apnsim::journal::{Event, EventKind, Filter};
use apnsim::model::{DeviceToken, Environment, Protocol};
use apnsim::{Emulator, ProviderKind};
use common::h2client::*;
use common::scenarios::{emulator_with, fixture, scenario};
use std::time::{Duration, Instant};

const TOPIC: &str = "com.example.app";
const SANDBOX_HEX: &str = "5a4d1f7c0e9b2a6d8c3f1e7b9a0d2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c";

/// A raw connection authenticated by the universal provider certificate.
async fn raw(emu: &Emulator) -> Raw {
    let ca = emu.ca_pem();
    let mut r = Raw::connect(
        emu.http2_addr(),
        &h2_opts(&ca, Some(emu.identity(ProviderKind::Universal))),
    )
    .await;
    // Room for thousands of small error bodies without the client ever updating windows.
    r.send_frame(Frame::WindowUpdate {
        stream_id: 0,
        increment: 1 << 24,
    })
    .await;
    r
}

/// A push to `token` (hex) on the raw connection; returns the stream id.
/// The header fields of a push to `path` (`:path` unindexed, as Apple advises).
fn push_fields(path: &str) -> [(&str, &str, Representation); 5] {
    [
        (":method", "POST", INC),
        (":scheme", "https", INC),
        (":path", path, NO_INDEX),
        (":authority", "api.push.apple.com", INC),
        ("apns-topic", TOPIC, INC),
    ]
}

async fn push_to(r: &mut Raw, token: &str) -> u32 {
    let path = device_path(token);
    r.request_with(&push_fields(&path), PAYLOAD, None).await
}

async fn push(r: &mut Raw) -> u32 {
    push_to(r, TOKEN).await
}

fn reason_of(resp: &RawResponse) -> String {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON body");
    v["reason"].as_str().unwrap_or_default().to_string()
}

fn h2(kind: EventKind) -> Filter {
    Filter {
        protocol: Some(Protocol::Http2),
        ..Filter::kind(kind)
    }
}

fn events(emu: &Emulator, kind: EventKind) -> Vec<Event> {
    emu.journal().query(&h2(kind))
}

async fn wait(emu: &Emulator, kind: EventKind, n: usize) -> Vec<Event> {
    emu.journal()
        .wait_for(&h2(kind), n, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

fn rule_name(e: &Event) -> Option<String> {
    e.detail.as_ref()?["rule"]["name"]
        .as_str()
        .map(str::to_owned)
}

/// Reads frames until a non-ACK SETTINGS carrying `param = value` arrives.
async fn await_setting(r: &mut Raw, param: u16, value: u32) -> Vec<(u16, u32)> {
    match r
        .until(|f| matches!(f, Frame::Settings { ack: false, params } if params.contains(&(param, value))))
        .await
    {
        Some(Frame::Settings { params, .. }) => params,
        other => panic!("no SETTINGS {param}={value}: {other:?}"),
    }
}

/// Reads until the server closes; returns the GOAWAY frames and whether stream `s` saw anything.
async fn close_and_goaways(r: &mut Raw, s: u32) -> (Vec<(u32, ErrorCode, Vec<u8>)>, bool) {
    let frames = r.read_to_close().await;
    let goaways = frames
        .iter()
        .filter_map(|f| match f {
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => Some((*last_stream_id, *code, debug.to_vec())),
            _ => None,
        })
        .collect();
    (goaways, frames.iter().any(|f| f.stream_id() == s))
}

// ---------------------------------------------------------------------------------------------
// Every HTTP/2 action.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn reject_action_any_reason_status_override_and_stream_limit() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "throttled"
when = { protocol = "http2", nth = 2 }
then = { action = "reject", reason = "TooManyRequests", status = 503, max_concurrent_streams = 1 }

[[rules]]
name = "gone"
when = { protocol = "http2", nth = 3 }
then = { action = "reject", reason = "Unregistered", timestamp_ms = 1234 }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    let s1 = push(&mut r).await;
    assert_eq!(r.response(s1).await.status(), 200);
    assert_eq!(r.max_concurrent_streams(), Some(1000));
    let s3 = push(&mut r).await;
    let resp = r.response(s3).await;
    assert_eq!(resp.status(), 503, "status override");
    assert_eq!(reason_of(&resp), "TooManyRequests");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    // PROTOCOL.md 2.2: SETTINGS with MAX_CONCURRENT_STREAMS 1 follows the rejection.
    await_setting(&mut r, setting::MAX_CONCURRENT_STREAMS, 1).await;
    let s5 = push(&mut r).await;
    let resp = r.response(s5).await;
    assert_eq!(resp.status(), 410, "the reason's own status");
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"reason": "Unregistered", "timestamp": 1234})
    );

    let rejected = wait(&emu, EventKind::Rejected, 2).await;
    assert_eq!(rejected[0].reason.as_deref(), Some("TooManyRequests"));
    assert_eq!(rejected[0].status, Some(503));
    assert_eq!(rule_name(&rejected[0]).as_deref(), Some("throttled"));
    assert_eq!(rejected[1].reason.as_deref(), Some("Unregistered"));
    assert_eq!(rule_name(&rejected[1]).as_deref(), Some("gone"));
    assert_eq!(events(&emu, EventKind::Accepted).len(), 1);
}

#[tokio::test]
async fn goaway_action_reason_code_and_last_stream_id() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "calm down"
when = { protocol = "http2", nth = 3 }
then = { action = "goaway", reason = "BadDeviceToken", code = "ENHANCE_YOUR_CALM" }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    for _ in 0..2 {
        let s = push(&mut r).await;
        assert_eq!(r.response(s).await.status(), 200);
    }
    let s5 = push(&mut r).await;
    let (goaways, answered) = close_and_goaways(&mut r, s5).await;
    assert!(!answered, "the triggering stream gets no response");
    assert_eq!(goaways.len(), 1, "{goaways:?}");
    let (last, code, debug) = &goaways[0];
    assert_eq!(*last, 3, "auto: the stream before the triggering one");
    assert_eq!(*code, ErrorCode::ENHANCE_YOUR_CALM);
    let debug: serde_json::Value = serde_json::from_slice(debug).unwrap();
    assert_eq!(debug, serde_json::json!({"reason": "BadDeviceToken"}));
    let dropped = wait(&emu, EventKind::Dropped, 1).await;
    assert_eq!(rule_name(&dropped[0]).as_deref(), Some("calm down"));
    assert_eq!(events(&emu, EventKind::Accepted).len(), 2);

    // A given last_stream_id (lower than processed: pushy#807-style resends).
    emu.load_scenario(&scenario(
        r#"
[[rules]]
when = { protocol = "http2", nth = 3 }
then = { action = "goaway", reason = "Shutdown", code = "NO_ERROR", last_stream_id = 1 }
"#,
    ))
    .unwrap();
    let mut r = raw(&emu).await;
    for _ in 0..2 {
        let s = push(&mut r).await;
        assert_eq!(r.response(s).await.status(), 200);
    }
    let s5 = push(&mut r).await;
    let (goaways, _) = close_and_goaways(&mut r, s5).await;
    assert_eq!(goaways.len(), 1);
    assert_eq!(goaways[0].0, 1);
    assert_eq!(goaways[0].1, ErrorCode::NO_ERROR);
    assert_eq!(goaways[0].2, br#"{"reason":"Shutdown"}"#.to_vec());
}

#[tokio::test]
async fn nothing_above_the_goaway_last_stream_id_is_processed() {
    // Six requests in one write: the server reads them in one batch, decides GOAWAY at the
    // third, and must not process streams 7–11 it already read (RFC 9113 6.8), or a provider
    // that correctly resends everything above Last-Stream-ID would deliver them twice.
    let emu = emulator_with(scenario(
        r#"
[[rules]]
when = { protocol = "http2", nth = 3 }
then = { action = "goaway", reason = "Shutdown", code = "NO_ERROR" }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    let path = device_path(TOKEN);
    let fields = push_fields(&path);
    let mut out = bytes::BytesMut::new();
    for _ in 0..6 {
        r.encode_request(&fields, PAYLOAD, None, &mut out);
    }
    r.write(&out).await;
    let (goaways, _) = close_and_goaways(&mut r, 5).await;
    assert_eq!(goaways.len(), 1, "{goaways:?}");
    assert_eq!(goaways[0].0, 3);
    wait(&emu, EventKind::Dropped, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let accepted = events(&emu, EventKind::Accepted);
    assert_eq!(accepted.len(), 2, "only streams 1 and 3: {accepted:?}");
    for e in events(&emu, EventKind::Discarded) {
        assert!(e.detail.as_ref().unwrap()["stream_id"].as_u64().unwrap() > 3);
    }
}

#[tokio::test]
async fn goaway_auto_covers_streams_completed_out_of_order() {
    // Stream 3 completes before stream 1; the rule fires on the second request decided
    // (stream 1). Stream 3 was processed, so stream 1 is processed too and the GOAWAY
    // announces 3: nothing at or below it is left unprocessed, nothing above it was done.
    let emu = emulator_with(scenario(
        r#"
[[rules]]
when = { protocol = "http2", nth = 2 }
then = { action = "goaway", reason = "Shutdown", code = "NO_ERROR" }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    let path = device_path(TOKEN);
    let fields = push_fields(&path);
    let s1 = r.open_stream(&fields).await;
    let s3 = r.open_stream(&fields).await;
    r.finish(s3, PAYLOAD).await;
    assert_eq!(r.response(s3).await.status(), 200);
    r.finish(s1, PAYLOAD).await;
    assert_eq!(r.response(s1).await.status(), 200);
    let (goaways, _) = close_and_goaways(&mut r, 99).await;
    assert_eq!(goaways.len(), 1, "{goaways:?}");
    assert_eq!(goaways[0].0, 3);
    assert_eq!(wait(&emu, EventKind::Accepted, 2).await.len(), 2);
    assert!(events(&emu, EventKind::Dropped).is_empty());
}

#[tokio::test]
async fn goaway_before_settings_is_the_first_frame() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "pushy#831"
when = { protocol = "http2" }
then = { action = "goaway", reason = "BadCertificate", code = "PROTOCOL_ERROR", before_settings = true }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    let first = r.read_frame().await.expect("a frame");
    match first {
        Frame::GoAway { code, debug, .. } => {
            assert_eq!(code, ErrorCode(0x1));
            assert_eq!(&debug[..], br#"{"reason":"BadCertificate"}"#);
        }
        other => panic!("first frame must be GOAWAY, got {other:?}"),
    }
    assert!(r.settings.is_empty(), "no SETTINGS before the GOAWAY");
    r.read_to_close().await;
    let obs = wait(&emu, EventKind::Observation, 1).await;
    assert!(obs
        .iter()
        .any(|e| rule_name(e).as_deref() == Some("pushy#831")));
}

#[tokio::test]
async fn rst_stream_action_resets_only_that_stream() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "refused"
when = { protocol = "http2", nth = 1 }
then = { action = "rst_stream", code = "REFUSED_STREAM" }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    let s1 = push(&mut r).await;
    let resp = r.response(s1).await;
    assert_eq!(resp.frames.len(), 1, "{:?}", resp.frames);
    match &resp.frames[0] {
        Frame::RstStream { stream_id, code } => {
            assert_eq!(*stream_id, s1);
            assert_eq!(*code, ErrorCode::REFUSED_STREAM);
        }
        f => panic!("expected RST_STREAM, got {f:?}"),
    }
    let s3 = push(&mut r).await;
    assert_eq!(r.response(s3).await.status(), 200, "the connection goes on");
    let dropped = wait(&emu, EventKind::Dropped, 1).await;
    assert_eq!(rule_name(&dropped[0]).as_deref(), Some("refused"));
}

#[tokio::test]
async fn delay_action_holds_the_answer() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "slow"
when = { protocol = "http2", nth = 1 }
then = { action = "delay", ms = 300 }
"#,
    ))
    .await;
    let ca = emu.ca_pem();
    let mut c = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Universal)),
    )
    .await;
    let start = Instant::now();
    let reply = c.request(Req::push().topic(TOPIC)).await;
    let slow = start.elapsed();
    assert_eq!(reply.status, 200, "then answers as apnsim would have");
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    let start = Instant::now();
    assert_eq!(c.request(Req::push().topic(TOPIC)).await.status, 200);
    assert!(start.elapsed() < Duration::from_millis(250), "only the 1st");
    let accepted = wait(&emu, EventKind::Accepted, 2).await;
    assert_eq!(rule_name(&accepted[0]).as_deref(), Some("slow"));
}

#[tokio::test]
async fn close_action_drops_the_connection_without_a_response() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "cut"
when = { protocol = "http2", nth = 2 }
then = { action = "close" }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    let s1 = push(&mut r).await;
    assert_eq!(r.response(s1).await.status(), 200);
    let s3 = push(&mut r).await;
    let (goaways, answered) = close_and_goaways(&mut r, s3).await;
    assert!(!answered, "no response on the stream");
    assert!(goaways.is_empty(), "no GOAWAY either: {goaways:?}");
    let dropped = wait(&emu, EventKind::Dropped, 1).await;
    assert_eq!(rule_name(&dropped[0]).as_deref(), Some("cut"));
    let closed = wait(&emu, EventKind::ConnectionClosed, 1).await;
    assert_eq!(closed[0].detail.as_ref().unwrap()["cause"], "abrupt");
}

#[tokio::test]
async fn settings_action_sends_new_settings() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
when = { protocol = "http2", nth = 1 }
then = { action = "settings", max_concurrent_streams = 7, initial_window_size = 100000 }
"#,
    ))
    .await;
    let mut r = raw(&emu).await;
    r.await_settings().await;
    let s1 = push(&mut r).await;
    assert_eq!(r.response(s1).await.status(), 200, "carries on as usual");
    let params = await_setting(&mut r, setting::MAX_CONCURRENT_STREAMS, 7).await;
    assert!(
        params.contains(&(setting::INITIAL_WINDOW_SIZE, 100_000)),
        "{params:?}"
    );

    // The h2 crate applies it like any provider stack would.
    let ca = emu.ca_pem();
    emu.load_scenario(&scenario(
        r#"
[[rules]]
when = { protocol = "http2", on = "connect" }
then = { action = "settings", max_concurrent_streams = 3 }
"#,
    ))
    .unwrap();
    let c = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Universal)),
    )
    .await;
    assert_eq!(c.wait_max_send_streams(3).await, 3);
}

/// Sends a PING and reports whether its ACK came within `ms`.
async fn ping_acked(r: &mut Raw, ms: u64) -> bool {
    let data = *b"apnsim!!";
    r.send_frame(Frame::Ping { ack: false, data }).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let f = tokio::time::timeout_at(deadline, r.read_frame()).await;
        match f {
            Err(_) => return false,
            Ok(Some(Frame::Ping { ack: true, data: d })) if d == data => return true,
            Ok(Some(_)) => {}
            Ok(None) => panic!("connection closed"),
        }
    }
}

#[tokio::test]
async fn ignore_ping_action_leaves_pings_unanswered() {
    let emu = emulator_with(scenario(
        r#"
[[rules]]
name = "deaf"
when = { protocol = "http2", connection = 2 }
then = { action = "ignore_ping" }
"#,
    ))
    .await;
    let mut first = raw(&emu).await;
    assert!(ping_acked(&mut first, 2000).await, "1st connection answers");
    let mut second = raw(&emu).await;
    assert!(!ping_acked(&mut second, 300).await, "2nd: no ACK");
    let s = push(&mut second).await;
    assert_eq!(
        second.response(s).await.status(),
        200,
        "requests still work"
    );
    assert!(!ping_acked(&mut second, 200).await);
}

#[tokio::test]
async fn accept_action_overrides_the_wrong_environment_refusal() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_hex(SANDBOX_HEX).unwrap(),
        Some(Environment::Sandbox),
    ));
    let mut r = raw(&emu).await;
    let s = push_to(&mut r, SANDBOX_HEX).await;
    let resp = r.response(s).await;
    assert_eq!(resp.status(), 400, "default: sandbox token on production");
    assert_eq!(reason_of(&resp), "BadDeviceToken");

    emu.load_scenario(&scenario(
        r#"
[[rules]]
name = "allow"
when = { protocol = "http2", token_environment_mismatch = true }
then = { action = "accept" }
"#,
    ))
    .unwrap();
    let s = push_to(&mut r, SANDBOX_HEX).await;
    let resp = r.response(s).await;
    assert_eq!(resp.status(), 200, "the rule overrides the refusal");
    assert!(resp.header("apns-id").is_some());
    let accepted = wait(&emu, EventKind::Accepted, 1).await;
    assert_eq!(
        accepted[0].notification.as_ref().unwrap().token.to_hex(),
        SANDBOX_HEX
    );
}

// ---------------------------------------------------------------------------------------------
// The HTTP/2 side of the ready-made scenarios.
// ---------------------------------------------------------------------------------------------

/// Pushes `n` requests in pipelined batches and returns each response's (status, reason).
async fn pushes(r: &mut Raw, token: &str, n: usize) -> Vec<(u16, String)> {
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let k = left.min(250);
        let mut streams = Vec::with_capacity(k);
        for _ in 0..k {
            streams.push(push_to(r, token).await);
        }
        for s in streams {
            let resp = r.response(s).await;
            let reason = if resp.body.is_empty() {
                String::new()
            } else {
                reason_of(&resp)
            };
            out.push((resp.status(), reason));
        }
        left -= k;
    }
    out
}

#[tokio::test]
async fn fixture_goaway_after_n() {
    let emu = emulator_with(fixture("goaway-after-n.toml")).await;
    let mut r = raw(&emu).await;
    let answers = pushes(&mut r, TOKEN, 2000).await;
    assert!(
        answers
            .iter()
            .all(|(s, reason)| *s == 400 && reason == "BadDeviceToken"),
        "stale tokens before the GOAWAY"
    );
    let s = push(&mut r).await;
    assert_eq!(s, 4001);
    let (goaways, answered) = close_and_goaways(&mut r, s).await;
    assert!(!answered);
    assert_eq!(
        goaways,
        vec![(
            3999,
            ErrorCode::NO_ERROR,
            br#"{"reason":"BadDeviceToken"}"#.to_vec()
        )]
    );
    assert_eq!(events(&emu, EventKind::Rejected).len(), 2000);
    assert_eq!(events(&emu, EventKind::Dropped).len(), 1);
}

#[tokio::test]
async fn fixture_hot_device_429() {
    let hot = "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd";
    let emu = emulator_with(fixture("hot-device-429.toml")).await;
    let mut r = raw(&emu).await;
    let answers = pushes(&mut r, hot, 8).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert_eq!(answers[5].1, "TooManyRequests");
    // Other tokens keep working.
    assert_eq!(
        pushes(&mut r, TOKEN, 3).await,
        vec![(200, String::new()); 3]
    );
    // Per connection: a new connection gets 5 again.
    let mut r = raw(&emu).await;
    let statuses: Vec<u16> = pushes(&mut r, hot, 6).await.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn fixture_invalid_token_mid_batch_http2() {
    let emu = emulator_with(fixture("invalid-token-mid-batch.toml")).await;
    let mut r = raw(&emu).await;
    let answers = pushes(&mut r, TOKEN, 12).await;
    for (i, (status, reason)) in answers.iter().enumerate() {
        if i == 9 {
            assert_eq!((*status, reason.as_str()), (400, "BadDeviceToken"));
        } else {
            assert_eq!(*status, 200, "request {}", i + 1);
        }
    }
    assert_eq!(r.max_concurrent_streams(), Some(1), "{:?}", r.settings);
    assert_eq!(events(&emu, EventKind::Accepted).len(), 11);
}

#[tokio::test]
async fn fixture_shutdown_mid_batch_http2() {
    let emu = emulator_with(fixture("shutdown-mid-batch.toml")).await;
    let mut r = raw(&emu).await;
    let answers = pushes(&mut r, TOKEN, 50).await;
    assert!(answers.iter().all(|a| a.0 == 200));
    let s = push(&mut r).await;
    assert_eq!(s, 101);
    let (goaways, answered) = close_and_goaways(&mut r, s).await;
    assert!(
        !answered,
        "request 51 is above Last-Stream-ID: the provider must resend it"
    );
    assert_eq!(
        goaways,
        vec![(
            99,
            ErrorCode::NO_ERROR,
            br#"{"reason":"Shutdown"}"#.to_vec()
        )]
    );
    // times = 1: a new connection works.
    let mut r = raw(&emu).await;
    assert_eq!(pushes(&mut r, TOKEN, 2).await[1].0, 200);
}

/// An `h2` token-auth connection and a JWT signed with the scenario's generated key `kid`.
async fn token_client(emu: &Emulator, kid: &str) -> (H2, String) {
    let loaded = emu.scenario().expect("scenario loaded");
    let pem = loaded.generated_keys.get(kid).expect("generated key");
    let team = &loaded
        .scenario
        .keys
        .iter()
        .find(|k| k.key_id == kid)
        .unwrap()
        .team_id;
    let jwt = sign_jwt(pem, kid, team, emu.clock().now_secs(), SignatureForm::Raw).unwrap();
    let ca = emu.ca_pem();
    (h2_connect(emu.http2_addr(), &ca, None).await, jwt)
}

fn reason(r: &Reply) -> String {
    r.json()["reason"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn fixture_expired_jwt() {
    let emu = emulator_with(fixture("expired-jwt.toml")).await;
    let (mut c, jwt) = token_client(&emu, "ABC123DEFG").await;
    for i in 1..=100 {
        let r = c.request(Req::push().topic(TOPIC).jwt(&jwt)).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body_text());
    }
    let r = c.request(Req::push().topic(TOPIC).jwt(&jwt)).await;
    assert_eq!(r.status, 403);
    assert_eq!(reason(&r), "ExpiredProviderToken");
    // times = 1: healed after one answer.
    let r = c.request(Req::push().topic(TOPIC).jwt(&jwt)).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
}

#[tokio::test]
async fn fixture_token_refresh_too_often() {
    let emu = emulator_with(fixture("token-refresh-too-often.toml")).await;
    let (mut c, jwt) = token_client(&emu, "KEY0000001").await;
    let mut statuses = Vec::new();
    for _ in 0..72 {
        let r = c.request(Req::push().topic(TOPIC).jwt(&jwt)).await;
        if r.status != 200 {
            assert_eq!(reason(&r), "TooManyProviderTokenUpdates");
        }
        statuses.push(r.status);
    }
    let want: Vec<u16> = std::iter::repeat(200)
        .take(50)
        .chain(std::iter::repeat(429).take(20))
        .chain([200, 200])
        .collect();
    assert_eq!(statuses, want, "unusable for 20 requests, then healed");
}

#[tokio::test]
async fn fixture_unregistered_with_feedback_http2() {
    let emu = emulator_with(fixture("unregistered-with-feedback.toml")).await;
    let mut r = raw(&emu).await;
    let s = push_to(&mut r, &"11".repeat(32)).await;
    let resp = r.response(s).await;
    assert_eq!(resp.status(), 410);
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"reason": "Unregistered", "timestamp": 1_700_000_000_000u64})
    );
    let s = push_to(&mut r, &"22".repeat(32)).await;
    assert_eq!(r.response(s).await.status(), 410);
    let s = push_to(&mut r, &"33".repeat(32)).await;
    assert_eq!(r.response(s).await.status(), 200, "offline is not gone");
}

#[tokio::test]
async fn fixture_flaky_network_http2_side() {
    let emu = emulator_with(fixture("flaky-network.toml")).await;
    // The 5th HTTP/2 connection's pings go unanswered; the others' are answered.
    for i in 1..=5 {
        let mut r = raw(&emu).await;
        let acked = ping_acked(&mut r, if i == 5 { 300 } else { 2000 }).await;
        assert_eq!(acked, i != 5, "connection {i}");
    }
    // About 2% of requests end in a closed connection, at the same places for the same seed.
    async fn closes(emu: &Emulator) -> Vec<usize> {
        let mut at = Vec::new();
        let mut r = raw(emu).await;
        for i in 0..300 {
            let s = push(&mut r).await;
            let resp = r.until(|f| f.stream_id() == s).await;
            if resp.is_none() {
                at.push(i);
                r = raw(emu).await;
            }
        }
        at
    }
    let a = closes(&emu).await;
    assert!(!a.is_empty() && a.len() < 25, "{a:?}");
    emu.load_scenario(&fixture("flaky-network.toml")).unwrap();
    assert_eq!(
        closes(&emu).await,
        a,
        "reloaded with the same seed: same closes"
    );
}
