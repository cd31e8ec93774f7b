//! Validation that mirrors DingTalk's documented limits.
//!
//! An OA write that DingTalk would refuse should be refused at the OA API, with the offending
//! field named, instead of being accepted, queued and later dead-lettered by the pusher. So the
//! limits here are DingTalk's (`dingtalk-api.md` §2), never friendlier, and every problem of one
//! entity is reported at once so that a form can highlight all of them.
//!
//! Lengths are counted in Unicode scalar values (characters), the way DingTalk's limits are
//! stated ("≤ 80 字符"). Limits the documentation leaves open (role name length, `source_identifier`
//! length) are not invented here. The userid character set is also undocumented; [`userid`]
//! explains why the simulator's strict reading is taken anyway.
//!
//! # Layout
//! - this file: [`Rule`], [`ValidationErrors`], DingTalk's limits and the per-entity checks that
//!   every write runs (the store calls them, so they hold for every source of a write);
//! - [`control`]: control characters, refused in every name, title and id;
//! - [`userid`]: the syntax of a userid (user ids and every reference to one);
//! - [`builtin_roles`]: DingTalk's built-in role group and roles, which OA API *operations* may
//!   not change (checked by the API, not the store: an import brings them in legitimately).

pub mod builtin_roles;
pub mod control;
pub mod userid;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::builtin_roles::{
    BUILTIN_ROLE_GROUP, BUILTIN_ROLES, is_builtin_role, is_builtin_role_group_name,
    is_builtin_role_name, validate_role_assignment, validate_role_change, validate_role_deletion,
    validate_role_group_change, validate_role_group_deletion,
};
pub use self::control::{TextKind, describe_char, has_control_char};
pub use self::userid::{USER_ID_MAX, is_valid_userid};
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
    /// Would change one of DingTalk's built-in roles or their group, which DingTalk refuses for
    /// good (23004); see [`builtin_roles`].
    BuiltIn,
}

impl Rule {
    /// The rule's machine-readable name, the same as its serde `kind` (`too_long`, `built_in`).
    pub fn code(&self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::TooLong { .. } => "too_long",
            Rule::TooMany { .. } => "too_many",
            Rule::ForbiddenCharacter { .. } => "forbidden_character",
            Rule::Malformed => "malformed",
            Rule::Duplicate => "duplicate",
            Rule::NotListed => "not_listed",
            Rule::SelfReference => "self_reference",
            Rule::BuiltIn => "built_in",
        }
    }
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

    /// Refuses the first control character of `value` that a field of `kind` may not hold.
    fn no_control(&mut self, field: &str, value: &str, kind: TextKind) {
        if let Some(c) = control::first_control_char(value, kind) {
            self.push(
                field,
                Rule::ForbiddenCharacter { character: c },
                control::control_message(c, kind),
            );
        }
    }

    /// Checks `value` as a userid (the user's own id or a reference to one).
    fn userid(&mut self, field: &str, value: &str) {
        for (rule, message) in userid::userid_problems(value) {
            self.push(field, rule, message);
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
    c.no_control("name", &dept.name, TextKind::SingleLine);
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
        let field = format!("managers[{i}]");
        c.userid(&field, m.as_str());
        if !seen.insert(m) {
            // Debug formatting escapes whatever the id holds: messages reach terminals.
            c.push(
                field,
                Rule::Duplicate,
                format!("{:?} is listed twice", m.as_str()),
            );
        }
    }
    if let Some(source) = &dept.source_identifier {
        c.no_control("source_identifier", source, TextKind::SingleLine);
    }
    c.finish()
}

/// Checks a user against DingTalk's limits.
pub fn validate_user(user: &User) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    c.userid("id", user.id.as_str());
    c.required_text("name", &user.name, USER_NAME_MAX);
    c.no_control("name", &user.name, TextKind::SingleLine);
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
    if let Some(manager) = &user.manager {
        c.userid("manager", manager.as_str());
        if *manager == user.id {
            c.push(
                "manager",
                Rule::SelfReference,
                "a user cannot be their own manager",
            );
        }
    }
    // No mobile is accepted: identity providers often send none (issue 17). DingTalk needs one
    // to create the user, so the pusher holds such a user as a dead letter naming `mobile`, and
    // the update that brings a mobile pushes it.
    match &user.mobile {
        None => {}
        Some(m) if !is_well_formed_mobile(m) => c.push(
            "mobile",
            Rule::Malformed,
            "must be an 11-digit mainland number or +code-number",
        ),
        Some(_) => {}
    }
    for (field, value) in [("email", &user.email), ("org_email", &user.org_email)] {
        if let Some(v) = value
            && !is_well_formed_email(v)
        {
            c.push(field, Rule::Malformed, "is not a well-formed email address");
        }
    }
    validate_user_text(&mut c, user);
    validate_extension(&mut c, user);
    c.finish()
}

/// The length limits and the control-character rule of a user's optional text fields.
fn validate_user_text(c: &mut Collector, user: &User) {
    use TextKind::{MultiLine, SingleLine};
    for (field, value, max, kind) in [
        ("job_number", &user.job_number, JOB_NUMBER_MAX, SingleLine),
        ("telephone", &user.telephone, TELEPHONE_MAX, SingleLine),
        ("email", &user.email, EMAIL_MAX, SingleLine),
        ("org_email", &user.org_email, ORG_EMAIL_MAX, SingleLine),
        ("work_place", &user.work_place, WORK_PLACE_MAX, SingleLine),
        ("remark", &user.remark, REMARK_MAX, MultiLine),
    ] {
        if let Some(v) = value {
            c.max_len(field, v, max);
            c.no_control(field, v, kind);
        }
    }
}

/// The extension attributes: their JSON under the limit, keys non-empty and one-line, values
/// free of control characters other than line breaks.
fn validate_extension(c: &mut Collector, user: &User) {
    if user.extension.is_empty() {
        return;
    }
    // A map of strings always serializes; an empty string would then pass the check below.
    let json = serde_json::to_string(&user.extension).unwrap_or_default();
    c.max_len("extension", &json, EXTENSION_MAX);
    for (key, value) in &user.extension {
        if key.trim().is_empty() {
            c.push(
                "extension",
                Rule::Required,
                "extension keys must not be empty",
            );
        }
        // The key is the path: escaped, since it may be the very thing at fault.
        let field = format!("extension[{key:?}]");
        c.no_control(&field, key, TextKind::SingleLine);
        c.no_control(&field, value, TextKind::MultiLine);
    }
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
        if let Some(title) = &m.title {
            let field = format!("departments[{i}].title");
            c.max_len(&field, title, TITLE_MAX);
            c.no_control(&field, title, TextKind::SingleLine);
        }
    }
}

/// Checks a role group: a non-empty name without control characters. Whether an OA write may
/// touch the group at all (DingTalk's built-in 默认) is [`validate_role_group_change`]'s call.
pub fn validate_role_group(group: &RoleGroup) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if group.name.trim().is_empty() {
        c.push("name", Rule::Required, "must not be empty");
    }
    c.no_control("name", &group.name, TextKind::SingleLine);
    c.finish()
}

/// Checks a role: a non-empty name (DingTalk 34018) without control characters. Uniqueness
/// (34021) needs the other roles and is checked by the store; whether an OA write may touch the
/// role at all (a built-in one) is [`validate_role_change`]'s call.
pub fn validate_role(role: &Role) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if role.name.trim().is_empty() {
        c.push("name", Rule::Required, "must not be empty");
    }
    c.no_control("name", &role.name, TextKind::SingleLine);
    c.finish()
}

#[cfg(test)]
mod tests;
