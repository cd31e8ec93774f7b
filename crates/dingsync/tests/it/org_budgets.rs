//! Rate budgets with several orgs (issue 20), against a two-corp simulator over real HTTP:
//! - each org's app has its own per-API budget: org A's budget used up (its permits held) does
//!   not hold back a single call of org B on the same API;
//! - `[dingtalk] ip_budget` caps the sum of every org's calls: with the simulator enforcing a
//!   per-IP limit (`/_sim/ip`), two orgs crawling at once draw no deny, and without the IP
//!   budget the same crawl is refused by the gateway (so the assertion can fail).
//!
//! Each case runs with the in-process budgets (`rate_budget = "local"`), with the slots in the
//! SQLite sidecar, and — when `DINGSYNC_TEST_PG_URL` is set — in PostgreSQL with one "instance"
//! (its own `Budgets`, as a separate `serve` would have) per org. Assertions read the
//! simulator's counts, never the clock.

use std::time::Duration;

use dingsync::budgets::Budgets;
use dingsync::config::{Config, OrgSection, RateBudgetMode, Secret};
use dingtalk_client::{CrawlOptions, DingTalkClient};
use dingtalk_sim::{SimConfig, SimHandle};
use directory_store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use testkit::db::TempDb;

/// The API both orgs call in the independence case.
const LISTSUB: &str = "/topapi/v2/department/listsub";

fn org_of(sim: &SimHandle, index: usize) -> OrgSection {
    let org = sim.org(index).expect("org");
    let c = org.config();
    OrgSection {
        name: format!("org{index}"),
        corp_id: c.corp_id.clone(),
        client_id: c.client_id.clone(),
        client_secret: Secret::new(c.client_secret.clone()),
        ..OrgSection::default()
    }
}

fn config(sim: &SimHandle, qps: u32, ip_budget: u32, mode: RateBudgetMode) -> Config {
    let mut cfg = Config::default();
    cfg.dingtalk.base_url = sim.base_url();
    cfg.dingtalk.client_id = sim.config().client_id.clone();
    cfg.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    cfg.dingtalk.qps = qps;
    cfg.dingtalk.ip_budget = ip_budget;
    cfg.dingtalk.rate_budget = mode;
    cfg
}

async fn sim_get(sim: &SimHandle, path: &str) -> Value {
    let http = reqwest::Client::new();
    testkit::sim::call(&http, &sim.base_url(), Method::GET, path, None).await
}

/// Where the budgets live in one case.
#[derive(Debug, Clone, Copy)]
enum Where {
    Local,
    Sqlite,
    Postgres,
}

/// The budgets of one process for `cfg`, on `db` unless local.
async fn budgets(cfg: &Config, at: Where, db: Option<&Store>) -> Budgets {
    match (at, db) {
        (Where::Local, _) | (_, None) => Budgets::local(cfg),
        (_, Some(store)) => Budgets::open(cfg, store, &format!("test:{}", rand_suffix()))
            .await
            .expect("open budgets"),
    }
}

fn rand_suffix() -> u32 {
    rand::random()
}

async fn database(at: Where) -> Option<TempDb> {
    match at {
        Where::Local => None,
        Where::Sqlite => Some(TempDb::sqlite().await),
        Where::Postgres => TempDb::postgres_if_configured().await,
    }
}

/// Org 0's budget is used up and held; org 1 still makes `qps` calls to the same API, and the
/// simulator served them all (a budget keyed by API alone would keep org 1 waiting forever).
async fn one_org_held_does_not_hold_the_other(at: Where) {
    let db = database(at).await;
    if matches!(at, Where::Postgres) && db.is_none() {
        return;
    }
    let qps = 3;
    let sim = testkit::sim::start(SimConfig {
        orgs: 2,
        depts: 2,
        users: 4,
        qps,
        ..SimConfig::default()
    })
    .await;
    let cfg = config(&sim, qps, 0, mode_of(at));
    let store = db.as_ref().map(|d| d.store.clone());
    let budgets = budgets(&cfg, at, store.as_ref()).await;
    let (a, b) = (org_of(&sim, 0), org_of(&sim, 1));
    let a_budget = budgets.for_app(&a.client_id);
    let mut held = Vec::new();
    for _ in 0..qps {
        held.push(a_budget.acquire(LISTSUB).await);
    }
    let client_b = budgets.client_for(&cfg, &b).expect("client b");
    let calls = async {
        for _ in 0..qps {
            client_b
                .dept_list_sub(dingtalk_proto::DingDeptId::ROOT)
                .await
                .expect("org 1 calls listsub");
        }
    };
    // A guard against a hang, not a measurement: the calls need no more than a token and
    // `qps` permits, none of which org 0 holds.
    tokio::time::timeout(Duration::from_secs(60), calls)
        .await
        .unwrap_or_else(|_| panic!("{at:?}: org 1 waited while org 0's budget was used up"));
    let counts = sim_get(&sim, "/_sim/orgs/1/calls").await;
    assert_eq!(
        counts["by_path"][LISTSUB]["ok"].as_u64(),
        Some(u64::from(qps)),
        "{at:?}: {counts}"
    );
    assert_eq!(counts["total"]["throttled"], 0, "{at:?}: {counts}");
    let org0 = sim_get(&sim, "/_sim/orgs/0/calls").await;
    assert_eq!(
        org0["total"]["calls"], 0,
        "{at:?}: org 0 made no call: {org0}"
    );
    drop(held);
    if let Some(db) = db {
        db.close().await;
    }
}

fn mode_of(at: Where) -> RateBudgetMode {
    match at {
        Where::Local => RateBudgetMode::Local,
        Where::Sqlite | Where::Postgres => RateBudgetMode::Auto,
    }
}

/// Two orgs crawl at once under a simulator whose per-IP limit is `ip_qps` calls per second;
/// returns the simulator's `/_sim/ip` answer and each crawl's outcome.
async fn crawl_both(
    at: Where,
    ip_budget: u32,
    ip_qps: u32,
) -> Option<(Value, Vec<Result<usize, String>>)> {
    let db = database(at).await;
    if matches!(at, Where::Postgres) && db.is_none() {
        return None;
    }
    let sim = testkit::sim::start(SimConfig {
        orgs: 2,
        depts: 12,
        users: 40,
        ip_qps,
        ..SimConfig::default()
    })
    .await;
    let cfg = config(&sim, 20, ip_budget, mode_of(at));
    let store = db.as_ref().map(|d| d.store.clone());
    // On a database, one process per org (they share the IP budget through the slots);
    // in-process, one process serving both.
    let first = budgets(&cfg, at, store.as_ref()).await;
    let second = match at {
        Where::Local => first.clone(),
        _ => budgets(&cfg, at, store.as_ref()).await,
    };
    let clients: Vec<DingTalkClient> = vec![
        first.client_for(&cfg, &org_of(&sim, 0)).expect("client 0"),
        second.client_for(&cfg, &org_of(&sim, 1)).expect("client 1"),
    ];
    let outcomes = futures::future::join_all(clients.iter().map(|c| async move {
        c.crawl(CrawlOptions {
            concurrency: 8,
            roles: true,
        })
        .await
        .map(|snapshot| snapshot.users.len())
        .map_err(|e| e.to_string())
    }))
    .await;
    let ip = sim_get(&sim, "/_sim/ip").await;
    if let Some(db) = db {
        db.close().await;
    }
    Some((ip, outcomes))
}

async fn ip_budget_caps_the_sum(at: Where) {
    let ip_qps = 8;
    let Some((ip, outcomes)) = crawl_both(at, ip_qps, ip_qps).await else {
        return;
    };
    for outcome in &outcomes {
        assert_eq!(
            outcome.as_ref().ok(),
            Some(&40),
            "{at:?}: {outcomes:?} {ip}"
        );
    }
    assert_eq!(ip["counts"]["denied"], 0, "{at:?}: {ip}");
    assert_eq!(ip["banned"], false, "{at:?}: {ip}");
    // The crawls together made several windows' worth of calls, so the cap was exercised.
    let admitted = ip["counts"]["admitted"].as_u64().unwrap_or(0);
    assert!(admitted > u64::from(ip_qps) * 4, "{at:?}: {ip}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_orgs_used_up_budget_does_not_hold_back_another_org() {
    for at in [Where::Local, Where::Sqlite, Where::Postgres] {
        one_org_held_does_not_hold_the_other(at).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_budget_keeps_two_orgs_crawling_at_once_under_the_per_ip_limit() {
    for at in [Where::Local, Where::Sqlite, Where::Postgres] {
        ip_budget_caps_the_sum(at).await;
    }
}

/// The control: without the IP layer the same two crawls go over the simulator's per-IP
/// limit, the gateway denies the IP, and the client names the deny (not a decode error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ip_budget_two_orgs_trip_the_per_ip_limit() {
    let Some((ip, outcomes)) = crawl_both(Where::Local, 0, 8).await else {
        return;
    };
    assert!(ip["counts"]["denied"].as_u64().unwrap_or(0) > 0, "{ip}");
    assert_eq!(ip["counts"]["bans"], 1, "{ip}");
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(!failed.is_empty(), "{outcomes:?}");
    for error in failed {
        assert!(error.contains("refused this IP"), "{error}");
    }
}

/// `/_sim/ip` shows and changes the limit, and a refused call gets the gateway's deny JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_ip_limit_answers_the_gateways_deny_json() {
    let sim = testkit::sim::start(SimConfig {
        orgs: 2,
        ..SimConfig::default()
    })
    .await;
    let http = reqwest::Client::new();
    let base = sim.base_url();
    let ip = sim_get(&sim, "/_sim/ip").await;
    assert_eq!(
        ip["settings"],
        json!({"per_20s": 10000, "ip_qps": 0, "ban_secs": 300})
    );
    testkit::sim::call(
        &http,
        &base,
        Method::POST,
        "/_sim/ip",
        Some(&json!({"ip_qps": 2})),
    )
    .await;
    let one = sim.org(1).expect("org 1");
    let url = format!(
        "{base}/gettoken?appkey={}&appsecret={}",
        one.config().client_id,
        one.config().client_secret
    );
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let r = http.get(&url).send().await.expect("gettoken");
        assert_eq!(r.status(), 200);
        bodies.push(r.json::<Value>().await.expect("json"));
    }
    assert_eq!(bodies[0]["errcode"], 0, "{bodies:?}");
    assert_eq!(bodies[2]["punish"], "deny", "{bodies:?}");
    assert_eq!(bodies[2]["status"], 1111);
    assert_eq!(bodies[2]["source"], "x5");
    assert_eq!(bodies[2]["wait"], 5);
    assert!(bodies[2].get("errcode").is_none());
    // Org 0's calls come from the same IP: banned too.
    let zero = sim.org(0).expect("org 0");
    let r: Value = http
        .get(format!(
            "{base}/gettoken?appkey={}&appsecret={}",
            zero.config().client_id,
            zero.config().client_secret
        ))
        .send()
        .await
        .expect("gettoken")
        .json()
        .await
        .expect("json");
    assert_eq!(r["punish"], "deny", "{r}");
    testkit::sim::call(
        &http,
        &base,
        Method::POST,
        "/_sim/ip",
        Some(&json!({"lift_bans": true, "ip_qps": 0})),
    )
    .await;
    let r: Value = http
        .get(&url)
        .send()
        .await
        .expect("gettoken")
        .json()
        .await
        .expect("json");
    assert_eq!(r["errcode"], 0, "{r}");
}
