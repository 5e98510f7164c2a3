//! Waiting until a legacy connection has something to read, without a read buffer: what lets
//! 10,000 idle gateway connections hold no buffer of apnsim's own (issue 12). Only moves bytes.

use std::future::Future;
use std::io;
use tokio::net::TcpStream;

/// A TLS stream that can tell when a read would make progress.
pub(crate) trait ReadReady {
    /// Resolves when plaintext is already decrypted and waiting, or the socket is readable
    /// (a record, part of one, an alert or EOF: the read that follows tells which).
    fn read_ready(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

impl ReadReady for tokio_rustls::server::TlsStream<TcpStream> {
    async fn read_ready(&mut self) -> io::Result<()> {
        let (tcp, tls) = self.get_mut();
        // Processing again is a no-op with no new bytes; an error is ready (the read reports it).
        let buffered = tls.process_new_packets().map_or(true, |s| {
            s.plaintext_bytes_to_read() > 0 || s.peer_has_closed()
        });
        if buffered {
            return Ok(());
        }
        tcp.readable().await
    }
}

impl ReadReady for crate::acceptor::LegacyStream {
    async fn read_ready(&mut self) -> io::Result<()> {
        match self {
            crate::acceptor::LegacyStream::Rustls(s) => s.as_mut().read_ready().await,
            #[cfg(feature = "legacy-openssl")]
            crate::acceptor::LegacyStream::OpenSsl(s) => {
                if s.ssl().pending() > 0 {
                    return Ok(());
                }
                s.get_ref().readable().await
            }
        }
    }
}
