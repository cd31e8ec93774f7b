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
//! - **Conflict records** ([`Store::record_conflicts`]): design invariant 7 asks for every
//!   conflict in the audit log. The audit row carries `{"conflicts": [...]}` as its `before` and
//!   the merged entity as its `after`, so the change feed still reads as "this is the state now".

use std::collections::HashMap;

use directory_model::{Department, Role, User};
use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, WriteCtx, dep_key, record};
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
