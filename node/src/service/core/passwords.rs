//! Argon2id on the blocking pool, a bounded number at a time: each hash holds
//! 19 MiB, so a burst of sign-ins queues instead of exhausting memory or
//! starving other work. Plaintext passwords live in `Zeroizing` buffers only.

use std::sync::{Arc, Mutex, PoisonError};

use cairn_crypto::password::Workspace;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::Core;
use crate::error::ServiceError;

/// The permits and the reusable Argon2 working memory (one per permit).
pub(super) struct PasswordPool {
    /// Argon2id runs at most this many at once.
    hashing: Arc<Semaphore>,
    /// Argon2 working memory, reused (see `cairn_crypto::password`).
    workspaces: Arc<Mutex<Vec<Workspace>>>,
}

impl PasswordPool {
    /// One permit per core.
    pub(super) fn new() -> Self {
        Self {
            hashing: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )),
            workspaces: Arc::new(Mutex::new(Vec::new())),
        }
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
        f: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let pool = &self.inner.passwords;
        let permit = Arc::clone(&pool.hashing)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Internal)?;
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
    /// `internal` if hashing fails or the pool is gone.
    pub async fn hash_password(&self, password: Zeroizing<String>) -> Result<String, ServiceError> {
        self.with_workspace(move |ws| ws.hash(password.as_bytes()))
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
    /// `internal` if the pool is gone.
    pub async fn verify_password(
        &self,
        password: Zeroizing<String>,
        phc: Option<String>,
    ) -> Result<bool, ServiceError> {
        self.with_workspace(move |ws| match phc {
            Some(phc) => ws.verify(password.as_bytes(), &phc),
            None => {
                let _ = ws.verify(password.as_bytes(), cairn_crypto::password::dummy_hash());
                false
            }
        })
        .await
    }
}
