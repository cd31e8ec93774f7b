//! Three-way merge of one entity (design invariant 7).
//!
//! When both the OA system and DingTalk may have changed an entity since the last sync, comparing
//! the two sides alone cannot tell who changed what. The store keeps the last synced state of every
//! entity (the *base*); per field, a side whose value differs from the base changed it:
//!
//! | OA vs base | DingTalk vs base | result |
//! |---|---|---|
//! | same | same | base |
//! | changed | same | OA's value |
//! | same | changed | DingTalk's value |
//! | changed | changed, equal to OA | that value |
//! | changed | changed, different | the configured winner's value, and a [`Conflict`] is recorded |
//!
//! A per-field [`Authority`] overrides this: a field owned by one side always takes that side's
//! value (the other side's edits are overwritten on the next push), and never records a conflict.
//!
//! The merge is a pure function of (base, oa, dingtalk, policy); the properties that make the
//! sync loop converge are checked by proptests below: merging an unchanged side yields the other
//! side, and re-merging either side's view of the result yields the result again (no echo loop).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fields::FieldAccess;

/// One of the two synchronised directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The OA directory (dingsync's SQL store). The default winner.
    #[default]
    Oa,
    /// DingTalk Contacts.
    #[serde(rename = "dingtalk")]
    DingTalk,
}

/// Which side owns a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    /// Only OA edits count; DingTalk's value is overwritten.
    Oa,
    /// Only DingTalk edits count; OA's value is overwritten.
    #[serde(rename = "dingtalk")]
    DingTalk,
    /// Both sides may edit; three-way merge decides (the default).
    #[default]
    Both,
}

/// How to merge one entity kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "F: Serialize + Ord",
    deserialize = "F: Deserialize<'de> + Ord"
))]
pub struct MergePolicy<F> {
    /// Who wins when both sides changed a field to different values.
    pub winner: Side,
    /// Per-field owner; fields not listed are [`Authority::Both`].
    pub authority: BTreeMap<F, Authority>,
}

impl<F: Ord> Default for MergePolicy<F> {
    fn default() -> Self {
        Self {
            winner: Side::Oa,
            authority: BTreeMap::new(),
        }
    }
}

impl<F: Ord + Copy> MergePolicy<F> {
    /// A policy where all fields are shared and `winner` settles conflicts.
    pub fn with_winner(winner: Side) -> Self {
        Self {
            winner,
            authority: BTreeMap::new(),
        }
    }

    /// The owner of `field`.
    pub fn authority_of(&self, field: F) -> Authority {
        self.authority.get(&field).copied().unwrap_or_default()
    }
}

/// Both sides changed `field` to different values since the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict<F> {
    /// The field.
    pub field: F,
    /// Its value at the last sync.
    pub base: serde_json::Value,
    /// OA's value.
    pub oa: serde_json::Value,
    /// DingTalk's value.
    pub dingtalk: serde_json::Value,
    /// The side whose value was kept.
    pub winner: Side,
}

/// The outcome of merging one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged<T: FieldAccess> {
    /// The merged entity; both sides should be brought to it.
    pub value: T,
    /// Fields changed differently on both sides.
    pub conflicts: Vec<Conflict<T::Field>>,
    /// Fields in which the OA side differs from `value` (what to write to the OA directory).
    pub oa_changes: Vec<T::Field>,
    /// Fields in which DingTalk differs from `value` (what to push to DingTalk).
    pub dingtalk_changes: Vec<T::Field>,
}

/// Merges one entity; `oa` and `dingtalk` must describe the same entity (same id) as `base`.
/// The result takes its id from `oa`.
pub fn merge<T: FieldAccess>(
    base: &T,
    oa: &T,
    dingtalk: &T,
    policy: &MergePolicy<T::Field>,
) -> Merged<T> {
    let mut value = oa.clone();
    let mut conflicts = Vec::new();
    for &field in T::all_fields() {
        let take = match policy.authority_of(field) {
            Authority::Oa => Side::Oa,
            Authority::DingTalk => Side::DingTalk,
            Authority::Both => {
                let oa_changed = !oa.field_eq(base, field);
                let ding_changed = !dingtalk.field_eq(base, field);
                match (oa_changed, ding_changed) {
                    (_, false) => Side::Oa,
                    (false, true) => Side::DingTalk,
                    (true, true) if oa.field_eq(dingtalk, field) => Side::Oa,
                    (true, true) => {
                        conflicts.push(Conflict {
                            field,
                            base: base.field_json(field),
                            oa: oa.field_json(field),
                            dingtalk: dingtalk.field_json(field),
                            winner: policy.winner,
                        });
                        policy.winner
                    }
                }
            }
        };
        if take == Side::DingTalk {
            value.copy_field(dingtalk, field);
        }
    }
    Merged {
        oa_changes: oa.changed_fields(&value),
        dingtalk_changes: dingtalk.changed_fields(&value),
        value,
        conflicts,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::entity::{Department, DeptField, Membership, Mobile, User, UserField, UserState};
    use crate::ids::{OaDeptId, OaUserId};

    /// Departments drawn from tiny value sets, so that two draws often agree on a field (the
    /// interesting case for a three-way merge).
    fn dept() -> impl Strategy<Value = Department> {
        (
            prop::sample::select(vec!["A", "B", "C"]),
            prop::option::of(1i64..3),
            0i64..3,
            prop::collection::vec(prop::sample::select(vec!["m1", "m2"]), 0..2),
            prop::option::of(prop::sample::select(vec!["s1", "s2"])),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(name, parent, order, managers, si, hide, outer)| Department {
                    id: OaDeptId(10),
                    name: name.into(),
                    parent: parent.map(OaDeptId),
                    order,
                    managers: managers.into_iter().map(OaUserId::new).collect(),
                    source_identifier: si.map(str::to_owned),
                    hide,
                    outer,
                },
            )
    }

    fn user() -> impl Strategy<Value = User> {
        (
            prop::sample::select(vec!["Ann", "Bo"]),
            prop::collection::vec((1i64..4, prop::option::of(Just("t".to_owned()))), 1..3),
            prop::option::of(prop::sample::select(vec!["j1", "j2"])),
            prop::option::of(prop::sample::select(vec!["13800000000", "13900000000"])),
            prop::option::of(prop::sample::select(vec!["a@x.cn", "b@x.cn"])),
            prop::option::of(0i64..2),
            prop::collection::btree_map(prop::sample::select(vec!["k1", "k2"]), Just("v"), 0..2),
            any::<bool>(),
        )
            .prop_map(|(name, depts, job, mobile, email, hired, ext, left)| {
                let mut u = User::new(OaUserId::new("u"), name, &[]);
                u.departments = depts
                    .into_iter()
                    .map(|(d, title)| Membership {
                        dept: OaDeptId(d),
                        title,
                        order: 0,
                    })
                    .collect();
                u.main_department = u.departments.first().map(|m| m.dept);
                u.job_number = job.map(str::to_owned);
                u.mobile = mobile.map(Mobile::mainland);
                u.email = email.map(str::to_owned);
                u.hired_date_ms = hired;
                u.extension = ext
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect::<BTreeMap<_, _>>();
                u.state = if left {
                    UserState::Left
                } else {
                    UserState::Active
                };
                u
            })
    }

    fn side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Oa), Just(Side::DingTalk)]
    }

    /// The laws every merge must satisfy under a shared-authority policy.
    fn check_laws<T: FieldAccess + std::fmt::Debug>(b: &T, x: &T, y: &T, winner: Side) {
        let p = MergePolicy::with_winner(winner);
        // An unchanged side yields the other side, without conflicts.
        let m = merge(b, x, b, &p);
        assert_eq!(&m.value, x);
        assert!(m.conflicts.is_empty());
        assert!(m.oa_changes.is_empty());
        let m = merge(b, b, y, &p);
        assert_eq!(&m.value, y);
        assert!(m.dingtalk_changes.is_empty());
        // Agreeing sides yield their common value.
        let m = merge(b, x, x, &p);
        assert_eq!(&m.value, x);
        assert!(m.conflicts.is_empty());
        // Idempotence: once both sides hold the result, or either side's view is merged again,
        // the result does not move (no echo loop).
        let m = merge(b, x, y, &p).value;
        assert_eq!(merge(b, &m, &m, &p).value, m);
        assert_eq!(merge(&m, &m, &m, &p).value, m);
        assert_eq!(merge(b, &m, y, &p).value, m);
        assert_eq!(merge(b, x, &m, &p).value, m);
    }

    proptest! {
        #[test]
        fn department_merge_laws(b in dept(), x in dept(), y in dept(), w in side()) {
            check_laws(&b, &x, &y, w);
        }

        #[test]
        fn user_merge_laws(b in user(), x in user(), y in user(), w in side()) {
            check_laws(&b, &x, &y, w);
        }

        #[test]
        fn conflicts_are_exactly_the_fields_changed_differently(
            b in dept(), x in dept(), y in dept(), w in side()
        ) {
            let m = merge(&b, &x, &y, &MergePolicy::with_winner(w));
            let expected: Vec<DeptField> = <Department as FieldAccess>::all_fields()
                .iter()
                .copied()
                .filter(|f| !x.field_eq(&b, *f) && !y.field_eq(&b, *f) && !x.field_eq(&y, *f))
                .collect();
            let got: Vec<DeptField> = m.conflicts.iter().map(|c| c.field).collect();
            prop_assert_eq!(got, expected);
            let winner = if w == Side::Oa { &x } else { &y };
            for c in &m.conflicts {
                prop_assert!(m.value.field_eq(winner, c.field));
                prop_assert_eq!(c.winner, w);
            }
        }

        #[test]
        fn owned_fields_always_take_the_owner(b in user(), x in user(), y in user()) {
            let mut p = MergePolicy::default();
            p.authority.insert(UserField::Name, Authority::DingTalk);
            p.authority.insert(UserField::Email, Authority::Oa);
            let m = merge(&b, &x, &y, &p);
            prop_assert_eq!(&m.value.name, &y.name);
            prop_assert_eq!(&m.value.email, &x.email);
            prop_assert!(m.conflicts.iter().all(|c| c.field != UserField::Name
                && c.field != UserField::Email));
        }
    }

    #[test]
    fn conflict_records_all_three_values_and_default_winner_is_oa() {
        let b = Department::new(OaDeptId(5), "Base", Some(OaDeptId(1)));
        let mut x = b.clone();
        x.name = "OA".into();
        let mut y = b.clone();
        y.name = "Ding".into();
        y.order = 3;
        let m = merge(&b, &x, &y, &MergePolicy::default());
        assert_eq!(m.value.name, "OA");
        assert_eq!(m.value.order, 3);
        assert_eq!(
            m.conflicts,
            vec![Conflict {
                field: DeptField::Name,
                base: "Base".into(),
                oa: "OA".into(),
                dingtalk: "Ding".into(),
                winner: Side::Oa,
            }]
        );
        assert_eq!(m.oa_changes, vec![DeptField::Order]);
        assert_eq!(m.dingtalk_changes, vec![DeptField::Name]);
    }

    #[test]
    fn policy_round_trips_through_json() {
        let mut p: MergePolicy<UserField> = MergePolicy::with_winner(Side::DingTalk);
        p.authority.insert(UserField::Mobile, Authority::Oa);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"winner":"dingtalk","authority":{"mobile":"oa"}}"#);
        let back: MergePolicy<UserField> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
