//! The HTTP/2 provider API over real TLS with real HTTP/2 clients: the response shapes of
//! PROTOCOL.md 2.6 frame by frame, every one of the 32 reasons of table 2.7 provoked by a real
//! request (or, where only Apple's side can cause it, by the documented Rust API), the compatibility
//! switches of Part 3, and what the journal records.

mod common;

use apnsim::engine::TokenRecord;
use apnsim::http2::auth::{generate_p8, ProviderKey, SignatureForm};
use apnsim::http2::frame::Frame;
use apnsim::http2::reason::{CompatSettings, Reason};
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment, Protocol};
use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use common::h2client::*;

const TOPIC: &str = "com.example.app";
/// A well-formed apns-id the tests send, to check it is echoed on every answer.
const ID: &str = "123e4567-e89b-12d3-a456-426614174000";

/// PROTOCOL.md 2.7, copied by hand: reason string and Apple's status. Independent of apnsim's table.
const TABLE: [(&str, u16); 32] = [
    ("BadCollapseId", 400),
    ("BadDeviceToken", 400),
    ("BadExpirationDate", 400),
    ("BadMessageId", 400),
    ("BadPriority", 400),
    ("BadTopic", 400),
    ("DeviceTokenNotForTopic", 400),
    ("DuplicateHeaders", 400),
    ("IdleTimeout", 400),
    ("InvalidPushType", 400),
    ("MissingDeviceToken", 400),
    ("MissingTopic", 400),
    ("PayloadEmpty", 400),
    ("TopicDisallowed", 400),
    ("BadCertificate", 403),
    ("BadCertificateEnvironment", 403),
    ("ExpiredProviderToken", 403),
    ("Forbidden", 403),
    ("InvalidProviderToken", 403),
    ("MissingProviderToken", 403),
    ("UnrelatedKeyIdInToken", 403),
    ("BadEnvironmentKeyIdInToken", 403),
    ("BadPath", 404),
    ("MethodNotAllowed", 405),
    ("ExpiredToken", 410),
    ("Unregistered", 410),
    ("PayloadTooLarge", 413),
    ("TooManyProviderTokenUpdates", 429),
    ("TooManyRequests", 429),
    ("InternalServerError", 500),
    ("ServiceUnavailable", 503),
    ("Shutdown", 503),
];

fn hex_token(byte: u8) -> String {
    hex::encode([byte; 32])
}

fn is_lower_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36 && s == s.to_lowercase()
}

/// A certificate connection (universal certificate) to the production listener.
async fn cert_conn(emu: &Emulator) -> H2 {
    let ca = emu.ca_pem();
    h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Universal)),
    )
    .await
}

/// A token connection (no certificate) to the production listener.
async fn token_conn(emu: &Emulator) -> H2 {
    let ca = emu.ca_pem();
    h2_connect(emu.http2_addr(), &ca, None).await
}

/// One request on a fresh certificate connection.
async fn cert_once(emu: &Emulator, r: Req) -> Reply {
    cert_conn(emu).await.request(r).await
}

/// A second provider key of the emulator's team (or another team), registered under `kid`.
fn extra_key(
    emu: &Emulator,
    kid: &str,
    team: &str,
    shape: impl FnOnce(ProviderKey) -> ProviderKey,
) -> String {
    let pem = generate_p8().expect("p8");
    emu.register_key(shape(ProviderKey::from_pem(kid, team, &pem).expect("key")));
    pem
}

fn jwt_with(pem: &str, kid: &str, team: &str, iat: u64) -> String {
    apnsim::http2::auth::sign_jwt(pem, kid, team, iat, SignatureForm::Raw).expect("sign")
}

/// Provokes `reason` the way a provider would meet it at Apple (a real request), or through the
/// Rust API where only Apple's own state causes it. Returns the answer and the 410 timestamp expected.
async fn provoke(emu: &Emulator, reason: Reason) -> (Reply, Option<u64>) {
    let push = || Req::push().topic(TOPIC).header("apns-id", ID);
    let forced = |r: Reason| async move {
        emu.force_http2_reason(Some(r));
        let reply = cert_once(emu, push()).await;
        emu.force_http2_reason(None);
        reply
    };
    let now = emu.clock().now_secs();
    let team = emu.token_key().team_id.clone();
    let reply = match reason {
        Reason::BadCollapseId => {
            cert_once(emu, push().header("apns-collapse-id", &"c".repeat(65))).await
        }
        // Malformed token; the other-environment case is in `registry_states_*`.
        Reason::BadDeviceToken => cert_once(emu, push().path("/3/device/not-hex-at-all")).await,
        Reason::BadExpirationDate => cert_once(emu, push().header("apns-expiration", "soon")).await,
        Reason::BadMessageId => {
            cert_once(
                emu,
                Req::push().topic(TOPIC).header("apns-id", "not-a-uuid"),
            )
            .await
        }
        Reason::BadPriority => cert_once(emu, push().header("apns-priority", "7")).await,
        // A topic the certificate does not carry (pushy's rule, PROTOCOL.md 2.9).
        Reason::BadTopic => {
            cert_once(
                emu,
                Req::push().topic("com.other.app").header("apns-id", ID),
            )
            .await
        }
        Reason::DeviceTokenNotForTopic => {
            let t = hex_token(0xd7);
            emu.registry().register(TokenRecord {
                topic: Some("com.other.app".into()),
                ..TokenRecord::new(DeviceToken::from_hex(&t).unwrap(), None)
            });
            cert_once(emu, push().path(&device_path(&t))).await
        }
        Reason::DuplicateHeaders => cert_once(emu, push().topic(TOPIC)).await,
        // Apple's own idle rule; the real GOAWAY is tested in http2_connection.rs.
        Reason::IdleTimeout => forced(Reason::IdleTimeout).await,
        Reason::InvalidPushType => cert_once(emu, push().header("apns-push-type", "banana")).await,
        Reason::MissingDeviceToken => cert_once(emu, push().path("/3/device/")).await,
        // The standard certificate carries three topics, so apns-topic is required.
        Reason::MissingTopic => cert_once(emu, Req::push().header("apns-id", ID)).await,
        Reason::PayloadEmpty => cert_once(emu, push().body(Vec::new())).await,
        // voip needs the `.voip` topic suffix (PROTOCOL.md 2.4).
        Reason::TopicDisallowed => cert_once(emu, push().header("apns-push-type", "voip")).await,
        // An invalid certificate is refused inside the TLS handshake (see http2_auth.rs), so no
        // request ever carries one: the reason exists only through the Rust API.
        Reason::BadCertificate => forced(Reason::BadCertificate).await,
        Reason::BadCertificateEnvironment => {
            let ca = emu.ca_pem();
            let mut c = h2_connect(
                emu.http2_addr(),
                &ca,
                Some(emu.identity(ProviderKind::Sandbox)),
            )
            .await;
            c.request(push()).await
        }
        Reason::ExpiredProviderToken => {
            let jwt = jwt_at(emu, now - 3601, SignatureForm::Raw);
            token_conn(emu).await.request(push().jwt(&jwt)).await
        }
        Reason::Forbidden => forced(Reason::Forbidden).await,
        Reason::InvalidProviderToken => token_conn(emu).await.request(push().jwt("a.b.c")).await,
        Reason::MissingProviderToken => token_conn(emu).await.request(push()).await,
        Reason::UnrelatedKeyIdInToken => {
            let pem = extra_key(emu, "UNRELATED1", &team, |k| k);
            let mut c = token_conn(emu).await;
            let ok = c
                .request(push().jwt(&jwt_now(emu, SignatureForm::Raw)))
                .await;
            assert_eq!(ok.status, 200, "first key: {}", ok.body_text());
            c.request(push().jwt(&jwt_with(&pem, "UNRELATED1", &team, now)))
                .await
        }
        Reason::BadEnvironmentKeyIdInToken => {
            let pem = extra_key(emu, "SANDBOXKEY", &team, |k| {
                k.scoped_to(Environment::Sandbox)
            });
            let jwt = jwt_with(&pem, "SANDBOXKEY", &team, now);
            token_conn(emu).await.request(push().jwt(&jwt)).await
        }
        Reason::BadPath => cert_once(emu, push().path(&format!("/3/devices/{TOKEN}"))).await,
        Reason::MethodNotAllowed => cert_once(emu, push().method("GET").body(Vec::new())).await,
        // The registry has no "expired" state: Apple decides when a token expires.
        Reason::ExpiredToken => forced(Reason::ExpiredToken).await,
        Reason::Unregistered => {
            let t = hex_token(0x41);
            let at = 1_508_249_865_488;
            emu.registry().register(TokenRecord {
                topic: Some(TOPIC.into()),
                unregistered_at: Some(at),
                ..TokenRecord::new(DeviceToken::from_hex(&t).unwrap(), None)
            });
            return (
                cert_once(emu, push().path(&device_path(&t))).await,
                Some(at),
            );
        }
        Reason::PayloadTooLarge => cert_once(emu, push().body(vec![b'x'; 4097])).await,
        Reason::TooManyProviderTokenUpdates => {
            // A team of its own: the update limit counts per team (PROTOCOL.md 2.8).
            let pem = extra_key(emu, "UPDATESKEY", "UPDATETEAM", |k| k);
            let mut c = token_conn(emu).await;
            let ok = c
                .request(push().jwt(&jwt_with(&pem, "UPDATESKEY", "UPDATETEAM", now)))
                .await;
            assert_eq!(ok.status, 200, "first token: {}", ok.body_text());
            // A different valid token on the same connection, immediately.
            c.request(push().jwt(&jwt_with(&pem, "UPDATESKEY", "UPDATETEAM", now - 1)))
                .await
        }
        Reason::TooManyRequests => forced(Reason::TooManyRequests).await,
        Reason::InternalServerError => forced(Reason::InternalServerError).await,
        Reason::ServiceUnavailable => forced(Reason::ServiceUnavailable).await,
        Reason::Shutdown => forced(Reason::Shutdown).await,
        // Not in table 2.7 (so not in ALL): tests/inspector.rs covers it under strict_payload.
        Reason::BadRequestPayload => unreachable!("BadRequestPayload is not in Reason::ALL"),
    };
    // `Some(0)`: a 410 whose timestamp must be "now" (forced ExpiredToken).
    let ts = matches!(reason, Reason::ExpiredToken).then_some(0);
    (reply, ts)
}

#[tokio::test]
async fn every_reason_of_table_2_7_with_apples_status_and_body() {
    let emu = Emulator::builder().start().await.unwrap();
    assert_eq!(Reason::ALL.len(), TABLE.len());
    for (reason, (name, status)) in Reason::ALL.into_iter().zip(TABLE) {
        assert_eq!(reason.as_str(), name, "table order");
        let before = emu.clock().now_ms();
        let (reply, timestamp) = provoke(&emu, reason).await;
        let after = emu.clock().now_ms();
        assert_eq!(reply.status, status, "{name}: {}", reply.body_text());
        // PROTOCOL.md 2.6: HEADERS with content-type and apns-id, then a DATA body.
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{name}"
        );
        assert!(!reply.headers_ended_stream, "{name}: error has a body");
        assert_eq!(reply.headers.len(), 2, "{name}: {:?}", reply.headers);
        let id = reply.header("apns-id").expect("apns-id");
        if reason == Reason::BadMessageId {
            assert!(is_lower_uuid(id), "generated id {id}");
        } else {
            assert_eq!(id, ID, "{name}: apns-id echoed");
        }
        let body = reply.json();
        assert_eq!(body["reason"], name);
        match (status, timestamp) {
            (410, Some(0)) => {
                // Forced 410: "now" in ms.
                let ts = body["timestamp"].as_u64().expect("timestamp");
                assert!((before..=after).contains(&ts), "{name}: {ts} not now");
                assert_eq!(body.as_object().unwrap().len(), 2);
            }
            (410, Some(at)) => {
                assert_eq!(
                    reply.body_text(),
                    format!(r#"{{"reason":"{name}","timestamp":{at}}}"#)
                );
            }
            _ => assert_eq!(reply.body_text(), format!(r#"{{"reason":"{name}"}}"#)),
        }
        let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
        assert!(
            rejected.iter().any(|e| e.reason.as_deref() == Some(name)),
            "{name} journaled"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn success_is_one_headers_frame_with_end_stream_and_echoed_id() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Production);
    let mut raw = Raw::connect(emu.http2_addr(), &h2_opts(&ca, Some(id))).await;
    // An uppercase apns-id is echoed verbatim (PROTOCOL.md 2.6, Part 3).
    let upper = "ACDFB3EB-105B-4E3A-9C3F-0123456789AB";
    let s = raw
        .push(
            &[
                ("apns-topic", TOPIC, INC),
                ("apns-id", upper, NO_INDEX),
                ("apns-push-type", "alert", INC),
            ],
            PAYLOAD,
        )
        .await;
    let r = raw.response(s).await;
    assert_eq!(r.frames.len(), 1, "{:?}", r.frames);
    assert!(
        matches!(
            r.frames[0],
            Frame::Headers {
                end_stream: true,
                end_headers: true,
                ..
            }
        ),
        "{:?}",
        r.frames[0]
    );
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [":status", "apns-id"],
        "no apns-unique-id on production"
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("apns-id"), Some(upper));
    assert!(r.body.is_empty());

    // Without apns-id: a generated lowercase UUID.
    let s = raw.push(&[("apns-topic", TOPIC, INC)], PAYLOAD).await;
    let r = raw.response(s).await;
    assert_eq!(r.status(), 200);
    assert!(
        is_lower_uuid(r.header("apns-id").unwrap()),
        "{:?}",
        r.headers
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn sandbox_success_adds_apns_unique_id() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let addr = emu.addr("sandbox_http2").unwrap();
    let mut c = h2_connect(addr, &ca, Some(emu.identity(ProviderKind::Sandbox))).await;
    let r = c.request(Req::push().topic(TOPIC)).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert!(r.headers_ended_stream, "success has no body");
    assert!(r.body.is_empty());
    let id = r.header("apns-id").unwrap();
    let unique = r
        .header("apns-unique-id")
        .expect("apns-unique-id on sandbox");
    assert!(
        is_lower_uuid(id) && is_lower_uuid(unique),
        "{:?}",
        r.headers
    );
    assert_ne!(id, unique);
    assert_eq!(r.headers.len(), 2, "{:?}", r.headers);
    // The same on the production listener with the h2 client: no apns-unique-id.
    let mut p = cert_conn(&emu).await;
    let r = p
        .request(Req::push().topic(TOPIC).header("apns-id", ID))
        .await;
    assert_eq!((r.status, r.header("apns-id")), (200, Some(ID)));
    assert!(r.header("apns-unique-id").is_none());
    assert!(r.headers_ended_stream);
    emu.shutdown().await;
}

#[tokio::test]
async fn error_is_headers_then_one_data_frame() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Universal);
    let mut raw = Raw::connect(emu.http2_addr(), &h2_opts(&ca, Some(id))).await;
    let s = raw
        .push(
            &[
                ("apns-topic", TOPIC, INC),
                ("apns-id", ID, INC),
                ("apns-priority", "7", INC),
            ],
            PAYLOAD,
        )
        .await;
    let r = raw.response(s).await;
    assert_eq!(r.frames.len(), 2, "{:?}", r.frames);
    assert!(matches!(
        r.frames[0],
        Frame::Headers {
            end_stream: false,
            ..
        }
    ));
    match &r.frames[1] {
        Frame::Data {
            end_stream: true,
            data,
            ..
        } => assert_eq!(&data[..], br#"{"reason":"BadPriority"}"#),
        f => panic!("expected DATA with END_STREAM, got {f:?}"),
    }
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [":status", "content-type", "apns-id"]);
    assert_eq!(r.status(), 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("apns-id"), Some(ID));
    // An ordinary rejection does not end the connection (PROTOCOL.md 2.2).
    let s = raw.push(&[("apns-topic", TOPIC, INC)], PAYLOAD).await;
    assert_eq!(raw.response(s).await.status(), 200);
    assert!(raw.goaways.is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn registry_states_decide_environment_topic_and_unregistered() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let sandbox_token = hex_token(0x5a);
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_hex(&sandbox_token).unwrap(),
        Some(Environment::Sandbox),
    ));
    let push = |t: &str| Req::push().topic(TOPIC).path(&device_path(t));
    // PROTOCOL.md Part 3: a sandbox token on production is BadDeviceToken.
    let r = cert_once(&emu, push(&sandbox_token)).await;
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (400, Some("BadDeviceToken"))
    );
    let mut sb = h2_connect(
        emu.addr("sandbox_http2").unwrap(),
        &ca,
        Some(emu.identity(ProviderKind::Universal)),
    )
    .await;
    assert_eq!(sb.request(push(&sandbox_token)).await.status, 200);

    // A token of com.example.app also serves its .voip topic; another app's topic does not.
    let app_token = hex_token(0x77);
    emu.registry().register(TokenRecord {
        topic: Some(TOPIC.into()),
        ..TokenRecord::new(DeviceToken::from_hex(&app_token).unwrap(), None)
    });
    let voip = Req::push()
        .topic("com.example.app.voip")
        .header("apns-push-type", "voip")
        .path(&device_path(&app_token));
    assert_eq!(cert_once(&emu, voip).await.status, 200);

    // Unregistered later: 410 with the registry's time in ms (PROTOCOL.md 2.6).
    let at = emu.clock().now_ms() - 86_400_000;
    emu.registry().register(TokenRecord {
        topic: Some(TOPIC.into()),
        unregistered_at: Some(at),
        ..TokenRecord::new(DeviceToken::from_hex(&app_token).unwrap(), None)
    });
    let r = cert_once(&emu, push(&app_token)).await;
    assert_eq!(r.status, 410);
    assert_eq!(r.json()["timestamp"].as_u64(), Some(at));
    emu.shutdown().await;
}

#[tokio::test]
async fn strict_tokens_and_uppercase_ids_are_settings() {
    let emu = Emulator::builder()
        .settings(Settings {
            strict_tokens: true,
            http2_uppercase_apns_id: true,
            http2_strict_token_length: true,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let r = cert_once(&emu, Req::push().topic(TOPIC)).await;
    assert_eq!(
        r.json()["reason"],
        "BadDeviceToken",
        "unknown token, strict"
    );
    let id = r.header("apns-id").unwrap();
    assert_eq!(id, id.to_uppercase(), "uppercase setting: {id}");
    emu.registry().register(TokenRecord::new(
        DeviceToken::from_hex(TOKEN).unwrap(),
        None,
    ));
    assert_eq!(cert_once(&emu, Req::push().topic(TOPIC)).await.status, 200);
    // Strict length: a 66-digit token is malformed.
    let long = format!("{TOKEN}ab");
    let r = cert_once(&emu, Req::push().topic(TOPIC).path(&device_path(&long))).await;
    assert_eq!(r.json()["reason"], "BadDeviceToken");
    emu.shutdown().await;

    // Default: 64..=200 even-length hex (PROTOCOL.md Part 3), e.g. a 160-digit Live Activity token.
    let emu = Emulator::builder().start().await.unwrap();
    let la = "ab".repeat(80);
    let r = cert_once(&emu, Req::push().topic(TOPIC).path(&device_path(&la))).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    for bad in ["ab".repeat(101), "a".repeat(65), "ab".repeat(31)] {
        let r = cert_once(&emu, Req::push().topic(TOPIC).path(&device_path(&bad))).await;
        assert_eq!(r.json()["reason"], "BadDeviceToken", "{}", bad.len());
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn payload_limits_per_push_type() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut c = cert_conn(&emu).await;
    let alert = |n: usize| Req::push().topic(TOPIC).body(vec![b' '; n]);
    let voip = |n: usize| {
        Req::push()
            .topic("com.example.app.voip")
            .header("apns-push-type", "voip")
            .body(vec![b' '; n])
    };
    assert_eq!(c.request(alert(4096)).await.status, 200);
    assert_eq!(c.request(alert(4097)).await.status, 413);
    assert_eq!(c.request(voip(5120)).await.status, 200);
    let r = c.request(voip(5121)).await;
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (413, Some("PayloadTooLarge"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn compat_switches_answer_the_older_reasons() {
    let emu = Emulator::builder()
        .settings(Settings {
            http2_reasons: CompatSettings::LEGACY_CLIENTS,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let team = emu.token_key().team_id.clone();
    let now = emu.clock().now_secs();
    // InvalidPushType → BadTopic (400).
    let r = cert_once(
        &emu,
        Req::push().topic(TOPIC).header("apns-push-type", "banana"),
    )
    .await;
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (400, r#"{"reason":"BadTopic"}"#)
    );
    // ExpiredToken → Unregistered (410, still with a timestamp).
    emu.force_http2_reason(Some(Reason::ExpiredToken));
    let r = cert_once(&emu, Req::push().topic(TOPIC)).await;
    emu.force_http2_reason(None);
    assert_eq!(r.status, 410);
    assert_eq!(r.json()["reason"], "Unregistered");
    assert!(
        r.json()["timestamp"].as_u64().is_some(),
        "{}",
        r.body_text()
    );
    // BadEnvironmentKeyIdInToken → InvalidProviderToken (403).
    let pem = extra_key(&emu, "SANDBOXKEY", &team, |k| {
        k.scoped_to(Environment::Sandbox)
    });
    let r = token_conn(&emu)
        .await
        .request(
            Req::push()
                .topic(TOPIC)
                .jwt(&jwt_with(&pem, "SANDBOXKEY", &team, now)),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (403, Some("InvalidProviderToken"))
    );
    // UnrelatedKeyIdInToken → InvalidProviderToken (403).
    let pem = extra_key(&emu, "UNRELATED1", &team, |k| k);
    let mut c = token_conn(&emu).await;
    let ok = c
        .request(
            Req::push()
                .topic(TOPIC)
                .jwt(&jwt_now(&emu, SignatureForm::Raw)),
        )
        .await;
    assert_eq!(ok.status, 200);
    let r = c
        .request(
            Req::push()
                .topic(TOPIC)
                .jwt(&jwt_with(&pem, "UNRELATED1", &team, now)),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (403, Some("InvalidProviderToken"))
    );
    // The journal records what was sent, not what apnsim first decided.
    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    for e in &rejected {
        let r: Reason = e.reason.as_deref().unwrap().parse().unwrap();
        assert!(!r.is_newer(), "{r} was sent to an old client");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn journal_records_every_field_and_one_accepted_event_per_200() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let mut c = h2_connect(
        emu.addr("sandbox_http2").unwrap(),
        &ca,
        Some(emu.identity(ProviderKind::Sandbox)),
    )
    .await;
    let token = hex_token(0x3c);
    let full = Req::push()
        .path(&device_path(&token))
        .topic("com.example.app.voip")
        .header("apns-push-type", "voip")
        .header("apns-collapse-id", "group-1")
        .header("apns-id", ID)
        .header("apns-priority", "5")
        .header("apns-expiration", "1700000000");
    let r = c.request(full.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    let mut generated = Vec::new();
    for _ in 0..4 {
        let r = c.request(Req::push().topic(TOPIC)).await;
        assert_eq!(r.status, 200);
        generated.push(r.header("apns-id").unwrap().to_string());
    }
    let r = c.request(full.clone().header("apns-priority", "5")).await;
    assert_eq!(r.status, 400);

    let accepted = emu.journal().query(&Filter::kind(EventKind::Accepted));
    assert_eq!(accepted.len(), 5, "exactly one accepted event per 200");
    let first = &accepted[0];
    assert_eq!(first.protocol, Protocol::Http2);
    assert_eq!(first.environment, Environment::Sandbox);
    let n = first.notification.as_ref().unwrap();
    assert_eq!(n.token.to_hex(), token);
    assert_eq!(n.topic.as_deref(), Some("com.example.app.voip"));
    assert_eq!(n.push_type, Some(apnsim::model::PushType::Voip));
    assert_eq!(n.collapse_id.as_deref(), Some("group-1"));
    assert_eq!(n.apns_id.as_deref(), Some(ID));
    assert_eq!(n.priority, 5);
    assert_eq!(n.expiry, Some(1_700_000_000));
    assert_eq!(&n.payload[..], PAYLOAD);
    // Generated ids are journaled as they were answered.
    let journaled: Vec<String> = accepted[1..]
        .iter()
        .map(|e| e.notification.as_ref().unwrap().apns_id.clone().unwrap())
        .collect();
    assert_eq!(journaled, generated);
    assert!(accepted[1..]
        .iter()
        .all(|e| e.notification.as_ref().unwrap().push_type.is_none()));

    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    assert_eq!(rejected.len(), 1);
    let e = &rejected[0];
    assert_eq!(e.reason.as_deref(), Some("DuplicateHeaders"));
    assert_eq!(
        (e.protocol, e.environment),
        (Protocol::Http2, Environment::Sandbox)
    );
    assert_eq!(e.status, Some(400));
    let n = e.notification.as_ref().unwrap();
    assert_eq!(n.token.to_hex(), token);
    assert_eq!(n.collapse_id.as_deref(), Some("group-1"));
    assert_eq!(n.topic.as_deref(), Some("com.example.app.voip"));
    assert_eq!(n.push_type, Some(apnsim::model::PushType::Voip));
    assert_eq!(n.apns_id.as_deref(), Some(ID));
    assert_eq!(&n.payload[..], PAYLOAD);
    assert_eq!(e.connection, first.connection);
    emu.shutdown().await;
}

#[tokio::test]
async fn bad_or_repeated_apns_id_is_never_echoed() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut c = cert_conn(&emu).await;
    // PROTOCOL.md 2.6: only a well-formed apns-id is echoed; otherwise one is generated.
    let r = c
        .request(
            Req::push()
                .topic(TOPIC)
                .header("apns-id", "{123e4567-e89b-12d3-a456-426614174000}"),
        )
        .await;
    assert_eq!(r.json()["reason"], "BadMessageId");
    assert!(
        is_lower_uuid(r.header("apns-id").unwrap()),
        "{:?}",
        r.headers
    );
    let r = c
        .request(
            Req::push()
                .topic(TOPIC)
                .header("apns-id", ID)
                .header("apns-id", "223e4567-e89b-12d3-a456-426614174000"),
        )
        .await;
    assert_eq!(r.json()["reason"], "DuplicateHeaders");
    let id = r.header("apns-id").unwrap();
    assert!(is_lower_uuid(id) && id != ID, "{id}");
    // A repeated other header keeps the (single, valid) apns-id.
    let r = c
        .request(Req::push().topic(TOPIC).topic(TOPIC).header("apns-id", ID))
        .await;
    assert_eq!(
        (r.json()["reason"].as_str(), r.header("apns-id")),
        (Some("DuplicateHeaders"), Some(ID))
    );
    // Forced answers and the wrong-environment answer follow the same rule.
    emu.force_http2_reason(Some(Reason::InternalServerError));
    let r = c
        .request(Req::push().topic(TOPIC).header("apns-id", "nope"))
        .await;
    emu.force_http2_reason(None);
    assert_eq!(r.status, 500);
    assert!(is_lower_uuid(r.header("apns-id").unwrap()));
    let ca = emu.ca_pem();
    let mut wrong = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Sandbox)),
    )
    .await;
    let r = wrong
        .request(Req::push().topic(TOPIC).header("apns-id", "nope"))
        .await;
    assert_eq!(r.json()["reason"], "BadCertificateEnvironment");
    assert!(is_lower_uuid(r.header("apns-id").unwrap()));
    emu.shutdown().await;
}
