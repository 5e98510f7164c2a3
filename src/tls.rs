//! TLS for every apnsim listener: server configs built once per listener, client-certificate checks
//! that happen inside the handshake like Apple's, and the identity a provider certificate carries
//! (PROTOCOL.md 1.9, 2.9).
//!
//! Legacy and feedback listeners must call `shutdown()` on the returned stream before dropping it:
//! that sends close_notify, without which OpenSSL-based providers report a truncated stream instead of
//! the clean EOF that follows an error-response packet or the feedback list (PROTOCOL.md 1.7, 1.8).

use crate::certs::der::{oid_string, parse_topics};
use crate::certs::{Identity, OID_APNS_PRODUCTION, OID_APNS_SANDBOX, OID_APNS_TOPICS, OID_UID};
use crate::model::Environment;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, PeerIncompatible, RootCertStore,
    ServerConfig, SignatureScheme,
};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

/// Whether a listener demands a client certificate: legacy/feedback always, HTTP/2 only for cert auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate, no connection (legacy gateway and feedback, PROTOCOL.md 1.1, 1.8).
    Required,
    /// A certificate is verified if sent; token-auth clients send none (PROTOCOL.md 2.8, 2.9).
    Optional,
}

/// Per-listener TLS policy, chosen once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Offer TLS 1.3; off for legacy and feedback, whose old providers break on 1.3 session tickets.
    pub allow_tls13: bool,
    /// ALPN protocols to offer (`[b"h2"]` for HTTP/2); clients that send no ALPN are still accepted.
    pub alpn: Vec<Vec<u8>>,
    /// Whether a client certificate is mandatory.
    pub client_auth: ClientAuth,
    /// Refuse, inside the handshake, a certificate whose .3.1/.3.2 extensions miss the connection's
    /// environment. Off for HTTP/2, where Apple answers 403 BadCertificateEnvironment instead (PROTOCOL.md 2.9).
    pub enforce_environment: bool,
}

impl TlsOptions {
    /// Binary gateway and feedback: TLS 1.2 only, certificate required, environment enforced (PROTOCOL.md 1.1).
    pub fn legacy() -> Self {
        TlsOptions {
            allow_tls13: false,
            alpn: Vec::new(),
            client_auth: ClientAuth::Required,
            enforce_environment: true,
        }
    }

    /// HTTP/2 API: TLS 1.2 and 1.3, ALPN h2, certificate optional, environment left to the HTTP layer (PROTOCOL.md 2.1, 2.9).
    pub fn http2() -> Self {
        TlsOptions {
            allow_tls13: true,
            alpn: vec![b"h2".to_vec()],
            client_auth: ClientAuth::Optional,
            enforce_environment: false,
        }
    }
}

/// Why a listener could not be set up or a handshake failed, typed so callers can journal the cause.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA PEM held no certificate or one rustls cannot use as a trust anchor.
    #[error("CA certificate: {0}")]
    Ca(String),
    /// rustls refused the server certificate, key or protocol settings.
    #[error("server config: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
    /// A certificate that could not be parsed as X.509.
    #[error("certificate parse: {0}")]
    Certificate(String),
    /// The peer never sent a usable ClientHello (not TLS, or closed early).
    #[error("before ClientHello: {0}")]
    ClientHello(std::io::Error),
    /// The handshake failed after the environment was chosen; see [`TlsError::failure`].
    #[error("handshake ({environment}, sni {sni:?}): {source}")]
    Handshake {
        /// The environment the connection was for.
        environment: Environment,
        /// SNI the client sent.
        sni: Option<String>,
        /// The error from rustls, wrapped by tokio-rustls.
        source: std::io::Error,
    },
    /// The other TLS backend (OpenSSL, for TLS 1.0/1.1 on legacy ports) could not be set up.
    #[error("TLS backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The other TLS backend refused a handshake, classified where it happened.
    #[error("handshake ({environment}, sni {sni:?}): {source}")]
    Refused {
        /// The environment the connection was for (the listener's until SNI named another).
        environment: Environment,
        /// SNI the client sent.
        sni: Option<String>,
        /// The cause, decided by the same checks as on the rustls path.
        failure: HandshakeFailure,
        /// The alert the client ended the handshake with, as the TLS specifications spell it.
        alert: Option<String>,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The cause of a failed handshake, coarse enough for the journal and for test assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The certificate's Apple environment extensions do not cover the connection (PROTOCOL.md 1.9).
    WrongEnvironment,
    /// The certificate does not chain to apnsim's CA.
    UntrustedCertificate,
    /// The certificate is expired or not yet valid.
    ExpiredCertificate,
    /// A certificate was required and none was sent.
    NoCertificate,
    /// No common protocol version (e.g. a TLS 1.3-only client on a TLS 1.2 listener).
    ProtocolVersion,
    /// The client offered ALPN protocols, none of them ours.
    NoApplicationProtocol,
    /// Anything else (I/O, malformed messages, the peer's own alert).
    Other,
}

impl TlsError {
    /// The alert the client ended the handshake with, named as the TLS specifications spell it.
    pub fn client_alert(&self) -> Option<String> {
        if let TlsError::Refused { alert, .. } = self {
            return alert.clone();
        }
        let (TlsError::Handshake { source, .. } | TlsError::ClientHello(source)) = self else {
            return None;
        };
        match source.get_ref()?.downcast_ref::<rustls::Error>()? {
            rustls::Error::AlertReceived(alert) => Some(alert_name(&format!("{alert:?}"))),
            _ => None,
        }
    }

    /// The environment the failed connection was for, when the handshake got that far.
    pub fn environment(&self) -> Option<Environment> {
        match self {
            TlsError::Handshake { environment, .. } | TlsError::Refused { environment, .. } => {
                Some(*environment)
            }
            _ => None,
        }
    }

    /// Classifies a handshake error; `None` for errors that are not handshake failures.
    pub fn failure(&self) -> Option<HandshakeFailure> {
        let source = match self {
            TlsError::Refused { failure, .. } => return Some(*failure),
            TlsError::Handshake { source, .. } | TlsError::ClientHello(source) => source,
            _ => return None,
        };
        let Some(err) = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return Some(HandshakeFailure::Other);
        };
        Some(match err {
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure) => {
                HandshakeFailure::WrongEnvironment
            }
            rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            ) => HandshakeFailure::ExpiredCertificate,
            rustls::Error::InvalidCertificate(_) => HandshakeFailure::UntrustedCertificate,
            rustls::Error::NoCertificatesPresented => HandshakeFailure::NoCertificate,
            rustls::Error::PeerIncompatible(
                PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::SupportedVersionsExtensionRequired,
            ) => HandshakeFailure::ProtocolVersion,
            rustls::Error::NoApplicationProtocol => HandshakeFailure::NoApplicationProtocol,
            _ => HandshakeFailure::Other,
        })
    }
}

/// What a provider certificate entitles its holder to, read from the fields Apple uses (PROTOCOL.md 1.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Topics the certificate may push to: UID first, then the .3.6 list without duplicates.
    pub topics: Vec<String>,
    /// The (topic, kind) pairs of the .3.6 extension, kind being app / voip / complication.
    pub topic_kinds: Vec<(String, String)>,
    /// Environments from .3.1 (sandbox) and .3.2 (production); both for a universal certificate.
    pub environments: Vec<Environment>,
    /// The subject DN as text, for the journal.
    pub subject: String,
    /// The subject's UID attribute: the bundle id.
    pub uid: Option<String>,
    /// Whether the certificate had a .3.6 topic list (single-topic certificates have none).
    pub has_topic_list: bool,
}

impl ClientIdentity {
    /// Whether this certificate may be used on a connection to `env` (PROTOCOL.md 1.9, 2.9).
    pub fn covers(&self, env: Environment) -> bool {
        self.environments.contains(&env)
    }

    /// Whether a push to `topic` is allowed: the .3.6 list when present, else the UID plus its
    /// `.voip` and `.complication` forms as pushy's mock allows (PROTOCOL.md 2.9).
    pub fn allows_topic(&self, topic: &str) -> bool {
        if self.topics.iter().any(|t| t == topic) {
            return true;
        }
        if self.has_topic_list {
            return false;
        }
        match &self.uid {
            Some(uid) => topic
                .strip_prefix(uid.as_str())
                .is_some_and(|rest| rest == ".voip" || rest == ".complication"),
            None => false,
        }
    }
}

/// Reads topics, environments and subject out of a DER client certificate (PROTOCOL.md 1.9).
pub fn client_identity(cert_der: &[u8]) -> Result<ClientIdentity, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let uid_oid = oid_string(OID_UID);
    let mut uid = None;
    let mut common_name = None;
    for attr in cert.subject().iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        if oid == uid_oid && uid.is_none() {
            uid = attr.as_str().ok().map(str::to_owned);
        } else if oid == "2.5.4.3" && common_name.is_none() {
            common_name = attr.as_str().ok().map(str::to_owned);
        }
    }

    let (sandbox, production, topics_oid) = (
        oid_string(OID_APNS_SANDBOX),
        oid_string(OID_APNS_PRODUCTION),
        oid_string(OID_APNS_TOPICS),
    );
    let mut environments = Vec::new();
    let mut topic_kinds = Vec::new();
    let mut has_topic_list = false;
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == sandbox {
            environments.push(Environment::Sandbox);
        } else if oid == production {
            environments.push(Environment::Production);
        } else if oid == topics_oid {
            has_topic_list = true;
            topic_kinds = parse_topics(ext.value).ok_or_else(|| {
                TlsError::Certificate("malformed 1.2.840.113635.100.6.3.6 topic list".into())
            })?;
        }
    }
    if environments.is_empty() {
        // Older single-environment certificates named their environment in the CN (PROTOCOL.md 1.9).
        if let Some(cn) = &common_name {
            if cn.starts_with("Apple Development IOS Push Services") {
                environments.push(Environment::Sandbox);
            } else if cn.starts_with("Apple Production IOS Push Services") {
                environments.push(Environment::Production);
            }
        }
    }
    environments.sort();
    environments.dedup();

    let mut topics: Vec<String> = uid.iter().cloned().collect();
    for (topic, _) in &topic_kinds {
        if !topics.contains(topic) {
            topics.push(topic.clone());
        }
    }
    Ok(ClientIdentity {
        topics,
        topic_kinds,
        environments,
        subject: cert.subject().to_string(),
        uid,
        has_topic_list,
    })
}

/// The environment of a connection: the SNI host name's when it is an Apple name, else the listener's
/// (PROTOCOL.md 1.1, 2.1).
pub fn handshake_environment(sni: Option<&str>, listener_default: Environment) -> Environment {
    sni.and_then(Environment::from_host)
        .unwrap_or(listener_default)
}

/// The prebuilt server configs of one listener, one per environment, because building a config
/// (parsing the CA, the key) is too costly to do per connection.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    sandbox: Arc<ServerConfig>,
    production: Arc<ServerConfig>,
    options: TlsOptions,
}

impl ListenerTls {
    /// Builds the configs for a listener; with environment enforcement off both are one config.
    pub fn new(ca_pem: &str, server: &Identity, options: TlsOptions) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (sandbox, production) = if options.enforce_environment {
            (
                build_config(
                    &provider,
                    ca_pem,
                    server,
                    &options,
                    Some(Environment::Sandbox),
                )?,
                build_config(
                    &provider,
                    ca_pem,
                    server,
                    &options,
                    Some(Environment::Production),
                )?,
            )
        } else {
            let shared = build_config(&provider, ca_pem, server, &options, None)?;
            (shared.clone(), shared)
        };
        Ok(ListenerTls {
            sandbox,
            production,
            options,
        })
    }

    /// The config a connection to `env` is completed with.
    pub fn config_for(&self, env: Environment) -> Arc<ServerConfig> {
        match env {
            Environment::Sandbox => self.sandbox.clone(),
            Environment::Production => self.production.clone(),
        }
    }

    /// The policy this listener was built with.
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }
}

/// A server config that verifies client certificates against the CA but not their environment,
/// for callers that drive rustls themselves.
pub fn server_config(
    ca_pem: &str,
    server: &Identity,
    opts: &TlsOptions,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    build_config(&provider, ca_pem, server, opts, None)
}

fn build_config(
    provider: &Arc<CryptoProvider>,
    ca_pem: &str,
    server: &Identity,
    opts: &TlsOptions,
    enforce: Option<Environment>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let mut reader = std::io::BufReader::new(ca_pem.as_bytes());
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| TlsError::Ca(e.to_string()))?;
        roots.add(cert).map_err(|e| TlsError::Ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::Ca("no CERTIFICATE in CA PEM".into()));
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = match opts.client_auth {
        ClientAuth::Required => builder,
        ClientAuth::Optional => builder.allow_unauthenticated(),
    };
    let webpki = builder
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier: Arc<dyn ClientCertVerifier> = match enforce {
        Some(environment) => Arc::new(EnvironmentVerifier {
            inner: webpki,
            environment,
        }),
        None => webpki,
    };
    // PROTOCOL.md 1.1: legacy providers predate TLS 1.3; 2.1: HTTP/2 is TLS 1.2 or later.
    let versions: &[&'static rustls::SupportedProtocolVersion] = if opts.allow_tls13 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS12]
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server.key_der.clone()));
    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![CertificateDer::from(server.cert_der.clone())], key)?;
    // A client sending no ALPN at all is still served (aioapns speaks h2 without ALPN).
    config.alpn_protocols = opts.alpn.clone();
    Ok(Arc::new(config))
}

/// WebPKI verification plus Apple's environment check, so a sandbox certificate is refused with an
/// access_denied alert on a production connection (PROTOCOL.md 1.9).
#[derive(Debug)]
struct EnvironmentVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    environment: Environment,
}

impl ClientCertVerifier for EnvironmentVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let identity = client_identity(end_entity.as_ref())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if identity.covers(self.environment) {
            Ok(verified)
        } else {
            // Maps to the access_denied alert.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What the handshake settled, handed to the protocol layer with the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The environment the connection serves (SNI, else the listener's).
    pub environment: Environment,
    /// SNI as the client sent it.
    pub sni: Option<String>,
    /// The negotiated ALPN protocol; `None` when the client offered none.
    pub alpn: Option<Vec<u8>>,
    /// The verified client certificate's identity, if one was presented.
    pub client: Option<ClientIdentity>,
    /// The negotiated TLS version, e.g. "TLSv1_2", for the journal.
    pub tls_version: Option<String>,
}

impl Handshake {
    /// True when a certificate was presented that does not cover this connection's environment:
    /// the HTTP/2 layer answers 403 BadCertificateEnvironment then GOAWAY (PROTOCOL.md 2.9).
    pub fn certificate_environment_mismatch(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| !c.covers(self.environment))
    }
}

/// Reads the ClientHello, picks the environment from SNI, and completes the handshake with that
/// environment's config, so certificate refusals happen inside the handshake as at Apple.
pub async fn accept<IO>(
    stream: IO,
    tls: &ListenerTls,
    listener_env: Environment,
) -> Result<(TlsStream<IO>, Handshake), TlsError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
        .await
        .map_err(TlsError::ClientHello)?;
    let sni = start.client_hello().server_name().map(str::to_owned);
    let environment = handshake_environment(sni.as_deref(), listener_env);
    let stream = start
        .into_stream(tls.config_for(environment))
        .await
        .map_err(|source| TlsError::Handshake {
            environment,
            sni: sni.clone(),
            source,
        })?;
    let (_, conn) = stream.get_ref();
    let client = match conn.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => Some(client_identity(cert.as_ref())?),
        None => None,
    };
    let handshake = Handshake {
        environment,
        sni,
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        client,
        tls_version: conn.protocol_version().map(|v| format!("{v:?}")),
    };
    Ok((stream, handshake))
}

/// A TLS alert's name as the TLS specifications spell it (`UnknownCA` → `unknown_ca`).
pub fn alert_name(debug_name: &str) -> String {
    let mut out = String::with_capacity(debug_name.len() + 4);
    let mut prev_lower = false;
    for c in debug_name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Authority, ProviderSpec};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, SupportedProtocolVersion};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const TOPIC: &str = "com.example.app";
    const BOTH: &[Environment] = &[Environment::Sandbox, Environment::Production];
    const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    const ANY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

    struct Client<'a> {
        server_name: &'a str,
        identity: Option<&'a Identity>,
        versions: &'a [&'static SupportedProtocolVersion],
        alpn: Vec<Vec<u8>>,
    }

    impl<'a> Client<'a> {
        fn new(identity: Option<&'a Identity>) -> Self {
            Client {
                server_name: "localhost",
                identity,
                versions: ANY,
                alpn: Vec::new(),
            }
        }
    }

    /// One connection through `accept`: the server's outcome and what the client read.
    async fn run(
        tls: ListenerTls,
        listener_env: Environment,
        ca_pem: &str,
        client: Client<'_>,
    ) -> (Result<Handshake, TlsError>, Result<Vec<u8>, String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (mut stream, hs) = accept(tcp, &tls, listener_env).await?;
            stream.write_all(b"ok").await.unwrap();
            stream.shutdown().await.unwrap();
            Ok(hs)
        });

        let mut roots = RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(client.versions)
                .unwrap()
                .with_root_certificates(roots);
        let mut config = match client.identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.cert_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = client.alpn;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from(client.server_name.to_string()).unwrap();
        let client_result = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let mut s = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
            Ok(buf)
        }
        .await;
        (server.await.unwrap(), client_result)
    }

    fn setup(opts: TlsOptions) -> (Authority, ListenerTls) {
        let ca = Authority::new_in_memory().unwrap();
        let server = ca.issue_server().unwrap();
        let tls = ListenerTls::new(&ca.ca_pem(), &server, opts).unwrap();
        (ca, tls)
    }

    fn failure(r: &Result<Handshake, TlsError>) -> Option<HandshakeFailure> {
        r.as_ref().err().and_then(TlsError::failure)
    }

    #[tokio::test]
    async fn provider_identity_is_accepted_and_parsed() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let id = ca
            .issue_provider(&ProviderSpec::new(TOPIC, &[Environment::Production]))
            .unwrap();
        let (server, client) = run(
            tls,
            Environment::Production,
            &ca.ca_pem(),
            Client::new(Some(&id)),
        )
        .await;
        let hs = server.unwrap();
        assert_eq!(client.unwrap(), b"ok");
        assert_eq!(hs.environment, Environment::Production);
        assert_eq!(hs.sni.as_deref(), Some("localhost"));
        assert_eq!(hs.tls_version.as_deref(), Some("TLSv1_2"));
        assert_eq!(hs.alpn, None);
        let c = hs.client.unwrap();
        assert_eq!(c.uid.as_deref(), Some(TOPIC));
        assert_eq!(c.environments, vec![Environment::Production]);
        assert!(!hs_mismatch(&c, Environment::Production));
    }

    fn hs_mismatch(c: &ClientIdentity, env: Environment) -> bool {
        !c.covers(env)
    }

    #[tokio::test]
    async fn certificate_from_another_ca_is_refused() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let other = Authority::new_in_memory().unwrap();
        let id = other
            .issue_provider(&ProviderSpec::new(TOPIC, BOTH))
            .unwrap();
        let (server, client) = run(
            tls,
            Environment::Production,
            &ca.ca_pem(),
            Client::new(Some(&id)),
        )
        .await;
        assert_eq!(
            failure(&server),
            Some(HandshakeFailure::UntrustedCertificate)
        );
        assert!(client.is_err());
    }

    #[tokio::test]
    async fn expired_certificate_is_refused() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let id = ca
            .issue_provider(&ProviderSpec::expired(TOPIC, BOTH))
            .unwrap();
        let (server, client) = run(
            tls,
            Environment::Production,
            &ca.ca_pem(),
            Client::new(Some(&id)),
        )
        .await;
        assert_eq!(failure(&server), Some(HandshakeFailure::ExpiredCertificate));
        assert!(client.is_err());
    }

    #[tokio::test]
    async fn missing_certificate_is_refused_when_required() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let (server, client) = run(
            tls,
            Environment::Production,
            &ca.ca_pem(),
            Client::new(None),
        )
        .await;
        assert_eq!(failure(&server), Some(HandshakeFailure::NoCertificate));
        assert!(client.is_err());
    }

    #[tokio::test]
    async fn sandbox_identity_needs_a_sandbox_connection() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let id = ca
            .issue_provider(&ProviderSpec::new(TOPIC, &[Environment::Sandbox]))
            .unwrap();
        let (server, client) = run(
            tls.clone(),
            Environment::Production,
            &ca.ca_pem(),
            Client::new(Some(&id)),
        )
        .await;
        assert_eq!(failure(&server), Some(HandshakeFailure::WrongEnvironment));
        assert!(client.is_err());

        let mut c = Client::new(Some(&id));
        c.server_name = "gateway.sandbox.push.apple.com";
        let (server, client) = run(tls.clone(), Environment::Production, &ca.ca_pem(), c).await;
        let hs = server.unwrap();
        assert_eq!(client.unwrap(), b"ok");
        assert_eq!(hs.environment, Environment::Sandbox);

        // Without SNI (an IP address) the listener's own environment applies.
        let mut c = Client::new(Some(&id));
        c.server_name = "127.0.0.1";
        let (server, _) = run(tls.clone(), Environment::Sandbox, &ca.ca_pem(), c).await;
        assert_eq!(server.unwrap().sni, None);
        let mut c = Client::new(Some(&id));
        c.server_name = "127.0.0.1";
        let (server, _) = run(tls, Environment::Production, &ca.ca_pem(), c).await;
        assert_eq!(failure(&server), Some(HandshakeFailure::WrongEnvironment));
    }

    #[tokio::test]
    async fn universal_identity_is_accepted_on_both_environments() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let id = ca.issue_provider(&ProviderSpec::new(TOPIC, BOTH)).unwrap();
        for host in ["gateway.push.apple.com", "feedback.sandbox.push.apple.com"] {
            let mut c = Client::new(Some(&id));
            c.server_name = host;
            let (server, client) = run(tls.clone(), Environment::Production, &ca.ca_pem(), c).await;
            let hs = server.unwrap();
            assert_eq!(client.unwrap(), b"ok");
            assert_eq!(hs.environment, Environment::from_host(host).unwrap());
        }
    }

    #[tokio::test]
    async fn tls13_only_client_is_refused_by_legacy_listener() {
        let (ca, tls) = setup(TlsOptions::legacy());
        let id = ca.issue_provider(&ProviderSpec::new(TOPIC, BOTH)).unwrap();
        let mut c = Client::new(Some(&id));
        c.versions = TLS13;
        let (server, client) = run(tls.clone(), Environment::Production, &ca.ca_pem(), c).await;
        assert_eq!(failure(&server), Some(HandshakeFailure::ProtocolVersion));
        assert!(client.is_err());
        let mut c = Client::new(Some(&id));
        c.versions = TLS12;
        let (server, _) = run(tls, Environment::Production, &ca.ca_pem(), c).await;
        assert!(server.is_ok());
    }

    #[tokio::test]
    async fn http2_listener_negotiates_h2_and_tolerates_no_alpn() {
        let (ca, tls) = setup(TlsOptions::http2());
        let id = ca.issue_provider(&ProviderSpec::new(TOPIC, BOTH)).unwrap();
        let mut c = Client::new(Some(&id));
        c.alpn = vec![b"h2".to_vec()];
        let (server, client) = run(tls.clone(), Environment::Production, &ca.ca_pem(), c).await;
        let hs = server.unwrap();
        assert_eq!(client.unwrap(), b"ok");
        assert_eq!(hs.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(hs.tls_version.as_deref(), Some("TLSv1_3"));

        let (server, client) = run(
            tls.clone(),
            Environment::Production,
            &ca.ca_pem(),
            Client::new(Some(&id)),
        )
        .await;
        assert_eq!(server.unwrap().alpn, None);
        assert_eq!(client.unwrap(), b"ok");

        let mut c = Client::new(Some(&id));
        c.alpn = vec![b"http/1.1".to_vec()];
        let (server, _) = run(tls, Environment::Production, &ca.ca_pem(), c).await;
        assert_eq!(
            failure(&server),
            Some(HandshakeFailure::NoApplicationProtocol)
        );
    }

    #[tokio::test]
    async fn http2_listener_lets_token_clients_in_and_reports_wrong_environment() {
        let (ca, tls) = setup(TlsOptions::http2());
        let (server, client) = run(
            tls.clone(),
            Environment::Production,
            &ca.ca_pem(),
            Client::new(None),
        )
        .await;
        let hs = server.unwrap();
        assert_eq!(client.unwrap(), b"ok");
        assert_eq!(hs.client, None);
        assert!(!hs.certificate_environment_mismatch());

        let id = ca
            .issue_provider(&ProviderSpec::new(TOPIC, &[Environment::Sandbox]))
            .unwrap();
        let mut c = Client::new(Some(&id));
        c.server_name = "api.push.apple.com";
        let (server, client) = run(tls.clone(), Environment::Sandbox, &ca.ca_pem(), c).await;
        let hs = server.unwrap();
        assert_eq!(client.unwrap(), b"ok");
        assert_eq!(hs.environment, Environment::Production);
        assert!(hs.certificate_environment_mismatch());

        // A foreign CA is still refused in the handshake, even with optional client auth.
        let other = Authority::new_in_memory().unwrap();
        let id = other
            .issue_provider(&ProviderSpec::new(TOPIC, BOTH))
            .unwrap();
        let (server, client) = run(
            tls,
            Environment::Production,
            &ca.ca_pem(),
            Client::new(Some(&id)),
        )
        .await;
        assert_eq!(
            failure(&server),
            Some(HandshakeFailure::UntrustedCertificate)
        );
        assert!(client.is_err());
    }

    #[tokio::test]
    async fn files_on_disk_work_end_to_end() {
        let dir = std::env::temp_dir().join(format!("apnsim-tls-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::certs::generate(&dir, TOPIC).unwrap();
        let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        let server = Identity::load(&dir, "server").unwrap();
        let tls = ListenerTls::new(&ca_pem, &server, TlsOptions::legacy()).unwrap();
        let universal = Identity::load(&dir, "provider-universal").unwrap();
        let (server_r, client) = run(
            tls.clone(),
            Environment::Production,
            &ca_pem,
            Client::new(Some(&universal)),
        )
        .await;
        assert!(server_r.is_ok() && client.is_ok());
        // An identity issued later by the reloaded CA chains to the same ca.pem.
        let ca = Authority::load(&dir).unwrap();
        let later = ca
            .issue_provider(&ProviderSpec::new(
                "com.later.app",
                &[Environment::Production],
            ))
            .unwrap();
        let (server_r, client) = run(
            tls,
            Environment::Production,
            &ca_pem,
            Client::new(Some(&later)),
        )
        .await;
        assert_eq!(
            server_r.unwrap().client.unwrap().uid.as_deref(),
            Some("com.later.app")
        );
        assert!(client.is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An OpenSSL-based provider (Python's ssl) with the generated combined PEM, as legacy providers connect.
    #[tokio::test]
    async fn python_ssl_client_interoperates() {
        // A tool the test needs must fail the test when missing, never skip it.
        assert!(
            std::process::Command::new("python3")
                .arg("-V")
                .output()
                .is_ok(),
            "python3 is needed for this test"
        );
        let dir = std::env::temp_dir().join(format!("apnsim-tls-py-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::certs::generate(&dir, TOPIC).unwrap();
        let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        let server = Identity::load(&dir, "server").unwrap();
        let tls = ListenerTls::new(&ca_pem, &server, TlsOptions::legacy()).unwrap();
        for (host, ok) in [
            ("gateway.sandbox.push.apple.com", true),
            ("gateway.push.apple.com", false),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let tls = tls.clone();
            let server = tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let (mut stream, hs) = accept(tcp, &tls, Environment::Production).await?;
                stream.write_all(b"ok").await.unwrap();
                stream.shutdown().await.unwrap();
                Ok::<_, TlsError>(hs)
            });
            let script = format!(
                "import ssl, socket\n\
                 ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
                 ctx.load_verify_locations('{ca}')\n\
                 ctx.load_cert_chain('{pem}')\n\
                 s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname='{host}')\n\
                 data = b''\n\
                 while True:\n    d = s.recv(100)\n    if not d: break\n    data += d\n\
                 print(s.version(), data.decode())",
                ca = dir.join("ca.pem").display(),
                pem = dir.join("provider-sandbox-combined.pem").display(),
            );
            let out = tokio::process::Command::new("python3")
                .args(["-c", &script])
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let server = server.await.unwrap();
            if ok {
                assert_eq!(stdout.trim(), "TLSv1.2 ok", "{stderr}");
                assert_eq!(server.unwrap().environment, Environment::Sandbox);
            } else {
                assert!(!out.status.success());
                assert!(
                    stderr.to_ascii_lowercase().contains("access denied"),
                    "{stderr}"
                );
                assert_eq!(failure(&server), Some(HandshakeFailure::WrongEnvironment));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn client_identity_reads_uid_topics_and_environments() {
        let ca = Authority::new_in_memory().unwrap();
        let cases: [(&[Environment], Vec<Environment>); 3] = [
            (&[Environment::Production], vec![Environment::Production]),
            (&[Environment::Sandbox], vec![Environment::Sandbox]),
            (BOTH, vec![Environment::Sandbox, Environment::Production]),
        ];
        for (envs, want) in cases {
            let id = ca.issue_provider(&ProviderSpec::new(TOPIC, envs)).unwrap();
            let c = client_identity(&id.cert_der).unwrap();
            assert_eq!(c.uid.as_deref(), Some(TOPIC));
            assert_eq!(
                c.topics,
                vec![
                    TOPIC.to_string(),
                    format!("{TOPIC}.voip"),
                    format!("{TOPIC}.complication")
                ]
            );
            assert_eq!(
                c.topic_kinds
                    .iter()
                    .map(|(_, k)| k.as_str())
                    .collect::<Vec<_>>(),
                vec!["app", "voip", "complication"]
            );
            assert_eq!(c.environments, want);
            assert!(c.subject.contains("Apple Push Services: com.example.app"));
            assert!(c.allows_topic("com.example.app.voip"));
            assert!(!c.allows_topic("com.example.other"));
        }
    }

    #[test]
    fn single_topic_legacy_certificate_falls_back_to_cn_and_uid() {
        let ca = Authority::new_in_memory().unwrap();
        let mut spec = ProviderSpec::new("com.old.app", &[]);
        spec.topics.clear();
        spec.common_name = Some("Apple Development IOS Push Services: com.old.app".into());
        let c = client_identity(&ca.issue_provider(&spec).unwrap().cert_der).unwrap();
        assert_eq!(c.environments, vec![Environment::Sandbox]);
        assert_eq!(c.topics, vec!["com.old.app".to_string()]);
        assert!(!c.has_topic_list);
        assert!(c.allows_topic("com.old.app.voip"));
        assert!(c.allows_topic("com.old.app.complication"));
        assert!(!c.allows_topic("com.old.app.other"));
        assert!(!c.allows_topic("com.old.appx.voip"));
    }

    #[test]
    fn client_identity_rejects_garbage() {
        assert!(client_identity(b"not a certificate").is_err());
        assert!(client_identity(&[]).is_err());
    }

    #[test]
    fn handshake_environment_prefers_apple_sni() {
        use Environment::*;
        assert_eq!(
            handshake_environment(Some("gateway.sandbox.push.apple.com"), Production),
            Sandbox
        );
        assert_eq!(
            handshake_environment(Some("API.PUSH.APPLE.COM"), Sandbox),
            Production
        );
        assert_eq!(handshake_environment(Some("localhost"), Sandbox), Sandbox);
        assert_eq!(handshake_environment(None, Production), Production);
    }

    #[test]
    fn bad_ca_pem_is_an_error() {
        let ca = Authority::new_in_memory().unwrap();
        let server = ca.issue_server().unwrap();
        assert!(matches!(
            ListenerTls::new("nothing here", &server, TlsOptions::legacy()),
            Err(TlsError::Ca(_))
        ));
    }
}
