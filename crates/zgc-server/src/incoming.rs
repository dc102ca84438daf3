//! Accepted connections, configured the way gRPC needs them, with TLS
//! when it is on, watched for HTTP/2 control-frame floods, and closed
//! without losing the last response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

use crate::flood::{Flood, FrameGuard};
use crate::tls::{Admit, HANDSHAKE_TIMEOUT, LOG_BURST, LOG_WINDOW, LogLimit};

/// How long a closing connection keeps reading (and discarding) what the
/// peer still sends, waiting for the peer to close its side.
pub const LINGER: Duration = Duration::from_secs(1);

/// TLS handshakes in progress at most; past it, connections wait in the
/// kernel's accept queue.
pub const MAX_HANDSHAKES: usize = 256;

/// The connections of `listener`, with `TCP_NODELAY` (without it, small
/// responses wait for delayed ACKs: tens of milliseconds per unary call),
/// TCP keepalive (dead peers are noticed), a lingering close (see
/// [`Lingering`]), and, with `tls`, a TLS handshake each (see
/// [`crate::tls`]: refusals are logged with the peer and the reason).
///
/// With TLS, connections are accepted and their handshakes run on a task
/// of their own; it ends, closing the listener, when the server drops this
/// stream (it stops accepting at shutdown).
pub fn incoming(listener: TcpListener, tls: Option<Arc<ServerConfig>>) -> Incoming {
    let tcp = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let floods = Arc::new(LogLimit::new(LOG_BURST, LOG_WINDOW));
    match tls {
        None => Incoming::Plain(tcp, floods),
        Some(config) => {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(accept_tls(tcp, TlsAcceptor::from(config), tx, floods));
            Incoming::Tls(rx)
        }
    }
}

/// Accepts connections and shakes hands with each, until `ready`'s
/// receiver is gone.
async fn accept_tls(
    mut tcp: TcpIncoming,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<io::Result<Connection>>,
    floods: Arc<LogLimit>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let log = Arc::new(LogLimit::new(LOG_BURST, LOG_WINDOW));
    loop {
        let permit = tokio::select! {
            _ = ready.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = ready.closed() => return,
            accepted = tcp.next() => accepted,
        };
        let stream = match accepted {
            None => return,
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                // Accept errors (a peer gone before accept, too many open
                // files) pass; the listener stays.
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let peer = stream.peer_addr().ok();
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let log = log.clone();
        let floods = floods.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake = acceptor.accept(Lingering::new(stream)).into_fallible();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(tls)) => {
                    let connection = Connection::new(Transport::Tls(Box::new(tls)), peer, floods);
                    let _ = ready.send(Ok(connection)).await;
                }
                Ok(Err((error, mut stream))) => {
                    refused(&log, peer, &error.to_string());
                    // rustls has written its alert (why the handshake
                    // failed); a lingering close lets the client read it
                    // instead of a reset that would discard it.
                    let _ = tokio::time::timeout(LINGER, stream.shutdown()).await;
                }
                Err(_) => refused(
                    &log,
                    peer,
                    &format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
                ),
            }
        });
    }
}

/// Logs a refused handshake, within the log's limit.
fn refused(log: &LogLimit, peer: Option<SocketAddr>, reason: &str) {
    let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
    if let Admit::Log { suppressed } = log.admit(Instant::now()) {
        tracing::warn!(
            %peer,
            %reason,
            not_logged_before = suppressed,
            "TLS handshake refused"
        );
    }
}

/// The stream of accepted connections [`incoming`] returns.
pub enum Incoming {
    /// Plain TCP (and where to count the floods it logs).
    Plain(TcpIncoming, Arc<LogLimit>),
    /// Connections whose TLS handshake succeeded.
    Tls(mpsc::Receiver<io::Result<Connection>>),
}

impl Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut *self {
            Incoming::Plain(tcp, floods) => Pin::new(tcp).poll_next(cx).map(|next| {
                next.map(|accepted| {
                    accepted.map(|s| {
                        let peer = s.peer_addr().ok();
                        Connection::new(Transport::Plain(Lingering::new(s)), peer, floods.clone())
                    })
                })
            }),
            Incoming::Tls(rx) => rx.poll_recv(cx),
        }
    }
}

/// One accepted connection, in TLS or not, whose incoming HTTP/2 frames
/// are watched for control-frame floods ([`crate::flood`]): a client that
/// floods has its connection closed (its next read fails), logged at warn
/// with the peer, rate-limited.
pub struct Connection {
    transport: Transport,
    guard: FrameGuard,
    flooded: bool,
    peer: Option<SocketAddr>,
    floods: Arc<LogLimit>,
}

/// What a connection runs over.
enum Transport {
    /// Plain TCP.
    Plain(Lingering),
    /// TLS over TCP.
    Tls(Box<TlsStream<Lingering>>),
}

impl Connection {
    fn new(transport: Transport, peer: Option<SocketAddr>, floods: Arc<LogLimit>) -> Self {
        Self {
            transport,
            guard: FrameGuard::new(Instant::now()),
            flooded: false,
            peer,
            floods,
        }
    }

    /// The error every read returns once the client has flooded.
    fn flood(&mut self, flood: Flood) -> io::Error {
        if !self.flooded {
            self.flooded = true;
            let peer = self
                .peer
                .map_or_else(|| "unknown".to_string(), |p| p.to_string());
            if let Admit::Log { suppressed } = self.floods.admit(Instant::now()) {
                tracing::warn!(
                    %peer,
                    reason = %flood,
                    not_logged_before = suppressed,
                    "connection closed"
                );
            }
        }
        io::Error::other(flood)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        match &self.transport {
            Transport::Plain(l) => l.connect_info(),
            Transport::Tls(t) => t.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.flooded {
            return Poll::Ready(Err(this.flood(Flood)));
        }
        let before = buf.filled().len();
        match &mut this.transport {
            Transport::Plain(l) => ready!(Pin::new(l).poll_read(cx, buf))?,
            Transport::Tls(t) => ready!(Pin::new(t.as_mut()).poll_read(cx, buf))?,
        }
        match this.guard.inspect(&buf.filled()[before..], Instant::now()) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(flood) => Poll::Ready(Err(this.flood(flood))),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(l) => Pin::new(l).poll_write(cx, buf),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(l) => Pin::new(l).poll_write_vectored(cx, bufs),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    /// As the connection underneath says (see [`Lingering`]'s).
    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Plain(l) => l.is_write_vectored(),
            Transport::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(l) => Pin::new(l).poll_flush(cx),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(l) => Pin::new(l).poll_shutdown(cx),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A TCP connection whose shutdown is a lingering close.
///
/// When an HTTP/2 connection ends (a graceful shutdown's last stream has
/// finished, or the connection's maximum age has passed), hyper writes the
/// final frames, shuts the write side down and drops the socket. A peer
/// still sending at that moment (a proxy acknowledging the data it just
/// read with a WINDOW_UPDATE, say) then hits a closed socket, the kernel
/// answers with a TCP reset, and a reset makes the peer's kernel discard
/// whatever it had received but not yet read: the end of the last
/// responses, trailers included. Behind HAProxy, a call in flight during a
/// rolling restart came back "missing grpc-status trailer" this way.
///
/// So shutting down sends FIN and then keeps reading, discarding, until the
/// peer closes its side too, or [`LINGER`] has passed, or reading fails;
/// only then does the socket close. This is the "lingering close" of
/// Apache httpd and of Go's HTTP/2 server.
pub struct Lingering {
    stream: TcpStream,
    linger: Duration,
    closing: Closing,
}

enum Closing {
    /// Not shutting down.
    Open,
    /// FIN sent; reading until the peer's FIN or the deadline.
    Draining(Pin<Box<tokio::time::Sleep>>),
    /// Shutdown complete.
    Done,
}

impl Lingering {
    fn new(stream: TcpStream) -> Self {
        Self::with_linger(stream, LINGER)
    }

    fn with_linger(stream: TcpStream, linger: Duration) -> Self {
        Self {
            stream,
            linger,
            closing: Closing::Open,
        }
    }
}

impl Connected for Lingering {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    /// Reported as not vectored, on purpose. HTTP/2 (h2) then copies a
    /// DATA payload of up to 1 KiB into its write buffer instead of
    /// chaining it (256 bytes when vectored), and a chained payload must be
    /// written before any frame after it can be buffered. So a unary
    /// response between 256 bytes and 1 KiB (a summary, a company) goes
    /// out in one `write` (headers, message and trailers) instead of two
    /// `writev`s; the syscall per call costs far more than the copy.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.closing {
                Closing::Open => {
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.closing = Closing::Draining(Box::pin(tokio::time::sleep(this.linger)));
                }
                Closing::Draining(deadline) => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.closing = Closing::Done;
                        continue;
                    }
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                        // More from the peer: discarded; keep reading.
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                        // The peer's FIN, or the connection is gone: done.
                        Poll::Ready(_) => this.closing = Closing::Done,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Closing::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair: the server's end wrapped, the client's plain.
    async fn pair(linger: Duration) -> (Lingering, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (
            Lingering::with_linger(accepted.unwrap().0, linger),
            client.unwrap(),
        )
    }

    #[tokio::test]
    async fn shutdown_reads_what_the_peer_still_sends_until_the_peer_closes() {
        let (mut server, mut client) = pair(Duration::from_secs(3600)).await;
        server.write_all(b"last response").await.unwrap();
        let shutdown = tokio::spawn(async move { server.shutdown().await });

        // The peer reads everything and then the server's FIN...
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        assert_eq!(received, b"last response");
        // ...and may still send: far more than socket buffers hold, so
        // this only completes because the closing server keeps reading.
        client.write_all(&vec![7u8; 8 << 20]).await.unwrap();
        assert!(
            !shutdown.is_finished(),
            "the socket closed while the peer was still sending"
        );
        // The peer closes its side: the server's shutdown completes.
        client.shutdown().await.unwrap();
        shutdown.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_closes_holds_the_socket_for_the_linger_at_most() {
        let (mut server, client) = pair(LINGER).await;
        // The client neither reads nor closes; with the clock paused, the
        // linger passes as soon as nothing else can happen.
        let started = tokio::time::Instant::now();
        server.shutdown().await.unwrap();
        assert!(started.elapsed() >= LINGER);
        drop(client);
    }
}
