//! One accept loop per port: it caps the open connections (past the cap a new
//! connection is closed at accept), runs each TLS handshake in its own task under
//! a deadline (a slow handshake holds no other connection back), and on the peer
//! port admits only a certificate naming a current member. The servers (hyper,
//! tonic) read the accepted connections from a channel.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::tls::{Port, Tls};
use crate::types::NodeId;

/// A byte stream a server can run over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Who is at the other end of an accepted connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// On a TLS peer port: the member node the verified certificate names.
    /// `None` on client ports and in plaintext.
    pub peer: Option<NodeId>,
}

/// An accepted connection; it holds its slot under the cap until dropped.
pub struct Conn {
    io: Box<dyn Io>,
    info: ConnInfo,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    #[must_use]
    pub fn info(&self) -> ConnInfo {
        self.info
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info
    }
}

/// How one port accepts.
#[derive(Clone)]
pub struct AcceptOptions {
    pub port: Port,
    /// `None`: plaintext.
    pub tls: Option<Arc<Tls>>,
    pub max_connections: usize,
    /// A TLS handshake must complete within this.
    pub handshake_timeout: Duration,
}

/// Starts the accept loop of `listener`; accepted connections arrive on the
/// receiver. The loop ends when the receiver is dropped.
#[must_use]
pub fn accept(listener: TcpListener, opts: AcceptOptions) -> mpsc::Receiver<Conn> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(listener, opts, tx));
    rx
}

/// The accepted connections as a stream (for tonic).
pub fn into_stream(
    rx: mpsc::Receiver<Conn>,
) -> impl futures::Stream<Item = std::io::Result<Conn>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        let conn = rx.recv().await?;
        Some((Ok(conn), rx))
    })
}

async fn accept_loop(listener: TcpListener, opts: AcceptOptions, tx: mpsc::Sender<Conn>) {
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let mut last_full_warning: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: back off rather than spin.
                tracing::warn!(port = ?opts.port, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            let now = tokio::time::Instant::now();
            if last_full_warning.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
                last_full_warning = Some(now);
                tracing::warn!(
                    port = ?opts.port,
                    max = opts.max_connections,
                    "connection limit reached: new connections are closed at accept"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Some(tls) = opts.tls.clone() else {
            let conn = Conn {
                io: Box::new(stream),
                info: ConnInfo { remote, peer: None },
                _slot: slot,
            };
            if tx.send(conn).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        let port = opts.port;
        let deadline = opts.handshake_timeout;
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config(port));
            let stream = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    refused(port, remote, &format!("TLS handshake failed: {e}"));
                    return;
                }
                Err(_) => {
                    refused(
                        port,
                        remote,
                        "TLS handshake not done within the header timeout",
                    );
                    return;
                }
            };
            let peer = if port == Port::Peer {
                let leaf = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first());
                match leaf.map(|l| tls.member_of(l)) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(why)) => {
                        refused(port, remote, &why);
                        return;
                    }
                    None => {
                        refused(port, remote, "no client certificate");
                        return;
                    }
                }
            } else {
                None
            };
            let conn = Conn {
                io: Box::new(stream),
                info: ConnInfo { remote, peer },
                _slot: slot,
            };
            let _ = tx.send(conn).await;
        });
    }
}

/// A connection refused before any request: on the peer port always worth a
/// warning (someone without a member's certificate reached it); on client
/// ports only a debug line (scanners, plaintext probes, health checkers).
fn refused(port: Port, remote: SocketAddr, why: &str) {
    if port == Port::Peer {
        tracing::warn!(%remote, reason = why, "peer connection refused");
    } else {
        tracing::debug!(port = ?port, %remote, reason = why, "client connection refused");
    }
}
