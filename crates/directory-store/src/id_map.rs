//! The OA↔DingTalk id map: which DingTalk entity each OA entity is, per kind and per
//! organization (DingTalk ids are unique only within a corp; `Store::for_org` picks the org).
//!
//! One rule holds for every way a link is written — one at a time ([`Store::id_map_put`]), in
//! bulk for the full import ([`Store::id_map_put_many`]: tens of thousands of users and
//! departments, where one transaction per entity would be too slow), or by the pusher together
//! with the base ([`Store::record_pushed`]): a pair already stored is accepted again, and a pair
//! that would remap an OA or DingTalk id already linked elsewhere is refused with
//! [`StoreError::IdMapConflict`] and nothing is written, because a silent remap points two
//! entities at one. That rule is [`fresh_links_on`], written once.
//!
//! The pusher's record: after DingTalk accepted a create, the pusher must remember both *which*
//! DingTalk entity it created (the id map) and *what* both sides now hold (the base of the
//! three-way merge), in one transaction; one without the other leaves an unmapped DingTalk
//! entity or a stale base that makes the echo event look like a DingTalk-side change.

use std::collections::HashMap;

use directory_model::{
    DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId, OaRoleId,
    OaUserId,
};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::base::set_base_on;
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};

/// Pairs per statement: two placeholders per pair in the lookup and three in the insert stay
/// far below both backends' placeholder limits.
const CHUNK: usize = 500;

/// An OA id that has a DingTalk counterpart in the id map.
pub trait MappedId: Sized {
    /// The DingTalk id type.
    type Ding;
    /// The map's kind column.
    const KIND: EntityKind;
    /// The OA id as stored.
    fn oa_text(&self) -> String;
    /// Parses a stored OA id.
    fn parse_oa(text: &str) -> Option<Self>;
    /// The DingTalk id as stored.
    fn ding_text(ding: &Self::Ding) -> String;
    /// Parses a stored DingTalk id.
    fn parse_ding(text: &str) -> Option<Self::Ding>;
}

macro_rules! mapped_int {
    ($oa:ident, $ding:ident, $kind:expr) => {
        impl MappedId for $oa {
            type Ding = $ding;
            const KIND: EntityKind = $kind;
            fn oa_text(&self) -> String {
                self.0.to_string()
            }
            fn parse_oa(text: &str) -> Option<Self> {
                text.parse().ok().map($oa)
            }
            fn ding_text(ding: &$ding) -> String {
                ding.0.to_string()
            }
            fn parse_ding(text: &str) -> Option<$ding> {
                text.parse().ok().map($ding)
            }
        }
    };
}

mapped_int!(OaDeptId, DingDeptId, EntityKind::Department);
mapped_int!(OaRoleGroupId, DingRoleGroupId, EntityKind::RoleGroup);
mapped_int!(OaRoleId, DingRoleId, EntityKind::Role);

impl MappedId for OaUserId {
    type Ding = DingUserId;
    const KIND: EntityKind = EntityKind::User;
    fn oa_text(&self) -> String {
        self.0.clone()
    }
    fn parse_oa(text: &str) -> Option<Self> {
        Some(OaUserId::new(text))
    }
    fn ding_text(ding: &DingUserId) -> String {
        ding.0.clone()
    }
    fn parse_ding(text: &str) -> Option<DingUserId> {
        Some(DingUserId::new(text))
    }
}

/// A stored id that does not parse as its kind's id.
fn corrupt(id: &str, side: &str, text: &str) -> StoreError {
    StoreError::Corrupt {
        table: "id_map",
        id: id.to_owned(),
        detail: format!("bad {side} id {text:?}"),
    }
}

/// Of `pairs` (OA text, DingTalk text), those not stored yet, checking the module's rule against
/// the stored links and the earlier pairs: a pair already stored (or repeated) is skipped, a
/// contradicting one fails the whole call with [`StoreError::IdMapConflict`].
async fn fresh_links_on(
    conn: &mut AnyConnection,
    org: &str,
    kind: EntityKind,
    pairs: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, StoreError> {
    // Two look-ups, one per side, each on its own index ((kind, oa_id) and (kind, ding_id)):
    // one statement with `oa_id IN (..) OR ding_id IN (..)` made SQLite scan the kind's links,
    // so a 1,000,000-person import spent over a second per batch of 500 here and grew with
    // the map.
    let mut by_oa: HashMap<String, String> = HashMap::new();
    let mut by_ding: HashMap<String, String> = HashMap::new();
    for column in ["oa_id", "ding_id"] {
        let mut sql = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE org = ")
            .bind(org)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND ")
            .push(column)
            .push(" IN ");
        if column == "oa_id" {
            sql.bind_list(pairs.iter().map(|(oa, _)| oa.as_str()));
        } else {
            sql.bind_list(pairs.iter().map(|(_, ding)| ding.as_str()));
        }
        for r in &sql.query().fetch_all(&mut *conn).await? {
            let oa: String = r.try_get("oa_id")?;
            let ding: String = r.try_get("ding_id")?;
            by_oa.insert(oa.clone(), ding.clone());
            by_ding.insert(ding, oa);
        }
    }
    let mut fresh = Vec::new();
    for (oa, ding) in pairs {
        match (by_oa.get(&oa), by_ding.get(&ding)) {
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
    Ok(fresh)
}

/// Inserts links that [`fresh_links_on`] returned.
async fn insert_links_on(
    conn: &mut AnyConnection,
    org: &str,
    kind: EntityKind,
    links: &[(String, String)],
) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    // When the link was made, for the console's id mapping (wall-clock time: a link is a
    // fact about this database, not about either directory).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut insert =
        Sql::new("INSERT INTO id_map (org, kind, oa_id, ding_id, linked_at_ms) VALUES ");
    for (i, (oa, ding)) in links.iter().enumerate() {
        if i > 0 {
            insert.push_mut(", ");
        }
        insert.push_mut("(");
        insert.bind_mut(org);
        insert.push_mut(", ");
        insert.bind_mut(kind.as_str());
        insert.push_mut(", ");
        insert.bind_mut(oa.as_str());
        insert.push_mut(", ");
        insert.bind_mut(ding.as_str());
        insert.push_mut(", ");
        insert.bind_mut(now_ms);
        insert.push_mut(")");
    }
    insert.query().execute(&mut *conn).await?;
    Ok(())
}

/// Links `oa` to `ding` on `conn` under the module's rule.
async fn link_on<O: MappedId>(
    conn: &mut AnyConnection,
    org: &str,
    oa: &O,
    ding: &O::Ding,
) -> Result<(), StoreError> {
    let pair = vec![(oa.oa_text(), O::ding_text(ding))];
    let fresh = fresh_links_on(conn, org, O::KIND, pair).await?;
    insert_links_on(conn, org, O::KIND, &fresh).await
}

/// Forgets the link of `oa` on `conn`; whether there was one.
async fn unlink_on<O: MappedId>(
    conn: &mut AnyConnection,
    org: &str,
    oa: &O,
) -> Result<bool, StoreError> {
    let n = Sql::new("DELETE FROM id_map WHERE org = ")
        .bind(org)
        .push(" AND kind = ")
        .bind(O::KIND.as_str())
        .push(" AND oa_id = ")
        .bind(oa.oa_text())
        .query()
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}

impl Store {
    /// Records that `oa` is `ding` in DingTalk. Idempotent for the same pair; refuses to remap
    /// either id silently (that would point two entities at one).
    pub async fn id_map_put<O: MappedId>(&self, oa: &O, ding: &O::Ding) -> Result<(), StoreError> {
        let mut tx = self.begin_queue().await?;
        link_on(&mut tx, &self.org, oa, ding).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records many links in one transaction; returns how many were new. Pairs already present
    /// are skipped; a pair that would remap an OA or DingTalk id already linked elsewhere fails
    /// the whole batch with [`StoreError::IdMapConflict`].
    pub async fn id_map_put_many<O: MappedId>(
        &self,
        pairs: &[(O, O::Ding)],
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin_queue().await?;
        let mut inserted = 0;
        for chunk in pairs.chunks(CHUNK) {
            let texts = chunk
                .iter()
                .map(|(oa, ding)| (oa.oa_text(), O::ding_text(ding)))
                .collect();
            let fresh = fresh_links_on(&mut tx, &self.org, O::KIND, texts).await?;
            insert_links_on(&mut tx, &self.org, O::KIND, &fresh).await?;
            inserted += fresh.len();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// The other id of one link: the `want` column where the `by` column is `value`.
    async fn id_map_lookup(
        &self,
        kind: EntityKind,
        by: &str,
        value: &str,
        want: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = Sql::new(&format!("SELECT {want} FROM id_map WHERE org = "))
            .bind(&*self.org)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(&format!(" AND {by} = "))
            .bind(value)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(want)).transpose()?)
    }

    /// The DingTalk id of an OA entity.
    pub async fn ding_id_of<O: MappedId>(&self, oa: &O) -> Result<Option<O::Ding>, StoreError> {
        let oa_text = oa.oa_text();
        let found = self
            .id_map_lookup(O::KIND, "oa_id", &oa_text, "ding_id")
            .await?;
        let Some(text) = found else { return Ok(None) };
        O::parse_ding(&text)
            .map(Some)
            .ok_or_else(|| corrupt(&oa_text, "DingTalk", &text))
    }

    /// The OA id of a DingTalk entity.
    pub async fn oa_id_of<O: MappedId>(&self, ding: &O::Ding) -> Result<Option<O>, StoreError> {
        let ding_text = O::ding_text(ding);
        let found = self
            .id_map_lookup(O::KIND, "ding_id", &ding_text, "oa_id")
            .await?;
        let Some(text) = found else { return Ok(None) };
        O::parse_oa(&text)
            .map(Some)
            .ok_or_else(|| corrupt(&ding_text, "OA", &text))
    }

    /// Every link of one kind (`O` picks the kind), in no particular order.
    pub async fn id_map_all<O: MappedId>(&self) -> Result<Vec<(O, O::Ding)>, StoreError> {
        let rows = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE org = ")
            .bind(&*self.org)
            .push(" AND kind = ")
            .bind(O::KIND.as_str())
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let oa: String = r.try_get("oa_id")?;
                let ding: String = r.try_get("ding_id")?;
                let oa_id = O::parse_oa(&oa).ok_or_else(|| corrupt(&oa, "OA", &oa))?;
                let ding_id =
                    O::parse_ding(&ding).ok_or_else(|| corrupt(&oa, "DingTalk", &ding))?;
                Ok((oa_id, ding_id))
            })
            .collect()
    }

    /// Forgets the mapping of an OA entity (after it was deleted on both sides).
    pub async fn id_map_remove<O: MappedId>(&self, oa: &O) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        unlink_on(&mut conn, &self.org, oa).await
    }

    /// Records that DingTalk holds `base` for the OA entity `oa`, which is `ding` there: saves
    /// the id mapping (idempotent for the same pair; a clash with another pair is refused like
    /// [`Store::id_map_put`]) and the base snapshot in one transaction (see the module doc).
    pub async fn record_pushed<O: MappedId, T: Serialize>(
        &self,
        oa: &O,
        ding: &O::Ding,
        base: &T,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_value(base)?;
        let mut tx = self.begin_queue().await?;
        link_on(&mut tx, &self.org, oa, ding).await?;
        set_base_on(
            &mut tx,
            &self.org,
            O::KIND,
            &oa.oa_text(),
            Some(&body),
            now_ms,
        )
        .await?;
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
        let mut tx = self.begin_queue().await?;
        unlink_on(&mut tx, &self.org, oa).await?;
        set_base_on(&mut tx, &self.org, O::KIND, &oa.oa_text(), None, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }
}
