//! Serves the HTTP router over the connections of the HTTP port's accept loop
//! (TLS or, on loopback only, plaintext), one hyper HTTP/1.1 connection each,
//! bounding what one client can hold:
//!
//! - a request head must arrive within the header timeout, counted from its
//!   first byte (a client sending one byte a second is cut off there);
//! - a whole request, answer included, within the request timeout;
//! - a keep-alive connection with no request in flight and no bytes moving is
//!   closed after the idle timeout.
//!
//! hyper's own header timer also runs while a kept-alive connection waits for
//! its next request, which would make the idle timeout the header timeout; so
//! both are kept here, per connection, by a [`Watch`] that the connection's I/O
//! and its requests report to. HSTS is sent when TLS is on.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::Router;
use cairn_raft::listener::Conn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower::ServiceExt;

use super::problem::Problem;

pub(crate) struct Options {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// Send `Strict-Transport-Security` (TLS is on).
    pub hsts: bool,
}

/// Serves until `shutdown` resolves, then stops accepting, lets the requests in
/// flight finish and closes every connection.
pub(crate) async fn serve(
    mut conns: mpsc::Receiver<Conn>,
    router: Router,
    opts: Options,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timeout is the watch's (see the module doc).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            () = &mut shutdown => break,
            conn = conns.recv() => match conn {
                Some(conn) => conn,
                None => break,
            },
        };
        let remote: SocketAddr = conn.info().remote;
        let watch = Arc::new(Watch::new());
        let router = router.clone();
        let request_timeout = opts.request_timeout;
        let hsts = opts.hsts;
        let requests = Arc::clone(&watch);
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                let router = router.clone();
                let in_flight = InFlight::start(Arc::clone(&requests));
                async move {
                    let answer = tokio::time::timeout(
                        request_timeout,
                        router.oneshot(req.map(axum::body::Body::new)),
                    )
                    .await;
                    drop(in_flight);
                    let mut response = match answer {
                        Ok(Ok(r)) => r,
                        Ok(Err(never)) => match never {},
                        Err(_) => Problem::new(
                            503,
                            "request_timeout",
                            "the request did not complete within the server's request timeout",
                        )
                        .into_response(),
                    };
                    if hsts {
                        response.headers_mut().insert(
                            axum::http::header::STRICT_TRANSPORT_SECURITY,
                            axum::http::HeaderValue::from_static("max-age=31536000"),
                        );
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
        let io = Watched {
            inner: conn,
            watch: Arc::clone(&watch),
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let watched = graceful.watch(connection);
        let (header, idle) = (opts.header_read_timeout, opts.idle_timeout);
        tokio::spawn(async move {
            tokio::select! {
                ended = watched => if let Err(e) = ended {
                    tracing::debug!(%remote, error = %e, "http connection ended with an error");
                },
                why = watch.expired(header, idle) => {
                    // Dropping the connection closes it; nothing is in flight.
                    tracing::debug!(%remote, reason = why, "http connection closed");
                }
            }
        });
    }
    drop(conns);
    graceful.shutdown().await;
}

/// What one connection is doing, as its I/O and its requests report it.
struct Watch {
    state: Mutex<WatchState>,
    /// Wakes [`Watch::expired`] when a head starts (its deadline is nearer).
    head_started: tokio::sync::Notify,
}

struct WatchState {
    /// Requests being answered.
    in_flight: usize,
    /// When the first byte of a request head not yet complete arrived.
    head_since: Option<Instant>,
    /// When bytes last moved or a request last ended.
    last_activity: Instant,
}

impl Watch {
    fn new() -> Self {
        Self {
            state: Mutex::new(WatchState {
                in_flight: 0,
                head_since: None,
                last_activity: Instant::now(),
            }),
            head_started: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: with no request in flight they begin a request head.
    fn read(&self) {
        let now = Instant::now();
        let mut s = self.state();
        s.last_activity = now;
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(now);
            drop(s);
            self.head_started.notify_one();
        }
    }

    fn wrote(&self) {
        self.state().last_activity = Instant::now();
    }

    /// Resolves when the connection should be closed: a head unfinished after
    /// `header`, or nothing in flight and nothing moving for `idle`.
    async fn expired(&self, header: Duration, idle: Duration) -> &'static str {
        loop {
            let now = Instant::now();
            let next = {
                let s = self.state();
                if s.in_flight > 0 {
                    // The request timeout bounds a request; look again then.
                    now + idle
                } else if let Some(since) = s.head_since {
                    if now >= since + header {
                        return "request head not complete within the header timeout";
                    }
                    since + header
                } else {
                    if now >= s.last_activity + idle {
                        return "idle timeout";
                    }
                    s.last_activity + idle
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = self.head_started.notified() => {}
            }
        }
    }
}

/// A request being answered, from its complete head to its answer.
struct InFlight(Arc<Watch>);

impl InFlight {
    fn start(watch: Arc<Watch>) -> Self {
        {
            let mut s = watch.state();
            s.in_flight += 1;
            s.head_since = None;
        }
        Self(watch)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.last_activity = Instant::now();
    }
}

/// A connection whose reads and writes report to its [`Watch`].
struct Watched {
    inner: Conn,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
