//! The simulator reads its time from the injected clock: with [`Clock::settable`], an access
//! token expires exactly when the clock passes its lifetime (not before, however long the test
//! really takes), and events carry the clock's time.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Clock, SimConfig, start_with_clock};

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .send()
        .await
        .expect("simulator answers")
        .json()
        .await
        .expect("JSON answer")
}

async fn post_json(http: &reqwest::Client, url: String, body: &Value) -> Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .expect("simulator answers")
        .json()
        .await
        .expect("JSON answer")
}

#[tokio::test]
async fn tokens_expire_and_events_are_stamped_on_the_injected_clock() {
    let clock = Clock::settable();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let sim = start_with_clock(SimConfig::default(), listener, clock.clone())
        .await
        .expect("simulator starts");
    let base = sim.base_url();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let issued = get_json(
        &http,
        format!("{base}/gettoken?appkey=dingsimclientid&appsecret=dingsimclientsecret"),
    )
    .await;
    assert_eq!(issued["expires_in"], 7200);
    let token = issued["access_token"].as_str().expect("a token").to_owned();
    let listsub = format!("{base}/topapi/v2/department/listsub?access_token={token}");

    // A second short of the lifetime the token still works...
    clock.advance(Duration::from_secs(7199));
    let fresh = post_json(&http, listsub.clone(), &json!({})).await;
    assert_eq!(fresh["errcode"], 0, "{fresh}");

    // ...and a change made now is stamped with the clock's time, not the machine's.
    let wall = clock.wall_ms();
    let created = post_json(
        &http,
        format!("{base}/_sim/depts"),
        &json!({"name": "Clocked", "parent_id": 1}),
    )
    .await;
    assert_eq!(created["errcode"], 0, "{created}");
    let events = get_json(&http, format!("{base}/_sim/events")).await;
    let stamped: Vec<i64> = events["events"]
        .as_array()
        .expect("an event list")
        .iter()
        .filter_map(|e| e["time_ms"].as_i64())
        .collect();
    assert_eq!(stamped, vec![wall]);

    // Two seconds later the lifetime is over, though no real time has passed.
    clock.advance(Duration::from_secs(2));
    let expired = post_json(&http, listsub, &json!({})).await;
    assert_eq!(expired["errcode"], 88, "{expired}");
    assert_eq!(expired["sub_code"], "40014");

    sim.shutdown().await;
}
