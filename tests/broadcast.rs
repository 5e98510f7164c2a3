//! Broadcast push and channel management over real sockets (issue 13; PROTOCOL.md 2.10–2.11):
//! every reason of both APIs produced by a real request (status, body, apns-request-id),
//! the channel lifecycle on its own listeners, and delivery to subscribed devices under both
//! storage policies with online and offline devices.

mod common;

use apnsim::broadcast::{BroadcastReason, BroadcastSettings, StoragePolicy};
use apnsim::engine::TokenRecord;
use apnsim::http2::auth::SignatureForm;
use apnsim::http2::reason::Reason;
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment};
use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use bytes::Bytes;
use common::h2client::{h2_connect_with, h2_opts, jwt_at, jwt_now, Reply, H2, WAIT};
use std::collections::BTreeSet;
use std::net::SocketAddr;

const APP: &str = "com.example.app";
const MANAGE: &str = "api-manage-broadcast.push.apple.com";
const CREATE_1: &str = r#"{"message-storage-policy":1,"push-type":"LiveActivity"}"#;
const CREATE_0: &str = r#"{"message-storage-policy":0,"push-type":"LiveActivity"}"#;
const UPDATE: &str =
    r#"{"aps":{"event":"update","timestamp":1700000000,"content-state":{"score":2}}}"#;
const RID: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";

/// One request with a chosen `:authority` (the management host or the API host).
async fn call(
    c: &mut H2,
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    try_call(c, authority, method, path, headers, body)
        .await
        .expect("response")
}

/// As [`call`], the stream's error (GOAWAY, RST_STREAM, a closed connection) when it has one.
async fn try_call(
    c: &mut H2,
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Reply, h2::Error> {
    tokio::time::timeout(WAIT, async {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("https://{authority}{path}"));
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let mut send = c.send.clone().ready().await?;
        let (resp, mut stream) = send.send_request(b.body(()).unwrap(), body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(Bytes::copy_from_slice(body.as_bytes()), true)?;
        }
        let (parts, mut rb) = resp.await?.into_parts();
        let headers_ended_stream = rb.is_end_stream();
        let mut out = Vec::new();
        while let Some(chunk) = rb.data().await {
            let chunk = chunk?;
            let _ = rb.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: out,
            headers_ended_stream,
        })
    })
    .await
    .expect("response timed out")
}

async fn connect(emu: &Emulator, key: &str, sni: &str, kind: Option<ProviderKind>) -> H2 {
    let ca = emu.ca_pem();
    let mut opts = h2_opts(&ca, kind.map(|k| emu.identity(k)));
    opts.sni = sni;
    h2_connect_with(addr(emu, key), &opts).await
}

fn addr(emu: &Emulator, key: &str) -> SocketAddr {
    emu.addr(key).unwrap_or_else(|| panic!("no {key} listener"))
}

fn bearer(emu: &Emulator) -> String {
    format!("bearer {}", jwt_now(emu, SignatureForm::Raw))
}

/// Asserts an Apple-shaped error: status, `{"reason":…}`, content-type, apns-request-id, no apns-id.
fn assert_reason(r: &Reply, want: BroadcastReason, ctx: &str) -> String {
    assert_eq!(
        r.status,
        want.status(),
        "{ctx}: status, body {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.json(),
        serde_json::json!({ "reason": want.as_str() }),
        "{ctx}"
    );
    assert_eq!(r.header("content-type"), Some("application/json"), "{ctx}");
    assert!(
        r.header("apns-id").is_none(),
        "{ctx}: broadcast errors carry apns-request-id instead"
    );
    let rid = r
        .header("apns-request-id")
        .unwrap_or_else(|| panic!("{ctx}: no apns-request-id"));
    assert!(uuid::Uuid::try_parse(rid).is_ok(), "{ctx}: {rid}");
    rid.to_owned()
}

async fn create(c: &mut H2, auth: &str, body: &str) -> String {
    let r = call(
        c,
        MANAGE,
        "POST",
        &format!("/1/apps/{APP}/channels"),
        &[("authorization", auth)],
        body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.header("apns-channel-id")
        .expect("apns-channel-id")
        .to_owned()
}

#[tokio::test]
async fn channel_lifecycle_on_the_management_listener() {
    let emu = Emulator::builder().start().await.unwrap();
    let mut c = connect(&emu, "manage_broadcast", MANAGE, None).await;
    let auth = bearer(&emu);
    let path = format!("/1/apps/{APP}/channels");

    let r = call(
        &mut c,
        MANAGE,
        "POST",
        &path,
        &[("authorization", &auth), ("apns-request-id", RID)],
        CREATE_1,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("apns-request-id"), Some(RID), "echoed");
    assert!(
        r.headers_ended_stream && r.body.is_empty(),
        "201 has no body"
    );
    let id = r.header("apns-channel-id").unwrap().to_owned();
    use base64::Engine as _;
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(&id)
            .is_ok(),
        "{id}"
    );

    let r = call(
        &mut c,
        MANAGE,
        "GET",
        &path,
        &[("authorization", &auth), ("apns-channel-id", &id)],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"message-storage-policy":1,"push-type":"LiveActivity"})
    );
    let generated = r.header("apns-request-id").unwrap();
    assert!(
        uuid::Uuid::try_parse(generated).is_ok(),
        "generated when absent"
    );

    let other = create(&mut c, &auth, CREATE_0).await;
    let r = call(
        &mut c,
        MANAGE,
        "GET",
        &format!("/1/apps/{APP}/all-channels"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let listed: BTreeSet<String> = serde_json::from_value(r.json()["channels"].clone()).unwrap();
    assert_eq!(listed, BTreeSet::from([id.clone(), other.clone()]));

    let r = call(
        &mut c,
        MANAGE,
        "DELETE",
        &path,
        &[("authorization", &auth), ("apns-channel-id", &id)],
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert!(r.headers_ended_stream);
    let r = call(
        &mut c,
        MANAGE,
        "GET",
        &path,
        &[("authorization", &auth), ("apns-channel-id", &id)],
        "",
    )
    .await;
    assert_reason(
        &r,
        BroadcastReason::ChannelNotRegistered,
        "read after delete",
    );
    let again = create(&mut c, &auth, CREATE_1).await;
    assert_ne!(again, id, "deleted ids are never reused");

    // Channel ids are per environment: the sandbox management listener does not know this one.
    let mut sb = connect(
        &emu,
        "sandbox_manage_broadcast",
        "api-manage-broadcast.sandbox.push.apple.com",
        None,
    )
    .await;
    let r = call(
        &mut sb,
        "api-manage-broadcast.sandbox.push.apple.com",
        "GET",
        &path,
        &[("authorization", &auth), ("apns-channel-id", &other)],
        "",
    )
    .await;
    assert_reason(
        &r,
        BroadcastReason::ChannelNotRegistered,
        "other environment",
    );

    // The same API is served on the HTTP/2 API listener too, to the management host's name
    // (a library may use one port; the API host's name is BadPath there, tested below).
    let mut api = connect(&emu, "http2", MANAGE, None).await;
    let r = call(
        &mut api,
        MANAGE,
        "GET",
        &path,
        &[("authorization", &auth), ("apns-channel-id", &other)],
        "",
    )
    .await;
    assert_eq!(r.status, 200);

    let ops = emu
        .journal()
        .query(&Filter::kind(EventKind::Observation))
        .into_iter()
        .filter(|e| {
            e.detail
                .as_ref()
                .is_some_and(|d| d.get("channel_management").is_some())
        })
        .count();
    assert_eq!(ops, 7, "each successful call journaled once");
    emu.shutdown().await;
}

#[tokio::test]
async fn every_reason_of_both_apis_from_real_requests() {
    let settings = Settings {
        broadcast: BroadcastSettings {
            disabled_apps: vec!["com.off".into()],
            ..BroadcastSettings::default()
        },
        ..Settings::default()
    };
    let emu = Emulator::builder()
        .settings(settings)
        .start()
        .await
        .unwrap();
    let auth = bearer(&emu);
    let mut seen = BTreeSet::new();
    let mut m = connect(&emu, "manage_broadcast", MANAGE, None).await;
    let keep = create(&mut m, &auth, CREATE_1).await;
    let none = create(&mut m, &auth, CREATE_0).await;
    let gone = create(&mut m, &auth, CREATE_1).await;
    let chan = format!("/1/apps/{APP}/channels");
    let r = call(
        &mut m,
        MANAGE,
        "DELETE",
        &chan,
        &[("authorization", &auth), ("apns-channel-id", &gone)],
        "",
    )
    .await;
    assert_eq!(r.status, 204);

    use BroadcastReason::*;
    let a = auth.as_str();
    let big = format!(r#"{{"aps":{{}},"pad":"{}"}}"#, "x".repeat(4100));
    // Channel management.
    let manage: Vec<ManageCase> = vec![
        (
            "POST",
            "/1/apps/com.x/nothing".into(),
            vec![("authorization", a)],
            CREATE_1,
            BadPath,
        ),
        (
            "PUT",
            chan.clone(),
            vec![("authorization", a)],
            CREATE_1,
            MethodNotAllowed,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a), ("apns-request-id", "not-a-uuid")],
            CREATE_1,
            BadMessageId,
        ),
        ("POST", chan.clone(), vec![], CREATE_1, MissingProviderToken),
        (
            "POST",
            chan.clone(),
            vec![("authorization", "bearer e30.e30.sig")],
            CREATE_1,
            InvalidProviderToken,
        ),
        (
            "POST",
            "/1/apps/com.off/channels".into(),
            vec![("authorization", a)],
            CREATE_1,
            FeatureNotEnabled,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a)],
            "",
            PayloadEmpty,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a)],
            "{nope",
            BadRequestPayload,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a)],
            r#"{"message-storage-policy":1}"#,
            MissingPushType,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a)],
            r#"{"message-storage-policy":1,"push-type":"alert"}"#,
            InvalidPushType,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a)],
            r#"{"message-storage-policy":7,"push-type":"LiveActivity"}"#,
            BadRequestParams,
        ),
        (
            "POST",
            chan.clone(),
            vec![("authorization", a)],
            &big,
            PayloadTooLarge,
        ),
        (
            "GET",
            chan.clone(),
            vec![("authorization", a)],
            "",
            MissingChannelId,
        ),
        (
            "GET",
            chan.clone(),
            vec![("authorization", a), ("apns-channel-id", "%%%")],
            "",
            BadChannelId,
        ),
        (
            "DELETE",
            chan.clone(),
            vec![("authorization", a), ("apns-channel-id", &gone)],
            "",
            ChannelNotRegistered,
        ),
    ];
    for (method, path, headers, body, want) in &manage {
        // A fresh connection for refusals of the provider token (the team binds per connection).
        let mut c = connect(&emu, "manage_broadcast", MANAGE, None).await;
        let r = call(&mut c, MANAGE, method, path, headers, body).await;
        assert_reason(&r, *want, &format!("manage {method} {path} → {want}"));
        seen.insert(*want);
    }
    // Broadcast.
    let long_collapse = "c".repeat(65);
    let mut api = connect(&emu, "http2", "api.push.apple.com", None).await;
    let send = format!("/4/broadcasts/apps/{APP}");
    let la = ("apns-push-type", "liveactivity");
    let bcast: Vec<BroadcastCase> = vec![
        (
            "GET",
            vec![("authorization", a), la, ("apns-channel-id", &keep)],
            UPDATE,
            MethodNotAllowed,
        ),
        (
            "POST",
            vec![("authorization", a), ("apns-channel-id", &keep)],
            UPDATE,
            MissingPushType,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                ("apns-push-type", "alert"),
                ("apns-channel-id", &keep),
            ],
            UPDATE,
            InvalidPushType,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                la,
                ("apns-topic", APP),
                ("apns-channel-id", &keep),
            ],
            UPDATE,
            TopicDisallowed,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                la,
                ("apns-topic", "com.other.push-type.liveactivity"),
                ("apns-channel-id", &keep),
            ],
            UPDATE,
            TopicMismatch,
        ),
        (
            "POST",
            vec![("authorization", a), la],
            UPDATE,
            MissingChannelId,
        ),
        (
            "POST",
            vec![("authorization", a), la, ("apns-channel-id", "***")],
            UPDATE,
            BadChannelId,
        ),
        (
            "POST",
            vec![("authorization", a), la, ("apns-channel-id", &gone)],
            UPDATE,
            ChannelNotRegistered,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                la,
                ("apns-channel-id", &keep),
                ("apns-id", "x"),
            ],
            UPDATE,
            BadMessageId,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                la,
                ("apns-channel-id", &keep),
                ("apns-priority", "1"),
            ],
            UPDATE,
            BadPriority,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                la,
                ("apns-channel-id", &none),
                ("apns-expiration", "1900000000"),
            ],
            UPDATE,
            BadExpirationDate,
        ),
        (
            "POST",
            vec![
                ("authorization", a),
                la,
                ("apns-channel-id", &keep),
                ("apns-collapse-id", &long_collapse),
            ],
            UPDATE,
            BadRequestParams,
        ),
        (
            "POST",
            vec![("authorization", a), la, ("apns-channel-id", &keep)],
            "",
            PayloadEmpty,
        ),
        (
            "POST",
            vec![("authorization", a), la, ("apns-channel-id", &keep)],
            "[not json",
            BadRequestPayload,
        ),
        (
            "POST",
            vec![("authorization", a), la, ("apns-channel-id", &keep)],
            &big,
            PayloadTooLarge,
        ),
    ];
    for (method, headers, body, want) in &bcast {
        let r = call(&mut api, "api.push.apple.com", method, &send, headers, body).await;
        assert_reason(&r, *want, &format!("broadcast → {want}"));
        seen.insert(*want);
    }
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        "/4/broadcasts/nowhere",
        &[("authorization", a)],
        UPDATE,
    )
    .await;
    assert_reason(&r, BadPath, "broadcast bad path");
    // apns-request-id is echoed on errors too.
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &send,
        &[("authorization", a), ("apns-request-id", RID)],
        UPDATE,
    )
    .await;
    assert_eq!(assert_reason(&r, MissingPushType, "echo"), RID);

    // Provider-token rules of /3/device: an old token, then a second token too soon.
    let ok = [
        la,
        ("apns-channel-id", keep.as_str()),
        ("apns-expiration", "0"),
    ];
    let mut c = connect(&emu, "http2", "api.push.apple.com", None).await;
    let old = format!(
        "bearer {}",
        jwt_at(&emu, emu.clock().now_secs() - 7200, SignatureForm::Raw)
    );
    let r = call(
        &mut c,
        "api.push.apple.com",
        "POST",
        &send,
        &[&[("authorization", old.as_str())][..], &ok].concat(),
        UPDATE,
    )
    .await;
    assert_reason(&r, ExpiredProviderToken, "old iat");
    seen.insert(ExpiredProviderToken);
    let mut c = connect(&emu, "http2", "api.push.apple.com", None).await;
    let r = call(
        &mut c,
        "api.push.apple.com",
        "POST",
        &send,
        &[&[("authorization", a)][..], &ok].concat(),
        UPDATE,
    )
    .await;
    assert_eq!(r.status, 200);
    let newer = format!(
        "bearer {}",
        jwt_at(&emu, emu.clock().now_secs() - 5, SignatureForm::Der)
    );
    let r = call(
        &mut c,
        "api.push.apple.com",
        "POST",
        &send,
        &[&[("authorization", newer.as_str())][..], &ok].concat(),
        UPDATE,
    )
    .await;
    assert_reason(
        &r,
        TooManyProviderTokenUpdates,
        "second token within 20 minutes",
    );
    seen.insert(TooManyProviderTokenUpdates);

    // Client certificates: the other environment, another app.
    let mut c = connect(
        &emu,
        "http2",
        "api.push.apple.com",
        Some(ProviderKind::Sandbox),
    )
    .await;
    let r = call(&mut c, "api.push.apple.com", "POST", &send, &ok, UPDATE).await;
    assert_reason(
        &r,
        BadCertificateEnvironment,
        "sandbox certificate on production",
    );
    seen.insert(BadCertificateEnvironment);
    let mut c = connect(
        &emu,
        "http2",
        "api.push.apple.com",
        Some(ProviderKind::Production),
    )
    .await;
    let r = call(&mut c, "api.push.apple.com", "POST", &send, &ok, UPDATE).await;
    assert_eq!(r.status, 200, "certificate for the app");
    let r = call(
        &mut c,
        "api.push.apple.com",
        "POST",
        "/4/broadcasts/apps/com.other",
        &ok,
        UPDATE,
    )
    .await;
    assert_reason(&r, TopicMismatch, "certificate for another app");

    // Server-side conditions, forced through the Rust API as on /3/device.
    for (forced, want) in [
        (Reason::BadCertificate, BadCertificate),
        (Reason::TooManyRequests, TooManyRequests),
        (Reason::InternalServerError, InternalServerError),
        (Reason::ServiceUnavailable, ServiceUnavailable),
        (Reason::Shutdown, Shutdown),
    ] {
        emu.force_http2_reason(Some(forced));
        let r = call(
            &mut api,
            "api.push.apple.com",
            "POST",
            &send,
            &[&[("authorization", a)][..], &ok].concat(),
            UPDATE,
        )
        .await;
        assert_reason(&r, want, &format!("forced {want}"));
        let r = call(
            &mut m,
            MANAGE,
            "GET",
            &format!("/1/apps/{APP}/all-channels"),
            &[("authorization", a)],
            "",
        )
        .await;
        assert_reason(&r, want, &format!("forced {want} on management"));
        seen.insert(want);
    }
    emu.force_http2_reason(None);

    // CannotCreateChannelConfig has its own test (10,000 channels); everything else is here.
    seen.insert(CannotCreateChannelConfig);
    let all: BTreeSet<_> = BroadcastReason::ALL.into_iter().collect();
    assert_eq!(
        all.difference(&seen).collect::<Vec<_>>(),
        Vec::<&BroadcastReason>::new()
    );

    // Every refusal is journaled once, with its apns-request-id.
    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    assert!(rejected.iter().all(|e| e
        .detail
        .as_ref()
        .is_some_and(|d| d["apns_request_id"].is_string())));
    emu.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_channels_per_environment_then_cannot_create_channel_config() {
    let emu = Emulator::builder().start().await.unwrap();
    let auth = bearer(&emu);
    let c = connect(&emu, "manage_broadcast", MANAGE, None).await;
    let path = format!("/1/apps/{APP}/channels");
    // Warm up: the first valid token lifts the one-stream limit (PROTOCOL.md 2.2).
    let mut first = H2 {
        send: c.send.clone(),
        task: tokio::spawn(async { Ok(()) }),
    };
    create(&mut first, &auth, CREATE_0).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (mut h, auth, path) = (
            H2 {
                send: c.send.clone(),
                task: tokio::spawn(async { Ok(()) }),
            },
            auth.clone(),
            path.clone(),
        );
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..1250 {
                let r = call(
                    &mut h,
                    MANAGE,
                    "POST",
                    &path,
                    &[("authorization", &auth)],
                    CREATE_0,
                )
                .await;
                if r.status == 201 {
                    ids.push(r.header("apns-channel-id").unwrap().to_owned());
                } else {
                    ids.push(format!("refused:{}", String::from_utf8_lossy(&r.body)));
                }
            }
            ids
        });
    }
    let mut created = BTreeSet::new();
    let mut refused = 0;
    while let Some(ids) = tasks.join_next().await {
        for id in ids.unwrap() {
            if id.starts_with("refused:") {
                refused += 1;
            } else {
                assert!(created.insert(id), "ids are unique");
            }
        }
    }
    assert_eq!(created.len() + 1, 10_000, "exactly the limit is created");
    assert_eq!(refused, 1);
    let mut h = H2 {
        send: c.send.clone(),
        task: tokio::spawn(async { Ok(()) }),
    };
    let r = call(
        &mut h,
        MANAGE,
        "POST",
        &path,
        &[("authorization", &auth)],
        CREATE_0,
    )
    .await;
    assert_reason(&r, BroadcastReason::CannotCreateChannelConfig, "10,001st");
    // The other environment has its own 10,000.
    let mut sb = connect(
        &emu,
        "sandbox_manage_broadcast",
        "api-manage-broadcast.sandbox.push.apple.com",
        None,
    )
    .await;
    let r = call(
        &mut sb,
        "api-manage-broadcast.sandbox.push.apple.com",
        "POST",
        &path,
        &[("authorization", &auth)],
        CREATE_0,
    )
    .await;
    assert_eq!(r.status, 201);
    emu.shutdown().await;
}

/// Method, path, headers, body, expected reason.
type ManageCase<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    &'a str,
    BroadcastReason,
);
/// Method, headers, body, expected reason.
type BroadcastCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, BroadcastReason);

fn token(b: u8) -> DeviceToken {
    DeviceToken::from_hex(&format!("{b:02x}").repeat(32)).unwrap()
}

#[tokio::test]
async fn broadcast_reaches_subscribed_devices_by_storage_policy() {
    let emu = Emulator::builder().start().await.unwrap();
    let (online, offline, unsubscribed) = (token(1), token(2), token(3));
    for t in [&online, &offline, &unsubscribed] {
        emu.registry().register(TokenRecord::new(t.clone(), None));
    }
    emu.set_device_online(&offline, false);
    let keep = emu
        .create_channel(Environment::Production, APP, StoragePolicy::MostRecent)
        .unwrap()
        .id;
    let drop = emu
        .create_channel(Environment::Production, APP, StoragePolicy::NoStorage)
        .unwrap()
        .id;
    for ch in [&keep, &drop] {
        for t in [&online, &offline] {
            assert_eq!(
                emu.subscribe(Environment::Production, ch, t.clone()),
                Ok(true)
            );
        }
    }
    let auth = bearer(&emu);
    let mut api = connect(&emu, "http2", "api.push.apple.com", None).await;
    let send = format!("/4/broadcasts/apps/{APP}");
    let la = ("apns-push-type", "liveactivity");

    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &send,
        &[
            ("authorization", &auth),
            la,
            ("apns-channel-id", &keep),
            ("apns-request-id", RID),
        ],
        UPDATE,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.headers_ended_stream);
    assert_eq!(r.header("apns-request-id"), Some(RID));
    let apns_id = r.header("apns-id").unwrap().to_owned();
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &send,
        &[
            ("authorization", &auth),
            la,
            ("apns-channel-id", &drop),
            ("apns-expiration", "0"),
        ],
        UPDATE,
    )
    .await;
    assert_eq!(r.status, 200);

    let inbox = |t: &DeviceToken| emu.inbox(t).unwrap();
    assert_eq!(inbox(&online).inbox.len(), 2, "online: both delivered");
    assert_eq!(
        inbox(&offline).stored.len(),
        1,
        "offline: only policy 1 kept"
    );
    assert!(inbox(&offline).inbox.is_empty());
    assert!(inbox(&unsubscribed).inbox.is_empty() && inbox(&unsubscribed).stored.is_empty());

    // Journal: one accepted event per broadcast (with `channel`), one device event per subscriber.
    let accepted = emu.journal().query(&Filter::kind(EventKind::Accepted));
    assert_eq!(accepted.len(), 2);
    assert_eq!(
        accepted[0].detail.as_ref().unwrap()["channel"],
        keep.as_str()
    );
    assert_eq!(
        accepted[0]
            .notification
            .as_ref()
            .unwrap()
            .apns_id
            .as_deref(),
        Some(apns_id.as_str())
    );
    let stored = emu.journal().query(&Filter::kind(EventKind::Stored));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].detail.as_ref().unwrap()["channel"], keep.as_str());
    let expired = emu.journal().query(&Filter::kind(EventKind::Expired));
    assert_eq!(expired.len(), 1, "policy 0: dropped for the offline device");
    assert_eq!(
        expired[0].detail.as_ref().unwrap()["channel"],
        drop.as_str()
    );
    assert_eq!(
        emu.journal()
            .query(&Filter::kind(EventKind::Delivered))
            .len(),
        2
    );

    // Coming online delivers what policy 1 kept.
    emu.set_device_online(&offline, true);
    assert_eq!(inbox(&offline).inbox.len(), 1);
    assert_eq!(
        emu.journal()
            .query(&Filter::kind(EventKind::Delivered))
            .len(),
        3
    );

    // Policy 1 keeps only the most recent message, and at most 8 hours.
    emu.set_device_online(&offline, false);
    for _ in 0..2 {
        let r = call(
            &mut api,
            "api.push.apple.com",
            "POST",
            &send,
            &[("authorization", &auth), la, ("apns-channel-id", &keep)],
            UPDATE,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let held = inbox(&offline).stored;
    assert_eq!(held.len(), 1, "most recent only");
    let now = emu.clock().now_secs();
    assert!(held[0].expires_at <= now + 8 * 3600 && held[0].expires_at > now + 8 * 3600 - 60);
    assert_eq!(
        emu.journal()
            .query(&Filter::kind(EventKind::Replaced))
            .len(),
        1
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn live_activity_verdicts_are_recorded_and_the_answer_stays_apples() {
    let emu = Emulator::builder().start().await.unwrap();
    let t = token(9);
    emu.registry().register(TokenRecord::new(t.clone(), None));
    let ch = emu
        .create_channel(Environment::Production, APP, StoragePolicy::MostRecent)
        .unwrap()
        .id;
    emu.subscribe(Environment::Production, &ch, t.clone())
        .unwrap();
    let mut api = connect(&emu, "http2", "api.push.apple.com", None).await;
    let auth = bearer(&emu);
    let start = r#"{"aps":{"event":"start","timestamp":1,"content-state":{},"attributes-type":"M","attributes":{},"alert":"go"}}"#;
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &format!("/4/broadcasts/apps/{APP}"),
        &[
            ("authorization", &auth),
            ("apns-push-type", "liveactivity"),
            ("apns-channel-id", &ch),
        ],
        start,
    )
    .await;
    assert_eq!(
        r.status, 200,
        "Apple answers 200 and the device shows nothing"
    );
    let e = &emu.journal().query(&Filter::kind(EventKind::Accepted))[0];
    assert_eq!(
        e.detail.as_ref().unwrap()["live_activity"],
        serde_json::json!({"event":"start","displayed":false,"problems":[{"problem":"broadcast-cannot-start"}]})
    );
    let d = &emu.journal().query(&Filter::kind(EventKind::Delivered))[0];
    assert_eq!(
        d.detail.as_ref().unwrap()["live_activity"]["displayed"],
        false
    );

    // The same checks on /3/device: an update without content-state is accepted (200) and
    // recorded as not displayed, on the accepted event and on the device's delivered event.
    let path = format!("/3/device/{}", t.to_hex());
    let topic = format!("{APP}.push-type.liveactivity");
    let bad = r#"{"aps":{"event":"update","timestamp":1}}"#;
    let headers = [
        ("authorization", auth.as_str()),
        ("apns-push-type", "liveactivity"),
        ("apns-topic", topic.as_str()),
    ];
    let r = call(&mut api, "api.push.apple.com", "POST", &path, &headers, bad).await;
    assert_eq!(r.status, 200);
    let e = emu.journal().query(&Filter::kind(EventKind::Accepted));
    assert_eq!(
        e[1].detail.as_ref().unwrap()["live_activity"],
        serde_json::json!({"event":"update","displayed":false,"problems":[{"problem":"missing-content-state"}]})
    );
    let d = emu.journal().query(&Filter::kind(EventKind::Delivered));
    assert_eq!(
        d[1].detail.as_ref().unwrap()["live_activity"]["displayed"],
        false
    );
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &path,
        &headers,
        UPDATE,
    )
    .await;
    assert_eq!(r.status, 200);
    let e = emu.journal().query(&Filter::kind(EventKind::Accepted));
    assert_eq!(
        e[2].detail.as_ref().unwrap()["live_activity"]["displayed"],
        true
    );
    // A plain alert push carries no verdict.
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &path,
        &[("authorization", auth.as_str()), ("apns-topic", APP)],
        r#"{"aps":{"alert":"hi"}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let e = emu.journal().query(&Filter::kind(EventKind::Accepted));
    let verdict = e[3].detail.as_ref().and_then(|d| d.get("live_activity"));
    assert!(verdict.is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn control_api_lists_channels_and_manages_subscriptions() {
    let emu = Emulator::builder().start().await.unwrap();
    let ch = emu
        .create_channel(Environment::Sandbox, APP, StoragePolicy::NoStorage)
        .unwrap()
        .id;
    let base = format!("http://{}", emu.control_addr().unwrap());
    let http = reqwest::Client::new();
    let sub = serde_json::json!({"environment":"sandbox","channel":ch,"token":"ab".repeat(32)});
    let r = http
        .post(format!("{base}/subscriptions"))
        .json(&sub)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = http
        .get(format!("{base}/channels?environment=sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["channels"][0]["id"], ch.as_str());
    assert_eq!(v["channels"][0]["message_storage_policy"], 0);
    assert_eq!(
        v["channels"][0]["subscribers"],
        serde_json::json!(["ab".repeat(32)])
    );
    let r = http
        .delete(format!("{base}/subscriptions"))
        .json(&sub)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(emu.channels(Environment::Sandbox)[0].subscribers.is_empty());
    let bad = serde_json::json!({"environment":"production","channel":ch,"token":"ab"});
    let r = http
        .post(format!("{base}/subscriptions"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "channel ids are per environment");
    emu.shutdown().await;
}

/// Runs `apnsim channels …` against the emulator; returns (exit code, stdout).
async fn cli(dir: &std::path::Path, port: u16, args: &[&str]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_apnsim"));
    cmd.env_clear()
        .arg("channels")
        .args([
            "--certs",
            dir.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .args(args)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .expect("in time")
        .expect("ran");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.stderr.is_empty() || out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

#[tokio::test]
async fn the_channels_command_creates_lists_reads_broadcasts_and_deletes() {
    let dir = std::env::temp_dir().join(format!("apnsim-channels-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    apnsim::certs::generate(&dir, APP).unwrap();
    let emu = Emulator::builder()
        .certs(apnsim::CertSource::Dir(dir.clone()))
        .start()
        .await
        .unwrap();
    let manage = addr(&emu, "manage_broadcast").port();
    let api = addr(&emu, "http2").port();

    let (code, out) = cli(&dir, manage, &["create", "--storage-policy", "1"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("status: 201"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("apns-channel-id: "))
        .expect("channel id printed")
        .to_owned();
    let (code, out) = cli(&dir, manage, &["list"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&id), "{out}");
    let (code, out) = cli(&dir, manage, &["read", &id]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(r#""message-storage-policy":1"#), "{out}");

    let t = token(7);
    emu.registry().register(TokenRecord::new(t.clone(), None));
    emu.subscribe(Environment::Production, &id, t.clone())
        .unwrap();
    let (code, out) = cli(&dir, api, &["broadcast", &id, "--payload", UPDATE]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("status: 200") && out.contains("apns-request-id: "),
        "{out}"
    );
    assert_eq!(emu.inbox(&t).unwrap().inbox.len(), 1);

    let (code, out) = cli(&dir, manage, &["delete", &id]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("status: 204"), "{out}");
    let (code, out) = cli(&dir, manage, &["read", &id]).await;
    assert_eq!(code, 1, "an error exits 1: {out}");
    assert!(
        out.contains(r#"{"reason":"ChannelNotRegistered"}"#),
        "{out}"
    );
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn scenario_rules_reject_a_broadcast_and_the_retry_succeeds() {
    let emu = Emulator::builder().start().await.unwrap();
    emu.load_scenario(&common::scenarios::scenario(
        r#"
[[rules]]
name = "hot channel"
when = { protocol = "http2", push_type = "liveactivity", nth = 1 }
then = { action = "reject", reason = "TooManyRequests" }
"#,
    ))
    .unwrap();
    let ch = emu
        .create_channel(Environment::Production, APP, StoragePolicy::MostRecent)
        .unwrap()
        .id;
    let mut api = connect(&emu, "http2", "api.push.apple.com", None).await;
    let auth = bearer(&emu);
    let send = format!("/4/broadcasts/apps/{APP}");
    let headers = [
        ("authorization", auth.as_str()),
        ("apns-push-type", "liveactivity"),
        ("apns-channel-id", ch.as_str()),
    ];
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &send,
        &headers,
        UPDATE,
    )
    .await;
    assert_reason(&r, BroadcastReason::TooManyRequests, "rule fired");
    let r = call(
        &mut api,
        "api.push.apple.com",
        "POST",
        &send,
        &headers,
        UPDATE,
    )
    .await;
    assert_eq!(r.status, 200, "the retry goes through");
    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].detail.as_ref().unwrap()["rule"]["name"],
        "hot channel"
    );
    assert_eq!(rejected[0].detail.as_ref().unwrap()["channel"], ch.as_str());
    emu.shutdown().await;
}

/// PROTOCOL.md 2.11: policy 1 keeps the most recent message per channel, so an offline device
/// subscribed to two channels of one app holds one message of each; deleting a channel does not
/// take back what it stored ("stored messages may still be delivered after deletion").
#[tokio::test]
async fn an_offline_device_keeps_the_most_recent_message_of_each_channel() {
    let emu = Emulator::builder().start().await.unwrap();
    let device = token(7);
    emu.registry()
        .register(TokenRecord::new(device.clone(), None));
    emu.set_device_online(&device, false);
    let mut channels = Vec::new();
    for _ in 0..2 {
        let ch = emu
            .create_channel(Environment::Production, APP, StoragePolicy::MostRecent)
            .unwrap()
            .id;
        assert_eq!(
            emu.subscribe(Environment::Production, &ch, device.clone()),
            Ok(true)
        );
        channels.push(ch);
    }
    let auth = bearer(&emu);
    let mut api = connect(&emu, "http2", "api.push.apple.com", None).await;
    let send = format!("/4/broadcasts/apps/{APP}");
    // a, b, a: the second message of channel a replaces its first, channel b's stays.
    for (i, ch) in [&channels[0], &channels[1], &channels[0]]
        .iter()
        .enumerate()
    {
        let body = format!(
            r#"{{"aps":{{"event":"update","timestamp":1700000000,"content-state":{{"n":{i}}}}}}}"#
        );
        let r = call(
            &mut api,
            "api.push.apple.com",
            "POST",
            &send,
            &[
                ("authorization", &auth),
                ("apns-push-type", "liveactivity"),
                ("apns-channel-id", ch),
            ],
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let held = emu.inbox(&device).unwrap().stored;
    let slots: Vec<_> = held.iter().map(|s| s.channel.clone().unwrap()).collect();
    assert_eq!(slots, vec![channels[1].clone(), channels[0].clone()]);
    let n_of = |s: &apnsim::engine::devices::StoredNotification| {
        serde_json::from_slice::<serde_json::Value>(&s.notification.payload).unwrap()["aps"]
            ["content-state"]["n"]
            .clone()
    };
    assert_eq!(n_of(&held[0]), 1);
    assert_eq!(n_of(&held[1]), 2, "channel a's most recent message");
    let replaced = emu.journal().query(&Filter::kind(EventKind::Replaced));
    assert_eq!(replaced.len(), 1);
    assert_eq!(
        replaced[0].detail.as_ref().unwrap()["by"],
        "one-per-channel"
    );

    // Deleting channel b keeps what it stored; coming online delivers both.
    let mut m = connect(&emu, "manage_broadcast", MANAGE, None).await;
    let r = call(
        &mut m,
        MANAGE,
        "DELETE",
        &format!("/1/apps/{APP}/channels"),
        &[("authorization", &auth), ("apns-channel-id", &channels[1])],
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    emu.set_device_online(&device, true);
    let view = emu.inbox(&device).unwrap();
    assert!(view.stored.is_empty());
    assert_eq!(view.inbox.len(), 2);
    emu.shutdown().await;
}

/// Issue 13 item 5: scenario rules match broadcast requests by `api` and `channel`, and every
/// `/3/device` action works on `/4/broadcasts` and on the management API: status/reason
/// answers, delay, RST_STREAM, GOAWAY and close; a refused or cut management call changes nothing.
#[tokio::test]
async fn scenario_faults_on_the_broadcast_path_and_the_management_api() {
    let emu = Emulator::builder().start().await.unwrap();
    let hot = emu
        .create_channel(Environment::Production, APP, StoragePolicy::MostRecent)
        .unwrap()
        .id;
    let calm = emu
        .create_channel(Environment::Production, APP, StoragePolicy::MostRecent)
        .unwrap()
        .id;
    emu.load_scenario(&common::scenarios::scenario(&format!(
        r#"
[[rules]]
name = "teapot"
when = {{ api = "broadcast", channel = "{hot}" }}
then = {{ action = "reject", reason = "TooManyRequests", status = 418 }}
times = 1

[[rules]]
name = "slow"
when = {{ api = "broadcast", channel = "{hot}" }}
then = {{ action = "delay", ms = 400 }}
times = 1

[[rules]]
name = "rst"
when = {{ api = "broadcast", channel = "{hot}" }}
then = {{ action = "rst_stream", code = "REFUSED_STREAM" }}
times = 1

[[rules]]
name = "bye"
when = {{ api = "broadcast", channel = "{hot}" }}
then = {{ action = "goaway", reason = "Shutdown" }}
times = 1

[[rules]]
name = "busy manager"
when = {{ api = "channel-management" }}
then = {{ action = "reject", reason = "TooManyRequests" }}
times = 1

[[rules]]
name = "cut manager"
when = {{ api = "channel-management" }}
then = {{ action = "close" }}
times = 1
"#
    )))
    .unwrap();
    let auth = bearer(&emu);
    let mut api = connect(&emu, "http2", "api.push.apple.com", None).await;
    // The channel matcher: another channel is untouched by the rules.
    assert_eq!(post(&mut api, &auth, &calm).await.unwrap().status, 200);
    // 1: reject with a status override.
    let r = post(&mut api, &auth, &hot).await.unwrap();
    assert_eq!(r.status, 418);
    assert_eq!(r.json(), serde_json::json!({"reason": "TooManyRequests"}));
    assert!(r.header("apns-request-id").is_some());
    // 2: delay, then Apple's answer.
    let t = std::time::Instant::now();
    assert_eq!(post(&mut api, &auth, &hot).await.unwrap().status, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(400));
    // 3: RST_STREAM, the connection lives on.
    let e = post(&mut api, &auth, &hot).await.unwrap_err();
    assert_eq!(e.reason(), Some(h2::Reason::REFUSED_STREAM), "{e:?}");
    assert_eq!(post(&mut api, &auth, &calm).await.unwrap().status, 200);
    // 4: GOAWAY with {"reason":"Shutdown"}: the request is not processed.
    let e = post(&mut api, &auth, &hot).await.unwrap_err();
    assert!(e.is_go_away() || e.is_io(), "{e:?}");
    let accepted = emu.journal().query(&Filter::kind(EventKind::Accepted));
    let on_hot = accepted
        .iter()
        .filter(|e| e.detail.as_ref().unwrap()["channel"] == hot.as_str())
        .count();
    assert_eq!(
        on_hot, 1,
        "only the delayed broadcast went out on the hot channel"
    );
    let dropped = emu.journal().query(&Filter::kind(EventKind::Dropped));
    let rules: Vec<_> = dropped
        .iter()
        .map(|e| e.detail.as_ref().unwrap()["rule"]["name"].clone())
        .collect();
    assert_eq!(rules, vec!["rst", "bye"]);

    // The management API: a refused create creates nothing; a closed connection neither.
    let mut m = connect(&emu, "manage_broadcast", MANAGE, None).await;
    let chan = format!("/1/apps/{APP}/channels");
    let r = call(
        &mut m,
        MANAGE,
        "POST",
        &chan,
        &[("authorization", &auth)],
        CREATE_1,
    )
    .await;
    assert_reason(&r, BroadcastReason::TooManyRequests, "rule on create");
    let cut = try_call(
        &mut m,
        MANAGE,
        "POST",
        &chan,
        &[("authorization", &auth)],
        CREATE_1,
    )
    .await;
    assert!(cut.is_err(), "closed without an answer");
    assert_eq!(
        emu.channels(Environment::Production).len(),
        2,
        "nothing created"
    );
    // A new connection: the rules are spent, the call goes through.
    let mut m = connect(&emu, "manage_broadcast", MANAGE, None).await;
    let _ = create(&mut m, &auth, CREATE_1).await;
    assert_eq!(emu.channels(Environment::Production).len(), 3);
    emu.shutdown().await;
}

/// A broadcast to `ch` with the usual headers.
async fn post(c: &mut H2, auth: &str, ch: &str) -> Result<Reply, h2::Error> {
    let h = [
        ("authorization", auth),
        ("apns-push-type", "liveactivity"),
        ("apns-channel-id", ch),
    ];
    let path = format!("/4/broadcasts/apps/{APP}");
    try_call(c, "api.push.apple.com", "POST", &path, &h, UPDATE).await
}

/// `apnsim send` runs as `apnsim send` would from a shell.
async fn send_cli(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_apnsim"));
    cmd.env_clear()
        .arg("send")
        .args(["--certs", dir.to_str().unwrap()])
        .args(args)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .expect("in time")
        .expect("ran");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Issue 13 item 6: `apnsim send --channel` broadcasts (token and certificate auth), and a plan's
/// broadcast steps run in order, a `create` step's channel reachable as `@<id>`.
#[tokio::test]
async fn send_broadcasts_to_a_channel_and_runs_broadcast_plans() {
    let dir = std::env::temp_dir().join(format!("apnsim-send-channel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    apnsim::certs::generate(&dir, APP).unwrap();
    let emu = Emulator::builder()
        .certs(apnsim::CertSource::Dir(dir.clone()))
        .start()
        .await
        .unwrap();
    let api = addr(&emu, "http2").port().to_string();
    let manage = addr(&emu, "manage_broadcast").port().to_string();
    let ch = emu
        .create_channel(Environment::Production, APP, StoragePolicy::NoStorage)
        .unwrap()
        .id;
    let t = token(9);
    emu.registry().register(TokenRecord::new(t.clone(), None));
    emu.subscribe(Environment::Production, &ch, t.clone())
        .unwrap();
    for auth in ["token", "certificate"] {
        let (code, out) = send_cli(
            &dir,
            &[
                "--auth",
                auth,
                "--port",
                &api,
                "--channel",
                &ch,
                "--payload",
                UPDATE,
            ],
        )
        .await;
        assert_eq!(code, 0, "{auth}: {out}");
        assert!(out.contains(r#""result":"sent""#), "{auth}: {out}");
    }
    assert_eq!(emu.inbox(&t).unwrap().inbox.len(), 2);
    // --expiry is sent as given: a no-storage channel refuses anything but 0.
    let (code, out) = send_cli(
        &dir,
        &[
            "--auth",
            "token",
            "--port",
            &api,
            "--channel",
            &ch,
            "--payload",
            UPDATE,
            "--expiry",
            "1900000000",
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BadExpirationDate"), "{out}");

    let plan = serde_json::json!({
        "notifications": [],
        "broadcasts": [
            {"id": 1, "op": "create", "storage_policy": 1},
            {"id": 2, "op": "read", "channel": "@1"},
            {"id": 3, "op": "list"},
            {"id": 4, "op": "broadcast", "channel": "@1", "payload": serde_json::from_str::<serde_json::Value>(UPDATE).unwrap()},
            {"id": 5, "op": "delete", "channel": "@1"},
            {"id": 6, "op": "broadcast", "channel": "@1", "payload": {"aps": {}}},
        ]
    });
    let plan_path = dir.join("plan.json");
    std::fs::write(&plan_path, plan.to_string()).unwrap();
    let (code, out) = send_cli(
        &dir,
        &[
            "--auth",
            "token",
            "--port",
            &api,
            "--manage-port",
            &manage,
            "--plan",
            plan_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let result = |id: u64| {
        lines
            .iter()
            .find(|l| l["id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}: {out}"))
            .clone()
    };
    let created = result(1)["channel"].as_str().unwrap().to_owned();
    for id in 1..=5 {
        assert_eq!(result(id)["result"], "sent", "{id}: {out}");
    }
    assert_eq!(result(6)["result"], "failed");
    assert_eq!(result(6)["reason"], "ChannelNotRegistered");
    assert_eq!(result(6)["status"], 400);
    assert!(emu
        .channels(Environment::Production)
        .iter()
        .all(|c| c.id != created));
    emu.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13 item 3: on the HTTP/2 ports the management API answers by `:authority`/SNI
/// `api-manage-broadcast[.sandbox].push.apple.com` (the server certificate covers the names: the
/// client verifies them), the management host serves nothing else, and the API host does not
/// serve management paths: 404 BadPath with apns-request-id (PROTOCOL.md 2.11 [inferred]).
#[tokio::test]
async fn the_management_host_is_routed_by_authority_and_sni_on_the_http2_ports() {
    let emu = Emulator::builder().start().await.unwrap();
    let auth = bearer(&emu);
    let chan = format!("/1/apps/{APP}/channels");
    for (key, manage, api) in [
        ("http2", MANAGE, "api.push.apple.com"),
        (
            "sandbox_http2",
            "api-manage-broadcast.sandbox.push.apple.com",
            "api.sandbox.push.apple.com",
        ),
    ] {
        // SNI and :authority name the management host: the whole management API answers.
        let mut m = connect(&emu, key, manage, None).await;
        let r = call(
            &mut m,
            manage,
            "POST",
            &chan,
            &[("authorization", &auth)],
            CREATE_1,
        )
        .await;
        assert_eq!(r.status, 201, "{key}: {}", String::from_utf8_lossy(&r.body));
        let id = r.header("apns-channel-id").unwrap().to_owned();
        let r = call(
            &mut m,
            manage,
            "GET",
            &format!("/1/apps/{APP}/all-channels"),
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains(&id));
        // The management host does not serve /3/device or /4/broadcasts.
        let r = call(
            &mut m,
            manage,
            "POST",
            &format!("/3/device/{}", "ab".repeat(32)),
            &[("authorization", &auth), ("apns-topic", APP)],
            r#"{"aps":{"alert":"hi"}}"#,
        )
        .await;
        assert_reason(
            &r,
            BroadcastReason::BadPath,
            "/3/device on the management host",
        );
        let r = call(
            &mut m,
            manage,
            "POST",
            &format!("/4/broadcasts/apps/{APP}"),
            &[
                ("authorization", &auth),
                ("apns-push-type", "liveactivity"),
                ("apns-channel-id", &id),
            ],
            UPDATE,
        )
        .await;
        assert_reason(
            &r,
            BroadcastReason::BadPath,
            "/4/broadcasts on the management host",
        );
        // The API host does not serve management paths, and still serves broadcasts.
        let mut a = connect(&emu, key, api, None).await;
        let r = call(
            &mut a,
            api,
            "POST",
            &chan,
            &[("authorization", &auth)],
            CREATE_1,
        )
        .await;
        assert_reason(&r, BroadcastReason::BadPath, "management on the API host");
        let r = call(
            &mut a,
            api,
            "POST",
            &format!("/4/broadcasts/apps/{APP}"),
            &[
                ("authorization", &auth),
                ("apns-push-type", "liveactivity"),
                ("apns-channel-id", &id),
            ],
            UPDATE,
        )
        .await;
        assert_eq!(r.status, 200, "{key}");
    }
    emu.shutdown().await;
}
