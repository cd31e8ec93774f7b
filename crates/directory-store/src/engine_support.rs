//! Store functions the sync engine needs beyond the directory API.
//!
//! - **Bulk id map** for the full import: it links tens of thousands of users and departments
//!   at once. Doing that with [`Store::id_map_put`] would cost one transaction per entity, and
//!   translating ids one lookup at a time one query per reference. [`Store::id_map_all`] reads a
//!   whole kind in one query and [`Store::id_map_put_many`] writes many links in one
//!   transaction, with the single write's no-silent-remap rule: a pair that contradicts an
//!   existing link is refused and nothing of the batch is written.
//! - **Push without a change** ([`Store::enqueue_push`]): when a three-way merge keeps the OA
//!   value of a field DingTalk changed (OA won a conflict, or OA owns the field), the OA row does
//!   not change, so a save would be a no-op and queue nothing; yet DingTalk must be brought back.
//!   This records an audit row and an outbox entry for the unchanged entity, in one
//!   transaction, with the same dependency keys a save would have.
//! - **Conflicts in the audit log** ([`Store::audit_conflicts`]): design invariant 7 asks for
//!   every conflict in the audit log (the `conflicts` table keeps them for operators; the audit
//!   log is the history of each entity). The audit row carries `{"conflicts": [...]}` as its
//!   `before` and the merged entity as its `after`, so the change feed still reads as "this is
//!   the state now".
//! - **The pusher** ([`Store::record_pushed`], [`Store::record_push_deleted`]): after DingTalk
//!   accepted a create, the pusher must remember both *which* DingTalk entity it created (the
//!   id map) and *what* both sides now hold (the base of the three-way merge), in one
//!   transaction; one without the other leaves an unmapped DingTalk entity or a stale base that
//!   makes the echo event look like a DingTalk-side change.
//! - **An outbox claim that scales** ([`Store::outbox_claim_ready`]): same rule as
//!   [`Store::outbox_claim`], computed per key, so its cost does not grow with the square of the
//!   backlog.
//! - **Whole-kind base reads** ([`Store::base_all`]) for plan / reconcile.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use directory_model::{Department, Role, User};
use serde::Serialize;
use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, WriteCtx, dep_key, record, set_base_on};
use crate::queue::OutboxEntry;
use crate::sync::MappedId;
/// Pairs per statement: two placeholders per pair in the lookup and three in the insert stay
/// far below both backends' placeholder limits.
const CHUNK: usize = 500;

impl Store {
    /// Every link of one kind (`O` picks the kind), in no particular order.
    pub async fn id_map_all<O: MappedId>(&self) -> Result<Vec<(O, O::Ding)>, StoreError> {
        let rows = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let oa: String = r.try_get("oa_id")?;
                let ding: String = r.try_get("ding_id")?;
                let corrupt = |detail: String| StoreError::Corrupt {
                    table: "id_map",
                    id: oa.clone(),
                    detail,
                };
                let oa_id = O::parse_oa(&oa).ok_or_else(|| corrupt(format!("bad OA id {oa:?}")))?;
                let ding_id = O::parse_ding(&ding)
                    .ok_or_else(|| corrupt(format!("bad DingTalk id {ding:?}")))?;
                Ok((oa_id, ding_id))
            })
            .collect()
    }

    /// Records many links in one transaction; returns how many were new. Pairs already present
    /// are skipped; a pair that would remap an OA or DingTalk id already linked elsewhere fails
    /// the whole batch with [`StoreError::IdMapConflict`].
    pub async fn id_map_put_many<O: MappedId>(
        &self,
        pairs: &[(O, O::Ding)],
    ) -> Result<usize, StoreError> {
        let kind = O::KIND;
        let mut tx = self.begin_queue().await?;
        let mut inserted = 0;
        for chunk in pairs.chunks(CHUNK) {
            let texts: Vec<(String, String)> = chunk
                .iter()
                .map(|(oa, ding)| (oa.oa_text(), O::ding_text(ding)))
                .collect();
            let mut sql = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE kind = ")
                .bind(kind.as_str())
                .push(" AND (oa_id IN ");
            sql.bind_list(texts.iter().map(|(oa, _)| oa.as_str()));
            sql.push_mut(" OR ding_id IN ");
            sql.bind_list(texts.iter().map(|(_, ding)| ding.as_str()));
            sql.push_mut(")");
            let rows = sql.query().fetch_all(&mut *tx).await?;
            let mut by_oa: HashMap<String, String> = HashMap::new();
            let mut by_ding: HashMap<String, String> = HashMap::new();
            for r in &rows {
                let oa: String = r.try_get("oa_id")?;
                let ding: String = r.try_get("ding_id")?;
                by_oa.insert(oa.clone(), ding.clone());
                by_ding.insert(ding, oa);
            }
            let mut fresh = Vec::new();
            for (oa, ding) in texts {
                let known_ding = by_oa.get(&oa);
                let known_oa = by_ding.get(&ding);
                match (known_ding, known_oa) {
                    (Some(d), Some(o)) if *d == ding && *o == oa => continue,
                    (None, None) => {
                        // Remember it, so a duplicate pair later in the batch is skipped and a
                        // contradicting one is refused like a stored link would be.
                        by_oa.insert(oa.clone(), ding.clone());
                        by_ding.insert(ding.clone(), oa.clone());
                        fresh.push((oa, ding));
                    }
                    (d, o) => {
                        return Err(StoreError::IdMapConflict {
                            kind,
                            existing_oa_id: o.cloned().unwrap_or_else(|| oa.clone()),
                            existing_ding_id: d.cloned().unwrap_or_else(|| ding.clone()),
                            oa_id: oa,
                            ding_id: ding,
                        });
                    }
                }
            }
            if fresh.is_empty() {
                continue;
            }
            let mut insert = Sql::new("INSERT INTO id_map (kind, oa_id, ding_id) VALUES ");
            for (i, (oa, ding)) in fresh.iter().enumerate() {
                if i > 0 {
                    insert.push_mut(", ");
                }
                insert.push_mut("(");
                insert.bind_mut(kind.as_str());
                insert.push_mut(", ");
                insert.bind_mut(oa.as_str());
                insert.push_mut(", ");
                insert.bind_mut(ding.as_str());
                insert.push_mut(")");
            }
            insert.query().execute(&mut *tx).await?;
            inserted += fresh.len();
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

impl Store {
    /// Whether an OA deletion of `kind` `oa_id` is queued and not yet pushed (pending or
    /// claimed, possibly by a process that died).
    ///
    /// Why: the applier must not re-create from a DingTalk event an entity the OA side deleted.
    /// Usually the base remembers it, but a crash between DingTalk accepting the create and
    /// saving the base leaves no base; the queued deletion is then the only trace of the OA
    /// user's intent (found by `tests/crash_anywhere.rs`, seed 12887305).
    pub async fn outbox_deletion_queued(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<bool, StoreError> {
        let row = Sql::new("SELECT id FROM outbox WHERE kind = ")
            .bind(kind.as_str())
            .push(" AND oa_id = ")
            .bind(oa_id)
            .push(" AND op = ")
            .bind(Op::Delete.as_str())
            .push(" AND (state = 'pending' OR state = 'claimed') LIMIT 1")
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

/// Candidates examined per window of [`Store::outbox_claim_ready`], as a multiple of the limit.
const WINDOW_FACTOR: i64 = 4;
/// Ready entries [`Store::outbox_claim_ready`] examines at most per claim, so a long blocked
/// chain cannot make one claim read the whole queue.
const MAX_SCANNED: usize = 20_000;
/// How many times [`Store::outbox_claim_ready`] looks again after losing every entry it chose
/// to a concurrent claim.
const LOST_RACE_RETRIES: usize = 4;
/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

impl Store {
    /// Claims up to `limit` ready, unblocked outbox entries in id order, leased to `worker`
    /// until `now_ms + lease_ms` — the same rule as [`Store::outbox_claim`] (an entry waits for
    /// every earlier unfinished entry that writes a key it reads, or holds a key it writes), but
    /// computed per key instead of per pair of entries.
    ///
    /// Why: `outbox_claim` checks each candidate against every earlier unfinished entry sharing
    /// a key, inside one statement that SQLite evaluates for every ready row before `LIMIT`.
    /// With thousands of users queued into one department (all readers of that department's
    /// key) one claim cost seconds (measured: 2 s at 2,000 queued entries), so the pusher
    /// crawled at 40 pushes/s with a 500/s rate limit. Here the ready candidates are read in id
    /// order a window at a time (index `outbox_state`), and for each distinct key among them
    /// the earliest unfinished writer (and, for keys they write, the earliest unfinished holder)
    /// is looked up once (index `outbox_keys_key`).
    ///
    /// Several instances: the choice is made without row locks, and the final `UPDATE` only
    /// takes entries that are still claimable (on PostgreSQL it waits for a competing claim of
    /// the same row to commit and then re-checks), so no entry is claimed twice. Two pushers
    /// claiming at the same moment compute the same choice, though, and the loser would come
    /// back empty-handed and idle while entries are ready; so a claim that chose entries but
    /// got none of them looks again (the winner's entries are no longer candidates).
    pub async fn outbox_claim_ready(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        for _ in 0..LOST_RACE_RETRIES {
            let (chosen, claimed) = self
                .outbox_claim_ready_once(worker, now_ms, lease_ms, limit)
                .await?;
            if !claimed.is_empty() || chosen == 0 {
                return Ok(claimed);
            }
        }
        Ok(Vec::new())
    }

    /// One attempt of [`Store::outbox_claim_ready`]: how many entries it chose, and those it got.
    async fn outbox_claim_ready_once(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<(usize, Vec<OutboxEntry>), StoreError> {
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let window = i64::try_from(limit).unwrap_or(i64::MAX / 8) * WINDOW_FACTOR + 64;
        let mut tx = self.begin_queue().await?;
        let mut chosen: Vec<i64> = Vec::new();
        let mut after = 0_i64;
        let mut scanned = 0_usize;
        // Earliest unfinished entry holding / writing a key, cached across windows.
        let mut first_holder: BTreeMap<String, Option<i64>> = BTreeMap::new();
        let mut first_writer: BTreeMap<String, Option<i64>> = BTreeMap::new();
        while chosen.len() < limit && scanned < MAX_SCANNED {
            let mut candidates: BTreeSet<i64> = BTreeSet::new();
            for (state, time_col) in [
                ("pending", "next_attempt_at_ms"),
                ("claimed", "claimed_until_ms"),
            ] {
                let rows = Sql::new(&format!(
                    "SELECT id FROM outbox WHERE state = '{state}' AND id > "
                ))
                .bind(after)
                .push(&format!(" AND {time_col} <= "))
                .bind(now_ms)
                .push(" ORDER BY id LIMIT ")
                .bind(window)
                .query()
                .fetch_all(&mut *tx)
                .await?;
                for r in rows {
                    candidates.insert(r.try_get("id")?);
                }
            }
            // Both lists are complete up to the smaller of their last ids only.
            let candidates: Vec<i64> = candidates
                .into_iter()
                .take(usize::try_from(window).unwrap_or(usize::MAX))
                .collect();
            let Some(&last) = candidates.last() else {
                break;
            };
            scanned += candidates.len();
            let mut keys: BTreeMap<i64, Vec<(String, bool)>> = BTreeMap::new();
            for chunk in candidates.chunks(IN_CHUNK) {
                let mut sql = Sql::new(
                    "SELECT entry_id, dep_key, writes FROM outbox_keys WHERE entry_id IN (",
                );
                for (i, id) in chunk.iter().enumerate() {
                    if i > 0 {
                        sql.push_mut(", ");
                    }
                    sql.bind_mut(*id);
                }
                sql.push_mut(")");
                for r in sql.query().fetch_all(&mut *tx).await? {
                    let writes: i64 = r.try_get("writes")?;
                    keys.entry(r.try_get("entry_id")?)
                        .or_default()
                        .push((r.try_get("dep_key")?, writes != 0));
                }
            }
            for id in &candidates {
                if chosen.len() >= limit {
                    break;
                }
                let mut blocked = false;
                for (key, writes) in keys.get(id).map(Vec::as_slice).unwrap_or_default() {
                    let cache = if *writes {
                        &mut first_holder
                    } else {
                        &mut first_writer
                    };
                    let first = match cache.get(key) {
                        Some(first) => *first,
                        None => {
                            let first = first_unfinished(&mut tx, key, !*writes).await?;
                            cache.insert(key.clone(), first);
                            first
                        }
                    };
                    if first.is_some_and(|f| f < *id) {
                        blocked = true;
                        break;
                    }
                }
                if !blocked {
                    chosen.push(*id);
                }
            }
            after = last;
        }
        let mut claimed = Vec::with_capacity(chosen.len());
        for chunk in chosen.chunks(IN_CHUNK) {
            let mut sql = Sql::new("UPDATE outbox SET state = 'claimed', claimed_by = ");
            sql.bind_mut(worker);
            sql.push_mut(", claimed_until_ms = ");
            sql.bind_mut(now_ms.saturating_add(lease_ms));
            sql.push_mut(", attempts = attempts + 1, updated_at_ms = ");
            sql.bind_mut(now_ms);
            sql.push_mut(" WHERE ((state = 'pending' AND next_attempt_at_ms <= ");
            sql.bind_mut(now_ms);
            sql.push_mut(") OR (state = 'claimed' AND claimed_until_ms <= ");
            sql.bind_mut(now_ms);
            sql.push_mut(")) AND id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_mut(", ");
                }
                sql.bind_mut(*id);
            }
            sql.push_mut(") RETURNING id");
            for r in sql.query().fetch_all(&mut *tx).await? {
                claimed.push(r.try_get::<i64, _>("id")?);
            }
        }
        tx.commit().await?;
        claimed.sort_unstable();
        let mut entries = Vec::with_capacity(claimed.len());
        for id in claimed {
            if let Some(entry) = self.outbox_get(id).await? {
                entries.push(entry);
            }
        }
        Ok((chosen.len(), entries))
    }

    /// Marks many claimed outbox entries done in one transaction (the pusher finishes a whole
    /// round at once instead of one transaction per entry). Returns the ids that were still
    /// claimed by `worker`; the others had their lease taken over and are left alone, exactly
    /// as [`Store::outbox_done`] would refuse them one by one.
    pub async fn outbox_done_many(
        &self,
        ids: &[i64],
        worker: &str,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut done = Vec::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(done);
        }
        let mut tx = self.begin_queue().await?;
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql = Sql::new(
                "UPDATE outbox SET state = 'done', claimed_by = NULL, claimed_until_ms = NULL, \
                 last_error = NULL, updated_at_ms = ",
            );
            sql.bind_mut(now_ms);
            sql.push_mut(" WHERE state = 'claimed' AND claimed_by = ");
            sql.bind_mut(worker);
            sql.push_mut(" AND id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_mut(", ");
                }
                sql.bind_mut(*id);
            }
            sql.push_mut(") RETURNING id");
            let mut finished = Vec::with_capacity(chunk.len());
            for r in sql.query().fetch_all(&mut *tx).await? {
                finished.push(r.try_get::<i64, _>("id")?);
            }
            if !finished.is_empty() {
                // Finished entries block nobody; their keys are no longer needed.
                let mut del = Sql::new("DELETE FROM outbox_keys WHERE entry_id IN (");
                for (i, id) in finished.iter().enumerate() {
                    if i > 0 {
                        del.push_mut(", ");
                    }
                    del.bind_mut(*id);
                }
                del.push_mut(")");
                del.query().execute(&mut *tx).await?;
            }
            done.extend(finished);
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Records that DingTalk holds `base` for the OA entity `oa`, which is `ding` there: saves
    /// the id mapping (idempotent for the same pair; a clash with another pair is refused like
    /// [`Store::id_map_put`]) and the base snapshot in one transaction.
    pub async fn record_pushed<O: MappedId, T: Serialize>(
        &self,
        oa: &O,
        ding: &O::Ding,
        base: &T,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let oa_text = oa.oa_text();
        let ding_text = O::ding_text(ding);
        let body = serde_json::to_value(base)?;
        let mut tx = self.begin_queue().await?;
        let rows = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .push(" AND (oa_id = ")
            .bind(oa_text.as_str())
            .push(" OR ding_id = ")
            .bind(ding_text.as_str())
            .push(")")
            .query()
            .fetch_all(&mut *tx)
            .await?;
        let mut mapped = false;
        for r in &rows {
            let existing_oa: String = r.try_get("oa_id")?;
            let existing_ding: String = r.try_get("ding_id")?;
            if existing_oa == oa_text && existing_ding == ding_text {
                mapped = true;
            } else {
                return Err(StoreError::IdMapConflict {
                    kind: O::KIND,
                    oa_id: oa_text,
                    ding_id: ding_text,
                    existing_oa_id: existing_oa,
                    existing_ding_id: existing_ding,
                });
            }
        }
        if !mapped {
            Sql::new("INSERT INTO id_map (kind, oa_id, ding_id) VALUES (")
                .bind(O::KIND.as_str())
                .push(", ")
                .bind(oa_text.as_str())
                .push(", ")
                .bind(ding_text)
                .push(")")
                .query()
                .execute(&mut *tx)
                .await?;
        }
        set_base_on(&mut tx, O::KIND, &oa_text, Some(&body), now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that the OA entity `oa` no longer exists in DingTalk: forgets its mapping and its
    /// base snapshot in one transaction (both are harmless to forget twice).
    pub async fn record_push_deleted<O: MappedId>(
        &self,
        oa: &O,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let oa_text = oa.oa_text();
        let mut tx = self.begin_queue().await?;
        Sql::new("DELETE FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .push(" AND oa_id = ")
            .bind(oa_text.as_str())
            .query()
            .execute(&mut *tx)
            .await?;
        set_base_on(&mut tx, O::KIND, &oa_text, None, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every base snapshot of one kind as `(oa id, body)`, for reconcile's three-way plan.
    pub async fn base_all(
        &self,
        kind: EntityKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows = Sql::new("SELECT oa_id, body_json FROM base_snapshots WHERE kind = ")
            .bind(kind.as_str())
            .push(" ORDER BY oa_id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("body_json")?;
                Ok((r.try_get("oa_id")?, serde_json::from_str(&text)?))
            })
            .collect()
    }
}

/// The earliest unfinished (pending or claimed) outbox entry holding `key` — only writers of it
/// if `writers_only`. Walks the key's index range in entry order and stops at the first match.
async fn first_unfinished(
    tx: &mut sqlx::AnyConnection,
    key: &str,
    writers_only: bool,
) -> Result<Option<i64>, StoreError> {
    let mut sql = Sql::new(
        "SELECT k.entry_id AS entry_id FROM outbox_keys k JOIN outbox o ON o.id = k.entry_id \
         WHERE k.dep_key = ",
    );
    sql.bind_mut(key);
    if writers_only {
        sql.push_mut(" AND k.writes = 1");
    }
    sql.push_mut(" AND (o.state = 'pending' OR o.state = 'claimed') ORDER BY k.entry_id LIMIT 1");
    let row = sql.query().fetch_optional(&mut *tx).await?;
    row.map(|r| r.try_get("entry_id"))
        .transpose()
        .map_err(StoreError::from)
}

/// The entities a pushed entity references (they must be pushed first), read from its JSON.
fn reads_of(kind: EntityKind, body: &serde_json::Value) -> Vec<String> {
    let mut reads = Vec::new();
    match kind {
        EntityKind::User => {
            if let Ok(u) = serde_json::from_value::<User>(body.clone()) {
                for d in u.department_ids() {
                    reads.push(dep_key(EntityKind::Department, &d.to_string()));
                }
                if let Some(m) = &u.manager {
                    reads.push(dep_key(EntityKind::User, m.as_str()));
                }
            }
        }
        EntityKind::Department => {
            if let Ok(d) = serde_json::from_value::<Department>(body.clone()) {
                if let Some(p) = d.parent {
                    reads.push(dep_key(EntityKind::Department, &p.to_string()));
                }
                for m in &d.managers {
                    reads.push(dep_key(EntityKind::User, m.as_str()));
                }
            }
        }
        EntityKind::Role => {
            if let Ok(r) = serde_json::from_value::<Role>(body.clone()) {
                reads.push(dep_key(EntityKind::RoleGroup, &r.group.to_string()));
            }
        }
        EntityKind::RoleGroup | EntityKind::RoleAssignment => {}
    }
    reads
}

impl Store {
    /// Queues a push of `current` (the entity as OA holds it, unchanged) and records it in the
    /// audit log; moves the base to `current` when `ctx.record_base`. Returns the outbox id.
    pub async fn enqueue_push(
        &self,
        ctx: &WriteCtx,
        kind: EntityKind,
        oa_id: &str,
        current: &serde_json::Value,
    ) -> Result<Option<i64>, StoreError> {
        let ctx = ctx.clone().with_enqueue(true);
        let mut tx = self.begin_write().await?;
        let recorded = record(
            &mut tx,
            &ctx,
            Change {
                kind,
                oa_id: oa_id.to_owned(),
                op: Op::Update,
                before: Some(current.clone()),
                after: Some(current.clone()),
                reads: reads_of(kind, current),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(recorded.outbox_id)
    }

    /// Records the conflicts of a three-way merge in the audit log (see the module doc);
    /// returns the audit sequence number. Never queues a push or moves the base.
    pub async fn audit_conflicts(
        &self,
        ctx: &WriteCtx,
        kind: EntityKind,
        oa_id: &str,
        conflicts: &serde_json::Value,
        merged: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let ctx = WriteCtx {
            actor: format!("{}:conflict", ctx.actor),
            enqueue: false,
            record_base: false,
            ..ctx.clone()
        };
        let mut tx = self.begin_write().await?;
        let recorded = record(
            &mut tx,
            &ctx,
            Change {
                kind,
                oa_id: oa_id.to_owned(),
                op: Op::Update,
                before: Some(serde_json::json!({ "conflicts": conflicts })),
                after: Some(merged.clone()),
                reads: Vec::new(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(recorded.audit_seq)
    }
}
