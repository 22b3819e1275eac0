//! `chaos`: run the chaos test (see `cairn_tests::chaos`) and print its summary.
//! Usage: chaos [--duration 2m|90s] [--seed N] [--nodes 3|5]
//!              [--faults kill,pause,partition,restart-all] [--clients 16] [--keys 5]
//! Exits 0 only if the history has no violation.

use std::process::ExitCode;
use std::time::Duration;

use cairn_tests::chaos::{run, ChaosConfig, Fault};

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration {s:?} (use 90s or 2m)")),
    }
}

fn parse(args: &[String]) -> Result<ChaosConfig, String> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 % 1_000_000);
    let mut cfg = ChaosConfig {
        seed,
        duration: Duration::from_secs(120),
        nodes: 3,
        clients: 16,
        faults: vec![
            Fault::Kill,
            Fault::Pause,
            Fault::Partition,
            Fault::RestartAll,
        ],
        keys: 5,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => cfg.duration = parse_duration(value)?,
            "--seed" => cfg.seed = value.parse().map_err(|_| format!("bad seed {value:?}"))?,
            "--nodes" => {
                cfg.nodes = match value.as_str() {
                    "3" => 3,
                    "5" => 5,
                    _ => return Err("--nodes must be 3 or 5".to_owned()),
                }
            }
            "--clients" => {
                cfg.clients = value
                    .parse()
                    .map_err(|_| format!("bad --clients {value:?}"))?;
            }
            "--keys" => cfg.keys = value.parse().map_err(|_| format!("bad --keys {value:?}"))?,
            "--faults" => {
                cfg.faults = value
                    .split(',')
                    .map(Fault::parse)
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if cfg.clients == 0 || cfg.keys == 0 {
        return Err("--clients and --keys must be at least 1".to_owned());
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "chaos: seed {} (replay with --seed {}), {:?}, {} nodes, {} clients, {} keys, faults {:?}",
        cfg.seed, cfg.seed, cfg.duration, cfg.nodes, cfg.clients, cfg.keys, cfg.faults
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(run(&cfg));
    println!("{}", report.summary());
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
