//! Pusher ordering across instances: two pushers (two "instances", each its own pool and worker
//! name) drain one PostgreSQL outbox holding chains parent department → child department →
//! user, then moves of each user into a grandchild department created after them. The simulator's own
//! event log (one event per accepted change, in the order it accepted them) shows no child
//! before its parent, no user before their department, and the simulator refused nothing.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::collections::HashMap;

use dingtalk_sim::SimConfig;
use directory_model::{Department, DingDeptId, Mobile, OaDeptId, OaUserId, User};
use directory_store::{Expect, Store, StoreOptions};
use support::{Db, World};
use sync_engine::SyncContext;
use sync_engine::push::{PushConfig, Pusher};

const CHAINS: i64 = 12;

fn user(id: &str, dept: i64, mobile: u32) -> User {
    let mut u = User::new(OaUserId::new(id), format!("User {id}"), &[OaDeptId(dept)]);
    u.mobile = Some(Mobile::mainland(format!("139{mobile:08}")));
    u
}

fn pusher(ctx: &SyncContext, worker: &str, seed: u64) -> Pusher {
    Pusher::new(
        ctx,
        seed,
        PushConfig {
            worker: worker.to_owned(),
            // Small rounds, so that both pushers find ready entries at the same time.
            concurrency: 2,
            batch: 2,
            ..PushConfig::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pushers_never_send_a_child_before_its_parent() {
    let Some(w) = World::start_on(
        Db::Postgres,
        SimConfig {
            users: 0,
            depts: 0,
            qps: 0,
            // Calls overlap, so the two pushers really work at the same time.
            latency_ms: 3,
            ..SimConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let s = &w.store;
    for i in 0..CHAINS {
        let (p, c) = (100 + i, 200 + i);
        s.create_department(
            &w.oa(),
            Department::new(OaDeptId(p), format!("P{i}"), Some(OaDeptId(1))),
        )
        .await
        .unwrap();
        s.create_department(
            &w.oa(),
            Department::new(OaDeptId(c), format!("C{i}"), Some(OaDeptId(p))),
        )
        .await
        .unwrap();
        s.create_user(&w.oa(), user(&format!("u{i}"), c, i as u32))
            .await
            .unwrap();
    }
    // Then each user moves into a grandchild created after them.
    for i in 0..CHAINS {
        let g = 300 + i;
        s.create_department(
            &w.oa(),
            Department::new(OaDeptId(g), format!("G{i}"), Some(OaDeptId(200 + i))),
        )
        .await
        .unwrap();
        let mut u = user(&format!("u{i}"), g, i as u32);
        u.name = format!("Moved {i}");
        s.save_user(&w.oa(), u, Expect::Present).await.unwrap();
    }

    let ctx_a = w.ctx();
    let ctx_b = SyncContext {
        store: Store::connect_with(s.url(), StoreOptions::default())
            .await
            .unwrap(),
        ..w.ctx()
    };
    let a = pusher(&ctx_a, "host-a:1:aa:push", 1);
    let b = pusher(&ctx_b, "host-b:2:bb:push", 2);
    let (mut pushed_a, mut pushed_b, mut dead) = (0, 0, 0);
    for _ in 0..30 {
        let (ra, rb) = tokio::join!(a.drain(), b.drain());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        pushed_a += ra.pushed;
        pushed_b += rb.pushed;
        dead += ra.dead_lettered + rb.dead_lettered;
        let depth = s.outbox_depth().await.unwrap();
        if depth.pending + depth.claimed == 0 {
            break;
        }
        // A user created in C and then moved to G waits (without calling DingTalk) until G
        // exists, because the pusher sends the current OA state; its retry is due later.
        w.clock.advance(600_000);
    }
    assert!(
        pushed_a > 0 && pushed_b > 0,
        "both pushed: {pushed_a} {pushed_b}"
    );
    assert_eq!(pushed_a + pushed_b, (CHAINS * 5) as usize);
    assert_eq!(dead, 0);
    let depth = s.outbox_depth().await.unwrap();
    assert_eq!(depth.pending + depth.claimed + depth.dead, 0, "{depth:?}");

    // The simulator refused nothing (an early child would be 60004, an early user 60003).
    let calls: serde_json::Value = w
        .http
        .get(format!("{}/_sim/calls", w.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls["total"]["errors"].as_u64(), Some(0), "{calls}");

    // The order in which the simulator accepted the changes.
    let events: serde_json::Value = w
        .http
        .get(format!("{}/_sim/events", w.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut dept_created: HashMap<i64, u64> = HashMap::new();
    let mut user_added: HashMap<String, u64> = HashMap::new();
    for e in events["events"].as_array().unwrap() {
        let id = e["id"].as_u64().unwrap();
        match e["event_type"].as_str().unwrap() {
            "org_dept_create" => {
                for d in e["data"]["deptId"].as_array().unwrap() {
                    dept_created.entry(d.as_i64().unwrap()).or_insert(id);
                }
            }
            "user_add_org" => {
                for u in e["data"]["userId"].as_array().unwrap() {
                    user_added
                        .entry(u.as_str().unwrap().to_owned())
                        .or_insert(id);
                }
            }
            _ => {}
        }
    }
    let ding = async |oa: i64| -> i64 {
        let d: DingDeptId = s.ding_id_of(&OaDeptId(oa)).await.unwrap().expect("mapped");
        d.0
    };
    for i in 0..CHAINS {
        let (p, c, g) = (
            ding(100 + i).await,
            ding(200 + i).await,
            ding(300 + i).await,
        );
        let u = format!("u{i}");
        assert!(
            dept_created[&p] < dept_created[&c],
            "chain {i}: child before parent"
        );
        assert!(
            dept_created[&c] < dept_created[&g],
            "chain {i}: grandchild before child"
        );
        // The user is pushed as they are now: in G.
        assert!(
            dept_created[&g] < user_added[&u],
            "chain {i}: user before department"
        );
    }
    let state = w.state().await;
    let moved = support::find(&state, "users", "userid", &serde_json::json!("u3"));
    assert_eq!(moved[0]["name"], "Moved 3");
    ctx_b.store.close().await;
    w.finish().await;
}
