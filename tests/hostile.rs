//! What a stranger can send must not hang, abort, exhaust or blind apnsim (issue 12). Each test
//! attacks a real emulator over sockets, bounded in time, and checks that a well-behaved client
//! running beside the attack is still served.

mod common;

use apnsim::journal::{EventKind, Filter};
use apnsim::{Emulator, ProviderKind};
use common::frames::{cmd2, item};
use common::{connect, send, ClientOpts};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A command-2 frame with a minimal payload (PROTOCOL.md 1.4).
fn framed(id: u32, token_byte: u8) -> Vec<u8> {
    cmd2(&[
        item(1, &[token_byte; 32]),
        item(2, br#"{"aps":{}}"#),
        item(3, &id.to_be_bytes()),
    ])
}

/// The well-behaved provider: connects to the legacy gateway, sends one notification and sees it
/// accepted in the journal, all within a few seconds.
async fn legacy_client_is_served(emu: &Emulator, id: u32) {
    let ca = emu.ca_pem();
    let ident = emu.identity(ProviderKind::Production);
    let token = [(id % 250) as u8 + 1; 32];
    let work = async {
        let mut tls = connect(emu.legacy_addr(), &ClientOpts::new(&ca, Some(ident)))
            .await
            .expect("the well-behaved client's handshake completes");
        send(&mut tls, &framed(id, token[0])).await;
        let filter = Filter {
            token: Some(hex::encode(token)),
            ..Filter::kind(EventKind::Accepted)
        };
        emu.journal()
            .wait_for(&filter, 1, Duration::from_secs(5))
            .await
            .expect("the well-behaved client's notification is accepted");
    };
    tokio::time::timeout(Duration::from_secs(15), work)
        .await
        .expect("the well-behaved client was served in time");
}

/// A test's scratch directory.
fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("apnsim-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Defect 1: a `p8` path naming a FIFO made the control API block both worker threads. Over the
/// control API keys come inline only, so the server never opens the file.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_path_over_the_control_api_is_refused_without_touching_the_file() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = scratch("fifo");
    let fifo = dir.join("AuthKey.p8");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let url = format!("http://{}/scenario", emu.control_addr().unwrap());
    let body = format!(
        "[[keys]]\nkey_id = \"ABC123DEFG\"\nteam_id = \"TEAM123456\"\np8 = {:?}\n",
        fifo.to_str().unwrap()
    );
    let client = reqwest::Client::new();
    let puts = (0..2).map(|_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let r =
                tokio::time::timeout(Duration::from_secs(5), client.put(&url).body(body).send())
                    .await
                    .expect("PUT /scenario answered in time")
                    .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    for (status, text) in futures_util::future::join_all(puts).await {
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("send the key inline as `pem`"), "{text}");
        // No file-read oracle: the answer is the same whatever the path is.
        assert!(
            !text.contains("regular") && !text.contains("No such"),
            "{text}"
        );
    }
    let live = reqwest::get(format!("http://{}/livez", emu.control_addr().unwrap()))
        .await
        .unwrap();
    assert!(live.status().is_success());
    legacy_client_is_served(&emu, 1).await;
    let _ = std::fs::remove_dir_all(&dir);
    emu.shutdown().await;
}

/// `--bind` beyond loopback with no token: the control API would let anyone clear the journal.
#[test]
fn serve_refuses_a_non_loopback_control_api_without_a_token() {
    let dir = scratch("bind");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .env_clear()
        .args(["serve", "--bind", "0.0.0.0", "--certs"])
        .arg(dir.join("certs"))
        .args(["--legacy-port", "0", "--feedback-port", "0"])
        .args(["--sandbox-legacy-port", "0", "--sandbox-feedback-port", "0"])
        .args(["--http2-port", "0", "--sandbox-http2-port", "0"])
        .args(["--control-port", "0"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--control-token"), "{stderr}");
}

/// Defect 5: idle control-API connections exhausted file descriptors. Now they are capped
/// (the excess closed at once) and closed when idle, and the gateway keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_control_connections_are_capped_and_time_out() {
    let emu = Emulator::builder()
        .control_idle_timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let addr = emu.control_addr().unwrap();
    let n = apnsim::control::MAX_CONNECTIONS + 100;
    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // The ones over the cap are closed at once; the rest after the idle timeout; none answer.
    let started = std::time::Instant::now();
    let reads = idle.iter_mut().map(|s| async move {
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .map(|r| r.unwrap_or(0))
    });
    let results = futures_util::future::join_all(reads).await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(0))),
        "every idle connection is closed without an answer"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // A slowloris header (one byte a while) is closed too.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /livez HT")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let got = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("a stalled request head is closed in time");
    assert!(matches!(got, Ok(_) | Err(_)));
    // The API and the gateway still serve.
    let live = reqwest::get(format!("http://{addr}/livez")).await.unwrap();
    assert!(live.status().is_success());
    legacy_client_is_served(&emu, 2).await;
    emu.shutdown().await;
}

/// Defect 2: `legacy_max_frame = 4294967295` passed the check, then one client announcing a
/// 0xFFFFFFF0-byte frame made the server allocate until it aborted. Every setting has a range,
/// enforced at load with the file's line and column.
#[test]
fn out_of_range_settings_are_refused_at_load_with_line_and_column() {
    let dir = scratch("ranges");
    let file = dir.join("huge.toml");
    let text = "[settings]\nstrict_tokens = false\nlegacy_max_frame = 4294967295\n";
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .arg("check-scenario")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:3:20: ", file.display());
    assert!(stderr.starts_with(&prefix), "{stderr}");
    assert!(stderr.contains("legacy_max_frame"), "{stderr}");
}

/// The builder refuses the same settings, so no embedding can start with them either.
#[tokio::test]
async fn the_builder_refuses_out_of_range_settings() {
    let started = Emulator::builder()
        .settings(apnsim::settings::Settings {
            legacy_max_frame: 0xFFFF_FFFF,
            ..Default::default()
        })
        .start()
        .await;
    assert!(matches!(started, Err(apnsim::StartError::Settings(_))));
}
