//! Scope predicates: a contractor rule, a subtree exclusion, a job-number rule.

use directory_model::{DingDeptId, OaDeptId};
use mapping::RuleOutcome;

use crate::helpers::{load, sample_dept, sample_user};

const SCOPE: &str = r#"
[scope.to_dingtalk.users]
not_contractor = 'user.extension.?employment_type.orValue("") != "contractor"'
has_job_number = 'user.job_number != null'

[scope.to_dingtalk.departments]
outside_subsidiary = '!(42 in ancestors)'

[scope.to_oa.users]
outside_subsidiary = '!(900 in ancestors)'
"#;

#[test]
fn contractor_rule_excludes_contractors_and_says_which_rule() {
    let l = load(SCOPE);
    let mut u = sample_user();
    let d = l
        .scope
        .includes_oa_user(&u, &[OaDeptId(2), OaDeptId(1)])
        .unwrap();
    assert!(d.included);
    u.extension
        .insert("employment_type".into(), "contractor".into());
    let d = l
        .scope
        .includes_oa_user(&u, &[OaDeptId(2), OaDeptId(1)])
        .unwrap();
    assert!(!d.included);
    assert_eq!(
        d.rules,
        vec![
            RuleOutcome {
                name: "has_job_number".into(),
                matched: true
            },
            RuleOutcome {
                name: "not_contractor".into(),
                matched: false
            },
        ]
    );
}

#[test]
fn subtree_exclusion_uses_the_ancestry() {
    let l = load(SCOPE);
    let dept = sample_dept();
    assert!(
        l.scope
            .includes_oa_department(&dept, &[OaDeptId(7), OaDeptId(1)])
            .unwrap()
            .included
    );
    assert!(
        !l.scope
            .includes_oa_department(&dept, &[OaDeptId(7), OaDeptId(42), OaDeptId(1)])
            .unwrap()
            .included
    );
    let u = sample_user();
    assert!(
        !l.scope
            .includes_dingtalk_user(&u, &[DingDeptId(900), DingDeptId(1)])
            .unwrap()
            .included
    );
    assert!(
        l.scope
            .includes_dingtalk_user(&u, &[DingDeptId(5), DingDeptId(1)])
            .unwrap()
            .included
    );
    assert!(!l.scope.is_everything());
}

#[test]
fn no_rules_take_everything() {
    let l = load("");
    assert!(l.scope.is_everything());
    let d = l.scope.includes_oa_user(&sample_user(), &[]).unwrap();
    assert!(d.included && d.rules.is_empty());
}

#[test]
fn a_predicate_that_is_not_bool_is_an_error_naming_the_rule() {
    let l = load("[scope.to_oa.departments]\nodd = 'dept.name'\n");
    let err = l
        .scope
        .includes_dingtalk_department(&sample_dept(), &[])
        .unwrap_err();
    assert_eq!(err.key, "scope.to_oa.departments.odd");
    assert!(err.to_string().contains("a bool"), "{err}");
}
