//! The default mapping is today's fixed behaviour, and the fingerprint tracks only real changes.

use directory_model::{Department, FieldAccess, MergePolicy, User};
use mapping::DEFAULT_SOFT_MATCH;
use proptest::prelude::*;

use crate::helpers::{configs, load, sample_dept, sample_user};
use crate::roundtrip::arb_user;

proptest! {
    #[test]
    fn default_mapping_maps_every_field_the_same_as_today(user in arb_user()) {
        let l = load("");
        let dt = l.mapping.user_to_dingtalk(&user).unwrap();
        prop_assert_eq!(dt.entity.changed_fields(&user), vec![]);
        prop_assert!(dt.create_only.is_empty());
        prop_assert_eq!(&l.mapping.user_to_oa(&user).unwrap().entity, &user);
    }
}

#[test]
fn default_policy_owners_and_soft_match_are_todays() {
    let l = load("");
    assert_eq!(l.mapping.user_policy(), &MergePolicy::default());
    assert_eq!(l.mapping.department_policy(), &MergePolicy::default());
    assert_eq!(l.mapping.soft_match(), &DEFAULT_SOFT_MATCH);
    let d: Department = sample_dept();
    assert_eq!(l.mapping.department_to_dingtalk(&d).unwrap().entity, d);
    assert_eq!(l.mapping.department_to_oa(&d).unwrap().entity, d);
    let u: User = sample_user();
    assert_eq!(l.mapping.user_to_dingtalk(&u).unwrap().entity, u);
}

#[test]
fn fingerprint_ignores_restated_defaults_and_sees_real_changes() {
    let empty = load("").fingerprint;
    let restated = load(
        r#"
[mapping.users]
soft_match = ["mobile", "job_number", "email"]
[mapping.users.fields.name]
to_dingtalk = "name"
owner = "both"
apply = "always"
"#,
    )
    .fingerprint;
    assert_eq!(empty, restated);
    assert_eq!(empty.0.len(), 64);
    let changed = load("[mapping.users.fields.name]\nto_dingtalk = 'user.name'\n").fingerprint;
    assert_ne!(empty, changed);
    let owner = load("[mapping.users.fields.name]\nowner = \"oa\"\n").fingerprint;
    assert_ne!(empty, owner);
    let scoped = load("[scope.to_oa.users]\na = 'true'\n").fingerprint;
    // An explicit winner overrides the service-wide `sync.conflict_winner`: not a restatement.
    let winner = load("[mapping.users]\nwinner = \"oa\"\n").fingerprint;
    assert_ne!(empty, winner);
    assert_ne!(empty, scoped);
    // Stable across runs and processes: a fixed value for the empty config.
    let (m, s) = configs("");
    assert_eq!(mapping::fingerprint(&m, &s), empty);
}

#[test]
fn loaded_rules_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<mapping::Loaded>();
}
