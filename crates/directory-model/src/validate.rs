//! Validation that mirrors DingTalk's documented limits.
//!
//! An OA write that DingTalk would refuse should be refused at the OA API, with the offending
//! field named, instead of being accepted, queued and later dead-lettered by the pusher. So the
//! limits here are DingTalk's (`dingtalk-api.md` §2), never friendlier, and every problem of one
//! entity is reported at once so that a form can highlight all of them.
//!
//! Lengths are counted in Unicode scalar values (characters), the way DingTalk's limits are
//! stated ("≤ 80 字符"). Limits the documentation leaves open (role name length, `source_identifier`
//! length, userid charset) are not invented here.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::entity::{Department, Membership, Mobile, Role, RoleGroup, User};

/// Which rule a value broke; the API maps these to machine-readable error codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Rule {
    /// A required value is missing or empty.
    Required,
    /// Longer than `max` characters.
    TooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// More than `max` entries.
    TooMany {
        /// The limit, in entries.
        max: usize,
    },
    /// Contains a character DingTalk refuses.
    ForbiddenCharacter {
        /// The offending character.
        character: char,
    },
    /// Not in the expected format (email, mobile).
    Malformed,
    /// The same value appears twice where it must be unique.
    Duplicate,
    /// Refers to something that must be listed elsewhere in the same entity (the main department
    /// must be one of the user's departments).
    NotListed,
    /// Refers to the entity itself where that is meaningless (a user managing themself).
    SelfReference,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// The field's path, e.g. `name` or `departments[3].title`.
    pub field: String,
    /// The rule it broke.
    pub rule: Rule,
    /// A human-readable sentence.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in one entity (never empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{} validation error(s), first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// The individual problems.
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }

    /// Whether some problem concerns exactly `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

/// Department name: 1–64 characters (60001).
pub const DEPT_NAME_MAX: usize = 64;
/// Characters DingTalk refuses in department names (60009).
pub const DEPT_NAME_FORBIDDEN: [char; 3] = ['-', ',', '，'];
/// User id: 1–64 characters.
pub const USER_ID_MAX: usize = 64;
/// User name: ≤ 80 characters.
pub const USER_NAME_MAX: usize = 80;
/// Title per department: ≤ 200 characters.
pub const TITLE_MAX: usize = 200;
/// Job number: ≤ 50 characters.
pub const JOB_NUMBER_MAX: usize = 50;
/// Telephone: ≤ 50 characters.
pub const TELEPHONE_MAX: usize = 50;
/// Email: ≤ 50 characters.
pub const EMAIL_MAX: usize = 50;
/// Organisation email: ≤ 100 characters.
pub const ORG_EMAIL_MAX: usize = 100;
/// Work place: ≤ 100 characters.
pub const WORK_PLACE_MAX: usize = 100;
/// Remark: ≤ 2000 characters.
pub const REMARK_MAX: usize = 2000;
/// Extension, as JSON text: ≤ 2000 characters.
pub const EXTENSION_MAX: usize = 2000;
/// Departments per user: ≤ 100 (60110).
pub const DEPARTMENTS_PER_USER_MAX: usize = 100;

/// Collects problems while walking one entity.
#[derive(Debug, Default)]
struct Collector(Vec<ValidationError>);

impl Collector {
    fn push(&mut self, field: impl Into<String>, rule: Rule, message: impl Into<String>) {
        self.0.push(ValidationError {
            field: field.into(),
            rule,
            message: message.into(),
        });
    }

    fn required_text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.push(field, Rule::Required, "must not be empty");
        } else {
            self.max_len(field, value, max);
        }
    }

    fn max_len(&mut self, field: &str, value: &str, max: usize) {
        let len = value.chars().count();
        if len > max {
            self.push(
                field,
                Rule::TooLong { max },
                format!("is {len} characters long; the limit is {max}"),
            );
        }
    }

    fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.max_len(field, v, max);
        }
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

/// Whether `email` looks like `local@domain.tld`: one `@`, non-empty parts, a dot inside the
/// domain, and no whitespace. Deliberately loose: DingTalk's exact grammar is not documented, and
/// rejecting a valid address would be worse than letting DingTalk judge an odd one (60105).
pub fn is_well_formed_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain
            .split_once('.')
            .is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty())
        && !domain.ends_with('.')
}

/// Whether a mobile number has a format DingTalk accepts: mainland China (`86`) needs an
/// 11-digit number starting with 1; other country codes 1–4 digits and a 4–20 digit number.
pub fn is_well_formed_mobile(mobile: &Mobile) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(&mobile.country_code) || mobile.country_code.len() > 4 {
        return false;
    }
    if !digits(&mobile.number) {
        return false;
    }
    if mobile.country_code == "86" {
        mobile.number.len() == 11 && mobile.number.starts_with('1')
    } else {
        (4..=20).contains(&mobile.number.len())
    }
}

/// Checks a department against DingTalk's limits.
pub fn validate_department(dept: &Department) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    c.required_text("name", &dept.name, DEPT_NAME_MAX);
    if let Some(bad) = dept
        .name
        .chars()
        .find(|ch| DEPT_NAME_FORBIDDEN.contains(ch))
    {
        c.push(
            "name",
            Rule::ForbiddenCharacter { character: bad },
            format!("must not contain '{bad}' (DingTalk refuses '-', ',' and '，')"),
        );
    }
    if dept.parent == Some(dept.id) {
        c.push(
            "parent",
            Rule::SelfReference,
            "a department cannot be its own parent",
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in dept.managers.iter().enumerate() {
        if !seen.insert(m) {
            c.push(
                format!("managers[{i}]"),
                Rule::Duplicate,
                format!("'{m}' is listed twice"),
            );
        }
    }
    c.finish()
}

/// Checks a user against DingTalk's limits.
pub fn validate_user(user: &User) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    c.required_text("id", user.id.as_str(), USER_ID_MAX);
    c.required_text("name", &user.name, USER_NAME_MAX);
    validate_memberships(&mut c, &user.departments);
    if let Some(main) = user.main_department
        && !user.departments.iter().any(|m| m.dept == main)
    {
        c.push(
            "main_department",
            Rule::NotListed,
            format!("department {main} is not one of the user's departments"),
        );
    }
    if user.manager.as_ref() == Some(&user.id) {
        c.push(
            "manager",
            Rule::SelfReference,
            "a user cannot be their own manager",
        );
    }
    c.optional_text("job_number", user.job_number.as_deref(), JOB_NUMBER_MAX);
    match &user.mobile {
        None => c.push(
            "mobile",
            Rule::Required,
            "DingTalk requires a mobile number",
        ),
        Some(m) if !is_well_formed_mobile(m) => c.push(
            "mobile",
            Rule::Malformed,
            "must be an 11-digit mainland number or +code-number",
        ),
        Some(_) => {}
    }
    c.optional_text("telephone", user.telephone.as_deref(), TELEPHONE_MAX);
    for (field, value, max) in [
        ("email", &user.email, EMAIL_MAX),
        ("org_email", &user.org_email, ORG_EMAIL_MAX),
    ] {
        if let Some(v) = value {
            c.max_len(field, v, max);
            if !is_well_formed_email(v) {
                c.push(field, Rule::Malformed, "is not a well-formed email address");
            }
        }
    }
    c.optional_text("work_place", user.work_place.as_deref(), WORK_PLACE_MAX);
    c.optional_text("remark", user.remark.as_deref(), REMARK_MAX);
    if !user.extension.is_empty() {
        // A map of strings always serializes; an empty string would then pass the check below.
        let json = serde_json::to_string(&user.extension).unwrap_or_default();
        c.max_len("extension", &json, EXTENSION_MAX);
        for key in user.extension.keys() {
            if key.trim().is_empty() {
                c.push(
                    "extension",
                    Rule::Required,
                    "extension keys must not be empty",
                );
            }
        }
    }
    c.finish()
}

fn validate_memberships(c: &mut Collector, memberships: &[Membership]) {
    if memberships.is_empty() {
        c.push(
            "departments",
            Rule::Required,
            "a user needs at least one department",
        );
    }
    if memberships.len() > DEPARTMENTS_PER_USER_MAX {
        c.push(
            "departments",
            Rule::TooMany {
                max: DEPARTMENTS_PER_USER_MAX,
            },
            format!(
                "{} departments; DingTalk allows at most {DEPARTMENTS_PER_USER_MAX}",
                memberships.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in memberships.iter().enumerate() {
        if !seen.insert(m.dept) {
            c.push(
                format!("departments[{i}].dept"),
                Rule::Duplicate,
                format!("department {} is listed twice", m.dept),
            );
        }
        c.optional_text(
            &format!("departments[{i}].title"),
            m.title.as_deref(),
            TITLE_MAX,
        );
    }
}

/// Checks a role group: a non-empty name.
pub fn validate_role_group(group: &RoleGroup) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if group.name.trim().is_empty() {
        c.push("name", Rule::Required, "must not be empty");
    }
    c.finish()
}

/// Checks a role: a non-empty name (DingTalk 34018). Uniqueness (34021) needs the other roles and
/// is checked by the store.
pub fn validate_role(role: &Role) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if role.name.trim().is_empty() {
        c.push("name", Rule::Required, "must not be empty");
    }
    c.finish()
}

#[cfg(test)]
mod tests {
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
        assert_eq!(validate_user(&u).unwrap_err().0[0].rule, Rule::Required);
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
}
