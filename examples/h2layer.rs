//! Serves apnsim's bare HTTP/2 layer (frames, HPACK, connection state machine, tokio driver) over
//! TLS with the default handler (`200` + `apns-id`), without APNs validation, journal or engine,
//! so a benchmark can tell the cost of the layer from the cost of the APNs semantics on top.
//!
//! `cargo run --release --example h2layer -- CERTS_DIR [READY_FILE]`: listens on an ephemeral
//! loopback port, prints it and writes `{"http2":"127.0.0.1:PORT"}` to READY_FILE.

use apnsim::certs::Identity;
use apnsim::http2::conn::ConnConfig;
use apnsim::http2::driver::{command_channel, serve_connection, DefaultHandler};
use apnsim::tls::{server_config, TlsOptions};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "certs".into()));
    let ready = args.next().map(PathBuf::from);
    let ca = std::fs::read_to_string(dir.join("ca.pem"))?;
    let server = Identity::load(&dir, "server")?;
    let acceptor = TlsAcceptor::from(server_config(&ca, &server, &TlsOptions::http2())?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("h2layer ready on {addr}");
    if let Some(path) = ready {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{{\"http2\":\"{addr}\"}}"))?;
        std::fs::rename(&tmp, &path)?;
    }
    let handler = Arc::new(DefaultHandler);
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let (handle, rx) = command_channel(64);
            serve_connection(tls, ConnConfig::default(), handler, handle.clone(), rx).await;
        });
    }
}
