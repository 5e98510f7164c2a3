//! Real TLS clients for the integration tests: rustls on the client side, as a provider would use.
#![allow(dead_code)]

pub mod frames;
pub mod h2client;
pub mod scenarios;

use apnsim::certs::Identity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How a test client connects.
pub struct ClientOpts<'a> {
    pub ca_pem: &'a str,
    pub identity: Option<&'a Identity>,
    pub sni: &'a str,
    pub tls13_only: bool,
    pub alpn: Vec<Vec<u8>>,
}

impl<'a> ClientOpts<'a> {
    pub fn new(ca_pem: &'a str, identity: Option<&'a Identity>) -> Self {
        ClientOpts {
            ca_pem,
            identity,
            sni: "localhost",
            tls13_only: false,
            alpn: Vec::new(),
        }
    }
}

/// The client TLS configuration a provider would build from the CA and its identity.
pub fn client_config(opts: &ClientOpts) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let der = pem_der(opts.ca_pem, "CERTIFICATE");
    roots.add(CertificateDer::from(der)).expect("ca");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if opts.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let mut cfg = match opts.identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(id.cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = opts.alpn.clone();
    Arc::new(cfg)
}

/// Connects and completes the handshake (a refused certificate shows up here or on first read).
pub async fn connect(
    addr: SocketAddr,
    opts: &ClientOpts<'_>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = TlsConnector::from(client_config(opts));
    let name = ServerName::try_from(opts.sni.to_string()).expect("sni");
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake timeout"))?
}

/// Reads until the server closes; Err if it closed without close_notify or did not close in time.
pub async fn read_to_close(tls: &mut TlsStream<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "server did not close"))??;
    Ok(out)
}

/// Writes bytes and flushes.
pub async fn send(tls: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    tls.write_all(bytes).await.expect("write");
    tls.flush().await.expect("flush");
}

/// The first certificate of a PEM text, as DER.
pub fn pem_der(pem: &str, _label: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("valid pem")
        .to_vec()
}
