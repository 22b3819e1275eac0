//! `cairn node`: open the data dir, start the groups, serve peers, HTTP and gRPC
//! on listeners bound beforehand, and shut down cleanly when `shutdown` resolves.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cairn_cluster_config::{ClusterConfig, NodeConfig};
use cairn_crypto::{AdminToken, MasterKey};
use cairn_raft::listener::{self, AcceptOptions};
use cairn_raft::server::PeerService;
use cairn_raft::tls::{Port, Tls, TlsFiles};
use cairn_raft::RaftNode;
use cairn_storage::{Engine, NodeIdentity};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::grpc::{KvRpc, SessionsRpc, TenantAdminRpc, TokensRpc, UsersRpc};
use crate::service::{MasterKeys, Services, ServicesConfig};

/// A node's three ports, bound before anything else starts so that a port
/// conflict fails fast (and so that tests can bind port 0 and read the address).
pub struct Listeners {
    /// Client HTTP (`http_addr`).
    pub http: TcpListener,
    /// Client gRPC (`grpc_addr`).
    pub grpc: TcpListener,
    /// Raft peers (`raft_addr`).
    pub peer: TcpListener,
}

impl Listeners {
    /// Binds node `id`'s `raft_addr`, `http_addr` and `grpc_addr` from `cfg`.
    ///
    /// # Errors
    /// `id` is not in the config, or an address does not bind (in use, invalid).
    pub async fn bind(cfg: &ClusterConfig, id: u64) -> anyhow::Result<Self> {
        let me = cfg
            .node(id)
            .with_context(|| format!("node id {id} is not in the config's [[nodes]]"))?;
        let peer = TcpListener::bind(&me.raft_addr)
            .await
            .with_context(|| format!("binding raft_addr {}", me.raft_addr))?;
        let http = TcpListener::bind(&me.http_addr)
            .await
            .with_context(|| format!("binding http_addr {}", me.http_addr))?;
        let grpc = TcpListener::bind(&me.grpc_addr)
            .await
            .with_context(|| format!("binding grpc_addr {}", me.grpc_addr))?;
        Ok(Self { http, grpc, peer })
    }
}

/// Runs node `id` of `cfg` on `listeners` until `shutdown` resolves, then stops
/// accepting requests, finishes the ones in flight, stops Raft and flushes the
/// database.
///
/// # Errors
/// Refused config, secrets or data dir; a storage failure.
pub async fn run(
    listeners: Listeners,
    cfg: ClusterConfig,
    id: u64,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let me = cfg
        .node(id)
        .with_context(|| format!("node id {id} is not in the config's [[nodes]]"))?
        .clone();
    // Secrets first: a node with a bad key file must not start at all.
    let masters = MasterKeys::new(MasterKey::load(&cfg.master_key_file).context("master key")?);
    let admin = AdminToken::load(&cfg.admin_token_file).context("admin token")?;

    std::fs::create_dir_all(&me.data_dir)
        .with_context(|| format!("creating data dir {}", me.data_dir.display()))?;
    std::fs::set_permissions(&me.data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", me.data_dir.display()))?;
    let engine = Engine::open(&me.data_dir)
        .with_context(|| format!("opening data dir {}", me.data_dir.display()))?;
    let identity = NodeIdentity {
        cluster_name: cfg.cluster_name.clone(),
        node_id: id,
        groups: cfg
            .groups()
            .iter()
            .map(|g| (g.id.0, g.name.clone()))
            .collect(),
    };
    let fresh = engine.claim(&identity)?;
    tracing::info!(fingerprint = masters.configured(), "master key loaded");
    load_staged_master_keys(&engine, &masters);
    tracing::info!(
        node = id,
        data_dir = %me.data_dir.display(),
        fresh,
        "data dir claimed"
    );
    let Listeners {
        http: http_listener,
        grpc: grpc_listener,
        peer: peer_listener,
    } = listeners;

    let tls = load_tls(&cfg, &me)?;
    let cfg = Arc::new(cfg);
    let raft = RaftNode::start(&cfg, id, &engine, tls.as_ref()).await?;
    let services = Services::new(ServicesConfig {
        raft: Arc::clone(&raft),
        cfg: Arc::clone(&cfg),
        admin,
        node_id: id,
        engine: engine.clone(),
        masters,
    })?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let limits = cfg.limits;
    let handshake_timeout = Duration::from_millis(limits.http_header_read_timeout_ms);
    let accept = |listener, port, max_connections| {
        listener::accept(
            listener,
            AcceptOptions {
                port,
                tls: tls.clone(),
                max_connections,
                handshake_timeout,
            },
        )
    };

    // The peer port has its own accept loop and cap: clients never starve Raft.
    let peer_task = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(PeerService::new(Arc::clone(&raft), tls.is_some()))
            .serve_with_incoming_shutdown(
                listener::into_stream(accept(
                    peer_listener,
                    Port::Peer,
                    limits.peer_max_connections,
                )),
                stopped(stop_rx.clone()),
            ),
    );
    let (client_stop_tx, client_stop_rx) = watch::channel(false);
    let max_message = limits.grpc_max_message_bytes;
    let grpc_routes = grpc_routes(&services, max_message);
    // Requests other nodes relay here (for a hard region this node is in) are
    // served by the same routers, without their relay layers.
    raft.serve_relays(Arc::new(crate::relay::RelayServer {
        http: crate::http::relayed_router(services.clone()),
        grpc: grpc_routes.clone(),
    }));
    let grpc_task = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .max_concurrent_streams(Some(limits.grpc_max_concurrent_streams))
            .http2_keepalive_interval(Some(Duration::from_millis(
                limits.grpc_keepalive_timeout_ms,
            )))
            .http2_keepalive_timeout(Some(Duration::from_millis(
                limits.grpc_keepalive_timeout_ms,
            )))
            // A message and its 5-byte frame header.
            .layer(tower::util::option_layer(
                crate::grpc::relay::RelayLayer::new(&raft, max_message + 5),
            ))
            .add_routes(grpc_routes)
            .serve_with_incoming_shutdown(
                listener::into_stream(accept(
                    grpc_listener,
                    Port::Grpc,
                    limits.http_max_connections,
                )),
                stopped(client_stop_rx.clone()),
            ),
    );
    let (workers_stop_tx, workers_stop_rx) = watch::channel(false);
    let workers = crate::workers::spawn(services.core(), &workers_stop_rx);
    let http_task = tokio::spawn(crate::http::serve::serve(
        accept(http_listener, Port::Http, limits.http_max_connections),
        crate::http::router(services),
        crate::http::serve::Options {
            header_read_timeout: handshake_timeout,
            request_timeout: Duration::from_millis(limits.http_request_timeout_ms),
            idle_timeout: Duration::from_millis(limits.http_idle_timeout_ms),
            hsts: tls.is_some(),
        },
        stopped(client_stop_rx),
    ));
    let reload_task = tls.clone().map(|tls| tokio::spawn(reload_on_sighup(tls)));
    tracing::info!(node = id, raft = %me.raft_addr, http = %me.http_addr, grpc = %me.grpc_addr, "node serving");

    shutdown.await;
    tracing::info!(node = id, "shutting down: draining client requests");
    let _ = workers_stop_tx.send(true);
    let _ = client_stop_tx.send(true);
    for worker in workers {
        // Mid-write is a safe place to stop: every change is one command, and
        // the log decides it whole or not at all.
        worker.abort();
        let _ = worker.await;
    }
    let _ = http_task.await;
    if let Some(task) = reload_task {
        task.abort();
    }
    if let Ok(Err(e)) = grpc_task.await {
        tracing::warn!(error = %e, "grpc server");
    }
    raft.shutdown().await;
    let _ = stop_tx.send(true);
    if let Ok(Err(e)) = peer_task.await {
        tracing::warn!(error = %e, "peer server");
    }
    engine.flush().context("flushing the database")?;
    tracing::info!(node = id, "stopped");
    Ok(())
}

/// The client gRPC services, each decoding messages up to `max_message` bytes.
fn grpc_routes(services: &Services, max_message: usize) -> tonic::service::Routes {
    tonic::service::Routes::new(
        KvRpc::server(services.clone()).max_decoding_message_size(max_message),
    )
    .add_service(TenantAdminRpc::server(services.clone()).max_decoding_message_size(max_message))
    .add_service(UsersRpc::server(services.clone()).max_decoding_message_size(max_message))
    .add_service(SessionsRpc::server(services.clone()).max_decoding_message_size(max_message))
    .add_service(TokensRpc::server(services.clone()).max_decoding_message_size(max_message))
}

/// Adds the master keys staged by rotations (their paths are recorded in the
/// data dir) to the node's keys. A staged file that no longer loads is logged, not
/// fatal: it is only needed if the cluster's current master key is that one, and
/// then every request needing it fails with `master_key_unavailable`, naming its
/// fingerprint.
fn load_staged_master_keys(engine: &Engine, masters: &MasterKeys) {
    match engine.staged_master_key_files() {
        Ok(paths) => {
            for path in paths {
                match MasterKey::load(&path) {
                    Ok(key) => {
                        let fingerprint = masters.add(key);
                        tracing::info!(%fingerprint, path = %path.display(), "staged master key loaded");
                    }
                    Err(e) => tracing::warn!(error = %e, "staged master key file does not load"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading the staged master key file names"),
    }
}

/// This node's TLS material, or `None` (with a warning) in loopback plaintext.
fn load_tls(cfg: &ClusterConfig, me: &NodeConfig) -> anyhow::Result<Option<Arc<Tls>>> {
    let (Some(tls), Some(files)) = (&cfg.tls, &me.tls) else {
        tracing::warn!(
            "TLS is off (tls.insecure_plaintext = true): every port of this node, the \
             peer port included, is plaintext and unauthenticated; loopback only"
        );
        return Ok(None);
    };
    let members = cfg.nodes.iter().map(|n| n.id).collect();
    let loaded = Tls::load(
        &cfg.cluster_name,
        members,
        TlsFiles {
            ca_file: tls.ca_file.clone(),
            cert_file: files.cert_file.clone(),
            key_file: files.key_file.clone(),
        },
    )
    .context("TLS")?;
    tracing::info!(ca = %tls.ca_file.display(), cert = %files.cert_file.display(), "TLS on every port");
    Ok(Some(Arc::new(loaded)))
}

/// Reloads the certificate, key and CA bundle on every SIGHUP: new connections
/// use them, open ones finish on the old. A reload that fails keeps the old.
async fn reload_on_sighup(tls: Arc<Tls>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: TLS reload unavailable");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate, key and CA bundle reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP: TLS reload failed; the previous material stays in use");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::*;

    const TOKEN: &str = "in-process-admin-token-0123456789abcdef";

    /// A one-node cluster's config, on these (already bound) addresses.
    fn config(dir: &Path, peer: SocketAddr, http: SocketAddr, grpc: SocketAddr) -> ClusterConfig {
        for (name, bytes) in [
            ("master.key", &[7u8; 32][..]),
            ("admin.token", TOKEN.as_bytes()),
        ] {
            let p = dir.join(name);
            std::fs::write(&p, bytes).expect("write secret");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let text = format!(
            "cluster_name = \"in-process\"\nreplication_factor = 1\n\
             master_key_file = \"master.key\"\nadmin_token_file = \"admin.token\"\n\
             [[regions]]\nname = \"local\"\nresidency = \"hard\"\n\
             [[nodes]]\nid = 1\nregion = \"local\"\nraft_addr = \"{peer}\"\n\
             http_addr = \"{http}\"\ngrpc_addr = \"{grpc}\"\ndata_dir = \"node-1\"\n\
             [tls]\ninsecure_plaintext = true\n"
        );
        ClusterConfig::parse(&text, dir).expect("config")
    }

    async fn bind(addr: &str) -> TcpListener {
        TcpListener::bind(addr).await.expect("bind")
    }

    /// Starts node 1 in this process on `listeners`; the sender stops it.
    fn start(
        dir: &Path,
        listeners: Listeners,
    ) -> (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
        String,
    ) {
        let addr = |l: &TcpListener| l.local_addr().expect("local addr");
        let cfg = config(
            dir,
            addr(&listeners.peer),
            addr(&listeners.http),
            addr(&listeners.grpc),
        );
        let base = format!("http://{}", addr(&listeners.http));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let node = tokio::spawn(run(listeners, cfg, 1, async {
            let _ = rx.await;
        }));
        (tx, node, base)
    }

    async fn wait_ready(client: &reqwest::Client, base: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `run` serves on listeners bound beforehand (port 0 here), stops serving
    /// when its shutdown future resolves, and returns having flushed the
    /// database: a node started again on the same data dir reads what the
    /// first one acknowledged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_runs_in_process_and_shuts_down_cleanly_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let listeners = Listeners {
            http: bind("127.0.0.1:0").await,
            grpc: bind("127.0.0.1:0").await,
            peer: bind("127.0.0.1:0").await,
        };
        let addrs = [&listeners.http, &listeners.grpc, &listeners.peer]
            .map(|l| l.local_addr().expect("local addr").to_string());
        let (stop, node, base) = start(dir.path(), listeners);

        let init = client
            .post(format!("{base}/v1/cluster/init"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("init");
        assert_eq!(init.status(), 200);
        wait_ready(&client, &base).await;
        let created: Value = client
            .post(format!("{base}/v1/admin/tenants"))
            .bearer_auth(TOKEN)
            .json(&json!({ "name": "acme" }))
            .send()
            .await
            .expect("create tenant")
            .json()
            .await
            .expect("tenant json");
        let api_key = created["api_key"].as_str().expect("api key").to_owned();
        let put = client
            .put(format!("{base}/v1/kv/color"))
            .bearer_auth(&api_key)
            .json(&json!({ "value": "blue" }))
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), 200);
        let written: Value = put.json().await.expect("put json");

        stop.send(()).expect("node still running");
        tokio::time::timeout(Duration::from_secs(30), node)
            .await
            .expect("run returns after shutdown")
            .expect("join")
            .expect("a clean stop");
        assert!(
            tokio::net::TcpStream::connect(&addrs[0]).await.is_err(),
            "the HTTP port is closed once run returned"
        );

        // The same data dir and ports, a new node: the write is there.
        let listeners = Listeners {
            http: bind(&addrs[0]).await,
            grpc: bind(&addrs[1]).await,
            peer: bind(&addrs[2]).await,
        };
        let (stop, node, base) = start(dir.path(), listeners);
        wait_ready(&client, &base).await;
        let read: Value = client
            .get(format!("{base}/v1/kv/color"))
            .bearer_auth(&api_key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("get json");
        assert_eq!(read, written, "what the first run acknowledged survives it");
        stop.send(()).expect("node still running");
        node.await.expect("join").expect("a clean stop");
    }
}
