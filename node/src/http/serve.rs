//! Serves the HTTP router over the connections of the HTTP port's accept loop
//! (TLS or, on loopback only, plaintext), one hyper HTTP/1.1 connection each,
//! bounding what one client can hold: the request head must arrive within the
//! header timeout (hyper's timer also runs while a keep-alive connection waits
//! for its next request, so an idle connection is closed after it too), and a
//! whole request within the request timeout. HSTS is sent when TLS is on.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::Router;
use cairn_raft::listener::Conn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::mpsc;
use tower::ServiceExt;

use super::problem::Problem;

pub(crate) struct Options {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
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
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
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
        let router = router.clone();
        let request_timeout = opts.request_timeout;
        let hsts = opts.hsts;
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                let router = router.clone();
                async move {
                    let answer = tokio::time::timeout(
                        request_timeout,
                        router.oneshot(req.map(axum::body::Body::new)),
                    )
                    .await;
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
        let connection = builder.serve_connection(TokioIo::new(conn), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%remote, error = %e, "http connection ended with an error");
            }
        });
    }
    drop(conns);
    graceful.shutdown().await;
}
