//! An OA write must survive events that are applied while its push is still queued: DingTalk's
//! state fetched for such an event does not show the OA change yet. `tests/crash_anywhere.rs`
//! (dingsync) found renames reverted this way: applying one event moved the base to the merged
//! state although only OA held it, and the next event's fetch – DingTalk still had the old
//! name – looked like DingTalk changing the name back.

mod common;

use common::Harness;
use dingtalk_sim::SimConfig;
use directory_model::OaUserId;
use directory_store::WriteCtx;
use reqwest::Method;
use serde_json::json;
use sync_engine::apply::{Applier, ApplyOptions};
use sync_engine::import::{self, ImportOptions, NoProgress};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_unpushed_oa_rename_survives_later_events_of_the_same_user() {
    let h = Harness::start(SimConfig {
        users: 10,
        depts: 2,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    import::import(
        &h.ctx,
        &ImportOptions::default(),
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .expect("import");
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
