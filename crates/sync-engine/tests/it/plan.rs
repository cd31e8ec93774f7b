//! `plan` and `reconcile` against a real simulator and a real SQLite directory: a synced org
//! plans nothing, injected drift on either side plans exactly that drift (with the conflict),
//! reconcile converges, and a large DingTalk-side deletion is held until confirmed.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use dingtalk_sim::SimConfig;
use directory_model::{Department, Mobile, OaDeptId, OaUserId, User, UserState};
use reqwest::Method;
use serde_json::json;
use support::{World, find};
use sync_engine::plan::{Action, PlanOptions, Target, plan, reconcile};

/// (where, what, kind:id, fields, conflicts) of one plan item.
type Row = (Target, Action, String, Vec<String>, Vec<String>);

fn user(id: &str, depts: &[i64], mobile: &str) -> User {
    let ids: Vec<OaDeptId> = depts.iter().copied().map(OaDeptId).collect();
    let mut u = User::new(OaUserId::new(id), format!("User {id}"), &ids);
    u.mobile = Some(Mobile::mainland(mobile));
    u
}

/// An OA org of two departments and `n` users, pushed to DingTalk.
async fn synced_world(n: usize) -> World {
    let w = World::start(SimConfig::default()).await;
    let mut eng = Department::new(OaDeptId(10), "Engineering", Some(OaDeptId(1)));
    eng.order = 2;
    w.store.create_department(&w.oa(), eng).await.unwrap();
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(11), "Platform", Some(OaDeptId(10))),
        )
        .await
        .unwrap();
    for i in 0..n {
        let mut u = user(&format!("u{i}"), &[11], &format!("1360000{i:04}"));
        u.departments[0].title = Some("Engineer".into());
        u.extension.insert("desk".into(), format!("{i}"));
        w.store.create_user(&w.oa(), u).await.unwrap();
    }
    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0);
    w
}

#[tokio::test]
async fn plan_shows_exactly_the_injected_drift_and_reconcile_converges() {
    let w = synced_world(3).await;
    let clean = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(clean.is_empty(), "{}", clean.render_table());

    // DingTalk side: rename a department, hire someone, change a department's order.
    let platform = w.store.ding_id_of(&OaDeptId(11)).await.unwrap().unwrap();
    let eng = w.store.ding_id_of(&OaDeptId(10)).await.unwrap().unwrap();
    let (s, _) = w
        .admin(
            Method::PATCH,
            &format!("/depts/{}", platform.0),
            json!({"name": "Platform Team"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = w
        .admin(
            Method::PATCH,
            &format!("/depts/{}", eng.0),
            json!({"order": 3}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = w
        .admin(
            Method::POST,
            "/users",
            json!({"userid": "wang", "name": "Wang Wu", "mobile": "13500000001",
                   "dept_id_list": platform.0.to_string()}),
        )
        .await;
    assert_eq!(s, 200);
    // OA side (not pushed yet): a job number, and the same department's order (a conflict).
    let mut u0 = w
        .store
        .get_user(&OaUserId::new("u0"))
        .await
        .unwrap()
        .unwrap()
        .entity;
    u0.job_number = Some("E100".into());
    w.store.update_user(&w.oa(), u0, None).await.unwrap();
    let mut d10 = w
        .store
        .get_department(OaDeptId(10))
        .await
        .unwrap()
        .unwrap()
        .entity;
    d10.order = 8;
    w.store.update_department(&w.oa(), d10, None).await.unwrap();

    let p = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    let table = p.render_table();
    let got: Vec<Row> = p
        .items
        .iter()
        .map(|i| {
            (
                i.target,
                i.action,
                format!("{}:{}", i.kind, i.oa_id.clone().unwrap_or_default()),
                i.fields.clone(),
                i.conflicts.clone(),
            )
        })
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        got,
        vec![
            (
                Target::DingTalk,
                Action::Update,
                s("department:10"),
                vec![s("order")],
                vec![s("order")]
            ),
            (
                Target::Oa,
                Action::Update,
                s("department:11"),
                vec![s("name")],
                vec![]
            ),
            (
                Target::DingTalk,
                Action::Update,
                s("user:u0"),
                vec![s("job_number")],
                vec![]
            ),
            (Target::Oa, Action::Create, s("user:wang"), vec![], vec![]),
        ],
        "{table}"
    );
    assert!(!p.deletions_held);
    assert!(table.contains("Platform Team"), "{table}");
    // Every changed field with the target side's value now and the value the change writes.
    let changes: Vec<(String, serde_json::Value, serde_json::Value)> = p
        .items
        .iter()
        .flat_map(|i| &i.changes)
        .map(|c| (c.field.clone(), c.old.clone(), c.new.clone()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (s("order"), json!(3), json!(8)),
            (s("name"), json!("Platform"), json!("Platform Team")),
            (s("job_number"), json!(null), json!("E100")),
        ],
        "{table}"
    );
    assert!(
        table.contains(r#"order: 3 → 8 (conflict: order)"#)
            && table.contains(r#"name: "Platform" → "Platform Team""#)
            && table.contains(r#"job_number: (none) → "E100""#),
        "{table}"
    );
    assert_eq!(
        p.to_json()["items"][1]["changes"][0]["new"],
        "Platform Team"
    );
    assert_eq!(p.to_json()["items"].as_array().unwrap().len(), 4);

    let report = reconcile(&w.ctx(), &w.pusher(), &p, false).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let after = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(after.is_empty(), "{}", after.render_table());
    let state = w.state().await;
    let d = find(&state, "departments", "dept_id", &json!(eng.0));
    assert_eq!(d[0]["order"], json!(8), "OA won the conflict");
    let u0 = find(&state, "users", "userid", &json!("u0"));
    assert_eq!(u0[0]["job_number"], "E100");
    let platform_oa = w.store.get_department(OaDeptId(11)).await.unwrap().unwrap();
    assert_eq!(platform_oa.entity.name, "Platform Team");
    let wang = w
        .store
        .get_user(&OaUserId::new("wang"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wang.entity.departments[0].dept, OaDeptId(11));
    assert_eq!(
        w.store.ding_id_of(&OaUserId::new("wang")).await.unwrap(),
        Some(directory_model::DingUserId::new("wang")),
        "linked like an imported user"
    );
    w.sim.shutdown().await;
}

#[tokio::test]
async fn a_large_dingtalk_side_deletion_is_held_until_confirmed() {
    let w = synced_world(10).await;
    for i in 0..3 {
        let (s, _) = w
            .admin(Method::DELETE, &format!("/users/u{i}"), json!({}))
            .await;
        assert_eq!(s, 200);
    }
    let p = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(p.deletions_held, "{}", p.render_table());
    let deletes: Vec<_> = p
        .items
        .iter()
        .filter(|i| i.action == Action::Delete)
        .collect();
    assert_eq!(deletes.len(), 3);
    assert!(deletes.iter().all(|i| i.held && i.target == Target::Oa));
    assert!(p.render_table().contains("HELD"));

    let report = reconcile(&w.ctx(), &w.pusher(), &p, false).await.unwrap();
    assert_eq!(report.skipped_held, 3);
    let u0 = w
        .store
        .get_user(&OaUserId::new("u0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u0.entity.state, UserState::Active, "held, not applied");

    let report = reconcile(&w.ctx(), &w.pusher(), &p, true).await.unwrap();
    assert_eq!(report.skipped_held, 0);
    assert!(report.failed.is_empty(), "{report:?}");
    for i in 0..3 {
        let u = w
            .store
            .get_user(&OaUserId::new(format!("u{i}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.entity.state, UserState::Left);
    }
    let u3 = w
        .store
        .get_user(&OaUserId::new("u3"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u3.entity.state, UserState::Active);
    let after = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(after.is_empty(), "{}", after.render_table());
    w.sim.shutdown().await;
}
