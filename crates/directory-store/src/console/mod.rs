//! What the admin console (issue 16) reads and writes beyond the directory: its users, the
//! run history, one object's timeline sources, the audit search, conflict decisions and the
//! background pruning of old history. Each concern is one file:
//! - `users`: console users (name, role, argon2 PHC string) — the store never sees a password.
//! - `runs`: imports, reconciles and catch-ups with their outcome, counts and log lines.
//! - `actions`: operator actions with the console user's name (the console's audit log).
//! - `tree`: the department tree one level at a time, with member and sub-department counts;
//!   holders per role.
//! - `history`: per-object outbox entries and conflicts for the timeline, the audit search,
//!   conflict decisions and pruning.
//! - `lookups`: users by email, the inbox's newest event, the history tables' size, the id
//!   links of a page's objects, the held deletions' count, the audit page's brief rows.
//! - `soft_matches`: ambiguous soft matches an import left out, until an operator decides.
//! - `search`: user search by indexed lookups, a page of users, and what waits on the objects
//!   a page shows.

mod actions;
mod history;
mod lookups;
mod runs;
mod search;
mod soft_matches;
mod tree;
mod users;

pub use actions::OperatorActionRecord;
pub use history::AuditSearch;
pub(crate) use lookups::audit_brief_from_row;
pub use lookups::{AuditBrief, HISTORY_TABLES};
pub use runs::{RunRecord, RunStart};
pub use search::Waiting;
pub use soft_matches::{NewSoftMatch, SoftMatchRecord};
pub use tree::DeptBrief;
pub use users::ConsoleUserRow;
