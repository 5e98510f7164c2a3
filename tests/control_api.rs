//! The control API over real HTTP (reqwest) against an in-process emulator: every route, the
//! bearer token, bad input, the journal wait timeout, live server-sent events and metrics
//! caused by real notifications sent over TLS.

mod common;

use apnsim::engine::TokenRecord;
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment};
use apnsim::{Emulator, ProviderKind};
use common::frames::framed;
use common::h2client::{h2_connect, Req, TOKEN};
use common::{connect, send, ClientOpts};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::future::IntoFuture;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Opens a production legacy connection and sends one frame; the stream is returned so an
/// accepted notification's connection stays open.
async fn legacy_push(emu: &Emulator, id: u32, token: &[u8]) -> TlsStream<TcpStream> {
    let ca = emu.ca_pem();
    let ident = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(ident)))
        .await
        .expect("connect");
    send(&mut tls, &framed(id, token)).await;
    tls
}

struct Api {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    fn new(emu: &Emulator, token: Option<&str>) -> Self {
        Api {
            base: format!("http://{}", emu.control_addr().expect("control port on")),
            http: reqwest::Client::new(),
            token: token.map(str::to_string),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => b.bearer_auth(t),
            None => b,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        call(self.req(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        call(self.req(reqwest::Method::POST, path).body(body.to_string())).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        call(self.req(reqwest::Method::DELETE, path)).await
    }

    async fn text(&self, path: &str) -> String {
        let r = self
            .req(reqwest::Method::GET, path)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.expect("body")
    }
}

/// Sends and returns the status with the body as JSON (`null` when empty).
async fn call(b: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = b.send().await.expect("send");
    let status = r.status();
    let bytes = r.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "body: {body}");
    assert!(body["error"].is_string(), "error body: {body}");
}

#[tokio::test]
async fn bearer_token_guards_everything_but_health() {
    let emu = Emulator::builder()
        .control_token(Some("s3cret".into()))
        .start()
        .await
        .unwrap();
    let open = Api::new(&emu, None);
    let wrong = Api::new(&emu, Some("nope"));
    let good = Api::new(&emu, Some("s3cret"));
    assert_eq!(
        open.get("/livez").await,
        (StatusCode::OK, json!({"status": "live"}))
    );
    assert_eq!(
        open.get("/readyz").await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    for path in [
        "/journal",
        "/metrics",
        "/tokens",
        "/connections",
        "/events",
        "/clock",
    ] {
        let r = open.req(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let (status, body) = call(wrong.req(reqwest::Method::GET, path)).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = open.post("/clock/advance", r#"{"seconds":5}"#).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED);
    assert_eq!(
        emu.clock().offset_secs(),
        0,
        "refused request changed nothing"
    );
    assert_eq!(good.get("/journal").await.0, StatusCode::OK);
    assert!(good.text("/metrics").await.contains("apnsim_events_total"));
    // The router for mounting elsewhere carries the same token.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mounted = format!("http://{}/tokens", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, emu.control_router()).into_future());
    let r = reqwest::get(&mounted).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = reqwest::Client::new()
        .get(&mounted)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    emu.shutdown().await;
}

/// `GET /openapi.json` (open, like the page: a description holds no data) is OpenAPI 3.1 and
/// true of the server: every documented operation reaches a handler (never the "no such route"
/// fallback or 405), and an operation documented as needing the token answers 401 without it.
#[tokio::test]
async fn openapi_document_matches_the_routes_and_their_security() {
    let emu = Emulator::builder()
        .control_token(Some("s3cret".into()))
        .start()
        .await
        .unwrap();
    let open = Api::new(&emu, None);
    let (status, doc) = open.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    assert_eq!(
        doc,
        serde_json::to_value(apnsim::control::openapi()).unwrap()
    );
    let paths = doc["paths"].as_object().unwrap();
    for want in [
        "/journal",
        "/journal/wait",
        "/tokens/{token}",
        "/scenario",
        "/events",
    ] {
        assert!(paths.contains_key(want), "{want} documented");
    }
    let token = "ab".repeat(32);
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            operations += 1;
            let url = path.replace("{token}", &token);
            let needs_token = op.get("security") != Some(&json!([{}]));
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                open.req(method.clone(), &url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send(),
            )
            .await
            .expect("answered")
            .unwrap();
            if needs_token {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            } else {
                assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            }
            let good = Api::new(&emu, Some("s3cret"));
            let r = good
                .req(method.clone(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send();
            if path == "/events" {
                // A live stream: its head is enough.
                let r = tokio::time::timeout(Duration::from_secs(5), r)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                continue;
            }
            let r = tokio::time::timeout(Duration::from_secs(10), r)
                .await
                .unwrap()
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {body}"
            );
            assert!(!body.contains("no such route"), "{method} {path}: {body}");
            assert!(
                op["responses"].get(status.as_str()).is_some(),
                "{method} {path} answered {status}, which the document does not list: {body}"
            );
        }
    }
    assert!(operations >= 29, "{operations} operations");
    emu.shutdown().await;
}

#[tokio::test]
async fn tokens_devices_and_feedback() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu, None);
    let hex = "ab".repeat(32);
    let record = json!({"token": hex, "environment": "sandbox", "topic": "com.example.app",
        "unregistered_at": null, "online": true});
    let (status, body) = api.post("/tokens", &record.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, record);
    let token = DeviceToken::from_hex(&hex).unwrap();
    assert_eq!(
        emu.registry().get(&token).unwrap().environment,
        Some(Environment::Sandbox),
        "the running emulator sees the token"
    );
    // An array registers several; fields left out take their defaults.
    let (status, body) = api
        .post(
            "/tokens",
            &json!([{"token": "01".repeat(32)}, {"token": "02".repeat(32), "online": false}])
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (_, list) = api.get("/tokens").await;
    let listed: Vec<TokenRecord> = serde_json::from_value(list["tokens"].clone()).unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed, emu.registry().list());
    let (status, got) = api.get(&format!("/tokens/{}", hex.to_uppercase())).await;
    assert_eq!((status, got), (StatusCode::OK, record.clone()));

    assert_eq!(
        api.post(&format!("/devices/{hex}/offline"), "").await.0,
        StatusCode::NO_CONTENT
    );
    assert!(!emu.registry().get(&token).unwrap().online);
    assert_eq!(
        api.post(&format!("/devices/{hex}/online"), "").await.0,
        StatusCode::NO_CONTENT
    );
    assert!(emu.registry().get(&token).unwrap().online);
    let (status, body) = api
        .post(&format!("/devices/{}/offline", "cd".repeat(32)), "")
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    assert_eq!(
        api.delete(&format!("/tokens/{hex}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert!(emu.registry().get(&token).is_none());
    let (status, body) = api.delete(&format!("/tokens/{hex}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND);

    // Bad bodies and paths change nothing.
    for bad in [
        "not json",
        r#"{"token":"zz"}"#,
        r#"{"token":""}"#,
        r#"{"token":"abcd","enviroment":"sandbox"}"#,
        r#"{"token":"abcd","environment":"staging"}"#,
        r#"[{"token":"abcd"},{"token":"x"}]"#,
    ] {
        let (status, body) = api.post("/tokens", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    assert_eq!(emu.registry().list().len(), 2, "no partial registration");
    let (status, body) = api.delete("/tokens/not-hex").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);

    let fb = json!({"topic": "com.example.app", "environment": "production", "token": hex, "timestamp": 1_700_000_000u32});
    let (status, body) = api.post("/feedback", &fb.to_string()).await;
    assert_eq!((status, &body), (StatusCode::CREATED, &fb));
    let queued = emu
        .registry()
        .peek_feedback(Environment::Production, "com.example.app");
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].timestamp, 1_700_000_000);
    assert!(emu
        .registry()
        .peek_feedback(Environment::Sandbox, "com.example.app")
        .is_empty());
    // environment null = both; timestamp absent = now on the emulator's clock.
    let (status, body) = api
        .post(
            "/feedback",
            &json!({"topic": "com.b", "environment": null, "token": "0a0b"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ts = body["timestamp"].as_u64().unwrap();
    assert!(ts.abs_diff(emu.clock().now_secs()) <= 2, "{ts}");
    let (_, peek) = api.get("/feedback?topic=com.b").await;
    assert_eq!(peek["entries"].as_array().unwrap().len(), 2);
    let (_, peek) = api.get("/feedback?topic=com.b&environment=sandbox").await;
    assert_eq!(peek["entries"][0]["token"], "0a0b");
    for bad in [
        r#"{"topic":"t"}"#,
        r#"{"topic":"t","token":"0a","colour":1}"#,
        r#"{"topic":"","token":"0a"}"#,
    ] {
        let (status, body) = api.post("/feedback", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    let (status, body) = api.get("/feedback").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn journal_query_wait_and_clear() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu, None);
    let _open = legacy_push(&emu, 1, &[7; 32]).await;
    let _rejected = legacy_push(&emu, 2, &[7; 33]).await; // status 5: invalid token size
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Rejected),
            1,
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let (status, body) = api.get("/journal?kind=accepted&protocol=legacy").await;
    assert_eq!(status, StatusCode::OK);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["kind"], "accepted");
    assert_eq!(events[0]["notification"]["token"], "07".repeat(32));
    assert_eq!(events[0]["notification"]["identifier"], "00000001");
    assert_eq!(body["last_seq"], emu.journal().last_seq());
    let (_, rej) = api.get("/journal?kind=rejected").await;
    assert_eq!(rej["events"][0]["status"], 5);
    let (_, by_token) = api
        .get(&format!(
            "/journal?token={}",
            "07".repeat(32).to_uppercase()
        ))
        .await;
    assert_eq!(by_token["events"].as_array().unwrap().len(), 1);
    let (_, none) = api.get("/journal?protocol=http2").await;
    assert_eq!(none["events"], json!([]));
    // limit keeps the newest, oldest first.
    let all = emu.journal().query(&Filter::default());
    let (_, last2) = api.get("/journal?limit=2").await;
    let seqs: Vec<u64> = last2["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        all[all.len() - 2..]
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    );
    assert_eq!(last2["matched"], all.len());
    let since = all[0].seq;
    let (_, after) = api.get(&format!("/journal?since={since}")).await;
    assert_eq!(after["events"].as_array().unwrap().len(), all.len() - 1);

    for bad in [
        "/journal?kind=teleported",
        "/journal?protocol=smtp",
        "/journal?since=-1",
        "/journal?limit=many",
        "/journal?token=xyz",
        "/journal?kinds=accepted",
        "/journal?kind=accepted&kind=rejected",
        "/journal/wait?n=two",
        "/journal/wait?limit=3",
    ] {
        let (status, body) = api.get(bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }

    let (status, body) = api
        .get("/journal/wait?kind=accepted&n=1&timeout_ms=2000")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    let started = std::time::Instant::now();
    let (status, body) = api
        .get("/journal/wait?kind=accepted&n=3&timeout_ms=200")
        .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        body,
        json!({"error": "timeout", "found": 1, "wanted": 3, "first_seq": 1, "evicted": 0})
    );
    assert!(started.elapsed() >= Duration::from_millis(200));

    // A wait that is satisfied by a notification sent while it blocks.
    let last = emu.journal().last_seq();
    let waiter = {
        let url = format!(
            "{}/journal/wait?kind=accepted&since={last}&timeout_ms=10000",
            api.base
        );
        tokio::spawn(async move { call(reqwest::Client::new().get(url)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _second = legacy_push(&emu, 3, &[8; 32]).await;
    let (status, body) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"][0]["notification"]["token"], "08".repeat(32));

    let before_clear = emu.journal().last_seq();
    assert!(before_clear > last);
    let (status, body) = api.delete("/journal").await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert!(emu.journal().is_empty());
    let (_, empty) = api.get("/journal").await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(
        empty["last_seq"], before_clear,
        "sequence numbers survive a clear"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn events_stream_a_live_http2_notification() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu, None);
    let resp = api
        .req(reqwest::Method::GET, "/events?kind=accepted")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = resp.bytes_stream();

    let ca = emu.ca_pem();
    let mut h2 = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Production)),
    )
    .await;
    let reply = h2.request(Req::push().topic(emu.topic())).await;
    assert_eq!(reply.status, 200);

    let mut text = String::new();
    let event: Value = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                if text.contains("\n\n") {
                    return serde_json::from_str(line).expect("event json");
                }
            }
        }
    })
    .await
    .expect("an event within 10 s");
    assert_eq!(event["kind"], "accepted");
    assert_eq!(event["protocol"], "http2");
    assert_eq!(event["notification"]["token"], TOKEN);
    assert!(text.contains(&format!("id: {}", event["seq"])), "{text}");
    // Only accepted events were asked for: no connection-opened before it.
    assert_eq!(text.matches("data: ").count(), 1, "{text}");

    // The stream ends when the emulator stops, and shutdown does not wait on it.
    let started = std::time::Instant::now();
    emu.shutdown_with(Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown waited on the stream"
    );
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "event stream did not end with the emulator");
}

#[tokio::test]
async fn metrics_count_a_real_accepted_notification() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu, None);
    let before = api.text("/metrics").await;
    assert!(
        before.contains("apnsim_events_total{kind=\"accepted\",protocol=\"legacy\"} 0\n"),
        "{before}"
    );
    let _open = legacy_push(&emu, 9, &[3; 32]).await;
    emu.journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let text = api.text("/metrics").await;
    assert!(text.contains("# TYPE apnsim_events_total counter\n"));
    assert!(
        text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"legacy\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("apnsim_events_total{kind=\"connection-opened\",protocol=\"legacy\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("apnsim_journal_events {}\n", emu.journal().len())),
        "{text}"
    );
    assert!(text.contains("apnsim_journal_evicted_total 0\n"));
    // Counters outlive a journal clear.
    assert_eq!(api.delete("/journal").await.0, StatusCode::NO_CONTENT);
    let text = api.text("/metrics").await;
    assert!(
        text.contains("apnsim_events_total{kind=\"accepted\",protocol=\"legacy\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("apnsim_journal_events 0\n"), "{text}");
    emu.shutdown().await;
}

#[tokio::test]
async fn clock_connections_and_unknown_routes() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu, None);
    let (status, body) = api.post("/clock/advance", r#"{"seconds":3600}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["offset_secs"], 3600);
    assert_eq!(emu.clock().offset_secs(), 3600);
    let (_, clock) = api.get("/clock").await;
    assert_eq!(clock["offset_secs"], 3600);
    for bad in [
        "",
        "{}",
        r#"{"seconds":"1h"}"#,
        r#"{"seconds":1,"minutes":2}"#,
        r#"{"seconds":9223372036854775807}"#,
    ] {
        let (status, body) = api.post("/clock/advance", bad).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST);
    }
    assert_eq!(emu.clock().offset_secs(), 3600);

    let (_, conns) = api.get("/connections").await;
    assert_eq!(conns["http2"], json!([]));
    assert_eq!(conns["legacy"], json!([]));
    let ca = emu.ca_pem();
    let mut h2 = h2_connect(
        emu.http2_addr(),
        &ca,
        Some(emu.identity(ProviderKind::Production)),
    )
    .await;
    assert_eq!(h2.request(Req::push().topic(emu.topic())).await.status, 200);
    let (_, conns) = api.get("/connections").await;
    let list = conns["http2"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{conns}");
    assert_eq!(list[0]["environment"], "production");
    assert_eq!(list[0]["auth"], "certificate");
    assert_eq!(list[0]["observations"]["requests"], 1);
    assert_eq!(list[0]["id"], emu.http2_connections()[0].id);
    let metrics = api.text("/metrics").await;
    assert!(
        metrics.contains("apnsim_http2_connections{environment=\"production\"} 1\n"),
        "{metrics}"
    );

    let (status, body) = api.get("/nope").await;
    assert_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = api.delete("/clock/advance").await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
    emu.shutdown().await;
}

#[tokio::test]
async fn control_port_can_be_turned_off() {
    let emu = Emulator::builder()
        .control_port(None)
        .start()
        .await
        .unwrap();
    assert_eq!(emu.control_addr(), None);
    assert!(!emu.addrs().0.contains_key("control"));
    emu.shutdown().await;
    let emu = Emulator::builder().start().await.unwrap();
    assert_eq!(emu.addr("control"), emu.control_addr());
    assert!(emu.control_addr().unwrap().ip().is_loopback());
    emu.shutdown().await;
}
