//! The load's connections: keep-alive HTTP/1.1, spoken directly over the socket.
//!
//! The driver shares the machine with the nodes it measures, so each microsecond
//! it spends on a request is taken from them, and it weighs more on a cheap
//! request (a linearizable get) than on a dear one (a durable put). A general
//! client (hyper's) hands every request and answer through channels and body
//! streams between tasks; here a request is one prepared buffer written with one
//! call, and the answer is read into a reused buffer and parsed in place with
//! `httparse`, as `wrk` does. On this 2-core machine under `kv-get`, hyper's
//! client took ~27 % of the CPU; with this one, gets ran 22–35 % faster
//! (interleaved runs on fresh clusters).
//!
//! Only what Cairn's API sends is understood: a final status, headers and a
//! `Content-Length` body. Anything else (a chunked body, an informational
//! answer, an answer without a length, bytes beyond the answer) is an error,
//! never a success, and the connection is dropped.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use cairn_raft::listener::Io;
use futures::FutureExt as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// Longest one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer head, and largest body, accepted.
const MAX_ANSWER: usize = 1 << 20;

/// Most headers an answer may carry (Cairn sends fewer than a dozen).
const MAX_HEADERS: usize = 32;

/// An answer read in full.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// One keep-alive connection to a node, opened on first use and again after an
/// error (its state is then unknown) or when the node asked to close it.
pub(super) struct Conn {
    addr: String,
    /// With TLS: the connector (trusting the cluster CA) and the name the
    /// node's certificate must carry (its address's host).
    tls: Option<(TlsConnector, ServerName<'static>)>,
    stream: Option<Box<dyn Io>>,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// The request being sent (its allocation reused).
    req: Vec<u8>,
}

impl Conn {
    /// A connection to `addr`, which is also its requests' `Host`, over TLS
    /// when `tls` is given.
    pub(super) fn new(addr: &str, tls: Option<TlsConnector>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            is_token(addr),
            "node address {addr:?} cannot be a Host header"
        );
        let tls = match tls {
            Some(connector) => {
                let name = cairn_raft::tls::server_name(addr).map_err(|e| anyhow!(e))?;
                Some((connector, name))
            }
            None => None,
        };
        Ok(Self {
            addr: addr.to_owned(),
            tls,
            stream: None,
            buf: BytesMut::with_capacity(8192),
            req: Vec::with_capacity(512),
        })
    }

    /// Sends one request and reads the whole answer. `authorization` is the
    /// header's whole value; a `body` is sent as JSON.
    pub(super) async fn send(
        &mut self,
        method: &str,
        path: &str,
        authorization: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.exchange(method, path, authorization, body),
        )
        .await
        .unwrap_or_else(|_| Err(anyhow!("timed out")));
        if answer.is_err() {
            self.stream = None;
        }
        answer
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        authorization: &str,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Answer> {
        if let Some(stream) = &mut self.stream {
            // Between answers a kept-alive connection must be silent: a close
            // means reconnect; bytes nobody asked for would pass for the next
            // request's answer. (One poll: nothing ready is the usual case.)
            match stream.read_buf(&mut self.buf).now_or_never() {
                None => {}
                Some(Ok(0)) => self.stream = None,
                Some(Ok(_)) => bail!("the node sent bytes between answers"),
                Some(Err(e)) => return Err(e.into()),
            }
        }
        if self.stream.is_none() {
            let tcp = TcpStream::connect(&self.addr).await?;
            tcp.set_nodelay(true)?;
            let stream: Box<dyn Io> = match &self.tls {
                Some((connector, name)) => Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .with_context(|| format!("TLS handshake with {}", self.addr))?,
                ),
                None => Box::new(tcp),
            };
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().context("no connection")?;
        self.req.clear();
        write_request(&mut self.req, method, path, &self.addr, authorization, body)?;
        stream.write_all(&self.req).await?;
        let head = loop {
            if let Some(head) = parse_head(&self.buf)? {
                if self.buf.len() >= head.len + head.content_length {
                    break head;
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8192);
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                bail!("connection closed by the node");
            }
        };
        let mut answer = self.buf.split_to(head.len + head.content_length);
        if !self.buf.is_empty() {
            bail!("the node sent bytes beyond its answer");
        }
        if head.close {
            self.stream = None;
        }
        Ok(Answer {
            status: head.status,
            body: answer.split_off(head.len).freeze(),
        })
    }
}

/// Whether `s` can stand in a request line or a header as one word: no space
/// to split the line, no control character to end the header early.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Appends the request: `Host` is the node's address (checked by
/// [`Conn::new`]); a body comes with its type and length.
fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    authorization: &str,
    body: Option<&[u8]>,
) -> anyhow::Result<()> {
    // The header value may hold spaces ("Bearer …"), nothing else may.
    let value = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    anyhow::ensure!(
        is_token(method) && is_token(path) && value(authorization),
        "request line or header with spaces or control characters"
    );
    write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n"
    )?;
    match body {
        Some(body) => {
            write!(
                out,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"\r\n"),
    }
    Ok(())
}

/// An answer's head: its length in bytes, and what it says of the body and the
/// connection.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    len: usize,
    status: u16,
    content_length: usize,
    close: bool,
}

/// The head at the start of `buf`, or `None` if it has not all arrived.
fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(buf).context("unreadable answer")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() > MAX_ANSWER => bail!("answer head too large"),
        httparse::Status::Partial => return Ok(None),
    };
    let status = answer.code.context("answer without a status")?;
    if status < 200 {
        bail!("unexpected informational answer {status}");
    }
    // Cairn speaks HTTP/1.1; a 1.0 connection is closed after each answer.
    let mut close = answer.version != Some(1);
    let mut content_length = None;
    for h in answer.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let digits = h.value.trim_ascii();
            let n: usize = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(digits).ok()?.parse().ok())
                .flatten()
                .context("unreadable Content-Length")?;
            if content_length.is_some_and(|m| m != n) {
                bail!("conflicting Content-Length headers");
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("answers with a Transfer-Encoding are not supported");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= h
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let content_length = match content_length {
        // Never a body, whatever length a 304 names (RFC 9112 §6.3).
        _ if matches!(status, 204 | 304) => 0,
        Some(n) if n > MAX_ANSWER => bail!("answer body too large ({n} bytes)"),
        Some(n) => n,
        None => bail!("answer without a Content-Length"),
    };
    Ok(Some(Head {
        len,
        status,
        content_length,
        close,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"a\":\"bcd\"}";

    #[test]
    fn parses_a_whole_head_and_waits_for_a_partial_one() {
        let head = parse_head(OK).expect("parse").expect("complete");
        assert_eq!(
            head,
            Head {
                len: OK.len() - 11,
                status: 200,
                content_length: 11,
                close: false
            }
        );
        for cut in [0, 1, 10, head.len - 1] {
            assert_eq!(parse_head(&OK[..cut]).expect("parse"), None, "cut at {cut}");
        }
        // The head alone is enough to know the body's length.
        assert_eq!(
            parse_head(&OK[..head.len]).expect("parse"),
            Some(head),
            "head without its body"
        );
    }

    #[test]
    fn reads_connection_close_and_bodiless_statuses() {
        let h = parse_head(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: keep-alive, Close\r\n\r\n{}")
            .expect("parse")
            .expect("complete");
        assert_eq!((h.status, h.content_length, h.close), (503, 2, true));
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .expect("parse")
            .expect("complete");
        assert_eq!((h.status, h.content_length, h.close), (204, 0, false));
        let h = parse_head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 120\r\n\r\n")
            .expect("parse")
            .expect("complete");
        assert_eq!((h.status, h.content_length), (304, 0), "a 304 has no body");
        let h = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .expect("parse")
            .expect("complete");
        assert!(h.close, "HTTP/1.0 closes after the answer");
    }

    #[test]
    fn refuses_what_it_cannot_read_to_its_end() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"SMTP 220 hello\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn writes_one_request_and_refuses_header_injection() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "PUT",
            "/v1/kv/a",
            "127.0.0.1:1",
            "Bearer k",
            Some(b"{}"),
        )
        .expect("write");
        assert_eq!(
            out,
            b"PUT /v1/kv/a HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        out.clear();
        write_request(&mut out, "GET", "/v1/kv/a", "h", "Bearer k", None).expect("write");
        assert!(out.ends_with(b"Authorization: Bearer k\r\n\r\n"));
        for (path, auth) in [
            ("/a\r\nX: y", "Bearer k"),
            ("/a", "Bearer k\r\nX: y"),
            ("/a", ""),
            ("/a HTTP/1.0", "Bearer k"),
        ] {
            assert!(write_request(&mut out, "GET", path, "h", auth, None).is_err());
        }
        for addr in ["", "127.0.0.1:1\r\nX: y", "127.0.0.1 :1"] {
            assert!(Conn::new(addr, None).is_err(), "accepted {addr:?}");
        }
    }

    /// A node that accepts one connection, reads one request, then sends
    /// `parts` 50 ms apart and closes the connection.
    async fn node_sending(parts: &'static [&'static [u8]]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut req = vec![0u8; 4096];
            let _ = s.read(&mut req).await;
            for part in parts {
                let _ = s.write_all(part).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        addr
    }

    /// A node that answers in fragments, then asks to close: the driver reads
    /// each answer whole, and opens a new connection after the close.
    #[tokio::test]
    async fn reads_fragmented_answers_and_reconnects_after_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(async move {
            let mut accepted = 0;
            for last in [false, true] {
                let (mut s, _) = listener.accept().await.expect("accept");
                accepted += 1;
                let mut req = vec![0u8; 4096];
                let n = s.read(&mut req).await.expect("read request");
                assert!(req[..n].starts_with(b"GET /x HTTP/1.1\r\n"));
                let close: &[u8] = if last { b"" } else { b"Connection: close\r\n" };
                let answer = [
                    &b"HTTP/1.1 200 OK\r\nContent-"[..],
                    b"Length: 5\r\n",
                    close,
                    b"\r\nhel",
                    b"lo",
                ];
                for part in answer {
                    s.write_all(part).await.expect("write");
                    s.flush().await.expect("flush");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            accepted
        });
        let mut conn = Conn::new(&addr, None).expect("conn");
        for _ in 0..2 {
            let a = conn
                .send("GET", "/x", "Bearer k", None)
                .await
                .expect("answer");
            assert_eq!((a.status, &a.body[..]), (200, &b"hello"[..]));
        }
        assert_eq!(
            server.await.expect("server"),
            2,
            "a new connection after the close"
        );
    }

    /// Bytes a node sends after a complete answer, unasked, fail the next
    /// request instead of passing for its answer.
    #[tokio::test]
    async fn bytes_between_answers_are_an_error() {
        let addr = node_sending(&[
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
        ])
        .await;
        let mut conn = Conn::new(&addr, None).expect("conn");
        let a = conn
            .send("GET", "/x", "Bearer k", None)
            .await
            .expect("answer");
        assert_eq!(&a.body[..], b"a");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let err = conn
            .send("GET", "/x", "Bearer k", None)
            .await
            .expect_err("the unasked answer is not this request's");
        assert!(err.to_string().contains("between answers"), "{err:#}");
    }

    /// A node that closes before its answer is complete fails the request.
    #[tokio::test]
    async fn an_answer_cut_short_is_an_error() {
        let addr = node_sending(&[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        let mut conn = Conn::new(&addr, None).expect("conn");
        let err = conn
            .send("GET", "/x", "Bearer k", None)
            .await
            .expect_err("cut short");
        assert!(err.to_string().contains("closed"), "{err:#}");
    }
}
