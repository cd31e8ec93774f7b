//! `[scope.to_oa]` through the full import, against the simulator over HTTP and a real SQLite
//! directory: DingTalk entities out of scope never reach the OA directory, and one that leaves
//! the scope later is handled like a deletion in DingTalk (marked `Left`, under the deletion
//! threshold and its holds). Who is in scope is computed from the simulator's own state.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};

use dingtalk_sim::SimConfig;
use directory_model::{OaUserId, UserState};
use directory_store::HoldState;
use serde_json::{Value, json};
use sync_engine::import::{self, ImportOptions, ImportReport, NoProgress};
use sync_engine::rules::Rules;
use sync_engine::{Policy, SyncContext};
use tokio_util::sync::CancellationToken;

use crate::common::Harness;

fn scope(to_oa: Value) -> Rules {
    let m = serde_json::from_value(json!({})).unwrap();
    let s = serde_json::from_value(json!({ "to_oa": to_oa })).unwrap();
    Rules::new(mapping::load(&m, &s).unwrap())
}

fn ctx_with(h: &Harness, rules: &Rules) -> SyncContext {
    let policy = Policy {
        rules: rules.clone(),
        ..Policy::default()
    };
    SyncContext::new(h.store.clone(), h.ctx.client.clone(), policy)
        .with_clock(h.clock.clone())
        .with_actor("test")
}

async fn import_with(ctx: &SyncContext) -> ImportReport {
    import::import(
        ctx,
        &ImportOptions::default(),
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .expect("import succeeds")
}

fn org(users: usize, depts: usize) -> SimConfig {
    SimConfig {
        users,
        depts,
        qps: 0,
        ..SimConfig::default()
    }
}

/// The simulator's users: userid → (job number, department ids).
fn sim_users(state: &Value) -> HashMap<String, (String, Vec<i64>)> {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let depts = u["dept_id_list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_i64().unwrap())
                .collect();
            (
                u["userid"].as_str().unwrap().to_owned(),
                (u["job_number"].as_str().unwrap().to_owned(), depts),
            )
        })
        .collect()
}

/// `top` and every department below it, from the simulator's tree.
fn subtree(state: &Value, top: i64) -> BTreeSet<i64> {
    let parents: HashMap<i64, i64> = state["departments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some((d["dept_id"].as_i64()?, d["parent_id"].as_i64()?)))
        .collect();
    parents
        .keys()
        .copied()
        .filter(|d| {
            let mut cur = Some(*d);
            while let Some(c) = cur {
                if c == top {
                    return true;
                }
                cur = parents.get(&c).copied();
            }
            false
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_import_leaves_entities_out_of_scope_to_oa_out_of_the_directory() {
    let h = Harness::start(org(80, 8)).await;
    let state = h.state().await;
    // A department with members below the root, and its subtree.
    let users = sim_users(&state);
    let top = users
        .values()
        .flat_map(|(_, d)| d.iter().copied())
        .find(|d| *d != 1)
        .unwrap();
    let out_depts = subtree(&state, top);
    let rules = scope(json!({
        "users": {"no_job_ending_in_7": "!user.job_number.endsWith('7')"},
        "departments": {"not_that_branch": format!("!({top} in ancestors)")},
    }));
    let report = import_with(&ctx_with(&h, &rules)).await;
    assert!(report.complete, "{:?}", report.failures);

    let expected: BTreeSet<String> = users
        .iter()
        .filter(|(_, (job, depts))| {
            !job.ends_with('7') && depts.iter().any(|d| !out_depts.contains(d))
        })
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        expected.len() < users.len() - 5,
        "the rules leave people out"
    );
    let snap = h.store.snapshot().await.unwrap();
    let imported: BTreeSet<String> = snap.users.keys().map(|u| u.as_str().to_owned()).collect();
    assert_eq!(imported, expected);
    // No OA department stands for one out of scope.
    let names: BTreeSet<&str> = state["departments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| out_depts.contains(&d["dept_id"].as_i64().unwrap()))
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(!names.is_empty());
    let in_scope_depts = state["departments"].as_array().unwrap().len() - out_depts.len();
    assert_eq!(snap.departments.len(), in_scope_depts, "{names:?} left out");
    // Memberships of out-of-scope departments are dropped, the rest kept.
    for u in snap.users.values() {
        let (_, depts) = &users[u.id.as_str()];
        let kept = depts.iter().filter(|d| !out_depts.contains(d)).count();
        assert_eq!(u.departments.len(), kept, "{}", u.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_scope_is_a_deletion_under_the_threshold_and_its_holds() {
    let h = Harness::start(org(50, 5)).await;
    let report = import_with(&h.ctx).await;
    assert!(report.complete, "{:?}", report.failures);
    assert_eq!(h.store.snapshot().await.unwrap().users.len(), 50);
    let users = sim_users(&h.state().await);
    let ending = |digits: &str| -> BTreeSet<OaUserId> {
        users
            .iter()
            .filter(|(_, (job, _))| digits.chars().any(|c| job.ends_with(c)))
            .map(|(id, _)| OaUserId::new(id.as_str()))
            .collect()
    };

    // Five of fifty leave the scope: within the threshold, they are marked as left.
    let narrower = scope(json!({"users": {"r": "!user.job_number.endsWith('3')"}}));
    let report = import_with(&ctx_with(&h, &narrower)).await;
    assert!(report.complete, "{:?}", report.failures);
    let left: BTreeSet<OaUserId> = report.deletions.users_left.iter().cloned().collect();
    assert_eq!(left, ending("3"));
    assert_eq!(left.len(), 5);
    let snap = h.store.snapshot().await.unwrap();
    for id in &left {
        assert_eq!(snap.users[id].state, UserState::Left, "{id}");
    }

    // Ten more of the 45 active: above the threshold, every one is held, none applied.
    let much_narrower = scope(
        json!({"users": {"r": "!(user.job_number.endsWith('1') || user.job_number.endsWith('2') || user.job_number.endsWith('3'))"}}),
    );
    let report = import_with(&ctx_with(&h, &much_narrower)).await;
    assert_eq!(report.deletions.held, 10, "{:?}", report.deletions);
    assert!(report.deletions.users_left.is_empty());
    let held = h.store.held_deletions(Some(HoldState::Held)).await.unwrap();
    let held_ids: BTreeSet<OaUserId> = held
        .iter()
        .map(|d| OaUserId::new(d.oa_id.as_str()))
        .collect();
    let expected: BTreeSet<OaUserId> = ending("12");
    assert_eq!(held_ids, expected);
    let snap = h.store.snapshot().await.unwrap();
    assert!(
        expected
            .iter()
            .all(|id| snap.users[id].state == UserState::Active)
    );

    // Approved, they leave.
    for d in held {
        h.store
            .resolve_held_deletion(d.id, true, "admin", 5)
            .await
            .unwrap();
    }
    let ctx = ctx_with(&h, &much_narrower);
    assert_eq!(import::apply_approved_deletions(&ctx).await.unwrap(), 10);
    let snap = h.store.snapshot().await.unwrap();
    assert!(
        expected
            .iter()
            .all(|id| snap.users[id].state == UserState::Left)
    );

    // Back in scope: an ordinary import brings them back as active users.
    let report = import_with(&h.ctx).await;
    assert!(report.complete, "{:?}", report.failures);
    let snap = h.store.snapshot().await.unwrap();
    assert!(
        snap.users.values().all(|u| u.state == UserState::Active),
        "everyone in scope again is active"
    );
}
