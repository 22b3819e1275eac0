//! Argon2id on the blocking pool, a bounded number at a time: each hash holds
//! 19 MiB, so a burst of sign-ins queues instead of exhausting memory or
//! starving other work. Plaintext passwords live in `Zeroizing` buffers only.
//!
//! The queue is fair across tenants ([`FairSlots`]): a freed slot goes to the
//! next tenant in turn, not to the longest queue, so one tenant's sign-in
//! flood cannot starve another's. Each tenant may queue at most
//! `[limits] argon2_queue_per_tenant` hashes here; past that the answer is
//! 503 `overloaded` with `Retry-After: 1`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use cairn_crypto::password::Workspace;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::Core;
use crate::error::ServiceError;

/// The permits and the reusable Argon2 working memory (one per permit).
pub(super) struct PasswordPool {
    /// Argon2id runs at most this many at once.
    hashing: Arc<FairSlots>,
    /// Argon2 working memory, reused (see `cairn_crypto::password`).
    workspaces: Arc<Mutex<Vec<Workspace>>>,
}

impl PasswordPool {
    /// One slot per core; at most `per_tenant` waiting per tenant.
    pub(super) fn new(per_tenant: usize) -> Self {
        let slots = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            hashing: Arc::new(FairSlots::new(slots, per_tenant)),
            workspaces: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// A counting semaphore whose waiters are served one tenant at a time, in
/// turn, with a bound on each tenant's waiters.
pub(super) struct FairSlots {
    state: Mutex<Slots>,
    per_tenant: usize,
}

#[derive(Default)]
struct Slots {
    free: usize,
    waiting: HashMap<String, VecDeque<oneshot::Sender<Slot>>>,
    /// Tenants with waiters, in the order they are served.
    turn: VecDeque<String>,
}

/// A held slot; dropping it hands it to the next waiter in turn.
pub(super) struct Slot {
    owner: Option<Arc<FairSlots>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.owner.take() {
            slots.release();
        }
    }
}

impl FairSlots {
    fn new(slots: usize, per_tenant: usize) -> Self {
        Self {
            state: Mutex::new(Slots {
                free: slots,
                ..Slots::default()
            }),
            per_tenant,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn queued(&self) -> usize {
        self.lock().waiting.values().map(VecDeque::len).sum()
    }

    /// A slot for `tenant`, now or in its turn.
    ///
    /// # Errors
    /// `overloaded`: the tenant already has its bound of hashes waiting here.
    async fn acquire(self: &Arc<Self>, tenant: &str) -> Result<Slot, ServiceError> {
        let rx = {
            let mut s = self.lock();
            if s.free > 0 && s.turn.is_empty() {
                s.free -= 1;
                return Ok(Slot {
                    owner: Some(Arc::clone(self)),
                });
            }
            let queue = s.waiting.entry(tenant.to_owned()).or_default();
            queue.retain(|w| !w.is_closed());
            if queue.len() >= self.per_tenant {
                return Err(ServiceError::Overloaded(
                    "too many password checks are waiting for this tenant on this node; \
                     retry in a second"
                        .to_owned(),
                ));
            }
            let (tx, rx) = oneshot::channel();
            queue.push_back(tx);
            if !s.turn.iter().any(|t| t == tenant) {
                s.turn.push_back(tenant.to_owned());
            }
            rx
        };
        rx.await.map_err(|_| ServiceError::Internal)
    }

    /// Gives a freed slot to the first live waiter of the next tenant in turn,
    /// or back to the pool.
    fn release(self: &Arc<Self>) {
        let mut s = self.lock();
        while let Some(tenant) = s.turn.pop_front() {
            let Some(queue) = s.waiting.get_mut(&tenant) else {
                continue;
            };
            let mut granted = false;
            while let Some(tx) = queue.pop_front() {
                let slot = Slot {
                    owner: Some(Arc::clone(self)),
                };
                match tx.send(slot) {
                    Ok(()) => {
                        granted = true;
                        break;
                    }
                    // The waiter went away: this slot is not handed on twice.
                    Err(mut slot) => slot.owner = None,
                }
            }
            if queue.is_empty() {
                s.waiting.remove(&tenant);
            } else {
                s.turn.push_back(tenant);
            }
            if granted {
                return;
            }
        }
        s.free += 1;
    }
}

impl Core {
    /// Runs `f` on the blocking pool with an Argon2 workspace: at most one per
    /// `hashing` permit at a time, each reused from call to call. The permit and
    /// the workspace belong to the blocking task, so a caller that goes away (a
    /// client disconnecting mid sign-in) frees neither before the hash is done:
    /// the bound on concurrent hashes and their memory holds.
    async fn with_workspace<T: Send + 'static>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let pool = &self.inner.passwords;
        let permit = pool.hashing.acquire(tenant).await?;
        let workspaces = Arc::clone(&pool.workspaces);
        tokio::task::spawn_blocking(move || {
            let mut ws = workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            let out = f(&mut ws);
            workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ws);
            drop(permit);
            out
        })
        .await
        .map_err(|_| ServiceError::Internal)
    }

    /// Hashes a password with Argon2id on the blocking pool.
    ///
    /// # Errors
    /// `overloaded`; `internal` if hashing fails or the pool is gone.
    pub async fn hash_password(
        &self,
        tenant: &str,
        password: Zeroizing<String>,
    ) -> Result<String, ServiceError> {
        self.with_workspace(tenant, move |ws| ws.hash(password.as_bytes()))
            .await?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                ServiceError::Internal
            })
    }

    /// Verifies a password on the blocking pool; without a stored hash, verifies
    /// against a dummy one, so that the time spent does not tell.
    ///
    /// # Errors
    /// `overloaded`; `internal` if the pool is gone.
    pub async fn verify_password(
        &self,
        tenant: &str,
        password: Zeroizing<String>,
        phc: Option<String>,
    ) -> Result<bool, ServiceError> {
        self.with_workspace(tenant, move |ws| match phc {
            Some(phc) => ws.verify(password.as_bytes(), &phc),
            None => {
                let _ = ws.verify(password.as_bytes(), cairn_crypto::password::dummy_hash());
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn freed_slots_go_to_tenants_in_turn_and_each_queue_is_bounded() {
        let slots = Arc::new(FairSlots::new(1, 3));
        let held = slots.acquire("flood").await.expect("free slot");
        // The flooding tenant queues three, the fourth is refused at once.
        let mut flood = Vec::new();
        for _ in 0..3 {
            let s = Arc::clone(&slots);
            flood.push(tokio::spawn(
                async move { s.acquire("flood").await.map(drop) },
            ));
        }
        tokio::task::yield_now().await;
        while slots.queued() < 3 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            slots.acquire("flood").await,
            Err(ServiceError::Overloaded(_))
        ));
        // Another tenant arriving last is served second, not fourth.
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let s = Arc::clone(&slots);
        let quiet = tokio::spawn(async move {
            let slot = s.acquire("quiet").await.expect("slot");
            tx.send(s.queued()).expect("send");
            drop(slot);
        });
        while slots.queued() < 4 {
            tokio::task::yield_now().await;
        }
        drop(held);
        quiet.await.expect("quiet");
        let still_waiting = order.recv().await.expect("order");
        assert!(
            still_waiting >= 2,
            "the quiet tenant ran while {still_waiting} flood hashes still waited"
        );
        for f in flood {
            f.await.expect("task").expect("flood slot");
        }
        assert_eq!(slots.queued(), 0);
        assert!(slots.acquire("x").await.is_ok(), "the slot came back");
    }
}
