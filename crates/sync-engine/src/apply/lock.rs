//! Entity locks: one task at a time applies one entity, in this process and across instances
//! (see "Several instances" and "Workers" in the module doc of [`crate::apply`]).
//!
//! Two layers, taken in this order and released in the reverse one:
//! - [`LocalLocks`], in memory, for the worker's own concurrent tasks (every backend). The
//!   lease below cannot tell them apart: they share the worker's name, and a lease is
//!   re-entrant for its holder.
//! - On PostgreSQL, a lease row per entity for the other instances.
//!
//! Both are re-entrant within one event's application ([`Held`]), so reference resolution
//! re-entering an entity (a user whose manager's manager is that user) does not wait for
//! itself. Two tasks resolving each other's entities would wait for each other; each gives up
//! after `lock_wait` with [`ApplyError::Busy`], and its event is retried later.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use super::{Applier, ApplyError};

/// The entity locks one event's application holds.
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

/// The in-memory entity locks of one applier: a fair (first come, first served) mutex per
/// entity being applied, dropped from the map when nobody holds or waits for it.
#[derive(Debug, Default)]
pub(super) struct LocalLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl LocalLocks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `lock`, waiting up to `wait`; `None` if it stayed taken.
    async fn acquire(&self, lock: &str, wait: Duration) -> Option<OwnedMutexGuard<()>> {
        let mutex = Arc::clone(self.map().entry(lock.to_owned()).or_default());
        let guard = tokio::time::timeout(wait, mutex.lock_owned()).await.ok();
        if guard.is_none() {
            self.forget_if_idle(lock);
        }
        guard
    }

    /// Releases `guard` (of `lock`) and forgets the lock if nobody else wants it.
    fn release(&self, lock: &str, guard: OwnedMutexGuard<()>) {
        drop(guard);
        self.forget_if_idle(lock);
    }

    fn forget_if_idle(&self, lock: &str) {
        let mut map = self.map();
        // Only the map's own handle left: nobody holds or waits (handles are cloned under the
        // map's lock, so none can appear meanwhile).
        if map.get(lock).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(lock);
        }
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
        if held.contains(lock) {
            return work.await;
        }
        let Some(local) = self.local_locks.acquire(lock, self.options.lock_wait).await else {
            return Err(ApplyError::Busy {
                lock: lock.to_owned(),
            });
        };
        held.insert(lock);
        let result = match self.lease(lock).await {
            Ok(fresh) => {
                let result = work.await;
                self.unlease(lock, fresh).await;
                result
            }
            Err(e) => Err(e),
        };
        held.remove(lock);
        self.local_locks.release(lock, local);
        result
    }

    /// Takes the lease `lock` for this worker (PostgreSQL), waiting up to `lock_wait` for
    /// another instance to finish with it. True if this call took it (and must release it).
    async fn lease(&self, lock: &str) -> Result<bool, ApplyError> {
        if self.ctx.store.backend() == directory_store::Backend::Sqlite {
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
                return Ok(true);
            }
            if started.elapsed() >= self.options.lock_wait {
                return Err(ApplyError::Busy {
                    lock: lock.to_owned(),
                });
            }
            // The other instance finishes within a few DingTalk calls; no notification channel
            // crosses instances, so look again shortly.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Releases a lease taken by [`Applier::lease`] (`fresh`); a failed release only delays
    /// the next instance until the lease runs out.
    async fn unlease(&self, lock: &str, fresh: bool) {
        if !fresh {
            return;
        }
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
