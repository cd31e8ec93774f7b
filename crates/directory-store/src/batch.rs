//! Batch writes for the full import.
//!
//! Importing 100,000 people one save at a time would cost several statements and a commit per
//! person. Here one call writes a whole batch in one transaction: existing rows are loaded with
//! `IN (…)` queries, unchanged entities are skipped (so a re-import writes nothing), and rows,
//! child rows, audit rows and base snapshots are written with multi-row `INSERT … ON CONFLICT`
//! statements. The audit trail is the same as for single writes: one row per changed entity.
//!
//! The fast path applies to writes that mirror DingTalk (no outbox entry, no rule checks). A
//! batch that must be pushed or checked goes through the single-entity path inside the same
//! transaction, so the one-transaction rule holds either way.

use std::collections::HashMap;

use directory_model::{Department, User};
use serde::Serialize;

use crate::db::{Sql, Store, Val};
use crate::directory::{Expect, Outcome, save_department_in, save_user_in};
use crate::error::{EntityKind, StoreError};
use crate::journal::WriteCtx;
use crate::rows::{
    DEPT_COLS, USER_COLS, Versioned, fetch_departments, fetch_users, insert_rows,
    write_departments, write_users,
};

/// Ids per `IN (…)` when loading the existing rows of a batch.
const LOAD_CHUNK: usize = 500;

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// New entities.
    pub created: usize,
    /// Changed entities.
    pub updated: usize,
    /// Entities equal to what was stored (nothing written).
    pub unchanged: usize,
}

impl BatchReport {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }
}

/// Keeps the last occurrence of each id, preserving the order of last occurrences.
fn dedupe_last<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut last: HashMap<K, usize> = HashMap::new();
    for (i, t) in items.iter().enumerate() {
        last.insert(key(t), i);
    }
    items
        .iter()
        .enumerate()
        .filter(|(i, t)| last.get(&key(t)) == Some(i))
        .map(|(_, t)| t)
        .collect()
}

/// Rows for a multi-row insert.
type Rows = Vec<Vec<Val>>;

/// Audit and base rows for a batch of changed entities.
fn journal_rows<T: Serialize>(
    ctx: &WriteCtx,
    kind: EntityKind,
    changed: &[(String, Option<&T>, &T)],
) -> Result<(Rows, Rows), StoreError> {
    let mut audit = Vec::with_capacity(changed.len());
    let mut base = Vec::new();
    for (id, before, after) in changed {
        let after_json = serde_json::to_string(after)?;
        let before_json = before.map(serde_json::to_string).transpose()?;
        let op = if before.is_some() { "update" } else { "create" };
        audit.push(vec![
            ctx.now_ms.into(),
            ctx.actor.as_str().into(),
            ctx.origin.as_str().into(),
            kind.as_str().into(),
            id.as_str().into(),
            op.into(),
            before_json.into(),
            after_json.clone().into(),
        ]);
        if ctx.record_base {
            base.push(vec![
                (&*ctx.org).into(),
                kind.as_str().into(),
                id.as_str().into(),
                after_json.into(),
                ctx.now_ms.into(),
            ]);
        }
    }
    Ok((audit, base))
}

async fn write_journal(
    conn: &mut sqlx::AnyConnection,
    audit: Rows,
    base: Rows,
) -> Result<(), StoreError> {
    insert_rows(
        conn,
        "audit",
        "at_ms, actor, origin, kind, oa_id, op, before_json, after_json",
        "",
        audit,
    )
    .await?;
    insert_rows(
        conn,
        "base_snapshots",
        "org, kind, oa_id, body_json, synced_at_ms",
        "ON CONFLICT (org, kind, oa_id) DO UPDATE SET body_json = excluded.body_json, \
         synced_at_ms = excluded.synced_at_ms",
        base,
    )
    .await
}

impl Store {
    /// Upserts many departments in one transaction (the importer's write).
    pub async fn import_departments(
        &self,
        ctx: &WriteCtx,
        depts: &[Department],
    ) -> Result<BatchReport, StoreError> {
        let ctx = &self.stamp(ctx);
        let depts = dedupe_last(depts, |d| d.id);
        let mut report = BatchReport::default();
        let mut tx = self.begin_write().await?;
        if ctx.enqueue || ctx.enforce_rules() {
            for d in depts {
                let saved = save_department_in(&mut tx, ctx, d.clone(), Expect::Any).await?;
                report.count(saved.outcome);
            }
            tx.commit().await?;
            return Ok(report);
        }
        let mut existing: HashMap<i64, Versioned<Department>> = HashMap::new();
        for chunk in depts.chunks(LOAD_CHUNK) {
            let mut sql = Sql::new_for(
                &format!("SELECT {DEPT_COLS} FROM departments WHERE id IN "),
                &tx,
            );
            sql.bind_list(chunk.iter().map(|d| d.id.get()));
            for v in fetch_departments(&mut tx, sql).await? {
                existing.insert(v.entity.id.get(), v);
            }
        }
        let mut writes = Vec::new();
        let mut changed = Vec::new();
        for d in depts {
            let cur = existing.get(&d.id.get());
            match cur {
                Some(c) if c.entity == *d => {
                    report.unchanged += 1;
                    continue;
                }
                Some(_) => report.updated += 1,
                None => report.created += 1,
            }
            writes.push((d, cur.map_or(1, |c| c.version + 1)));
            changed.push((d.id.to_string(), cur.map(|c| &c.entity), d));
        }
        write_departments(&mut tx, &writes, ctx.now_ms).await?;
        let (audit, base) = journal_rows(ctx, EntityKind::Department, &changed)?;
        write_journal(&mut tx, audit, base).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Upserts many users in one transaction (the importer's write).
    pub async fn import_users(
        &self,
        ctx: &WriteCtx,
        users: &[User],
    ) -> Result<BatchReport, StoreError> {
        let ctx = &self.stamp(ctx);
        let users = dedupe_last(users, |u| u.id.clone());
        let mut report = BatchReport::default();
        let mut tx = self.begin_write().await?;
        if ctx.enqueue || ctx.enforce_rules() {
            for u in users {
                let saved = save_user_in(&mut tx, ctx, u.clone(), Expect::Any).await?;
                report.count(saved.outcome);
            }
            tx.commit().await?;
            return Ok(report);
        }
        let mut existing: HashMap<String, Versioned<User>> = HashMap::new();
        for chunk in users.chunks(LOAD_CHUNK) {
            let text = format!("SELECT {USER_COLS} FROM users WHERE id IN ");
            let mut sql = Sql::new_for(&text, &tx);
            sql.bind_list(chunk.iter().map(|u| u.id.as_str()));
            for v in fetch_users(&mut tx, sql).await? {
                existing.insert(v.entity.id.0.clone(), v);
            }
        }
        let mut writes = Vec::new();
        let mut changed = Vec::new();
        for u in users {
            let cur = existing.get(u.id.as_str());
            match cur {
                Some(c) if c.entity == *u => {
                    report.unchanged += 1;
                    continue;
                }
                Some(_) => report.updated += 1,
                None => report.created += 1,
            }
            writes.push((u, cur.map_or(1, |c| c.version + 1)));
            changed.push((u.id.0.clone(), cur.map(|c| &c.entity), u));
        }
        write_users(&mut tx, &writes, ctx.now_ms).await?;
        let (audit, base) = journal_rows(ctx, EntityKind::User, &changed)?;
        write_journal(&mut tx, audit, base).await?;
        tx.commit().await?;
        Ok(report)
    }
}

/// Reads for the streaming import: who names some users as manager.
impl Store {
    /// The ids of the users whose manager is one of `managers` (by the indexed `manager_id`).
    pub async fn user_ids_managed_by(
        &self,
        managers: &[directory_model::OaUserId],
    ) -> Result<Vec<directory_model::OaUserId>, StoreError> {
        use sqlx::Row as _;
        let mut conn = self.pool.acquire().await?;
        let mut out = Vec::new();
        for chunk in managers.chunks(LOAD_CHUNK) {
            let mut sql = Sql::new_for("SELECT id FROM users WHERE manager_id IN ", &conn);
            sql.bind_list(chunk.iter().map(directory_model::OaUserId::as_str));
            for row in sql.query().fetch_all(&mut *conn).await? {
                let id: String = row.try_get("id")?;
                out.push(directory_model::OaUserId::new(id));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_the_last_occurrence_in_order() {
        let items = [(1, "a"), (2, "b"), (1, "c"), (3, "d")];
        let kept: Vec<_> = dedupe_last(&items, |t| t.0).into_iter().copied().collect();
        assert_eq!(kept, vec![(2, "b"), (1, "c"), (3, "d")]);
    }
}
