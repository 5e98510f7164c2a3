//! The wire-level mutants (issue 10): rules the `h2` client keeps with no hook to break them,
//! broken by rewriting the frames it writes. [`Rewrite`] sits between `h2` and TLS; everything
//! it does not rewrite passes through byte for byte, so the mutant is the gold sender plus one
//! broken rule (PROTOCOL.md 2.2: PRIORITY is ignored by APNs; `authorization` should be a
//! literal without indexing).

use crate::http2::hpack::{Decoder, Encoder, Representation};
use bytes::{Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Which rule the rewrite breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// A PRIORITY frame after every HEADERS frame, for its stream.
    Priority,
    /// `authorization` sent with incremental indexing (then as an index when it repeats).
    IndexAuthorization,
}

/// The client connection preface (RFC 9113 3.4), passed through before any frame.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// A header block being gathered: stream, HEADERS flags, fragments so far.
struct Block {
    stream: u32,
    flags: u8,
    fragment: Vec<u8>,
}

/// The writer half of the client connection, rewritten; reads pass through.
pub struct Rewrite<T> {
    inner: T,
    broken: Broken,
    preface_left: usize,
    /// Bytes from `h2` not yet a whole frame.
    pending: Vec<u8>,
    /// Rewritten bytes not yet written to the connection.
    out: Vec<u8>,
    block: Option<Block>,
    /// Mirrors the table of `h2`'s encoder, to read its blocks.
    decoder: Decoder,
    /// Writes the blocks the server reads.
    encoder: Encoder,
}

impl<T> Rewrite<T> {
    /// Wraps the TLS stream `inner`, breaking `broken`.
    pub fn new(inner: T, broken: Broken) -> Self {
        Rewrite {
            inner,
            broken,
            preface_left: PREFACE_LEN,
            pending: Vec::new(),
            out: Vec::new(),
            block: None,
            decoder: Decoder::new(crate::http2::hpack::DEFAULT_TABLE_SIZE),
            encoder: Encoder::new(),
        }
    }

    /// Moves every whole frame of `pending` to `out`, rewritten.
    fn frames(&mut self) -> io::Result<()> {
        let take = self.preface_left.min(self.pending.len());
        self.out.extend(self.pending.drain(..take));
        self.preface_left -= take;
        while self.pending.len() >= FRAME_HEADER_LEN {
            let len = u32::from_be_bytes([0, self.pending[0], self.pending[1], self.pending[2]]);
            let total = FRAME_HEADER_LEN + len as usize;
            if self.pending.len() < total {
                break;
            }
            let frame: Vec<u8> = self.pending.drain(..total).collect();
            self.frame(&frame)?;
        }
        Ok(())
    }

    fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let (kind, flags) = (frame[3], frame[4]);
        let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[FRAME_HEADER_LEN..];
        match (self.broken, kind) {
            (Broken::Priority, HEADERS) => {
                self.out.extend_from_slice(frame);
                // Exclusive flag clear, depends on stream 0, weight 16 (RFC 9113 6.3).
                write_frame(&mut self.out, PRIORITY, 0, stream, &[0, 0, 0, 0, 15]);
            }
            (Broken::IndexAuthorization, HEADERS) => {
                self.block = Some(Block {
                    stream,
                    flags,
                    fragment: payload.to_vec(),
                });
                if flags & END_HEADERS != 0 {
                    self.reencode()?;
                }
            }
            (Broken::IndexAuthorization, CONTINUATION) if self.block.is_some() => {
                if let Some(b) = &mut self.block {
                    b.fragment.extend_from_slice(payload);
                }
                if flags & END_HEADERS != 0 {
                    self.reencode()?;
                }
            }
            _ => self.out.extend_from_slice(frame),
        }
        Ok(())
    }

    /// Re-encodes a whole header block, `authorization` indexed, the rest as `h2` chose.
    fn reencode(&mut self) -> io::Result<()> {
        let Some(b) = self.block.take() else {
            return Ok(());
        };
        let fields = self
            .decoder
            .decode(&b.fragment, usize::MAX)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let fields: Vec<(Bytes, Bytes, Representation)> = fields
            .into_iter()
            .map(|f| {
                let rep = if f.name.as_ref() == b"authorization" {
                    Representation::Indexed
                } else {
                    f.representation
                };
                (f.name, f.value, rep)
            })
            .collect();
        let mut block = BytesMut::new();
        self.encoder.encode_with(&fields, &mut block);
        write_frame(
            &mut self.out,
            HEADERS,
            b.flags | END_HEADERS,
            b.stream,
            &block,
        );
        Ok(())
    }

    /// Writes `out` to the connection until it is empty.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        T: AsyncWrite + Unpin,
    {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewrite<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewrite<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        this.pending.extend_from_slice(buf);
        this.frames()?;
        // Written on as far as the connection takes it; the rest goes at the next write or flush.
        if let Poll::Ready(Err(e)) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::hpack::Representation as R;

    fn headers_frame(enc: &mut Encoder, auth: &str, stream: u32) -> Vec<u8> {
        let fields = vec![
            (
                Bytes::from_static(b":method"),
                Bytes::from_static(b"POST"),
                R::Indexed,
            ),
            (
                Bytes::from_static(b"authorization"),
                Bytes::from(auth.to_string()),
                R::WithoutIndexing,
            ),
        ];
        let mut block = BytesMut::new();
        enc.encode_with(&fields, &mut block);
        let mut f = Vec::new();
        write_frame(&mut f, HEADERS, END_HEADERS, stream, &block);
        f
    }

    /// Feeds `bytes` through a rewrite and returns what it would write.
    fn rewrite(broken: Broken, bytes: &[u8]) -> Vec<u8> {
        let mut r = Rewrite::new((), broken);
        r.preface_left = 0;
        // Split mid-frame: frames are rebuilt across writes.
        for chunk in bytes.chunks(7) {
            r.pending.extend_from_slice(chunk);
            r.frames().unwrap();
        }
        assert!(r.pending.is_empty());
        r.out
    }

    fn read_blocks(out: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
        let mut v = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let len = u32::from_be_bytes([0, out[at], out[at + 1], out[at + 2]]) as usize;
            let stream = u32::from_be_bytes([out[at + 5], out[at + 6], out[at + 7], out[at + 8]]);
            v.push((out[at + 3], stream, out[at + 9..at + 9 + len].to_vec()));
            at += 9 + len;
        }
        v
    }

    #[test]
    fn a_priority_frame_follows_each_headers_frame() {
        let mut enc = Encoder::new();
        let mut input = headers_frame(&mut enc, "bearer a", 1);
        input.extend(headers_frame(&mut enc, "bearer a", 3));
        let frames = read_blocks(&rewrite(Broken::Priority, &input));
        let kinds: Vec<(u8, u32)> = frames.iter().map(|(k, s, _)| (*k, *s)).collect();
        assert_eq!(
            kinds,
            [(HEADERS, 1), (PRIORITY, 1), (HEADERS, 3), (PRIORITY, 3)]
        );
    }

    #[test]
    fn authorization_is_indexed_and_the_server_decodes_the_same_fields() {
        let mut enc = Encoder::new();
        let mut input = headers_frame(&mut enc, "bearer a", 1);
        input.extend(headers_frame(&mut enc, "bearer a", 3));
        let out = rewrite(Broken::IndexAuthorization, &input);
        let mut server = Decoder::new(crate::http2::hpack::DEFAULT_TABLE_SIZE);
        let reps: Vec<(Vec<u8>, R)> = read_blocks(&out)
            .into_iter()
            .flat_map(|(_, _, block)| server.decode(&block, usize::MAX).unwrap())
            .filter(|f| f.name.as_ref() == b"authorization")
            .map(|f| (f.value.to_vec(), f.representation))
            .collect();
        assert_eq!(
            reps,
            [
                (b"bearer a".to_vec(), R::IncrementalIndexing),
                (b"bearer a".to_vec(), R::Indexed)
            ]
        );
    }
}
