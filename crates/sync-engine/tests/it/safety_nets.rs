//! Safety nets (issue 9 §5) not covered elsewhere: a dead letter can be fixed and retried without
//! losing order, and a held deletion can be rejected. (A partial crawl deleting nothing and a
//! mass deletion held until approved are `import.rs`'s `a_crawl_with_failing_calls_deletes_nothing`
//! and `a_twenty_percent_deletion_is_held_until_approved`; `plan.rs` holds large reconcile
//! deletions until confirmed.)
//!
//! The order case: a parent department DingTalk refuses (its name clashes with a department an
//! administrator created) becomes a dead letter; its child department and a user in the child
//! must not reach DingTalk before it, must not become dead letters themselves however long the
//! operator takes, and must follow in order once the parent is fixed and retried.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use dingtalk_sim::SimConfig;
use directory_model::{Department, Mobile, OaDeptId, OaUserId, User};
use directory_store::{HoldState, Origin};
use reqwest::Method;
use serde_json::json;
use support::{World, find};
use sync_engine::Clock as _;

#[tokio::test]
async fn a_dead_parent_holds_its_children_until_fixed_and_retried_in_order() {
    let w = World::start(SimConfig::default()).await;
    let (s, _) = w
        .admin(
            Method::POST,
            "/depts",
            json!({"name": "Ops", "parent_id": 1}),
        )
        .await;
    assert_eq!(s, 200);
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(10), "Ops", Some(OaDeptId(1))),
        )
        .await
        .unwrap();
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(11), "Ops Night", Some(OaDeptId(10))),
        )
        .await
        .unwrap();
    let mut u = User::new(OaUserId::new("night1"), "Night One", &[OaDeptId(11)]);
    u.mobile = Some(Mobile::mainland("13900000111"));
    w.store.create_user(&w.oa(), u).await.unwrap();

    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 1, "the parent is refused: {report:?}");
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].oa_id, "10");

    // The operator takes two days. The children keep waiting; none becomes a dead letter and
    // none reaches DingTalk before its parent.
    for _ in 0..96 {
        w.clock.advance(30 * 60 * 1000);
        w.pusher().drain().await.unwrap();
    }
    let depth = w.store.outbox_depth().await.unwrap();
    assert_eq!(depth.dead, 1, "only the parent is dead: {depth:?}");
    assert_eq!(depth.pending, 2, "child and member still queued: {depth:?}");
    let state = w.state().await;
    assert!(find(&state, "departments", "name", &json!("Ops Night")).is_empty());
    assert!(find(&state, "users", "userid", &json!("night1")).is_empty());

    // Fix (rename the OA parent), retry: parent, child and member arrive, in order.
    let mut ops = w
        .store
        .get_department(OaDeptId(10))
        .await
        .unwrap()
        .unwrap()
        .entity;
    ops.name = "Ops OA".into();
    w.store.update_department(&w.oa(), ops, None).await.unwrap();
    w.store
        .outbox_retry_dead(dead[0].id, w.clock.now_ms())
        .await
        .unwrap();
    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    assert!(w.store.ding_id_of(&OaDeptId(10)).await.unwrap().is_some());
    // The waiting entries look again at the longest backoff (five minutes).
    w.clock.advance(6 * 60 * 1000);
    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    w.clock.advance(6 * 60 * 1000);
    w.pusher().drain().await.unwrap();
    let depth = w.store.outbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.dead), (0, 0), "{depth:?}");
    let parent = w.store.ding_id_of(&OaDeptId(10)).await.unwrap().unwrap();
    let child = w.store.ding_id_of(&OaDeptId(11)).await.unwrap().unwrap();
    let state = w.state().await;
    let c = find(&state, "departments", "dept_id", &json!(child.0));
    assert_eq!(c[0]["parent_id"], json!(parent.0));
    let m = find(&state, "users", "userid", &json!("night1"));
    assert_eq!(m[0]["dept_id_list"], json!([child.0]));
    w.finish().await;
}

#[tokio::test]
async fn a_rejected_held_deletion_deletes_nothing() {
    let w = World::start(SimConfig::default()).await;
    let ctx = w.ctx();
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(10), "Keep", Some(OaDeptId(1))),
        )
        .await
        .unwrap();
    let held = w
        .store
        .hold_deletion(
            directory_store::EntityKind::Department,
            "10",
            Origin::Import,
            "test: over the threshold",
            w.clock.now_ms(),
        )
        .await
        .unwrap();
    w.store
        .resolve_held_deletion(held, false, "admin", w.clock.now_ms())
        .await
        .unwrap();
    let applied = sync_engine::import::apply_approved_deletions(&ctx)
        .await
        .unwrap();
    assert_eq!(applied, 0);
    assert!(
        w.store
            .get_department(OaDeptId(10))
            .await
            .unwrap()
            .is_some()
    );
    let rows = w.store.held_deletions(None).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, HoldState::Rejected);
    w.finish().await;
}
