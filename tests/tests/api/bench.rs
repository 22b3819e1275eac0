//! `cairn bench` smoke runs against the shared cluster, in a tenant of their
//! own: each workload for 2 seconds (not a performance assertion: it must run,
//! succeed and report figures).

use cairn_tests::shared::unique;
use serde_json::Value;

use crate::Cx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_workloads_run_and_report_figures() {
    let cx = Cx::http();
    let tenant = unique("bench");
    for workload in ["kv-put", "kv-get", "kv-mixed", "signin", "refresh"] {
        let out = cx.cluster.cli_ok(&[
            "bench",
            "--workload",
            workload,
            "--tenant",
            &tenant,
            "--concurrency",
            "4",
            "--duration-secs",
            "2",
            "--warmup-secs",
            "0",
            "--users",
            "4",
            "--json",
            "-",
        ]);
        let start = out.find('{').expect("json in output");
        let end = out.rfind('}').expect("json in output");
        let figures: Value = serde_json::from_str(&out[start..=end]).expect("figures");
        assert!(figures["ok"].as_u64().unwrap_or(0) > 0, "{workload}: {out}");
        assert_eq!(figures["errors"], 0, "{workload}: {out}");
        assert!(figures["p99_ms"].as_f64().is_some(), "{workload}: {out}");
        assert!(out.contains("throughput"), "{workload}: {out}");
    }
}
