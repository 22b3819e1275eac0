//! A short chaos run in the default suite: 3 nodes, a fixed seed, 20 s of kills,
//! pauses, partitions and whole-cluster restarts under load; the history must be
//! linearizable. The full run is `scripts/chaos.sh --duration 2m`.

use std::time::Duration;

use cairn_tests::chaos::{run, ChaosConfig, Fault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_finds_no_violation() {
    let cfg = ChaosConfig {
        seed: 7,
        duration: Duration::from_secs(20),
        nodes: 3,
        clients: 8,
        faults: vec![
            Fault::Kill,
            Fault::Pause,
            Fault::Partition,
            Fault::RestartAll,
        ],
        keys: 5,
    };
    let report = run(&cfg).await;
    let summary = report.summary();
    println!("{summary}");
    assert!(report.ok > 0, "the workload made progress: {summary}");
    assert!(report.faults.values().sum::<usize>() > 0, "{summary}");
    assert!(report.violations.is_empty(), "{summary}");
}
