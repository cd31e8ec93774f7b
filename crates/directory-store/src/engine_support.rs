//! Bulk id-map access for the sync engine's full import.
//!
//! The importer links tens of thousands of users and departments at once. Doing that with
//! [`Store::id_map_put`] would cost one transaction per entity, and translating ids one lookup at
//! a time would cost one query per reference. These two functions read a whole kind of the map
//! in one query and write many links in one transaction, with the same no-silent-remap rule as
//! the single-entity write: a pair that contradicts an existing link is refused and nothing of
//! the batch is written.

use std::collections::HashMap;

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;
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
