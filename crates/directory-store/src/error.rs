//! The store's error enum: one variant per decision the caller makes.
//!
//! The OA API maps the "your request is wrong" variants to 4xx responses naming the offending
//! field (see [`StoreError::field`] and [`StoreError::is_client_error`]); they mirror the DingTalk
//! errors the same write would get (60003, 60004, 60005, 60006, 60008, 60010, 60102, 60104, 60106,
//! 34020, 34021, 33011). Everything else is "unexpected" (a 500 with the cause chain logged), and
//! keeps its `#[source]`.

use directory_model::{OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, ValidationErrors};

/// What kind of entity a row, an outbox entry, an audit record or an id-map entry is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A department.
    Department,
    /// A user.
    User,
    /// A role group.
    RoleGroup,
    /// A role.
    Role,
    /// One user holding one role (id text `user_id/role_id`).
    RoleAssignment,
}

impl EntityKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Department,
        Self::User,
        Self::RoleGroup,
        Self::Role,
        Self::RoleAssignment,
    ];

    /// The text stored in `kind` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Department => "department",
            Self::User => "user",
            Self::RoleGroup => "role_group",
            Self::Role => "role",
            Self::RoleAssignment => "role_assignment",
        }
    }

    /// The inverse of [`EntityKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "department" => Self::Department,
            "user" => Self::User,
            "role_group" => Self::RoleGroup,
            "role" => Self::Role,
            "role_assignment" => Self::RoleAssignment,
            _ => return None,
        })
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The entity breaks DingTalk's field limits (every problem listed).
    #[error("invalid {kind}: {source}")]
    Invalid {
        /// The entity kind.
        kind: EntityKind,
        /// The problems.
        #[source]
        source: ValidationErrors,
    },
    /// No entity with this id (DingTalk 60003 / 60121 / 33011).
    #[error("{kind} {id} not found")]
    NotFound {
        /// The entity kind.
        kind: EntityKind,
        /// The id, as text.
        id: String,
    },
    /// An entity with this id already exists (DingTalk 60016 / 60102).
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// The entity kind.
        kind: EntityKind,
        /// The id, as text.
        id: String,
    },
    /// The department's parent does not exist (DingTalk 60004).
    #[error("parent department {parent} does not exist")]
    UnknownParent {
        /// The missing parent.
        parent: OaDeptId,
    },
    /// A second root department (a department without a parent) was requested.
    #[error("a root department already exists; every other department needs a parent")]
    SecondRoot,
    /// A referenced department does not exist.
    #[error("{field}: department {id} does not exist")]
    UnknownDepartment {
        /// The field path, e.g. `departments[2].dept`.
        field: String,
        /// The missing department.
        id: OaDeptId,
    },
    /// A referenced user (a manager) does not exist.
    #[error("{field}: user {id} does not exist")]
    UnknownUser {
        /// The field path, e.g. `manager` or `managers[0]`.
        field: String,
        /// The missing user.
        id: OaUserId,
    },
    /// The role's group does not exist (DingTalk 34020).
    #[error("role group {id} does not exist")]
    UnknownRoleGroup {
        /// The missing group.
        id: OaRoleGroupId,
    },
    /// The role does not exist (DingTalk 33011).
    #[error("role {id} does not exist")]
    UnknownRole {
        /// The missing role.
        id: OaRoleId,
    },
    /// Moving the department under `parent` would make it its own ancestor (DingTalk 60010).
    #[error("moving department {id} under {parent} would create a cycle")]
    DepartmentCycle {
        /// The department being moved.
        id: OaDeptId,
        /// The requested parent (a descendant of `id`).
        parent: OaDeptId,
    },
    /// Setting `manager` would make the user their own (indirect) manager.
    #[error("user {manager} managing {id} would create a management cycle")]
    ManagerCycle {
        /// The user being updated.
        id: OaUserId,
        /// The requested manager (managed, directly or not, by `id`).
        manager: OaUserId,
    },
    /// The department still has sub-departments (DingTalk 60006); use cascade.
    #[error("department {id} still has {count} sub-department(s)")]
    HasChildren {
        /// The department.
        id: OaDeptId,
        /// How many direct children it has.
        count: i64,
    },
    /// The department still has members (DingTalk 60005); use cascade.
    #[error("department {id} still has {count} member(s)")]
    HasMembers {
        /// The department.
        id: OaDeptId,
        /// How many direct members it has.
        count: i64,
    },
    /// The root department cannot be deleted (DingTalk 60007).
    #[error("the root department cannot be deleted")]
    DeleteRoot,
    /// The role still has members (DingTalk refuses deleting a role with members).
    #[error("role {id} still has {count} member(s)")]
    RoleHasMembers {
        /// The role.
        id: OaRoleId,
        /// How many users hold it.
        count: i64,
    },
    /// The role group still has roles.
    #[error("role group {id} still has {count} role(s)")]
    GroupHasRoles {
        /// The group.
        id: OaRoleGroupId,
        /// How many roles it holds.
        count: i64,
    },
    /// The user still manages other users or departments; reassign those first.
    #[error("user {id} still manages {count} user(s) or department(s)")]
    UserIsManager {
        /// The user.
        id: OaUserId,
        /// How many users and departments name them as manager.
        count: i64,
    },
    /// A sibling department already has this name (DingTalk 60008 / 60021).
    #[error("department {parent} already has a sub-department named {name:?}")]
    DuplicateDepartmentName {
        /// The parent.
        parent: OaDeptId,
        /// The clashing name.
        name: String,
    },
    /// Another active user has this mobile number (DingTalk 60104).
    #[error("mobile number already belongs to user {existing}")]
    DuplicateMobile {
        /// The user who has it.
        existing: OaUserId,
    },
    /// Another active user has this email (DingTalk 60106).
    #[error("email already belongs to user {existing}")]
    DuplicateEmail {
        /// The user who has it.
        existing: OaUserId,
    },
    /// Another SCIM user has this `userName` (compared case-insensitively; RFC 7643 §4.1.1).
    #[error("userName {user_name:?} already belongs to SCIM user {existing}")]
    DuplicateUserName {
        /// The clashing userName.
        user_name: String,
        /// The OA id of the user who has it.
        existing: String,
    },
    /// The group already has a role with this name (DingTalk 34021).
    #[error("role group {group} already has a role named {name:?}")]
    DuplicateRoleName {
        /// The group.
        group: OaRoleGroupId,
        /// The clashing name.
        name: String,
    },
    /// Optimistic concurrency: the entity changed since the caller read it (HTTP 412).
    #[error("{kind} {id} is at version {actual}, not {expected}")]
    VersionConflict {
        /// The entity kind.
        kind: EntityKind,
        /// The id, as text.
        id: String,
        /// The version the caller expected (If-Match).
        expected: i64,
        /// The current version.
        actual: i64,
    },
    /// An outbox / inbox / held-deletion entry does not exist or is not in the required state.
    #[error("{queue} entry {id} not found or not in state {expected_state}")]
    EntryNotFound {
        /// `outbox`, `inbox` or `held_deletions`.
        queue: &'static str,
        /// The entry id.
        id: i64,
        /// The state the operation requires.
        expected_state: &'static str,
    },
    /// A worker reported on an entry whose lease it no longer holds (another worker took it over
    /// after the lease expired).
    #[error("{queue} entry {id} is not claimed by {worker}")]
    LeaseLost {
        /// `outbox` or `inbox`.
        queue: &'static str,
        /// The entry id.
        id: i64,
        /// The worker that reported.
        worker: String,
    },
    /// The id map already pairs one of the two ids with a different partner.
    #[error(
        "{kind} {oa_id} ↔ {ding_id} clashes with the mapping {existing_oa_id} ↔ {existing_ding_id}"
    )]
    IdMapConflict {
        /// The entity kind.
        kind: EntityKind,
        /// The OA id to map.
        oa_id: String,
        /// The DingTalk id to map.
        ding_id: String,
        /// The OA id of the clashing mapping.
        existing_oa_id: String,
        /// The DingTalk id of the clashing mapping.
        existing_ding_id: String,
    },
    /// The URL's scheme is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL {url} (use sqlite://… or postgres://…)")]
    UnsupportedUrl {
        /// The URL with its password redacted.
        url: String,
    },
    /// A row holds something the store cannot read back (a bug or a manual edit).
    #[error("corrupt {table} row {id}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key.
        id: String,
        /// What is wrong.
        detail: String,
    },
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database refused or failed a statement.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A JSON column could not be encoded or decoded.
    #[error("JSON column error")]
    Json(#[source] serde_json::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}

impl StoreError {
    /// Whether the caller's request is at fault (a 4xx), as opposed to the store (a 5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Self::UnsupportedUrl { .. }
                | Self::IdMapConflict { .. }
                | Self::Corrupt { .. }
                | Self::Migrate(_)
                | Self::Database(_)
                | Self::Json(_)
        )
    }

    /// The request field a client error is about, for the API's error body.
    pub fn field(&self) -> Option<&str> {
        Some(match self {
            Self::Invalid { source, .. } => {
                return source.errors().first().map(|e| e.field.as_str());
            }
            Self::AlreadyExists { .. } | Self::NotFound { .. } => "id",
            Self::UnknownParent { .. } | Self::SecondRoot | Self::DepartmentCycle { .. } => {
                "parent"
            }
            Self::UnknownDepartment { field, .. } | Self::UnknownUser { field, .. } => field,
            Self::UnknownRoleGroup { .. } => "group",
            Self::UnknownRole { .. } => "role",
            Self::ManagerCycle { .. } => "manager",
            Self::DuplicateDepartmentName { .. } | Self::DuplicateRoleName { .. } => "name",
            Self::DuplicateMobile { .. } => "mobile",
            Self::DuplicateEmail { .. } => "email",
            Self::DuplicateUserName { .. } => "userName",
            Self::VersionConflict { .. } => "version",
            _ => return None,
        })
    }

    /// Whether this failure means "the database is (briefly) not there" rather than "this
    /// request or this row is wrong": a locked or busy SQLite, a PostgreSQL connection that was
    /// refused, reset or shut down, a pool that could not hand out a connection in time, an I/O
    /// error. Those failures pass by themselves, so callers answer them with "retry later"
    /// (503) instead of a 500, and count them as an outage.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => sqlx_unavailable(e),
            _ => false,
        }
    }
}

/// The driver-level half of [`StoreError::is_unavailable`]: the SQLite and PostgreSQL error
/// codes that mean "not there right now".
fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        // Not `PoolClosed`: that is this process shutting down, which does not pass.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result codes keep the primary code in the low byte:
                // 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
                let code = db.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
                return matches!(code & 0xff, 5 | 6);
            }
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                // Class 08: connection exception; 57P01-03: the server is shutting down or
                // starting; 53300: too many connections.
                let code = pg.code();
                return code.starts_with("08") || code.starts_with("57P") || code == "53300";
            }
            db.message().contains("database is locked")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_text() {
        for k in [
            EntityKind::Department,
            EntityKind::User,
            EntityKind::RoleGroup,
            EntityKind::Role,
            EntityKind::RoleAssignment,
        ] {
            assert_eq!(EntityKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntityKind::parse("nope"), None);
    }

    #[test]
    fn client_errors_name_their_field() {
        let e = StoreError::UnknownUser {
            field: "managers[1]".into(),
            id: OaUserId::new("x"),
        };
        assert!(e.is_client_error());
        assert_eq!(e.field(), Some("managers[1]"));
        assert!(!StoreError::Database(sqlx::Error::PoolClosed).is_client_error());
    }

    #[test]
    fn pool_timeouts_and_io_are_unavailability_validation_is_not() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(
            StoreError::Database(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset
            )))
            .is_unavailable()
        );
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
        assert!(!StoreError::SecondRoot.is_unavailable());
    }

    #[tokio::test]
    async fn a_locked_sqlite_file_is_unavailability() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
        let mut holder = sqlx::SqliteConnection::connect(&url).await.expect("open");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut holder)
            .await
            .expect("create");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .expect("lock");
        let mut other = sqlx::SqliteConnection::connect(&url).await.expect("open");
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut other)
            .await
            .expect("pragma");
        let err = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut other)
            .await
            .expect_err("the file is locked");
        assert!(StoreError::Database(err).is_unavailable());
    }
}
