//! The cost per entity of a ten-rule mapping. Ignored by default (timing is not a test); run
//! with `cargo nextest run -p mapping --run-ignored only cost` and read the printed line.

use std::time::Instant;

use crate::helpers::{load, sample_user};

const TEN_RULES: &str = r#"
[mapping.users.fields.job_number]
to_dingtalk = 'user.job_number == null ? null : "E" + user.job_number'
[mapping.users.fields.remark]
to_dingtalk = '{"D01": "Engineer", "D02": "Manager"}[user.extension.?title_code.orValue("D01")]'
[mapping.users.fields.work_place]
to_dingtalk = "null"
[mapping.users.fields.email]
to_dingtalk = 'user.email == null ? null : user.email.lowerAscii()'
[mapping.users.fields.org_email]
to_dingtalk = "email"
[mapping.users.fields.name]
to_dingtalk = 'user.name.trim()'
[mapping.users.fields.telephone]
to_dingtalk = 'user.telephone == null ? "" : user.telephone'
[mapping.users.extension.office]
to_dingtalk = "user.work_place"
[mapping.users.extension.grade]
to_dingtalk = 'user.extension.?grade.orValue("none")'
[scope.to_dingtalk.users]
not_contractor = 'user.extension.?employment_type.orValue("") != "contractor"'
"#;

#[test]
#[ignore = "measurement: prints ns per entity"]
fn cost_of_a_ten_rule_mapping_per_entity() {
    let l = load(TEN_RULES);
    let identity = load("");
    let user = sample_user();
    let n = 20_000u32;
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed().as_nanos() / u128::from(n)
    };
    let base = time(&|| {
        identity.mapping.user_to_dingtalk(&user).unwrap();
    });
    let ten = time(&|| {
        l.mapping.user_to_dingtalk(&user).unwrap();
        l.scope.includes_oa_user(&user, &[]).unwrap();
    });
    println!("identity mapping: {base} ns/entity; ten-rule mapping + scope: {ten} ns/entity");
    assert!(ten > 0);
}
