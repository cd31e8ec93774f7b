//! The compiled `[mapping]` and `[scope]` (the `mapping` crate) as the engine holds and applies
//! them: the one place that decides how a mapped value meets the sync's rules.
//!
//! The engine's model is OA-shaped: the directory, the base snapshots and the three-way merge
//! all hold OA values. So the mapping sits at the wire boundary, inside `translate`: DingTalk's
//! entity is read in the model's shape and mapped to OA values ([`Rules::user_to_oa`]), and an
//! OA entity is mapped to DingTalk's values just before a request is built
//! ([`Rules::user_to_dingtalk`]). Two rules keep that loop free of echoes:
//!
//! - **Agreement reads back exactly.** When DingTalk holds exactly what the OA entity maps to,
//!   the conversion gives back the OA entity itself, even for a mapping that is not invertible
//!   (a code table). For a field mapped one way only (owned by OA, see the `mapping` crate),
//!   DingTalk's value agreeing with the mapped OA value gives back OA's value as well.
//! - **`on_create` fields never travel after the create**: reading keeps OA's value, and an
//!   update request leaves them out (DingTalk keeps what it has).
//!
//! No rules at all ([`Rules::default`]) is today's fixed behaviour and costs nothing.

use std::fmt;
use std::sync::Arc;

use directory_model::{Department, DeptField, DingDeptId, FieldAccess, OaDeptId, User, UserField};
use mapping::{EvalError, Fingerprint, Loaded, MapError, Mapped};

/// The compiled mapping and scope, or none (identity, everything in scope).
#[derive(Clone, Default)]
pub struct Rules(Option<Arc<Loaded>>);

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(l) => write!(f, "Rules({})", l.fingerprint),
            None => f.write_str("Rules(identity)"),
        }
    }
}

impl PartialEq for Rules {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint() == other.fingerprint()
    }
}

impl Rules {
    /// Rules from a loaded config.
    pub fn new(loaded: Loaded) -> Self {
        Self(Some(Arc::new(loaded)))
    }

    /// The loaded config, unless there is none.
    pub fn loaded(&self) -> Option<&Loaded> {
        self.0.as_deref()
    }

    /// The fingerprint of the effective mapping and scope (`None`: no rules configured).
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.0.as_ref().map(|l| &l.fingerprint)
    }

    /// What DingTalk holds for the OA user `hint` when both sides agree: `hint` mapped to
    /// DingTalk's values (`None` without a hint, or without rules: then it is `hint` itself).
    pub fn user_expected(&self, hint: Option<&User>) -> Result<Option<User>, MapError> {
        match (&self.0, hint) {
            (Some(l), Some(h)) => Ok(Some(self.checked_user(l, h)?.entity)),
            _ => Ok(None),
        }
    }

    /// OA's values for a DingTalk user read in the model's shape; `hint` is the OA user, if
    /// any, and `expected` what [`Rules::user_expected`] said for it.
    pub fn user_to_oa(
        &self,
        ding: User,
        hint: Option<&User>,
        expected: Option<User>,
    ) -> Result<User, MapError> {
        let Some(l) = &self.0 else { return Ok(ding) };
        let m = &l.mapping;
        if let (Some(h), Some(e)) = (hint, &expected)
            && *e == ding
        {
            return Ok(h.clone());
        }
        let mapped = m.user_to_oa(&ding)?;
        same_memberships(&ding, &mapped.entity, "to_oa")?;
        Ok(match (hint, expected) {
            (Some(h), Some(e)) => {
                let mut out = mapped.for_update(h);
                for f in m.user_one_way_to_dingtalk() {
                    if ding.field_eq(&e, *f) {
                        out.copy_field(h, *f);
                    }
                }
                out
            }
            _ => mapped.entity,
        })
    }

    /// Like [`Rules::user_to_oa`] while a change of the rules waits for approval: DingTalk's
    /// values of every mapped field are taken as the previous mapping's output, not as edits,
    /// so they read back as OA's (the approval re-sends them through the new mapping).
    pub fn user_to_oa_pending(
        &self,
        ding: User,
        hint: Option<&User>,
        expected: Option<User>,
    ) -> Result<User, MapError> {
        let mut out = self.user_to_oa(ding, hint, expected)?;
        if let (Some(l), Some(h)) = (&self.0, hint) {
            for f in l.mapping.user_mapped_fields() {
                out.copy_field(h, f);
            }
        }
        Ok(out)
    }

    /// OA's values for a DingTalk department read in the model's shape.
    pub fn department_to_oa(
        &self,
        ding: Department,
        hint: Option<&Department>,
    ) -> Result<Department, MapError> {
        let Some(l) = &self.0 else { return Ok(ding) };
        let m = &l.mapping;
        let expected = hint.map(|h| m.department_to_dingtalk(h)).transpose()?;
        if let (Some(h), Some(e)) = (hint, &expected)
            && e.entity == ding
        {
            return Ok(h.clone());
        }
        let mapped = m.department_to_oa(&ding)?;
        Ok(match (hint, expected) {
            (Some(h), Some(e)) => {
                let mut out = mapped.for_update(h);
                for f in m.department_one_way_to_dingtalk() {
                    if ding.field_eq(&e.entity, *f) {
                        out.copy_field(h, *f);
                    }
                }
                out
            }
            _ => mapped.entity,
        })
    }

    /// Like [`Rules::department_to_oa`] while a change of the rules waits for approval:
    /// DingTalk's values of every mapped field are the previous mapping's output, so they read
    /// back as OA's (the approval re-sends them through the new mapping).
    pub fn department_to_oa_pending(
        &self,
        ding: Department,
        hint: Option<&Department>,
    ) -> Result<Department, MapError> {
        let mut out = self.department_to_oa(ding, hint)?;
        if let (Some(l), Some(h)) = (&self.0, hint) {
            for f in l.mapping.department_mapped_fields() {
                out.copy_field(h, f);
            }
        }
        Ok(out)
    }

    /// DingTalk's values for an OA user: the whole entity for a create, and for an update the
    /// same with `on_create` fields left out (see [`ForUpdate`]).
    pub fn user_to_dingtalk(&self, user: &User) -> Result<Mapped<User>, MapError> {
        match &self.0 {
            Some(l) => self.checked_user(l, user),
            None => Ok(identity(user.clone())),
        }
    }

    fn checked_user(&self, l: &Loaded, user: &User) -> Result<Mapped<User>, MapError> {
        let mapped = l.mapping.user_to_dingtalk(user)?;
        same_memberships(user, &mapped.entity, "to_dingtalk")?;
        Ok(mapped)
    }

    /// DingTalk's values for an OA department.
    pub fn department_to_dingtalk(
        &self,
        dept: &Department,
    ) -> Result<Mapped<Department>, MapError> {
        match &self.0 {
            Some(l) => l.mapping.department_to_dingtalk(dept),
            None => Ok(identity(dept.clone())),
        }
    }

    /// The user update to send and the base to compare it with, both in DingTalk's values, with
    /// every `on_create` field set equal in both (an optional one empty, so that it is neither
    /// sent nor cleared: DingTalk keeps what it has).
    pub fn user_update(
        &self,
        user: &User,
        base: Option<&User>,
    ) -> Result<ForUpdate<User>, MapError> {
        let now = self.user_to_dingtalk(user)?;
        let mut base = base
            .map(|b| self.user_to_dingtalk(b).map(|m| m.entity))
            .transpose()?;
        let mut now_entity = now.entity.clone();
        for f in &now.create_only {
            if is_optional_user(*f) {
                clear_user(&mut now_entity, *f);
                if let Some(b) = &mut base {
                    clear_user(b, *f);
                }
            } else if let Some(b) = &base {
                now_entity.copy_field(b, *f);
            }
        }
        if let Some(b) = &base {
            for key in &now.create_only_extension {
                match b.extension.get(key) {
                    Some(v) => now_entity.extension.insert(key.clone(), v.clone()),
                    None => now_entity.extension.remove(key),
                };
            }
        }
        Ok(ForUpdate {
            now: now_entity,
            base,
        })
    }

    /// The department update to send: `on_create` fields keep the mapped base's values.
    pub fn department_update(
        &self,
        dept: &Department,
        base: Option<&Department>,
    ) -> Result<Department, MapError> {
        let now = self.department_to_dingtalk(dept)?;
        Ok(match base {
            Some(b) => {
                let b = self.department_to_dingtalk(b)?.entity;
                now.for_update(&b)
            }
            None => now.entity,
        })
    }
}

/// `[scope]`: which entities take part. An entity out of scope is never pushed or applied;
/// `plan` treats one that was synced before as deleted on its side (so the deletion threshold
/// holds a large scope change) and creates one that enters it. Each predicate sees the entity
/// in its own side's values and `ancestors`, that side's department ids above it.
impl Rules {
    /// Whether OA users are filtered by a predicate.
    pub fn scopes_oa_users(&self) -> bool {
        self.0.as_ref().is_some_and(|l| l.scope.scopes_oa_users())
    }

    /// Whether OA departments are filtered by a predicate.
    pub fn scopes_oa_departments(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|l| l.scope.scopes_oa_departments())
    }

    /// Whether DingTalk users are filtered by a predicate.
    pub fn scopes_dingtalk_users(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|l| l.scope.scopes_dingtalk_users())
    }

    /// Whether DingTalk departments are filtered by a predicate.
    pub fn scopes_dingtalk_departments(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|l| l.scope.scopes_dingtalk_departments())
    }

    /// Whether an OA user is synced into DingTalk.
    pub fn oa_user_in_scope(&self, user: &User, ancestors: &[OaDeptId]) -> Result<bool, MapError> {
        match &self.0 {
            Some(l) if l.scope.scopes_oa_users() => {
                Ok(l.scope.includes_oa_user(user, ancestors)?.included)
            }
            _ => Ok(true),
        }
    }

    /// Whether an OA department is synced into DingTalk; `ancestors` is its chain, self first.
    pub fn oa_department_in_scope(
        &self,
        dept: &Department,
        ancestors: &[OaDeptId],
    ) -> Result<bool, MapError> {
        match &self.0 {
            Some(l) if l.scope.scopes_oa_departments() => {
                Ok(l.scope.includes_oa_department(dept, ancestors)?.included)
            }
            _ => Ok(true),
        }
    }

    /// Whether a DingTalk user (in DingTalk's values) is synced into OA.
    pub fn dingtalk_user_in_scope(
        &self,
        user: &User,
        ancestors: &[DingDeptId],
    ) -> Result<bool, MapError> {
        match &self.0 {
            Some(l) if l.scope.scopes_dingtalk_users() => {
                Ok(l.scope.includes_dingtalk_user(user, ancestors)?.included)
            }
            _ => Ok(true),
        }
    }

    /// Whether a DingTalk department (in DingTalk's values) is synced into OA.
    pub fn dingtalk_department_in_scope(
        &self,
        dept: &Department,
        ancestors: &[DingDeptId],
    ) -> Result<bool, MapError> {
        match &self.0 {
            Some(l) if l.scope.scopes_dingtalk_departments() => Ok(l
                .scope
                .includes_dingtalk_department(dept, ancestors)?
                .included),
            _ => Ok(true),
        }
    }

    /// The fields of an entity DingTalk holds (`ding`, DingTalk's values) that differ from what
    /// the OA entity maps to (`expected`), leaving out what never travels after a create and
    /// what DingTalk owns: what a push would change in DingTalk although OA's values did not
    /// change (a changed mapping). Empty without rules.
    pub fn user_drift(&self, ding: &User, expected: &User) -> Vec<UserField> {
        let Some(l) = &self.0 else { return Vec::new() };
        let m = &l.mapping;
        User::all_fields()
            .iter()
            .copied()
            .filter(|f| !ding.field_eq(expected, *f))
            .filter(|f| {
                m.user_policy().authority_of(*f) != directory_model::Authority::DingTalk
                    && !m.user_create_only().contains(f)
            })
            .collect()
    }
}

impl Rules {
    /// The department fields DingTalk holds (`ding`, DingTalk's values) with other values than
    /// the OA department maps to (`expected`), leaving out what never travels after a create and
    /// what DingTalk owns: what a push would change in DingTalk although OA's values did not
    /// change (a changed mapping). Empty without rules. The caller keeps only the fields on
    /// which both sides agree in OA's values (a real edit on either side is the merge's).
    pub fn department_drift(&self, ding: &Department, expected: &Department) -> Vec<DeptField> {
        let Some(l) = &self.0 else { return Vec::new() };
        let m = &l.mapping;
        Department::all_fields()
            .iter()
            .copied()
            .filter(|f| !ding.field_eq(expected, *f))
            .filter(|f| {
                m.department_policy().authority_of(*f) != directory_model::Authority::DingTalk
                    && !m.department_create_only().contains(f)
            })
            .collect()
    }
}

/// An update in DingTalk's values: what to send, and the base it is compared with to decide
/// which fields to clear.
#[derive(Debug, Clone, PartialEq)]
pub struct ForUpdate<E> {
    /// The values to send.
    pub now: E,
    /// What DingTalk was last known to hold, mapped the same way.
    pub base: Option<E>,
}

fn identity<E: FieldAccess>(entity: E) -> Mapped<E> {
    Mapped {
        entity,
        create_only: Default::default(),
        create_only_extension: Default::default(),
    }
}

/// A mapping may change a membership's title and order, never which departments they are: the
/// pusher has already resolved each department's DingTalk id, in this order.
fn same_memberships(source: &User, mapped: &User, direction: &str) -> Result<(), MapError> {
    let before: Vec<_> = source.departments.iter().map(|m| m.dept).collect();
    let after: Vec<_> = mapped.departments.iter().map(|m| m.dept).collect();
    if before == after {
        return Ok(());
    }
    Err(MapError {
        key: format!("mapping.users.fields.departments.{direction}"),
        reason: EvalError::WrongType {
            expected: "the same departments in the same order (only titles and orders may be \
                       mapped)"
                .into(),
            got: format!("{after:?}"),
            target: "departments".into(),
        },
    })
}

fn is_optional_user(f: UserField) -> bool {
    !matches!(
        f,
        UserField::Name | UserField::Departments | UserField::Extension | UserField::State
    )
}

fn clear_user(u: &mut User, f: UserField) {
    match f {
        UserField::MainDepartment => u.main_department = None,
        UserField::Manager => u.manager = None,
        UserField::JobNumber => u.job_number = None,
        UserField::Mobile => u.mobile = None,
        UserField::Email => u.email = None,
        UserField::OrgEmail => u.org_email = None,
        UserField::Telephone => u.telephone = None,
        UserField::WorkPlace => u.work_place = None,
        UserField::HiredDateMs => u.hired_date_ms = None,
        UserField::Remark => u.remark = None,
        UserField::Name | UserField::Departments | UserField::Extension | UserField::State => {}
    }
}

#[cfg(test)]
mod tests {
    use directory_model::{Mobile, OaUserId};
    use serde_json::json;

    use super::*;

    fn rules(mapping: serde_json::Value, scope: serde_json::Value) -> Rules {
        let m = serde_json::from_value(mapping).expect("mapping config");
        let s = serde_json::from_value(scope).expect("scope config");
        Rules::new(mapping::load(&m, &s).expect("loads"))
    }

    fn user() -> User {
        let mut u = User::new(
            OaUserId::new("zs"),
            "Zhang San",
            &[OaDeptId(2), OaDeptId(3)],
        );
        u.job_number = Some("1042".into());
        u.mobile = Some(Mobile::mainland("18513027676"));
        u.departments[0].title = Some("T01".into());
        u.extension.insert("grade".into(), "P5".into());
        u
    }

    /// Job numbers with a prefix (an inverse pair), titles from a code table (one way, owned
    /// by OA), the grade into an extension key both ways, the remark on create only.
    fn realistic() -> Rules {
        rules(
            json!({"users": {
                "fields": {
                    "job_number": {
                        "to_dingtalk": "user.job_number == null ? null : 'E' + user.job_number",
                        "to_oa": "user.job_number != null && user.job_number.startsWith('E') ? user.job_number.substring(1) : user.job_number",
                        "owner": "oa"},
                    "departments": {
                        "to_dingtalk": "user.departments.map(m, {'dept': m.dept, 'order': m.order, 'title': m.title == null ? null : {'T01': 'Engineer', 'T02': 'Manager'}[m.title]})",
                        "owner": "oa"},
                    "remark": {"to_dingtalk": "'welcome'", "apply": "on_create"}
                },
                "extension": {
                    "level": {"to_dingtalk": "user.extension.?grade.orValue(null)", "to_oa": "null"},
                    "grade": {"to_dingtalk": "null", "to_oa": "user.extension.?level.orValue(null)"}
                }
            }}),
            json!({}),
        )
    }

    #[test]
    fn no_rules_change_nothing() {
        let r = Rules::default();
        let u = user();
        assert_eq!(r.user_to_dingtalk(&u).unwrap().entity, u);
        assert_eq!(r.user_to_oa(u.clone(), None, None).unwrap(), u);
        assert_eq!(r.user_expected(Some(&u)).unwrap(), None);
        assert!(r.fingerprint().is_none());
    }

    #[test]
    fn realistic_mapping_writes_dingtalk_values() {
        let r = realistic();
        let d = r.user_to_dingtalk(&user()).unwrap().entity;
        assert_eq!(d.job_number.as_deref(), Some("E1042"));
        assert_eq!(d.departments[0].title.as_deref(), Some("Engineer"));
        assert_eq!(d.departments[1].title, None);
        assert_eq!(d.extension.get("level").map(String::as_str), Some("P5"));
        assert!(!d.extension.contains_key("grade"));
        assert_eq!(d.remark.as_deref(), Some("welcome"));
    }

    #[test]
    fn an_agreeing_dingtalk_reads_back_as_the_oa_entity_even_through_a_code_table() {
        let r = realistic();
        let oa = user();
        let expected = r.user_expected(Some(&oa)).unwrap();
        let ding = expected.clone().unwrap();
        assert_eq!(r.user_to_oa(ding, Some(&oa), expected).unwrap(), oa);
    }

    #[test]
    fn a_dingtalk_edit_comes_back_mapped_and_one_way_fields_keep_oa_values() {
        let r = realistic();
        let oa = user();
        let expected = r.user_expected(Some(&oa)).unwrap();
        let mut ding = expected.clone().unwrap();
        ding.job_number = Some("E2001".into());
        ding.extension.insert("level".into(), "P6".into());
        ding.remark = Some("edited in DingTalk".into());
        let back = r.user_to_oa(ding, Some(&oa), expected).unwrap();
        assert_eq!(back.job_number.as_deref(), Some("2001"), "inverse applied");
        assert_eq!(back.extension.get("grade").map(String::as_str), Some("P6"));
        assert_eq!(
            back.departments[0].title.as_deref(),
            Some("T01"),
            "one way: OA's code kept"
        );
        assert_eq!(back.remark, None, "on_create: OA's value kept");
    }

    #[test]
    fn an_update_leaves_on_create_fields_out() {
        let r = realistic();
        let oa = user();
        let up = r.user_update(&oa, Some(&oa)).unwrap();
        assert_eq!(up.now.remark, None, "not sent");
        assert_eq!(
            up.base.as_ref().unwrap().remark,
            None,
            "so not cleared either"
        );
        assert_eq!(up.now.job_number.as_deref(), Some("E1042"));
        let created = r.user_to_dingtalk(&oa).unwrap().entity;
        assert_eq!(created.remark.as_deref(), Some("welcome"), "sent on create");
    }

    #[test]
    fn a_mapping_may_not_change_which_departments() {
        let r = rules(
            json!({"users": {"fields": {"departments": {
                "to_dingtalk": "user.departments.filter(m, m.dept != 3)", "owner": "oa"}}}}),
            json!({}),
        );
        let e = r.user_to_dingtalk(&user()).unwrap_err();
        assert_eq!(e.key, "mapping.users.fields.departments.to_dingtalk");
    }

    #[test]
    fn a_failing_expression_is_an_error_naming_the_rule() {
        let r = rules(
            json!({"users": {"fields": {"telephone": {
                "to_dingtalk": "{'A': '1'}[user.extension.grade]", "owner": "oa"}}}}),
            json!({}),
        );
        let e = r.user_to_dingtalk(&user()).unwrap_err();
        assert_eq!(e.key, "mapping.users.fields.telephone.to_dingtalk");
    }

    #[test]
    fn scope_predicates_per_direction() {
        let r = rules(
            json!({}),
            json!({"to_dingtalk": {"users": {
                "not_contractor": "user.extension.?employment_type.orValue('') != 'contractor'"}},
                   "to_oa": {"departments": {"outside_subsidiary": "!(42 in ancestors)"}}}),
        );
        let mut u = user();
        assert!(r.oa_user_in_scope(&u, &[]).unwrap());
        u.extension
            .insert("employment_type".into(), "contractor".into());
        assert!(!r.oa_user_in_scope(&u, &[]).unwrap());
        assert!(
            r.dingtalk_user_in_scope(&u, &[]).unwrap(),
            "no to_oa user rule"
        );
        let d = Department::new(OaDeptId(9), "Sub", Some(OaDeptId(1)));
        assert!(
            !r.dingtalk_department_in_scope(&d, &[DingDeptId(9), DingDeptId(42), DingDeptId(1)])
                .unwrap()
        );
        assert!(
            r.dingtalk_department_in_scope(&d, &[DingDeptId(9), DingDeptId(1)])
                .unwrap()
        );
        assert!(r.scopes_oa_users() && r.scopes_dingtalk_departments());
        assert!(!r.scopes_dingtalk_users() && !r.scopes_oa_departments());
    }

    #[test]
    fn drift_names_what_dingtalk_holds_differently_but_not_on_create_fields() {
        let r = realistic();
        let oa = user();
        let expected = r.user_expected(Some(&oa)).unwrap().unwrap();
        let mut ding = oa.clone(); // DingTalk still holds the values of the identity mapping
        ding.remark = Some("anything".into());
        let drift = r.user_drift(&ding, &expected);
        assert!(drift.contains(&UserField::JobNumber), "{drift:?}");
        assert!(drift.contains(&UserField::Departments));
        assert!(drift.contains(&UserField::Extension));
        assert!(
            !drift.contains(&UserField::Remark),
            "on_create never drifts"
        );
        assert!(r.user_drift(&expected, &expected).is_empty());
    }
}
