//! Pushes whose outcome depends on who an entity is on each side (issue 18): a user id OA
//! re-used after a deletion (B2), the version a department keeps while dingsync marks it for
//! itself (B8), and DingTalk's built-in roles, which no API call may change.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use dingtalk_sim::SimConfig;
use directory_model::{
    BUILTIN_ROLE_GROUP, Department, Mobile, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role,
    RoleGroup, User,
};
use directory_store::{Expect, WriteCtx};
use reqwest::Method;
use serde_json::{Value, json};
use support::{World, find};
use sync_engine::Clock;
use sync_engine::plan::{PlanOptions, plan, reconcile};

fn user(id: &str, name: &str, mobile: &str) -> User {
    let mut u = User::new(OaUserId::new(id), name, &[OaDeptId(1)]);
    u.mobile = Some(Mobile::mainland(mobile));
    u
}

/// OA creates `id`, the push creates it in DingTalk, OA deletes it, the push deletes it in
/// DingTalk, and OA creates a user with the same id again.
async fn deleted_and_created_again(w: &World, id: &str) {
    let s = &w.store;
    s.create_user(&w.oa(), user(id, "First Hire", "13800000101"))
        .await
        .unwrap();
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    s.delete_user(&w.oa(), &OaUserId::new(id), None)
        .await
        .unwrap();
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    assert!(find(&w.state().await, "users", "userid", &json!(id)).is_empty());
    s.create_user(&w.oa(), user(id, "Second Hire", "13800000102"))
        .await
        .unwrap();
}

/// The one active DingTalk user named `name`, and the OA user's mapping points at it.
async fn assert_in_dingtalk_once(w: &World, id: &str, name: &str) {
    let state = w.state().await;
    let found = find(&state, "users", "name", &json!(name));
    assert_eq!(found.len(), 1, "{state:#}");
    let ding = w
        .store
        .ding_id_of(&OaUserId::new(id))
        .await
        .unwrap()
        .expect("mapped");
    assert_eq!(found[0]["userid"], json!(ding.as_str()));
}

#[tokio::test]
async fn a_user_deleted_and_created_again_in_oa_is_created_again_in_dingtalk() {
    let w = World::start(SimConfig::default()).await;
    deleted_and_created_again(&w, "rehired").await;
    let r = w.pusher().drain().await.unwrap();
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?} {dead:#?}");
    assert_in_dingtalk_once(&w, "rehired", "Second Hire").await;
    // Later edits go to the new DingTalk user.
    let mut u = w
        .store
        .get_user(&OaUserId::new("rehired"))
        .await
        .unwrap()
        .unwrap();
    u.entity.name = "Second Hire Renamed".into();
    w.store.update_user(&w.oa(), u.entity, None).await.unwrap();
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    assert_in_dingtalk_once(&w, "rehired", "Second Hire Renamed").await;
    let p = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(p.is_empty(), "{}", p.render_table());
    w.finish().await;
}

#[tokio::test]
async fn reconcile_creates_a_user_deleted_and_created_again_in_oa() {
    let w = World::start(SimConfig::default()).await;
    deleted_and_created_again(&w, "rehired").await;
    // The queued push is not run: reconcile alone must bring DingTalk there.
    let p = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(!p.is_empty());
    let report = reconcile(&w.ctx(), &w.pusher(), &p, false).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_in_dingtalk_once(&w, "rehired", "Second Hire").await;
    let again = plan(&w.ctx(), PlanOptions::default()).await.unwrap();
    assert!(again.is_empty(), "{}", again.render_table());
    // The queued entry then finds DingTalk already there.
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    assert_in_dingtalk_once(&w, "rehired", "Second Hire").await;
    w.finish().await;
}

#[tokio::test]
async fn the_etag_of_a_create_stays_good_after_the_push() {
    let w = World::start(SimConfig::default()).await;
    let s = &w.store;
    let created = s
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(40), "Sales", Some(OaDeptId(1))),
        )
        .await
        .unwrap();
    let etag = created.value.version;
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    let pushed = s.get_department(OaDeptId(40)).await.unwrap().unwrap();
    assert_eq!(
        pushed.entity.source_identifier.as_deref(),
        Some("dingsync:40"),
        "the marker is recorded in OA"
    );
    assert_eq!(
        pushed.version, etag,
        "dingsync's own bookkeeping keeps the version"
    );
    let mut renamed = pushed.entity;
    renamed.name = "Sales & Marketing".into();
    s.update_department(&w.oa(), renamed, Some(etag))
        .await
        .expect("the ETag the create returned is still good");
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    let state = w.state().await;
    assert_eq!(
        find(&state, "departments", "name", &json!("Sales & Marketing")).len(),
        1
    );
    w.finish().await;
}

/// DingTalk's built-in role 负责人, as an import leaves it in OA (group 默认), mapped.
async fn imported_builtin_role(w: &World) -> OaRoleId {
    let state = w.state().await;
    let role = state["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["builtin"] == json!(true) && r["name"] == json!("负责人"))
        .cloned()
        .expect("the simulator has the built-in role 负责人");
    let name = role["name"].as_str().unwrap().to_owned();
    let ding_role = directory_model::DingRoleId(role["role_id"].as_i64().unwrap());
    let ding_group = directory_model::DingRoleGroupId(role["group_id"].as_i64().unwrap());
    let import = WriteCtx::import("test", w.clock.now_ms());
    let s = &w.store;
    s.save_role_group(
        &import,
        RoleGroup {
            id: OaRoleGroupId(90),
            name: BUILTIN_ROLE_GROUP.into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.id_map_put(&OaRoleGroupId(90), &ding_group).await.unwrap();
    s.save_role(
        &import,
        Role {
            id: OaRoleId(91),
            group: OaRoleGroupId(90),
            name,
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.id_map_put(&OaRoleId(91), &ding_role).await.unwrap();
    OaRoleId(91)
}

#[tokio::test]
async fn an_assignment_of_a_builtin_role_is_a_dead_letter_without_a_call() {
    let w = World::start(SimConfig::default()).await;
    let role = imported_builtin_role(&w).await;
    w.store
        .create_user(&w.oa(), user("lead", "Team Lead", "13800000103"))
        .await
        .unwrap();
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    // Past whatever check the OA API makes: the entry is queued as an OA write would queue it.
    let ctx = WriteCtx::reconcile("test", w.clock.now_ms()).with_enqueue(true);
    w.store
        .assign_role(&ctx, &OaUserId::new("lead"), role)
        .await
        .unwrap();
    let before = calls(&w).await;
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 1, "{r:?}");
    let dead = w.store.outbox_dead_letters(None, 10).await.unwrap();
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("built-in"), "{error}");
    assert!(error.contains("23004"), "{error}");
    let after = calls(&w).await;
    for path in [
        "/topapi/role/addrolesforemps",
        "/topapi/role/removerolesforemps",
    ] {
        assert_eq!(
            after[path]["calls"].as_u64().unwrap_or(0),
            before[path]["calls"].as_u64().unwrap_or(0),
            "{path} was called"
        );
    }
    w.finish().await;
}

/// The simulator's calls per path.
async fn calls(w: &World) -> Value {
    let (_, body) = w.admin(Method::GET, "/calls", json!({})).await;
    body["by_path"].clone()
}
