//! Trunk/branch organizations (上下级组织) over real HTTP: a branch's departments and members,
//! copied by DingTalk into the trunk, are imported into the trunk's OA directory like its own,
//! and OA changes to them are never pushed back (DingTalk refuses them, 60011), while the
//! trunk's own people still are. Asserted on the simulator's call log, not on timing.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support::World;

use dingtalk_sim::SimConfig;
use directory_model::{DingDeptId, DingUserId, OaDeptId, OaUserId};
use reqwest::Method;
use serde_json::{Value, json};
use sync_engine::branch_copies::BranchCopies;

async fn import(w: &World) {
    let report = sync_engine::import::import(
        &w.ctx(),
        &sync_engine::import::ImportOptions::default(),
        &sync_engine::import::NoProgress,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.complete, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_copies_are_imported_but_never_pushed_back_to_the_trunk() {
    // Org 0 (the world's client) is the trunk; org 1 its branch.
    let w = World::start(SimConfig {
        orgs: 2,
        users: 6,
        depts: 2,
        ..SimConfig::default()
    })
    .await;
    let (status, body) = w
        .admin(Method::POST, "/unions", json!({"trunk": 0, "branch": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    import(&w).await;

    let state = w.state().await;
    let copied_dept = state["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["from_union_org"] == true)
        .map(|d| DingDeptId(d["dept_id"].as_i64().unwrap()))
        .expect("a copied department in the trunk");
    let copies = BranchCopies::load(&w.store).await.unwrap();
    assert!(copies.holds(copied_dept), "{copies:?}");
    let users = state["users"].as_array().unwrap();
    let copied_user = users
        .iter()
        .find(|u| u.get("union_emp_ext").is_some_and(|e| !e.is_null()))
        .map(|u| DingUserId::new(u["userid"].as_str().unwrap()))
        .expect("a copied user in the trunk");
    let own_user = users
        .iter()
        .find(|u| u.get("union_emp_ext").is_none_or(Value::is_null))
        .map(|u| DingUserId::new(u["userid"].as_str().unwrap()))
        .expect("an own user in the trunk");

    // Recognised: both copies are in the trunk's OA directory.
    let copy_oa: OaUserId = w
        .store
        .oa_id_of(&copied_user)
        .await
        .unwrap()
        .expect("imported");
    let own_oa: OaUserId = w
        .store
        .oa_id_of(&own_user)
        .await
        .unwrap()
        .expect("imported");
    let dept_oa: OaDeptId = w
        .store
        .oa_id_of(&copied_dept)
        .await
        .unwrap()
        .expect("imported");

    // OA renames the copied user, the copied department and an own user.
    for id in [&copy_oa, &own_oa] {
        let mut u = w.store.get_user(id).await.unwrap().unwrap().entity;
        u.name = format!("{} (OA)", u.name);
        w.store.update_user(&w.oa(), u, None).await.unwrap();
    }
    let mut d = w
        .store
        .get_department(dept_oa)
        .await
        .unwrap()
        .unwrap()
        .entity;
    d.name = format!("{} (OA)", d.name);
    w.store.update_department(&w.oa(), d, None).await.unwrap();

    w.admin(Method::POST, "/calls/reset", json!({})).await;
    let report = w.pusher().drain().await.unwrap();
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?} {dead:#?}");

    let log = testkit::sim::call(
        &w.http,
        &w.sim.base_url(),
        Method::GET,
        "/_sim/calls/log",
        None,
    )
    .await;
    let writes: Vec<(String, String)> = log["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            let p = c["path"].as_str().unwrap_or("");
            p.ends_with("/update") || p.ends_with("/create") || p.ends_with("/delete")
        })
        .map(|c| {
            (
                c["path"].as_str().unwrap_or("").to_owned(),
                c["subject"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        writes
            .iter()
            .any(|(p, s)| p == "/topapi/v2/user/update" && s == own_user.as_str()),
        "the trunk's own user is pushed: {writes:?}"
    );
    assert!(
        !writes
            .iter()
            .any(|(_, s)| s == copied_user.as_str() || s == &copied_dept.0.to_string()),
        "a branch copy was pushed to the trunk: {writes:?}"
    );
    let calls =
        testkit::sim::call(&w.http, &w.sim.base_url(), Method::GET, "/_sim/calls", None).await;
    assert_eq!(
        calls["total"]["errors"], 0,
        "DingTalk refused a push: {calls}"
    );
    w.finish().await;
}
