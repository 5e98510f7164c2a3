//! The device model over real TLS: offline devices keep the latest notification per app,
//! honour expiry (legacy command 1/2 expiry, HTTP/2 apns-expiration) and apns-collapse-id, and
//! get what was stored when they come online; the journal and the inbox (Rust and control API)
//! show it. Frames are built byte by byte here (PROTOCOL.md 1.3, 1.4).

mod common;

use apnsim::engine::scenario::parse_toml;
use apnsim::engine::TokenRecord;
use apnsim::journal::{Event, EventKind, Filter};
use apnsim::model::{DeviceToken, Protocol};
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd1, framed_full};
use common::h2client::{h2_connect, Req};
use common::{connect, send, ClientOpts};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const WAIT: Duration = Duration::from_secs(5);

fn payload(id: u32) -> Vec<u8> {
    format!(r#"{{"aps":{{"alert":"n{id}"}}}}"#).into_bytes()
}

fn token(b: u8) -> DeviceToken {
    DeviceToken::from_bytes(vec![b; 32])
}

fn register(emu: &Emulator, b: u8, online: bool) {
    emu.registry().register(TokenRecord {
        online,
        ..TokenRecord::new(token(b), None)
    });
}

async fn legacy(emu: &Emulator) -> TlsStream<TcpStream> {
    let ca = emu.ca_pem();
    connect(
        emu.legacy_addr(),
        &ClientOpts::new(&ca, Some(emu.identity(ProviderKind::Production))),
    )
    .await
    .expect("connect")
}

/// The legacy identifier of an event's notification.
fn id_of(e: &Event) -> u32 {
    e.notification
        .as_ref()
        .and_then(|n| n.identifier)
        .map_or(0, |i| i.as_u32())
}

/// Every event of one connection from `accepted` on, as (kind, identifier).
fn trail(emu: &Emulator, connection: u64) -> Vec<(EventKind, u32)> {
    emu.journal()
        .query(&Filter {
            connection: Some(connection),
            ..Filter::default()
        })
        .iter()
        .filter(|e| e.notification.is_some())
        .map(|e| (e.kind, id_of(e)))
        .collect()
}

async fn wait(emu: &Emulator, kind: EventKind, n: usize) -> Vec<Event> {
    emu.journal()
        .wait_for(&Filter::kind(kind), n, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"))
}

fn inbox_ids(emu: &Emulator, b: u8) -> (Vec<u32>, Vec<u32>) {
    let v = emu.inbox(&token(b)).expect("registered");
    let id = |n: &apnsim::model::Notification| n.identifier.map_or(0, |i| i.as_u32());
    (
        v.stored.iter().map(|s| id(&s.notification)).collect(),
        v.inbox.iter().map(|d| id(&d.notification)).collect(),
    )
}

#[tokio::test]
async fn legacy_offline_device_keeps_the_latest_per_app_and_gets_it_online() {
    let emu = Emulator::builder().start().await.expect("start");
    register(&emu, 1, false); // offline
    register(&emu, 2, true); // online
    let later = u32::try_from(emu.clock().now_secs() + 3600).unwrap();
    let mut tls = legacy(&emu).await;
    // One write: the gateway's bulk path decides the whole run.
    let batch = [
        cmd1(1, later, token(1).as_bytes(), &payload(1)),
        framed_full(2, 0, token(1).as_bytes(), &payload(2)), // expiry 0: not stored
        framed_full(3, later, token(1).as_bytes(), &payload(3)), // replaces 1
        cmd1(4, 0, token(2).as_bytes(), &payload(4)),        // online: delivered
        cmd1(5, later, &[9u8; 32], &payload(5)),             // unknown token: no device model
    ]
    .concat();
    send(&mut tls, &batch).await;
    let accepted = wait(&emu, EventKind::Accepted, 5).await;
    let conn = accepted[0].connection;
    assert_eq!(
        trail(&emu, conn),
        vec![
            (EventKind::Accepted, 1),
            (EventKind::Stored, 1),
            (EventKind::Accepted, 2),
            (EventKind::Expired, 2),
            (EventKind::Accepted, 3),
            (EventKind::Replaced, 3),
            (EventKind::Accepted, 4),
            (EventKind::Delivered, 4),
            (EventKind::Accepted, 5),
        ]
    );
    let replaced = &emu.journal().query(&Filter::kind(EventKind::Replaced))[0];
    assert_eq!(replaced.protocol, Protocol::Legacy);
    assert_eq!(replaced.environment, accepted[0].environment);
    let detail = replaced.detail.as_ref().expect("detail");
    assert_eq!(detail["replaced"]["identifier"], "00000001");
    assert_eq!(detail["app"], emu.topic());
    assert_eq!(inbox_ids(&emu, 1), (vec![3], vec![]));
    assert_eq!(inbox_ids(&emu, 2), (vec![], vec![4]));

    // Coming online delivers what was stored, journaled on connection 0 with its origin.
    assert!(emu.set_device_online(&token(1), true));
    let delivered = wait(&emu, EventKind::Delivered, 2).await;
    let last = delivered.last().expect("delivered");
    assert_eq!((last.connection, id_of(last)), (0, 3));
    assert_eq!(last.protocol, Protocol::Legacy);
    assert_eq!(inbox_ids(&emu, 1), (vec![], vec![3]));
    assert!(!emu.set_device_online(&token(9), true), "unknown token");
    assert!(emu.inbox(&token(9)).is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn legacy_stored_notification_expires_while_offline() {
    let emu = Emulator::builder().start().await.expect("start");
    register(&emu, 1, true);
    assert!(emu.set_device_online(&token(1), false));
    let soon = u32::try_from(emu.clock().now_secs() + 10).unwrap();
    let mut tls = legacy(&emu).await;
    send(&mut tls, &cmd1(7, soon, token(1).as_bytes(), &payload(7))).await;
    wait(&emu, EventKind::Stored, 1).await;
    emu.clock().advance_secs(60);
    assert!(emu.set_device_online(&token(1), true));
    let expired = wait(&emu, EventKind::Expired, 1).await;
    assert_eq!((expired[0].connection, id_of(&expired[0])), (0, 7));
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Delivered)), 0);
    assert_eq!(inbox_ids(&emu, 1), (vec![], vec![]));
    emu.shutdown().await;
}

#[tokio::test]
async fn legacy_frame_by_frame_path_runs_the_device_model_too() {
    // An `accept` with a delay takes the 2nd notification off the bulk path.
    let scenario = parse_toml(
        r#"
[[rules]]
name = "slow accept"
when = { protocol = "legacy", nth = 2 }
then = { action = "accept" }
delay_ms = 10
"#,
    )
    .expect("scenario");
    let emu = Emulator::builder()
        .scenario(scenario, None)
        .start()
        .await
        .expect("start");
    register(&emu, 1, false);
    let later = u32::try_from(emu.clock().now_secs() + 3600).unwrap();
    let mut tls = legacy(&emu).await;
    let t = token(1).as_bytes().to_vec();
    let batch = [
        framed_full(1, later, &t, &payload(1)),
        framed_full(2, later, &t, &payload(2)),
        framed_full(3, 0, &t, &payload(3)),
    ]
    .concat();
    send(&mut tls, &batch).await;
    let accepted = wait(&emu, EventKind::Accepted, 3).await;
    wait(&emu, EventKind::Expired, 1).await;
    assert_eq!(
        trail(&emu, accepted[0].connection),
        vec![
            (EventKind::Accepted, 1),
            (EventKind::Stored, 1),
            (EventKind::Accepted, 2),
            (EventKind::Replaced, 2),
            (EventKind::Accepted, 3),
            (EventKind::Expired, 3),
        ]
    );
    assert_eq!(inbox_ids(&emu, 1), (vec![2], vec![]));
    emu.shutdown().await;
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(emu: &Emulator) -> Self {
        Api {
            base: format!("http://{}", emu.control_addr().expect("control port")),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str) -> StatusCode {
        self.http
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
            .status()
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.expect("json"))
    }
}

fn apns_ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|x| {
            x["notification"]["apns_id"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn http2_expiration_and_collapse_id_through_the_control_api() {
    let emu = Emulator::builder().start().await.expect("start");
    let api = Api::new(&emu);
    let hex = token(3).to_hex();
    register(&emu, 3, true);
    assert_eq!(
        api.post(&format!("/devices/{hex}/offline")).await,
        StatusCode::NO_CONTENT
    );
    let ca = emu.ca_pem();
    let mut h2 = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Universal)),
    )
    .await;
    let later = (emu.clock().now_secs() + 3600).to_string();
    let push = |id: &str| {
        Req::push()
            .path(&format!("/3/device/{hex}"))
            .topic(emu.topic())
            .header("apns-id", id)
    };
    let ids = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "00000000-0000-4000-8000-000000000004",
    ];
    for r in [
        push(ids[0])
            .header("apns-collapse-id", "score")
            .header("apns-expiration", &later),
        push(ids[1]).header("apns-collapse-id", "score"),
        push(ids[2]).header("apns-expiration", "0"),
    ] {
        assert_eq!(h2.request(r).await.status, 200);
    }
    // While offline: 1 stored, 2 replaced it (same collapse id), 3 not stored (expiration 0).
    let (status, view) = api.get(&format!("/devices/{hex}/inbox")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["token"], hex.as_str());
    assert_eq!(view["online"], false);
    assert_eq!(apns_ids(&view["stored"]), vec![ids[1]]);
    assert_eq!(apns_ids(&view["inbox"]), Vec::<String>::new());
    let replaced = emu.journal().query(&Filter::kind(EventKind::Replaced));
    assert_eq!(replaced.len(), 1);
    let detail = replaced[0].detail.as_ref().expect("detail");
    assert_eq!(detail["by"], "collapse-id");
    assert_eq!(detail["replaced"]["apns_id"], ids[0]);
    let expired = emu.journal().query(&Filter::kind(EventKind::Expired));
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].protocol, Protocol::Http2);
    assert_ne!(expired[0].connection, 0);

    // Online through the control API: the stored one is delivered and journaled.
    assert_eq!(
        api.post(&format!("/devices/{hex}/online")).await,
        StatusCode::NO_CONTENT
    );
    let delivered = wait(&emu, EventKind::Delivered, 1).await;
    assert_eq!(delivered[0].connection, 0);
    assert_eq!(delivered[0].protocol, Protocol::Http2);

    // Online now: a push with the same collapse id replaces the displayed one.
    assert_eq!(
        h2.request(push(ids[3]).header("apns-collapse-id", "score"))
            .await
            .status,
        200
    );
    let delivered = wait(&emu, EventKind::Delivered, 2).await;
    let detail = delivered[1].detail.as_ref().expect("detail");
    assert_eq!(detail["collapsed"]["apns_id"], ids[1]);
    let (_, view) = api.get(&format!("/devices/{hex}/inbox")).await;
    assert_eq!(view["online"], true);
    assert_eq!(apns_ids(&view["stored"]), Vec::<String>::new());
    assert_eq!(apns_ids(&view["inbox"]), vec![ids[3]]);

    // The journal filter knows the new kinds.
    let (status, body) = api.get("/journal?kind=delivered").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Unknown and malformed tokens.
    let (status, _) = api
        .get(&format!("/devices/{}/inbox", "ab".repeat(32)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/devices/xyz/inbox").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}
