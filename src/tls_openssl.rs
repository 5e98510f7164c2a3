//! The OpenSSL acceptor of the legacy gateway and feedback ports when `--legacy-tls-min` is 1.0 or
//! 1.1: rustls never speaks TLS 1.0/1.1, and the providers of Apple's first decade hard-code them
//! (PROTOCOL.md 1.1). Security level 0, so SHA-1 handshake signatures work. Every decision is the
//! rustls path's own: [`client_identity`] and [`ClientIdentity::covers`] judge the certificate,
//! [`handshake_environment`] reads SNI, and failures come out as the same [`HandshakeFailure`]s.
//!
//! [`ClientIdentity::covers`]: crate::tls::ClientIdentity::covers

use crate::certs::Identity;
use crate::model::Environment;
use crate::tls::{
    client_identity, handshake_environment, ClientAuth, Handshake, HandshakeFailure, TlsError,
    TlsOptions,
};
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::pkey::PKey;
use openssl::ssl::{
    NameType, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode,
    SslVerifyMode, SslVersion,
};
use openssl::x509::{X509StoreContextRef, X509VerifyResult, X509};
use parking_lot::Mutex;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED (stable OpenSSL ABI values).
const CERT_NOT_YET_VALID: i32 = 9;
const CERT_HAS_EXPIRED: i32 = 10;

/// What one handshake learned as it went, shared by the SNI and verify callbacks.
#[derive(Debug)]
struct Progress {
    /// The connection's environment: the listener's until SNI names another.
    environment: Environment,
    /// SNI as the client sent it.
    sni: Option<String>,
    /// Why the certificate was refused, when the verify callback refused it.
    failure: Option<HandshakeFailure>,
}

/// One OpenSSL context for a legacy listener, built once; the environment is chosen per connection
/// from SNI inside the handshake, so a certificate refusal happens in the handshake as at Apple.
pub struct OpenSslTls {
    ctx: SslContext,
    progress: Index<Ssl, Arc<Mutex<Progress>>>,
    options: TlsOptions,
    min: u16,
}

impl std::fmt::Debug for OpenSslTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSslTls")
            .field("options", &self.options)
            .field("min", &format_args!("0x{:04x}", self.min))
            .finish()
    }
}

/// The OpenSSL version constant for a wire version (0x0301 → TLS 1.0).
fn ssl_version(wire: u16) -> SslVersion {
    match wire {
        0x0301 => SslVersion::TLS1,
        0x0302 => SslVersion::TLS1_1,
        0x0304 => SslVersion::TLS1_3,
        _ => SslVersion::TLS1_2,
    }
}

/// The journal's spelling of a negotiated version, the same as on the rustls path ("TLSv1_0").
fn version_name(v: SslVersion) -> String {
    let name = if v == SslVersion::TLS1 {
        "TLSv1_0"
    } else if v == SslVersion::TLS1_1 {
        "TLSv1_1"
    } else if v == SslVersion::TLS1_2 {
        "TLSv1_2"
    } else if v == SslVersion::TLS1_3 {
        "TLSv1_3"
    } else {
        "SSLv3"
    };
    name.to_string()
}

fn config_error(e: ErrorStack) -> TlsError {
    TlsError::Backend(Box::new(e))
}

impl OpenSslTls {
    /// Builds the context: `min` is the lowest wire version (0x0301 for TLS 1.0), the highest is
    /// 1.2, or 1.3 when `options.allow_tls13`.
    pub fn new(
        ca_pem: &str,
        server: &Identity,
        options: TlsOptions,
        min: u16,
    ) -> Result<Self, TlsError> {
        let mut b = SslContextBuilder::new(SslMethod::tls_server()).map_err(config_error)?;
        // Level 0: TLS 1.0/1.1 sign the handshake with SHA-1, which levels 1+ refuse in OpenSSL 3.
        b.set_security_level(0);
        b.set_cipher_list("DEFAULT:@SECLEVEL=0")
            .map_err(config_error)?;
        b.set_min_proto_version(Some(ssl_version(min)))
            .map_err(config_error)?;
        let max = if options.allow_tls13 { 0x0304 } else { 0x0303 };
        b.set_max_proto_version(Some(ssl_version(max)))
            .map_err(config_error)?;
        // No resumption: a resumed session skips the certificate and environment checks.
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_options(SslOptions::ALL | SslOptions::NO_TICKET);
        let cert = X509::from_der(&server.cert_der).map_err(config_error)?;
        let key = PKey::private_key_from_der(&server.key_der).map_err(config_error)?;
        b.set_certificate(&cert).map_err(config_error)?;
        b.set_private_key(&key).map_err(config_error)?;
        b.check_private_key().map_err(config_error)?;
        let cas =
            X509::stack_from_pem(ca_pem.as_bytes()).map_err(|e| TlsError::Ca(e.to_string()))?;
        if cas.is_empty() {
            return Err(TlsError::Ca("no CERTIFICATE in CA PEM".into()));
        }
        for ca in cas {
            // The CA names the client is told to pick a certificate by, as on the rustls path.
            b.add_client_ca(&ca).map_err(config_error)?;
            b.cert_store_mut()
                .add_cert(ca)
                .map_err(|e| TlsError::Ca(e.to_string()))?;
        }
        let progress = Ssl::new_ex_index::<Arc<Mutex<Progress>>>().map_err(config_error)?;
        b.set_servername_callback(move |ssl, _alert| {
            let sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
            if let Some(p) = ssl.ex_data(progress) {
                let mut p = p.lock();
                p.environment = handshake_environment(sni.as_deref(), p.environment);
                p.sni = sni;
            }
            Ok(())
        });
        Ok(OpenSslTls {
            ctx: b.build(),
            progress,
            options,
            min,
        })
    }

    /// The policy this listener was built with.
    pub fn options(&self) -> &TlsOptions {
        &self.options
    }

    /// The lowest wire version spoken.
    pub fn min_version(&self) -> u16 {
        self.min
    }

    /// Completes the handshake, choosing the environment from SNI (else `listener_env`).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        listener_env: Environment,
    ) -> Result<(SslStream<TcpStream>, Handshake), TlsError> {
        let progress = Arc::new(Mutex::new(Progress {
            environment: listener_env,
            sni: None,
            failure: None,
        }));
        let mut ssl = Ssl::new(&self.ctx).map_err(config_error)?;
        ssl.set_ex_data(self.progress, progress.clone());
        let mode = match self.options.client_auth {
            ClientAuth::Required => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            ClientAuth::Optional => SslVerifyMode::PEER,
        };
        let enforce = self.options.enforce_environment;
        let seen = progress.clone();
        ssl.set_verify_callback(mode, move |ok, ctx| verify(&seen, enforce, ok, ctx));
        let mut stream = SslStream::new(ssl, tcp).map_err(config_error)?;
        let result = Pin::new(&mut stream).accept().await;
        let p = progress.lock();
        if let Err(e) = result {
            let failure = p.failure.unwrap_or_else(|| classify(&e));
            return Err(TlsError::Refused {
                environment: p.environment,
                sni: p.sni.clone(),
                failure,
                alert: client_alert(&e),
                source: Box::new(e),
            });
        }
        let ssl = stream.ssl();
        let client = match ssl.peer_certificate() {
            Some(cert) => Some(client_identity(&cert.to_der().map_err(config_error)?)?),
            None => None,
        };
        let handshake = Handshake {
            environment: p.environment,
            sni: p.sni.clone(),
            alpn: ssl.selected_alpn_protocol().map(<[u8]>::to_vec),
            client,
            tls_version: ssl.version2().map(version_name),
        };
        drop(p);
        Ok((stream, handshake))
    }
}

/// The client-certificate check: OpenSSL's chain verification against apnsim's CA, then Apple's
/// environment check on the leaf (PROTOCOL.md 1.9), recording why it refused.
fn verify(
    progress: &Mutex<Progress>,
    enforce: bool,
    chain_ok: bool,
    ctx: &mut X509StoreContextRef,
) -> bool {
    let mut p = progress.lock();
    if !chain_ok {
        let code = ctx.error().as_raw();
        p.failure = Some(match code {
            CERT_NOT_YET_VALID | CERT_HAS_EXPIRED => HandshakeFailure::ExpiredCertificate,
            _ => HandshakeFailure::UntrustedCertificate,
        });
        return false;
    }
    if ctx.error_depth() != 0 {
        return true;
    }
    let identity = ctx
        .current_cert()
        .and_then(|c| c.to_der().ok())
        .and_then(|der| client_identity(&der).ok());
    match identity {
        Some(id) if !enforce || id.covers(p.environment) => true,
        Some(_) => {
            p.failure = Some(HandshakeFailure::WrongEnvironment);
            ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
            false
        }
        None => {
            p.failure = Some(HandshakeFailure::UntrustedCertificate);
            ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
            false
        }
    }
}

/// The reasons of OpenSSL's error queue for a failed handshake.
fn reasons(e: &openssl::ssl::Error) -> Vec<String> {
    e.ssl_error()
        .map(|stack| {
            stack
                .errors()
                .iter()
                .filter_map(|r| r.reason().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A handshake failure the verify callback did not see, from OpenSSL's reason text.
fn classify(e: &openssl::ssl::Error) -> HandshakeFailure {
    for reason in reasons(e) {
        if reason.contains("did not return a certificate")
            || reason.contains("certificate required")
        {
            return HandshakeFailure::NoCertificate;
        }
        if reason.contains("unsupported protocol") || reason.contains("version too low") {
            return HandshakeFailure::ProtocolVersion;
        }
        if reason.contains("no application protocol") {
            return HandshakeFailure::NoApplicationProtocol;
        }
    }
    HandshakeFailure::Other
}

/// The alert the client ended the handshake with, as the TLS specifications spell it: OpenSSL
/// reports "tlsv1 alert unknown ca" for the client's unknown_ca.
fn client_alert(e: &openssl::ssl::Error) -> Option<String> {
    reasons(e).into_iter().find_map(|r| {
        let (_, name) = r.split_once(" alert ")?;
        Some(name.trim().replace(' ', "_"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_spelled_as_on_the_rustls_path() {
        assert_eq!(version_name(SslVersion::TLS1), "TLSv1_0");
        assert_eq!(version_name(SslVersion::TLS1_2), "TLSv1_2");
        assert_eq!(ssl_version(0x0302), SslVersion::TLS1_1);
    }
}
