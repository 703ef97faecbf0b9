//! A client connection's IO as every listener hands it to hyper: the TCP stream plus what bounds it — its slot
//! (dropped with the socket), a deadline for its first bytes, and a cap on what it may send before it authenticates.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::conn_limit::ConnGuard;

/// Bytes a connection must send within the header-read timeout before hyper's own header timer takes over: the
/// HTTP/2 preface, which is as much as hyper reads before it knows the protocol (and before its timer starts).
const FIRST_BYTES: usize = 24;

/// Why a read was refused: the connection sent more than its cap before authenticating (see [`ReadCap`]).
#[derive(Debug, thiserror::Error)]
#[error("more than {limit} bytes before the first frame was accepted")]
pub struct OverReadCap {
    pub limit: usize,
}

/// Why a read was refused: nothing (or almost nothing) came within the header-read timeout.
#[derive(Debug, thiserror::Error)]
#[error("no request within {} s (EXAI_HEADER_READ_TIMEOUT_SECS)", .0.as_secs())]
pub struct FirstBytesTimeout(pub Duration);

/// A cap on the bytes a connection may still send, shared with the code that decides when to lift it. Off until
/// [`ReadCap::limit`] is called.
#[derive(Debug, Default)]
pub struct ReadCap {
    /// Bytes still allowed; `usize::MAX` when off.
    left: AtomicUsize,
    /// The limit last set (for the error).
    limit: AtomicUsize,
}

impl ReadCap {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(usize::MAX),
            limit: AtomicUsize::new(0),
        })
    }

    /// From now on, at most `bytes` more may be read (until [`ReadCap::lift`]).
    pub fn limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
        self.left.store(bytes, Ordering::Relaxed);
    }

    pub fn lift(&self) {
        self.left.store(usize::MAX, Ordering::Relaxed);
    }
}

/// A connection and what its admission left with it (by default the slot it holds, dropped with the socket).
pub struct Counted<G = ConnGuard> {
    stream: TcpStream,
    guard: G,
    /// Until [`FIRST_BYTES`] have come: when the client must have sent them, and how long it had.
    first: Option<(Pin<Box<Sleep>>, Duration)>,
    read: usize,
    cap: Arc<ReadCap>,
}

impl<G> Counted<G> {
    /// `first_bytes`: how long the client has to send its first bytes (`EXAI_HEADER_READ_TIMEOUT_SECS`).
    pub fn new(stream: TcpStream, guard: G, first_bytes: Duration) -> Self {
        Self {
            stream,
            guard,
            first: Some((Box::pin(tokio::time::sleep(first_bytes)), first_bytes)),
            read: 0,
            cap: ReadCap::new(),
        }
    }

    pub fn guard(&self) -> &G {
        &self.guard
    }

    /// The connection's read cap (off unless someone limits it).
    pub fn read_cap(&self) -> Arc<ReadCap> {
        Arc::clone(&self.cap)
    }
}

impl<G: Unpin> AsyncRead for Counted<G> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let left = this.cap.left.load(Ordering::Relaxed);
        let poll = if left == usize::MAX {
            let before = buf.filled().len();
            let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
            this.read += buf.filled().len() - before;
            poll
        } else {
            if left == 0 {
                let limit = this.cap.limit.load(Ordering::Relaxed);
                return Poll::Ready(Err(io::Error::other(OverReadCap { limit })));
            }
            // Read no more than the cap allows, so nothing past it is ever buffered.
            let room = buf.remaining().min(left);
            let mut capped = ReadBuf::new(buf.initialize_unfilled_to(room));
            let poll = Pin::new(&mut this.stream).poll_read(cx, &mut capped);
            let n = capped.filled().len();
            buf.advance(n);
            this.read += n;
            // A cap lifted meanwhile stays lifted.
            let _ = this
                .cap
                .left
                .compare_exchange(left, left - n, Ordering::Relaxed, Ordering::Relaxed);
            poll
        };
        if this.read >= FIRST_BYTES {
            this.first = None;
        } else if poll.is_pending()
            && let Some((deadline, within)) = &mut this.first
            && deadline.as_mut().poll(cx).is_ready()
        {
            let within = *within;
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, FirstBytesTimeout(within))));
        }
        poll
    }
}

impl<G: Unpin> AsyncWrite for Counted<G> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(first_bytes: Duration) -> (Counted<()>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Counted::new(server, (), first_bytes), client)
    }

    #[tokio::test]
    async fn a_capped_connection_reads_no_more_than_its_cap_then_fails_with_a_typed_error() {
        let (mut server, mut client) = pair(Duration::from_secs(10)).await;
        client.write_all(&[7u8; 100]).await.unwrap();
        server.read_cap().limit(40);
        let mut buf = [0u8; 100];
        let mut got = 0;
        let err = loop {
            match server.read(&mut buf).await {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(got, 40);
        assert_eq!(err.get_ref().unwrap().downcast_ref::<OverReadCap>().unwrap().limit, 40);
        server.read_cap().lift();
        server.read_exact(&mut buf[..60]).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_too_little_in_time_fails_and_one_that_sent_enough_never_does() {
        let (mut server, mut client) = pair(Duration::from_secs(10)).await;
        client.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).await.unwrap(), 3);
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (mut server, mut client) = pair(Duration::from_secs(10)).await;
        client.write_all(&[b'x'; 30]).await.unwrap();
        server.read_exact(&mut buf[..30]).await.unwrap();
        let pending = tokio::time::timeout(Duration::from_secs(60), server.read(&mut buf)).await;
        assert!(
            pending.is_err(),
            "past its first bytes, a connection is hyper's to time out"
        );
    }
}
