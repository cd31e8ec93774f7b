//! Stream mode with the real binary: `dingsync serve` with `[events] mode = "stream"` is
//! SIGKILLed twice during a burst of DingTalk-side changes and restarted; afterwards every event
//! the simulator recorded is in the inbox exactly once (the simulator redelivers what was not
//! acknowledged; the inbox dedupes by change: type, ids and event time).

use crate::support;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use support::{Service, ServiceConfig, http, poll_until, sim_call, start_sim, whole_inbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_survive_sigkill_exactly_once() {
    let sim = start_sim(120, 10, 11).await;
    sim.set_stream_settings(&dingtalk_sim::StreamSettingsPatch {
        delivery: Some(dingtalk_sim::Delivery::Stream),
        redeliver_after_ms: Some(300),
        ..Default::default()
    })
    .expect("stream settings");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServiceConfig::for_sim(&sim, dir.path());
    config.events_mode = Some("stream");
    let mut service = Service::start(&config, &[]).await;
    let client = http();
    let ready = |client: reqwest::Client, base: String| async move {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    assert!(
        poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
            ready(client.clone(), config.base())
        })
        .await,
        "the Stream connection never came up"
    );

    let state = sim_call(&client, &sim.base_url(), Method::GET, "/_sim/state", None).await;
    let userids: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .take(90)
        .collect();
    for (i, userid) in userids.iter().enumerate() {
        sim_call(
            &client,
            &sim.base_url(),
            Method::PATCH,
            &format!("/_sim/users/{userid}"),
            Some(json!({"name": format!("Renamed {i}")})),
        )
        .await;
        if i == 30 || i == 60 {
            service.kill().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            service.restart().await;
        }
    }

    assert!(
        sim.wait_stream_idle(Duration::from_secs(90)).await,
        "events were never all acknowledged"
    );
    let events = sim_call(&client, &sim.base_url(), Method::GET, "/_sim/events", None).await;
    let recorded = events["events"].as_array().expect("events").len();
    let store = directory_store::Store::connect(&config.database_url())
        .await
        .expect("store");
    let inbox = whole_inbox(&store).await;
    let keys: std::collections::BTreeSet<_> = inbox.iter().map(|e| e.dedupe_key.clone()).collect();
    assert!(
        inbox.iter().all(|e| e.dedupe_key.starts_with("change:")),
        "{inbox:?}"
    );
    assert_eq!(keys.len(), inbox.len(), "an event was stored twice");
    assert_eq!(
        inbox.len(),
        recorded,
        "every recorded event is in the inbox exactly once"
    );
    assert!(service.starts >= 3, "the service was not restarted");
}
