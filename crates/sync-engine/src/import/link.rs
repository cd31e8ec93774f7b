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

/// What [`StreamLinker::decide`] made of one DingTalk user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Linked to this OA id (new to the id map).
    To(OaUserId),
    /// Left out: the match is ambiguous (recorded in [`StreamLinker::out`]).
    Ambiguous,
    /// A soft-match key may match: decided by [`StreamLinker::settle`] once everyone is listed,
    /// so that two DingTalk users claiming one OA user are both reported, not first-come.
    Deferred,
}

/// [`link_users`] for an import that streams: users arrive in batches, and only what must be
/// global is kept — the soft-match keys of the OA users no DingTalk user is linked to, the OA
/// users claimed by userid in this run, and the few DingTalk users a key may match. The
/// decisions are the same as [`link_users`]'s: the caller checks the id map first; a userid
/// match is decided at once (an OA user's id is unique); a key match waits for
/// [`Self::settle`], where the key index no longer offers OA users claimed by userid.
#[derive(Debug, Default)]
pub struct StreamLinker {
    /// The configured soft-match order.
    order: Vec<MatchKey>,
    /// Free OA users per key value.
    index: HashMap<(MatchKey, String), Vec<OaUserId>>,
    /// OA users linked by userid in this run.
    claimed: HashSet<OaUserId>,
    /// DingTalk users (as read) a key may match.
    deferred: Vec<WireUser>,
    /// Their userids.
    deferred_ids: HashSet<dingtalk_proto::DingUserId>,
    /// Soft matches and ambiguities so far; `new_links` is drained by the caller per batch.
    pub out: UserLinks,
}

impl StreamLinker {
    /// A linker for `order` with an empty key index.
    pub fn new(order: &[MatchKey]) -> Self {
        Self {
            order: order.to_vec(),
            ..Self::default()
        }
    }

    /// Offers an OA user no DingTalk user is linked to for key matching.
    pub fn offer(&mut self, user: &User) {
        for key in &self.order {
            if let Some(v) = key_of_oa(user, *key) {
                self.index
                    .entry((*key, v))
                    .or_default()
                    .push(user.id.clone());
            }
        }
    }

    /// Decides one DingTalk user the id map does not link. `same_id_exists`: an OA user has
    /// the userid as its id; `same_id_taken`: the id map links that OA user to someone else.
    pub fn decide(&mut self, w: &WireUser, same_id_exists: bool, same_id_taken: bool) -> Decision {
        let d = ding::user(&w.userid);
        let same_id = OaUserId::new(d.as_str());
        if same_id_exists {
            if same_id_taken || self.claimed.contains(&same_id) {
                self.out.ambiguous.push(AmbiguousMatch {
                    ding: d,
                    key: None,
                    candidates: vec![same_id],
                });
                return Decision::Ambiguous;
            }
            self.claimed.insert(same_id.clone());
            self.out.soft_matched.push(SoftMatched {
                ding: d.clone(),
                oa: same_id.clone(),
                by: MatchedBy::Userid,
            });
            self.out.new_links.push((same_id.clone(), d));
            return Decision::To(same_id);
        }
        let may_match = self
            .order
            .iter()
            .any(|key| key_of_wire(w, *key).is_some_and(|v| self.index.contains_key(&(*key, v))));
        if may_match {
            self.deferred_ids.insert(w.userid.clone());
            self.deferred.push(w.clone());
            return Decision::Deferred;
        }
        self.out.new_links.push((same_id.clone(), d));
        Decision::To(same_id)
    }

    /// Whether `d` waits for [`Self::settle`].
    pub fn is_deferred(&self, d: &dingtalk_proto::DingUserId) -> bool {
        self.deferred_ids.contains(d)
    }

    /// Decides the deferred users, as [`link_users`] would have: each with its OA id, or
    /// `None` when ambiguous.
    pub fn settle(&mut self) -> Vec<(WireUser, Option<OaUserId>)> {
        let claimed = std::mem::take(&mut self.claimed);
        for v in self.index.values_mut() {
            v.retain(|id| !claimed.contains(id));
        }
        self.index.retain(|_, v| !v.is_empty());
        let deferred = std::mem::take(&mut self.deferred);
        self.deferred_ids.clear();
        let pending: Vec<(&WireUser, DingUserId)> = deferred
            .iter()
            .map(|w| (w, ding::user(&w.userid)))
            .collect();
        let mut settled = UserLinks::default();
        let proposals = propose(pending, &self.index, &self.order, &mut settled);
        settle(proposals, &mut settled);
        self.index = HashMap::new();
        self.out.soft_matched.append(&mut settled.soft_matched);
        self.out.ambiguous.append(&mut settled.ambiguous);
        self.out.new_links.append(&mut settled.new_links);
        deferred
            .into_iter()
            .map(|w| {
                let oa = settled.links.get(&ding::user(&w.userid)).cloned();
                (w, oa)
            })
            .collect()
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

    /// The streaming linker decides as `link_users` does, whatever the arrival order.
    #[test]
    fn the_stream_linker_agrees_with_link_users() {
        let w = wires(vec![
            wire("alice", Some("13800000001"), None),
            wire("d2", Some("13800000002"), None),
            wire("d3", None, Some("J9")),
            wire("d4", None, Some("J9")),
            wire("d5", Some("13800000005"), None),
            wire("d6", None, Some("J1")),
        ]);
        let o = oas(vec![
            oa("alice", None, None),
            oa("emp-2", Some("13800000002"), None),
            oa("c", None, Some("J9")),
            oa("a", None, Some("J1")),
            oa("b", None, Some("J1")),
        ]);
        let order = [MatchKey::Mobile, MatchKey::JobNumber];
        let batch = link_users(&w, &o, &IdMap::default(), &order);
        let mut stream = StreamLinker::new(&order);
        for u in o.values() {
            stream.offer(u);
        }
        let mut links = BTreeMap::new();
        // Reverse order: arrival order must not matter.
        for u in w.values().rev() {
            match stream.decide(
                u,
                o.contains_key(&OaUserId::new(u.userid.0.as_str())),
                false,
            ) {
                Decision::To(id) => {
                    links.insert(ding::user(&u.userid), id);
                }
                Decision::Ambiguous | Decision::Deferred => {}
            }
        }
        for (u, id) in stream.settle() {
            if let Some(id) = id {
                links.insert(ding::user(&u.userid), id);
            }
        }
        assert_eq!(links, batch.links);
        let ambiguous = |l: &[AmbiguousMatch]| {
            let mut v: Vec<String> = l.iter().map(|a| a.ding.as_str().to_owned()).collect();
            v.sort();
            v
        };
        assert_eq!(
            ambiguous(&stream.out.ambiguous),
            ambiguous(&batch.ambiguous)
        );
        assert_eq!(ambiguous(&batch.ambiguous), vec!["d3", "d4", "d6"]);
        assert_eq!(stream.out.soft_matched.len(), batch.soft_matched.len());
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
