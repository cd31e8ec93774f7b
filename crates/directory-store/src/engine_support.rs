//! Store operations that the sync engine's pusher needs and the store's own modules do not offer:
//! recording DingTalk's acceptance of a push as one transaction.
//!
//! Why one transaction: after DingTalk accepted a create, the pusher must remember both *which*
//! DingTalk entity it created (the id map) and *what* both sides now hold (the base snapshot of
//! the three-way merge). Saving one without the other would leave either an unmapped DingTalk
//! entity (the next attempt would have to find it again) or a mapping whose base is stale (the
//! echo event would look like a DingTalk-side change). Either half alone is recoverable, but
//! together they make the common path exact. Written by the sync engine's OUT engineer; SQL
//! stays inside the store as the design requires.

use serde::Serialize;
use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::set_base_on;
use crate::sync::MappedId;

impl Store {
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

    /// Every id-map entry of one kind as `(oa id, DingTalk id)` text pairs, for reconcile's
    /// translation of a whole DingTalk snapshot into OA ids (one query instead of one per
    /// entity).
    pub async fn id_map_all(&self, kind: EntityKind) -> Result<Vec<(String, String)>, StoreError> {
        let rows = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE kind = ")
            .bind(kind.as_str())
            .push(" ORDER BY oa_id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("oa_id")?, r.try_get("ding_id")?)))
            .collect()
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
