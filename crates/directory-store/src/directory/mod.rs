//! The directory's writes with DingTalk's referential rules, and its reads — one file per
//! entity kind (`department`, `user`, `role` for role groups and roles, `assignment`), each
//! holding its rules, its SQL and the `impl Store` methods that wrap them, plus `read` for the
//! listings and the snapshot. This file holds what every kind's write shares: what the caller
//! expects ([`Expect`]), what a save did ([`Saved`]), and the steps of recording a save or a
//! deletion.
//!
//! Each public write opens one write transaction (see `db`), checks the rules, writes the rows,
//! and records audit / outbox / base through `journal` before committing — so an error anywhere
//! leaves nothing behind, and a committed change always has its outbox entry.
//!
//! The rules apply when [`WriteCtx::check_rules`] is set (OA writes); DingTalk's own state
//! (events, import) is taken as it is, because refusing it would only make the two sides drift
//! further apart.
//!
//! Writing a state equal to the stored one is a no-op that records nothing (design invariant 5:
//! the echo of our own push writes nothing and queues nothing).

mod assignment;
mod department;
mod read;
mod role;
mod user;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

pub(crate) use assignment::{assign_in, unassign_in};
pub use department::DeleteReport;
pub(crate) use department::{department_reads, save_department_in};
pub use read::{AssignmentQuery, DeptQuery, Page, RoleQuery, UserQuery};
pub(crate) use role::{delete_role_in, role_reads, save_role_in};
pub(crate) use user::{delete_user_in, save_user_in, user_reads};

use crate::base::refresh_base;
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, Recorded, WriteCtx, record};
use crate::rows::{Versioned, count};

/// How far an ancestor walk may go before the data is declared corrupt (a cycle already in the
/// table would otherwise loop forever).
const MAX_DEPTH: usize = 10_000;

/// What the caller expects to find before a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create: the entity must not exist.
    Absent,
    /// Update: the entity must exist.
    Present,
    /// Update with optimistic concurrency (If-Match): the entity must be at this version.
    Version(i64),
    /// Upsert: create or update, whatever is there (the engine applying DingTalk's state).
    Any,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new entity was written.
    Created,
    /// An existing entity changed.
    Updated,
    /// The stored entity already equalled the new one; nothing was written or queued.
    Unchanged,
}

/// The result of a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved<T> {
    /// The stored entity and its new version.
    pub value: Versioned<T>,
    /// What happened.
    pub outcome: Outcome,
    /// The audit sequence number (None when unchanged).
    pub audit_seq: Option<i64>,
    /// The queued outbox entry, if any.
    pub outbox_id: Option<i64>,
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    Ok(serde_json::to_value(v)?)
}

fn check_expect(
    kind: EntityKind,
    id: &str,
    current: Option<i64>,
    expect: Expect,
) -> Result<(), StoreError> {
    match (expect, current) {
        (Expect::Absent, Some(_)) => Err(StoreError::AlreadyExists {
            kind,
            id: id.to_owned(),
        }),
        (Expect::Present | Expect::Version(_), None) => Err(StoreError::NotFound {
            kind,
            id: id.to_owned(),
        }),
        (Expect::Version(expected), Some(actual)) if expected != actual => {
            Err(StoreError::VersionConflict {
                kind,
                id: id.to_owned(),
                expected,
                actual,
            })
        }
        _ => Ok(()),
    }
}

/// The entity a deletion removes: `current`, which must exist and, with `expected_version`, be
/// at that version.
fn to_delete<T>(
    kind: EntityKind,
    id: &str,
    current: Option<Versioned<T>>,
    expected_version: Option<i64>,
) -> Result<Versioned<T>, StoreError> {
    let current = current.ok_or_else(|| StoreError::NotFound {
        kind,
        id: id.to_owned(),
    })?;
    if let Some(v) = expected_version {
        check_expect(kind, id, Some(current.version), Expect::Version(v))?;
    }
    Ok(current)
}

/// The result of saving `new` over an equal stored entity, if it is equal: nothing is written
/// or queued, only the base may move (see [`refresh_base`]).
async fn unchanged<T: Serialize + PartialEq + Clone>(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    kind: EntityKind,
    id: &str,
    current: Option<&Versioned<T>>,
    new: &T,
) -> Result<Option<Saved<T>>, StoreError> {
    let Some(cur) = current.filter(|c| c.entity == *new) else {
        return Ok(None);
    };
    refresh_base(conn, ctx, kind, id, new).await?;
    Ok(Some(Saved {
        value: cur.clone(),
        outcome: Outcome::Unchanged,
        audit_seq: None,
        outbox_id: None,
    }))
}

/// The version a save over `current` writes.
fn next_version<T>(ctx: &WriteCtx, current: Option<&Versioned<T>>) -> i64 {
    match current {
        Some(c) if ctx.keep_version => c.version,
        Some(c) => c.version + 1,
        None => 1,
    }
}

/// Records the save of `entity` (already written at [`next_version`]) over `current`, as a
/// create or an update, and returns what the save did.
async fn record_saved<T: Serialize>(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    kind: EntityKind,
    id: String,
    entity: T,
    current: Option<&Versioned<T>>,
    reads: Vec<String>,
) -> Result<Saved<T>, StoreError> {
    let Recorded {
        audit_seq,
        outbox_id,
    } = record(
        conn,
        ctx,
        Change {
            kind,
            oa_id: id,
            op: if current.is_some() {
                Op::Update
            } else {
                Op::Create
            },
            before: current.map(|c| to_json(&c.entity)).transpose()?,
            after: Some(to_json(&entity)?),
            reads,
        },
    )
    .await?;
    Ok(Saved {
        outcome: if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        },
        value: Versioned {
            entity,
            version: next_version(ctx, current),
            updated_at_ms: ctx.now_ms,
        },
        audit_seq: Some(audit_seq),
        outbox_id,
    })
}

/// Records the deletion of `before` (its rows already deleted).
async fn record_deleted<T: Serialize>(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    kind: EntityKind,
    id: String,
    before: &T,
    reads: Vec<String>,
) -> Result<(), StoreError> {
    record(
        conn,
        ctx,
        Change {
            kind,
            oa_id: id,
            op: Op::Delete,
            before: Some(to_json(before)?),
            after: None,
            reads,
        },
    )
    .await?;
    Ok(())
}

impl Store {
    /// Hands out `n` fresh OA ids for departments, role groups or roles (ids the OA system
    /// does not choose itself), above every id already stored.
    pub async fn allocate_ids(&self, kind: EntityKind, n: i64) -> Result<i64, StoreError> {
        let table = match kind {
            EntityKind::Department => "departments",
            EntityKind::RoleGroup => "role_groups",
            EntityKind::Role => "roles",
            EntityKind::User | EntityKind::RoleAssignment => {
                return Err(StoreError::Corrupt {
                    table: "id_counters",
                    id: kind.to_string(),
                    detail: "only integer-keyed kinds have allocated ids".into(),
                });
            }
        };
        let mut tx = self.begin_write().await?;
        let row = Sql::new("SELECT next_id FROM id_counters WHERE kind = ")
            .bind(kind.as_str())
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        let counter: Option<i64> = row.map(|r| r.try_get("next_id")).transpose()?;
        let max_row = Sql::new(&format!("SELECT MAX(id) AS m FROM {table}"))
            .query()
            .fetch_one(&mut *tx)
            .await?;
        let max: Option<i64> = max_row.try_get("m")?;
        let first = counter.unwrap_or(1).max(max.unwrap_or(0) + 1);
        Sql::new("INSERT INTO id_counters (kind, next_id) VALUES (")
            .bind(kind.as_str())
            .push(", ")
            .bind(first + n.max(1))
            .push(") ON CONFLICT (kind) DO UPDATE SET next_id = excluded.next_id")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(first)
    }
}

/// Whether a row of `table` has id `id` (for the existence rules).
async fn exists(
    conn: &mut AnyConnection,
    table: &str,
    id: impl Into<crate::db::Val>,
) -> Result<bool, StoreError> {
    let sql = Sql::new(&format!("SELECT COUNT(*) AS n FROM {table} WHERE id = ")).bind(id);
    Ok(count(conn, sql).await? > 0)
}
