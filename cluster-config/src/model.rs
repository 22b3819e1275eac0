//! The TOML model of the cluster config (`deny_unknown_fields`) and its validation into a checked config.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ConfigError, ConfigErrors};
use crate::placement::{self, GroupSpec};
use crate::rate_limits::{RateLimits, RawRateLimits};

/// Where a region's data may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Residency {
    /// A legal pin: no replica, snapshot or log entry of the region's data leaves its nodes.
    Hard,
    /// Placed in the region in practice; may borrow nodes from other regions.
    BestEffort,
}

impl Residency {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::BestEffort => "best-effort",
        }
    }
}

/// Raft timing and log-compaction settings. Defaults live in [`Default`], in one place.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot once this many entries were applied since the last one.
    /// A snapshot reads, encodes and stores the group's whole state (a 9.4 MB
    /// group took 0.3-0.5 s per node, every node at the same index, and stalled
    /// writes for as long), so the default, like etcd's `--snapshot-count`, is
    /// 100,000: the log behind it is cheap to keep on disk, and lagging followers
    /// catch up from it.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log behind the snapshot (lets slightly lagging followers
    /// catch up from the log rather than by snapshot).
    pub max_logs_kept_after_snapshot: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_logs_since_last: 100_000,
            max_logs_kept_after_snapshot: 1_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub name: String,
    pub residency: Residency,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub id: u64,
    pub region: String,
    /// Address other nodes use for Raft traffic and internal forwarding (gRPC).
    pub raft_addr: String,
    /// Client HTTP JSON API.
    pub http_addr: String,
    /// Client gRPC API.
    pub grpc_addr: String,
    /// Relative paths are resolved against the config file's directory.
    pub data_dir: PathBuf,
    /// This node's certificate chain (PEM): served on all three ports and
    /// presented to peers. Required unless `[tls] insecure_plaintext`.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM), mode 0600 or stricter.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

/// `[tls]`: the cluster CA, and whether plaintext is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    /// PEM bundle of the CAs trusted for every port and every peer (two during a
    /// CA rollover). Its key, for `cairn certs`, is `ca-key.pem` beside it.
    pub ca_file: Option<PathBuf>,
    /// Serve every port in plaintext. Allowed only when every address is loopback.
    pub insecure_plaintext: bool,
}

/// `[limits]`: what one client may hold of a server. Defaults in [`Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A connection's request head (and its TLS handshake) must arrive within this.
    pub http_header_read_timeout_ms: u64,
    /// A whole HTTP request, body and answer included.
    pub http_request_timeout_ms: u64,
    /// A keep-alive connection with no request in flight is closed after this.
    pub http_idle_timeout_ms: u64,
    /// Open HTTP connections; past it, new ones are closed at accept.
    pub http_max_connections: usize,
    pub grpc_max_message_bytes: usize,
    pub grpc_max_concurrent_streams: u32,
    pub grpc_keepalive_timeout_ms: u64,
    /// Open peer connections (the peer port has its own accept loop and cap, so
    /// clients can never starve Raft).
    pub peer_max_connections: usize,
    /// The most generations a refresh token older than its session's current
    /// one is walked forward (one HMAC each) to prove it genuine, and so its
    /// use reuse. Older tokens are refused as invalid without the walk.
    pub refresh_proof_walk_max: u64,
    /// Password hashes one tenant may have waiting on a node; past it, sign-ins
    /// and password changes answer 503 `overloaded`.
    pub argon2_queue_per_tenant: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            http_header_read_timeout_ms: 10_000,
            http_request_timeout_ms: 30_000,
            http_idle_timeout_ms: 60_000,
            http_max_connections: 4096,
            grpc_max_message_bytes: 4_194_304,
            grpc_max_concurrent_streams: 256,
            grpc_keepalive_timeout_ms: 20_000,
            peer_max_connections: 64,
            refresh_proof_walk_max: 10_000,
            argon2_queue_per_tenant: 64,
        }
    }
}

/// `[http]`: how the client ports read a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// How many reverse proxies in front of the nodes append to
    /// `X-Forwarded-For`: the client's address is the one that many hops before
    /// the connection's peer. 0 (the default): the header is ignored, since
    /// anyone can send it.
    pub trusted_proxy_hops: u32,
}

impl HttpConfig {
    /// The most proxy hops a config may trust.
    pub const MAX_TRUSTED_PROXY_HOPS: u32 = 16;
}

/// `[breached_passwords]`: the k-anonymity range service that tenants with
/// `breached_password_check` check new passwords against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreachedPasswords {
    /// `GET {range_url}/range/{first 5 hex of SHA-1}`; none: no check.
    pub range_url: Option<String>,
    pub timeout_ms: u64,
    /// When the service fails: refuse the password (true) or accept it.
    pub fail_closed: bool,
    /// The CAs an `https` range URL is verified with (e.g. the system bundle).
    pub ca_file: Option<PathBuf>,
}

impl Default for BreachedPasswords {
    fn default() -> Self {
        Self {
            range_url: None,
            timeout_ms: 2000,
            fail_closed: false,
            ca_file: None,
        }
    }
}

/// `[debug]`: switches for tests. Never enable them in production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// Serves `POST /v1/debug/partition`, which makes this node drop its peer
    /// traffic with chosen nodes (the chaos harness's network partitions).
    #[serde(default)]
    pub fault_injection: bool,
}

/// The config file as written. Turn it into a [`ClusterConfig`] with [`RawConfig::validate`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub cluster_name: String,
    pub replication_factor: usize,
    /// 32-byte cluster master key (KEK); mode 0600 or stricter.
    pub master_key_file: PathBuf,
    /// Operator bearer token for admin calls; mode 0600 or stricter.
    pub admin_token_file: PathBuf,
    /// Home region of tenants that name none; defaults to the first region.
    #[serde(default)]
    pub default_region: Option<String>,
    #[serde(default)]
    pub raft: RaftTuning,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub http: HttpConfig,
    /// `[rate_limits.<action>.<scope>]`: overrides of the default buckets.
    #[serde(default)]
    pub rate_limits: RawRateLimits,
    #[serde(default)]
    pub breached_passwords: BreachedPasswords,
    /// Test-only switches (`[debug]`); all off by default.
    #[serde(default)]
    pub debug: DebugConfig,
    #[serde(default)]
    pub regions: Vec<RawRegion>,
    #[serde(default)]
    pub nodes: Vec<RawNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionConfig {
    pub name: String,
    pub residency: Residency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: u64,
    pub region: String,
    pub raft_addr: String,
    pub http_addr: String,
    pub grpc_addr: String,
    pub data_dir: PathBuf,
    /// `None` only when the cluster runs in plaintext.
    pub tls: Option<NodeTls>,
}

/// One node's certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The cluster's TLS settings, when TLS is on (it is unless the config says
/// `insecure_plaintext = true`, on loopback only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca_file: PathBuf,
}

impl TlsConfig {
    /// Where `cairn certs` keeps the CA's key: `ca-key.pem` beside `ca_file`.
    #[must_use]
    pub fn ca_key_file(&self) -> PathBuf {
        self.ca_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("ca-key.pem")
    }
}

/// A validated cluster config. Only [`RawConfig::validate`] constructs one.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub cluster_name: String,
    pub replication_factor: usize,
    pub master_key_file: PathBuf,
    pub admin_token_file: PathBuf,
    pub default_region: String,
    pub raft: RaftTuning,
    /// `None`: plaintext (every address is loopback and the config said so).
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub http: HttpConfig,
    pub rate_limits: RateLimits,
    pub breached_passwords: BreachedPasswords,
    pub debug: DebugConfig,
    pub regions: Vec<RegionConfig>,
    pub nodes: Vec<NodeConfig>,
    groups: Vec<GroupSpec>,
}

impl ClusterConfig {
    /// Reads, parses and validates a config file. Relative paths in it are resolved
    /// against the file's directory.
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            path: Some(shown.clone()),
            errors: vec![ConfigError::new("<file>", format!("cannot read: {e}"))],
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&text, base).map_err(|mut e| {
            e.path = Some(shown);
            e
        })
    }

    /// Parses and validates config text; `base` resolves relative paths.
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigErrors {
            path: None,
            errors: vec![ConfigError::new(
                "<toml>",
                e.to_string().trim_end().replace('\n', " "),
            )],
        })?;
        raw.validate(base)
    }

    #[must_use]
    pub fn node(&self, id: u64) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }

    #[must_use]
    pub fn region(&self, name: &str) -> Option<&RegionConfig> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// The Raft groups of the cluster: `meta` first, then one per region.
    #[must_use]
    pub fn groups(&self) -> &[GroupSpec] {
        &self.groups
    }

    #[must_use]
    pub fn group(&self, id: crate::GroupId) -> Option<&GroupSpec> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The data group that holds a region's data.
    #[must_use]
    pub fn region_group(&self, region: &str) -> Option<&GroupSpec> {
        self.groups
            .iter()
            .find(|g| g.region.as_deref() == Some(region))
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The host of a `host:port` address (an IPv6 address without its brackets).
#[must_use]
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether `addr`'s host is a loopback address (127.0.0.0/8, ::1, localhost).
#[must_use]
pub fn is_loopback(addr: &str) -> bool {
    let host = host_of(addr);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn valid_addr(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

impl RawConfig {
    /// Validates the config, resolving relative paths against `base`.
    ///
    /// # Errors
    /// Every problem found, each naming its field.
    #[allow(clippy::too_many_lines)] // one flat list of rules reads best
    pub fn validate(self, base: &Path) -> Result<ClusterConfig, ConfigErrors> {
        let mut errs = Vec::new();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        if !valid_name(&self.cluster_name) {
            errs.push(ConfigError::new(
                "cluster_name",
                "must be 1-63 characters of a-z, 0-9, '-' or '_'",
            ));
        }
        if self.replication_factor == 0 {
            errs.push(ConfigError::new("replication_factor", "must be at least 1"));
        }
        if self.master_key_file.as_os_str().is_empty() {
            errs.push(ConfigError::new("master_key_file", "must not be empty"));
        }
        if self.admin_token_file.as_os_str().is_empty() {
            errs.push(ConfigError::new("admin_token_file", "must not be empty"));
        }

        let t = &self.raft;
        if t.heartbeat_interval_ms == 0 {
            errs.push(ConfigError::new(
                "raft.heartbeat_interval_ms",
                "must be at least 1",
            ));
        }
        if t.election_timeout_min_ms <= t.heartbeat_interval_ms {
            errs.push(ConfigError::new(
                "raft.election_timeout_min_ms",
                format!(
                    "must be greater than raft.heartbeat_interval_ms ({})",
                    t.heartbeat_interval_ms
                ),
            ));
        }
        if t.election_timeout_max_ms <= t.election_timeout_min_ms {
            errs.push(ConfigError::new(
                "raft.election_timeout_max_ms",
                format!(
                    "must be greater than raft.election_timeout_min_ms ({})",
                    t.election_timeout_min_ms
                ),
            ));
        }
        if t.snapshot_logs_since_last == 0 {
            errs.push(ConfigError::new(
                "raft.snapshot_logs_since_last",
                "must be at least 1",
            ));
        }

        if self.regions.is_empty() {
            errs.push(ConfigError::new(
                "regions",
                "at least one [[regions]] is required",
            ));
        }
        let mut region_index: HashMap<&str, usize> = HashMap::new();
        for (i, r) in self.regions.iter().enumerate() {
            if !valid_name(&r.name) {
                errs.push(ConfigError::new(
                    format!("regions[{i}].name"),
                    format!(
                        "{:?} must be 1-63 characters of a-z, 0-9, '-' or '_'",
                        r.name
                    ),
                ));
            }
            if let Some(first) = region_index.insert(&r.name, i) {
                errs.push(ConfigError::new(
                    format!("regions[{i}].name"),
                    format!("duplicate region {:?} (also regions[{first}])", r.name),
                ));
            }
        }

        if self.nodes.is_empty() {
            errs.push(ConfigError::new(
                "nodes",
                "at least one [[nodes]] is required",
            ));
        }
        let mut ids: HashMap<u64, usize> = HashMap::new();
        let mut addrs: HashMap<&str, String> = HashMap::new();
        let mut dirs: HashMap<PathBuf, usize> = HashMap::new();
        let mut per_region: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.id == 0 {
                errs.push(ConfigError::new(
                    format!("nodes[{i}].id"),
                    "must be at least 1",
                ));
            }
            if let Some(first) = ids.insert(n.id, i) {
                errs.push(ConfigError::new(
                    format!("nodes[{i}].id"),
                    format!("duplicate node id {} (also nodes[{first}])", n.id),
                ));
            }
            if region_index.contains_key(n.region.as_str()) {
                *per_region.entry(&n.region).or_default() += 1;
            } else {
                errs.push(ConfigError::new(
                    format!("nodes[{i}].region"),
                    format!("unknown region {:?}: not declared in [[regions]]", n.region),
                ));
            }
            for (field, addr) in [
                ("raft_addr", &n.raft_addr),
                ("http_addr", &n.http_addr),
                ("grpc_addr", &n.grpc_addr),
            ] {
                let name = format!("nodes[{i}].{field}");
                if !valid_addr(addr) {
                    errs.push(ConfigError::new(
                        name.clone(),
                        format!("{addr:?} is not a host:port address"),
                    ));
                }
                if let Some(first) = addrs.insert(addr.as_str(), name.clone()) {
                    errs.push(ConfigError::new(
                        name,
                        format!("duplicate address {addr} (also {first})"),
                    ));
                }
            }
            if n.data_dir.as_os_str().is_empty() {
                errs.push(ConfigError::new(
                    format!("nodes[{i}].data_dir"),
                    "must not be empty",
                ));
            } else if let Some(first) = dirs.insert(resolve(&n.data_dir), i) {
                errs.push(ConfigError::new(
                    format!("nodes[{i}].data_dir"),
                    format!(
                        "duplicate data_dir {} (also nodes[{first}])",
                        n.data_dir.display()
                    ),
                ));
            }
        }

        let plaintext = self.tls.insecure_plaintext;
        if plaintext {
            if self.tls.ca_file.is_some() {
                errs.push(ConfigError::new(
                    "tls.ca_file",
                    "set together with tls.insecure_plaintext = true: choose one",
                ));
            }
            for (i, n) in self.nodes.iter().enumerate() {
                for (field, addr) in [
                    ("raft_addr", &n.raft_addr),
                    ("http_addr", &n.http_addr),
                    ("grpc_addr", &n.grpc_addr),
                ] {
                    if valid_addr(addr) && !is_loopback(addr) {
                        errs.push(ConfigError::new(
                            format!("nodes[{i}].{field}"),
                            format!(
                                "{addr} is not a loopback address: plaintext \
                                 (tls.insecure_plaintext = true) is allowed only when every \
                                 address is loopback; configure [tls] ca_file and each \
                                 node's tls_cert_file and tls_key_file"
                            ),
                        ));
                    }
                }
                if n.tls_cert_file.is_some() || n.tls_key_file.is_some() {
                    errs.push(ConfigError::new(
                        format!("nodes[{i}].tls_cert_file"),
                        "set together with tls.insecure_plaintext = true: choose one",
                    ));
                }
            }
        } else {
            if self
                .tls
                .ca_file
                .as_ref()
                .is_none_or(|p| p.as_os_str().is_empty())
            {
                errs.push(ConfigError::new(
                    "tls.ca_file",
                    "required: every port serves TLS (plaintext needs \
                     tls.insecure_plaintext = true, and only loopback addresses)",
                ));
            }
            for (i, n) in self.nodes.iter().enumerate() {
                for (field, file) in [
                    ("tls_cert_file", &n.tls_cert_file),
                    ("tls_key_file", &n.tls_key_file),
                ] {
                    if file.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                        errs.push(ConfigError::new(
                            format!("nodes[{i}].{field}"),
                            "required: every port serves TLS (or set \
                             tls.insecure_plaintext = true, loopback only)",
                        ));
                    }
                }
            }
        }
        let l = &self.limits;
        for (field, value) in [
            (
                "limits.http_header_read_timeout_ms",
                l.http_header_read_timeout_ms,
            ),
            ("limits.http_request_timeout_ms", l.http_request_timeout_ms),
            ("limits.http_idle_timeout_ms", l.http_idle_timeout_ms),
            ("limits.http_max_connections", l.http_max_connections as u64),
            (
                "limits.grpc_max_message_bytes",
                l.grpc_max_message_bytes as u64,
            ),
            (
                "limits.grpc_max_concurrent_streams",
                u64::from(l.grpc_max_concurrent_streams),
            ),
            (
                "limits.grpc_keepalive_timeout_ms",
                l.grpc_keepalive_timeout_ms,
            ),
            ("limits.peer_max_connections", l.peer_max_connections as u64),
        ] {
            if value == 0 {
                errs.push(ConfigError::new(field, "must be at least 1"));
            }
        }

        if self.replication_factor > self.nodes.len() && !self.nodes.is_empty() {
            errs.push(ConfigError::new(
                "replication_factor",
                format!(
                    "{} is larger than the number of nodes ({})",
                    self.replication_factor,
                    self.nodes.len()
                ),
            ));
        }
        for (i, r) in self.regions.iter().enumerate() {
            let count = per_region.get(r.name.as_str()).copied().unwrap_or(0);
            if r.residency == Residency::Hard && count < self.replication_factor {
                errs.push(ConfigError::new(
                    format!("regions[{i}]"),
                    format!(
                        "region {} is hard-pinned but has {count} node(s); needs {} \
                         (the replication factor) of its own",
                        r.name, self.replication_factor
                    ),
                ));
            }
        }

        let rate_limits = crate::rate_limits::validate(&self.rate_limits, &mut errs);
        let bp = &self.breached_passwords;
        if let Some(url) = &bp.range_url {
            let https = url.starts_with("https://");
            if !https && !url.starts_with("http://") {
                errs.push(ConfigError::new(
                    "breached_passwords.range_url",
                    "must be an http:// or https:// URL",
                ));
            }
            if https && bp.ca_file.is_none() {
                errs.push(ConfigError::new(
                    "breached_passwords.ca_file",
                    "an https range_url needs the CAs to verify it with",
                ));
            }
        }
        if !(1..=60_000).contains(&bp.timeout_ms) {
            errs.push(ConfigError::new(
                "breached_passwords.timeout_ms",
                "must be 1-60000",
            ));
        }
        if !(1..=100_000).contains(&self.limits.argon2_queue_per_tenant) {
            errs.push(ConfigError::new(
                "limits.argon2_queue_per_tenant",
                "must be 1-100000",
            ));
        }
        if !(1..=1_000_000).contains(&self.limits.refresh_proof_walk_max) {
            errs.push(ConfigError::new(
                "limits.refresh_proof_walk_max",
                "must be 1-1000000",
            ));
        }

        if self.http.trusted_proxy_hops > HttpConfig::MAX_TRUSTED_PROXY_HOPS {
            errs.push(ConfigError::new(
                "http.trusted_proxy_hops",
                format!(
                    "{} hops; at most {}",
                    self.http.trusted_proxy_hops,
                    HttpConfig::MAX_TRUSTED_PROXY_HOPS
                ),
            ));
        }

        let default_region = match &self.default_region {
            Some(name) if !region_index.contains_key(name.as_str()) => {
                errs.push(ConfigError::new(
                    "default_region",
                    format!("unknown region {name:?}: not declared in [[regions]]"),
                ));
                String::new()
            }
            Some(name) => name.clone(),
            None => self
                .regions
                .first()
                .map(|r| r.name.clone())
                .unwrap_or_default(),
        };

        if !errs.is_empty() {
            return Err(ConfigErrors {
                path: None,
                errors: errs,
            });
        }

        let regions: Vec<RegionConfig> = self
            .regions
            .into_iter()
            .map(|r| RegionConfig {
                name: r.name,
                residency: r.residency,
            })
            .collect();
        let nodes: Vec<NodeConfig> = self
            .nodes
            .into_iter()
            .map(|n| NodeConfig {
                data_dir: resolve(&n.data_dir),
                id: n.id,
                region: n.region,
                raft_addr: n.raft_addr,
                http_addr: n.http_addr,
                grpc_addr: n.grpc_addr,
                tls: match (&n.tls_cert_file, &n.tls_key_file) {
                    (Some(cert), Some(key)) if !plaintext => Some(NodeTls {
                        cert_file: resolve(cert),
                        key_file: resolve(key),
                    }),
                    _ => None,
                },
            })
            .collect();
        let groups = placement::place(&regions, &nodes, self.replication_factor);
        Ok(ClusterConfig {
            cluster_name: self.cluster_name,
            replication_factor: self.replication_factor,
            master_key_file: resolve(&self.master_key_file),
            admin_token_file: resolve(&self.admin_token_file),
            default_region,
            raft: self.raft,
            tls: match &self.tls.ca_file {
                Some(ca) if !plaintext => Some(TlsConfig {
                    ca_file: resolve(ca),
                }),
                _ => None,
            },
            limits: self.limits,
            http: self.http,
            rate_limits,
            breached_passwords: BreachedPasswords {
                ca_file: self.breached_passwords.ca_file.as_deref().map(resolve),
                ..self.breached_passwords.clone()
            },
            debug: self.debug,
            regions,
            nodes,
            groups,
        })
    }
}
