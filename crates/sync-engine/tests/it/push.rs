//! The pusher against a real simulator over HTTP and a real SQLite directory: every seed step
//! of the guide pushed from OA, dead letters and their retry, crash-between-accept-and-save,
//! and throttling / injected faults.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dingtalk_sim::SimConfig;
use directory_model::{
    Department, DingDeptId, Mobile, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup,
    User,
};
use directory_store::{EntityKind, Expect, QueueState};
use serde_json::{Value, json};
use support::{Db, World, find};
use sync_engine::plan::{PlanOptions, plan};
use sync_engine::push::{Failpoint, FailpointHook, PushError};

fn user(id: &str, name: &str, depts: &[i64], mobile: &str) -> User {
    let ids: Vec<OaDeptId> = depts.iter().copied().map(OaDeptId).collect();
    let mut u = User::new(OaUserId::new(id), name, &ids);
    u.mobile = Some(Mobile::mainland(mobile));
    u
}

/// Writes the guide's seed steps through the store as the OA API would.
async fn seed_oa(w: &World) {
    let s = &w.store;
    let mut eng = Department::new(OaDeptId(10), "Engineering", Some(OaDeptId(1)));
    eng.order = 5;
    s.create_department(&w.oa(), eng.clone()).await.unwrap();
    let mut platform = Department::new(OaDeptId(11), "Platform", Some(OaDeptId(10)));
    platform.hide = true;
    platform.outer = true;
    s.create_department(&w.oa(), platform).await.unwrap();
    s.save_role_group(
        &w.oa(),
        RoleGroup {
            id: OaRoleGroupId(1),
            name: "Functions".into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.save_role(
        &w.oa(),
        Role {
            id: OaRoleId(1),
            group: OaRoleGroupId(1),
            name: "Reviewer".into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.create_user(&w.oa(), user("boss", "The Boss", &[10], "13800000001"))
        .await
        .unwrap();
    let mut zhang = user("zhang", "Zhang San", &[11, 10], "13800000002");
    zhang.departments[0].title = Some("Engineer".into());
    zhang.departments[1].title = Some("Architect".into());
    zhang.departments[1].order = 7;
    zhang.manager = Some(OaUserId::new("boss"));
    zhang.job_number = Some("E002".into());
    zhang.email = Some("zhang@example.com".into());
    zhang.org_email = Some("zhang@corp.example.com".into());
    zhang.hired_date_ms = Some(1_600_000_000_000);
    zhang.extension.insert("badge".into(), "42".into());
    s.create_user(&w.oa(), zhang).await.unwrap();
    s.assign_role(&w.oa(), &OaUserId::new("zhang"), OaRoleId(1))
        .await
        .unwrap();
    eng.managers = vec![OaUserId::new("boss")];
    s.update_department(&w.oa(), eng, None).await.unwrap();
}

#[tokio::test]
async fn oa_seed_steps_reach_dingtalk_with_every_field() {
    seed_steps_on(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oa_seed_steps_reach_dingtalk_with_every_field_postgres() {
    seed_steps_on(Db::Postgres).await;
}

async fn seed_steps_on(db: Db) {
    let Some(w) = World::start_on(db, SimConfig::default()).await else {
        return;
    };
    seed_oa(&w).await;
    let report = w.pusher().drain().await.unwrap();
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?} {dead:#?}");
    assert_eq!(report.retried, 0, "{report:?}");
    let depth = w.store.outbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.claimed, depth.dead), (0, 0, 0));

    let eng_ding = w.store.ding_id_of(&OaDeptId(10)).await.unwrap().unwrap();
    let plat_ding = w.store.ding_id_of(&OaDeptId(11)).await.unwrap().unwrap();
    let state = w.state().await;

    let eng = find(&state, "departments", "dept_id", &json!(eng_ding.0));
    assert_eq!(eng.len(), 1);
    assert_eq!(eng[0]["name"], "Engineering");
    assert_eq!(eng[0]["parent_id"], json!(1));
    assert_eq!(eng[0]["order"], json!(5));
    assert_eq!(eng[0]["source_identifier"], "dingsync:10");
    assert_eq!(eng[0]["dept_manager_userid_list"], json!(["boss"]));
    let plat = find(&state, "departments", "dept_id", &json!(plat_ding.0));
    assert_eq!(plat[0]["parent_id"], json!(eng_ding.0));
    assert_eq!(plat[0]["hide_dept"], json!(true));
    assert_eq!(plat[0]["outer_dept"], json!(true));

    let zhang = find(&state, "users", "userid", &json!("zhang"));
    assert_eq!(zhang.len(), 1);
    let z = zhang[0];
    assert_eq!(z["name"], "Zhang San");
    assert_eq!(z["mobile"], "13800000002");
    assert_eq!(z["dept_id_list"], json!([plat_ding.0, eng_ding.0]));
    assert_eq!(z["manager_userid"], "boss");
    assert_eq!(z["job_number"], "E002");
    assert_eq!(z["email"], "zhang@example.com");
    assert_eq!(z["org_email"], "zhang@corp.example.com");
    assert_eq!(z["hired_date"], json!(1_600_000_000_000_i64));
    assert_eq!(z["extension"], json!("{\"badge\":\"42\"}"));
    let titles: Vec<(i64, String)> = z["dept_title_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["dept_id"].as_i64().unwrap(),
                t["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        titles.contains(&(plat_ding.0, "Engineer".into())),
        "{titles:?}"
    );
    assert!(
        titles.contains(&(eng_ding.0, "Architect".into())),
        "{titles:?}"
    );
    let orders = z["dept_order_list"].as_array().unwrap();
    assert!(
        orders.contains(&json!({"dept_id": eng_ding.0, "order": 7})),
        "{orders:?}"
    );

    let role_ding = w.store.ding_id_of(&OaRoleId(1)).await.unwrap().unwrap();
    let group_ding = w
        .store
        .ding_id_of(&OaRoleGroupId(1))
        .await
        .unwrap()
        .unwrap();
    let role = find(&state, "roles", "role_id", &json!(role_ding.0));
    assert_eq!(role[0]["name"], "Reviewer");
    assert_eq!(role[0]["group_id"], json!(group_ding.0));
    assert_eq!(role[0]["members"], json!(["zhang"]));
    let group = find(&state, "role_groups", "group_id", &json!(group_ding.0));
    assert_eq!(group[0]["name"], "Functions");

    // The base is what both sides hold: the OA entity as pushed (echo suppression relies on it).
    for id in [OaDeptId(10), OaDeptId(11)] {
        let oa = w.store.get_department(id).await.unwrap().unwrap().entity;
        let base: Department = w
            .store
            .base_get(EntityKind::Department, &id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(base, oa);
        assert_eq!(oa.source_identifier, Some(format!("dingsync:{id}")));
    }
    let oa = w
        .store
        .get_user(&OaUserId::new("zhang"))
        .await
        .unwrap()
        .unwrap()
        .entity;
    let base: User = w
        .store
        .base_get(EntityKind::User, "zhang")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(base, oa);

    // A second drain has nothing to do and calls nothing.
    let again = w.pusher().drain().await.unwrap();
    assert_eq!(again.claimed, 0);
    // Both sides and the base agree: a plan finds nothing (roles and assignments included).
    let p = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(p.is_empty(), "{}", p.render_table());
    w.finish().await;
}

#[tokio::test]
async fn mobile_clash_is_a_dead_letter_that_succeeds_after_a_fix() {
    let w = World::start(SimConfig::default()).await;
    let (status, _) = w
        .admin(
            reqwest::Method::POST,
            "/users",
            json!({"userid": "other", "name": "Other", "mobile": "13900000009", "dept_id_list": "1"}),
        )
        .await;
    assert_eq!(status, 200);
    w.store
        .create_user(&w.oa(), user("li", "Li Si", &[1], "13900000009"))
        .await
        .unwrap();
    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let error = dead[0].last_error.clone().unwrap();
    assert!(error.contains("60104"), "{error}");

    // Later OA edits queue behind nothing: a dead letter blocks nobody. Fix the mobile, and
    // rename, then retry the dead letter: it pushes the *current* entity, and the later entry
    // finds it already there.
    let mut li = w
        .store
        .get_user(&OaUserId::new("li"))
        .await
        .unwrap()
        .unwrap()
        .entity;
    li.mobile = Some(Mobile::mainland("13900000010"));
    w.store
        .update_user(&w.oa(), li.clone(), None)
        .await
        .unwrap();
    li.name = "Li Si (fixed)".into();
    w.store.update_user(&w.oa(), li, None).await.unwrap();
    w.store
        .outbox_retry_dead(dead[0].id, support::T0)
        .await
        .unwrap();
    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    assert_eq!(w.store.outbox_depth().await.unwrap().dead, 0);
    let state = w.state().await;
    let li = find(&state, "users", "userid", &json!("li"));
    assert_eq!(li.len(), 1);
    assert_eq!(li[0]["mobile"], "13900000010");
    assert_eq!(li[0]["name"], "Li Si (fixed)");
    assert_eq!(
        w.store.outbox_get(dead[0].id).await.unwrap().unwrap().state,
        QueueState::Done
    );
    w.sim.shutdown().await;
}

#[tokio::test]
async fn crash_between_accept_and_save_creates_no_duplicate() {
    crash_on(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_accept_and_save_creates_no_duplicate_postgres() {
    crash_on(Db::Postgres).await;
}

/// Crashes once per entity kind right after DingTalk accepted the create, restarts (a new
/// pusher, the clock past the lease), and checks DingTalk holds exactly one of each.
async fn crash_on(db: Db) {
    let Some(w) = World::start_on(db, SimConfig::default()).await else {
        return;
    };
    seed_oa(&w).await;
    let crashed: Arc<Mutex<HashSet<EntityKind>>> = Arc::default();
    let seen = crashed.clone();
    let hook: FailpointHook = Arc::new(move |point, entry| {
        point == Failpoint::AfterAccept
            && entry.kind != EntityKind::RoleAssignment
            && seen.lock().unwrap().insert(entry.kind)
    });
    let mut crashes = 0;
    for _ in 0..20 {
        w.clock.advance(3_600_000);
        match w.pusher().with_failpoint(hook.clone()).drain().await {
            Ok(_) => {
                let d = w.store.outbox_depth().await.unwrap();
                if d.pending + d.claimed == 0 {
                    break;
                }
            }
            Err(PushError::Failpoint(_)) => crashes += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Entries of different kinds can crash in the same round (one batch), so count kinds.
    assert!(crashes >= 2, "{crashes}");
    assert_eq!(
        crashed.lock().unwrap().len(),
        4,
        "one crash per kind: department, user, role group, role"
    );
    assert_eq!(w.store.outbox_depth().await.unwrap().dead, 0);

    let state = w.state().await;
    assert_eq!(
        find(&state, "departments", "name", &json!("Engineering")).len(),
        1
    );
    assert_eq!(
        find(&state, "departments", "name", &json!("Platform")).len(),
        1
    );
    assert_eq!(find(&state, "users", "userid", &json!("zhang")).len(), 1);
    assert_eq!(find(&state, "users", "userid", &json!("boss")).len(), 1);
    assert_eq!(
        find(&state, "role_groups", "name", &json!("Functions")).len(),
        1
    );
    assert_eq!(find(&state, "roles", "name", &json!("Reviewer")).len(), 1);
    let eng = w.store.ding_id_of(&OaDeptId(10)).await.unwrap().unwrap();
    let found = find(&state, "departments", "name", &json!("Engineering"));
    assert_eq!(
        found[0]["dept_id"],
        json!(eng.0),
        "the adopted department is mapped"
    );
    assert_eq!(found[0]["dept_manager_userid_list"], json!(["boss"]));
    let role = find(&state, "roles", "name", &json!("Reviewer"));
    assert_eq!(role[0]["members"], json!(["zhang"]));
    w.finish().await;
}

#[tokio::test]
async fn throttling_and_injected_faults_are_retried_to_convergence() {
    let config = SimConfig {
        qps: 5,
        fault_rate: 0.25,
        slow_answer: Duration::from_millis(400),
        seed: 3,
        ..SimConfig::default()
    };
    let sim = testkit::sim::start(config).await;
    let mut cfg = support::client_config(&sim);
    // Below the slow answer: a slow fault becomes a timeout whose outcome is unknown.
    cfg.request_timeout = Duration::from_millis(250);
    // Send faster than the server allows, so the 90018 path is exercised too.
    cfg.qps_per_api = 0;
    let client = dingtalk_client::DingTalkClient::new(cfg).unwrap();
    let w = World::with_client(sim, client).await;
    let mut dept = Department::new(OaDeptId(20), "Sales", Some(OaDeptId(1)));
    dept.order = 1;
    w.store.create_department(&w.oa(), dept).await.unwrap();
    for i in 0..12 {
        w.store
            .create_user(
                &w.oa(),
                user(
                    &format!("u{i}"),
                    &format!("User {i}"),
                    &[20],
                    &format!("1370000{i:04}"),
                ),
            )
            .await
            .unwrap();
    }
    for _ in 0..50 {
        w.pusher().drain().await.unwrap();
        let d = w.store.outbox_depth().await.unwrap();
        if d.pending + d.claimed == 0 {
            break;
        }
        w.clock.advance(600_000);
    }
    let depth = w.store.outbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.claimed, depth.dead), (0, 0, 0));
    let state = w.state().await;
    assert_eq!(
        find(&state, "departments", "name", &json!("Sales")).len(),
        1
    );
    let sales = w.store.ding_id_of(&OaDeptId(20)).await.unwrap().unwrap();
    for i in 0..12 {
        let u = find(&state, "users", "userid", &json!(format!("u{i}")));
        assert_eq!(u.len(), 1);
        assert_eq!(u[0]["dept_id_list"], json!([sales.0]));
    }
    let calls: Value = w
        .http
        .get(format!("{}/_sim/calls", w.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    eprintln!("calls: {calls}");
    assert_ne!(sales, DingDeptId::ROOT);
    w.sim.shutdown().await;
}

#[tokio::test]
async fn oa_deletions_renames_and_revocations_reach_dingtalk() {
    let w = World::start(SimConfig::default()).await;
    seed_oa(&w).await;
    let mut temp_dept = Department::new(OaDeptId(12), "Temporary", Some(OaDeptId(1)));
    temp_dept.order = 9;
    w.store.create_department(&w.oa(), temp_dept).await.unwrap();
    w.store
        .create_user(&w.oa(), user("temp", "Temp Worker", &[12], "13800000003"))
        .await
        .unwrap();
    w.store
        .create_user(
            &w.oa(),
            user("leaver", "Leaving Soon", &[10], "13800000004"),
        )
        .await
        .unwrap();
    w.pusher().drain().await.unwrap();
    let temp_ding = w.store.ding_id_of(&OaDeptId(12)).await.unwrap().unwrap();

    // OA: delete a user and then their (now empty) department, mark one user as left, rename
    // the role, revoke zhang's role, and rename the role group (DingTalk has no API for that).
    w.store
        .delete_user(&w.oa(), &OaUserId::new("temp"), None)
        .await
        .unwrap();
    w.store
        .delete_department(&w.oa(), OaDeptId(12), None, false)
        .await
        .unwrap();
    let mut leaver = w
        .store
        .get_user(&OaUserId::new("leaver"))
        .await
        .unwrap()
        .unwrap()
        .entity;
    leaver.state = directory_model::UserState::Left;
    w.store.update_user(&w.oa(), leaver, None).await.unwrap();
    w.store
        .save_role(
            &w.oa(),
            Role {
                id: OaRoleId(1),
                group: OaRoleGroupId(1),
                name: "Senior reviewer".into(),
            },
            Expect::Present,
        )
        .await
        .unwrap();
    w.store
        .unassign_role(&w.oa(), &OaUserId::new("zhang"), OaRoleId(1))
        .await
        .unwrap();
    w.store
        .save_role_group(
            &w.oa(),
            RoleGroup {
                id: OaRoleGroupId(1),
                name: "Renamed group".into(),
            },
            Expect::Present,
        )
        .await
        .unwrap();
    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 1, "only the group rename: {report:?}");
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(dead[0].kind, EntityKind::RoleGroup);
    assert!(
        dead[0].last_error.as_deref().unwrap().contains("no API"),
        "{dead:?}"
    );

    let state = w.state().await;
    assert!(find(&state, "users", "userid", &json!("temp")).is_empty());
    assert!(find(&state, "users", "userid", &json!("leaver")).is_empty());
    let departed = state["departed_userids"].as_array().unwrap();
    assert!(departed.contains(&json!("leaver")) && departed.contains(&json!("temp")));
    assert!(find(&state, "departments", "dept_id", &json!(temp_ding.0)).is_empty());
    assert!(w.store.ding_id_of(&OaDeptId(12)).await.unwrap().is_none());
    let role = find(&state, "roles", "name", &json!("Senior reviewer"));
    assert_eq!(role.len(), 1);
    assert_eq!(role[0]["members"], json!([]));
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_pushes_in_the_background_and_stops_on_cancel() {
    let w = World::start(SimConfig::default()).await;
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(30), "Background", Some(OaDeptId(1))),
        )
        .await
        .unwrap();
    let pusher = Arc::new(w.pusher());
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn({
        let (pusher, cancel) = (pusher.clone(), cancel.clone());
        async move { pusher.run(cancel).await }
    });
    // The worker has no completion signal to await, so poll the store under a deadline.
    let pushed = tokio::time::timeout(Duration::from_secs(30), async {
        while w.store.ding_id_of(&OaDeptId(30)).await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        pushed.is_ok(),
        "the background pusher pushed the department"
    );
    cancel.cancel();
    task.await.unwrap().unwrap();
    w.finish().await;
}
