//! Checks a history file written by the chaos harness (`CAIRN_CHAOS_HISTORY`),
//! optionally only its first N operations: `cargo run --example check_history
//! -- FILE [N]`.

use std::time::Instant;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: check_history FILE [N]")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut history = cairn_tests::linearizability::parse_history(&text)?;
    if let Some(n) = args.next() {
        history.truncate(n.parse().map_err(|_| format!("bad count {n}"))?);
    }
    let started = Instant::now();
    let result = cairn_tests::linearizability::check(&history);
    println!(
        "{} operations checked in {:.2?}: {}",
        history.len(),
        started.elapsed(),
        match &result {
            Ok(()) => "linearizable".to_owned(),
            Err(v) => format!("{v}"),
        }
    );
    Ok(())
}
