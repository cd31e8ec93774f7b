//! No echo loops (design invariant 5), end to end: what the pusher sends to DingTalk comes back
//! as contacts events; applying them (IN's `apply`) must write nothing and queue nothing,
//! because the pusher left the base equal to what DingTalk now holds.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use dingtalk_sim::SimConfig;
use directory_model::{
    Department, Mobile, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup, User,
};
use directory_store::{Expect, NewInboxEvent};
use serde_json::{Value, json};
use support::World;
use sync_engine::{Applier, ApplyOptions, Clock};

/// Copies every simulator event after `after` into the inbox as the callback route would store
/// a new-dialect push; returns how many.
async fn events_into_inbox(w: &World, after: u64) -> usize {
    let events: Value = w
        .http
        .get(format!("{}/_sim/events?after={after}", w.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = events["events"].as_array().cloned().unwrap_or_default();
    for e in &list {
        let id = e["id"].as_u64().unwrap();
        let mut payload = e["data"].as_object().cloned().unwrap_or_default();
        payload.insert("EventType".into(), e["event_type"].clone());
        payload.insert("EventTime".into(), e["time_ms"].clone());
        payload.insert("CorpId".into(), json!(w.sim.config().corp_id));
        payload.insert("eventId".into(), json!(format!("sim-{id}")));
        w.store
            .inbox_put(NewInboxEvent {
                dedupe_key: format!("sim-{id}"),
                event_type: e["event_type"].as_str().unwrap_or_default().to_owned(),
                payload_json: Value::Object(payload).to_string(),
                received_at_ms: w.clock.now_ms(),
            })
            .await
            .unwrap();
    }
    list.len()
}

#[tokio::test]
async fn the_echo_of_pushed_changes_applies_as_a_no_op() {
    let w = World::start(SimConfig::default()).await;
    let s = &w.store;
    // The usual start: a full import links what DingTalk already has (its built-in role group).
    sync_engine::import(
        &w.ctx(),
        &sync_engine::ImportOptions::default(),
        &sync_engine::import::NoProgress,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut eng = Department::new(OaDeptId(10), "Engineering", Some(OaDeptId(1)));
    eng.order = 4;
    s.create_department(&w.oa(), eng.clone()).await.unwrap();
    let mut boss = User::new(OaUserId::new("boss"), "Boss", &[OaDeptId(10)]);
    boss.mobile = Some(Mobile::mainland("13700000001"));
    s.create_user(&w.oa(), boss).await.unwrap();
    let mut zhang = User::new(
        OaUserId::new("zhang"),
        "Zhang",
        &[OaDeptId(10), OaDeptId(1)],
    );
    zhang.mobile = Some(Mobile::mainland("13700000002"));
    zhang.manager = Some(OaUserId::new("boss"));
    zhang.departments[0].title = Some("Engineer".into());
    zhang.departments[1].order = 3;
    zhang.extension.insert("badge".into(), "7".into());
    zhang.hired_date_ms = Some(1_600_000_000_000);
    s.create_user(&w.oa(), zhang.clone()).await.unwrap();
    eng.managers = vec![OaUserId::new("boss")];
    s.update_department(&w.oa(), eng, None).await.unwrap();
    s.save_role_group(
        &w.oa(),
        RoleGroup {
            id: OaRoleGroupId(100),
            name: "Functions".into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.save_role(
        &w.oa(),
        Role {
            id: OaRoleId(100),
            group: OaRoleGroupId(100),
            name: "Reviewer".into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.assign_role(&w.oa(), &OaUserId::new("zhang"), OaRoleId(100))
        .await
        .unwrap();
    // And an update after the create, so both create and modify events echo back.
    zhang.name = "Zhang San".into();
    zhang.email = Some("zhang@example.com".into());
    s.update_user(&w.oa(), zhang, None).await.unwrap();

    let report = w.pusher().drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    let seq_before = s.latest_seq().await.unwrap();
    let users_before = s.get_user(&OaUserId::new("zhang")).await.unwrap().unwrap();
    let dept_before = s.get_department(OaDeptId(10)).await.unwrap().unwrap();

    let echoed = events_into_inbox(&w, 0).await;
    assert!(
        echoed >= 5,
        "DingTalk reported the pushed changes ({echoed} events)"
    );
    let applier = Applier::new(w.ctx(), ApplyOptions::default());
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.dead, 0, "{stats:?}");
    let changes = s.changes_since(seq_before, 100).await.unwrap();
    let changes: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "{} {} {:?}: {:?} -> {:?}",
                c.kind, c.oa_id, c.op, c.before, c.after
            )
        })
        .collect();
    assert_eq!(
        stats.applied.writes, 0,
        "no directory write: {stats:?} {changes:#?}"
    );
    assert_eq!(stats.applied.pushes, 0, "no outbox entry: {stats:?}");
    assert_eq!(stats.applied.conflicts, 0, "{stats:?}");
    assert_eq!(
        s.latest_seq().await.unwrap(),
        seq_before,
        "no audit row at all"
    );
    let depth = s.outbox_depth().await.unwrap();
    assert_eq!((depth.pending, depth.claimed), (0, 0));
    let users_after = s.get_user(&OaUserId::new("zhang")).await.unwrap().unwrap();
    assert_eq!(users_after.version, users_before.version);
    let dept_after = s.get_department(OaDeptId(10)).await.unwrap().unwrap();
    assert_eq!(dept_after.version, dept_before.version);
    w.finish().await;
}
