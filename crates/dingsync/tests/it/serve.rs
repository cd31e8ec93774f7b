//! `dingsync serve`'s operational routes, on a real socket, against the simulator and a real
//! SQLite file.

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use tokio_util::sync::CancellationToken;

async fn sim() -> dingtalk_sim::SimHandle {
    testkit::sim::start(dingtalk_sim::SimConfig {
        users: 20,
        depts: 3,
        ..Default::default()
    })
    .await
}

fn config(dir: &tempfile::TempDir, sim: &dingtalk_sim::SimHandle, secret: &str) -> Config {
    let mut c = Config::default();
    c.dingtalk.base_url = sim.base_url();
    c.dingtalk.client_id = sim.config().client_id.clone();
    c.dingtalk.client_secret = Secret::new(secret);
    c.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("d.db").display()
    ));
    c.server.listen = "127.0.0.1:0".into();
    c
}

async fn start(
    config: &Config,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let app = Application::build(config).await.expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    (base, stop, task)
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = sim.config().client_secret.clone();
    let (base, stop, task) = start(&config(&dir, &sim, &secret)).await;
    let http = reqwest::Client::new();

    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    // The workers export queue depths and DingTalk call counters as soon as they start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.expect("body");
        if text.contains("dingsync_queue_depth") && text.contains("dingsync_dingtalk_calls_total") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gauges never exported:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    stop.cancel();
    task.await.expect("join").expect("clean stop");
    sim.shutdown().await;
}

#[tokio::test]
async fn not_ready_with_wrong_credentials_and_the_secret_is_not_shown() {
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "definitely-wrong-secret-123";
    let (base, stop, task) = start(&config(&dir, &sim, wrong)).await;

    let ready = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.expect("body");
    assert!(body.contains("dingtalk"), "{body}");
    assert!(!body.contains(wrong), "the secret leaked: {body}");

    stop.cancel();
    task.await.expect("join").expect("clean stop");
    sim.shutdown().await;
}

/// With `[callback]` configured, the service answers the simulator's `check_url` and stores the
/// events the simulator pushes when a DingTalk administrator changes something.
#[tokio::test]
async fn callbacks_are_mounted_and_pushed_events_reach_the_inbox() {
    const TOKEN: &str = "servetesttoken";
    const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let sim = sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = sim.config().client_secret.clone();
    let mut cfg = config(&dir, &sim, &secret);
    cfg.callback.token = Secret::new(TOKEN);
    cfg.callback.aes_key = Secret::new(AES_KEY);
    let (base, stop, task) = start(&cfg).await;
    let http = reqwest::Client::new();

    // Subscribing fires check_url first; the simulator refuses the subscription unless it is
    // answered with an encrypted "success".
    let sub = http
        .post(format!("{}/_sim/callback", sim.base_url()))
        .json(&serde_json::json!({"url": format!("{base}/callbacks/dingtalk"), "token": TOKEN, "aes_key": AES_KEY}))
        .send()
        .await
        .expect("subscribe");
    assert!(sub.status().is_success(), "{:?}", sub.text().await);

    let hire = http
        .post(format!("{}/_sim/users", sim.base_url()))
        .json(&serde_json::json!({"userid": "newhire1", "name": "新员工", "mobile": "13900001111", "dept_id_list": "1"}))
        .send()
        .await
        .expect("hire");
    assert!(hire.status().is_success(), "{:?}", hire.text().await);
    assert!(
        sim.wait_pushes_idle(std::time::Duration::from_secs(10))
            .await,
        "pushes did not finish"
    );

    let store = directory_store::Store::connect(cfg.database.url.expose())
        .await
        .expect("store");
    let inbox = store.inbox_list(None, None, 100).await.expect("inbox");
    assert!(
        inbox
            .iter()
            .any(|e| e.event_type == "user_add_org" && e.payload_json.contains("newhire1")),
        "{inbox:?}"
    );
    stop.cancel();
    task.await.expect("join").expect("clean stop");
    sim.shutdown().await;
}
