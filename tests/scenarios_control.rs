//! Scenarios through the control API (GET|PUT|DELETE /scenario) with real connections showing
//! each change take effect, generated provider keys that really sign accepted JWTs, and the
//! `apnsim check-scenario` command on every fixture and on a broken file.

mod common;

use apnsim::http2::auth::{sign_jwt, SignatureForm};
use apnsim::journal::{EventKind, Filter};
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd2, item, PAYLOAD};
use common::h2client::{h2_connect, Req};
use common::{connect, send, ClientOpts};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const TOPIC: &str = "com.example.app";

/// A scenario whose rule answers every legacy notification with status 8 (easy to see on the wire).
const REFUSE_ALL: &str = r#"# refuse everything
[[rules]]
name = "refuse all"
when = { protocol = "legacy" }
then = { action = "error", status = "invalid_token" }
"#;

/// The same shape with a bad status on line 5 and an unknown field on line 6.
const BROKEN: &str = r#"# broken on purpose
[[rules]]
name = "typo"
when = { protocol = "legacy" }
then = { action = "error", status = 300 }
tims = 2
"#;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// 1-based (line, column) of the first occurrence of `needle`.
fn pos(text: &str, needle: &str) -> (u64, u64) {
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return ((i + 1) as u64, (line[..c].chars().count() + 1) as u64);
        }
    }
    panic!("{needle:?} not in text");
}

/// A legacy command-2 frame with items 1 to 3 (PROTOCOL.md 1.4).
fn framed(id: u32) -> Vec<u8> {
    cmd2(&[
        item(1, &[7u8; 32]),
        item(2, PAYLOAD),
        item(3, &id.to_be_bytes()),
    ])
}

/// Sends one notification on a fresh legacy connection and returns what came back within
/// `ms` (an error-response, or nothing while the connection stays open).
async fn legacy_answer(emu: &Emulator, id: u32, ms: u64) -> Vec<u8> {
    let ca = emu.ca_pem();
    let ident = emu.identity(ProviderKind::Production);
    let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(ident)))
        .await
        .unwrap();
    send(&mut tls, &framed(id)).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(ms), tls.read_to_end(&mut out)).await;
    out
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(emu: &Emulator) -> Self {
        Api {
            base: format!("http://{}", emu.control_addr().unwrap()),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, body: Option<&str>) -> (StatusCode, Value) {
        let mut b = self.http.request(method, format!("{}/scenario", self.base));
        if let Some(body) = body {
            b = b.body(body.to_string());
        }
        let r = b.send().await.expect("send");
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON")
        };
        (status, v)
    }

    async fn get(&self) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, None).await
    }

    async fn put(&self, body: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, Some(body)).await
    }

    async fn delete(&self) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, None).await
    }
}

fn rule_names(v: &Value) -> Vec<String> {
    v["scenario"]["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn put_invalid_put_and_delete_scenario() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu);
    assert_eq!(api.get().await.0, StatusCode::NOT_FOUND, "none loaded yet");
    assert!(
        legacy_answer(&emu, 1, 200).await.is_empty(),
        "default: accepted"
    );

    // A valid TOML: 200, and the rule answers the next real notification.
    let (status, body) = api.put(REFUSE_ALL).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(rule_names(&body), ["refuse all"]);
    assert_eq!(legacy_answer(&emu, 2, 2000).await, [8, 8, 0, 0, 0, 2]);

    // An invalid one: 400 with every error's line and column; nothing changed.
    let (status, body) = api.put(BROKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let errors = body["errors"].as_array().expect("errors[]");
    let at: Vec<(u64, u64)> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(at, vec![pos(BROKEN, "300"), pos(BROKEN, "tims")], "{body}");
    assert!(errors.iter().all(|e| e["message"].is_string()));
    let (status, body) = api.get().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        rule_names(&body),
        ["refuse all"],
        "previous scenario still in force"
    );
    assert_eq!(legacy_answer(&emu, 3, 2000).await, [8, 8, 0, 0, 0, 3]);

    // JSON is accepted too (same shape).
    let json = r#"{"rules":[{"name":"refuse as json","when":{"protocol":"legacy"},"then":{"action":"error","status":7}}]}"#;
    let (status, body) = api.put(json).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(legacy_answer(&emu, 4, 2000).await, [8, 7, 0, 0, 0, 4]);

    // DELETE: rules gone.
    let (status, _) = api.delete().await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.get().await.0, StatusCode::NOT_FOUND);
    assert!(
        legacy_answer(&emu, 5, 200).await.is_empty(),
        "accepted again"
    );
    let accepted = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            2,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let ids: Vec<u32> = accepted
        .iter()
        .map(|e| {
            e.notification
                .as_ref()
                .unwrap()
                .identifier
                .unwrap()
                .as_u32()
        })
        .collect();
    assert_eq!(ids, [1, 5]);
}

#[tokio::test]
async fn generated_keys_are_shown_and_sign_accepted_jwts() {
    let emu = Emulator::builder().start().await.unwrap();
    let api = Api::new(&emu);
    let text = std::fs::read_to_string(fixtures_dir().join("expired-jwt.toml")).unwrap();
    let (status, put) = api.put(&text).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    let (status, body) = api.get().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["generated_keys"], put["generated_keys"]);
    let pem = body["generated_keys"]["ABC123DEFG"]
        .as_str()
        .expect("a generated key for ABC123DEFG");
    assert!(pem.contains("BEGIN PRIVATE KEY"), "PKCS#8 PEM: {pem}");
    assert_eq!(body["scenario"]["keys"][0]["team_id"], "DEF123GHIJ");

    let ca = emu.ca_pem();
    let jwt = sign_jwt(
        pem,
        "ABC123DEFG",
        "DEF123GHIJ",
        emu.clock().now_secs(),
        SignatureForm::Raw,
    )
    .unwrap();
    let mut c = h2_connect(emu.http2_addr(), &ca, None).await;
    let r = c.request(Req::push().topic(TOPIC).jwt(&jwt)).await;
    assert_eq!(r.status, 200, "{}", r.body_text());

    // After DELETE the key is gone with the scenario.
    assert_eq!(api.delete().await.0, StatusCode::NO_CONTENT);
    let mut c = h2_connect(emu.http2_addr(), &ca, None).await;
    let r = c.request(Req::push().topic(TOPIC).jwt(&jwt)).await;
    assert_eq!(r.status, 403, "{}", r.body_text());
}

#[test]
fn check_scenario_accepts_every_fixture() {
    let files = fixtures();
    assert_eq!(files.len(), 9, "{files:?}");
    for f in files {
        let out = Command::new(env!("CARGO_BIN_EXE_apnsim"))
            .arg("check-scenario")
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn check_scenario_reports_file_line_col() {
    let dir = std::env::temp_dir().join(format!("apnsim-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.toml");
    std::fs::write(&file, BROKEN).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .arg("check-scenario")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for (line, needle) in lines.iter().zip(["300", "tims"]) {
        let (l, c) = pos(BROKEN, needle);
        let prefix = format!("{}:{l}:{c}: ", file.display());
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
        assert!(line.len() > prefix.len(), "a message follows");
    }
}
