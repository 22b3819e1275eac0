//! Secure transport from a client's side: TLS on every client port (HSTS,
//! plaintext refused cleanly), certificate rotation on SIGHUP without losing a
//! leader, what a slow or flooding client can hold (the header timeout, the
//! connection cap), and the key-file mode check at start.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use cairn_tests::cluster::{ClusterClient, TestCluster, TLS_CA, TOKEN};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A TLS client of the cluster's HTTP ports, trusting only its CA (the config
/// the CLI's own connections use).
fn connector(c: &TestCluster) -> TlsConnector {
    let config = cairn_raft::tls::client_config(&c.dir.path().join(TLS_CA), &[b"http/1.1"])
        .expect("the cluster CA");
    TlsConnector::from(config)
}

/// A TLS connection to `addr` (`127.0.0.1:port`), verified against the CA.
async fn tls_connect(tls: &TlsConnector, addr: &str) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    tls.connect(name, tcp).await.expect("TLS handshake")
}

/// Sends one HTTP/1.1 request on `conn` and reads its whole answer (the API
/// always sends a `Content-Length`).
async fn request(conn: &mut TlsStream<TcpStream>, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: node\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "connection closed before the answer");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

/// Every group's leader and term, as node 1 sees them.
async fn leaders(c: &ClusterClient) -> Vec<(Option<u64>, Option<u64>)> {
    let s = c.status(1).await;
    s["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["leader"].as_u64(), g["term"].as_u64()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_every_client_port_and_plaintext_refused_cleanly() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    assert_eq!(c.scheme(), "https");
    c.put_ok(2, "t", "k", "v").await;
    assert_eq!(
        c.get_value(3, "t", "k").await.expect("present")["value"],
        "v"
    );

    let r = c
        .client()
        .get(c.url(1, "/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(r.status().is_success());
    let hsts = r
        .headers()
        .get("strict-transport-security")
        .expect("HSTS when TLS is on");
    assert!(hsts.to_str().expect("text").starts_with("max-age="));

    // gRPC over TLS: the KV service answers.
    let mut kv = c.grpc(1).await;
    let mut req = tonic::Request::new(cairn_tests::proto::GetRequest {
        key: "k".to_owned(),
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    req.metadata_mut()
        .insert("x-tenant", "t".parse().expect("header"));
    let got = kv.get(req).await.expect("grpc get over TLS").into_inner();
    assert_eq!(got.value, "v");

    // Plaintext to every TLS port: the connection fails, nothing more.
    let logged_before = c.log(1).len();
    let addrs = {
        let node = &c.nodes()[0];
        [node.http.clone(), node.grpc.clone(), node.raft.clone()]
    };
    for addr in &addrs {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        let _ = tcp
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(15), tcp.read(&mut buf))
            .await
            .expect("the node ends a plaintext connection");
        if let Ok(n) = read {
            assert!(
                !String::from_utf8_lossy(&buf[..n]).contains("200 OK"),
                "{addr} answered plaintext"
            );
        }
    }
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", addrs[0]))
        .send()
        .await;
    assert!(plain.is_err() || !plain.expect("answer").status().is_success());

    // The node goes on serving, and said nothing at error level about it.
    c.put_ok(1, "t", "k2", "v2").await;
    let log = c.log(1).split_off(logged_before);
    assert!(
        !log.lines().any(|l| l.contains("ERROR")),
        "no error-level line for plaintext probes:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_on_sighup_keeps_the_leader() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let tls = connector(&c);
    let meta_leader = c.leader(1, "meta").await;
    let term = |s: &serde_json::Value| s["term"].as_u64().expect("term");
    let meta_term = term(&c.group_status(meta_leader, "meta").await);

    let http1 = c.nodes()[0].http.clone();
    let served = |conn: &TlsStream<TcpStream>| {
        conn.get_ref()
            .1
            .peer_certificates()
            .expect("server certificate")[0]
            .as_ref()
            .to_vec()
    };
    let before = served(&tls_connect(&tls, &http1).await);
    let mut kept = tls_connect(&tls, &http1).await;
    assert!(request(&mut kept, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // A new certificate for node 1 from the same CA, then SIGHUP.
    let (cert, key) = TestCluster::tls_files(1);
    std::fs::remove_file(c.dir.path().join(&cert)).expect("remove cert");
    std::fs::remove_file(c.dir.path().join(&key)).expect("remove key");
    let _ = c.cli_ok(&["certs", "add", "--id", "1"]);
    let on_disk = CertificateDer::from_pem_file(c.dir.path().join(&cert))
        .expect("new cert")
        .as_ref()
        .to_vec();
    assert_ne!(before, on_disk);
    assert!(c.signal(1, "HUP"), "SIGHUP node 1");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if served(&tls_connect(&tls, &http1).await) == on_disk {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 never served its new certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the reload still works; so do the peers
    // (node 1's new certificate towards them) and every port.
    assert!(request(&mut kept, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    for i in 0..10 {
        c.put_ok(1 + i % 3, "t", &format!("after-{i}"), "v").await;
    }
    let meta = c.group_status(meta_leader, "meta").await;
    assert_eq!(
        meta["leader"].as_u64(),
        Some(meta_leader),
        "meta kept its leader"
    );
    assert_eq!(term(&meta), meta_term, "no election: {meta}");
    assert!(c.log(1).contains("reloaded"), "the reload is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_at_the_header_timeout() {
    let mut c = TestCluster::new(
        3,
        "[limits]\nhttp_header_read_timeout_ms = 1500\nhttp_idle_timeout_ms = 60000\n",
    );
    c.boot().await;
    let tls = connector(&c);
    let http1 = c.nodes()[0].http.clone();

    // One header byte a second: the head never completes in 1.5 s.
    let mut slow = tls_connect(&tls, &http1).await;
    let started = Instant::now();
    let closed_after = loop {
        let byte =
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[(started.elapsed().as_secs() as usize) % 30];
        if slow.write_all(&[byte]).await.is_err() || slow.flush().await.is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break started.elapsed(),
            Ok(Ok(n)) => panic!("the node answered a head it never got: {:?}", &buf[..n]),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the slow client is still connected after 15 s"
        );
    };
    assert!(
        closed_after >= Duration::from_millis(1400),
        "closed before the header timeout: {closed_after:?}"
    );

    // A keep-alive connection that sits idle between requests is no slow
    // client: it outlives the header timeout.
    let mut idle = tls_connect(&tls, &http1).await;
    assert!(request(&mut idle, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(request(&mut idle, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_past_the_cap_changes_no_leader() {
    let mut c = TestCluster::new(3, "[limits]\nhttp_max_connections = 64\n");
    c.boot().await;
    let tls = connector(&c);
    let http1 = c.nodes()[0].http.clone();
    let before = leaders(&c).await;

    let mut kept = tls_connect(&tls, &http1).await;
    assert!(request(&mut kept, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));

    // Twice the cap: raw TCP connections that never handshake, held open.
    let mut flood = Vec::new();
    for _ in 0..128 {
        if let Ok(s) = TcpStream::connect(&http1).await {
            flood.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Past the cap, new connections are closed at accept.
    let mut extra = TcpStream::connect(&http1).await.expect("connect");
    let mut buf = [0u8; 16];
    // (Well before the 10 s handshake deadline that would end it otherwise.)
    let n = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buf))
        .await
        .expect("closed at accept, not left hanging")
        .unwrap_or(0);
    assert_eq!(n, 0, "a connection past the cap is closed");

    // The connection opened before the flood still answers, the node still
    // writes, and no group changed its leader.
    assert!(request(&mut kept, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    drop(flood);
    c.put_ok(2, "t", "after-flood", "v").await;
    assert_eq!(leaders(&c).await, before);
    assert!(c.is_running(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_key_file_readable_by_others() {
    let mut c = TestCluster::new(3, "");
    let (_, key) = TestCluster::tls_files(2);
    std::fs::set_permissions(
        c.dir.path().join(&key),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    c.start(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = c.exited(2) {
            break status;
        }
        assert!(Instant::now() < deadline, "node 2 started with a 0644 key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let log = c.log(2);
    assert!(
        log.contains(&key) && (log.contains("0600") || log.contains("mode")),
        "the error names the file and its mode:\n{log}"
    );
}
