//! Small vocabulary shared by several pages. Every status has a word (`label`) as well as a
//! colour class (`tone`): the console never shows a state by colour alone.

use serde::{Deserialize, Serialize};

/// Where one directory object stands between the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    InSync,
    PendingPush,
    Held,
    Conflicted,
    DeadLettered,
}

impl SyncState {
    /// Every state, in the order the filter offers them.
    pub const ALL: [SyncState; 5] = [
        SyncState::InSync,
        SyncState::PendingPush,
        SyncState::Held,
        SyncState::Conflicted,
        SyncState::DeadLettered,
    ];

    /// The word shown to a person.
    pub fn label(&self) -> &'static str {
        match self {
            SyncState::InSync => "in sync",
            SyncState::PendingPush => "pending push",
            SyncState::Held => "held",
            SyncState::Conflicted => "conflicted",
            SyncState::DeadLettered => "dead-lettered",
        }
    }

    /// The value used in URLs and the JSON API.
    pub fn slug(&self) -> &'static str {
        match self {
            SyncState::InSync => "in_sync",
            SyncState::PendingPush => "pending_push",
            SyncState::Held => "held",
            SyncState::Conflicted => "conflicted",
            SyncState::DeadLettered => "dead_lettered",
        }
    }

    /// Parses the URL value; `None` for anything else.
    pub fn from_slug(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.slug() == s)
    }

    /// The colour class (`ok`, `info`, `warn`, `bad`) paired with the word.
    pub fn tone(&self) -> &'static str {
        match self {
            SyncState::InSync => "ok",
            SyncState::PendingPush => "info",
            SyncState::Held | SyncState::Conflicted => "warn",
            SyncState::DeadLettered => "bad",
        }
    }
}

/// The honest result of a run: `partial` when anything in it failed, never "success".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Partial,
    Failed,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
        }
    }

    pub fn tone(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "warn",
            Outcome::Failed => "bad",
        }
    }
}

/// A yes/no health fact with the reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub ok: bool,
    /// Why it is (not) ok, in plain words.
    pub reason: String,
}

impl Check {
    pub fn label(&self) -> &'static str {
        if self.ok { "ok" } else { "failing" }
    }

    pub fn tone(&self) -> &'static str {
        if self.ok { "ok" } else { "bad" }
    }
}

/// The kinds of directory object that have a page of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    User,
    Department,
    Role,
    RoleGroup,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::User,
        ObjectKind::Department,
        ObjectKind::Role,
        ObjectKind::RoleGroup,
    ];

    pub fn label(&self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Department => "department",
            ObjectKind::Role => "role",
            ObjectKind::RoleGroup => "role group",
        }
    }

    /// The URL segment of the object's console page (`/console/{segment}/{id}`).
    pub fn segment(&self) -> &'static str {
        match self {
            ObjectKind::User => "users",
            ObjectKind::Department => "departments",
            ObjectKind::Role => "roles",
            ObjectKind::RoleGroup => "role-groups",
        }
    }

    /// The directory page listing objects of this kind, and its title.
    pub fn list(&self) -> (&'static str, &'static str) {
        match self {
            ObjectKind::User => ("/console/users", "Users"),
            ObjectKind::Department => ("/console/departments", "Departments"),
            ObjectKind::Role | ObjectKind::RoleGroup => ("/console/roles", "Roles"),
        }
    }

    pub fn from_label(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.label() == s)
    }
}

/// Which directory a value, change or plan entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Oa,
    DingTalk,
}

impl Side {
    pub fn label(&self) -> &'static str {
        match self {
            Side::Oa => "OA",
            Side::DingTalk => "DingTalk",
        }
    }
}
