//! DingTalk's built-in roles, which no API call can change.
//!
//! Every DingTalk organisation has a role group named 默认 holding 负责人, 主管, 主管理员 and
//! 子管理员 (`dingtalk-api.md` §2.3). DingTalk refuses, for good, to rename or delete them or to
//! assign them with `addrolesforemps` (23004 "系统标签不允许操作"); the simulator also refuses
//! to take them away with `removerolesforemps` and to add a role to that group (34020). An OA
//! write that does any of this used to be accepted and then dead-lettered on every push
//! (issue 18 B4), so the OA API refuses it with the checks below.
//!
//! These are checks of *operations*, not of entities: an import rightly brings the built-in
//! group, its roles and who holds them into the OA directory (so a plan can show them), and the
//! store must keep accepting them from DingTalk. Only writes that start in the OA system are
//! refused, which is why [`super::validate_role`] cannot do this: it sees one role and neither
//! its group nor who is asking.
//!
//! The group is recognised by its name, which DingTalk gives it in every organisation. Any role
//! in it is built in (DingTalk lets no other role join it). A *new* group named 默认 is refused
//! too: dingsync's plan and its pusher find role groups by name, so a second 默认 would be taken
//! for the built-in one (the pusher would record DingTalk's built-in group as its twin).

use super::{Collector, Rule, ValidationErrors};
use crate::entity::{Role, RoleAssignment, RoleGroup};

/// The name of DingTalk's built-in role group.
pub const BUILTIN_ROLE_GROUP: &str = "默认";

/// The roles DingTalk puts in the built-in group.
pub const BUILTIN_ROLES: [&str; 4] = ["负责人", "主管", "主管理员", "子管理员"];

/// Whether a role group with this name is DingTalk's built-in one.
pub fn is_builtin_role_group_name(name: &str) -> bool {
    name == BUILTIN_ROLE_GROUP
}

/// Whether `name` is the name of one of DingTalk's built-in roles. A role of another group may
/// carry the same name; use [`is_builtin_role`] to judge a role.
pub fn is_builtin_role_name(name: &str) -> bool {
    BUILTIN_ROLES.contains(&name)
}

impl RoleGroup {
    /// Whether this is DingTalk's built-in group (默认), whose roles no API call can change.
    pub fn is_builtin(&self) -> bool {
        is_builtin_role_group_name(&self.name)
    }
}

/// Whether `role`, a member of `group`, is one of DingTalk's built-in roles. `group` must be the
/// role's own group (`role.group == group.id`); a mismatched pair is never judged built-in.
pub fn is_builtin_role(role: &Role, group: &RoleGroup) -> bool {
    role.group == group.id && group.is_builtin()
}

const WHY: &str = "DingTalk refuses it for good (23004, system role)";

/// Checks an OA write of a role group: `before` is the stored group (`None` for a create) and
/// `after` the group as it would be saved. Refused: renaming the built-in group 默认, and
/// creating or renaming another group to that name.
pub fn validate_role_group_change(
    before: Option<&RoleGroup>,
    after: &RoleGroup,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    match before {
        Some(b) if b.is_builtin() && b.name != after.name => c.push(
            "name",
            Rule::BuiltIn,
            format!("{BUILTIN_ROLE_GROUP} is DingTalk's built-in role group and cannot be renamed"),
        ),
        Some(b) if b.is_builtin() => {}
        _ if after.is_builtin() => c.push(
            "name",
            Rule::BuiltIn,
            format!(
                "{BUILTIN_ROLE_GROUP} is the name of DingTalk's built-in role group; \
                 choose another name"
            ),
        ),
        _ => {}
    }
    c.finish()
}

/// Checks an OA deletion of a role group: the built-in group cannot be deleted.
pub fn validate_role_group_deletion(group: &RoleGroup) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if group.is_builtin() {
        c.push(
            "id",
            Rule::BuiltIn,
            format!("{BUILTIN_ROLE_GROUP} is DingTalk's built-in role group and cannot be deleted"),
        );
    }
    c.finish()
}

/// Checks an OA write of a role: `before` is the stored role with its group (`None` for a
/// create), `after` the role as it would be saved with the group it names. Refused: renaming a
/// built-in role or moving it out of 默认, and creating a role in 默认 or moving one into it.
pub fn validate_role_change(
    before: Option<(&Role, &RoleGroup)>,
    after: (&Role, &RoleGroup),
) -> Result<(), ValidationErrors> {
    let (role, group) = after;
    let mut c = Collector::default();
    match before {
        Some((old, old_group)) if is_builtin_role(old, old_group) => {
            if old.name != role.name {
                c.push(
                    "name",
                    Rule::BuiltIn,
                    format!(
                        "{:?} is a built-in DingTalk role and cannot be renamed; {WHY}",
                        old.name
                    ),
                );
            }
            if old.group != role.group {
                c.push(
                    "group",
                    Rule::BuiltIn,
                    format!(
                        "{:?} is a built-in DingTalk role and cannot leave {BUILTIN_ROLE_GROUP}; \
                         {WHY}",
                        old.name
                    ),
                );
            }
        }
        _ if is_builtin_role(role, group) => c.push(
            "group",
            Rule::BuiltIn,
            format!(
                "{BUILTIN_ROLE_GROUP} is DingTalk's built-in role group and takes no other roles \
                 (DingTalk refuses with 34020)"
            ),
        ),
        _ => {}
    }
    c.finish()
}

/// Checks an OA deletion of `role`, a member of `group`: built-in roles cannot be deleted.
pub fn validate_role_deletion(role: &Role, group: &RoleGroup) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if is_builtin_role(role, group) {
        c.push(
            "id",
            Rule::BuiltIn,
            format!(
                "{:?} is a built-in DingTalk role and cannot be deleted; {WHY}",
                role.name
            ),
        );
    }
    c.finish()
}

/// Checks an OA assignment of `role` (a member of `group`) to a user, or its removal: neither is
/// possible for a built-in role. `assignment.role` must be `role.id`.
pub fn validate_role_assignment(
    assignment: &RoleAssignment,
    role: &Role,
    group: &RoleGroup,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if assignment.role == role.id && is_builtin_role(role, group) {
        c.push(
            "role",
            Rule::BuiltIn,
            format!(
                "{:?} is a built-in DingTalk role: it cannot be given to or taken from a user \
                 through the API; {WHY}",
                role.name
            ),
        );
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{OaRoleGroupId, OaRoleId, OaUserId};

    fn group(id: i64, name: &str) -> RoleGroup {
        RoleGroup {
            id: OaRoleGroupId(id),
            name: name.into(),
        }
    }

    fn role(id: i64, group: i64, name: &str) -> Role {
        Role {
            id: OaRoleId(id),
            group: OaRoleGroupId(group),
            name: name.into(),
        }
    }

    fn only_rule(result: Result<(), ValidationErrors>, field: &str) {
        let err = result.expect_err("refused");
        assert_eq!(err.0.len(), 1, "{err:?}");
        assert_eq!(err.0[0].field, field);
        assert_eq!(err.0[0].rule, Rule::BuiltIn);
    }

    #[test]
    fn the_builtin_group_and_its_roles_are_recognised() {
        let builtin = group(1, "默认");
        let posts = group(2, "职务");
        assert!(builtin.is_builtin() && !posts.is_builtin());
        for name in ["负责人", "主管", "主管理员", "子管理员"] {
            assert!(is_builtin_role_name(name));
            assert!(is_builtin_role(&role(10, 1, name), &builtin));
            // The same name in another group is an ordinary role.
            assert!(!is_builtin_role(&role(11, 2, name), &posts));
        }
        assert!(!is_builtin_role_name("财务"));
        // A role judged against a group that is not its own is never built in.
        assert!(!is_builtin_role(&role(10, 2, "负责人"), &builtin));
    }

    #[test]
    fn assigning_or_removing_a_builtin_role_is_refused_naming_the_role_field() {
        let builtin = group(1, "默认");
        let owner = role(10, 1, "负责人");
        let a = RoleAssignment {
            user: OaUserId::new("alice"),
            role: OaRoleId(10),
        };
        let err = validate_role_assignment(&a, &owner, &builtin).unwrap_err();
        assert_eq!(err.0[0].field, "role");
        assert_eq!(err.0[0].rule, Rule::BuiltIn);
        assert!(err.0[0].message.contains("负责人"), "{}", err.0[0].message);
        assert!(err.0[0].message.contains("23004"), "{}", err.0[0].message);
        let cashier = role(12, 2, "出纳");
        let a = RoleAssignment {
            user: OaUserId::new("alice"),
            role: OaRoleId(12),
        };
        validate_role_assignment(&a, &cashier, &group(2, "财务")).unwrap();
    }

    #[test]
    fn builtin_roles_cannot_be_renamed_moved_or_deleted() {
        let builtin = group(1, "默认");
        let posts = group(2, "职务");
        let admin = role(10, 1, "主管理员");
        let mut renamed = admin.clone();
        renamed.name = "超级管理员".into();
        only_rule(
            validate_role_change(Some((&admin, &builtin)), (&renamed, &builtin)),
            "name",
        );
        let mut moved = admin.clone();
        moved.group = posts.id;
        only_rule(
            validate_role_change(Some((&admin, &builtin)), (&moved, &posts)),
            "group",
        );
        only_rule(validate_role_deletion(&admin, &builtin), "id");
        // Saving it unchanged (a PATCH with the same values) is harmless.
        validate_role_change(Some((&admin, &builtin)), (&admin, &builtin)).unwrap();
    }

    #[test]
    fn no_role_joins_the_builtin_group() {
        let builtin = group(1, "默认");
        let posts = group(2, "职务");
        only_rule(
            validate_role_change(None, (&role(20, 1, "新角色"), &builtin)),
            "group",
        );
        let clerk = role(21, 2, "文员");
        let mut moved = clerk.clone();
        moved.group = builtin.id;
        only_rule(
            validate_role_change(Some((&clerk, &posts)), (&moved, &builtin)),
            "group",
        );
        // Ordinary roles: created, renamed (even to a built-in name elsewhere) and deleted.
        validate_role_change(None, (&clerk, &posts)).unwrap();
        let mut renamed = clerk.clone();
        renamed.name = "负责人".into();
        validate_role_change(Some((&clerk, &posts)), (&renamed, &posts)).unwrap();
        validate_role_deletion(&clerk, &posts).unwrap();
    }

    #[test]
    fn the_builtin_group_cannot_be_renamed_deleted_or_duplicated() {
        let builtin = group(1, "默认");
        only_rule(
            validate_role_group_change(Some(&builtin), &group(1, "默认组")),
            "name",
        );
        only_rule(validate_role_group_deletion(&builtin), "id");
        only_rule(validate_role_group_change(None, &group(3, "默认")), "name");
        only_rule(
            validate_role_group_change(Some(&group(2, "职务")), &group(2, "默认")),
            "name",
        );
        validate_role_group_change(Some(&builtin), &builtin).unwrap();
        validate_role_group_change(None, &group(3, "职务")).unwrap();
        validate_role_group_change(Some(&group(2, "职务")), &group(2, "岗位")).unwrap();
        validate_role_group_deletion(&group(2, "职务")).unwrap();
    }
}
