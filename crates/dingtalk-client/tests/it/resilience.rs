//! The client under the conditions DingTalk produces: tokens that expire mid-crawl, a tight rate
//! limit, injected faults (busy, 502, answers slower than our timeout), bad credentials — and
//! secrets that must never show up in what the client prints or logs.

use crate::common;

use std::{
    collections::BTreeSet,
    io::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering as AtomicOrdering},
    },
    time::Duration,
};

use common::Sim;
use dingtalk_client::{
    ClientError, CrawlOptions, DingTalkClient, RateBudget, SlidingWindowBudget, TokenEndpoint,
    budget::Permit, endpoints::paths,
};
use dingtalk_proto::{DingDeptId, DingUserId};
use dingtalk_sim::SimConfig;
use futures::{StreamExt, TryStreamExt, future::BoxFuture};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The userids and department ids the simulator holds, to compare a crawl against.
fn truth(state: &Value) -> (BTreeSet<String>, BTreeSet<i64>) {
    let users = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["userid"].as_str().expect("userid").to_owned())
        .collect();
    let depts = state["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .map(|d| d["dept_id"].as_i64().expect("dept_id"))
        .filter(|&id| id != 1)
        .collect();
    (users, depts)
}

fn crawled(snapshot: &dingtalk_client::OrgSnapshot) -> (BTreeSet<String>, BTreeSet<i64>) {
    (
        snapshot
            .users
            .keys()
            .map(|u| u.as_str().to_owned())
            .collect(),
        snapshot.departments.iter().map(|d| d.dept_id.0).collect(),
    )
}

fn sim_count(calls: &Value, path: &str, field: &str) -> u64 {
    calls["by_path"][path][field].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn token_expiring_mid_listing_is_refreshed_once_and_replayed() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        users: 0,
        ..SimConfig::default()
    })
    .await;
    let client = sim.client();
    let dept = client
        .dept_create(&dingtalk_proto::dept::DeptCreateRequest::new(
            "大部门",
            DingDeptId::ROOT,
        ))
        .await
        .unwrap();
    for i in 0..250 {
        let req = dingtalk_proto::user::UserCreateRequest::new(
            format!("人{i}"),
            format!("1350000{i:04}"),
            [dept],
        );
        client.user_create(&req).await.unwrap();
    }
    let mut pages = Box::pin(client.user_pages(dept));
    let first = pages.next().await.unwrap().unwrap();
    assert_eq!(first.list.len(), 100);
    // Every token dies between page 1 and page 2.
    sim.expire_tokens().await;
    let rest: Vec<_> = pages.try_collect().await.unwrap();
    let total = first.list.len() + rest.iter().map(|p| p.list.len()).sum::<usize>();
    assert_eq!(total, 250);
    let stats = client.stats();
    assert_eq!(
        stats.endpoint(paths::USER_LIST).token_replays,
        1,
        "one rejected call, replayed once"
    );
    assert_eq!(
        stats.endpoint(paths::GETTOKEN).calls,
        2,
        "initial token + one refresh"
    );
    assert_eq!(
        stats.endpoint(paths::USER_LIST).retries,
        0,
        "a replay is not a retry"
    );
    // The legacy `/role/...` paths answer a bad token with a bare 40014; replayed the same way.
    sim.expire_tokens().await;
    client.role_group_add("令牌组").await.unwrap();
    assert_eq!(
        client.stats().endpoint(paths::ROLE_ADD_GROUP).token_replays,
        1
    );
    assert_eq!(client.stats().endpoint(paths::GETTOKEN).calls, 3);
    sim.shutdown().await;
}

/// A budget that behaves like the default one, except that the `pause_at`-th call to `api`
/// stops before it is sent, tells the test, and goes on when the test says so: a way to act in
/// the middle of a crawl without polling or sleeping.
#[derive(Debug)]
struct PausingBudget {
    inner: SlidingWindowBudget,
    api: &'static str,
    granted: AtomicUsize,
    pause_at: usize,
    handshake: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl RateBudget for PausingBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            let permit = self.inner.acquire(api).await;
            if api == self.api
                && self.granted.fetch_add(1, AtomicOrdering::SeqCst) + 1 == self.pause_at
            {
                let handshake = self.handshake.lock().expect("handshake lock").take();
                if let Some((paused, resume)) = handshake {
                    let _ = paused.send(());
                    let _ = resume.await;
                }
            }
            permit
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expiring_mid_crawl_are_refreshed_once_for_all_tasks() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        users: 600,
        depts: 60,
        seed: 11,
        ..SimConfig::default()
    })
    .await;
    let cfg = sim.client_config();
    let (paused_tx, paused) = oneshot::channel();
    let (resume, resume_rx) = oneshot::channel();
    let budget = Arc::new(PausingBudget {
        inner: SlidingWindowBudget::new(cfg.qps_per_api, cfg.rate_window),
        api: paths::USER_LIST,
        granted: AtomicUsize::new(0),
        pause_at: 5,
        handshake: Mutex::new(Some((paused_tx, resume_rx))),
    });
    let client = DingTalkClient::with_budget(cfg, budget).unwrap();
    let crawl = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .crawl(CrawlOptions {
                    concurrency: 8,
                    roles: true,
                })
                .await
        }
    });
    // Mid-crawl, every token dies; the paused call then goes out with the dead one.
    paused.await.unwrap();
    sim.expire_tokens().await;
    resume.send(()).unwrap();
    let snapshot = crawl.await.unwrap().unwrap();
    assert_eq!(crawled(&snapshot), truth(&sim.state().await));
    let stats = client.stats();
    let replays: u64 = stats.endpoints.values().map(|e| e.token_replays).sum();
    assert!(replays >= 1, "{stats:?}");
    assert_eq!(
        stats.endpoint(paths::GETTOKEN).calls,
        2,
        "however many tasks were rejected, one refresh: {stats:?}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_token_lifetime_is_refreshed_ahead_of_expiry_during_a_crawl() {
    // 40 ms per answer and two calls in flight per family: the crawl outlives a 1 s token.
    let sim = Sim::start(SimConfig {
        qps: 1000,
        users: 300,
        depts: 60,
        seed: 12,
        latency_ms: 40,
        ..SimConfig::default()
    })
    .await;
    sim.settings(json!({"token_ttl_secs": 1})).await;
    let client = sim.client();
    let snapshot = client
        .crawl(CrawlOptions {
            concurrency: 2,
            roles: false,
        })
        .await
        .unwrap();
    assert_eq!(crawled(&snapshot), truth(&sim.state().await));
    let stats = client.stats();
    assert!(
        stats.endpoint(paths::GETTOKEN).calls >= 2,
        "refreshed during the crawl: {stats:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_first_calls_fetch_one_token() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        ..SimConfig::default()
    })
    .await;
    let client = sim.client();
    let calls = (0..40).map(|_| {
        let client = client.clone();
        async move { client.dept_list_sub(DingDeptId::ROOT).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    assert_eq!(client.stats().endpoint(paths::GETTOKEN).calls, 1);
    assert_eq!(sim_count(&sim.calls().await, paths::GETTOKEN, "calls"), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_matching_the_server_limit_never_sees_90018() {
    let sim = Sim::start(SimConfig {
        qps: 5,
        users: 150,
        depts: 15,
        seed: 5,
        ..SimConfig::default()
    })
    .await;
    let client = sim.client();
    assert_eq!(client.config().qps_per_api, 5);
    let snapshot = client
        .crawl(CrawlOptions {
            concurrency: 16,
            roles: true,
        })
        .await
        .unwrap();
    let state = sim.state().await;
    assert_eq!(crawled(&snapshot), truth(&state));
    let calls = sim.calls().await;
    assert_eq!(
        calls["total"]["throttled"], 0,
        "the server never throttled us: {calls}"
    );
    assert_eq!(client.stats().total_throttles(), 0);
    // And the budget was actually binding: some path needed more than one window.
    let busiest = calls["by_path"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["calls"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(busiest > 5, "{calls}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_budget_throttles_happen_and_are_retried() {
    let sim = Sim::start(SimConfig {
        qps: 3,
        ..SimConfig::default()
    })
    .await;
    let mut cfg = sim.client_config();
    cfg.qps_per_api = 0; // no client-side budget: the server has to push back
    let client = DingTalkClient::new(cfg).unwrap();
    let calls = (0..12).map(|_| {
        let client = client.clone();
        async move { client.dept_list_sub_ids(DingDeptId::ROOT).await }
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let stats = client.stats().endpoint(paths::DEPT_LISTSUBID);
    assert!(stats.throttles > 0, "{stats:?}");
    assert_eq!(
        stats.retries, stats.errors,
        "every 90018 was retried: {stats:?}"
    );
    let calls = sim.calls().await;
    assert_eq!(
        sim_count(&calls, paths::DEPT_LISTSUBID, "throttled"),
        stats.throttles
    );
    assert_eq!(sim_count(&calls, paths::DEPT_LISTSUBID, "ok"), 12);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_are_retried_to_success() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        users: 300,
        depts: 30,
        seed: 3,
        slow_answer: Duration::from_millis(400),
        ..SimConfig::default()
    })
    .await;
    let mut cfg = sim.client_config();
    cfg.request_timeout = Duration::from_millis(150); // slow answers become timeouts
    cfg.max_retries = 8;
    let client = DingTalkClient::new(cfg).unwrap();
    client.ensure_token().await.unwrap();
    sim.settings(json!({"fault_rate": 0.25})).await;
    let snapshot = client
        .crawl(CrawlOptions {
            concurrency: 8,
            roles: true,
        })
        .await
        .unwrap();
    sim.settings(json!({"fault_rate": 0.0})).await;
    let state = sim.state().await;
    assert_eq!(crawled(&snapshot), truth(&state));
    let calls = sim.calls().await;
    let faulted = calls["total"]["faulted"].as_u64().unwrap();
    let stats = client.stats();
    let retries: u64 = stats.endpoints.values().map(|e| e.retries).sum();
    assert!(faulted > 5, "faults were injected: {calls}");
    assert!(
        retries >= faulted,
        "every fault was retried ({retries} retries, {faulted} faults)"
    );
    let last_errors: Vec<_> = stats
        .endpoints
        .values()
        .filter_map(|e| e.last_error.clone())
        .collect();
    assert!(
        last_errors.iter().any(|e| e.contains("did not answer")
            || e.contains("HTTP 502")
            || e.contains("errcode -1")),
        "{last_errors:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_write_that_keeps_faulting_gives_up_after_max_retries() {
    // With every call faulted, a create either never ran (busy, 502) or ran slowly (timeout).
    let sim = Sim::start(SimConfig {
        qps: 1000,
        slow_answer: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let mut cfg = sim.client_config();
    cfg.request_timeout = Duration::from_millis(100);
    cfg.max_retries = 2;
    let client = DingTalkClient::new(cfg).unwrap();
    client.ensure_token().await.unwrap();
    sim.settings(json!({"fault_rate": 1.0})).await;
    let err = client
        .dept_create(&dingtalk_proto::dept::DeptCreateRequest::new(
            "故障部",
            DingDeptId::ROOT,
        ))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "the last attempt also faulted: {err}");
    assert_eq!(
        client.stats().endpoint(paths::DEPT_CREATE).calls,
        3,
        "1 attempt + 2 retries"
    );
    sim.settings(json!({"fault_rate": 0.0})).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_token_fetch_is_retried_by_its_own_loop_only() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        slow_answer: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    sim.settings(json!({"fault_rate": 1.0})).await;
    let mut cfg = sim.client_config();
    cfg.request_timeout = Duration::from_millis(100);
    cfg.max_retries = 2;
    let client = DingTalkClient::new(cfg).unwrap();
    let err = client.dept_list_sub(DingDeptId::ROOT).await.unwrap_err();
    assert_eq!(err.api(), Some(paths::GETTOKEN), "{err}");
    let stats = client.stats();
    assert_eq!(
        stats.endpoint(paths::GETTOKEN).calls,
        3,
        "1 attempt + 2 retries, not 3 × 3"
    );
    assert_eq!(
        stats.endpoint(paths::DEPT_LISTSUB).calls,
        0,
        "no business call without a token"
    );
    sim.settings(json!({"fault_rate": 0.0})).await;
    client.dept_list_sub(DingDeptId::ROOT).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_an_auth_error_and_not_retried() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        ..SimConfig::default()
    })
    .await;
    for endpoint in [TokenEndpoint::Legacy, TokenEndpoint::OAuth2] {
        let mut cfg = sim.client_config();
        cfg.client_secret = "wrong-secret-value".into();
        cfg.token_endpoint = endpoint;
        let client = DingTalkClient::new(cfg).unwrap();
        let err = client.dept_list_sub(DingDeptId::ROOT).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Auth { .. }),
            "{endpoint:?}: {err:?}"
        );
        assert!(!err.is_retryable());
        let token_path = if endpoint == TokenEndpoint::Legacy {
            paths::GETTOKEN
        } else {
            paths::OAUTH_TOKEN
        };
        assert_eq!(client.stats().endpoint(token_path).calls, 1, "{endpoint:?}");
        assert!(!format!("{err} {err:?}").contains("wrong-secret-value"));
    }
    // The OAuth2 endpoint with good credentials works end to end.
    let mut cfg = sim.client_config();
    cfg.token_endpoint = TokenEndpoint::OAuth2;
    let client = DingTalkClient::new(cfg).unwrap();
    client.dept_list_sub(DingDeptId::ROOT).await.unwrap();
    assert_eq!(client.stats().endpoint(paths::OAUTH_TOKEN).calls, 1);
    sim.shutdown().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_debug_display_or_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = Sim::start(SimConfig {
        qps: 1000,
        ..SimConfig::default()
    })
    .await;
    let secret = sim.handle.config().client_secret.clone();
    let client = sim.client();
    client.dept_list_sub(DingDeptId::ROOT).await.unwrap();
    let token = sim.raw_token().await; // the same token while it is valid
    sim.expire_tokens().await; // forces a logged replay
    let err = client
        .user_get(&DingUserId::new("nobody"))
        .await
        .unwrap_err();
    // A transport error (nothing listens there) carries no URL with the token.
    let mut dead_cfg = sim.client_config();
    dead_cfg.base_url = "http://127.0.0.1:9".into();
    dead_cfg.max_retries = 0;
    let dead = DingTalkClient::new(dead_cfg).unwrap();
    let transport = dead.dept_list_sub(DingDeptId::ROOT).await.unwrap_err();

    let mut printed = format!(
        "{client:?}\n{:?}\n{err}\n{err:?}\n{transport}\n{transport:?}\n",
        client.stats()
    );
    let mut source = std::error::Error::source(&transport);
    while let Some(cause) = source {
        printed.push_str(&format!("{cause}\n{cause:?}\n"));
        source = cause.source();
    }
    printed.push_str(&String::from_utf8_lossy(&logs.0.lock().unwrap()));
    assert!(printed.contains("token rejected"), "the replay was logged");
    assert!(
        !printed.contains(&secret),
        "client secret leaked:\n{printed}"
    );
    assert!(!printed.contains(&token), "access token leaked:\n{printed}");
    sim.shutdown().await;
}

/// A budget that switches the simulator's faults off before every second attempt of a
/// department create, so each create sees exactly one fault followed by a clean retry.
#[derive(Debug)]
struct FaultsOffOnRetry {
    inner: SlidingWindowBudget,
    http: reqwest::Client,
    settings_url: String,
    creates: AtomicUsize,
}

impl RateBudget for FaultsOffOnRetry {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            if api == paths::DEPT_CREATE
                && self.creates.fetch_add(1, AtomicOrdering::SeqCst) % 2 == 1
            {
                let resp = self
                    .http
                    .post(&self.settings_url)
                    .json(&json!({"fault_rate": 0.0}))
                    .send()
                    .await;
                assert!(resp.expect("settings answer").status().is_success());
            }
            self.inner.acquire(api).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_retried_after_an_unknown_outcome_says_so() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        slow_answer: Duration::from_millis(300),
        seed: 21,
        ..SimConfig::default()
    })
    .await;
    let mut cfg = sim.client_config();
    cfg.request_timeout = Duration::from_millis(100); // a slow answer (which did execute) times out
    cfg.max_retries = 1;
    let budget = Arc::new(FaultsOffOnRetry {
        inner: SlidingWindowBudget::new(cfg.qps_per_api, cfg.rate_window),
        http: reqwest::Client::new(),
        settings_url: format!("{}/_sim/settings", sim.base),
        creates: AtomicUsize::new(0),
    });
    let client = DingTalkClient::with_budget(cfg, budget).unwrap();
    client.ensure_token().await.unwrap();
    let (mut clean, mut ambiguous) = (0, 0);
    for i in 0..15 {
        sim.settings(json!({"fault_rate": 1.0})).await;
        let name = format!("重试部{i}");
        let outcome = client
            .dept_create(&dingtalk_proto::dept::DeptCreateRequest::new(
                name.clone(),
                DingDeptId::ROOT,
            ))
            .await;
        match outcome {
            // The fault was busy or 502: nothing happened, the retry created it.
            Ok(_) => clean += 1,
            // The fault was a slow answer: the first attempt created it, the retry clashed.
            Err(err) => {
                assert!(
                    err.errcode().is_some_and(|c| c.is_already_exists(None)),
                    "{err}"
                );
                assert!(
                    matches!(
                        err,
                        ClientError::Api {
                            prior_attempt_may_have_succeeded: true,
                            ..
                        }
                    ),
                    "the clash is flagged as possibly our own earlier attempt: {err:?}"
                );
                ambiguous += 1;
            }
        }
        // Either way the department exists exactly once.
        let children = client.dept_list_sub(DingDeptId::ROOT).await.unwrap();
        assert_eq!(
            children.iter().filter(|d| d.name == name).count(),
            1,
            "{name}"
        );
    }
    assert!(
        clean > 0 && ambiguous > 0,
        "both fault kinds were seen: {clean} clean, {ambiguous} ambiguous"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departments_deleted_mid_crawl_are_recorded_as_vanished() {
    let sim = Sim::start(SimConfig {
        qps: 1000,
        ..SimConfig::default()
    })
    .await;
    let mut leaves = BTreeSet::new();
    for name in ["甲", "乙"] {
        let (status, body) = sim
            .admin(
                reqwest::Method::POST,
                "/depts",
                Some(json!({"name": name, "parent_id": 1})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        leaves.insert(body["result"]["dept_id"].as_i64().expect("dept_id"));
    }
    let cfg = sim.client_config();
    let (paused_tx, paused) = oneshot::channel();
    let (resume, resume_rx) = oneshot::channel();
    let budget = Arc::new(PausingBudget {
        inner: SlidingWindowBudget::new(cfg.qps_per_api, cfg.rate_window),
        api: paths::DEPT_LISTSUB,
        granted: AtomicUsize::new(0),
        pause_at: 2, // the first listsub below the root
        handshake: Mutex::new(Some((paused_tx, resume_rx))),
    });
    let client = DingTalkClient::with_budget(cfg, budget).unwrap();
    let crawl = tokio::spawn({
        let client = client.clone();
        async move { client.crawl(CrawlOptions::default()).await }
    });
    // Both leaves were discovered; an administrator deletes them before they are walked.
    paused.await.unwrap();
    for id in &leaves {
        let (status, body) = sim
            .admin(reqwest::Method::DELETE, &format!("/depts/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    resume.send(()).unwrap();
    let snapshot = crawl
        .await
        .unwrap()
        .expect("a vanished department does not fail the crawl");
    let vanished: BTreeSet<i64> = snapshot.vanished_departments.iter().map(|d| d.0).collect();
    assert!(
        !vanished.is_empty() && vanished.is_subset(&leaves),
        "{vanished:?} of {leaves:?}"
    );
    sim.shutdown().await;
}
