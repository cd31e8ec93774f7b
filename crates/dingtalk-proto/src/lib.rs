//! DingTalk wire types: the JSON that dingsync sends to and reads from DingTalk's server API,
//! transcribed from `dingtalk-api.md` and pinned by golden fixtures in `fixtures/`.
//!
//! This crate is pure (serde only): it knows nothing of HTTP, SQL or our own directory model.
//! It exists so that every DingTalk quirk — the `result` envelope on `/topapi`, top-level fields
//! on the old `/role` paths, camelCase here and snake_case there, comma-joined id lists in
//! requests, numbers quoted as strings, the TOP gateway's `88` + `sub_code` — is written down
//! once, in types, and checked against captured answers. The simulator (`dingtalk-sim`) builds
//! its JSON independently and is checked against the same fixtures, so a mistake in one shows
//! up as a mismatch instead of being mirrored.
//!
//! # Layout
//! - [`ids`] — `DingDeptId`, `DingUserId`, `DingRoleId`, `DingRoleGroupId` and [`CommaList`], so
//!   ids of different kinds can't be mixed up and comma-joined lists serialise correctly.
//! - [`errcode`] — [`ErrCode`] with named codes and the retry / token / validation predicates,
//!   and [`ApiStatus`], the status fields every answer carries.
//! - [`envelope`] — [`TopResponse`] (the `result` wrapper) and [`HasStatus`].
//! - [`token`] — `gettoken` and `v1.0/oauth2/accessToken`.
//! - [`dept`] — `topapi/v2/department/*`.
//! - [`user`] — `topapi/v2/user/*`, `topapi/user/{listid,count,listsimple}`.
//! - [`role`] — `topapi/role/*` and the legacy `role/*`.
//! - [`callback`] — failed-event catch-up and callback registration.
//! - [`events`] — contacts event payloads of all three dialects parsed into one typed event.
//! - [`secret`] — [`Secret`], a string whose `Debug` never shows it.
//! - `lenient` (private) — accepts numbers and booleans sent as text.

pub mod callback;
pub mod dept;
pub mod envelope;
pub mod errcode;
pub mod events;
#[cfg(test)]
mod fixture_tests;
pub mod ids;
mod lenient;
pub mod role;
pub mod secret;
pub mod token;
pub mod user;

pub use envelope::{HasStatus, StatusResponse, TopResponse};
pub use errcode::{ApiStatus, ErrCode};
pub use ids::{CommaList, DingDeptId, DingRoleGroupId, DingRoleId, DingUserId};
pub use secret::Secret;
