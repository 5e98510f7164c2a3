//! TLS connections as a careful provider opens them: the server verified against the given CA for
//! Apple's host name (sent as SNI), the client certificate when there is one, ALPN `h2` for HTTP/2.

use crate::certs::Identity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long TCP connect plus TLS handshake may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything needed to open another connection to the same place.
#[derive(Clone)]
pub struct Connector {
    config: Arc<rustls::ClientConfig>,
    addr: String,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl Connector {
    /// A connector for `host:port` that verifies `server_name` against `ca_pem`.
    pub fn new(
        ca_pem: &str,
        identity: Option<&Identity>,
        host: &str,
        port: u16,
        server_name: &str,
        alpn_h2: bool,
    ) -> io::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let mut any = false;
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| invalid(format!("CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("CA certificate: {e}")))?;
            any = true;
        }
        if !any {
            return Err(invalid("the CA file holds no certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| invalid(format!("TLS versions: {e}")))?
            .with_root_certificates(roots);
        let mut config = match identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.cert_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
                )
                .map_err(|e| invalid(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        if alpn_h2 {
            // PROTOCOL.md 2.1: HTTP/2 over TLS, ALPN h2.
            config.alpn_protocols = vec![b"h2".to_vec()];
        }
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| invalid(format!("host name {server_name:?}: {e}")))?;
        // An IPv6 literal needs brackets in host:port form.
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Connector {
            config: Arc::new(config),
            addr,
            server_name,
        })
    }

    /// Connects and completes the TLS handshake.
    pub async fn connect(&self) -> io::Result<TlsStream<TcpStream>> {
        let attempt = async {
            let tcp = TcpStream::connect(&self.addr).await?;
            let _ = tcp.set_nodelay(true);
            TlsConnector::from(self.config.clone())
                .connect(self.server_name.clone(), tcp)
                .await
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
    }
}
