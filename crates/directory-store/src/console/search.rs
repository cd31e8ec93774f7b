//! The console's directory reads at 100,000 people: user search by indexed lookups only, one
//! page of users by id, and the sync state of just the objects a page shows.
//!
//! Why here and not in `directory::read`: the directory's listings serve the OA API and the
//! engine (filtered, keyset-paged, whole entities); the console needs ids first (to count,
//! merge several lookups and page), then whole users for the fifty rows it draws. Every
//! statement here is answered from an index (`users_name_prefix`, `users_mobile`,
//! `users_job_number`, `users_email`, the primary key, `outbox_entity`,
//! `held_deletions_entity`, `conflicts_entity`), so a keystroke in the search box never reads
//! the whole table.
//!
//! The name search matches the start of the name, case-insensitively for ASCII letters (a
//! Chinese name starts with the family name, so typing it narrows as one expects). A
//! substring search would have to read every name on every keystroke.

use std::collections::{BTreeSet, HashMap};

use directory_model::User;
use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::rows::{USER_COLS, Versioned, fetch_users};
use crate::url::Backend;

/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// Something waiting on an object, most urgent first (the order the console ranks them in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Waiting {
    /// A push DingTalk refused for good (a dead letter).
    DeadLetter,
    /// A deletion held for approval.
    HeldDeletion,
    /// A recorded conflict nobody has decided.
    Conflict,
    /// A push queued or in flight.
    PendingPush,
}

/// The next string after every string starting with `prefix` in code-point (= UTF-8 byte)
/// order, or `None` when no such bound exists (an empty prefix, or one of U+10FFFF only).
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut code = u32::from(last) + 1;
        while code <= 0x10FFFF {
            if let Some(next) = char::from_u32(code) {
                chars.push(next);
                return Some(chars.into_iter().collect());
            }
            code += 1; // skips the surrogate range
        }
    }
    None
}

fn department_filter(sql: Sql, department: Option<i64>) -> Sql {
    match department {
        Some(d) => sql
            .push(" AND id IN (SELECT user_id FROM user_departments WHERE dept_id = ")
            .bind(d)
            .push(")"),
        None => sql,
    }
}

impl Store {
    /// The lower-cased name expression the `users_name_prefix` index is built on (ASCII
    /// letters only on both backends, so the two agree on what matches).
    fn name_key(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "LOWER(name)",
            Backend::Postgres => "LOWER(name COLLATE \"C\")",
        }
    }

    /// Ids of users matching `text` exactly by id, national mobile number, job number or email,
    /// or whose name starts with it; at most `limit` per kind of match, sorted by id. With
    /// `department`, only its direct members.
    pub async fn console_user_ids(
        &self,
        text: &str,
        department: Option<i64>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit.max(1));
        let mobile = text.trim_start_matches('+');
        let mobile = mobile.rsplit('-').next().unwrap_or(mobile);
        let mut statements = vec![
            Sql::new("SELECT id FROM users WHERE id = ").bind(text),
            Sql::new("SELECT id FROM users WHERE mobile_number = ").bind(mobile),
            Sql::new("SELECT id FROM users WHERE job_number = ").bind(text),
        ];
        if text.contains('@') {
            statements.push(
                Sql::new("SELECT id FROM users WHERE (email = ")
                    .bind(text)
                    .push(" OR email = ")
                    .bind(text.to_lowercase())
                    .push(")"),
            );
        }
        let key = self.name_key();
        let low = text.to_ascii_lowercase();
        let name = Sql::new(&format!("SELECT id FROM users WHERE {key} >= ")).bind(low.as_str());
        statements.push(match prefix_upper_bound(&low) {
            Some(high) => name.push(&format!(" AND {key} < ")).bind(high),
            None => name,
        });
        let mut found = BTreeSet::new();
        for sql in statements {
            let sql = department_filter(sql, department)
                .push(" LIMIT ")
                .bind(limit);
            for row in sql.query().fetch_all(&self.pool).await? {
                found.insert(row.try_get::<String, _>("id")?);
            }
        }
        Ok(found.into_iter().collect())
    }

    /// One page of user ids in id order (`offset` rows skipped), optionally only the direct
    /// members of `department`.
    pub async fn console_user_page_ids(
        &self,
        department: Option<i64>,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        // A department's page reads its memberships in user order straight from the
        // `user_departments_dept` index (no set of every member to build first).
        let sql = match department {
            Some(d) => Sql::new("SELECT user_id AS id FROM user_departments WHERE dept_id = ")
                .bind(d)
                .push(" ORDER BY user_id LIMIT "),
            None => Sql::new("SELECT id FROM users ORDER BY id LIMIT "),
        };
        let sql = sql
            .bind(i64::from(limit.max(1)))
            .push(" OFFSET ")
            .bind(i64::try_from(offset).unwrap_or(i64::MAX));
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// How many users there are (in `department`, when given).
    pub async fn console_user_count(&self, department: Option<i64>) -> Result<i64, StoreError> {
        let sql = match department {
            Some(d) => {
                Sql::new("SELECT COUNT(*) AS n FROM user_departments WHERE dept_id = ").bind(d)
            }
            None => Sql::new("SELECT COUNT(*) AS n FROM users"),
        };
        Ok(sql.query().fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// Of `ids`, those that are direct members of `department`.
    pub async fn users_in_department(
        &self,
        department: i64,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql =
                Sql::new("SELECT user_id FROM user_departments WHERE dept_id = ").bind(department);
            sql.push_mut(" AND user_id IN ");
            sql.bind_list(chunk.iter().map(String::as_str));
            for row in sql.query().fetch_all(&self.pool).await? {
                out.push(row.try_get::<String, _>("user_id")?);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The users with these ids, in the order given (missing ids are skipped).
    pub async fn users_by_ids(&self, ids: &[String]) -> Result<Vec<Versioned<User>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut found: HashMap<String, Versioned<User>> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql = Sql::new(&format!("SELECT {USER_COLS} FROM users WHERE id IN "));
            sql.bind_list(chunk.iter().map(String::as_str));
            for user in fetch_users(&mut conn, sql).await? {
                found.insert(user.entity.id.as_str().to_owned(), user);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// What waits on each of these objects of `kind` (objects with nothing waiting are
    /// absent; an object may have several).
    pub async fn waiting_of(
        &self,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<Vec<(String, Waiting)>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let ids = || chunk.iter().map(String::as_str);
            let mut outbox = Sql::new(
                "SELECT DISTINCT oa_id, state FROM outbox WHERE state IN ('dead', 'pending', \
                 'claimed') AND kind = ",
            )
            .bind(kind.as_str())
            .push(" AND oa_id IN ");
            outbox.bind_list(ids());
            for row in outbox.query().fetch_all(&self.pool).await? {
                let state: String = row.try_get("state")?;
                let waiting = if state == "dead" {
                    Waiting::DeadLetter
                } else {
                    Waiting::PendingPush
                };
                out.push((row.try_get("oa_id")?, waiting));
            }
            let mut held = Sql::new(
                "SELECT DISTINCT oa_id FROM held_deletions WHERE state = 'held' AND kind = ",
            )
            .bind(kind.as_str())
            .push(" AND oa_id IN ");
            held.bind_list(ids());
            for row in held.query().fetch_all(&self.pool).await? {
                out.push((row.try_get("oa_id")?, Waiting::HeldDeletion));
            }
            let mut conflicts = Sql::new(
                "SELECT DISTINCT oa_id FROM conflicts WHERE decided_by IS NULL AND kind = ",
            )
            .bind(kind.as_str())
            .push(" AND oa_id IN ");
            conflicts.bind_list(ids());
            for row in conflicts.query().fetch_all(&self.pool).await? {
                out.push((row.try_get("oa_id")?, Waiting::Conflict));
            }
        }
        Ok(out)
    }

    /// Ids of objects of `kind` with `waiting` on them, sorted, at most `limit`.
    pub async fn waiting_ids(
        &self,
        kind: EntityKind,
        waiting: Waiting,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let select = match waiting {
            Waiting::DeadLetter => "SELECT DISTINCT oa_id FROM outbox WHERE state = 'dead'",
            Waiting::PendingPush => {
                "SELECT DISTINCT oa_id FROM outbox WHERE state IN ('pending', 'claimed')"
            }
            Waiting::HeldDeletion => {
                "SELECT DISTINCT oa_id FROM held_deletions WHERE state = 'held'"
            }
            Waiting::Conflict => "SELECT DISTINCT oa_id FROM conflicts WHERE decided_by IS NULL",
        };
        let rows = Sql::new(&format!("{select} AND kind = "))
            .bind(kind.as_str())
            .push(" ORDER BY oa_id LIMIT ")
            .bind(i64::from(limit.max(1)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("oa_id")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn the_upper_bound_follows_every_string_with_the_prefix() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("王").as_deref(), Some("玌"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound(""), None);
        for prefix in ["ab", "王", "zz"] {
            let high = prefix_upper_bound(prefix).unwrap_or_default();
            assert!(format!("{prefix}\u{10FFFF}\u{10FFFF}").as_str() < high.as_str());
            assert!(prefix < high.as_str());
        }
    }
}
