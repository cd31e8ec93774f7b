//! For mappings that are inverse pairs, OA → DingTalk → OA is the identity.

use directory_model::{Mobile, OaDeptId, OaUserId, User, UserState};
use proptest::prelude::*;

use crate::helpers::load;

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z0-9 ._@-]{0,20}")
}

/// Arbitrary users with every field type exercised.
pub fn arb_user() -> impl Strategy<Value = User> {
    (
        "[a-z0-9]{1,12}",
        "[^\\x00]{1,20}",
        proptest::collection::vec(1i64..50, 1..4),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        proptest::option::of("1[0-9]{10}"),
        proptest::option::of(0i64..2_000_000_000_000),
        proptest::collection::btree_map("[a-z_]{1,8}", "[^\\x00]{0,10}", 0..4),
        any::<bool>(),
    )
        .prop_map(
            |(id, name, depts, (job, email, remark, place), mobile, hired, ext, left)| {
                let depts: Vec<OaDeptId> = depts.into_iter().map(OaDeptId).collect();
                let mut u = User::new(OaUserId::new(id), name, &depts);
                u.job_number = job;
                u.email = email;
                u.remark = remark;
                u.work_place = place;
                u.mobile = mobile.map(Mobile::mainland);
                u.hired_date_ms = hired;
                u.extension = ext;
                u.state = if left {
                    UserState::Left
                } else {
                    UserState::Active
                };
                u
            },
        )
}

const INVERSE_PAIRS: &str = r#"
[mapping.users.fields.job_number]
to_dingtalk = 'user.job_number == null ? null : "E" + user.job_number'
to_oa = 'user.job_number == null ? null : user.job_number.substring(1)'

[mapping.users.fields.email]
to_dingtalk = 'user.email == null ? null : user.email + ".cn"'
to_oa = 'user.email == null ? null : user.email.substring(0, size(user.email) - 3)'

[mapping.users.fields.work_place]
to_dingtalk = "null"
to_oa = 'user.extension.?office.orValue(null)'

[mapping.users.extension.office]
to_dingtalk = "user.work_place"
to_oa = "null"
"#;

proptest! {
    #[test]
    fn inverse_pairs_round_trip(mut user in arb_user()) {
        // "office" is the key the mapping owns; an OA user never carries it itself.
        user.extension.remove("office");
        let l = load(INVERSE_PAIRS);
        let dt = l.mapping.user_to_dingtalk(&user).unwrap().entity;
        let back = l.mapping.user_to_oa(&dt).unwrap().entity;
        prop_assert_eq!(back, user);
    }
}
