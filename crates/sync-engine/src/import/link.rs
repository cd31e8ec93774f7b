//! Deciding which OA entity each DingTalk entity *is*, before anything is written.
//!
//! On the first import into a directory that already holds people, creating everyone anew would
//! duplicate them. So each DingTalk user is linked, in this order, to: the OA user the id map
//! already links it to; the OA user whose id is the DingTalk userid; the one OA user that shares
//! a key of the configured soft-match order (mobile, job number, email). A key value shared by
//! several OA users, or an OA user claimed by several DingTalk users, is *ambiguous*: it is
//! reported and that DingTalk user is left out of the import rather than guessed (an operator
//! links it by hand). Only OA users not yet linked to another DingTalk user are candidates.
//!
//! Departments, role groups and roles are linked the same way with their natural keys: the
//! `dingsync:<oa id>` source identifier the pusher writes, then the name under the same parent
//! (or in the same group). DingTalk forbids duplicate sibling names, so a name match is never
//! ambiguous on DingTalk's side; on the OA side only an unlinked department qualifies.
//!
//! Everything here is pure: the importer loads the inputs, asks, and writes the answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use dingtalk_proto::{dept::DeptDetail, role::RoleGroup as WireRoleGroup, user::User as WireUser};
use directory_model::{
    Department, DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId,
    OaRoleId, OaUserId, Role, RoleGroup, User,
};
use serde::Serialize;

use crate::policy::MatchKey;
use crate::translate::department::marked_oa_id;
use crate::translate::{IdMap, ding};

/// How a DingTalk user was recognised as an existing OA user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The OA user's id is the DingTalk userid.
    Userid,
    /// A soft-match key.
    Key(MatchKey),
}

/// A DingTalk user linked to an OA user that existed before the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SoftMatched {
    /// The DingTalk user.
    pub ding: DingUserId,
    /// The OA user it was linked to.
    pub oa: OaUserId,
    /// By what.
    pub by: MatchedBy,
}

/// A DingTalk user that could not be linked without guessing; it was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmbiguousMatch {
    /// The DingTalk user.
    pub ding: DingUserId,
    /// The key that matched more than once (`None`: the userid itself is taken).
    pub key: Option<MatchKey>,
    /// The OA users involved.
    pub candidates: Vec<OaUserId>,
}

/// The outcome of linking users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserLinks {
    /// DingTalk userid → OA id, for every user to import.
    pub links: BTreeMap<DingUserId, OaUserId>,
    /// The links the id map does not have yet.
    pub new_links: Vec<(OaUserId, DingUserId)>,
    /// Links to OA users that existed before.
    pub soft_matched: Vec<SoftMatched>,
    /// Users left out because their match was ambiguous.
    pub ambiguous: Vec<AmbiguousMatch>,
}

/// A user's value for one key, normalised for comparison.
fn key_of_oa(user: &User, key: MatchKey) -> Option<String> {
    match key {
        MatchKey::Mobile => user
            .mobile
            .as_ref()
            .map(|m| format!("{}-{}", m.country_code, m.number)),
        MatchKey::JobNumber => user.job_number.clone().filter(|j| !j.is_empty()),
        MatchKey::Email => user
            .email
            .as_ref()
            .filter(|e| !e.is_empty())
            .map(|e| e.to_lowercase()),
    }
}

fn key_of_wire(user: &WireUser, key: MatchKey) -> Option<String> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    match key {
        MatchKey::Mobile => nonempty(&user.mobile).map(|m| {
            let code = nonempty(&user.state_code).unwrap_or_else(|| "86".to_owned());
            format!("{code}-{m}")
        }),
        MatchKey::JobNumber => nonempty(&user.job_number),
        MatchKey::Email => nonempty(&user.email).map(|e| e.to_lowercase()),
    }
}

/// Links every listed DingTalk user to an OA id; see the module doc.
pub fn link_users(
    wire: &BTreeMap<dingtalk_proto::DingUserId, WireUser>,
    oa: &BTreeMap<OaUserId, User>,
    ids: &IdMap,
    order: &[MatchKey],
) -> UserLinks {
    let mut out = UserLinks::default();
    // OA users someone already owns: linked in the map, or matched by userid in this run.
    let mut taken: HashSet<OaUserId> = oa
        .keys()
        .filter(|id| ids.ding_user(id).is_some())
        .cloned()
        .collect();
    let mut pending: Vec<(&WireUser, DingUserId)> = Vec::new();
    for (wid, w) in wire {
        let d = ding::user(wid);
        if let Some(existing) = ids.oa_user(&d) {
            out.links.insert(d, existing.clone());
            continue;
        }
        let same_id = OaUserId::new(d.as_str());
        if oa.contains_key(&same_id) {
            if taken.contains(&same_id) {
                out.ambiguous.push(AmbiguousMatch {
                    ding: d,
                    key: None,
                    candidates: vec![same_id],
                });
            } else {
                taken.insert(same_id.clone());
                out.soft_matched.push(SoftMatched {
                    ding: d.clone(),
                    oa: same_id.clone(),
                    by: MatchedBy::Userid,
                });
                out.new_links.push((same_id.clone(), d.clone()));
                out.links.insert(d, same_id);
            }
            continue;
        }
        pending.push((w, d));
    }

    let index = key_index(oa, &taken, order);
    let proposals = propose(pending, &index, order, &mut out);
    settle(proposals, &mut out);
    out
}

/// The OA users still free, per key value.
fn key_index(
    oa: &BTreeMap<OaUserId, User>,
    taken: &HashSet<OaUserId>,
    order: &[MatchKey],
) -> HashMap<(MatchKey, String), Vec<OaUserId>> {
    let mut index: HashMap<(MatchKey, String), Vec<OaUserId>> = HashMap::new();
    for (id, u) in oa {
        if taken.contains(id) {
            continue;
        }
        for key in order {
            if let Some(v) = key_of_oa(u, *key) {
                index.entry((*key, v)).or_default().push(id.clone());
            }
        }
    }
    index
}

/// A proposed OA user (and the key that found it) per DingTalk user, `None` for a new person;
/// users whose key matched several OA users are reported ambiguous instead.
fn propose(
    pending: Vec<(&WireUser, DingUserId)>,
    index: &HashMap<(MatchKey, String), Vec<OaUserId>>,
    order: &[MatchKey],
    out: &mut UserLinks,
) -> Vec<(DingUserId, Option<(OaUserId, MatchKey)>)> {
    let mut proposals: Vec<(DingUserId, Option<(OaUserId, MatchKey)>)> = Vec::new();
    for (w, d) in pending {
        let mut decided = None;
        let mut ambiguous = false;
        for key in order {
            let Some(v) = key_of_wire(w, *key) else {
                continue;
            };
            match index.get(&(*key, v)).map(Vec::as_slice) {
                Some([one]) => {
                    decided = Some((one.clone(), *key));
                    break;
                }
                Some(many) if many.len() > 1 => {
                    out.ambiguous.push(AmbiguousMatch {
                        ding: d.clone(),
                        key: Some(*key),
                        candidates: many.to_vec(),
                    });
                    ambiguous = true;
                    break;
                }
                _ => {}
            }
        }
        if !ambiguous {
            proposals.push((d, decided));
        }
    }
    proposals
}

/// Links the proposals, refusing OA users proposed more than once.
fn settle(proposals: Vec<(DingUserId, Option<(OaUserId, MatchKey)>)>, out: &mut UserLinks) {
    let mut claims: HashMap<OaUserId, usize> = HashMap::new();
    for (_, p) in &proposals {
        if let Some((oa_id, _)) = p {
            *claims.entry(oa_id.clone()).or_default() += 1;
        }
    }
    for (d, p) in proposals {
        match p {
            Some((oa_id, key)) if claims.get(&oa_id).copied().unwrap_or(0) > 1 => {
                out.ambiguous.push(AmbiguousMatch {
                    ding: d,
                    key: Some(key),
                    candidates: vec![oa_id],
                });
            }
            Some((oa_id, key)) => {
                out.soft_matched.push(SoftMatched {
                    ding: d.clone(),
                    oa: oa_id.clone(),
                    by: MatchedBy::Key(key),
                });
                out.new_links.push((oa_id.clone(), d.clone()));
                out.links.insert(d, oa_id);
            }
            None => {
                // A new person: the OA id is the DingTalk userid (free, checked above).
                let oa_id = OaUserId::new(d.as_str());
                out.new_links.push((oa_id.clone(), d.clone()));
                out.links.insert(d, oa_id);
            }
        }
    }
}

/// Links decided by key, and the DingTalk ids that still need a fresh OA id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedLinks<O, D> {
    /// Links to existing OA entities (new to the id map).
    pub matched: Vec<(O, D)>,
    /// DingTalk ids that need a freshly allocated OA id, in order.
    pub unlinked: Vec<D>,
}

impl<O, D> Default for KeyedLinks<O, D> {
    fn default() -> Self {
        Self {
            matched: Vec::new(),
            unlinked: Vec::new(),
        }
    }
}

/// The OA root DingTalk's root links to: the one OA department without a parent, if there is
/// exactly one.
pub(crate) fn only_root(oa: &BTreeMap<OaDeptId, Department>) -> Option<OaDeptId> {
    let roots: Vec<OaDeptId> = oa
        .values()
        .filter(|x| x.parent.is_none())
        .map(|x| x.id)
        .collect();
    match roots.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Links departments (parents before children in `depts`) to existing OA departments.
pub fn link_departments(
    depts: &[DeptDetail],
    oa: &BTreeMap<OaDeptId, Department>,
    ids: &IdMap,
) -> KeyedLinks<OaDeptId, DingDeptId> {
    let mut out = KeyedLinks::default();
    let mut taken: HashSet<OaDeptId> = oa
        .keys()
        .filter(|id| ids.ding_dept(**id).is_some())
        .copied()
        .collect();
    // OA id of each DingTalk department known so far (map + matches of this run).
    let mut known: HashMap<DingDeptId, OaDeptId> = HashMap::new();
    let mut by_parent_name: HashMap<(Option<OaDeptId>, &str), Vec<OaDeptId>> = HashMap::new();
    for d in oa.values() {
        by_parent_name
            .entry((d.parent, d.name.as_str()))
            .or_default()
            .push(d.id);
    }
    for w in depts {
        let d = ding::dept(w.dept_id);
        if let Some(existing) = ids.oa_dept(d) {
            known.insert(d, existing);
            continue;
        }
        let candidate = if d == DingDeptId::ROOT {
            only_root(oa)
        } else if let Some(own) =
            marked_oa_id(w.source_identifier.as_deref()).filter(|id| oa.contains_key(id))
        {
            Some(own)
        } else {
            let parent = w.parent_id.and_then(|p| known.get(&ding::dept(p)).copied());
            parent.and_then(|p| {
                match by_parent_name
                    .get(&(Some(p), w.name.as_str()))
                    .map(Vec::as_slice)
                {
                    Some([one]) => Some(*one),
                    _ => None,
                }
            })
        };
        match candidate.filter(|c| !taken.contains(c)) {
            Some(oa_id) => {
                taken.insert(oa_id);
                known.insert(d, oa_id);
                out.matched.push((oa_id, d));
            }
            None => out.unlinked.push(d),
        }
    }
    out
}

/// Links role groups by name, and roles by (group, name), to existing OA ones.
pub fn link_roles(
    groups: &[WireRoleGroup],
    oa_groups: &BTreeMap<OaRoleGroupId, RoleGroup>,
    oa_roles: &BTreeMap<OaRoleId, Role>,
    ids: &IdMap,
) -> (
    KeyedLinks<OaRoleGroupId, DingRoleGroupId>,
    KeyedLinks<OaRoleId, DingRoleId>,
) {
    let mut g_out = KeyedLinks::default();
    let mut r_out = KeyedLinks::default();
    let mut g_taken: HashSet<OaRoleGroupId> = oa_groups
        .keys()
        .filter(|id| ids.ding_group(**id).is_some())
        .copied()
        .collect();
    let mut r_taken: HashSet<OaRoleId> = oa_roles
        .keys()
        .filter(|id| ids.ding_role(**id).is_some())
        .copied()
        .collect();
    for g in groups {
        let gd = ding::group(g.group_id);
        let oa_group = ids.oa_group(gd).or_else(|| {
            let found: Vec<OaRoleGroupId> = oa_groups
                .values()
                .filter(|x| x.name == g.name && !g_taken.contains(&x.id))
                .map(|x| x.id)
                .collect();
            match found.as_slice() {
                [one] => {
                    g_taken.insert(*one);
                    g_out.matched.push((*one, gd));
                    Some(*one)
                }
                _ => {
                    g_out.unlinked.push(gd);
                    None
                }
            }
        });
        for r in &g.roles {
            let rd = ding::role(r.id);
            if ids.oa_role(rd).is_some() {
                continue;
            }
            let found: Vec<OaRoleId> = match oa_group {
                Some(og) => oa_roles
                    .values()
                    .filter(|x| x.group == og && x.name == r.name && !r_taken.contains(&x.id))
                    .map(|x| x.id)
                    .collect(),
                None => Vec::new(),
            };
            match found.as_slice() {
                [one] => {
                    r_taken.insert(*one);
                    r_out.matched.push((*one, rd));
                }
                _ => r_out.unlinked.push(rd),
            }
        }
    }
    (g_out, r_out)
}

#[cfg(test)]
mod tests {
    use directory_model::Mobile;

    use super::*;

    fn wire(id: &str, mobile: Option<&str>, job: Option<&str>) -> WireUser {
        serde_json::from_value(serde_json::json!({
            "userid": id, "name": id, "mobile": mobile, "job_number": job, "state_code": "86"
        }))
        .unwrap()
    }

    fn oa(id: &str, mobile: Option<&str>, job: Option<&str>) -> User {
        let mut u = User::new(OaUserId::new(id), id, &[OaDeptId(1)]);
        u.mobile = mobile.map(Mobile::mainland);
        u.job_number = job.map(str::to_owned);
        u
    }

    fn wires(list: Vec<WireUser>) -> BTreeMap<dingtalk_proto::DingUserId, WireUser> {
        list.into_iter().map(|u| (u.userid.clone(), u)).collect()
    }

    fn oas(list: Vec<User>) -> BTreeMap<OaUserId, User> {
        list.into_iter().map(|u| (u.id.clone(), u)).collect()
    }

    #[test]
    fn links_by_map_then_userid_then_keys_and_creates_the_rest() {
        let mut ids = IdMap::default();
        ids.insert_user(OaUserId::new("linked-oa"), DingUserId::new("d0"));
        let w = wires(vec![
            wire("d0", None, None),
            wire("alice", Some("13800000001"), None),
            wire("d2", Some("13800000002"), None),
            wire("d3", None, Some("J3")),
            wire("d4", Some("13800000004"), None),
        ]);
        let o = oas(vec![
            oa("linked-oa", None, None),
            oa("alice", None, None),
            oa("emp-2", Some("13800000002"), None),
            oa("emp-3", None, Some("J3")),
        ]);
        let links = link_users(
            &w,
            &o,
            &ids,
            &[MatchKey::Mobile, MatchKey::JobNumber, MatchKey::Email],
        );
        let get = |d: &str| links.links.get(&DingUserId::new(d)).cloned();
        assert_eq!(get("d0"), Some(OaUserId::new("linked-oa")));
        assert_eq!(get("alice"), Some(OaUserId::new("alice")));
        assert_eq!(get("d2"), Some(OaUserId::new("emp-2")));
        assert_eq!(get("d3"), Some(OaUserId::new("emp-3")));
        assert_eq!(get("d4"), Some(OaUserId::new("d4")), "no match: a new user");
        assert!(links.ambiguous.is_empty());
        assert_eq!(links.new_links.len(), 4, "everything but the existing link");
        let by: Vec<MatchedBy> = links.soft_matched.iter().map(|m| m.by).collect();
        assert_eq!(
            by,
            vec![
                MatchedBy::Userid,
                MatchedBy::Key(MatchKey::Mobile),
                MatchedBy::Key(MatchKey::JobNumber)
            ]
        );
    }

    #[test]
    fn ambiguous_matches_are_reported_not_guessed() {
        let w = wires(vec![
            wire("d1", None, Some("J1")),
            wire("d2", None, Some("J9")),
            wire("d3", None, Some("J9")),
        ]);
        // Two OA users share J1; one OA user has J9 but two DingTalk users claim it.
        let o = oas(vec![
            oa("a", None, Some("J1")),
            oa("b", None, Some("J1")),
            oa("c", None, Some("J9")),
        ]);
        let links = link_users(&w, &o, &IdMap::default(), &[MatchKey::JobNumber]);
        assert!(links.links.is_empty(), "{links:?}");
        assert_eq!(links.ambiguous.len(), 3);
        assert_eq!(
            links.ambiguous[0].candidates,
            vec![OaUserId::new("a"), OaUserId::new("b")]
        );
    }

    #[test]
    fn a_key_outside_the_configured_order_is_not_used() {
        let w = wires(vec![wire("d1", Some("13800000001"), None)]);
        let o = oas(vec![oa("emp", Some("13800000001"), None)]);
        let links = link_users(&w, &o, &IdMap::default(), &[MatchKey::JobNumber]);
        assert_eq!(
            links.links.get(&DingUserId::new("d1")),
            Some(&OaUserId::new("d1"))
        );
    }

    fn detail(id: i64, parent: Option<i64>, name: &str, si: Option<&str>) -> DeptDetail {
        serde_json::from_value(serde_json::json!({
            "dept_id": id, "parent_id": parent, "name": name, "source_identifier": si
        }))
        .unwrap()
    }

    #[test]
    fn departments_link_root_source_identifier_and_sibling_name() {
        let o: BTreeMap<OaDeptId, Department> = [
            Department::new(OaDeptId(1), "Acme", None),
            Department::new(OaDeptId(7), "Sales", Some(OaDeptId(1))),
            Department::new(OaDeptId(8), "Ops", Some(OaDeptId(1))),
        ]
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
        let depts = vec![
            detail(1, None, "Acme Corp", None),
            detail(100, Some(1), "Sales", None),
            detail(200, Some(1), "Renamed", Some("dingsync:8")),
            detail(300, Some(100), "East", None),
        ];
        let links = link_departments(&depts, &o, &IdMap::default());
        assert_eq!(
            links.matched,
            vec![
                (OaDeptId(1), DingDeptId(1)),
                (OaDeptId(7), DingDeptId(100)),
                (OaDeptId(8), DingDeptId(200))
            ]
        );
        assert_eq!(links.unlinked, vec![DingDeptId(300)]);
    }

    #[test]
    fn roles_link_by_group_and_name() {
        let groups: Vec<WireRoleGroup> = serde_json::from_value(serde_json::json!([
            {"groupId": 10, "name": "Jobs", "roles": [{"id": 11, "name": "Dev"}, {"id": 12, "name": "QA"}]},
            {"groupId": 20, "name": "New", "roles": [{"id": 21, "name": "Dev"}]}
        ]))
        .unwrap();
        let og: BTreeMap<OaRoleGroupId, RoleGroup> = [(
            OaRoleGroupId(1),
            RoleGroup {
                id: OaRoleGroupId(1),
                name: "Jobs".into(),
            },
        )]
        .into();
        let or: BTreeMap<OaRoleId, Role> = [(
            OaRoleId(5),
            Role {
                id: OaRoleId(5),
                group: OaRoleGroupId(1),
                name: "Dev".into(),
            },
        )]
        .into();
        let (g, r) = link_roles(&groups, &og, &or, &IdMap::default());
        assert_eq!(g.matched, vec![(OaRoleGroupId(1), DingRoleGroupId(10))]);
        assert_eq!(g.unlinked, vec![DingRoleGroupId(20)]);
        assert_eq!(r.matched, vec![(OaRoleId(5), DingRoleId(11))]);
        assert_eq!(r.unlinked, vec![DingRoleId(12), DingRoleId(21)]);
    }
}
