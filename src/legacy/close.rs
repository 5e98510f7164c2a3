//! How a legacy connection (gateway or feedback) stops sending, once the session or a rule has
//! chosen the way ([`CloseHow`]): the last data, a gap, then close_notify (the default, as the
//! bytes and the close arrived over a real network: PROTOCOL.md 1.1); the data and close_notify in
//! one write; a bare FIN; or a reset. Only moves bytes.

use crate::legacy::session::CloseHow;
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The TLS stream operations a close needs beyond writing: each acceptor's stream implements them.
pub(crate) trait CloseWays: AsyncWrite + Unpin {
    /// Writes `data` and close_notify in one socket write (one TCP segment on loopback), then FIN.
    fn burst(&mut self, data: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends the TCP stream with no close_notify.
    fn fin(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// Makes the socket's close a TCP reset (SO_LINGER 0).
    fn arm_reset(&self);
}

impl CloseWays for tokio_rustls::server::TlsStream<TcpStream> {
    async fn burst(&mut self, data: &[u8]) -> io::Result<()> {
        let (tcp, tls) = self.get_mut();
        io::Write::write_all(&mut tls.writer(), data)?;
        tls.send_close_notify();
        let mut wire = Vec::with_capacity(data.len() + 128);
        while tls.wants_write() {
            tls.write_tls(&mut wire)?;
        }
        tcp.write_all(&wire).await?;
        tcp.flush().await?;
        tcp.shutdown().await
    }

    async fn fin(&mut self) -> io::Result<()> {
        self.get_mut().0.shutdown().await
    }

    fn arm_reset(&self) {
        crate::runtime::reset_on_close(self);
    }
}

/// Closes `io` the way `how` says. `last` is data not yet written (sent with close_notify by
/// `Burst`, written first otherwise); `gap` is waited before the close when data was written
/// (`wrote`, or `last`), except by `Burst`, whose point is to have none. A `Reset` is carried out
/// when the caller drops the stream.
pub(crate) async fn finish<T: CloseWays>(
    io: &mut T,
    last: Option<&[u8]>,
    wrote: bool,
    how: CloseHow,
    gap: Duration,
) -> io::Result<()> {
    if how == CloseHow::Burst {
        return io.burst(last.unwrap_or_default()).await;
    }
    if let Some(data) = last {
        io.write_all(data).await?;
        io.flush().await?;
    }
    if (wrote || last.is_some()) && !gap.is_zero() {
        tokio::time::sleep(gap).await;
    }
    match how {
        CloseHow::Graceful => io.shutdown().await,
        CloseHow::Fin => io.fin().await,
        CloseHow::Reset => {
            io.arm_reset();
            Ok(())
        }
        CloseHow::Burst => Ok(()),
    }
}

impl CloseWays for crate::acceptor::LegacyStream {
    async fn burst(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            crate::acceptor::LegacyStream::Rustls(s) => s.as_mut().burst(data).await,
            // OpenSSL writes each record as it is made: the data and close_notify leave back to
            // back with no gap (on loopback they arrive together), not in one write.
            #[cfg(feature = "legacy-openssl")]
            crate::acceptor::LegacyStream::OpenSsl(s) => {
                s.write_all(data).await?;
                s.shutdown().await
            }
        }
    }

    async fn fin(&mut self) -> io::Result<()> {
        match self {
            crate::acceptor::LegacyStream::Rustls(s) => s.as_mut().fin().await,
            #[cfg(feature = "legacy-openssl")]
            crate::acceptor::LegacyStream::OpenSsl(s) => s.get_mut().shutdown().await,
        }
    }

    fn arm_reset(&self) {
        crate::runtime::reset_on_close(self);
    }
}
