//! Which TLS library completes a listener's handshakes, behind one interface: rustls for every
//! listener, OpenSSL for the legacy gateway and feedback ports when `--legacy-tls-min` is below 1.2
//! (PROTOCOL.md 1.1). The protocol loops see only [`Accept`] and an `AsyncRead + AsyncWrite` stream;
//! the certificate and environment decisions live in `tls` and are the same for both libraries.

use crate::model::Environment;
use crate::settings::LegacyTlsMin;
use crate::tls::{Handshake, ListenerTls, TlsError, TlsOptions};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A listener's handshake, whatever library runs it.
pub(crate) trait Accept: Send + Sync {
    /// The stream the protocol loop reads and writes after the handshake.
    type Stream: AsyncRead + AsyncWrite + OnTcp + Unpin + Send;

    /// Completes the handshake on `tcp`, choosing the environment from SNI (else `listener_env`).
    fn accept(
        &self,
        tcp: TcpStream,
        listener_env: Environment,
    ) -> impl Future<Output = Result<(Self::Stream, Handshake), TlsError>> + Send;

    /// The lowest TLS version spoken, as the wire spells it (0x0303 = TLS 1.2), for refusal words.
    fn min_version(&self) -> u16;

    /// The listener's policy.
    fn options(&self) -> &TlsOptions;
}

/// A TLS stream over a TCP socket the transport can reach (for SO_LINGER on a `reset` close).
pub(crate) trait OnTcp {
    /// The TCP socket under the TLS session.
    fn tcp(&self) -> &TcpStream;
}

impl OnTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl Accept for ListenerTls {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;

    fn accept(
        &self,
        tcp: TcpStream,
        listener_env: Environment,
    ) -> impl Future<Output = Result<(Self::Stream, Handshake), TlsError>> + Send {
        crate::tls::accept(tcp, self, listener_env)
    }

    fn min_version(&self) -> u16 {
        0x0303
    }

    fn options(&self) -> &TlsOptions {
        ListenerTls::options(self)
    }
}

/// The gateway and feedback ports' TLS: rustls at TLS 1.2 (the default), or OpenSSL when
/// `legacy_tls_min` lets TLS 1.0 or 1.1 in.
#[derive(Debug)]
pub enum LegacyTls {
    /// TLS 1.2 (and 1.3 with `legacy_tls13`), through rustls.
    Rustls(ListenerTls),
    /// TLS 1.0 or 1.1 and up, through the system OpenSSL at security level 0.
    #[cfg(feature = "legacy-openssl")]
    OpenSsl(crate::tls_openssl::OpenSslTls),
}

/// Why the legacy listeners' TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LegacyTlsError {
    /// The configs themselves failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// TLS 1.0/1.1 asked of a build without OpenSSL.
    #[error("legacy_tls_min = {0} needs apnsim built with the `legacy-openssl` feature (the default); this build speaks TLS 1.2 and up only")]
    NoOpenSsl(LegacyTlsMin),
}

impl LegacyTls {
    /// Builds the legacy listeners' TLS for `min` from the CA and server identity.
    pub fn new(
        ca_pem: &str,
        server: &crate::certs::Identity,
        options: TlsOptions,
        min: LegacyTlsMin,
    ) -> Result<Self, LegacyTlsError> {
        if min == LegacyTlsMin::Tls1_2 {
            return Ok(LegacyTls::Rustls(ListenerTls::new(
                ca_pem, server, options,
            )?));
        }
        #[cfg(feature = "legacy-openssl")]
        {
            Ok(LegacyTls::OpenSsl(crate::tls_openssl::OpenSslTls::new(
                ca_pem,
                server,
                options,
                min.wire(),
            )?))
        }
        #[cfg(not(feature = "legacy-openssl"))]
        {
            let _ = (ca_pem, server, options);
            Err(LegacyTlsError::NoOpenSsl(min))
        }
    }
}

impl Accept for LegacyTls {
    type Stream = LegacyStream;

    async fn accept(
        &self,
        tcp: TcpStream,
        listener_env: Environment,
    ) -> Result<(LegacyStream, Handshake), TlsError> {
        match self {
            LegacyTls::Rustls(tls) => {
                let (s, hs) = crate::tls::accept(tcp, tls, listener_env).await?;
                Ok((LegacyStream::Rustls(Box::new(s)), hs))
            }
            #[cfg(feature = "legacy-openssl")]
            LegacyTls::OpenSsl(tls) => {
                let (s, hs) = tls.accept(tcp, listener_env).await?;
                Ok((LegacyStream::OpenSsl(Box::new(s)), hs))
            }
        }
    }

    fn min_version(&self) -> u16 {
        match self {
            LegacyTls::Rustls(tls) => tls.min_version(),
            #[cfg(feature = "legacy-openssl")]
            LegacyTls::OpenSsl(tls) => tls.min_version(),
        }
    }

    fn options(&self) -> &TlsOptions {
        match self {
            LegacyTls::Rustls(tls) => tls.options(),
            #[cfg(feature = "legacy-openssl")]
            LegacyTls::OpenSsl(tls) => tls.options(),
        }
    }
}

/// A legacy connection's TLS stream, from either library.
pub enum LegacyStream {
    /// rustls.
    Rustls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// OpenSSL.
    #[cfg(feature = "legacy-openssl")]
    OpenSsl(Box<tokio_openssl::SslStream<TcpStream>>),
}

impl OnTcp for LegacyStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            LegacyStream::Rustls(s) => s.get_ref().0,
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => s.get_ref(),
        }
    }
}

impl AsyncRead for LegacyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LegacyStream::Rustls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LegacyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LegacyStream::Rustls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LegacyStream::Rustls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LegacyStream::Rustls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LegacyStream::Rustls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            LegacyStream::Rustls(s) => s.is_write_vectored(),
            #[cfg(feature = "legacy-openssl")]
            LegacyStream::OpenSsl(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::Authority;

    #[test]
    fn the_minimum_picks_the_library() {
        let ca = Authority::new_in_memory().unwrap();
        let server = ca.issue_server().unwrap();
        let build = |min| LegacyTls::new(&ca.ca_pem(), &server, TlsOptions::legacy(), min);
        let default = build(LegacyTlsMin::Tls1_2).unwrap();
        assert!(matches!(default, LegacyTls::Rustls(_)));
        assert_eq!(default.min_version(), 0x0303);
        for min in [LegacyTlsMin::Tls1_0, LegacyTlsMin::Tls1_1] {
            #[cfg(feature = "legacy-openssl")]
            {
                let tls = build(min).unwrap();
                assert!(matches!(tls, LegacyTls::OpenSsl(_)));
                assert_eq!(tls.min_version(), min.wire());
            }
            #[cfg(not(feature = "legacy-openssl"))]
            {
                let err = build(min).unwrap_err();
                assert!(matches!(err, LegacyTlsError::NoOpenSsl(_)));
                assert!(err.to_string().contains("legacy-openssl"), "{err}");
            }
        }
    }
}
