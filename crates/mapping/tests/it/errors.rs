//! Compile problems at load (all at once, with key and position) and evaluation failures.

use mapping::{EvalError, Limits, Position};

use crate::helpers::{configs, load, sample_user};

#[test]
fn every_compile_problem_is_reported_with_key_and_position() {
    let (m, s) = configs(
        r#"
[mapping.users.fields.job_number]
to_dingtalk = '"E" + '
[mapping.users.fields.shoe_size]
to_dingtalk = 'user.name'
[mapping.departments.fields.name]
to_oa = 'dept.name +'
[mapping.departments.extension.x]
to_oa = 'null'
[mapping.users]
soft_match = ["mobile", "iq"]
[scope.to_dingtalk.users]
broken = """user.name == "a" &&
  (("""
"#,
    );
    let err = mapping::load(&m, &s).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "mapping.users.fields.job_number.to_dingtalk",
        "mapping.users.fields.shoe_size",
        "mapping.departments.fields.name.to_oa",
        "mapping.departments.extension.x",
        "mapping.users.soft_match[1]",
        "scope.to_dingtalk.users.broken",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    let syntax = err
        .problems
        .iter()
        .find(|p| p.key == "mapping.users.fields.job_number.to_dingtalk")
        .unwrap();
    assert_eq!(syntax.position, Some(Position { line: 1, column: 7 }));
    let multi = err
        .problems
        .iter()
        .find(|p| p.key == "scope.to_dingtalk.users.broken")
        .unwrap();
    assert!(
        matches!(multi.position, Some(Position { line: 2, .. })),
        "{multi:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("shoe_size") && text.contains("line 1"),
        "{text}"
    );
}

#[test]
fn a_failing_expression_names_the_field_and_the_reason() {
    let l = load("[mapping.users.fields.telephone]\nto_dingtalk = 'user.extension.missing'\n");
    let err = l.mapping.user_to_dingtalk(&sample_user()).unwrap_err();
    assert_eq!(err.key, "mapping.users.fields.telephone.to_dingtalk");
    assert!(matches!(err.reason, EvalError::Execution(_)));
    assert!(
        err.to_string()
            .starts_with("mapping.users.fields.telephone.to_dingtalk: ")
    );
}

#[test]
fn a_wrong_type_names_the_field() {
    let l = load("[mapping.users.fields.name]\nto_dingtalk = '42'\n");
    let err = l.mapping.user_to_dingtalk(&sample_user()).unwrap_err();
    assert_eq!(err.key, "mapping.users.fields.name.to_dingtalk");
    match &err.reason {
        EvalError::WrongType { target, got, .. } => {
            assert_eq!(target, "name");
            assert_eq!(got, "42");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn results_over_budget_fail() {
    let (mut m, s) = configs(
        "[mapping.users.fields.remark]\nto_dingtalk = 'user.name + user.name + user.name'\n",
    );
    m.limits = Limits {
        max_string_bytes: 20,
        ..Limits::default()
    };
    let l = mapping::load(&m, &s).unwrap();
    let err = l.mapping.user_to_dingtalk(&sample_user()).unwrap_err();
    assert!(matches!(err.reason, EvalError::TooLarge(_)), "{err:?}");
    m.limits = Limits {
        max_items: 3,
        ..Limits::default()
    };
    m.users.fields.clear();
    m.users.extension.insert(
        "n".into(),
        mapping::ExtensionRule {
            to_dingtalk: Some("[1,2,3,4].map(x, string(x)).join(',')".into()),
            ..Default::default()
        },
    );
    let l = mapping::load(&m, &s).unwrap();
    let err = l.mapping.user_to_dingtalk(&sample_user());
    // The joined string is small; the budget applies to the result, not intermediate lists.
    assert_eq!(err.unwrap().entity.extension["n"], "1,2,3,4");
    m.users.fields.insert(
        "departments".into(),
        mapping::FieldRule {
            to_dingtalk: Some("[1,2,3,4].map(x, {'dept': x, 'title': null, 'order': 0})".into()),
            ..Default::default()
        },
    );
    let l = mapping::load(&m, &s).unwrap();
    let err = l.mapping.user_to_dingtalk(&sample_user()).unwrap_err();
    assert!(matches!(err.reason, EvalError::TooLarge(_)), "{err:?}");
}

#[test]
fn overlong_expressions_are_refused_at_load() {
    let (mut m, s) = configs("[mapping.users.fields.remark]\nto_dingtalk = '\"aaaaaaaaaa\"'\n");
    m.limits.max_expression_chars = 5;
    let err = mapping::load(&m, &s).unwrap_err();
    assert_eq!(
        err.problems[0].key,
        "mapping.users.fields.remark.to_dingtalk"
    );
}

#[test]
fn unknown_variables_are_found_at_load_but_comprehension_variables_are_not() {
    let (m, s) = configs(
        r#"
[mapping.users.fields.remark]
to_dingtalk = 'user.departments.map(m, string(m.dept)).join(",") + usr.name'
[mapping.departments.fields.name]
to_dingtalk = 'user.name'
[scope.to_dingtalk.users]
ok = 'user.departments.exists(m, m.dept in ancestors) && type(user.name) == string'
"#,
    );
    let err = mapping::load(&m, &s).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    let typo = &err.problems[0];
    assert_eq!(typo.key, "mapping.departments.fields.name.to_dingtalk");
    assert!(
        typo.message.contains("`user`") && typo.message.contains("dept"),
        "{typo}"
    );
    let usr = &err.problems[1];
    assert_eq!(usr.key, "mapping.users.fields.remark.to_dingtalk");
    assert!(usr.message.contains("`usr`"), "{usr}");
    assert_eq!(
        usr.position,
        Some(Position {
            line: 1,
            column: 53
        })
    );
}

mod never_panics {
    use mapping::{FieldRule, MappingConfig, ScopeConfig};
    use proptest::prelude::*;

    use crate::helpers::sample_user;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever an administrator writes, loading and evaluating return Ok or Err.
        #[test]
        fn arbitrary_expression_text_loads_or_errs(text in prop_oneof![
            "[ -~]{0,40}",
            // Token soup that parses more often, to reach evaluation.
            "(user\\.name|user\\.job_number|user\\.extension|\"E\"|\\+|==|null|\\?|:|\\(|\\)|1|-1|size\\(|\\.substring\\(|,|\\[|\\]|\\.map\\(x, x| ){0,12}",
        ]) {
            let mut m = MappingConfig::default();
            m.users.fields.insert(
                "remark".into(),
                FieldRule { to_dingtalk: Some(text.clone()), ..Default::default() },
            );
            let mut s = ScopeConfig::default();
            s.to_dingtalk.users.insert("r".into(), text);
            if let Ok(l) = mapping::load(&m, &s) {
                let _ = l.mapping.user_to_dingtalk(&sample_user());
                let _ = l.scope.includes_oa_user(&sample_user(), &[]);
            }
        }
    }
}
