//! The gateway over real HTTP: rate limit (90018), injected faults, latency, call counts, and
//! the org generator behind `start`.

use crate::common;

use common::Sim;
use dingtalk_sim::SimConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn burst_over_qps_is_answered_90018_and_counted() {
    let sim = Sim::start(SimConfig {
        qps: 3,
        ..SimConfig::default()
    })
    .await;
    let path = "/topapi/v2/department/listsub";
    let (mut ok, mut throttled) = (0u64, 0u64);
    // Bounded: stop at the first throttled answer after at least qps successes.
    for _ in 0..200 {
        let answer = sim.call(path, json!({})).await;
        match answer["errcode"].as_i64() {
            Some(0) => ok += 1,
            Some(90018) => {
                throttled += 1;
                assert!(answer["errmsg"].as_str().is_some_and(|m| !m.is_empty()));
                assert!(answer["request_id"].is_string());
                break;
            }
            other => panic!("unexpected {other:?}: {answer}"),
        }
    }
    assert!(ok >= 3, "at least qps calls pass, got {ok}");
    assert_eq!(throttled, 1, "a burst is throttled");
    // Another API path has its own window.
    assert_eq!(
        sim.code("/topapi/v2/department/listsubid", json!({"dept_id": 1}))
            .await,
        0
    );

    let (_, calls) = sim.admin(reqwest::Method::GET, "/calls", None).await;
    let counts = &calls["by_path"][path];
    assert_eq!(counts["ok"], ok);
    assert_eq!(counts["throttled"], 1);
    assert_eq!(counts["calls"], ok + 1);
    let (status, _) = sim.admin(reqwest::Method::POST, "/calls/reset", None).await;
    assert_eq!(status, 200);
    let (_, calls) = sim.admin(reqwest::Method::GET, "/calls", None).await;
    assert_eq!(calls["total"]["calls"], 0);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn fault_rate_one_fails_every_call_in_the_three_ways() {
    let sim = Sim::start(SimConfig {
        qps: 0,
        slow_answer: std::time::Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    sim.settings(json!({"fault_rate": 1.0})).await;
    let url = format!("{}/topapi/v2/department/create", sim.base);
    let (mut busy, mut bad_gateway, mut slow) = (0, 0, 0);
    for i in 0..30 {
        let response = sim
            .http
            .post(&url)
            .query(&[("access_token", sim.token.as_str())])
            .json(&json!({"name": format!("F{i}"), "parent_id": 1}))
            .send()
            .await
            .expect("answer");
        if response.status() == 502 {
            bad_gateway += 1;
            continue;
        }
        let body: Value = response.json().await.expect("json");
        match body["errcode"].as_i64() {
            Some(-1) => busy += 1,
            // A slow answer still executes the call.
            Some(0) => slow += 1,
            other => panic!("unexpected {other:?}: {body}"),
        }
    }
    assert!(
        busy > 0 && bad_gateway > 0 && slow > 0,
        "{busy} {bad_gateway} {slow}"
    );
    let (_, calls) = sim.admin(reqwest::Method::GET, "/calls", None).await;
    assert_eq!(
        calls["by_path"]["/topapi/v2/department/create"]["faulted"],
        30
    );
    // Only slow answers executed their write.
    let state = sim.state().await;
    assert_eq!(state["counts"]["departments"], 1 + slow);
    sim.settings(json!({"fault_rate": 0.0})).await;
    assert_eq!(
        sim.code("/topapi/v2/department/listsub", json!({})).await,
        0
    );
    let (status, _) = sim
        .admin(
            reqwest::Method::POST,
            "/settings",
            Some(json!({"fault_rate": 3.0})),
        )
        .await;
    assert_eq!(status, 400);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn settings_roundtrip() {
    let sim = Sim::with_org(0, 0).await;
    let after = sim.settings(json!({"qps": 7, "latency_ms": 1})).await;
    assert_eq!(after["qps"], 7);
    assert_eq!(after["latency_ms"], 1);
    let (_, read) = sim.admin(reqwest::Method::GET, "/settings", None).await;
    assert_eq!(read, after);
    // Latency delays every DingTalk answer (a lower bound, so never flaky) but not its content.
    sim.settings(json!({"latency_ms": 200})).await;
    let started = std::time::Instant::now();
    assert_eq!(
        sim.code("/topapi/v2/department/listsub", json!({})).await,
        0
    );
    assert_eq!(sim.code("/topapi/v2/nothing", json!({})).await, 22);
    sim.fetch_token().await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(600));
    sim.settings(json!({"latency_ms": 0})).await;
    let (status, _) = sim
        .admin(
            reqwest::Method::POST,
            "/settings",
            Some(json!({"bogus": 1})),
        )
        .await;
    assert_eq!(status, 400);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn same_seed_gives_the_same_org_over_http() {
    let config = || SimConfig {
        users: 300,
        depts: 30,
        seed: 77,
        qps: 0,
        ..SimConfig::default()
    };
    let a = Sim::start(config()).await;
    let b = Sim::start(config()).await;
    let c = Sim::start(SimConfig {
        seed: 78,
        ..config()
    })
    .await;
    let (sa, sb, sc) = (a.state().await, b.state().await, c.state().await);
    assert_eq!(sa, sb);
    assert_ne!(sa, sc);
    assert_eq!(sa["counts"]["users"], 300);
    assert_eq!(sa["counts"]["departments"], 31);
    for sim in [a, b, c] {
        sim.handle.shutdown().await;
    }
}

#[tokio::test]
async fn a_20000_user_org_generates_and_pages_completely() {
    let started = std::time::Instant::now();
    let sim = Sim::with_org(20_000, 400).await;
    eprintln!(
        "20,000 users generated and served in {:?}",
        started.elapsed()
    );
    assert_eq!(sim.handle.counts()["users"], 20_000);
    // Walk the whole tree through the API, as a full import would, and count distinct users.
    let mut stack = vec![1i64];
    let mut depts = 0;
    let mut users = std::collections::HashSet::new();
    let mut memberships = 0usize;
    while let Some(dept) = stack.pop() {
        depts += 1;
        let children = sim
            .ok("/topapi/v2/department/listsubid", json!({"dept_id": dept}))
            .await;
        for child in children["result"]["dept_id_list"].as_array().expect("ids") {
            stack.push(child.as_i64().expect("id"));
        }
        let mut cursor = 0;
        loop {
            let page = sim
                .ok(
                    "/topapi/v2/user/list",
                    json!({"dept_id": dept, "cursor": cursor, "size": 100}),
                )
                .await;
            for item in page["result"]["list"].as_array().expect("list") {
                memberships += 1;
                users.insert(item["userid"].as_str().expect("userid").to_owned());
            }
            if page["result"]["has_more"] != true {
                break;
            }
            cursor = page["result"]["next_cursor"].as_i64().expect("cursor");
        }
    }
    assert_eq!(depts, 401);
    assert_eq!(users.len(), 20_000);
    assert!(
        memberships > 20_000,
        "some users are in several departments"
    );
    let count = sim
        .ok("/topapi/user/count", json!({"only_active": false}))
        .await;
    assert_eq!(count["result"]["count"], 20_000);
    sim.handle.shutdown().await;
}
