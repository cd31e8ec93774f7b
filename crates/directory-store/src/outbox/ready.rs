//! An outbox claim that scales: [`Store::outbox_claim_ready`] applies the dependency rule of
//! [`Store::outbox_claim`] per key instead of per pair of entries, so its cost does not grow
//! with the square of the backlog.
//!
//! Why: `outbox_claim` checks each candidate against every earlier unfinished entry sharing a
//! key, inside one statement that SQLite evaluates for every ready row before `LIMIT`. With
//! thousands of users queued into one department (all readers of that department's key) one
//! claim cost seconds (measured: 2 s at 2,000 queued entries), so the pusher crawled at 40
//! pushes/s with a 500/s rate limit. Here the ready candidates are read in id order a window at
//! a time (index `outbox_state`), and for each distinct key among them the earliest unfinished
//! writer (and, for keys they write, the earliest unfinished holder) is looked up once (index
//! `outbox_keys_key`).
//!
//! Several instances: the choice is made without row locks, and the final `UPDATE` only takes
//! entries that are still claimable (on PostgreSQL it waits for a competing claim of the same
//! row to commit and then re-checks), so no entry is claimed twice. Two pushers claiming at the
//! same moment compute the same choice, though, and the loser would come back empty-handed and
//! idle while entries are ready; so a claim that chose entries but got none of them looks again
//! (the winner's entries are no longer candidates).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, Row};

use super::{IN_CHUNK, OutboxEntry};
use crate::claims::Claim;
use crate::db::{Sql, Store};
use crate::error::StoreError;

/// Candidates examined per window of [`Store::outbox_claim_ready`], as a multiple of the limit.
const WINDOW_FACTOR: i64 = 4;
/// Ready entries [`Store::outbox_claim_ready`] examines at most per claim, so a long blocked
/// chain cannot make one claim read the whole queue.
const MAX_SCANNED: usize = 20_000;
/// How many times [`Store::outbox_claim_ready`] looks again after losing every entry it chose
/// to a concurrent claim.
const LOST_RACE_RETRIES: usize = 4;

/// The earliest unfinished entry holding / writing each key seen so far, cached across windows
/// of one claim (a key's first blocker cannot change while the claim's transaction runs).
#[derive(Debug, Default)]
struct FirstBlockers {
    /// Earliest unfinished entry holding the key (blocks a writer of it).
    holder: BTreeMap<String, Option<i64>>,
    /// Earliest unfinished entry writing the key (blocks a reader of it).
    writer: BTreeMap<String, Option<i64>>,
}

impl FirstBlockers {
    /// Whether entry `id`, with `keys` as `(key, writes)`, waits for an earlier entry.
    async fn blocks(
        &mut self,
        tx: &mut AnyConnection,
        id: i64,
        keys: &[(String, bool)],
    ) -> Result<bool, StoreError> {
        for (key, writes) in keys {
            let cache = if *writes {
                &mut self.holder
            } else {
                &mut self.writer
            };
            let first = match cache.get(key) {
                Some(first) => *first,
                None => {
                    let first = first_unfinished(tx, key, !*writes).await?;
                    cache.insert(key.clone(), first);
                    first
                }
            };
            if first.is_some_and(|f| f < id) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Store {
    /// Claims up to `limit` ready, unblocked outbox entries in id order, leased to `worker`
    /// until `now_ms + lease_ms` — the same rule as [`Store::outbox_claim`] (an entry waits for
    /// every earlier unfinished entry that writes a key it reads, or holds a key it writes), but
    /// computed per key instead of per pair of entries (see the module doc for why, and for
    /// several instances claiming at once).
    pub async fn outbox_claim_ready(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let claim = Claim {
            worker,
            now_ms,
            lease_ms,
            limit,
        };
        for _ in 0..LOST_RACE_RETRIES {
            let (chosen, claimed) = self.outbox_claim_ready_once(claim).await?;
            if !claimed.is_empty() || chosen == 0 {
                return Ok(claimed);
            }
        }
        Ok(Vec::new())
    }

    /// One attempt of [`Store::outbox_claim_ready`]: how many entries it chose, and those it got.
    async fn outbox_claim_ready_once(
        &self,
        claim: Claim<'_>,
    ) -> Result<(usize, Vec<OutboxEntry>), StoreError> {
        let mut tx = self.begin_queue().await?;
        let chosen = choose_ready(&mut tx, &self.org, claim).await?;
        let mut claimed = take_chosen(&mut tx, &chosen, claim).await?;
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
}

/// Up to `claim.limit` ready, unblocked entry ids in id order, read a window at a time.
async fn choose_ready(
    tx: &mut AnyConnection,
    org: &str,
    claim: Claim<'_>,
) -> Result<Vec<i64>, StoreError> {
    let limit = usize::try_from(claim.limit.max(1)).unwrap_or(usize::MAX);
    let window = i64::try_from(limit).unwrap_or(i64::MAX / 8) * WINDOW_FACTOR + 64;
    let mut chosen: Vec<i64> = Vec::new();
    let mut after = 0_i64;
    let mut scanned = 0_usize;
    let mut blockers = FirstBlockers::default();
    while chosen.len() < limit && scanned < MAX_SCANNED {
        let candidates = ready_window(tx, org, after, claim.now_ms, window).await?;
        let Some(&last) = candidates.last() else {
            break;
        };
        scanned += candidates.len();
        let keys = keys_of(tx, &candidates).await?;
        for id in &candidates {
            if chosen.len() >= limit {
                break;
            }
            let own = keys.get(id).map(Vec::as_slice).unwrap_or_default();
            if !blockers.blocks(tx, *id, own).await? {
                chosen.push(*id);
            }
        }
        after = last;
    }
    Ok(chosen)
}

/// The next `window` claimable entry ids of `org` after `after`, in id order.
async fn ready_window(
    tx: &mut AnyConnection,
    org: &str,
    after: i64,
    now_ms: i64,
    window: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut candidates: BTreeSet<i64> = BTreeSet::new();
    for (state, time_col) in [
        ("pending", "next_attempt_at_ms"),
        ("claimed", "claimed_until_ms"),
    ] {
        let rows = Sql::new(&format!(
            "SELECT id FROM outbox WHERE state = '{state}' AND id > "
        ))
        .bind(after)
        .push(" AND org = ")
        .bind(org)
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
    Ok(candidates
        .into_iter()
        .take(usize::try_from(window).unwrap_or(usize::MAX))
        .collect())
}

/// The dependency keys of `ids`, as `(key, writes)` per entry.
async fn keys_of(
    tx: &mut AnyConnection,
    ids: &[i64],
) -> Result<BTreeMap<i64, Vec<(String, bool)>>, StoreError> {
    let mut keys: BTreeMap<i64, Vec<(String, bool)>> = BTreeMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut sql =
            Sql::new("SELECT entry_id, dep_key, writes FROM outbox_keys WHERE entry_id IN ");
        sql.bind_list(chunk.iter().copied());
        for r in sql.query().fetch_all(&mut *tx).await? {
            let writes: i64 = r.try_get("writes")?;
            keys.entry(r.try_get("entry_id")?)
                .or_default()
                .push((r.try_get("dep_key")?, writes != 0));
        }
    }
    Ok(keys)
}

/// Claims those of `chosen` that are still claimable; returns their ids.
async fn take_chosen(
    tx: &mut AnyConnection,
    chosen: &[i64],
    claim: Claim<'_>,
) -> Result<Vec<i64>, StoreError> {
    let now_ms = claim.now_ms;
    let mut claimed = Vec::with_capacity(chosen.len());
    for chunk in chosen.chunks(IN_CHUNK) {
        let mut sql = Sql::new("UPDATE outbox SET state = 'claimed', claimed_by = ");
        sql.bind_mut(claim.worker);
        sql.push_mut(", claimed_until_ms = ");
        sql.bind_mut(now_ms.saturating_add(claim.lease_ms));
        sql.push_mut(", attempts = attempts + 1, updated_at_ms = ");
        sql.bind_mut(now_ms);
        sql.push_mut(" WHERE ((state = 'pending' AND next_attempt_at_ms <= ");
        sql.bind_mut(now_ms);
        sql.push_mut(") OR (state = 'claimed' AND claimed_until_ms <= ");
        sql.bind_mut(now_ms);
        sql.push_mut(")) AND id IN ");
        sql.bind_list(chunk.iter().copied());
        sql.push_mut(" RETURNING id");
        for r in sql.query().fetch_all(&mut *tx).await? {
            claimed.push(r.try_get::<i64, _>("id")?);
        }
    }
    Ok(claimed)
}

/// The earliest unfinished (pending or claimed) outbox entry holding `key` — only writers of it
/// if `writers_only`. Walks the key's index range in entry order and stops at the first match.
async fn first_unfinished(
    tx: &mut AnyConnection,
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
