//! The cluster harness: a [`TestCluster`] of real `cairn node` processes on
//! loopback ports with real data dirs in a temporary directory, and the
//! [`ClusterClient`] that talks to its nodes (HTTP helpers, gRPC channels, the
//! `cairn` CLI).
//!
//! A `reqwest` or `tonic` client belongs to the tokio runtime it first ran on
//! (its pooled connections are tasks of that runtime), and every `#[tokio::test]`
//! has a runtime of its own. So a test that owns its cluster uses the client the
//! cluster made ([`TestCluster`] derefs to it); a test on a cluster that outlives
//! it (the shared one) takes a [`ClusterClient::fresh`] one.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::api::{GrpcApi, HttpApi};
use crate::process::NodeProcess;
use crate::proto;

/// The operator's admin token in every test cluster.
pub const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

/// The cluster CA of a TLS test cluster, relative to its dir (its key is
/// `tls/ca-key.pem`, beside it).
pub const TLS_CA: &str = "tls/ca.pem";

/// How long a node gets to exit after SIGTERM.
const TERMINATE_GRACE: Duration = Duration::from_secs(15);

/// The `cairn` binary under test.
///
/// # Panics
/// If it cannot be found: build it first.
#[must_use]
pub fn cairn_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CAIRN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/cairn
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("cairn"))
        .expect("target dir");
    assert!(
        candidate.exists(),
        "{} not found: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        candidate.display()
    );
    candidate
}

/// `n` distinct free loopback ports (all held open until every one is chosen, so the
/// kernel cannot hand out the same port twice).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// One node's id and listen addresses.
#[derive(Debug, Clone)]
pub struct NodeAddrs {
    pub id: u64,
    pub raft: String,
    pub http: String,
    pub grpc: String,
}

/// Talks to a cluster's nodes: addresses, one HTTP client, the CLI. Cheap to
/// make; make one per runtime.
pub struct ClusterClient {
    nodes: Arc<[NodeAddrs]>,
    dir: PathBuf,
    config: PathBuf,
    bin: PathBuf,
    /// The cluster CA (PEM) when its ports speak TLS; `None` in plaintext.
    ca: Option<Arc<[u8]>>,
    client: reqwest::Client,
    /// Tenants `put` already made sure exist.
    tenants: Mutex<HashSet<String>>,
}

impl ClusterClient {
    fn new(
        nodes: Arc<[NodeAddrs]>,
        dir: PathBuf,
        config: PathBuf,
        bin: PathBuf,
        ca: Option<Arc<[u8]>>,
    ) -> Self {
        let client = http_client_builder(ca.as_deref())
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        Self {
            nodes,
            dir,
            config,
            bin,
            ca,
            client,
            tenants: Mutex::default(),
        }
    }

    /// A client of the same cluster with a new HTTP client, for another runtime.
    #[must_use]
    pub fn fresh(&self) -> Self {
        Self::new(
            Arc::clone(&self.nodes),
            self.dir.clone(),
            self.config.clone(),
            self.bin.clone(),
            self.ca.clone(),
        )
    }

    /// A `reqwest` builder that trusts this cluster's CA (when it speaks TLS),
    /// for a test that needs its own client settings.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        http_client_builder(self.ca.as_deref())
    }

    /// The cluster CA (PEM), if its ports speak TLS.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca.as_deref()
    }

    /// `https` when the cluster speaks TLS, else `http`.
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        if self.ca.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The API over HTTP, on this client's HTTP client.
    #[must_use]
    pub fn http_api(&self) -> HttpApi {
        HttpApi::new(self.client.clone(), self.scheme(), &self.nodes)
    }

    /// The API over gRPC, on new channels (connected on first use). Needs a
    /// runtime: a channel's worker is a task.
    #[must_use]
    pub fn grpc_api(&self) -> GrpcApi {
        GrpcApi::new(&self.nodes, self.ca.as_deref())
    }

    /// Every node's id and addresses, in config order.
    #[must_use]
    pub fn nodes(&self) -> &[NodeAddrs] {
        &self.nodes
    }

    #[must_use]
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    fn node(&self, id: u64) -> &NodeAddrs {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    /// The config file every node of this cluster runs with.
    #[must_use]
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    #[must_use]
    pub fn url(&self, id: u64, path: &str) -> String {
        format!("{}://{}{path}", self.scheme(), self.node(id).http)
    }

    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A gRPC KV client connected to node `id`.
    pub async fn grpc(&self, id: u64) -> proto::kv_client::KvClient<tonic::transport::Channel> {
        proto::kv_client::KvClient::new(self.grpc_channel(id).await)
    }

    /// A gRPC channel to node `id`, for any `cairn.v1` client (e.g.
    /// `proto::users_client::UsersClient::new(c.grpc_channel(1).await)`).
    pub async fn grpc_channel(&self, id: u64) -> tonic::transport::Channel {
        grpc_endpoint(&self.node(id).grpc, self.ca.as_deref())
            .connect()
            .await
            .expect("grpc connect")
    }

    /// Node `id`'s log (stdout and stderr of every start).
    #[must_use]
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.join(format!("node-{id}.log"))).unwrap_or_default()
    }

    /// Node `id`'s data dir.
    #[must_use]
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// Writes a secret file (mode `mode`) in the test dir; returns its path.
    #[must_use]
    pub fn write_file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).expect("write file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Runs `cairn <command> --config <this cluster's config>` and returns its output.
    #[must_use]
    pub fn cli(&self, command: &str) -> Output {
        self.cli_with(&[command])
    }

    /// Runs `cairn <args…> --config <this cluster's config>` and returns its output.
    #[must_use]
    pub fn cli_with(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap_or_else(|e| panic!("run cairn {args:?}: {e}"))
    }

    /// Runs `cairn <args…> --config …`, asserting success; returns stdout.
    #[must_use]
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli_with(args);
        assert!(
            out.status.success(),
            "cairn {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `cairn init` and returns its output.
    #[must_use]
    pub fn init(&self) -> Output {
        self.cli("init")
    }

    pub async fn wait_ready(&self, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(self.url(id, "/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {id} not ready in 30 s; log:\n{}",
                self.log(id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates tenant `name` through node `via` unless it exists; returns its
    /// first API key if this call created it.
    pub async fn create_tenant(&self, via: u64, name: &str) -> Option<String> {
        let resp = self
            .client
            .post(self.url(via, "/v1/admin/tenants"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("create tenant request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            201 => body["api_key"].as_str().map(str::to_owned),
            409 => None,
            _ => panic!("creating tenant {name}: {status} {body}"),
        }
    }

    async fn ensure_tenant(&self, via: u64, tenant: &str) {
        let known = self
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(tenant);
        if !known {
            self.create_tenant(via, tenant).await;
            self.tenants
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(tenant.to_owned());
        }
    }

    /// `PUT /v1/kv/{key}` through node `via`, as the operator for `tenant`
    /// (created first if this client has not made sure it exists).
    pub async fn put(&self, via: u64, tenant: &str, key: &str, value: &str) -> reqwest::Response {
        self.ensure_tenant(via, tenant).await;
        self.client
            .put(self.url(via, &format!("/v1/kv/{key}")))
            .bearer_auth(TOKEN)
            .header("x-tenant", tenant)
            .json(&serde_json::json!({ "value": value }))
            .send()
            .await
            .expect("put request")
    }

    pub async fn get(&self, via: u64, tenant: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(via, &format!("/v1/kv/{key}")))
            .bearer_auth(TOKEN)
            .header("x-tenant", tenant)
            .send()
            .await
            .expect("get request")
    }

    /// Writes until acknowledged (retrying only 503s, which guarantee nothing was
    /// applied or leave the outcome unknown for an idempotent put), returning the body.
    pub async fn put_ok(&self, via: u64, tenant: &str, key: &str, value: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.put(via, tenant, key, value).await;
            let status = r.status();
            if status.is_success() {
                return r.json().await.expect("json");
            }
            let body = r.text().await.unwrap_or_default();
            assert!(
                status == 503 && Instant::now() < deadline,
                "put {key} via {via}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads a key's value through node `via`, retrying 503s.
    pub async fn get_value(&self, via: u64, tenant: &str, key: &str) -> Option<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.get(via, tenant, key).await;
            match r.status().as_u16() {
                200 => return Some(r.json().await.expect("json")),
                404 => return None,
                503 if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                s => panic!(
                    "get {key} via {via}: {s} {}",
                    r.text().await.unwrap_or_default()
                ),
            }
        }
    }

    /// `/v1/cluster/status` of node `id`.
    pub async fn status(&self, id: u64) -> Value {
        self.client
            .get(self.url(id, "/v1/cluster/status"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("status request")
            .json()
            .await
            .expect("status json")
    }

    /// Node `id`'s status for the group named `name`.
    pub async fn group_status(&self, id: u64, name: &str) -> Value {
        let s = self.status(id).await;
        s["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["group"] == name).cloned())
            .unwrap_or_else(|| panic!("node {id} has no group {name}: {s}"))
    }

    /// The leader of group `name` as seen by node `via`, waiting for one.
    pub async fn leader(&self, via: u64, name: &str) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self.group_status(via, name).await["leader"].as_u64() {
                return l;
            }
            assert!(Instant::now() < deadline, "no leader for {name}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A cluster of `cairn node` processes this test owns: they die with it (see
/// [`crate::process`]), and so does its directory when it is dropped.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// `(name, residency)` of each region, in config order (region `i` holds the
    /// data group `i + 1`).
    pub regions: Vec<(String, String)>,
    nodes: Arc<[NodeAddrs]>,
    /// Each node's region, by position in `nodes`.
    node_regions: Vec<String>,
    /// The running (or exited, not yet forgotten) process of each node, by
    /// position in `nodes`.
    processes: Vec<Option<NodeProcess>>,
    bin: PathBuf,
    /// Whether the nodes speak TLS (the harness's default: every test cluster
    /// runs with a dev CA of its own, made by `cairn certs init`). A test that
    /// puts its own `[tls]` table in the extra TOML runs as it says.
    tls: bool,
    client: ClusterClient,
}

/// Everything that talks to the nodes (URLs, HTTP helpers, the CLI) is the
/// cluster's own [`ClusterClient`].
impl std::ops::Deref for TestCluster {
    type Target = ClusterClient;

    fn deref(&self) -> &ClusterClient {
        &self.client
    }
}

impl TestCluster {
    /// Writes a config for `n` nodes in one hard region, plus `extra_toml` (e.g. a
    /// `[raft]` table), and the key files. Starts nothing.
    #[must_use]
    pub fn new(n: u64, extra_toml: &str) -> Self {
        let layout: Vec<(u64, &str)> = (1..=n).map(|id| (id, "local")).collect();
        Self::with_regions(&[("local", "hard")], &layout, extra_toml)
    }

    /// Writes a config with these `(name, residency)` regions and `(id, region)`
    /// nodes (the first region is the default), plus `extra_toml`. Starts nothing.
    #[must_use]
    pub fn with_regions(
        regions: &[(&str, &str)],
        layout: &[(u64, &str)],
        extra_toml: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(layout.len() * 3);
        let nodes: Arc<[NodeAddrs]> = ports
            .chunks(3)
            .zip(layout.iter().map(|(id, _)| *id))
            .map(|(p, id)| NodeAddrs {
                id,
                raft: format!("127.0.0.1:{}", p[0]),
                http: format!("127.0.0.1:{}", p[1]),
                grpc: format!("127.0.0.1:{}", p[2]),
            })
            .collect();
        let write_secret = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).expect("write secret");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        };
        write_secret("master.key", &[42u8; 32]);
        write_secret("admin.token", TOKEN.as_bytes());
        let config = dir.path().join("cluster.toml");
        let bin = cairn_bin();
        let tls = !extra_toml.contains("[tls]");
        // Placeholder until the config and its certificates exist.
        let client = ClusterClient::new(
            Arc::clone(&nodes),
            dir.path().to_path_buf(),
            config.clone(),
            bin.clone(),
            None,
        );
        let mut cluster = Self {
            dir,
            config,
            regions: regions
                .iter()
                .map(|(r, res)| ((*r).to_owned(), (*res).to_owned()))
                .collect(),
            processes: nodes.iter().map(|_| None).collect(),
            nodes,
            node_regions: layout.iter().map(|(_, r)| (*r).to_owned()).collect(),
            bin,
            tls,
            client,
        };
        let text = cluster.config_text("test", extra_toml);
        std::fs::write(&cluster.config, text).expect("write config");
        let ca = tls.then(|| {
            let _ = cluster.cli_ok(&["certs", "init"]);
            let pem = std::fs::read(cluster.dir.path().join(TLS_CA)).expect("read the CA");
            Arc::<[u8]>::from(pem)
        });
        cluster.client = ClusterClient::new(
            Arc::clone(&cluster.nodes),
            cluster.dir.path().to_path_buf(),
            cluster.config.clone(),
            cluster.bin.clone(),
            ca,
        );
        cluster
    }

    /// Where node `id`'s certificate and key are (TLS clusters), relative to
    /// the test dir.
    #[must_use]
    pub fn tls_files(id: u64) -> (String, String) {
        (
            format!("tls/node-{id}.pem"),
            format!("tls/node-{id}-key.pem"),
        )
    }

    /// The config text for this cluster's nodes, under another cluster name if asked.
    #[must_use]
    pub fn config_text(&self, cluster_name: &str, extra_toml: &str) -> String {
        let rf = self.nodes.len().min(3);
        let mut t = format!(
            "cluster_name = \"{cluster_name}\"\nreplication_factor = {rf}\n\
             master_key_file = \"master.key\"\nadmin_token_file = \"admin.token\"\n\
             {extra_toml}\n"
        );
        for (name, residency) in &self.regions {
            let _ = write!(
                t,
                "[[regions]]\nname = \"{name}\"\nresidency = \"{residency}\"\n"
            );
        }
        for (n, region) in self.nodes.iter().zip(&self.node_regions) {
            let _ = write!(
                t,
                "[[nodes]]\nid = {}\nregion = \"{region}\"\nraft_addr = \"{}\"\nhttp_addr = \"{}\"\n\
                 grpc_addr = \"{}\"\ndata_dir = \"node-{}\"\n",
                n.id, n.raft, n.http, n.grpc, n.id
            );
            if self.tls {
                let (cert, key) = Self::tls_files(n.id);
                let _ = writeln!(t, "tls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\"");
            }
        }
        if self.tls {
            let _ = writeln!(t, "[tls]\nca_file = \"{TLS_CA}\"");
        }
        t
    }

    fn position(&self, id: u64) -> usize {
        self.nodes.iter().position(|n| n.id == id).expect("node id")
    }

    fn slot(&mut self, id: u64) -> &mut Option<NodeProcess> {
        let i = self.position(id);
        &mut self.processes[i]
    }

    fn process(&self, id: u64) -> Option<&NodeProcess> {
        self.processes[self.position(id)].as_ref()
    }

    /// Starts node `id` (appending to its log file in the test dir).
    pub fn start(&mut self, id: u64) {
        let log = self.dir.path().join(format!("node-{id}.log"));
        let id_text = id.to_string();
        let process = NodeProcess::spawn(
            &self.bin,
            &[
                "node".as_ref(),
                "--config".as_ref(),
                self.config.as_os_str(),
                "--id".as_ref(),
                id_text.as_ref(),
            ],
            &log,
            &[("RUST_LOG", "info,openraft=warn")],
        );
        // A node still running in this slot is killed (as dropping it does).
        *self.slot(id) = Some(process);
    }

    pub fn start_all(&mut self) {
        for id in self.ids() {
            self.start(id);
        }
    }

    /// Starts every node, initialises the cluster and waits until all are ready.
    pub async fn boot(&mut self) {
        self.start_all();
        self.init_ready().await;
    }

    /// Runs `cairn init` (asserting it succeeds) and waits until every node is
    /// ready.
    pub async fn init_ready(&self) {
        let out = self.init();
        assert!(
            out.status.success(),
            "cairn init failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for id in self.ids() {
            self.wait_ready(id).await;
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self, id: u64) {
        if let Some(p) = self.slot(id).take() {
            p.kill();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self, id: u64) -> bool {
        self.slot(id)
            .take()
            .is_some_and(|p| p.terminate(TERMINATE_GRACE))
    }

    /// Sends signal `sig` (`"STOP"`, `"CONT"`, …) to node `id`'s process; false if
    /// the node is not running.
    pub fn signal(&self, id: u64, sig: &str) -> bool {
        let Some(p) = self.process(id) else {
            return false;
        };
        Command::new("kill")
            .args([format!("-{sig}"), p.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Whether node `id` has a running process (started and not killed).
    #[must_use]
    pub fn is_running(&self, id: u64) -> bool {
        self.process(id).is_some()
    }

    /// Whether node `id`'s process has exited, and with what status.
    pub fn exited(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        self.slot(id).as_mut().and_then(NodeProcess::try_exit)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Before the directory goes: no node may write into it after that.
        self.processes.clear();
    }
}

/// Every file under `dir` (recursively) that contains `needle`.
#[must_use]
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path);
                }
            }
        }
    }
    hits
}

/// Opens a stopped node's RocksDB (`<data_dir>/db`) with every column family, to
/// inspect or tamper with what is on disk.
///
/// # Panics
/// If the database cannot be opened (e.g. the node is still running).
#[must_use]
pub fn open_db(data_dir: &Path) -> rocksdb::DB {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(false);
    rocksdb::DB::open_cf(
        &opts,
        data_dir.join("db"),
        ["raft_log", "raft_state", "sm", "snapshot", "node"],
    )
    .expect("open a stopped node's db")
}

/// A `reqwest` builder for a cluster: with `ca` (PEM), HTTPS only, trusting
/// exactly that CA.
fn http_client_builder(ca: Option<&[u8]>) -> reqwest::ClientBuilder {
    match ca {
        Some(ca) => cairn_node::cli::https_client_builder(ca).expect("the cluster CA"),
        None => reqwest::Client::builder(),
    }
}

/// A gRPC endpoint for a node's `addr`: over TLS trusting `ca` when given.
///
/// # Panics
/// An address that is not a URI authority.
#[must_use]
pub fn grpc_endpoint(addr: &str, ca: Option<&[u8]>) -> tonic::transport::Endpoint {
    let scheme = if ca.is_some() { "https" } else { "http" };
    let endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
        .expect("grpc address");
    match ca {
        Some(ca) => endpoint
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            )
            .expect("grpc TLS config"),
        None => endpoint,
    }
}
