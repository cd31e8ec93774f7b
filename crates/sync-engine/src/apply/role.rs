//! How role groups, roles and a user's role assignments are applied. DingTalk's role list is
//! read and applied as a whole (one entity, one lock): new groups and roles are linked by name
//! to unlinked OA ones or created, changed ones merged, vanished ones deleted. A user's
//! assignments are merged three ways per assignment.

use std::collections::BTreeSet;

use dingtalk_proto::role::RoleGroup as WireRoleGroup;
use directory_model::{DingRoleId, OaRoleGroupId, OaRoleId, OaUserId, RoleAssignment, Snapshot};
use directory_store::{AssignmentQuery, EntityKind, StoreError};

use super::lock::Held;
use super::{Applied, Applier, ApplyError, MAX_DEPTH};
use crate::import::link;
use crate::kind::assignment_key;
use crate::translate::{self, IdMap};

impl Applier {
    /// Brings role groups and roles to DingTalk's role list: new ones are linked (by name to
    /// unlinked OA ones, else created), changed ones merged, vanished ones deleted.
    pub async fn sync_roles(&self) -> Result<Applied, ApplyError> {
        self.roles(&Held::default()).await
    }

    /// [`Applier::sync_roles`] under the role list's lock (the role list is read and applied
    /// as a whole, so it is one entity).
    pub(super) async fn roles(&self, held: &Held) -> Result<Applied, ApplyError> {
        self.locked(held, super::ROLES_LOCK, self.roles_locked())
            .await
    }

    async fn roles_locked(&self) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        // The directory and the id map are read *before* DingTalk's list: a role the pusher
        // creates and links in between is then unknown to both (left alone) instead of linked
        // but missing from an older list, which read as "deleted in DingTalk" and deleted the
        // OA role group just created (found by `tests/crash_anywhere.rs`).
        let snap = store.snapshot().await?;
        let mut ids = IdMap::load_all(store).await?;
        let groups = self.ctx.client.role_list_all().await?;
        self.link_roles(&groups, &snap, &mut ids).await?;
        let mut total = Applied::default();
        let mut seen_groups = BTreeSet::new();
        let mut seen_roles = BTreeSet::new();
        for g in &groups {
            let group = translate::role::group_from_wire(g, &ids)?;
            seen_groups.insert(group.id);
            let current = store.get_role_group(group.id).await?;
            total.add(self.merge_and_write(current, group, None).await?);
            for r in &g.roles {
                let role = translate::role::role_from_wire(r, g.group_id, &ids)?;
                seen_roles.insert(role.id);
                let current = store.get_role(role.id).await?;
                total.add(self.merge_and_write(current, role, None).await?);
            }
        }
        total.add(
            self.delete_vanished_roles(&snap, &ids, &seen_groups, &seen_roles)
                .await?,
        );
        Ok(total)
    }

    /// Links every group and role of DingTalk's list: by name to an unlinked OA one, else to a
    /// freshly allocated OA id.
    async fn link_roles(
        &self,
        groups: &[WireRoleGroup],
        snap: &Snapshot,
        ids: &mut IdMap,
    ) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let (g_links, r_links) = link::link_roles(groups, &snap.role_groups, &snap.roles, ids);
        for (oa, d) in g_links.matched {
            store.id_map_put(&oa, &d).await?;
            ids.insert_group(oa, d);
        }
        for d in g_links.unlinked {
            let oa = OaRoleGroupId(store.allocate_ids(EntityKind::RoleGroup, 1).await?);
            store.id_map_put(&oa, &d).await?;
            ids.insert_group(oa, d);
        }
        for (oa, d) in r_links.matched {
            store.id_map_put(&oa, &d).await?;
            ids.insert_role(oa, d);
        }
        for d in r_links.unlinked {
            let oa = OaRoleId(store.allocate_ids(EntityKind::Role, 1).await?);
            store.id_map_put(&oa, &d).await?;
            ids.insert_role(oa, d);
        }
        Ok(())
    }

    /// Deletes the linked roles and groups DingTalk's list no longer has.
    async fn delete_vanished_roles(
        &self,
        snap: &Snapshot,
        ids: &IdMap,
        seen_groups: &BTreeSet<OaRoleGroupId>,
        seen_roles: &BTreeSet<OaRoleId>,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let wctx = self.write_ctx();
        let mut total = Applied::default();
        for r in snap.roles.values() {
            if ids.ding_role(r.id).is_some() && !seen_roles.contains(&r.id) {
                store.delete_role(&wctx, r.id, None).await?;
                store.id_map_remove(&r.id).await?;
                total.writes += 1;
            }
        }
        for g in snap.role_groups.values() {
            if ids.ding_group(g.id).is_some() && !seen_groups.contains(&g.id) {
                match store.delete_role_group(&wctx, g.id, None).await {
                    Ok(()) => {
                        store.id_map_remove(&g.id).await?;
                        total.writes += 1;
                    }
                    // OA-only roles still in it wait for their push; keep the group.
                    Err(StoreError::GroupHasRoles { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(total)
    }

    /// Brings one user's role assignments to DingTalk's, three-way per assignment: an
    /// assignment only one side has is kept if that side added it since the last sync (it is
    /// on its way to the other side) and removed if the other side dropped it.
    pub(super) async fn sync_user_roles(
        &self,
        user: &OaUserId,
        ding_roles: &[DingRoleId],
        depth: u32,
        held: &Held,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let mut applied = Applied::default();
        let mut want: BTreeSet<OaRoleId> = BTreeSet::new();
        let mut refreshed = false;
        for r in ding_roles {
            let mut oa_role = store.oa_id_of::<OaRoleId>(r).await?;
            if oa_role.is_none() && !refreshed && depth < MAX_DEPTH {
                applied.add(self.roles(held).await?);
                refreshed = true;
                oa_role = store.oa_id_of::<OaRoleId>(r).await?;
            }
            match oa_role {
                Some(id) => {
                    want.insert(id);
                }
                None => {
                    return Err(ApplyError::Unresolved {
                        kind: EntityKind::Role,
                        id: r.to_string(),
                    });
                }
            }
        }
        let have = self.held_roles(user).await?;
        let wctx = self.write_ctx();
        for role in want.symmetric_difference(&have) {
            let a = RoleAssignment {
                user: user.clone(),
                role: *role,
            };
            let in_base = store
                .base_get::<serde_json::Value>(EntityKind::RoleAssignment, &assignment_key(&a))
                .await?
                .is_some();
            if want.contains(role) && !in_base {
                store.assign_role(&wctx, user, *role).await?;
                applied.writes += 1;
            } else if have.contains(role) && in_base {
                store.unassign_role(&wctx, user, *role).await?;
                applied.writes += 1;
            }
        }
        Ok(applied)
    }

    /// The roles OA says `user` holds.
    async fn held_roles(&self, user: &OaUserId) -> Result<BTreeSet<OaRoleId>, StoreError> {
        let mut have: BTreeSet<OaRoleId> = BTreeSet::new();
        let mut after = None;
        loop {
            let page = self
                .ctx
                .store
                .list_assignments(&AssignmentQuery {
                    user: Some(user.clone()),
                    after,
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            have.extend(page.items.iter().map(|a| a.role));
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(have),
            }
        }
    }
}
