//! Connection-level behaviour of the HTTP/2 API (PROTOCOL.md 2.2, Part 3) seen from real clients:
//! the stream limit before and after the first valid JWT, GOAWAY on idle timeout and shutdown,
//! the observation records (PRIORITY, HPACK, ALPN), a client with no ALPN, and curl.

mod common;

use apnsim::http2::auth::SignatureForm;
use apnsim::http2::frame::{setting, ErrorCode, Frame, PrioritySpec};
use apnsim::journal::{EventKind, Filter};
use apnsim::settings::Settings;
use apnsim::{Emulator, ProviderKind};
use common::h2client::*;
use common::ClientOpts;
use std::time::Duration;

const TOPIC: &str = "com.example.app";

fn mcs(params: &[(u16, u32)]) -> Option<u32> {
    params
        .iter()
        .find(|(id, _)| *id == setting::MAX_CONCURRENT_STREAMS)
        .map(|(_, v)| *v)
}

#[tokio::test]
async fn token_connection_allows_one_stream_until_the_first_valid_jwt() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();

    // Raw frames: what the server actually announces, SETTINGS by SETTINGS.
    let mut raw = Raw::connect(emu.http2_addr(), &h2_opts(&ca, None)).await;
    raw.await_settings().await;
    assert_eq!(mcs(&raw.settings[0]), Some(1), "{:?}", raw.settings);
    // A rejected token does not lift the limit.
    let s = raw
        .push(
            &[
                ("apns-topic", TOPIC, INC),
                ("authorization", "bearer a.b.c", NO_INDEX),
            ],
            PAYLOAD,
        )
        .await;
    assert_eq!(raw.response(s).await.status(), 403);
    // While the limit is 1, a second concurrent stream is refused.
    let path = device_path(TOKEN);
    let open = [
        (":method", "POST", INC),
        (":scheme", "https", INC),
        (":path", path.as_str(), NO_INDEX),
        ("apns-topic", TOPIC, INC),
    ];
    let first = raw.open_stream(&open).await;
    let second = raw.open_stream(&open).await;
    let refused = raw
        .until(|f| matches!(f, Frame::RstStream { stream_id, .. } if *stream_id == second))
        .await
        .expect("second stream refused");
    assert_eq!(
        refused,
        Frame::RstStream {
            stream_id: second,
            code: ErrorCode::REFUSED_STREAM
        }
    );
    // The first one, still open, is answered once complete (403: it has no token).
    raw.finish(first, PAYLOAD).await;
    let r = raw.response(first).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.body, br#"{"reason":"MissingProviderToken"}"#);
    assert_eq!(raw.max_concurrent_streams(), Some(1), "{:?}", raw.settings);
    // The first valid JWT raises it to 1000 with a new SETTINGS frame.
    let jwt = bearer(&jwt_now(&emu, SignatureForm::Raw));
    let s = raw
        .push(
            &[
                ("apns-topic", TOPIC, INC),
                ("authorization", &jwt, NO_INDEX),
            ],
            PAYLOAD,
        )
        .await;
    assert_eq!(raw.response(s).await.status(), 200);
    while raw.max_concurrent_streams() != Some(1000) {
        raw.read_frame().await.expect("SETTINGS with 1000");
    }
    assert_eq!(raw.settings.len(), 2, "{:?}", raw.settings);

    // The h2 crate sees the same: 1, then 1000 after the first valid token.
    let mut c = h2_connect(emu.http2_addr(), &ca, None).await;
    assert_eq!(c.wait_max_send_streams(1).await, 1);
    let r = c
        .request(
            Req::push()
                .topic(TOPIC)
                .jwt(&jwt_now(&emu, SignatureForm::Der)),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.wait_max_send_streams(1000).await, 1000);
    emu.shutdown().await;
}

#[tokio::test]
async fn certificate_connection_starts_at_1000_streams() {
    let emu = Emulator::builder()
        .settings(Settings {
            http2_max_streams: 1000,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Universal);
    let mut raw = Raw::connect(emu.http2_addr(), &h2_opts(&ca, Some(id))).await;
    raw.await_settings().await;
    assert_eq!(mcs(&raw.settings[0]), Some(1000));
    let s = raw.push(&[("apns-topic", TOPIC, INC)], PAYLOAD).await;
    assert_eq!(raw.response(s).await.status(), 200);
    assert_eq!(
        raw.settings.len(),
        1,
        "no further SETTINGS: {:?}",
        raw.settings
    );
    let c = h2_connect(emu.http2_addr(), &ca, Some(id)).await;
    assert_eq!(c.wait_max_send_streams(1000).await, 1000);
    emu.shutdown().await;
}

#[tokio::test]
async fn idle_connection_gets_goaway_idle_timeout() {
    let emu = Emulator::builder()
        .settings(Settings {
            http2_idle_timeout_secs: 1,
            ..Settings::default()
        })
        .start()
        .await
        .unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Universal);
    let mut raw = Raw::connect(emu.http2_addr(), &h2_opts(&ca, Some(id))).await;
    let s = raw.push(&[("apns-topic", TOPIC, INC)], PAYLOAD).await;
    assert_eq!(raw.response(s).await.status(), 200);
    let started = std::time::Instant::now();
    raw.read_to_close().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    match raw.goaways.as_slice() {
        [Frame::GoAway {
            debug,
            last_stream_id,
            ..
        }] => {
            assert_eq!(&debug[..], br#"{"reason":"IdleTimeout"}"#);
            assert_eq!(*last_stream_id, s);
        }
        other => panic!("one GOAWAY expected: {other:?}"),
    }
    let closed = emu
        .journal()
        .wait_for(&Filter::kind(EventKind::ConnectionClosed), 1, WAIT)
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn shutdown_sends_goaway_shutdown_to_open_connections() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Universal).clone();
    let mut raw = Raw::connect(emu.http2_addr(), &h2_opts(&ca, Some(&id))).await;
    let s = raw.push(&[("apns-topic", TOPIC, INC)], PAYLOAD).await;
    assert_eq!(raw.response(s).await.status(), 200);
    let journal = emu.journal().clone();
    let stopping = tokio::spawn(emu.shutdown());
    raw.read_to_close().await;
    match raw.goaways.as_slice() {
        [Frame::GoAway {
            debug,
            code,
            last_stream_id,
        }] => {
            assert_eq!(&debug[..], br#"{"reason":"Shutdown"}"#);
            assert_eq!((*code, *last_stream_id), (ErrorCode::NO_ERROR, s));
        }
        other => panic!("one GOAWAY expected: {other:?}"),
    }
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown finished")
        .unwrap();
    assert_eq!(journal.count(&Filter::kind(EventKind::ConnectionClosed)), 1);
}

/// The observation record of the connection with id `conn`, from the connection-closed event.
async fn closed_observations(emu: &Emulator, conn: u64) -> serde_json::Value {
    let filter = Filter {
        connection: Some(conn),
        ..Filter::kind(EventKind::ConnectionClosed)
    };
    let events = emu.journal().wait_for(&filter, 1, WAIT).await.unwrap();
    events[0].detail.as_ref().unwrap()["observations"].clone()
}

#[tokio::test]
async fn observations_record_priority_hpack_and_alpn() {
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let jwt = bearer(&jwt_now(&emu, SignatureForm::Raw));
    let id = "123e4567-e89b-12d3-a456-426614174000";

    // Client A: follows Apple's HPACK advice (PROTOCOL.md 2.2: apns-id indexed the first time,
    // without indexing afterwards; other headers indexed), sends no PRIORITY, negotiates ALPN h2.
    let mut a = Raw::connect(emu.http2_addr(), &h2_opts(&ca, None)).await;
    for (topic_rep, id_rep) in [(INC, INC), (INDEXED, NO_INDEX)] {
        let s = a
            .push(
                &[
                    ("apns-topic", TOPIC, topic_rep),
                    ("authorization", &jwt, NO_INDEX),
                    ("apns-id", id, id_rep),
                ],
                PAYLOAD,
            )
            .await;
        assert_eq!(a.response(s).await.status(), 200);
    }
    // Client B: never-indexed authorization, apns-id without indexing, PRIORITY frames, no ALPN.
    let mut b = Raw::connect(emu.http2_addr(), &ClientOpts::new(&ca, None)).await;
    b.send_frame(Frame::Priority {
        stream_id: 1,
        spec: PrioritySpec {
            exclusive: false,
            dependency: 0,
            weight: 200,
        },
    })
    .await;
    let path = device_path(TOKEN);
    let fields = [
        (":method", "POST", INC),
        (":scheme", "https", INC),
        (":path", path.as_str(), INC),
        ("apns-topic", TOPIC, NO_INDEX),
        ("authorization", jwt.as_str(), NEVER),
        ("apns-id", id, NO_INDEX),
    ];
    let prio = Some(PrioritySpec {
        exclusive: true,
        dependency: 0,
        weight: 15,
    });
    let s = b.request_with(&fields, PAYLOAD, prio).await;
    assert_eq!(b.response(s).await.status(), 200);

    // Live view while both are open.
    let live = emu.http2_connections();
    assert_eq!(live.len(), 2);
    let (oa, ob) = (&live[0].observations, &live[1].observations);
    assert_eq!((oa.priority_frames, ob.priority_frames), (0, 2));
    assert_eq!((oa.alpn, ob.alpn), (true, false));
    assert_eq!((oa.requests, ob.requests), (2, 1));
    let first = |o: &apnsim::http2::server::Observations, name: &str| -> Vec<String> {
        o.hpack[name]
            .iter()
            .map(|r| r.split('+').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        first(oa, "authorization"),
        ["without_indexing", "without_indexing"]
    );
    assert_eq!(
        first(oa, "apns-id"),
        ["incremental_indexing", "without_indexing"]
    );
    assert_eq!(first(oa, "apns-topic"), ["incremental_indexing", "indexed"]);
    assert_eq!(first(oa, ":path"), ["without_indexing", "without_indexing"]);
    assert_eq!(first(ob, "authorization"), ["never_indexed"]);
    assert_eq!(first(ob, "apns-id"), ["without_indexing"]);
    assert_eq!(first(ob, "apns-topic"), ["without_indexing"]);
    assert_eq!(first(ob, ":path"), ["incremental_indexing"]);

    // The connection-closed journal event carries the same record.
    let (ida, idb) = (live[0].id, live[1].id);
    drop(a);
    drop(b);
    let ca_obs = closed_observations(&emu, ida).await;
    let cb_obs = closed_observations(&emu, idb).await;
    assert_eq!(ca_obs["priority_frames"], 0);
    assert_eq!(cb_obs["priority_frames"], 2);
    assert_eq!(
        (ca_obs["alpn"].clone(), cb_obs["alpn"].clone()),
        (true.into(), false.into())
    );
    assert!(cb_obs["hpack"]["authorization"][0]
        .as_str()
        .unwrap()
        .starts_with("never_indexed"));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_client_without_alpn_still_gets_http2() {
    // aioapns opens TLS without ALPN and speaks HTTP/2 at once (prior knowledge).
    let emu = Emulator::builder().start().await.unwrap();
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Universal);
    let opts = ClientOpts::new(&ca, Some(id));
    assert!(opts.alpn.is_empty());
    // The h2 crate with prior knowledge, as aioapns does it.
    let mut c = h2_connect_with(emu.http2_addr(), &opts).await;
    let r = c.request(Req::push().topic(TOPIC)).await;
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert!(r.headers_ended_stream);
    let opened = emu
        .journal()
        .query(&Filter::kind(EventKind::ConnectionOpened));
    assert_eq!(
        opened[0].detail.as_ref().unwrap()["alpn"],
        serde_json::Value::Null
    );
    assert!(!emu.http2_connections()[0].observations.alpn);
    emu.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// A directory of PEM files for curl, removed on drop.
struct Files(std::path::PathBuf);

impl Files {
    fn new(tag: &str) -> Files {
        let dir = std::env::temp_dir().join(format!(
            "apnsim-h2-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs curl with `--http2`; fails (never skips) when curl is missing or lacks HTTP/2.
async fn curl(args: &[String]) -> String {
    let missing = ".ci/run installs it (scripts/install-test-tools.sh) on a clean machine";
    let version = tokio::process::Command::new("curl")
        .arg("--version")
        .output()
        .await
        .unwrap_or_else(|e| panic!("curl is required for this test ({e}); {missing}"));
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("HTTP2"),
        "this curl has no HTTP/2 support; {missing}"
    );
    let out = tokio::process::Command::new("curl")
        .arg("--http2")
        .arg("-sS")
        .arg("-i")
        .arg("--max-time")
        .arg("10")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("curl could not run ({e}); {missing}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn curl_with_a_client_certificate() {
    let emu = Emulator::builder().start().await.unwrap();
    let files = Files::new("cert");
    let ca = files.write("ca.pem", &emu.ca_pem());
    let id = emu.identity(ProviderKind::Production);
    let cert = files.write("cert.pem", &id.cert_pem);
    let key = files.write("key.pem", &id.key_pem);
    let url = format!(
        "https://localhost:{}{}",
        emu.http2_addr().port(),
        device_path(TOKEN)
    );
    let out = curl(&[
        "--cacert".into(),
        ca,
        "--cert".into(),
        cert,
        "--key".into(),
        key,
        "-H".into(),
        format!("apns-topic: {TOPIC}"),
        "-H".into(),
        "apns-push-type: alert".into(),
        "-d".into(),
        String::from_utf8_lossy(PAYLOAD).into_owned(),
        url,
    ])
    .await;
    let status_line = out.lines().next().unwrap_or_default().trim_end();
    assert_eq!(status_line, "HTTP/2 200", "{out}");
    assert!(out.to_lowercase().contains("apns-id: "), "{out}");
    let accepted = emu.journal().query(&Filter::kind(EventKind::Accepted));
    assert_eq!(accepted.len(), 1);
    let n = accepted[0].notification.as_ref().unwrap();
    assert_eq!(
        (n.token.to_hex().as_str(), n.topic.as_deref()),
        (TOKEN, Some(TOPIC))
    );
    assert_eq!(&n.payload[..], PAYLOAD);
    let opened = emu
        .journal()
        .query(&Filter::kind(EventKind::ConnectionOpened));
    assert_eq!(
        opened[0].detail.as_ref().unwrap()["alpn"],
        "h2",
        "curl negotiated h2"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn curl_with_a_provider_token() {
    let emu = Emulator::builder().start().await.unwrap();
    let files = Files::new("token");
    let ca = files.write("ca.pem", &emu.ca_pem());
    let url = format!(
        "https://localhost:{}{}",
        emu.http2_addr().port(),
        device_path(TOKEN)
    );
    let jwt = jwt_now(&emu, SignatureForm::Raw);
    let base = |auth: &str| -> Vec<String> {
        vec![
            "--cacert".into(),
            ca.clone(),
            "-H".into(),
            format!("authorization: {auth}"),
            "-H".into(),
            format!("apns-topic: {TOPIC}"),
            "-d".into(),
            String::from_utf8_lossy(PAYLOAD).into_owned(),
            url.clone(),
        ]
    };
    let out = curl(&base(&format!("bearer {jwt}"))).await;
    assert_eq!(
        out.lines().next().unwrap_or_default().trim_end(),
        "HTTP/2 200",
        "{out}"
    );
    let out = curl(&base("bearer not.a.jwt")).await;
    assert_eq!(
        out.lines().next().unwrap_or_default().trim_end(),
        "HTTP/2 403",
        "{out}"
    );
    assert!(
        out.ends_with(r#"{"reason":"InvalidProviderToken"}"#),
        "{out}"
    );
    assert_eq!(emu.journal().count(&Filter::kind(EventKind::Accepted)), 1);
    let rejected = emu.journal().query(&Filter::kind(EventKind::Rejected));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].reason.as_deref(), Some("InvalidProviderToken"));
    emu.shutdown().await;
}
