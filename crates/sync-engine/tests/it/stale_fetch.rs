//! An OA write must survive events that are applied while its push is still queued: DingTalk's
//! state fetched for such an event does not show the OA change yet. `tests/it/crash_anywhere.rs`
//! (dingsync) found renames reverted this way: applying one event moved the base to the merged
//! state although only OA held it, and the next event's fetch – DingTalk still had the old
//! name – looked like DingTalk changing the name back.

use crate::common;

use common::Harness;
use dingtalk_sim::SimConfig;
use directory_model::OaUserId;
use directory_store::WriteCtx;
use reqwest::Method;
use serde_json::json;
use sync_engine::apply::{Applier, ApplyOptions};

#[tokio::test]
async fn an_unpushed_oa_rename_survives_later_events_of_the_same_user() {
    let h = Harness::start(SimConfig {
        users: 10,
        depts: 2,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    common::import_all(&h.ctx).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(1),
            ..ApplyOptions::default()
        },
    );
    let mut cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    let userid = h.state().await["users"][2]["userid"]
        .as_str()
        .expect("userid")
        .to_owned();
    let oa_id = OaUserId::new(userid.clone());

    // OA renames the user; the push stays queued (no pusher runs in this test).
    let mut user = h.store.get_user(&oa_id).await.unwrap().unwrap().entity;
    user.name = "OA 新名".into();
    h.store
        .update_user(&WriteCtx::oa("hr", 2), user, None)
        .await
        .expect("OA write");

    // Two DingTalk-side edits of other fields, each applied before the push.
    for (field, value) in [("work_place", "上海"), ("remark", "备注")] {
        h.admin(
            Method::PATCH,
            &format!("/users/{userid}"),
            json!({ field: value }),
        )
        .await;
        cursor = h.events_into_inbox(cursor).await;
        let stats = applier.drain().await.expect("drain");
        assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    }

    let merged = h.store.get_user(&oa_id).await.unwrap().unwrap().entity;
    assert_eq!(merged.name, "OA 新名", "the OA rename was reverted");
    assert_eq!(merged.work_place.as_deref(), Some("上海"));
    assert_eq!(merged.remark.as_deref(), Some("备注"));
}

/// An OA-created user whose create reached DingTalk but whose base was not saved yet (its event
/// overtook the pusher's bookkeeping, or a crash came in between), renamed in OA since: the
/// event must not take DingTalk's older name for a DingTalk change.
#[tokio::test]
async fn an_oa_created_user_without_a_base_keeps_later_oa_edits() {
    let h = Harness::start(SimConfig {
        users: 5,
        depts: 1,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    common::import_all(&h.ctx).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(1),
            ..ApplyOptions::default()
        },
    );
    let cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    // OA creates the user (the create is queued), shaped like an imported one …
    let state = h.state().await;
    let model = &state["users"][0];
    let template = h
        .store
        .get_user(&OaUserId::new(model["userid"].as_str().expect("userid")))
        .await
        .expect("read")
        .expect("imported")
        .entity;
    let mut user = template;
    user.id = OaUserId::new("oa.new");
    user.name = "初名".into();
    if let Some(mobile) = &mut user.mobile {
        mobile.number = "13700009999".into();
    }
    user.email = None;
    user.job_number = None;
    user.manager = None;
    h.store
        .create_user(&WriteCtx::oa("hr", 2), user.clone())
        .await
        .expect("OA create");
    // … which reaches DingTalk (the pusher's part, done here by hand: no base is saved) …
    let depts: Vec<String> = model["dept_id_list"]
        .as_array()
        .expect("departments")
        .iter()
        .map(ToString::to_string)
        .collect();
    h.admin(
        Method::POST,
        "/users",
        json!({"userid": "oa.new", "name": "初名", "mobile": "13700009999",
               "dept_id_list": depts.join(",")}),
    )
    .await;
    // … and OA renames it before the event is applied.
    user.name = "改名".into();
    h.store
        .update_user(&WriteCtx::oa("hr", 3), user, None)
        .await
        .expect("OA rename");
    h.events_into_inbox(cursor).await;
    let stats = applier.drain().await.expect("drain");
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    let now = h
        .store
        .get_user(&OaUserId::new("oa.new"))
        .await
        .unwrap()
        .unwrap()
        .entity;
    assert_eq!(now.name, "改名", "the OA rename was reverted");
}

/// A user deleted in OA whose deletion is not pushed yet, changed in DingTalk meanwhile: the
/// event leaves the deletion standing and is not a dead letter.
#[tokio::test]
async fn an_event_for_a_user_deleted_in_oa_is_no_dead_letter() {
    let h = Harness::start(SimConfig {
        users: 20,
        depts: 2,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    common::import_all(&h.ctx).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(1),
            ..ApplyOptions::default()
        },
    );
    let cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    // Someone holding a role, so that applying would also sync role assignments.
    let state = h.state().await;
    let holder = state["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .find(|u| {
            // Not anybody's manager, so that OA lets the user go.
            !state["users"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x["manager_userid"] == u.as_str())
        })
        .expect("a role holder who manages nobody");
    let oa_id = OaUserId::new(holder.clone());
    h.store
        .delete_user(&WriteCtx::oa("hr", 2), &oa_id, None)
        .await
        .expect("OA delete");
    h.admin(
        Method::PATCH,
        &format!("/users/{holder}"),
        json!({"remark": "still here"}),
    )
    .await;
    h.events_into_inbox(cursor).await;
    let stats = applier.drain().await.expect("drain");
    assert_eq!(
        stats.dead + stats.retried,
        0,
        "{stats:?}: {:?}",
        h.store.inbox_dead_letters(None, 10).await
    );
    assert!(
        h.store.get_user(&oa_id).await.unwrap().is_none(),
        "the OA deletion stands"
    );
}
