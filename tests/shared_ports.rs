//! One port number, two environments: every listener takes `ADDR:PORT`, so production and sandbox
//! gateways can share 2195 on two loopback addresses, as old daemons with one port constant expect.

mod common;

use apnsim::journal::{EventKind, Filter};
use apnsim::model::Environment;
use apnsim::{Emulator, ProviderKind};
use common::frames::{framed, tok};
use common::{connect, send, ClientOpts};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const SANDBOX_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A port free on both loopback addresses right now.
fn free_port() -> u16 {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = a.local_addr().unwrap().port();
    std::net::TcpListener::bind((SANDBOX_IP, port)).expect("127.0.0.2 is loopback on this machine");
    port
}

#[tokio::test]
async fn production_and_sandbox_gateways_share_one_port_on_two_addresses() {
    let port = free_port();
    let emu = Emulator::builder()
        .legacy_port(Some(port))
        .sandbox_legacy_port(Some(port))
        .listener_ip("sandbox_legacy", SANDBOX_IP)
        .start()
        .await
        .unwrap();
    let production = SocketAddr::from(([127, 0, 0, 1], port));
    let sandbox = SocketAddr::new(SANDBOX_IP, port);
    assert_eq!(emu.legacy_addr(), production);
    assert_eq!(emu.addr("sandbox_legacy"), Some(sandbox));
    let ca = emu.ca_pem();
    let id = emu.identity(ProviderKind::Sandbox);
    let mut tls = connect(sandbox, &ClientOpts::new(&ca, Some(id)))
        .await
        .unwrap();
    send(&mut tls, &framed(1, &tok(1))).await;
    let accepted = emu
        .journal()
        .wait_for(
            &Filter::kind(EventKind::Accepted),
            1,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(accepted[0].environment, Environment::Sandbox);
    drop(tls);
    emu.shutdown().await;
}

#[tokio::test]
async fn serve_takes_addr_port_and_reports_full_addresses() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("apnsim-shared-ports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ready = dir.join("ready.json");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .arg("serve")
        .args(["--certs", &dir.join("certs").display().to_string()])
        .args(["--ready-file", &ready.display().to_string()])
        .args(["--legacy-port", &format!("127.0.0.1:{port}")])
        .args(["--sandbox-legacy-port", &format!("127.0.0.2:{port}")])
        .args(["--feedback-port", "off", "--sandbox-feedback-port", "off"])
        .args(["--http2-port", "0", "--sandbox-http2-port", "0"])
        .args([
            "--manage-broadcast-port",
            "off",
            "--sandbox-manage-broadcast-port",
            "off",
        ])
        .args(["--control-port", "off"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    assert_eq!(json["legacy"], format!("127.0.0.1:{port}"));
    assert_eq!(json["sandbox_legacy"], format!("127.0.0.2:{port}"));
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    let lines = String::from_utf8_lossy(&out.stdout);
    assert!(
        lines.contains(&format!(
            "legacy gateway (sandbox) ready on 127.0.0.2:{port}"
        )),
        "{lines}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
