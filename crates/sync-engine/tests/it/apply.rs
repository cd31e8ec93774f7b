//! Event application: every `/_sim` administrator change reaches the directory through the
//! simulator's events alone (read from `/_sim/events` into the inbox as HTTP push payloads),
//! duplicates and reordering are harmless, and both-sides edits merge with OA winning.

use crate::common;

use common::{Harness, assert_converged, differences};
use dingtalk_sim::SimConfig;
use directory_model::{DingUserId, OaUserId, UserState};
use directory_store::{EntityKind, NewInboxEvent, Origin, QueueState, WriteCtx};
use reqwest::Method;
use serde_json::{Value, json};
use sync_engine::apply::{Applier, ApplyOptions};
use tokio_util::sync::CancellationToken;

async fn imported(users: usize, depts: usize) -> (Harness, Applier, u64) {
    imported_with(users, depts, |_| {}).await
}

async fn imported_with(
    users: usize,
    depts: usize,
    tune: impl FnOnce(&mut dingtalk_client::ClientConfig),
) -> (Harness, Applier, u64) {
    let config = SimConfig {
        users,
        depts,
        qps: 0,
        slow_answer: std::time::Duration::from_millis(1500),
        ..SimConfig::default()
    };
    let h = Harness::start_with(config, sync_engine::Policy::default(), tune).await;
    common::import_all(&h.ctx).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(1),
            ..ApplyOptions::default()
        },
    );
    // Events the generator produced before the import are already reflected.
    let last = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    (h, applier, last)
}

fn result(v: &Value, key: &str) -> Value {
    v.get("result")
        .and_then(|r| r.get(key))
        .or_else(|| v.get(key))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn sync(h: &Harness, applier: &Applier, cursor: &mut u64) {
    *cursor = h.events_into_inbox(*cursor).await;
    let stats = applier.drain().await.expect("drain");
    assert_eq!(
        stats.dead,
        0,
        "{stats:?}: {:?}",
        h.store.inbox_dead_letters(None, 10).await
    );
    assert_eq!(stats.retried, 0, "{stats:?}");
}

#[tokio::test]
async fn every_admin_change_reaches_the_directory_through_events() {
    let (h, applier, mut cursor) = imported(40, 5).await;
    let state = h.state().await;
    let user = |i: usize| state["users"][i]["userid"].as_str().unwrap().to_owned();
    let dept = |i: usize| state["departments"][i]["dept_id"].as_i64().unwrap();

    // Department created under a department, then a hire into it with a manager and a title.
    let created = h
        .admin(
            Method::POST,
            "/depts",
            json!({"name": "新部门", "parent_id": dept(2), "order": 3}),
        )
        .await;
    let new_dept = result(&created, "dept_id").as_i64().expect("dept id");
    h.admin(
        Method::POST,
        "/users",
        json!({
            "userid": "hire1", "name": "新员工", "mobile": "13912345678",
            "dept_id_list": new_dept.to_string(), "title": "工程师",
            "manager_userid": user(0), "job_number": "N-1", "email": "hire1@example.com",
            "extension": "{\"爱好\":\"跑步\"}", "hired_date": 1_700_000_000_000i64
        }),
    )
    .await;
    sync(&h, &applier, &mut cursor).await;
    assert_converged(&h).await;

    // A change, a move, a rename and a department move.
    h.admin(
        Method::PATCH,
        &format!("/users/{}", user(3)),
        json!({"name": "改名", "work_place": "杭州"}),
    )
    .await;
    h.admin(
        Method::PATCH,
        &format!("/users/{}", user(4)),
        json!({"dept_id_list": format!("{},{}", dept(1), new_dept)}),
    )
    .await;
    h.admin(
        Method::PATCH,
        &format!("/depts/{}", dept(3)),
        json!({"name": "重命名部"}),
    )
    .await;
    h.admin(
        Method::PATCH,
        &format!("/depts/{new_dept}"),
        json!({"parent_id": dept(1)}),
    )
    .await;
    sync(&h, &applier, &mut cursor).await;
    assert_converged(&h).await;

    // Leave, then rehire: the same OA user, active again.
    h.admin(Method::DELETE, &format!("/users/{}", user(5)), json!({}))
        .await;
    sync(&h, &applier, &mut cursor).await;
    let left = h
        .store
        .get_user(&OaUserId::new(user(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(left.entity.state, UserState::Left);
    assert_converged(&h).await;
    h.admin(
        Method::POST,
        &format!("/users/{}/rehire", user(5)),
        json!({"dept_id_list": dept(1).to_string()}),
    )
    .await;
    sync(&h, &applier, &mut cursor).await;
    let back = h
        .store
        .get_user(&OaUserId::new(user(5)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.entity.state, UserState::Active);
    assert_converged(&h).await;

    // Roles: a group, a role, assignment, rename, unassignment, deletion.
    let g = h
        .admin(Method::POST, "/role-groups", json!({"name": "项目角色"}))
        .await;
    let group = result(&g, "groupId");
    let r = h
        .admin(
            Method::POST,
            "/roles",
            json!({"roleName": "评审", "groupId": group}),
        )
        .await;
    let role = result(&r, "roleId").as_i64().expect("role id");
    h.admin(
        Method::POST,
        "/roles/assign",
        json!({"roleIds": role.to_string(), "userIds": format!("{},{}", user(6), user(7))}),
    )
    .await;
    sync(&h, &applier, &mut cursor).await;
    assert_converged(&h).await;
    h.admin(
        Method::PATCH,
        &format!("/roles/{role}"),
        json!({"roleName": "终审"}),
    )
    .await;
    h.admin(
        Method::POST,
        "/roles/unassign",
        json!({"roleIds": role.to_string(), "userIds": user(6)}),
    )
    .await;
    sync(&h, &applier, &mut cursor).await;
    assert_converged(&h).await;
    h.admin(
        Method::POST,
        "/roles/unassign",
        json!({"roleIds": role.to_string(), "userIds": user(7)}),
    )
    .await;
    h.admin(Method::DELETE, &format!("/roles/{role}"), json!({}))
        .await;
    sync(&h, &applier, &mut cursor).await;
    assert_converged(&h).await;

    // Department removal (after its members moved out).
    h.admin(
        Method::PATCH,
        &format!("/users/{}", user(4)),
        json!({"dept_id_list": dept(1).to_string()}),
    )
    .await;
    h.admin(
        Method::PATCH,
        "/users/hire1",
        json!({"dept_id_list": dept(1).to_string()}),
    )
    .await;
    h.admin(Method::DELETE, &format!("/depts/{new_dept}"), json!({}))
        .await;
    sync(&h, &applier, &mut cursor).await;
    assert_converged(&h).await;

    // Nothing of this is pushed back to DingTalk: it all came from there.
    assert_eq!(h.store.outbox_depth().await.unwrap().pending, 0);
}

#[tokio::test]
async fn duplicated_and_reordered_events_are_harmless_and_replays_write_nothing() {
    let (h, applier, cursor) = imported(30, 4).await;
    let state = h.state().await;
    let dept = state["departments"][1]["dept_id"].as_i64().unwrap();
    // A department is created and a person hired into it; the events arrive newest first and
    // twice each (under different dedupe keys, as a redelivery without an event id would).
    let created = h
        .admin(
            Method::POST,
            "/depts",
            json!({"name": "乱序部", "parent_id": dept}),
        )
        .await;
    let new_dept = result(&created, "dept_id").as_i64().unwrap();
    h.admin(
        Method::POST,
        "/users",
        json!({"userid": "late1", "name": "乱序", "mobile": "13700000001",
               "dept_id_list": new_dept.to_string()}),
    )
    .await;
    h.admin(Method::PATCH, "/users/late1", json!({"title": "主管"}))
        .await;
    let events = h.get(&format!("/events?after={cursor}")).await["events"]
        .as_array()
        .cloned()
        .unwrap();
    assert!(events.len() >= 3);
    for (round, e) in events.iter().rev().chain(events.iter()).enumerate() {
        let mut payload = e["data"].as_object().cloned().unwrap();
        payload.insert("EventType".into(), e["event_type"].clone());
        h.store
            .inbox_put(NewInboxEvent {
                dedupe_key: format!("copy-{round}"),
                event_type: e["event_type"].as_str().unwrap().to_owned(),
                payload_json: Value::Object(payload).to_string(),
                received_at_ms: 1,
            })
            .await
            .unwrap();
    }
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.events, events.len() * 2, "{stats:?}");
    assert_converged(&h).await;

    // Replaying every event once more changes nothing and queues nothing.
    let seq = h.store.latest_seq().await.unwrap();
    for (round, e) in events.iter().enumerate() {
        let mut payload = e["data"].as_object().cloned().unwrap();
        payload.insert("EventType".into(), e["event_type"].clone());
        h.store
            .inbox_put(NewInboxEvent {
                dedupe_key: format!("replay-{round}"),
                event_type: e["event_type"].as_str().unwrap().to_owned(),
                payload_json: Value::Object(payload).to_string(),
                received_at_ms: 1,
            })
            .await
            .unwrap();
    }
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.applied.writes, 0, "{stats:?}");
    assert_eq!(h.store.latest_seq().await.unwrap(), seq, "no audit rows");
    assert_eq!(h.store.outbox_depth().await.unwrap().pending, 0);
}

#[tokio::test]
async fn both_sides_editing_one_user_converge_to_oa_with_the_conflict_recorded() {
    let (h, applier, mut cursor) = imported(20, 3).await;
    let state = h.state().await;
    let userid = state["users"][2]["userid"].as_str().unwrap().to_owned();
    let oa_id = OaUserId::new(userid.clone());
    // OA renames the user and changes the email; DingTalk renames them differently and
    // changes the work place.
    let mut oa = h.store.get_user(&oa_id).await.unwrap().unwrap().entity;
    oa.name = "OA 名".into();
    oa.email = Some("oa-side@example.com".into());
    h.store
        .update_user(&WriteCtx::oa("hr", 2), oa, None)
        .await
        .unwrap();
    let pending_before = h.store.outbox_depth().await.unwrap().pending;
    h.admin(
        Method::PATCH,
        &format!("/users/{userid}"),
        json!({"name": "钉钉名", "work_place": "上海"}),
    )
    .await;
    sync(&h, &applier, &mut cursor).await;
    let merged = h.store.get_user(&oa_id).await.unwrap().unwrap().entity;
    assert_eq!(merged.name, "OA 名", "the default winner is OA");
    assert_eq!(merged.email.as_deref(), Some("oa-side@example.com"));
    assert_eq!(
        merged.work_place.as_deref(),
        Some("上海"),
        "DingTalk's unrelated edit survives"
    );
    // The conflict is in the audit log with all three values.
    let audit = h.store.audit_of(EntityKind::User, &userid).await.unwrap();
    let conflict = audit
        .iter()
        .find(|a| a.actor.ends_with(":conflict"))
        .expect("conflict recorded");
    assert_eq!(conflict.origin, Origin::DingTalk);
    assert_eq!(
        conflict.before.as_ref().unwrap()["conflicts"][0]["field"],
        "name"
    );
    assert_eq!(
        conflict.before.as_ref().unwrap()["conflicts"][0]["dingtalk"],
        "钉钉名"
    );
    let recorded = h.store.conflicts(None, 10).await.unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].field, "name");
    // DingTalk is brought to the merged state by a push.
    let pending = h
        .store
        .outbox_list(Some(QueueState::Pending), None, 100)
        .await
        .unwrap();
    assert!(pending.len() > pending_before as usize);
    let last = pending.last().unwrap();
    assert_eq!(last.oa_id, userid);
    assert_eq!(last.payload.as_ref().unwrap()["name"], "OA 名");
    assert_eq!(last.payload.as_ref().unwrap()["work_place"], "上海");
    // The other differences are exactly the fields still to push.
    let diffs = differences(&h).await;
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(diffs[0].contains(&userid) && diffs[0].contains("name") && diffs[0].contains("email"));
    let _ = DingUserId::new(userid);
}

#[tokio::test]
async fn a_failing_dingtalk_is_retried_later_and_bad_payloads_become_dead_letters() {
    // The client gives up on an answer after 1 s and never retries by itself, so every
    // injected fault (busy, 502, an answer slower than the timeout) fails the call.
    let (h, applier, _cursor) = imported_with(10, 2, |c| {
        c.max_retries = 0;
        c.request_timeout = std::time::Duration::from_millis(1000);
    })
    .await;
    h.store
        .inbox_put(NewInboxEvent {
            dedupe_key: "garbage".into(),
            event_type: "user_add_org".into(),
            payload_json: "not json".into(),
            received_at_ms: 1,
        })
        .await
        .unwrap();
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.dead, 1);
    assert_eq!(h.store.inbox_dead_letters(None, 10).await.unwrap().len(), 1);

    // DingTalk unreachable (every call faulted, the client does not retry): retried later.
    let state = h.state().await;
    let userid = state["users"][0]["userid"].as_str().unwrap().to_owned();
    h.admin(Method::POST, "/settings", json!({"fault_rate": 1.0}))
        .await;
    h.store
        .inbox_put(NewInboxEvent {
            dedupe_key: "modify-1".into(),
            event_type: "user_modify_org".into(),
            payload_json: json!({"EventType": "user_modify_org", "userId": [userid]}).to_string(),
            received_at_ms: 1,
        })
        .await
        .unwrap();
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.retried, 1, "{stats:?}");
    // Not due yet: a drain right away does nothing.
    assert_eq!(applier.drain().await.unwrap().events, 0);
    h.admin(Method::POST, "/settings", json!({"fault_rate": 0.0}))
        .await;
    h.clock.advance(10 * 60 * 1000);
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.events, 1, "{stats:?}");
}

#[tokio::test]
async fn an_excluded_subtree_is_neither_imported_nor_followed() {
    let h = Harness::start_with(
        SimConfig {
            users: 40,
            depts: 6,
            qps: 0,
            ..SimConfig::default()
        },
        sync_engine::Policy::default(),
        |_| {},
    )
    .await;
    let state = h.state().await;
    // Exclude a top-level department.
    let excluded = state["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["parent_id"] == 1)
        .and_then(|d| d["dept_id"].as_i64())
        .expect("a top-level department");
    let mut policy = sync_engine::Policy::default();
    policy
        .scope
        .exclude
        .insert(directory_model::DingDeptId(excluded));
    let mut ctx = h.ctx.clone();
    ctx.policy = std::sync::Arc::new(policy);
    common::import_all(&ctx).await;
    let linked = h
        .store
        .oa_id_of::<directory_model::OaDeptId>(&directory_model::DingDeptId(excluded))
        .await
        .unwrap();
    assert_eq!(linked, None, "the excluded department is not imported");
    let cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    let other = state["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["parent_id"] == 1 && d["dept_id"] != excluded)
        .and_then(|d| d["dept_id"].as_i64())
        .expect("another top-level department");
    for (userid, dept, mobile) in [
        ("inside", excluded, "13500000001"),
        ("outside", other, "13500000002"),
    ] {
        h.admin(
            Method::POST,
            "/users",
            json!({"userid": userid, "name": userid, "mobile": mobile, "dept_id_list": dept.to_string()}),
        )
        .await;
    }
    h.events_into_inbox(cursor).await;
    let applier = Applier::new(
        ctx,
        ApplyOptions {
            rng_seed: Some(9),
            ..ApplyOptions::default()
        },
    );
    let stats = applier.drain().await.unwrap();
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    assert!(stats.applied.ignored >= 1, "{stats:?}");
    assert!(
        h.store
            .get_user(&OaUserId::new("inside"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .get_user(&OaUserId::new("outside"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_echo_of_our_own_push_applies_as_a_no_op() {
    let (h, applier, mut cursor) = imported(20, 3).await;
    let state = h.state().await;
    let userid = state["users"][1]["userid"].as_str().unwrap().to_owned();
    let oa_id = OaUserId::new(userid.clone());
    // An OA edit, then what the pusher does with it: DingTalk accepts the same values through
    // the API, and the base moves to the OA entity.
    let mut user = h.store.get_user(&oa_id).await.unwrap().unwrap().entity;
    user.name = "推送后".into();
    user.remark = Some("from OA".into());
    h.store
        .update_user(&WriteCtx::oa("hr", 3), user.clone(), None)
        .await
        .unwrap();
    let mut req = dingtalk_proto::user::UserUpdateRequest::new(dingtalk_proto::DingUserId::new(
        userid.clone(),
    ));
    req.name = Some(user.name.clone());
    req.remark = user.remark.clone();
    h.ctx.client.user_update(&req).await.unwrap();
    h.store
        .base_set(EntityKind::User, &userid, Some(&user), 4)
        .await
        .unwrap();
    let outbox_before = h.store.outbox_depth().await.unwrap().pending;
    let seq = h.store.latest_seq().await.unwrap();
    // The echo arrives.
    sync(&h, &applier, &mut cursor).await;
    assert_eq!(h.store.latest_seq().await.unwrap(), seq, "nothing written");
    assert_eq!(
        h.store.outbox_depth().await.unwrap().pending,
        outbox_before,
        "nothing queued"
    );
    assert_converged(&h).await;
}

#[tokio::test]
async fn the_worker_stops_when_cancelled() {
    let (h, applier, _) = imported(5, 1).await;
    let applier = std::sync::Arc::new(applier);
    let cancel = CancellationToken::new();
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn({
        let applier = applier.clone();
        let cancel = cancel.clone();
        async move { applier.run(wake, cancel).await }
    });
    cancel.cancel();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("the worker stops")
        .expect("no panic");
    assert!(stopped.is_ok());
    drop(h);
}
