//! One test per mapping shape the issue names.

use directory_model::{OaDeptId, UserField};

use crate::helpers::{load, sample_dept, sample_user};

const PREFIX: &str = r#"
[mapping.users.fields.job_number]
to_dingtalk = 'user.job_number == null ? null : "E" + user.job_number'
to_oa = 'user.job_number != null && user.job_number.startsWith("E") ? user.job_number.substring(1) : user.job_number'
owner = "oa"
"#;

#[test]
fn prefix_on_job_numbers_both_ways() {
    let l = load(PREFIX);
    let dt = l.mapping.user_to_dingtalk(&sample_user()).unwrap();
    assert_eq!(dt.entity.job_number.as_deref(), Some("E1042"));
    assert_eq!(dt.entity.name, "Zhang San", "unlisted fields are copied");
    let back = l.mapping.user_to_oa(&dt.entity).unwrap();
    assert_eq!(back.entity.job_number.as_deref(), Some("1042"));
    let mut none = sample_user();
    none.job_number = None;
    assert_eq!(
        l.mapping.user_to_dingtalk(&none).unwrap().entity.job_number,
        None
    );
    assert_eq!(
        l.mapping.user_policy().authority.get(&UserField::JobNumber),
        Some(&directory_model::Authority::Oa)
    );
}

#[test]
fn code_table_lookup_with_a_map_literal() {
    let l = load(
        r#"
[mapping.users.fields.remark]
to_dingtalk = '{"D01": "Engineer", "D02": "Manager"}[user.extension.?title_code.orValue("D01")]'
apply = "on_create"
"#,
    );
    let mut u = sample_user();
    let dt = l.mapping.user_to_dingtalk(&u).unwrap();
    assert_eq!(dt.entity.remark.as_deref(), Some("Manager"));
    u.extension.clear();
    let dt = l.mapping.user_to_dingtalk(&u).unwrap();
    assert_eq!(
        dt.entity.remark.as_deref(),
        Some("Engineer"),
        "the default code"
    );
    // on_create: an update keeps what DingTalk already has.
    assert!(dt.create_only.contains(&UserField::Remark));
    let mut existing = dt.entity.clone();
    existing.remark = Some("set by hand".into());
    assert_eq!(
        dt.for_update(&existing).remark.as_deref(),
        Some("set by hand")
    );
    // An unknown code is an evaluation error naming the rule.
    u.extension.insert("title_code".into(), "ZZ".into());
    let err = l.mapping.user_to_dingtalk(&u).unwrap_err();
    assert_eq!(err.key, "mapping.users.fields.remark.to_dingtalk");
}

const INTO_EXTENSION: &str = r#"
[mapping.users.fields.work_place]
to_dingtalk = "null"
to_oa = 'user.extension.?office.orValue(null)'

[mapping.users.extension.office]
to_dingtalk = "user.work_place"
to_oa = "null"
"#;

#[test]
fn a_field_into_an_extension_and_back() {
    let l = load(INTO_EXTENSION);
    let u = sample_user();
    let dt = l.mapping.user_to_dingtalk(&u).unwrap().entity;
    assert_eq!(dt.work_place, None);
    assert_eq!(
        dt.extension.get("office").map(String::as_str),
        Some("Hangzhou")
    );
    assert_eq!(
        dt.extension.get("title_code").map(String::as_str),
        Some("D02"),
        "other keys kept"
    );
    let oa = l.mapping.user_to_oa(&dt).unwrap().entity;
    assert_eq!(oa, u);
}

#[test]
fn a_plain_field_name_copies_that_field() {
    let l = load("[mapping.users.fields.org_email]\nto_dingtalk = \"email\"\n");
    let dt = l.mapping.user_to_dingtalk(&sample_user()).unwrap().entity;
    assert_eq!(dt.org_email.as_deref(), Some("zs@example.com"));
}

#[test]
fn department_name_expression() {
    let l = load(
        r#"
[mapping.departments.fields.name]
to_dingtalk = 'dept.name.replace("&", " and ")'
[mapping.departments]
winner = "dingtalk"
"#,
    );
    let d = l
        .mapping
        .department_to_dingtalk(&sample_dept())
        .unwrap()
        .entity;
    assert_eq!(d.name, "R and D");
    assert_eq!(d.parent, Some(OaDeptId(1)));
    assert_eq!(
        l.mapping.department_policy().winner,
        directory_model::Side::DingTalk
    );
}

#[test]
fn soft_match_order_is_configurable() {
    let l = load("[mapping.users]\nsoft_match = [\"email\", \"job_number\"]\n");
    assert_eq!(
        l.mapping.soft_match(),
        &[UserField::Email, UserField::JobNumber]
    );
}

#[test]
fn the_documented_worked_example_does_what_it_says() {
    let l = load(include_str!("../../mapping.example.toml"));
    let mut u = sample_user();
    let dt = l.mapping.user_to_dingtalk(&u).unwrap();
    assert_eq!(dt.entity.job_number.as_deref(), Some("E1042"));
    assert_eq!(dt.entity.remark.as_deref(), Some("Manager"));
    assert_eq!(dt.entity.work_place, None);
    assert_eq!(dt.entity.extension["office"], "Hangzhou");
    assert_eq!(
        l.mapping.soft_match(),
        &[UserField::JobNumber, UserField::Email]
    );
    let oa = l.mapping.user_to_oa(&dt.entity).unwrap().entity;
    assert_eq!(oa.job_number, u.job_number);
    assert_eq!(oa.work_place, u.work_place);
    assert!(!oa.extension.contains_key("office"));
    assert!(l.scope.includes_oa_user(&u, &[]).unwrap().included);
    u.extension
        .insert("employment_type".into(), "contractor".into());
    assert!(!l.scope.includes_oa_user(&u, &[]).unwrap().included);
    let d = sample_dept();
    assert!(
        !l.scope
            .includes_oa_department(&d, &[OaDeptId(7), OaDeptId(42)])
            .unwrap()
            .included
    );
}
