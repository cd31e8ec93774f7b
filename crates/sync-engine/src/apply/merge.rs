//! The three-way merge of one entity and the writes it implies, for any [`SyncedKind`].

use directory_model::{Merged, merge};
use directory_store::{Expect, Outcome, StoreError, Versioned, WriteCtx};

use super::{Applied, Applier, ApplyError};
use crate::kind::SyncedKind;

impl Applier {
    /// Three-way merge of one entity and the writes it implies.
    ///
    /// The base must not be newer than `dingtalk`: a push that lands between fetching
    /// DingTalk's state and reading the base moves the base to the pushed value, and the older
    /// fetched value would then look like DingTalk changing it back, undoing the OA write. So
    /// callers that can read the base before fetching pass it as `base_before` (`Some`);
    /// `None` reads it here (role definitions, fetched as one list).
    ///
    /// When OA wins a field the base does not move: DingTalk does not hold the merged state
    /// until the queued push lands (the pusher moves the base then). Moving it early made a
    /// later event, fetched before that push landed, take DingTalk's not-yet-updated value for
    /// a change back and revert the OA write (both found by `tests/crash_anywhere.rs`).
    pub(super) async fn merge_and_write<T: SyncedKind>(
        &self,
        current: Option<Versioned<T>>,
        dingtalk: T,
        base_before: Option<Option<T>>,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let key = dingtalk.oa_key();
        let Some(current) = current else {
            return self.create_from_dingtalk(dingtalk).await;
        };
        let base = match base_before {
            Some(base) => base,
            None => store.base_get(T::KIND, &key).await?,
        };
        // No base while OA holds the entity: it was created in OA and its push has not saved the
        // base yet (the event of the push overtook it, or a crash came between DingTalk's
        // success and saving). Nothing was ever synced, so DingTalk holds at most an older OA
        // state: every difference is an OA change still on its way. (Taking OA's own state as
        // the base instead made every difference look like a DingTalk change and reverted OA
        // writes made after the create – found by `tests/crash_anywhere.rs`.)
        let base: T = base.unwrap_or_else(|| dingtalk.clone());
        let merged = merge(
            &base,
            &current.entity,
            &dingtalk,
            T::merge_policy(&self.ctx.policy),
        );
        let wctx = self.write_ctx();
        let mut applied = Applied {
            conflicts: self.record_conflicts(&wctx, &key, &merged).await?,
            ..Applied::default()
        };
        let push = !merged.dingtalk_changes.is_empty();
        if merged.value != current.entity {
            let saved = T::save(
                store,
                &wctx.clone().with_enqueue(push).with_record_base(!push),
                merged.value,
                Expect::Version(current.version),
            )
            .await?;
            applied.writes += 1;
            applied.pushes += usize::from(saved.outbox_id.is_some());
        } else if push {
            self.queue_push(&merged.value).await?;
            applied.pushes += 1;
        } else {
            // Both sides agree; saving the equal state writes nothing but moves a stale base.
            T::save(store, &wctx, merged.value, Expect::Version(current.version)).await?;
        }
        if push {
            // DingTalk does not hold OA's winning fields until the push lands, so the base is
            // DingTalk's state, not the merge: a second event before the push must see OA (not
            // DingTalk) as the side that changed, or it would undo OA's change (found by the
            // convergence property test). The pusher moves the base once DingTalk accepts.
            store
                .base_set(T::KIND, &key, Some(&dingtalk), wctx.now_ms)
                .await?;
        }
        Ok(applied)
    }

    /// The merge's side of an entity OA does not hold: DingTalk's state, unless OA deleted it.
    async fn create_from_dingtalk<T: SyncedKind>(
        &self,
        dingtalk: T,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let key = dingtalk.oa_key();
        // The base remembers an entity both sides held, so its absence in OA means the OA
        // side deleted it since: that deletion is queued for DingTalk and stands. Re-creating
        // it from an event that raced the push would undo the OA user's delete.
        // Without a base (a crash between DingTalk's success and saving it), a queued OA
        // deletion says the same.
        if store.base_get::<T>(T::KIND, &key).await?.is_some()
            || store.outbox_deletion_queued(T::KIND, &key).await?
        {
            return Ok(Applied::default());
        }
        // An upsert: another worker applying an event of the same entity may have created
        // it a moment ago, and DingTalk's state is what both would write.
        let saved = T::save(store, &self.write_ctx(), dingtalk, Expect::Any).await?;
        Ok(Applied {
            writes: usize::from(saved.outcome != Outcome::Unchanged),
            ..Applied::default()
        })
    }

    /// Records the merge's conflicts in the audit log and the conflicts table; returns how many.
    async fn record_conflicts<T: SyncedKind>(
        &self,
        wctx: &WriteCtx,
        key: &str,
        merged: &Merged<T>,
    ) -> Result<usize, StoreError> {
        if merged.conflicts.is_empty() {
            return Ok(0);
        }
        let store = &self.ctx.store;
        let conflicts = serde_json::to_value(&merged.conflicts)?;
        let value = serde_json::to_value(&merged.value)?;
        store
            .audit_conflicts(wctx, T::KIND, key, &conflicts, &value)
            .await?;
        // The conflicts table is what `status`, metrics and the demo count.
        store
            .record_conflicts(T::KIND, key, &merged.conflicts, wctx.now_ms)
            .await?;
        Ok(merged.conflicts.len())
    }

    /// Queues a push of `entity` as OA holds it, without moving its base (DingTalk does not
    /// hold it until the push lands).
    pub(super) async fn queue_push<T: SyncedKind>(&self, entity: &T) -> Result<(), StoreError> {
        let value = serde_json::to_value(entity)?;
        let wctx = self.write_ctx().with_record_base(false);
        self.ctx
            .store
            .enqueue_push(&wctx, T::KIND, &entity.oa_key(), &value)
            .await?;
        Ok(())
    }
}
