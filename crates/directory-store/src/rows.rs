//! Reading and writing the directory's rows: entity ↔ row mapping, shared by the OA-facing
//! writes, the batch importer and the listings.
//!
//! Child tables (department managers, user memberships) are loaded with one extra query per
//! page of parents (`WHERE id IN (…)`), never one per parent, so listing 500 users costs two
//! statements.

use std::collections::HashMap;

use directory_model::{
    Department, Membership, Mobile, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup,
    User, UserState,
};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, Val};
use crate::error::StoreError;

/// An entity with the store's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    /// The entity.
    pub entity: T,
    /// Starts at 1, grows by one per change; the OA API's ETag.
    pub version: i64,
    /// When it last changed, Unix milliseconds.
    pub updated_at_ms: i64,
}

/// Placeholders per multi-row statement: well below SQLite's 32766 and PostgreSQL's 65535
/// limits, and large enough that a batch of users needs only a handful of statements.
const MAX_ARGS_PER_STATEMENT: usize = 8000;

/// Parameters per statement when loading children with `IN (…)`.
const IN_CHUNK: usize = 500;

pub(crate) const DEPT_COLS: &str =
    "id, name, parent_id, ord, source_identifier, hide, outer_dept, version, updated_at_ms";

pub(crate) const USER_COLS: &str = "id, name, main_dept_id, manager_id, job_number, \
     mobile_country, mobile_number, email, org_email, telephone, work_place, hired_date_ms, \
     remark, extension_json, state, version, updated_at_ms";

pub(crate) const ROLE_GROUP_COLS: &str = "id, name, version, updated_at_ms";

pub(crate) const ROLE_COLS: &str = "id, group_id, name, version, updated_at_ms";

pub(crate) fn state_text(s: UserState) -> &'static str {
    match s {
        UserState::Active => "active",
        UserState::Left => "left",
    }
}

fn dept_from_row(row: &AnyRow) -> Result<Versioned<Department>, StoreError> {
    Ok(Versioned {
        entity: Department {
            id: OaDeptId(row.try_get("id")?),
            name: row.try_get("name")?,
            parent: row.try_get::<Option<i64>, _>("parent_id")?.map(OaDeptId),
            order: row.try_get("ord")?,
            managers: Vec::new(),
            source_identifier: row.try_get("source_identifier")?,
            hide: row.try_get::<i64, _>("hide")? != 0,
            outer: row.try_get::<i64, _>("outer_dept")? != 0,
        },
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<Versioned<User>, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let state = match state.as_str() {
        "active" => UserState::Active,
        "left" => UserState::Left,
        other => {
            return Err(StoreError::Corrupt {
                table: "users",
                id,
                detail: format!("unknown state {other:?}"),
            });
        }
    };
    let extension_json: String = row.try_get("extension_json")?;
    let mobile = match (
        row.try_get::<Option<String>, _>("mobile_country")?,
        row.try_get::<Option<String>, _>("mobile_number")?,
    ) {
        (Some(country_code), Some(number)) => Some(Mobile {
            country_code,
            number,
        }),
        _ => None,
    };
    Ok(Versioned {
        entity: User {
            name: row.try_get("name")?,
            departments: Vec::new(),
            main_department: row.try_get::<Option<i64>, _>("main_dept_id")?.map(OaDeptId),
            manager: row
                .try_get::<Option<String>, _>("manager_id")?
                .map(OaUserId),
            job_number: row.try_get("job_number")?,
            mobile,
            email: row.try_get("email")?,
            org_email: row.try_get("org_email")?,
            telephone: row.try_get("telephone")?,
            work_place: row.try_get("work_place")?,
            hired_date_ms: row.try_get("hired_date_ms")?,
            remark: row.try_get("remark")?,
            extension: serde_json::from_str(&extension_json)?,
            state,
            id: OaUserId(id),
        },
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

/// Runs a `SELECT {DEPT_COLS} FROM departments …` statement and attaches managers.
pub(crate) async fn fetch_departments(
    conn: &mut AnyConnection,
    sql: Sql,
) -> Result<Vec<Versioned<Department>>, StoreError> {
    let rows = sql.query().fetch_all(&mut *conn).await?;
    let mut out = rows
        .iter()
        .map(dept_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let index: HashMap<i64, usize> = out
        .iter()
        .enumerate()
        .map(|(i, d)| (d.entity.id.get(), i))
        .collect();
    let ids: Vec<i64> = index.keys().copied().collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut q = Sql::new_for(
            "SELECT dept_id, user_id FROM department_managers WHERE dept_id IN ",
            conn,
        );
        q.bind_list(chunk.iter().copied());
        q.push_mut(" ORDER BY dept_id, position");
        for row in q.query().fetch_all(&mut *conn).await? {
            let dept: i64 = row.try_get("dept_id")?;
            if let Some(&i) = index.get(&dept) {
                out[i]
                    .entity
                    .managers
                    .push(OaUserId(row.try_get("user_id")?));
            }
        }
    }
    Ok(out)
}

/// Runs a `SELECT {USER_COLS} FROM users …` statement and attaches memberships.
pub(crate) async fn fetch_users(
    conn: &mut AnyConnection,
    sql: Sql,
) -> Result<Vec<Versioned<User>>, StoreError> {
    let rows = sql.query().fetch_all(&mut *conn).await?;
    let mut out = rows
        .iter()
        .map(user_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let index: HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, u)| (u.entity.id.0.clone(), i))
        .collect();
    let ids: Vec<&String> = index.keys().collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut q = Sql::new_for(
            "SELECT user_id, dept_id, title, ord FROM user_departments WHERE user_id IN ",
            conn,
        );
        q.bind_list(chunk.iter().copied());
        q.push_mut(" ORDER BY user_id, position");
        for row in q.query().fetch_all(&mut *conn).await? {
            let user: String = row.try_get("user_id")?;
            if let Some(&i) = index.get(&user) {
                out[i].entity.departments.push(Membership {
                    dept: OaDeptId(row.try_get("dept_id")?),
                    title: row.try_get("title")?,
                    order: row.try_get("ord")?,
                });
            }
        }
    }
    Ok(out)
}

/// Loads one department.
pub(crate) async fn load_department(
    conn: &mut AnyConnection,
    id: OaDeptId,
) -> Result<Option<Versioned<Department>>, StoreError> {
    let sql = Sql::new(&format!("SELECT {DEPT_COLS} FROM departments WHERE id = ")).bind(id.get());
    Ok(fetch_departments(conn, sql).await?.into_iter().next())
}

/// Loads one user.
pub(crate) async fn load_user(
    conn: &mut AnyConnection,
    id: &OaUserId,
) -> Result<Option<Versioned<User>>, StoreError> {
    let sql = Sql::new(&format!("SELECT {USER_COLS} FROM users WHERE id = ")).bind(id.as_str());
    Ok(fetch_users(conn, sql).await?.into_iter().next())
}

/// The column values of a department row, in `DEPT_COLS` order.
pub(crate) fn dept_values(d: &Department, version: i64, now_ms: i64) -> Vec<Val> {
    vec![
        d.id.get().into(),
        d.name.as_str().into(),
        d.parent.map(OaDeptId::get).into(),
        d.order.into(),
        d.source_identifier.clone().into(),
        d.hide.into(),
        d.outer.into(),
        version.into(),
        now_ms.into(),
    ]
}

/// The column values of a user row, in `USER_COLS` order.
pub(crate) fn user_values(u: &User, version: i64, now_ms: i64) -> Result<Vec<Val>, StoreError> {
    Ok(vec![
        u.id.as_str().into(),
        u.name.as_str().into(),
        u.main_department.map(OaDeptId::get).into(),
        u.manager.as_ref().map(|m| m.0.clone()).into(),
        u.job_number.clone().into(),
        u.mobile.as_ref().map(|m| m.country_code.clone()).into(),
        u.mobile.as_ref().map(|m| m.number.clone()).into(),
        u.email.clone().into(),
        u.org_email.clone().into(),
        u.telephone.clone().into(),
        u.work_place.clone().into(),
        u.hired_date_ms.into(),
        u.remark.clone().into(),
        serde_json::to_string(&u.extension)?.into(),
        state_text(u.state).into(),
        version.into(),
        now_ms.into(),
    ])
}

/// `INSERT INTO {table} ({cols}) VALUES (…), (…) {suffix}` for many rows, in as few statements
/// as the placeholder limits allow.
pub(crate) async fn insert_rows(
    conn: &mut AnyConnection,
    table: &str,
    cols: &str,
    suffix: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), StoreError> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let per_statement = (MAX_ARGS_PER_STATEMENT / width.max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::new_for(&format!("INSERT INTO {table} ({cols}) VALUES "), conn);
        for (i, row) in rows.by_ref().take(per_statement).enumerate() {
            if i > 0 {
                sql.push_mut(", ");
            }
            sql.bind_list(row);
        }
        sql.push_mut(" ");
        sql.push_mut(suffix);
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `ON CONFLICT` clause that turns an insert of `cols` into an upsert on `key`.
pub(crate) fn upsert_suffix(key: &str, cols: &str) -> String {
    let sets: Vec<String> = cols
        .split(',')
        .map(str::trim)
        .filter(|c| *c != key)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!("ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", "))
}

/// Writes department rows (upsert) and replaces their managers.
pub(crate) async fn write_departments(
    conn: &mut AnyConnection,
    depts: &[(&Department, i64)],
    now_ms: i64,
) -> Result<(), StoreError> {
    if depts.is_empty() {
        return Ok(());
    }
    let rows = depts
        .iter()
        .map(|(d, v)| dept_values(d, *v, now_ms))
        .collect();
    insert_rows(
        conn,
        "departments",
        DEPT_COLS,
        &upsert_suffix("id", DEPT_COLS),
        rows,
    )
    .await?;
    for chunk in depts.chunks(IN_CHUNK) {
        let mut del = Sql::new_for("DELETE FROM department_managers WHERE dept_id IN ", conn);
        del.bind_list(chunk.iter().map(|(d, _)| d.id.get()));
        del.query().execute(&mut *conn).await?;
    }
    let managers: Vec<Vec<Val>> = depts
        .iter()
        .flat_map(|(d, _)| {
            d.managers
                .iter()
                .enumerate()
                .map(|(pos, m)| vec![d.id.get().into(), m.as_str().into(), (pos as i64).into()])
        })
        .collect();
    insert_rows(
        conn,
        "department_managers",
        "dept_id, user_id, position",
        "",
        managers,
    )
    .await
}

/// Writes user rows (upsert) and replaces their memberships.
pub(crate) async fn write_users(
    conn: &mut AnyConnection,
    users: &[(&User, i64)],
    now_ms: i64,
) -> Result<(), StoreError> {
    if users.is_empty() {
        return Ok(());
    }
    let rows = users
        .iter()
        .map(|(u, v)| user_values(u, *v, now_ms))
        .collect::<Result<Vec<_>, _>>()?;
    insert_rows(
        conn,
        "users",
        USER_COLS,
        &upsert_suffix("id", USER_COLS),
        rows,
    )
    .await?;
    for chunk in users.chunks(IN_CHUNK) {
        let mut del = Sql::new_for("DELETE FROM user_departments WHERE user_id IN ", conn);
        del.bind_list(chunk.iter().map(|(u, _)| u.id.as_str()));
        del.query().execute(&mut *conn).await?;
    }
    let memberships: Vec<Vec<Val>> = users
        .iter()
        .flat_map(|(u, _)| {
            u.departments.iter().enumerate().map(|(pos, m)| {
                vec![
                    u.id.as_str().into(),
                    m.dept.get().into(),
                    (pos as i64).into(),
                    m.title.clone().into(),
                    m.order.into(),
                ]
            })
        })
        .collect();
    insert_rows(
        conn,
        "user_departments",
        "user_id, dept_id, position, title, ord",
        "",
        memberships,
    )
    .await
}

fn role_group_from_row(row: &AnyRow) -> Result<Versioned<RoleGroup>, StoreError> {
    Ok(Versioned {
        entity: RoleGroup {
            id: OaRoleGroupId(row.try_get("id")?),
            name: row.try_get("name")?,
        },
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

fn role_from_row(row: &AnyRow) -> Result<Versioned<Role>, StoreError> {
    Ok(Versioned {
        entity: Role {
            id: OaRoleId(row.try_get("id")?),
            group: OaRoleGroupId(row.try_get("group_id")?),
            name: row.try_get("name")?,
        },
        version: row.try_get("version")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

/// Runs a `SELECT id, name, version, updated_at_ms FROM role_groups …` statement.
pub(crate) async fn fetch_role_groups(
    conn: &mut AnyConnection,
    sql: Sql,
) -> Result<Vec<Versioned<RoleGroup>>, StoreError> {
    let rows = sql.query().fetch_all(&mut *conn).await?;
    rows.iter().map(role_group_from_row).collect()
}

/// Runs a `SELECT id, group_id, name, version, updated_at_ms FROM roles …` statement.
pub(crate) async fn fetch_roles(
    conn: &mut AnyConnection,
    sql: Sql,
) -> Result<Vec<Versioned<Role>>, StoreError> {
    let rows = sql.query().fetch_all(&mut *conn).await?;
    rows.iter().map(role_from_row).collect()
}

/// Loads one role group.
pub(crate) async fn load_role_group(
    conn: &mut AnyConnection,
    id: OaRoleGroupId,
) -> Result<Option<Versioned<RoleGroup>>, StoreError> {
    let sql = Sql::new(&format!(
        "SELECT {ROLE_GROUP_COLS} FROM role_groups WHERE id = "
    ))
    .bind(id.get());
    Ok(fetch_role_groups(conn, sql).await?.into_iter().next())
}

/// Loads one role.
pub(crate) async fn load_role(
    conn: &mut AnyConnection,
    id: OaRoleId,
) -> Result<Option<Versioned<Role>>, StoreError> {
    let sql = Sql::new(&format!("SELECT {ROLE_COLS} FROM roles WHERE id = ")).bind(id.get());
    Ok(fetch_roles(conn, sql).await?.into_iter().next())
}

/// What the row readers say when row `id` of `table` holds a value the store never writes.
pub(crate) fn corrupt_row(table: &'static str, id: i64) -> impl Fn(String) -> StoreError {
    move |detail| StoreError::Corrupt {
        table,
        id: id.to_string(),
        detail,
    }
}

/// Counts rows of a `SELECT COUNT(*) AS n …` statement.
pub(crate) async fn count(conn: &mut AnyConnection, sql: Sql) -> Result<i64, StoreError> {
    let row = sql.query().fetch_one(&mut *conn).await?;
    Ok(row.try_get("n")?)
}
