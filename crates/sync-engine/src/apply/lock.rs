//! Entity locks: one worker at a time applies one entity (see "Several instances" in the
//! module doc of [`crate::apply`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use super::{Applier, ApplyError};

/// The entity locks one event's application holds, so that reference resolution re-entering
/// an entity (a user whose manager's manager is that user) does not wait for itself.
#[derive(Debug, Default)]
pub(super) struct Held(Mutex<BTreeSet<String>>);

impl Held {
    fn contains(&self, lock: &str) -> bool {
        // A poisoned lock only means a panic elsewhere; the set is still valid.
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(lock)
    }
    fn insert(&self, lock: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lock.to_owned());
    }
    fn remove(&self, lock: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(lock);
    }
}

impl Applier {
    /// Runs `work` (not started before the lock is taken: futures are lazy) under the entity
    /// lock `lock`, releasing it afterwards whatever `work` returned.
    pub(super) async fn locked<T>(
        &self,
        held: &Held,
        lock: &str,
        work: impl Future<Output = Result<T, ApplyError>>,
    ) -> Result<T, ApplyError> {
        let fresh = self.lock(held, lock).await?;
        let result = work.await;
        self.unlock(held, lock, fresh).await;
        result
    }

    /// Takes the entity lock `lock` for this worker, waiting up to `lock_wait` for another
    /// worker to finish with it. True if this call took it (and must release it), false if
    /// this event's application already held it or the backend needs no locks.
    async fn lock(&self, held: &Held, lock: &str) -> Result<bool, ApplyError> {
        if self.ctx.store.backend() == directory_store::Backend::Sqlite || held.contains(lock) {
            return Ok(false);
        }
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            if self
                .ctx
                .store
                .lease_acquire(
                    lock,
                    &self.options.worker,
                    self.ctx.now_ms(),
                    self.options.lease_ms,
                )
                .await?
            {
                held.insert(lock);
                return Ok(true);
            }
            if started.elapsed() >= self.options.lock_wait {
                return Err(ApplyError::Busy {
                    lock: lock.to_owned(),
                });
            }
            // The other worker finishes within a few DingTalk calls; no notification channel
            // crosses instances, so look again shortly.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Releases an entity lock taken by [`Applier::lock`] (`fresh`); a failed release only
    /// delays the next worker until the lease runs out.
    async fn unlock(&self, held: &Held, lock: &str, fresh: bool) {
        if !fresh {
            return;
        }
        held.remove(lock);
        if let Err(error) = self
            .ctx
            .store
            .lease_release(lock, &self.options.worker)
            .await
        {
            tracing::warn!(lock, %error, "could not release an entity lock; it expires by itself");
        }
    }
}
