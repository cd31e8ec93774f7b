//! The four synced entity kinds — departments, users, role groups, roles — behind one trait.
//!
//! Apply, plan and reconcile do the same steps for every kind: merge three ways under the
//! kind's field policy, save through the store's method for the kind, name and validate an
//! entity for a plan, find the kind's map in a [`Snapshot`]. [`SyncedKind`] is what differs per
//! kind, implemented once here, so generic code holds the steps and no step is copied four
//! times. Code that visits every kind goes through [`for_each_kind`], the one place that lists
//! them, in dependency order (a parent department before its children's users, a role group
//! before its roles).
//!
//! Role assignments are the store's fifth kind but not an entity: they have no fields to merge,
//! only a key, [`assignment_key`], whose one spelling lives here too.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;

use directory_model::{
    Department, FieldAccess, Identified, MergePolicy, OaRoleId, OaUserId, Role, RoleAssignment,
    RoleGroup, Snapshot, User, ValidationErrors, validate_department, validate_role,
    validate_role_group, validate_user,
};
use directory_store::{EntityKind, Expect, Saved, Store, StoreError, WriteCtx};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::policy::Policy;

/// What generic sync code needs to know about one entity kind.
pub(crate) trait SyncedKind:
    FieldAccess
    + Identified<Id: Display + Send + Sync>
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The store's name for the kind (outbox entries, base rows, audit).
    const KIND: EntityKind;

    /// The readable name a plan shows.
    fn label(&self) -> String;

    /// The validation a push runs (a plan lists its problems).
    fn validate(&self) -> Result<(), ValidationErrors>;

    /// The kind's field authority and conflict winner.
    fn merge_policy(policy: &Policy) -> &MergePolicy<Self::Field>;

    /// The kind's entities in a snapshot.
    fn of(snapshot: &Snapshot) -> &BTreeMap<Self::Id, Self>;

    /// The kind's entities in a snapshot, to change.
    fn of_mut(snapshot: &mut Snapshot) -> &mut BTreeMap<Self::Id, Self>;

    /// Parses the store's id text (an outbox entry's `oa_id`).
    fn parse_id(text: &str) -> Option<Self::Id>;

    /// The entity above this one in a tree of its kind (departments only), so that writes can
    /// go parents first.
    fn parent(&self) -> Option<Self::Id> {
        None
    }

    /// Saves the entity through the store's method for the kind.
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a;

    /// The store's id text of the entity (base rows, outbox entries, conflicts).
    fn oa_key(&self) -> String {
        self.id().to_string()
    }
}

impl SyncedKind for Department {
    const KIND: EntityKind = EntityKind::Department;
    fn label(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        validate_department(self)
    }
    fn merge_policy(policy: &Policy) -> &MergePolicy<Self::Field> {
        &policy.departments
    }
    fn of(snapshot: &Snapshot) -> &BTreeMap<Self::Id, Self> {
        &snapshot.departments
    }
    fn of_mut(snapshot: &mut Snapshot) -> &mut BTreeMap<Self::Id, Self> {
        &mut snapshot.departments
    }
    fn parse_id(text: &str) -> Option<Self::Id> {
        text.parse().ok().map(directory_model::OaDeptId)
    }
    fn parent(&self) -> Option<Self::Id> {
        self.parent
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_department(ctx, value, expect)
    }
}

impl SyncedKind for User {
    const KIND: EntityKind = EntityKind::User;
    fn label(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        validate_user(self)
    }
    fn merge_policy(policy: &Policy) -> &MergePolicy<Self::Field> {
        &policy.users
    }
    fn of(snapshot: &Snapshot) -> &BTreeMap<Self::Id, Self> {
        &snapshot.users
    }
    fn of_mut(snapshot: &mut Snapshot) -> &mut BTreeMap<Self::Id, Self> {
        &mut snapshot.users
    }
    fn parse_id(text: &str) -> Option<Self::Id> {
        Some(OaUserId::new(text))
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_user(ctx, value, expect)
    }
    fn oa_key(&self) -> String {
        self.id.0.clone()
    }
}

impl SyncedKind for RoleGroup {
    const KIND: EntityKind = EntityKind::RoleGroup;
    fn label(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        validate_role_group(self)
    }
    fn merge_policy(policy: &Policy) -> &MergePolicy<Self::Field> {
        &policy.role_groups
    }
    fn of(snapshot: &Snapshot) -> &BTreeMap<Self::Id, Self> {
        &snapshot.role_groups
    }
    fn of_mut(snapshot: &mut Snapshot) -> &mut BTreeMap<Self::Id, Self> {
        &mut snapshot.role_groups
    }
    fn parse_id(text: &str) -> Option<Self::Id> {
        text.parse().ok().map(directory_model::OaRoleGroupId)
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_role_group(ctx, value, expect)
    }
}

impl SyncedKind for Role {
    const KIND: EntityKind = EntityKind::Role;
    fn label(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        validate_role(self)
    }
    fn merge_policy(policy: &Policy) -> &MergePolicy<Self::Field> {
        &policy.roles
    }
    fn of(snapshot: &Snapshot) -> &BTreeMap<Self::Id, Self> {
        &snapshot.roles
    }
    fn of_mut(snapshot: &mut Snapshot) -> &mut BTreeMap<Self::Id, Self> {
        &mut snapshot.roles
    }
    fn parse_id(text: &str) -> Option<Self::Id> {
        text.parse().ok().map(OaRoleId)
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_role(ctx, value, expect)
    }
}

/// A step done once per kind; see [`for_each_kind`].
pub(crate) trait KindVisitor: Send {
    /// What stops the visit.
    type Error: Send;

    /// The step for kind `T`.
    fn visit<T: SyncedKind>(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Runs `visitor` for every kind, in dependency order: departments, users, role groups, roles.
pub(crate) async fn for_each_kind<V: KindVisitor>(visitor: &mut V) -> Result<(), V::Error> {
    visitor.visit::<Department>().await?;
    visitor.visit::<User>().await?;
    visitor.visit::<RoleGroup>().await?;
    visitor.visit::<Role>().await
}

/// The store's id text of a role assignment: `role:user`.
pub(crate) fn assignment_key(a: &RoleAssignment) -> String {
    format!("{}:{}", a.role, a.user)
}

/// Reads [`assignment_key`]'s text back (the role id is numeric, the user id may itself
/// contain `:`, so it splits at the first one).
pub(crate) fn parse_assignment(text: &str) -> Option<RoleAssignment> {
    let (role, user) = text.split_once(':')?;
    Some(RoleAssignment {
        user: OaUserId::new(user),
        role: OaRoleId(role.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use directory_model::OaDeptId;

    use super::*;

    #[test]
    fn assignment_ids_split_at_the_first_colon() {
        let a = parse_assignment("17:corp:zhang").unwrap();
        assert_eq!(a.user.as_str(), "corp:zhang");
        assert_eq!(a.role, OaRoleId(17));
        assert_eq!(assignment_key(&a), "17:corp:zhang");
        assert!(parse_assignment("nouser").is_none());
        assert!(parse_assignment("x:u").is_none());
    }

    #[test]
    fn keys_are_the_store_id_text() {
        let d = Department::new(OaDeptId(5), "R&D", None);
        assert_eq!(d.oa_key(), "5");
        assert_eq!(Department::parse_id("5"), Some(OaDeptId(5)));
        let u = User::new(OaUserId::new("corp:zhang"), "Zhang", &[]);
        assert_eq!(u.oa_key(), "corp:zhang");
        assert_eq!(User::parse_id("corp:zhang"), Some(u.id.clone()));
        assert_eq!(Role::parse_id("x"), None);
    }
}
