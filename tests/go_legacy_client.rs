//! A Go legacy client that reads the way many Go clients did (the data of a `Read` that also
//! returns an error is dropped) against the gateway and the feedback service: it sees the
//! error-response and every tuple by default, where the data and close_notify arrive apart
//! (PROTOCOL.md 1.1), and misses the error-response when a rule says `close = "burst"` (the last
//! feedback tuple when the setting `feedback_close` says `"burst"`).
//! Needs Go (`go build`); without it these tests fail rather than skip.

mod common;

use apnsim::engine::FeedbackEntry;
use apnsim::journal::{EventKind, Filter};
use apnsim::model::{DeviceToken, Environment};
use apnsim::{Emulator, ProviderKind};
use common::frames::error_response;
use common::scenarios::{emulator_with, scenario};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Builds the Go client once per test binary.
fn client() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/legacyclient");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("legacyclient");
        let status = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(&src)
            // Standard library only: never reach for a module proxy or another toolchain.
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GOFLAGS", "-mod=mod")
            .status()
            .expect("go is needed by this test (Go's crypto/tls is what it checks against)");
        assert!(status.success(), "go build tests/go/legacyclient failed");
        out
    })
}

/// Runs the client against `addr` with the production identity; returns (bytes read, how the
/// read loop ended).
async fn run(emu: &Emulator, addr: SocketAddr, args: &[&str]) -> (Vec<u8>, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("go-client-{}", addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let id = emu.identity(ProviderKind::Production);
    for (name, pem) in [
        ("ca.pem", emu.ca_pem()),
        ("cert.pem", id.cert_pem.clone()),
        ("key.pem", id.key_pem.clone()),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let out = tokio::process::Command::new(client())
        .arg("-addr")
        .arg(addr.to_string())
        .arg("-ca")
        .arg(dir.join("ca.pem"))
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .args(args)
        .output()
        .await
        .expect("run the Go client");
    assert!(
        out.status.success(),
        "Go client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    (
        hex::decode(v["read"].as_str().unwrap()).unwrap(),
        v["error"].as_str().unwrap().to_string(),
    )
}

/// An emulator whose first notification on a connection is refused with status 8, closing as
/// `close` says (`None`: the default).
async fn refusing(close: Option<&str>) -> Emulator {
    let close = close.map_or(String::new(), |c| format!("close = \"{c}\"\n"));
    emulator_with(scenario(&format!(
        "[[rules]]\nwhen = {{ protocol = \"legacy\", nth = 1 }}\n\
         then = {{ action = \"error\", status = \"invalid_token\" }}\n{close}"
    )))
    .await
}

#[tokio::test]
async fn a_go_client_sees_the_error_response_by_default() {
    let emu = refusing(None).await;
    let (read, ended) = run(&emu, emu.legacy_addr(), &["-n", "1"]).await;
    assert_eq!(read, error_response(8, 1), "ended with {ended}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_go_client_misses_the_error_response_sent_in_one_burst_with_close_notify() {
    let emu = refusing(Some("burst")).await;
    let (read, ended) = run(&emu, emu.legacy_addr(), &["-n", "1"]).await;
    // The 6 bytes came with io.EOF from one Read, and the loop dropped them.
    assert_eq!(read, b"", "the burst must hide the error-response");
    assert_eq!(ended, "EOF");
    // apnsim did send it: the journal says so.
    let rejected = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::Rejected),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        rejected[0].detail.as_ref().unwrap()["error_response_sent"],
        true
    );
    emu.shutdown().await;
}

/// Puts three feedback tuples in the production list; returns their bytes as the service sends them.
fn three_tuples(emu: &Emulator) -> Vec<u8> {
    let mut want = Vec::new();
    for i in 0..3u8 {
        let token = vec![0xa0 + i; 32];
        let timestamp = 1_600_000_000 + u32::from(i);
        emu.registry().add_feedback(
            Some(Environment::Production),
            emu.topic(),
            FeedbackEntry {
                timestamp,
                token: DeviceToken::from_bytes(token.clone()),
            },
        );
        want.extend(timestamp.to_be_bytes());
        want.extend(32u16.to_be_bytes());
        want.extend(token);
    }
    want
}

#[tokio::test]
async fn a_go_client_sees_every_feedback_tuple_by_default() {
    let emu = Emulator::builder().start().await.unwrap();
    let want = three_tuples(&emu);
    let (read, ended) = run(&emu, emu.feedback_addr(), &["-mode", "feedback"]).await;
    assert_eq!(hex::encode(read), hex::encode(want), "ended with {ended}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_go_client_misses_the_last_feedback_tuple_when_the_stream_ends_in_one_burst() {
    let emu = emulator_with(scenario("[settings]\nfeedback_close = \"burst\"\n")).await;
    let want = three_tuples(&emu);
    let (read, ended) = run(&emu, emu.feedback_addr(), &["-mode", "feedback"]).await;
    // The tuples came with io.EOF from one Read, and the loop dropped them.
    assert_eq!(ended, "EOF");
    assert!(
        read.len() < want.len() && want.starts_with(&read),
        "the burst must hide the last tuple: read {} of {} bytes",
        read.len(),
        want.len()
    );
    // apnsim did serve every tuple: the journal says so.
    let served = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::FeedbackServed),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        served[0].detail.as_ref().unwrap()["tuples"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    emu.shutdown().await;
}
