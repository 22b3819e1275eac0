//! `cairn`: run a node, initialise a cluster, show its status, drive a benchmark.
//! Parses the command line and calls into the `cairn_node` library.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_node::cli;
use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: the request path makes many small,
/// short-lived allocations across threads (HTTP, RPC framing, futures), where
/// glibc spent ~12 % of a node's CPU under load (ARCHITECTURE, "What bounds
/// throughput").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn: a clustered, encrypted identity store"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node of the cluster.
    Node {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        id: u64,
    },
    /// Initialise a new cluster's Raft groups from the config, exactly once.
    /// Every node must be running.
    Init(cli::init::Args),
    /// Show every node's view of every group, as a table.
    Status(cli::status::Args),
    /// Load-test the KV API and print throughput and latency percentiles.
    Bench(cli::bench::Args),
    /// Rotate tenant data keys or the master key; show key versions.
    Keys(cli::keys::Args),
    /// Make a dev CA and node certificates at the paths the config names.
    Certs(cli::certs::Args),
    /// Snapshot every group on every node and purge the log behind it.
    Compact(cli::keys::CompactArgs),
    /// After a rolling upgrade: check that every node runs the new binary, then
    /// raise the cluster's log entry format (wire version) to it.
    FinalizeUpgrade(cli::upgrade::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Cmd::Node { config, id } => {
                let cfg = cairn_cluster_config::ClusterConfig::load(&config)?;
                let listeners = cairn_node::Listeners::bind(&cfg, id).await?;
                cairn_node::run(listeners, cfg, id, shutdown_signal()).await
            }
            Cmd::Init(args) => cli::init::run(args).await,
            Cmd::Status(args) => cli::status::run(args).await,
            Cmd::Bench(args) => cli::bench::run(args).await,
            Cmd::Keys(args) => cli::keys::run(args).await,
            Cmd::Compact(args) => cli::keys::compact(args).await,
            Cmd::Certs(args) => cli::certs::run(args),
            Cmd::FinalizeUpgrade(args) => cli::upgrade::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed here, when the
/// node starts, not when the future is first polled (after the node serves):
/// a SIGTERM that arrives while the node starts up — a supervisor or a test
/// that stops it as soon as `/healthz` answers — then shuts it down cleanly
/// instead of killing it with the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let (mut term, mut int) = match (term, int) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
