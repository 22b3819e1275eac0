//! Background loops. Each runs on every node, does its work only where this
//! node leads the group the work belongs to (so one node does it, and a
//! failover hands it on), makes every change through the log (so two nodes
//! overlapping in a leadership change do no harm), and stops when `stop` turns
//! true.

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::core::Core;

pub mod email_reindex;

/// Starts every worker.
pub fn spawn(core: &Core, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(email_reindex::run(core.clone(), stop.clone()))]
}

/// Waits `pause`, or less if `stop` turns true; `false` once stopped.
async fn pause(stop: &mut watch::Receiver<bool>, pause: std::time::Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    let stopped = tokio::select! {
        () = tokio::time::sleep(pause) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    !stopped && !*stop.borrow()
}
