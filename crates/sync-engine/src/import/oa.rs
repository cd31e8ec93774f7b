//! What the import reads of the OA directory, without holding its people.
//!
//! Departments, role groups and roles are few next to people, so the import keeps them (as a
//! [`Snapshot`] without users or assignments). People are read where they are needed: a
//! batch's existing rows by id ([`Store::users_by_ids`]), the OA users no DingTalk user is
//! linked to for soft matching, and all active users page by page for the deletion phase.

use std::collections::HashSet;

use directory_model::{DingUserId, OaUserId, Snapshot, User, UserState};
use directory_store::{DeptQuery, RoleQuery, Store, StoreError, UserQuery};

use crate::translate::IdMap;

/// Rows per page when walking a table.
const PAGE: u32 = 1000;

/// The departments, role groups and roles (no users, no assignments).
pub(super) async fn view(store: &Store) -> Result<Snapshot, StoreError> {
    let mut depts = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_departments(&DeptQuery {
                after,
                limit: PAGE,
                ..DeptQuery::default()
            })
            .await?;
        depts.extend(page.items.into_iter().map(|v| v.entity));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut groups = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_role_groups(after, PAGE).await?;
        groups.extend(page.items.into_iter().map(|v| v.entity));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut roles = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_roles(&RoleQuery {
                after,
                limit: PAGE,
                ..RoleQuery::default()
            })
            .await?;
        roles.extend(page.items.into_iter().map(|v| v.entity));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(Snapshot::from_parts(
        depts,
        Vec::<User>::new(),
        groups,
        roles,
        Vec::new(),
    ))
}

/// Calls `f` with every stored user (of `state`, if given), a page at a time.
pub(super) async fn each_user(
    store: &Store,
    state: Option<UserState>,
    since_ms: Option<i64>,
    mut f: impl FnMut(User),
) -> Result<(), StoreError> {
    let mut after: Option<OaUserId> = None;
    loop {
        let page = store
            .list_users(&UserQuery {
                after: after.take(),
                limit: PAGE,
                state,
                updated_since_ms: since_ms,
                ..UserQuery::default()
            })
            .await?;
        for v in page.items {
            f(v.entity);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

/// The DingTalk users an interrupted import (started at `generation`) already wrote: linked
/// users whose row changed since. A resumed import does not read them again.
pub(super) async fn written_since(
    store: &Store,
    ids: &IdMap,
    generation: i64,
) -> Result<HashSet<dingtalk_proto::DingUserId>, StoreError> {
    let mut out = HashSet::new();
    each_user(store, None, Some(generation), |u| {
        if let Some(d) = ids.ding_user(&u.id) {
            out.insert(crate::translate::ding::wire_user(d));
        }
    })
    .await?;
    Ok(out)
}

/// Whether some stored user is linked to no DingTalk user (else soft matching has nothing to
/// offer and the users table need not be read for it).
pub(super) async fn has_unlinked_users(store: &Store, ids: &IdMap) -> Result<bool, StoreError> {
    let (_, users) = store.counts().await?;
    Ok(usize::try_from(users).unwrap_or(usize::MAX) > ids.len().1)
}

/// The DingTalk id a model id stands for, as the wire spells it.
pub(super) fn wire(d: &DingUserId) -> dingtalk_proto::DingUserId {
    crate::translate::ding::wire_user(d)
}
