//! `GET /api/v1/changes`: the change feed.
//!
//! The OA system follows the directory by polling this feed with the cursor of the last change
//! it saw. It lists every committed change in commit order, whichever side it came from
//! (`origin`: `oa`, `dingtalk`, `import`, `reconcile`), so a change DingTalk's administrators
//! made shows up here as well as the OA system's own. The feed is the store's audit log, whose
//! sequence numbers are assigned in commit order; a poll never skips a change.

use axum::Json;
use axum::extract::State;
use directory_store::AuditRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, page_limit};

/// Where to read the feed from.
#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The cursor: the `seq` of the last change already seen (0 or absent: from the start).
    pub after: Option<i64>,
    /// At most this many changes, 1–1000 (default 100).
    pub limit: Option<u32>,
}

/// One change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// The cursor of this change; strictly increasing in commit order.
    pub seq: i64,
    /// When it was committed (Unix milliseconds).
    pub at_ms: i64,
    /// Who made it (`api:<token name>`, `engine`, …).
    pub actor: String,
    /// Where it came from: `oa`, `dingtalk`, `import` or `reconcile`.
    pub origin: String,
    /// The entity kind: `department`, `user`, `role_group`, `role` or `role_assignment`.
    pub kind: String,
    /// The entity's OA id (`user/role` for assignments).
    pub id: String,
    /// `create`, `update` or `delete`.
    pub op: String,
    /// The stored state before the change (absent for creates).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The stored state after the change (absent for deletes).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

impl From<AuditRecord> for ChangeView {
    fn from(r: AuditRecord) -> Self {
        Self {
            seq: r.seq,
            at_ms: r.at_ms,
            actor: r.actor,
            origin: r.origin.as_str().to_owned(),
            kind: r.kind.as_str().to_owned(),
            id: r.oa_id,
            op: r.op.as_str().to_owned(),
            before: r.before,
            after: r.after,
        }
    }
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesPage {
    /// The changes, oldest first.
    pub items: Vec<ChangeView>,
    /// The cursor to poll with next: the last item's `seq`, or the request's cursor when there
    /// was nothing new.
    pub next_after: i64,
    /// The URL to poll next (always present: the feed has no end).
    pub next: String,
}

/// Reads the change feed after a cursor.
#[utoipa::path(get, path = "/api/v1/changes", tag = "changes",
    params(ChangesQuery),
    responses(
        (status = 200, description = "The next changes, oldest first", body = ChangesPage),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown or malformed parameter", body = ErrorBody),
    ))]
pub async fn list_changes(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let limit = page_limit(q.limit)?;
    let after = q.after.unwrap_or(0).max(0);
    let records = state.store.changes_since(after, limit).await?;
    let next_after = records.last().map_or(after, |r| r.seq);
    Ok(Json(ChangesPage {
        items: records.into_iter().map(Into::into).collect(),
        next_after,
        next: format!("/api/v1/changes?after={next_after}&limit={limit}"),
    }))
}
