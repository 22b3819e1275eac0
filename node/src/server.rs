//! `cairn node`: open the data dir, start the groups, serve peers, HTTP and gRPC,
//! and shut down cleanly when `shutdown` resolves.

use std::future::{Future, IntoFuture};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use anyhow::Context;
use cairn_cluster_config::ClusterConfig;
use cairn_crypto::{AdminToken, MasterKey};
use cairn_raft::server::PeerService;
use cairn_raft::RaftNode;
use cairn_storage::{Engine, NodeIdentity};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::grpc::{KvService, SessionsService, TenantAdminService, TokensService, UsersService};
use crate::keyring::MasterKeys;
use crate::service::{Services, ServicesConfig};

/// Runs node `id` of `cfg` until `shutdown` resolves, then stops accepting requests,
/// finishes the ones in flight, stops Raft and flushes the database.
///
/// # Errors
/// Refused config, secrets or data dir; a port already in use; a storage failure.
pub async fn run(
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

    // Bind every port before starting Raft so a port conflict fails fast.
    let peer_listener = TcpListener::bind(&me.raft_addr)
        .await
        .with_context(|| format!("binding raft_addr {}", me.raft_addr))?;
    let http_listener = TcpListener::bind(&me.http_addr)
        .await
        .with_context(|| format!("binding http_addr {}", me.http_addr))?;
    let grpc_listener = TcpListener::bind(&me.grpc_addr)
        .await
        .with_context(|| format!("binding grpc_addr {}", me.grpc_addr))?;

    let cfg = Arc::new(cfg);
    let raft = RaftNode::start(&cfg, id, &engine).await?;
    let services = Services::new(ServicesConfig {
        raft: Arc::clone(&raft),
        cfg: Arc::clone(&cfg),
        admin,
        node_id: id,
        engine: engine.clone(),
        masters,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let peer_task = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(PeerService::new(Arc::clone(&raft)))
            .serve_with_incoming_shutdown(
                tokio_stream_listener(peer_listener),
                stopped(stop_rx.clone()),
            ),
    );
    let (client_stop_tx, client_stop_rx) = watch::channel(false);
    let grpc_task = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(KvService::server(services.clone()))
            .add_service(TenantAdminService::server(services.clone()))
            .add_service(UsersService::server(services.clone()))
            .add_service(SessionsService::server(services.clone()))
            .add_service(TokensService::server(services.clone()))
            .serve_with_incoming_shutdown(
                tokio_stream_listener(grpc_listener),
                stopped(client_stop_rx.clone()),
            ),
    );
    let http_task = tokio::spawn(
        axum::serve(
            http_listener,
            crate::http::router(services)
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(client_stop_rx))
        .into_future(),
    );
    tracing::info!(
        node = id,
        raft = %me.raft_addr,
        http = %me.http_addr,
        grpc = %me.grpc_addr,
        "node serving"
    );

    shutdown.await;
    tracing::info!(node = id, "shutting down: draining client requests");
    let _ = client_stop_tx.send(true);
    if let Ok(Err(e)) = http_task.await {
        tracing::warn!(error = %e, "http server");
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

fn tokio_stream_listener(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let conn = listener.accept().await.map(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            stream
        });
        Some((conn, listener))
    })
}
