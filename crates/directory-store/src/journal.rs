//! What every directory write records beside itself: the audit row, the outbox entry and the
//! base snapshot — in the caller's transaction (design invariant 2).
//!
//! A write carries a [`WriteCtx`]: who made it, where it came from, and whether it should be
//! pushed to DingTalk. OA writes are pushed (an outbox entry) but keep the old base, because
//! DingTalk does not have them yet. Writes that came *from* DingTalk (events, import) are
//! already on DingTalk, so they move the base to the new state and queue nothing, unless the
//! engine asks for it (for example after a three-way merge in which OA won a field).
//!
//! The audit table doubles as the change feed: its `seq` is the cursor, and because directory
//! writes are serialized (see `db`), `seq` order is commit order.
//!
//! Outbox entries carry *dependency keys* (see `outbox`): the entity they write, and the
//! entities they merely reference (a user reads its departments, a role reads its group).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::base::set_base_on;
use crate::db::{DEFAULT_ORG, Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::outbox::insert_entry;

/// Where a change came from; recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The OA system, through dingsync's OA API.
    Oa,
    /// A DingTalk event, applied by the engine.
    #[serde(rename = "dingtalk")]
    DingTalk,
    /// A reconcile run.
    Reconcile,
    /// A full import from DingTalk.
    Import,
}

impl Origin {
    /// The text stored in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oa => "oa",
            Self::DingTalk => "dingtalk",
            Self::Reconcile => "reconcile",
            Self::Import => "import",
        }
    }

    /// The inverse of [`Origin::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "oa" => Self::Oa,
            "dingtalk" => Self::DingTalk,
            "reconcile" => Self::Reconcile,
            "import" => Self::Import,
            _ => return None,
        })
    }
}

/// The kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The entity appeared (for assignments: the role was granted).
    Create,
    /// The entity changed.
    Update,
    /// The entity was removed (for assignments: the role was revoked).
    Delete,
}

impl Op {
    /// The text stored in `op` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }

    /// The inverse of [`Op::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            _ => return None,
        })
    }
}

/// Who is writing, from where, and what to record beside the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteCtx {
    /// The origin, recorded in the audit log.
    pub origin: Origin,
    /// Who made the change (an API token's name, `engine`, `importer`…).
    pub actor: String,
    /// The write time, Unix milliseconds (passed in so that tests control the clock).
    pub now_ms: i64,
    /// Whether to queue an outbox entry (push the change to DingTalk).
    pub enqueue: bool,
    /// Whether to move the base snapshot to the new state (both sides now agree).
    pub record_base: bool,
    /// Whether validation and the referential rules apply. On for OA writes; off for state
    /// mirrored from DingTalk, which is taken as it is (refusing it would only make the two
    /// sides drift further apart).
    pub check_rules: bool,
    /// Whether the entity keeps its version. Only for what dingsync records for itself on an
    /// OA entity (the department's `source_identifier` marker before its first push): the OA
    /// client's `ETag` (the version) must stay valid across it (issue 18, B8).
    pub keep_version: bool,
    /// The DingTalk organization whose base and outbox the write records into. Not the
    /// caller's to set: the [`Store`] handle that performs the write stamps its own org
    /// (`Store::for_org`), so a write can never land in another org's bookkeeping.
    pub(crate) org: Arc<str>,
}

impl WriteCtx {
    /// A write from the OA system: validated, checked, pushed; the base stays.
    pub fn oa(actor: impl Into<String>, now_ms: i64) -> Self {
        Self {
            origin: Origin::Oa,
            actor: actor.into(),
            now_ms,
            enqueue: true,
            record_base: false,
            check_rules: true,
            keep_version: false,
            org: Arc::from(DEFAULT_ORG),
        }
    }

    /// A write that mirrors DingTalk's state (an event): not checked, not pushed; the base
    /// moves.
    pub fn dingtalk(actor: impl Into<String>, now_ms: i64) -> Self {
        Self {
            origin: Origin::DingTalk,
            actor: actor.into(),
            now_ms,
            enqueue: false,
            record_base: true,
            check_rules: false,
            keep_version: false,
            org: Arc::from(DEFAULT_ORG),
        }
    }

    /// A write from the full import: not checked, not pushed; the base moves.
    pub fn import(actor: impl Into<String>, now_ms: i64) -> Self {
        Self {
            origin: Origin::Import,
            actor: actor.into(),
            now_ms,
            ..Self::dingtalk(String::new(), now_ms)
        }
    }

    /// A write from reconcile; the engine sets `enqueue` / `record_base` / `check_rules` as
    /// the plan requires (all off by default).
    pub fn reconcile(actor: impl Into<String>, now_ms: i64) -> Self {
        Self {
            origin: Origin::Reconcile,
            actor: actor.into(),
            now_ms,
            enqueue: false,
            record_base: false,
            check_rules: false,
            keep_version: false,
            org: Arc::from(DEFAULT_ORG),
        }
    }

    /// Overrides whether an outbox entry is queued.
    pub fn with_enqueue(mut self, enqueue: bool) -> Self {
        self.enqueue = enqueue;
        self
    }

    /// Overrides whether the base snapshot moves.
    pub fn with_record_base(mut self, record_base: bool) -> Self {
        self.record_base = record_base;
        self
    }

    /// Overrides whether validation and the referential rules apply.
    pub fn with_check_rules(mut self, check_rules: bool) -> Self {
        self.check_rules = check_rules;
        self
    }

    /// Overrides whether the entity keeps its version (see [`WriteCtx::keep_version`]).
    pub fn with_keep_version(mut self, keep_version: bool) -> Self {
        self.keep_version = keep_version;
        self
    }

    /// Whether validation and referential rules apply.
    pub(crate) fn enforce_rules(&self) -> bool {
        self.check_rules
    }
}

/// The dependency key of one entity, e.g. `department:12`.
pub(crate) fn dep_key(kind: EntityKind, oa_id: &str) -> String {
    format!("{}:{oa_id}", kind.as_str())
}

/// One change to record.
#[derive(Debug)]
pub(crate) struct Change {
    /// The entity kind.
    pub kind: EntityKind,
    /// The entity's OA id as text (`user/role` for assignments).
    pub oa_id: String,
    /// What happened.
    pub op: Op,
    /// The state before (None for create).
    pub before: Option<serde_json::Value>,
    /// The state after (None for delete).
    pub after: Option<serde_json::Value>,
    /// Entities the change only references (the entity itself is always a written key).
    pub reads: Vec<String>,
}

/// What recording a change produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The audit sequence number.
    pub audit_seq: i64,
    /// The outbox entry, if one was queued.
    pub outbox_id: Option<i64>,
}

fn json_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(serde_json::Value::to_string)
}

/// Records `change` (audit, outbox, base) on `conn`, which must be inside a write transaction.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    change: Change,
) -> Result<Recorded, StoreError> {
    let row = Sql::new(
        "INSERT INTO audit (at_ms, actor, origin, kind, oa_id, op, before_json, after_json) VALUES (",
    )
    .bind(ctx.now_ms)
    .push(", ")
    .bind(ctx.actor.as_str())
    .push(", ")
    .bind(ctx.origin.as_str())
    .push(", ")
    .bind(change.kind.as_str())
    .push(", ")
    .bind(change.oa_id.as_str())
    .push(", ")
    .bind(change.op.as_str())
    .push(", ")
    .bind(json_text(&change.before))
    .push(", ")
    .bind(json_text(&change.after))
    .push(") RETURNING seq")
    .query()
    .fetch_one(&mut *conn)
    .await?;
    let audit_seq: i64 = row.try_get("seq")?;

    let outbox_id = if ctx.enqueue {
        Some(insert_entry(conn, &ctx.org, &change, audit_seq, ctx.now_ms).await?)
    } else {
        None
    };

    if ctx.record_base {
        set_base_on(
            conn,
            &ctx.org,
            change.kind,
            &change.oa_id,
            change.after.as_ref(),
            ctx.now_ms,
        )
        .await?;
    }
    Ok(Recorded {
        audit_seq,
        outbox_id,
    })
}

impl Store {
    /// `ctx` stamped with this handle's organization (see [`WriteCtx::org`]); every public
    /// write that takes a context starts with it.
    pub(crate) fn stamp(&self, ctx: &WriteCtx) -> WriteCtx {
        WriteCtx {
            org: self.org.clone(),
            ..ctx.clone()
        }
    }

    /// Records `change` on its own, in a write transaction of its own (for records that are not
    /// the side effect of a row write: a push without a change, conflicts in the audit log).
    pub(crate) async fn record_alone(
        &self,
        ctx: &WriteCtx,
        change: Change,
    ) -> Result<Recorded, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let recorded = record(&mut tx, ctx, change).await?;
        tx.commit().await?;
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_ops_round_trip() {
        for o in [
            Origin::Oa,
            Origin::DingTalk,
            Origin::Reconcile,
            Origin::Import,
        ] {
            assert_eq!(Origin::parse(o.as_str()), Some(o));
        }
        for op in [Op::Create, Op::Update, Op::Delete] {
            assert_eq!(Op::parse(op.as_str()), Some(op));
        }
    }

    #[test]
    fn contexts_decide_outbox_and_base() {
        let oa = WriteCtx::oa("api", 1);
        assert!(oa.enqueue && !oa.record_base && oa.enforce_rules());
        let ding = WriteCtx::dingtalk("engine", 1);
        assert!(!ding.enqueue && ding.record_base && !ding.enforce_rules());
        let import = WriteCtx::import("importer", 1);
        assert_eq!(import.origin, Origin::Import);
        assert_eq!(import.actor, "importer");
        assert!(!import.enqueue && import.record_base);
        assert!(WriteCtx::dingtalk("e", 1).with_enqueue(true).enqueue);
    }
}
