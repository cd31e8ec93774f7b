//! The id map in memory: the store's OA ↔ DingTalk links for the ids a conversion needs.
//!
//! Conversion is a pure function of DingTalk's state and this map; the import loads a whole
//! kind at once ([`IdMap::load_all`]), event application just the ids one entity references
//! ([`IdMap::load_refs`]).

use std::collections::HashMap;
use std::hash::Hash;

use directory_model::{
    DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId, OaRoleId,
    OaUserId,
};
use directory_store::{EntityKind, Store, StoreError};

use super::ConvertError;

/// A one-to-one map in both directions.
#[derive(Debug, Clone)]
struct BiMap<O, D> {
    /// OA id → DingTalk id.
    to_ding: HashMap<O, D>,
    /// DingTalk id → OA id.
    to_oa: HashMap<D, O>,
}

impl<O, D> Default for BiMap<O, D> {
    fn default() -> Self {
        Self {
            to_ding: HashMap::new(),
            to_oa: HashMap::new(),
        }
    }
}

impl<O: Clone + Eq + Hash, D: Clone + Eq + Hash> BiMap<O, D> {
    fn insert(&mut self, oa: O, ding: D) {
        // Drop stale links on either side so the two directions stay inverse to each other.
        if let Some(old) = self.to_ding.insert(oa.clone(), ding.clone()) {
            self.to_oa.remove(&old);
        }
        if let Some(old) = self.to_oa.insert(ding, oa) {
            self.to_ding.remove(&old);
        }
    }
}

/// An in-memory copy of (part of) the store's id map, so that conversion is a pure function.
///
/// The import loads a whole kind at once ([`IdMap::load_all`]); event application loads just
/// the ids one entity references ([`IdMap::load_refs`]).
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    /// Departments.
    depts: BiMap<OaDeptId, DingDeptId>,
    /// Users.
    users: BiMap<OaUserId, DingUserId>,
    /// Role groups.
    groups: BiMap<OaRoleGroupId, DingRoleGroupId>,
    /// Roles.
    roles: BiMap<OaRoleId, DingRoleId>,
}

impl IdMap {
    /// Every link in the store.
    pub async fn load_all(store: &Store) -> Result<Self, StoreError> {
        let mut map = Self::default();
        for (oa, ding) in store.id_map_all::<OaDeptId>().await? {
            map.depts.insert(oa, ding);
        }
        for (oa, ding) in store.id_map_all::<OaUserId>().await? {
            map.users.insert(oa, ding);
        }
        for (oa, ding) in store.id_map_all::<OaRoleGroupId>().await? {
            map.groups.insert(oa, ding);
        }
        for (oa, ding) in store.id_map_all::<OaRoleId>().await? {
            map.roles.insert(oa, ding);
        }
        Ok(map)
    }

    /// Adds the links of the given DingTalk ids that the store knows (unknown ones stay absent).
    pub async fn load_refs(
        &mut self,
        store: &Store,
        depts: impl IntoIterator<Item = DingDeptId>,
        users: impl IntoIterator<Item = DingUserId>,
    ) -> Result<(), StoreError> {
        for d in depts {
            if self.depts.to_oa.contains_key(&d) {
                continue;
            }
            if let Some(oa) = store.oa_id_of::<OaDeptId>(&d).await? {
                self.depts.insert(oa, d);
            }
        }
        for u in users {
            if self.users.to_oa.contains_key(&u) {
                continue;
            }
            if let Some(oa) = store.oa_id_of::<OaUserId>(&u).await? {
                self.users.insert(oa, u);
            }
        }
        Ok(())
    }

    /// Links a department.
    pub fn insert_dept(&mut self, oa: OaDeptId, ding: DingDeptId) {
        self.depts.insert(oa, ding);
    }
    /// Links a user.
    pub fn insert_user(&mut self, oa: OaUserId, ding: DingUserId) {
        self.users.insert(oa, ding);
    }
    /// Forgets a DingTalk user's link (the import's provisional manager links that did not hold).
    pub fn remove_user(&mut self, ding: &DingUserId) {
        if let Some(oa) = self.users.to_oa.remove(ding) {
            self.users.to_ding.remove(&oa);
        }
    }
    /// Links a role group.
    pub fn insert_group(&mut self, oa: OaRoleGroupId, ding: DingRoleGroupId) {
        self.groups.insert(oa, ding);
    }
    /// Links a role.
    pub fn insert_role(&mut self, oa: OaRoleId, ding: DingRoleId) {
        self.roles.insert(oa, ding);
    }

    /// The OA id of a DingTalk department.
    pub fn oa_dept(&self, ding: DingDeptId) -> Option<OaDeptId> {
        self.depts.to_oa.get(&ding).copied()
    }
    /// The DingTalk id of an OA department.
    pub fn ding_dept(&self, oa: OaDeptId) -> Option<DingDeptId> {
        self.depts.to_ding.get(&oa).copied()
    }
    /// The OA id of a DingTalk user.
    pub fn oa_user(&self, ding: &DingUserId) -> Option<&OaUserId> {
        self.users.to_oa.get(ding)
    }
    /// The DingTalk userid of an OA user.
    pub fn ding_user(&self, oa: &OaUserId) -> Option<&DingUserId> {
        self.users.to_ding.get(oa)
    }
    /// The OA id of a DingTalk role group.
    pub fn oa_group(&self, ding: DingRoleGroupId) -> Option<OaRoleGroupId> {
        self.groups.to_oa.get(&ding).copied()
    }
    /// The DingTalk id of an OA role group.
    pub fn ding_group(&self, oa: OaRoleGroupId) -> Option<DingRoleGroupId> {
        self.groups.to_ding.get(&oa).copied()
    }
    /// The OA id of a DingTalk role.
    pub fn oa_role(&self, ding: DingRoleId) -> Option<OaRoleId> {
        self.roles.to_oa.get(&ding).copied()
    }
    /// The DingTalk id of an OA role.
    pub fn ding_role(&self, oa: OaRoleId) -> Option<DingRoleId> {
        self.roles.to_ding.get(&oa).copied()
    }

    /// How many departments and users are linked.
    pub fn len(&self) -> (usize, usize) {
        (self.depts.to_ding.len(), self.users.to_ding.len())
    }

    /// Whether nothing is linked.
    pub fn is_empty(&self) -> bool {
        self.depts.to_ding.is_empty()
            && self.users.to_ding.is_empty()
            && self.groups.to_ding.is_empty()
            && self.roles.to_ding.is_empty()
    }

    pub(super) fn need_dept(&self, ding: DingDeptId) -> Result<OaDeptId, ConvertError> {
        self.oa_dept(ding)
            .ok_or_else(|| unmapped(EntityKind::Department, ding))
    }

    pub(super) fn need_user(&self, ding: &DingUserId) -> Result<OaUserId, ConvertError> {
        self.oa_user(ding)
            .cloned()
            .ok_or_else(|| unmapped(EntityKind::User, ding))
    }

    pub(super) fn need_group(&self, ding: DingRoleGroupId) -> Result<OaRoleGroupId, ConvertError> {
        self.oa_group(ding)
            .ok_or_else(|| unmapped(EntityKind::RoleGroup, ding))
    }

    pub(super) fn need_role(&self, ding: DingRoleId) -> Result<OaRoleId, ConvertError> {
        self.oa_role(ding)
            .ok_or_else(|| unmapped(EntityKind::Role, ding))
    }
}

fn unmapped(kind: EntityKind, ding: impl std::fmt::Display) -> ConvertError {
    ConvertError::Unmapped {
        kind,
        ding_id: ding.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_map_stays_one_to_one_when_relinked() {
        let mut m = IdMap::default();
        m.insert_dept(OaDeptId(5), DingDeptId(50));
        m.insert_dept(OaDeptId(5), DingDeptId(51));
        assert_eq!(m.oa_dept(DingDeptId(50)), None);
        assert_eq!(m.oa_dept(DingDeptId(51)), Some(OaDeptId(5)));
        assert_eq!(m.ding_dept(OaDeptId(5)), Some(DingDeptId(51)));
    }
}
