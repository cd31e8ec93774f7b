//! Unit and property tests of the per-entity checks in `validate/mod.rs`.

use proptest::prelude::*;

use super::*;
use crate::ids::{OaDeptId, OaRoleGroupId, OaRoleId, OaUserId};

fn valid_user() -> User {
    let mut u = User::new(OaUserId::new("zhangsan"), "张三", &[OaDeptId(2)]);
    u.mobile = Some(Mobile::mainland("18513027676"));
    u
}

#[test]
fn a_plain_user_and_department_are_valid() {
    validate_user(&valid_user()).unwrap();
    validate_department(&Department::new(OaDeptId(2), "研发部", Some(OaDeptId(1)))).unwrap();
}

#[test]
fn department_name_rules() {
    let mut d = Department::new(OaDeptId(2), "", Some(OaDeptId(1)));
    assert_eq!(
        validate_department(&d).unwrap_err().0[0].rule,
        Rule::Required
    );
    d.name = "a".repeat(64);
    validate_department(&d).unwrap();
    d.name = "部".repeat(65);
    assert_eq!(
        validate_department(&d).unwrap_err().0[0].rule,
        Rule::TooLong { max: 64 }
    );
    for bad in ['-', ',', '，'] {
        d.name = format!("R{bad}D");
        let err = validate_department(&d).unwrap_err();
        assert_eq!(err.0[0].rule, Rule::ForbiddenCharacter { character: bad });
        assert!(err.has_field("name"));
    }
}

#[test]
fn department_self_parent_and_duplicate_managers() {
    let mut d = Department::new(OaDeptId(2), "A", Some(OaDeptId(2)));
    d.managers = vec![OaUserId::new("a"), OaUserId::new("a")];
    let err = validate_department(&d).unwrap_err();
    assert!(err.has_field("parent"));
    assert!(err.has_field("managers[1]"));
}

#[test]
fn every_user_problem_is_reported_at_once_with_its_path() {
    let mut u = valid_user();
    u.name = "n".repeat(81);
    u.departments = vec![
        Membership::new(OaDeptId(2)),
        Membership::new(OaDeptId(3)),
        Membership::new(OaDeptId(4)),
        Membership {
            dept: OaDeptId(5),
            title: Some("t".repeat(201)),
            order: 0,
        },
        Membership::new(OaDeptId(2)),
    ];
    u.main_department = Some(OaDeptId(9));
    u.manager = Some(u.id.clone());
    u.job_number = Some("j".repeat(51));
    u.mobile = Some(Mobile::mainland("1234"));
    u.email = Some("not-an-email".into());
    u.org_email = Some(format!("{}@x.com", "o".repeat(100)));
    u.telephone = Some("t".repeat(51));
    u.work_place = Some("w".repeat(101));
    u.remark = Some("r".repeat(2001));
    u.extension.insert("k".into(), "v".repeat(2000));
    let err = validate_user(&u).unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
    for f in [
        "name",
        "departments[3].title",
        "departments[4].dept",
        "main_department",
        "manager",
        "job_number",
        "mobile",
        "email",
        "org_email",
        "telephone",
        "work_place",
        "remark",
        "extension",
    ] {
        assert!(fields.contains(&f), "missing {f} in {fields:?}");
    }
    assert!(
        err.0
            .iter()
            .any(|e| e.field == "departments[3].title" && e.rule == Rule::TooLong { max: 200 })
    );
}

#[test]
fn limits_are_inclusive_and_counted_in_characters() {
    let mut u = valid_user();
    u.name = "名".repeat(80);
    u.email = Some(format!("{}@a.cn", "e".repeat(45)));
    assert_eq!(u.email.as_ref().unwrap().chars().count(), 50);
    validate_user(&u).unwrap();
    u.email = Some(format!("{}@a.cn", "e".repeat(46)));
    assert_eq!(
        validate_user(&u).unwrap_err().0[0].rule,
        Rule::TooLong { max: 50 }
    );
}

#[test]
fn departments_required_and_capped_at_100() {
    let mut u = valid_user();
    u.departments.clear();
    u.main_department = None;
    assert!(validate_user(&u).unwrap_err().has_field("departments"));
    u.departments = (0..101).map(|i| Membership::new(OaDeptId(i))).collect();
    let err = validate_user(&u).unwrap_err();
    assert_eq!(err.0[0].rule, Rule::TooMany { max: 100 });
    u.departments.pop();
    validate_user(&u).unwrap();
}

#[test]
fn mobile_formats() {
    assert!(is_well_formed_mobile(&Mobile::mainland("18513027676")));
    assert!(!is_well_formed_mobile(&Mobile::mainland("28513027676")));
    assert!(!is_well_formed_mobile(&Mobile::mainland("1851302767")));
    assert!(is_well_formed_mobile(&Mobile::parse("+852-91234567")));
    assert!(!is_well_formed_mobile(&Mobile::parse("+85a-91234567")));
    assert!(!is_well_formed_mobile(&Mobile::parse("+852-9123 4567")));
    let mut u = valid_user();
    u.mobile = None;
    assert!(
        validate_user(&u).is_ok(),
        "no mobile is accepted; the pusher dead-letters it naming `mobile` (issue 17)"
    );
}

#[test]
fn email_formats() {
    for ok in ["a@b.cn", "first.last+tag@mail.example.com"] {
        assert!(is_well_formed_email(ok), "{ok}");
    }
    for bad in [
        "", "a", "@b.cn", "a@", "a@b", "a@.cn", "a@b.", "a b@c.cn", "a@b@c.cn",
    ] {
        assert!(!is_well_formed_email(bad), "{bad}");
    }
}

#[test]
fn roles_need_names() {
    assert!(
        validate_role(&Role {
            id: OaRoleId(1),
            group: OaRoleGroupId(1),
            name: " ".into()
        })
        .unwrap_err()
        .has_field("name")
    );
    assert!(
        validate_role_group(&RoleGroup {
            id: OaRoleGroupId(1),
            name: String::new()
        })
        .is_err()
    );
}

/// The rule of the single problem reported for `field`.
fn rule_of(err: &ValidationErrors, field: &str) -> Rule {
    let found: Vec<&ValidationError> = err.0.iter().filter(|e| e.field == field).collect();
    assert_eq!(found.len(), 1, "{field} in {err:?}");
    found[0].rule.clone()
}

#[test]
fn control_characters_are_refused_in_every_name_title_and_id() {
    let esc = Rule::ForbiddenCharacter {
        character: '\u{1b}',
    };
    let mut u = valid_user();
    u.id = OaUserId::new("eve\u{1b}[2J");
    u.name = "Eve\u{1b}]0;owned\u{7}".into();
    u.departments[0].title = Some("Boss\u{1b}[5m".into());
    u.manager = Some(OaUserId::new("mallory\0"));
    u.job_number = Some("J\u{1b}1".into());
    u.telephone = Some("010\u{1b}".into());
    u.work_place = Some("HQ\u{85}".into());
    u.remark = Some("one\nline\u{1b}[31m".into());
    u.email = Some("e\u{1b}@a.cn".into());
    u.extension.insert("k\u{7}".into(), "v\u{1b}".into());
    let err = validate_user(&u).unwrap_err();
    assert_eq!(rule_of(&err, "id"), esc);
    assert_eq!(rule_of(&err, "departments[0].title"), esc);
    assert_eq!(
        rule_of(&err, "manager"),
        Rule::ForbiddenCharacter { character: '\0' }
    );
    assert_eq!(rule_of(&err, "job_number"), esc);
    assert_eq!(rule_of(&err, "telephone"), esc);
    assert_eq!(rule_of(&err, "remark"), esc);
    assert_eq!(
        rule_of(&err, "work_place"),
        Rule::ForbiddenCharacter {
            character: '\u{85}'
        }
    );
    // The first refused character is named: ESC before BEL.
    let name: Vec<&Rule> = err
        .0
        .iter()
        .filter(|e| e.field == "name")
        .map(|e| &e.rule)
        .collect();
    assert_eq!(name, vec![&esc]);
    assert!(err.has_field("email"));
    assert!(err.0.iter().any(|e| e.field == "extension[\"k\\u{7}\"]"
        && e.rule == Rule::ForbiddenCharacter { character: '\u{7}' }));
    assert!(
        err.0
            .iter()
            .any(|e| e.field == "extension[\"k\\u{7}\"]" && e.rule == esc)
    );
    for e in &err.0 {
        assert!(
            !has_control_char(&e.message),
            "raw control character in {e:?}"
        );
        assert!(
            !has_control_char(&e.field),
            "raw control character in {e:?}"
        );
    }

    let mut d = Department::new(OaDeptId(2), "R&D\u{1b}[8m", Some(OaDeptId(1)));
    d.managers = vec![OaUserId::new("boss\u{7}")];
    d.source_identifier = Some("src\0".into());
    let err = validate_department(&d).unwrap_err();
    assert_eq!(rule_of(&err, "name"), esc);
    assert_eq!(
        rule_of(&err, "managers[0]"),
        Rule::ForbiddenCharacter { character: '\u{7}' }
    );
    assert_eq!(
        rule_of(&err, "source_identifier"),
        Rule::ForbiddenCharacter { character: '\0' }
    );

    let role = Role {
        id: OaRoleId(1),
        group: OaRoleGroupId(1),
        name: "出纳\u{7f}".into(),
    };
    let group = RoleGroup {
        id: OaRoleGroupId(1),
        name: "\u{9b}财务".into(),
    };
    assert_eq!(
        rule_of(&validate_role(&role).unwrap_err(), "name"),
        Rule::ForbiddenCharacter {
            character: '\u{7f}'
        }
    );
    assert_eq!(
        rule_of(&validate_role_group(&group).unwrap_err(), "name"),
        Rule::ForbiddenCharacter {
            character: '\u{9b}'
        }
    );
}

#[test]
fn the_message_states_the_rule() {
    let mut u = valid_user();
    u.name = "Eve\u{1b}".into();
    let err = validate_user(&u).unwrap_err();
    assert_eq!(
        err.0[0].message,
        "must not contain the control character U+001B (ESC); control characters \
         (U+0000–U+001F, U+007F–U+009F) are refused"
    );
    u.name = "Eve".into();
    u.id = OaUserId::new("../etc/passwd");
    let err = validate_user(&u).unwrap_err();
    assert_eq!(err.0[0].field, "id");
    assert_eq!(
        err.0[0].message,
        "must not contain '/' (U+002F); a DingTalk userid is 1–64 characters of A–Z, a–z, \
         0–9, '_', '.', '@' and '-'"
    );
}

#[test]
fn line_breaks_are_allowed_in_the_remark_and_extension_values_only() {
    let mut u = valid_user();
    u.remark = Some("first line\r\nsecond\tline".into());
    u.extension.insert("爱好".into(), "a\nb".into());
    validate_user(&u).unwrap();
    u.name = "Two\nLines".into();
    assert_eq!(
        rule_of(&validate_user(&u).unwrap_err(), "name"),
        Rule::ForbiddenCharacter { character: '\n' }
    );
}

#[test]
fn user_ids_and_references_follow_userid_syntax() {
    for (id, rule) in [
        ("../admin", Rule::ForbiddenCharacter { character: '/' }),
        ("o'neil", Rule::ForbiddenCharacter { character: '\'' }),
        ("\"quoted\"", Rule::ForbiddenCharacter { character: '"' }),
        ("..", Rule::Malformed),
        ("", Rule::Required),
    ] {
        let mut u = valid_user();
        u.id = OaUserId::new(id);
        assert_eq!(
            rule_of(&validate_user(&u).unwrap_err(), "id"),
            rule,
            "{id:?}"
        );
        let mut u = valid_user();
        u.manager = Some(OaUserId::new(id));
        assert_eq!(
            rule_of(&validate_user(&u).unwrap_err(), "manager"),
            rule,
            "{id:?}"
        );
        let mut d = Department::new(OaDeptId(2), "D", Some(OaDeptId(1)));
        d.managers = vec![OaUserId::new("ok"), OaUserId::new(id)];
        let err = validate_department(&d).unwrap_err();
        assert_eq!(rule_of(&err, "managers[1]"), rule, "{id:?}");
    }
}

#[test]
fn rule_codes_are_the_serde_kinds() {
    for rule in [
        Rule::Required,
        Rule::TooLong { max: 1 },
        Rule::TooMany { max: 1 },
        Rule::ForbiddenCharacter { character: 'x' },
        Rule::Malformed,
        Rule::Duplicate,
        Rule::NotListed,
        Rule::SelfReference,
        Rule::BuiltIn,
    ] {
        let json = serde_json::to_value(&rule).unwrap();
        assert_eq!(json["kind"], rule.code());
    }
}

proptest! {
    #[test]
    fn a_control_character_anywhere_in_a_name_is_refused_and_never_echoed(
        name in "\\PC{0,40}",
        at in any::<prop::sample::Index>(),
        code in prop_oneof![0u32..0x20, Just(0x7f), 0x80u32..0xa0],
    ) {
        let bad = char::from_u32(code).unwrap_or('\0');
        let mut chars: Vec<char> = name.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad);
        let mut u = valid_user();
        u.name = chars.into_iter().collect();
        let err = validate_user(&u).unwrap_err();
        let named = err.0.iter().any(|e| e.field == "name"
            && e.rule == Rule::ForbiddenCharacter { character: bad });
        prop_assert!(named, "{:?}", err);
        for e in &err.0 {
            prop_assert!(!has_control_char(&e.message), "{:?}", e);
        }
    }

    #[test]
    fn printable_names_within_the_limit_are_accepted(name in "\\PC{1,80}") {
        prop_assume!(!name.trim().is_empty());
        let mut u = valid_user();
        u.name = name.clone();
        prop_assert!(validate_user(&u).is_ok(), "{:?}", name);
    }
}
