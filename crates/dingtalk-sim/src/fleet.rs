//! Several DingTalk organizations (corps) in one simulator, and the trunk/branch links
//! (上下级组织) between them.
//!
//! DingTalk serves every corp from the same hosts; what a call sees is decided by its
//! credentials: `gettoken` (or `oauth2/accessToken`, or Stream's `connections/open`) takes an
//! internal app's client id and secret, and the app belongs to exactly one corp, so the token it
//! gets only ever reads and writes that corp. The fleet does the same: one listener, one
//! [`Shared`] per corp, and [`Fleet::corp_for`] picks the corp of each DingTalk request by the
//! credentials, token or Stream ticket it carries. A token of corp A therefore never reaches
//! corp B's data: B's ids asked with A's token are simply not found in A (`60121`, `60003`),
//! which is what DingTalk answers. A request whose credentials, token or ticket no corp knows
//! goes to org 0, which refuses it exactly as a one-corp simulator does — so with one org
//! nothing changes. Each corp has its own credentials, id space, token, rate windows, settings,
//! faults, event log, callback subscription and pusher, and Stream gateway.
//!
//! Trunk/branch links are declared by `POST /_sim/unions` (there is no DingTalk API to create
//! them). After a link, and after every change in the branch, [`Fleet::propagate`] copies the
//! branch into the trunk (`org::union` has what the copy looks like). Links follow DingTalk's
//! limits: at most 5 trunks per branch, 300 branches per trunk, 4 levels, no cycles.

use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use serde::Serialize;
use serde_json::Value;

use crate::events::Origin;
use crate::org::ROOT_DEPT;
use crate::org::union::{BranchSnapshot, LinkedCorp};
use crate::params::Params;
use crate::state::{Propagate, Shared, lock};

/// Header of the new API's access token.
const TOKEN_HEADER: &str = "x-acs-dingtalk-access-token";

/// DingTalk's limits on trunk/branch links (`dingtalk-api.md` §9).
const MAX_TRUNKS_PER_BRANCH: usize = 5;
const MAX_BRANCHES_PER_TRUNK: usize = 300;
const MAX_LEVELS: usize = 4;

/// Every corp the simulator serves.
#[derive(Debug)]
pub(crate) struct Fleet {
    /// One state per corp; index 0 is the corp `/_sim/...` acts on.
    pub corps: Vec<Arc<Shared>>,
    /// The declared links. Its lock is also held while copying, so two changes of one branch
    /// are copied in the order they happened.
    pub unions: Mutex<Vec<UnionLink>>,
    /// DingTalk's limit per egress IP, over every corp's calls (`ip_limit`).
    pub ip: Mutex<crate::ip_limit::IpLimiter>,
}

/// One trunk/branch link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UnionLink {
    /// Index of the trunk corp.
    pub trunk: usize,
    /// Index of the branch corp.
    pub branch: usize,
    /// The trunk department the branch's copy sits under.
    pub parent_dept_id: i64,
}

impl Fleet {
    /// The corp a DingTalk request is for: by the app credentials on the token and Stream
    /// registration paths, by the ticket on `/connect`, by the access token everywhere else;
    /// org 0 when no corp knows them (it then refuses them).
    pub(crate) fn corp_for(&self, parts: &Parts, body: &[u8]) -> &Arc<Shared> {
        let found = if self.corps.len() == 1 {
            None
        } else {
            match parts.uri.path() {
                "/gettoken" => {
                    let params = Params::parse(parts.uri.query(), None, b"").unwrap_or_default();
                    match (params.str("appkey"), params.str("corpid")) {
                        (Some(key), _) => self.find(|c| c.config.client_id == key),
                        (None, Some(corp)) => self.find(|c| c.config.corp_id == corp),
                        (None, None) => None,
                    }
                }
                "/v1.0/oauth2/accessToken" => json_field(body, "appKey")
                    .and_then(|key| self.find(|c| c.config.client_id == key)),
                "/v1.0/gateway/connections/open" => json_field(body, "clientId")
                    .and_then(|key| self.find(|c| c.config.client_id == key)),
                "/connect" => query_field(parts, "ticket")
                    .and_then(|ticket| self.find(|c| c.stream.holds_ticket(&ticket))),
                _ => token_of(parts, body)
                    .and_then(|token| self.find(|c| lock(&c.gate).tokens.holds(&token))),
            }
        };
        found.unwrap_or(&self.corps[0])
    }

    fn find(&self, pred: impl Fn(&Shared) -> bool) -> Option<&Arc<Shared>> {
        self.corps.iter().find(|c| pred(c))
    }

    /// Declares `branch` a branch of `trunk`, its copy under trunk department `parent_dept_id`,
    /// and copies it; `Err` says why the link is refused (nothing changes then).
    pub(crate) fn link(&self, link: UnionLink) -> Result<(), String> {
        {
            let mut unions = lock(&self.unions);
            self.check_link(&unions, &link)?;
            unions.push(link.clone());
        }
        let (trunk, branch) = (&self.corps[link.trunk], &self.corps[link.branch]);
        let branch_corp = linked_corp(branch);
        let trunk_corp = linked_corp(trunk);
        lock(&trunk.org).branches.push(branch_corp);
        lock(&branch.org).trunks.push(trunk_corp);
        self.propagate(link.branch);
        Ok(())
    }

    /// Removes a link and the trunk's copies of the branch.
    pub(crate) fn unlink(&self, trunk: usize, branch: usize) -> Result<UnionLink, String> {
        let mut unions = lock(&self.unions);
        let at = unions
            .iter()
            .position(|l| l.trunk == trunk && l.branch == branch)
            .ok_or_else(|| format!("org {branch} is not a branch of org {trunk}"))?;
        let link = unions.remove(at);
        let (trunk_state, branch_state) = (&self.corps[trunk], &self.corps[branch]);
        let branch_id = branch_state.config.corp_id.clone();
        let trunk_id = trunk_state.config.corp_id.clone();
        lock(&branch_state.org)
            .trunks
            .retain(|c| c.corp_id != trunk_id);
        let empty = BranchSnapshot {
            corp_id: branch_id.clone(),
            depts: Vec::new(),
            users: Vec::new(),
        };
        let ((), changed) = trunk_state.run_here(
            |org| {
                org.branches.retain(|c| c.corp_id != branch_id);
                org.mirror_branch(link.parent_dept_id, &empty);
            },
            Origin::Union,
        );
        if changed {
            self.propagate_locked(&unions, trunk);
        }
        Ok(link)
    }

    /// The links, for `GET /_sim/unions`.
    pub(crate) fn links(&self) -> Vec<UnionLink> {
        lock(&self.unions).clone()
    }

    fn check_link(&self, unions: &[UnionLink], link: &UnionLink) -> Result<(), String> {
        let n = self.corps.len();
        if link.trunk >= n || link.branch >= n {
            return Err(format!(
                "trunk and branch must be orgs 0..{n}, got {} and {}",
                link.trunk, link.branch
            ));
        }
        if link.trunk == link.branch {
            return Err("an org cannot be its own branch".to_owned());
        }
        if unions
            .iter()
            .any(|l| l.trunk == link.trunk && l.branch == link.branch)
        {
            return Err(format!(
                "org {} is already a branch of org {}",
                link.branch, link.trunk
            ));
        }
        if levels_up(unions, link.trunk).contains(&link.branch) {
            return Err(format!(
                "org {} is above org {}: the link would make a cycle",
                link.branch, link.trunk
            ));
        }
        if unions.iter().filter(|l| l.branch == link.branch).count() >= MAX_TRUNKS_PER_BRANCH {
            return Err(format!(
                "org {} already has {MAX_TRUNKS_PER_BRANCH} trunks (DingTalk's limit)",
                link.branch
            ));
        }
        if unions.iter().filter(|l| l.trunk == link.trunk).count() >= MAX_BRANCHES_PER_TRUNK {
            return Err(format!(
                "org {} already has {MAX_BRANCHES_PER_TRUNK} branches (DingTalk's limit)",
                link.trunk
            ));
        }
        let levels = height(unions, link.trunk, true) + 1 + height(unions, link.branch, false) + 1;
        if levels > MAX_LEVELS {
            return Err(format!(
                "the link would make {levels} levels of organizations; DingTalk allows {MAX_LEVELS}"
            ));
        }
        let trunk = lock(&self.corps[link.trunk].org);
        if !trunk.depts.contains_key(&link.parent_dept_id) {
            return Err(format!(
                "parent_dept_id {} is not a department of org {}",
                link.parent_dept_id, link.trunk
            ));
        }
        if trunk.union_depts.contains_key(&link.parent_dept_id) {
            return Err(format!(
                "parent_dept_id {} is itself copied from a branch",
                link.parent_dept_id
            ));
        }
        Ok(())
    }

    fn propagate_locked(&self, unions: &[UnionLink], changed: usize) {
        let mut work = vec![changed];
        while let Some(corp) = work.pop() {
            for link in unions.iter().filter(|l| l.branch == corp) {
                let branch = &self.corps[link.branch];
                let snapshot = lock(&branch.org).branch_snapshot(&branch.config.corp_id);
                let trunk = &self.corps[link.trunk];
                let ((), copied) = trunk.run_here(
                    |org| org.mirror_branch(link.parent_dept_id, &snapshot),
                    Origin::Union,
                );
                if copied {
                    work.push(link.trunk);
                }
            }
        }
    }
}

impl Propagate for Fleet {
    /// Copies corp `changed` into each of its trunks, and on up through theirs.
    fn propagate(&self, changed: usize) {
        let unions = lock(&self.unions);
        self.propagate_locked(&unions, changed);
    }
}

/// What a linked corp is listed as.
fn linked_corp(corp: &Shared) -> LinkedCorp {
    let name = lock(&corp.org)
        .depts
        .get(&ROOT_DEPT)
        .map(|d| d.name.clone())
        .unwrap_or_default();
    LinkedCorp {
        corp_id: corp.config.corp_id.clone(),
        name,
    }
}

/// Every corp above `corp` through the links.
fn levels_up(unions: &[UnionLink], corp: usize) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut frontier = vec![corp];
    while let Some(c) = frontier.pop() {
        for l in unions.iter().filter(|l| l.branch == c) {
            if !seen.contains(&l.trunk) {
                seen.push(l.trunk);
                frontier.push(l.trunk);
            }
        }
    }
    seen
}

/// How many levels of links are above (`up`) or below `corp`.
fn height(unions: &[UnionLink], corp: usize, up: bool) -> usize {
    unions
        .iter()
        .filter(|l| {
            if up {
                l.branch == corp
            } else {
                l.trunk == corp
            }
        })
        .map(|l| 1 + height(unions, if up { l.trunk } else { l.branch }, up))
        .max()
        .unwrap_or(0)
}

/// A string field of a JSON body.
fn json_field(body: &[u8], name: &str) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get(name)?.as_str().map(str::to_owned)
}

/// A query parameter.
fn query_field(parts: &Parts, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The access token a business call carries: the new API's header, or `access_token` in the
/// query or body.
fn token_of(parts: &Parts, body: &[u8]) -> Option<String> {
    if let Some(token) = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(token.to_owned());
    }
    let content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    Params::parse(parts.uri.query(), content_type, body)
        .ok()?
        .str("access_token")
}
