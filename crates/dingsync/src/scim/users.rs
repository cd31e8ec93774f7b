//! SCIM User ↔ OA user.
//!
//! | SCIM | OA user |
//! |---|---|
//! | `displayName`, else `name.formatted`, else `name.givenName name.familyName`, else `userName` | `name` (cut to 80 characters) |
//! | `phoneNumbers[type eq "mobile"]` | `mobile` |
//! | `phoneNumbers[type eq "work"]` | `telephone` |
//! | `emails[primary eq true]`, else the first | `email` |
//! | `title` | the main department's `title` |
//! | enterprise `employeeNumber` | `job_number` |
//! | enterprise `manager.value` | `manager` |
//! | enterprise `department` (`Sales/East`) | the main department, found or created under `create_under` |
//! | enterprise `costCenter`, `organization`, `division` (or what `[scim.extension]` maps) | `extension` under the configured key |
//! | `active` | `false`: the configured leave (delete, or state `left`) |
//! | `userName`, `externalId`, the rest | kept in `scim_resources` |
//!
//! IdPs send values the directory cannot take (a phone number that is no mobile, a manager id
//! from another system, an over-long e-mail). Refusing the whole user for that stops the IdP's
//! provisioning of that person for good, so such a field is left out of the OA user (and
//! logged) while the SCIM resource keeps it; a clash with another user (mobile, e-mail) is
//! still a 409 `uniqueness`. A user without a mobile is stored and its push waits in the
//! outbox as a dead letter naming `mobile` until one arrives.

use directory_model::{Membership, Mobile, OaDeptId, OaUserId, User, UserState};
use directory_store::{
    Expect, SCIM_HOLD_REASON, ScimChange, ScimLeave, ScimResource, ScimWrite, StoreError, WriteCtx,
};
use scim::ScimError;
use scim::json_keys::get_ci;
use serde_json::Value;

use super::http::store_error;
use super::settings::Leave;
use super::{ScimState, groups};

/// The kind under which users are kept in `scim_resources`.
pub const KIND: &str = "User";

use super::settings::ENTERPRISE;

/// The member `name` of `v` (case-insensitive), if an object has it.
pub fn member<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| get_ci(o, name))
}

/// The non-empty string member `name` of `v`.
pub fn text<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    member(v, name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The `value` of the first entry of multi-valued `attr` that `pick` accepts.
fn multi_value<'a>(v: &'a Value, attr: &str, pick: impl Fn(&Value) -> bool) -> Option<&'a str> {
    member(v, attr)
        .and_then(Value::as_array)?
        .iter()
        .find(|e| pick(e))
        .and_then(|e| text(e, "value"))
}

fn typed(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |e| text(e, "type").is_some_and(|t| t.eq_ignore_ascii_case(kind))
}

/// Whether the resource is active (absent means active).
pub fn is_active(resource: &Value) -> bool {
    member(resource, "active").and_then(Value::as_bool) != Some(false)
}

/// The display name the directory gets.
fn display_name(r: &Value) -> String {
    let name = member(r, "name");
    let joined = name.map(|n| {
        [text(n, "givenName"), text(n, "familyName")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let full = text(r, "displayName")
        .map(str::to_owned)
        .or_else(|| name.and_then(|n| text(n, "formatted")).map(str::to_owned))
        .or(joined.filter(|j| !j.is_empty()))
        .or_else(|| text(r, "userName").map(str::to_owned))
        .unwrap_or_default();
    full.chars().take(80).collect()
}

/// A fresh OA user id for a user a SCIM client creates: DingTalk's `userid` alphabet, random so
/// that it says nothing about the person.
fn new_user_id() -> String {
    format!("scim{:016x}", rand::random::<u64>())
}

/// Fields a SCIM client may send in a shape the directory refuses; such a field is left out of
/// the OA user instead of refusing the user (see the module doc).
const DROPPABLE: &[&str] = &[
    "mobile",
    "email",
    "telephone",
    "job_number",
    "manager",
    "title",
    "departments",
    "extension",
];

/// The value at attribute `path` of `r` as text: a core path (`nickName`, `name.middleName`)
/// or a schema URN then `:` and the attribute (`urn:...:User:costCenter`). Strings, numbers and
/// booleans have a text; objects, arrays and empty strings do not.
pub fn attribute_text(r: &Value, path: &str) -> Option<String> {
    let (mut at, attr) = match path.rsplit_once(':') {
        Some((urn, attr)) if path.to_ascii_lowercase().starts_with("urn:") => {
            (member(r, urn)?, attr)
        }
        _ => (r, path),
    };
    for part in attr.split('.') {
        at = member(at, part)?;
    }
    match at {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Copies the mapped attributes of `r` onto `user`; `main` is the department the Enterprise
/// `department` string resolved to, if it named one. Extension keys outside `extension` (set
/// through `/api/v1`, say) are left alone.
fn apply(
    user: &mut User,
    r: &Value,
    main: Option<OaDeptId>,
    extension: &[(String, String)],
    dropped: &[&str],
) {
    let keep = |f: &str| !dropped.contains(&f);
    if keep("extension") {
        for (path, key) in extension {
            match attribute_text(r, path) {
                Some(v) => user.extension.insert(key.clone(), v),
                None => user.extension.remove(key),
            };
        }
    }
    user.name = display_name(r);
    let enterprise = member(r, ENTERPRISE);
    user.mobile = multi_value(r, "phoneNumbers", typed("mobile"))
        .filter(|_| keep("mobile"))
        .map(|m| Mobile::parse(&m.replace(' ', "")));
    user.telephone = multi_value(r, "phoneNumbers", typed("work"))
        .filter(|_| keep("telephone"))
        .map(str::to_owned);
    let primary = multi_value(r, "emails", |e| {
        member(e, "primary").and_then(Value::as_bool) == Some(true)
    });
    user.email = primary
        .or_else(|| multi_value(r, "emails", |_| true))
        .filter(|_| keep("email"))
        .map(str::to_owned);
    user.job_number = enterprise
        .and_then(|e| text(e, "employeeNumber"))
        .filter(|_| keep("job_number"))
        .map(str::to_owned);
    user.manager = enterprise
        .and_then(|e| member(e, "manager"))
        .and_then(|m| text(m, "value").or_else(|| m.as_str()))
        .filter(|_| keep("manager"))
        .map(OaUserId::new);
    if let Some(new) = main.filter(|_| keep("departments")) {
        move_main(user, new);
    }
    let title = text(r, "title")
        .filter(|_| keep("title"))
        .map(str::to_owned);
    if let Some(m) = user
        .departments
        .iter_mut()
        .find(|m| Some(m.dept) == user.main_department)
    {
        m.title = title;
    }
}

/// Makes `new` the main department, replacing the old main membership (a move; memberships
/// that came from Groups stay).
fn move_main(user: &mut User, new: OaDeptId) {
    if user.main_department == Some(new) {
        return;
    }
    if let Some(old) = user.main_department {
        user.departments.retain(|m| m.dept != old);
    }
    if !user.departments.iter().any(|m| m.dept == new) {
        user.departments.insert(0, Membership::new(new));
    }
    user.main_department = Some(new);
}

/// Which droppable field a store refusal is about, if any.
fn droppable(e: &StoreError) -> Option<&'static str> {
    if !e.is_client_error()
        || matches!(
            e,
            StoreError::DuplicateMobile { .. } | StoreError::DuplicateEmail { .. }
        )
    {
        return None;
    }
    let field = e.field()?;
    DROPPABLE.iter().copied().find(|d| field.starts_with(d))
}

/// Creates or replaces the user `id` (a new one when `None`) from a prepared resource: the OA
/// user (or the configured leave when inactive) and the SCIM resource, in one store transaction.
pub async fn save(
    state: &ScimState,
    actor: &str,
    id: Option<&str>,
    resource: &Value,
) -> Result<ScimResource, ScimError> {
    let store = &state.store;
    let user_name = text(resource, "userName")
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    // Checked again inside the write transaction; this early answer spares creating the
    // departments the resource names for a request that is refused anyway.
    if let Some(other) = store
        .scim_id_by_user_name(KIND, user_name)
        .await
        .map_err(store_error)?
        && Some(other.as_str()) != id
    {
        return Err(ScimError::uniqueness(format!(
            "userName {user_name:?} is taken"
        )));
    }
    let id = id.map_or_else(new_user_id, str::to_owned);
    let main = match member(resource, ENTERPRISE).and_then(|e| text(e, "department")) {
        Some(path) => groups::resolve_department(state, actor, path).await?,
        None => None,
    };
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    let oa_id = OaUserId::new(id.as_str());
    let current = store.get_user(&oa_id).await.map_err(store_error)?;
    let active = is_active(resource);
    let body = resource.to_string();
    let write = ScimWrite {
        kind: KIND,
        id: &id,
        user_name: Some(user_name),
        external_id: text(resource, "externalId"),
        body_json: &body,
    };
    if !active {
        let leave = match state.settings.leave {
            Leave::Delete => ScimLeave::Delete,
            Leave::Left => ScimLeave::Left,
        };
        // Only someone still in the directory (and so in DingTalk) can be held.
        let present = current
            .as_ref()
            .is_some_and(|u| u.entity.state == UserState::Active);
        if present && let Some(hold) = held_departure(state, &oa_id, leave, ctx.now_ms).await? {
            return store
                .scim_save(&ctx, hold, write)
                .await
                .map_err(store_error);
        }
        if leave == ScimLeave::Delete {
            let change = match &current {
                Some(_) => ScimChange::DeleteUser(oa_id),
                None => ScimChange::None,
            };
            return store
                .scim_save(&ctx, change, write)
                .await
                .map_err(store_error);
        }
    }
    // Back before an operator decided: the held deletion is moot. Looked up first (a read), so
    // that the usual write — nothing held — does not queue a second write transaction behind
    // SQLite's one writer: that doubled every SCIM write's wait (p99 ≈ 1 s in `bench scim`).
    if active
        && current.is_some()
        && store
            .scim_user_hold_pending(&oa_id)
            .await
            .map_err(store_error)?
    {
        store
            .scim_release_user_holds(&oa_id, actor, ctx.now_ms)
            .await
            .map_err(store_error)?;
    }
    let current = current.map(|v| (v.entity, v.version));
    let mut dropped: Vec<&str> = Vec::new();
    loop {
        let mut user = match &current {
            Some((u, _)) => u.clone(),
            None => User::new(oa_id.clone(), "", &[state.settings.create_under]),
        };
        apply(
            &mut user,
            resource,
            main,
            &state.settings.extension,
            &dropped,
        );
        user.state = if active {
            UserState::Active
        } else {
            UserState::Left
        };
        let expect = match &current {
            None => Expect::Absent,
            Some((_, version)) => Expect::Version(*version),
        };
        match store
            .scim_save(&ctx, ScimChange::SaveUser(Box::new(user), expect), write)
            .await
        {
            Ok(saved) => return Ok(saved),
            Err(e) => match droppable(&e) {
                Some(field) if !dropped.contains(&field) => {
                    tracing::info!(user = id, field, reason = %sync_engine::error_chain(&e),
                        "SCIM user: the directory refuses this field; kept in SCIM only");
                    dropped.push(field);
                }
                _ => return Err(store_error(e)),
            },
        }
    }
}

/// The hold of one more departure (deactivation or `DELETE`) of `id`, if it must be held: a
/// held departure stays held when the IdP sends it again, however late (only an operator, or
/// a reactivation, ends it), and one past the deletion threshold is held.
async fn held_departure(
    state: &ScimState,
    id: &OaUserId,
    leave: ScimLeave,
    now_ms: i64,
) -> Result<Option<ScimChange>, ScimError> {
    let pending = state
        .store
        .scim_user_hold_pending(id)
        .await
        .map_err(store_error)?;
    let reason = if pending {
        // Not written: the hold exists already.
        String::new()
    } else {
        match mass_deactivation(state, now_ms).await? {
            Some(reason) => {
                tracing::warn!(user = %id, %reason, "SCIM departure held for an operator");
                reason
            }
            None => return Ok(None),
        }
    };
    Ok(Some(ScimChange::HoldUserDeletion {
        id: id.clone(),
        reason,
        leave,
    }))
}

/// Why one more deactivation must be held, if it must: with it, SCIM clients would have taken
/// more users out of the directory within the window than the deletion threshold allows
/// (measured against the directory as it was before the wave). An IdP misconfigured to
/// unassign everyone thus empties neither the directory nor DingTalk; it still gets its success.
async fn mass_deactivation(state: &ScimState, now_ms: i64) -> Result<Option<String>, ScimError> {
    let since = now_ms - state.settings.deletion_window_ms;
    let wave = state
        .store
        .scim_user_departures_since(since)
        .await
        .map_err(store_error)?;
    // Held and left users are still in the directory; deleted ones are not, and count towards
    // its size.
    let (_, users) = state.store.counts().await.map_err(store_error)?;
    let deleting = usize::try_from(wave.deleted + wave.left + wave.held + 1).unwrap_or(usize::MAX);
    let total = usize::try_from(users + wave.deleted).unwrap_or(usize::MAX);
    Ok(state
        .settings
        .deletions
        .get()
        .must_hold(deleting, total)
        .then(|| {
            format!(
                "{SCIM_HOLD_REASON}: {deleting} of {total} users deactivated or deleted within {} min \
             exceeds the deletion threshold",
                state.settings.deletion_window_ms / 60_000
            )
        }))
}

/// Deletes the user: the OA user (if it is still there) and the SCIM resource, in one store
/// transaction. Past the deletion threshold the OA user's deletion is held like a
/// deactivation's (the client still gets its 204, and the resource is gone for it).
pub async fn delete(state: &ScimState, actor: &str, id: &str) -> Result<(), ScimError> {
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    let oa_id = OaUserId::new(id);
    let current = state.store.get_user(&oa_id).await.map_err(store_error)?;
    let present = current.is_some_and(|u| u.entity.state == UserState::Active);
    let change = if present {
        held_departure(state, &oa_id, ScimLeave::Delete, ctx.now_ms).await?
    } else {
        None
    };
    let change = change.unwrap_or(ScimChange::DeleteUser(oa_id));
    state
        .store
        .scim_remove(&ctx, change, KIND, id)
        .await
        .map_err(store_error)
}
