//! What the console's directory pages read about departments and roles: one level of the
//! department tree at a time (a page of sub-departments with their member and sub-department
//! counts), the path down to a department, and holders beside each role.
//!
//! Why one level and not the whole tree: at 100,000 people and 1,000 departments, counting
//! every department's members reads every membership (100,000 rows) and drawing the whole
//! tree is 1,000 rows nobody scrolls; a level is a page of rows whose counts come from one
//! grouped query over the `user_departments_dept` / `departments_parent` indexes, restricted
//! to the ids the page shows.

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// A department as a tree level lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptBrief {
    pub id: i64,
    pub name: String,
    /// The parent's id (possibly DingTalk's root, which is not in the directory).
    pub parent: Option<i64>,
}

fn brief(row: &sqlx::any::AnyRow) -> Result<DeptBrief, StoreError> {
    Ok(DeptBrief {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        parent: row.try_get("parent_id")?,
    })
}

/// The condition for a level: the children of `parent`, or the top level (departments whose
/// parent is absent or not in the directory, such as DingTalk's root).
fn level_filter(sql: Sql, parent: Option<i64>) -> Sql {
    match parent {
        Some(p) => sql.push(" WHERE d.parent_id = ").bind(p),
        None => sql.push(
            " WHERE d.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM departments p WHERE p.id \
             = d.parent_id)",
        ),
    }
}

/// Runs `select` (which must end in `IN `) once per chunk of `ids`, collecting `(key, n)`.
async fn grouped_counts(
    store: &Store,
    select: &str,
    group: &str,
    ids: &[i64],
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IN_CHUNK) {
        let mut sql = Sql::new(select);
        sql.bind_list(chunk.iter().copied());
        sql.push_mut(&format!(" GROUP BY {group}"));
        for row in sql.query().fetch_all(&store.pool).await? {
            out.push((row.try_get("k")?, row.try_get("n")?));
        }
    }
    Ok(out)
}

impl Store {
    /// One page of a tree level (`parent`'s sub-departments, or the top level), in display
    /// order (`ord`, then id), and how many the level has.
    pub async fn department_level(
        &self,
        parent: Option<i64>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<DeptBrief>, i64), StoreError> {
        let rows = level_filter(
            Sql::new("SELECT d.id, d.name, d.parent_id FROM departments d"),
            parent,
        )
        .push(" ORDER BY d.ord, d.id LIMIT ")
        .bind(i64::from(limit.max(1)))
        .push(" OFFSET ")
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .query()
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(brief).collect::<Result<Vec<_>, _>>()?;
        let total: i64 = level_filter(Sql::new("SELECT COUNT(*) AS n FROM departments d"), parent)
            .query()
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok((items, total))
    }

    /// One department by id, as a tree level lists it.
    pub async fn department_brief(&self, id: i64) -> Result<Option<DeptBrief>, StoreError> {
        let row = Sql::new("SELECT d.id, d.name, d.parent_id FROM departments d WHERE d.id = ")
            .bind(id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(brief).transpose()
    }

    /// The departments with these ids (missing ids are skipped), in no particular order.
    pub async fn department_briefs(&self, ids: &[i64]) -> Result<Vec<DeptBrief>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql =
                Sql::new("SELECT d.id, d.name, d.parent_id FROM departments d WHERE d.id IN ");
            sql.bind_list(chunk.iter().copied());
            for row in sql.query().fetch_all(&self.pool).await? {
                out.push(brief(&row)?);
            }
        }
        Ok(out)
    }

    /// Direct members of each of these departments (departments without members are absent).
    pub async fn department_member_counts_of(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        grouped_counts(
            self,
            "SELECT dept_id AS k, COUNT(*) AS n FROM user_departments WHERE dept_id IN ",
            "dept_id",
            ids,
        )
        .await
    }

    /// Direct sub-departments of each of these departments (leaves are absent).
    pub async fn department_child_counts_of(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        grouped_counts(
            self,
            "SELECT parent_id AS k, COUNT(*) AS n FROM departments WHERE parent_id IN ",
            "parent_id",
            ids,
        )
        .await
    }

    /// Holders per role id (roles nobody holds are absent).
    pub async fn role_holder_counts(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = Sql::new("SELECT role_id, COUNT(*) AS n FROM user_roles GROUP BY role_id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("role_id")?, row.try_get("n")?)))
            .collect()
    }
}
