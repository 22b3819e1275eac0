//! The cluster the `api` tests share: one 3-node cluster per test process,
//! booted by the first test that asks for it and used by all the others, each
//! in a tenant of its own (tenant isolation is what makes sharing safe; a test
//! that needs a tenant setting sets it on its own tenant). Tests that stop,
//! pause, cut off or restart nodes own their clusters instead (`faults`).
//!
//! The cluster lives in a `static`, which is never dropped: its nodes die with
//! the test process through their watchdogs ([`crate::process`]), and a janitor
//! process removes its directory the same way (set
//! `CAIRN_KEEP_SHARED_CLUSTER_DIR=1` to keep it, with the node logs).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::cluster::{ClusterClient, TestCluster};

/// The shared cluster. Only hands out [`ClusterClient`]s: each test talks to
/// it through clients of its own runtime.
pub struct SharedCluster {
    cluster: TestCluster,
    /// Holds the janitor's stdin: it closes when this process ends.
    _janitor: Option<Child>,
}

static SHARED: OnceLock<SharedCluster> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The shared cluster, booted on first use.
///
/// # Panics
/// If it cannot be booted.
pub fn shared() -> &'static SharedCluster {
    SHARED.get_or_init(|| {
        // Booting awaits, and the caller is some test's runtime, which must not
        // be blocked on from inside: a thread with a runtime of its own.
        std::thread::spawn(boot)
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn boot() -> SharedCluster {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut cluster = TestCluster::new(3, "");
    let janitor = if std::env::var_os("CAIRN_KEEP_SHARED_CLUSTER_DIR").is_some() {
        eprintln!("shared cluster in {}", cluster.dir.path().display());
        None
    } else {
        Some(janitor(cluster.dir.path()))
    };
    rt.block_on(cluster.boot());
    SharedCluster {
        cluster,
        _janitor: janitor,
    }
}

/// A process that removes `dir` once this process ends (its stdin, a pipe from
/// here, reads end-of-file), after the nodes' watchdogs have killed them.
fn janitor(dir: &Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(r#"read -r _; sleep 1; rm -rf -- "$0""#)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the shared cluster's janitor")
}

impl SharedCluster {
    /// A client of the shared cluster for the calling test's runtime.
    #[must_use]
    pub fn client(&self) -> ClusterClient {
        self.cluster.fresh()
    }
}

/// `name` made unique in this process (`name-<n>`): tenant names, emails and
/// keys that no other test on the shared cluster uses.
#[must_use]
pub fn unique(name: &str) -> String {
    format!("{name}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}
