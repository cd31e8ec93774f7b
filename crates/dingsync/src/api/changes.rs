//! `GET /api/v1/changes`: the change feed.
//!
//! The OA system follows the directory by polling this feed with the cursor of the last change
//! it saw. It lists every committed change in commit order, whichever side it came from
//! (`origin`: `oa`, `dingtalk`, `import`, `reconcile`), so a change DingTalk's administrators
//! made shows up here as well as the OA system's own. The feed is the store's audit log, whose
//! sequence numbers are assigned in commit order; a poll never skips a change.
//!
//! `before` and `after` are rendered in the same shape as the entity routes return (mobile as
//! `+code-number`, ids as plain values), so the OA system parses one format, not two.

use axum::Json;
use axum::extract::State;
use directory_model::{Department, Role, RoleAssignment, RoleGroup, User};
use directory_store::{AuditRecord, EntityKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::departments::DepartmentFields;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, page_limit};
use super::role_assignments::AssignmentBody;
use super::role_groups::RoleGroupFields;
use super::roles::RoleFields;
use super::users::UserFields;

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
    /// The entity before the change, shaped as its route returns it (without `version`);
    /// `null` for creates.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The entity after the change, shaped as its route returns it (without `version`);
    /// `null` for deletes.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// Renders a stored entity state in the API's shape. A state the API cannot read (which would
/// mean the store and the API disagree about a format) is passed through as stored and logged,
/// rather than dropped from the feed.
fn api_shape(kind: EntityKind, state: Value) -> Value {
    fn convert<M, V>(state: &Value) -> Option<Value>
    where
        M: DeserializeOwned,
        V: Serialize + From<M>,
    {
        let model: M = serde_json::from_value(state.clone()).ok()?;
        serde_json::to_value(V::from(model)).ok()
    }
    let converted = match kind {
        EntityKind::Department => convert::<Department, DepartmentFields>(&state),
        EntityKind::User => convert::<User, UserFields>(&state),
        EntityKind::RoleGroup => convert::<RoleGroup, RoleGroupFields>(&state),
        EntityKind::Role => convert::<Role, RoleFields>(&state),
        EntityKind::RoleAssignment => convert::<RoleAssignment, AssignmentBody>(&state),
    };
    converted.unwrap_or_else(|| {
        tracing::warn!(%kind, "change feed: stored state not in the expected shape");
        state
    })
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
            before: r.before.map(|v| api_shape(r.kind, v)),
            after: r.after.map(|v| api_shape(r.kind, v)),
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
