//! The member listing of the import: `v2/user/list` for every in-scope department the walk
//! finds, each listed person handed on once (to the detail reads) as soon as their page
//! arrives, so the per-user reads start while the tree is still being walked.
//!
//! Memory: what stays for the whole run is the set of userids already handed on (ids only; the
//! deletion phase needs it anyway), the member count per department, and — only without
//! `user_details` — the people in several departments whose other listings have not arrived
//! yet (their `dept_order_list` is gathered from every listing; `v2/user/get` reports it itself,
//! so with details nobody waits). Everything else flows through a bounded channel: when the
//! reads fall behind, the listing waits.

use std::collections::{HashMap, HashSet};

use dingtalk_client::DingTalkClient;
use dingtalk_proto::{
    DingDeptId, DingUserId,
    user::{DeptOrder, User},
};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

/// What the listing saw, besides the people it handed on.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Every userid listed (in-scope departments only).
    pub seen: HashSet<DingUserId>,
    /// Direct members listed per department (for the minimum number of list pages).
    pub members_per_dept: HashMap<DingDeptId, usize>,
    /// One line per failed department listing.
    pub failures: Vec<String>,
}

/// All member pages of one department, tagged with it; in a task of its own, so it finishes
/// while the listing waits for room downstream (see [`super::users::detached`]).
async fn members(
    client: DingTalkClient,
    id: DingDeptId,
) -> (DingDeptId, Result<Vec<User>, String>) {
    let listed = super::users::detached(async move { client.user_list_all(id).await }).await;
    (id, listed.and_then(|r| r.map_err(|e| e.to_string())))
}

/// A person in several departments, waiting for the listings of the others.
struct Waiting {
    /// The person as first listed, `dept_order_list` gathered so far.
    user: User,
    /// Listings of their departments still to come.
    remaining: usize,
}

/// Hands on each person once; see the module doc.
struct Dedupe {
    /// Whether the details read supplies `dept_order_list` (nobody waits).
    details: bool,
    /// What the listing saw.
    listing: Listing,
    /// People waiting for their other departments' listings (without details only).
    waiting: HashMap<DingUserId, Waiting>,
}

impl Dedupe {
    /// The people of one department's listing that are ready to be handed on.
    fn take(&mut self, dept: DingDeptId, list: Vec<User>) -> Vec<User> {
        self.listing.members_per_dept.insert(dept, list.len());
        let mut ready = Vec::new();
        for mut u in list {
            let order = DeptOrder {
                dept_id: dept,
                order: u.dept_order.unwrap_or(0),
            };
            if !self.listing.seen.insert(u.userid.clone()) {
                if let Some(w) = self.waiting.get_mut(&u.userid) {
                    w.user
                        .dept_order_list
                        .get_or_insert_with(Vec::new)
                        .push(order);
                    w.remaining = w.remaining.saturating_sub(1);
                    if w.remaining == 0
                        && let Some(w) = self.waiting.remove(&u.userid)
                    {
                        ready.push(finish(w.user));
                    }
                }
                continue;
            }
            if self.details {
                ready.push(u);
                continue;
            }
            u.dept_order_list = Some(vec![order]);
            let memberships = u.dept_id_list.as_ref().map_or(0, Vec::len);
            if memberships > 1 {
                let remaining = memberships - 1;
                self.waiting
                    .insert(u.userid.clone(), Waiting { user: u, remaining });
            } else {
                ready.push(finish(u));
            }
        }
        ready
    }

    /// Everyone still waiting (their other departments are out of scope or failed).
    fn flush(&mut self) -> Vec<User> {
        self.waiting.drain().map(|(_, w)| finish(w.user)).collect()
    }
}

/// Sorts and dedupes a gathered `dept_order_list`.
fn finish(mut user: User) -> User {
    if let Some(list) = &mut user.dept_order_list {
        list.sort_by_key(|o| o.dept_id);
        list.dedup_by_key(|o| o.dept_id);
    }
    user
}

/// Lists the members of every department arriving on `depts` (until the walk drops its
/// sender), `concurrency` departments at a time, and sends each person once to `out`. Stops
/// early (returning what it saw) when `out` is closed, i.e. the import is failing.
pub(super) async fn list_members(
    client: &DingTalkClient,
    concurrency: usize,
    details: bool,
    mut depts: mpsc::UnboundedReceiver<DingDeptId>,
    out: mpsc::Sender<User>,
) -> Listing {
    let concurrency = concurrency.max(1);
    let mut dedupe = Dedupe {
        details,
        listing: Listing::default(),
        waiting: HashMap::new(),
    };
    let mut listing = FuturesUnordered::new();
    let mut walk_open = true;
    loop {
        if !walk_open && listing.is_empty() {
            break;
        }
        tokio::select! {
            next = depts.recv(), if walk_open && listing.len() < concurrency => match next {
                Some(d) => listing.push(members(client.clone(), d)),
                None => walk_open = false,
            },
            Some((dept, result)) = listing.next(), if !listing.is_empty() => match result {
                Ok(list) => {
                    for u in dedupe.take(dept, list) {
                        if out.send(u).await.is_err() {
                            return dedupe.listing;
                        }
                    }
                }
                Err(e) => dedupe
                    .listing
                    .failures
                    .push(format!("listing members of department {dept}: {e}")),
            },
        }
    }
    for u in dedupe.flush() {
        if out.send(u).await.is_err() {
            break;
        }
    }
    dedupe.listing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, depts: &[i64], order: i64) -> User {
        serde_json::from_value(serde_json::json!({
            "userid": id, "name": id, "dept_id_list": depts, "dept_order": order
        }))
        .expect("a user")
    }

    fn dedupe(details: bool) -> Dedupe {
        Dedupe {
            details,
            listing: Listing::default(),
            waiting: HashMap::new(),
        }
    }

    #[test]
    fn with_details_each_person_is_handed_on_at_the_first_listing() {
        let mut d = dedupe(true);
        let first = d.take(
            DingDeptId(2),
            vec![user("a", &[2, 3], 5), user("b", &[2], 1)],
        );
        assert_eq!(first.len(), 2);
        let second = d.take(DingDeptId(3), vec![user("a", &[2, 3], 7)]);
        assert!(second.is_empty(), "a was handed on already");
        assert!(d.flush().is_empty());
        assert_eq!(d.listing.seen.len(), 2);
        assert_eq!(d.listing.members_per_dept[&DingDeptId(2)], 2);
    }

    #[test]
    fn without_details_a_person_waits_for_every_department_listing() {
        let mut d = dedupe(false);
        let first = d.take(
            DingDeptId(3),
            vec![user("a", &[2, 3], 7), user("b", &[3], 1)],
        );
        let ids: Vec<&str> = first.iter().map(|u| u.userid.0.as_str()).collect();
        assert_eq!(ids, vec!["b"], "a waits for department 2");
        let second = d.take(DingDeptId(2), vec![user("a", &[2, 3], 5)]);
        assert_eq!(second.len(), 1);
        let orders: Vec<(i64, i64)> = second[0]
            .dept_order_list
            .iter()
            .flatten()
            .map(|o| (o.dept_id.0, o.order))
            .collect();
        assert_eq!(orders, vec![(2, 5), (3, 7)], "gathered and sorted");
    }

    #[test]
    fn without_details_people_whose_other_department_is_never_listed_come_at_the_end() {
        let mut d = dedupe(false);
        assert!(
            d.take(DingDeptId(3), vec![user("a", &[2, 3], 7)])
                .is_empty()
        );
        let rest = d.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].dept_order_list.as_ref().map(Vec::len), Some(1));
    }
}
