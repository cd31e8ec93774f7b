//! Several DingTalk organizations in one deployment (issue 20), end to end: a simulator serving
//! three corps (`dingsync sim --orgs 3` in-process), the real `dingsync` binary configured with
//! three `[[orgs]]`, over real HTTP, on one SQLite database.
//!
//! - the one-shot import takes in every org, each under an OA department of its own, without
//!   merging one corp's people into another's;
//! - with changes on both sides of every org at once, each org converges on its own: a DingTalk
//!   change lands in OA under that org's tree, an OA change in an org's tree reaches that corp
//!   and no other; `plan` is empty for every org afterwards;
//! - one org's DingTalk failing (every call refused) leaves the other two syncing, `/readyz`
//!   names the broken org, and the broken org catches up once its DingTalk answers again.

use std::time::Duration;

use dingtalk_sim::{SimConfig, SimHandle};
use directory_model::{DingUserId, OaDeptId, OaUserId};
use directory_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{AES_KEY, API_TOKEN, CALLBACK_TOKEN, Service, ServiceConfig, http, sim_call};

/// The orgs, in the simulator's corp order.
const ORGS: [&str; 3] = ["hq", "north", "south"];
/// How long convergence may take at most (a bound on a wait, not a timing assertion).
const CONVERGE: Duration = Duration::from_secs(120);

/// A simulator with three corps and a service configuration naming them as `[[orgs]]`.
async fn world(dir: &tempfile::TempDir) -> (SimHandle, ServiceConfig) {
    let sim = testkit::sim::start(SimConfig {
        orgs: ORGS.len(),
        users: 8,
        depts: 3,
        seed: 20,
        ..SimConfig::default()
    })
    .await;
    let mut config = ServiceConfig::for_sim(&sim, dir.path());
    let orgs: Vec<Value> = ORGS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let org = sim.org(i).expect("corp");
            let c = org.config();
            json!({
                "name": name,
                "corp_id": c.corp_id,
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "callback_token": CALLBACK_TOKEN,
                "callback_aes_key": AES_KEY,
            })
        })
        .collect();
    config.overrides = json!({ "orgs": orgs });
    (sim, config)
}

/// `dingsync <args> --config <path>`: exit code and output.
async fn cli(config: &ServiceConfig, args: &[&str]) -> (Option<i32>, String) {
    let path = config.db_path.with_file_name("dingsync.toml");
    std::fs::write(&path, config.to_toml()).expect("write config");
    let out = testkit::process::clean_command(env!("CARGO_BIN_EXE_dingsync"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .expect("run dingsync");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The corp `index`'s users as the simulator holds them (userids).
async fn corp_userids(sim: &SimHandle, index: usize) -> Vec<String> {
    let state = sim_call(
        &http(),
        &sim.base_url(),
        Method::GET,
        &format!("/_sim/orgs/{index}/state"),
        None,
    )
    .await;
    state["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .collect()
}

/// Each org's OA root department, by org name.
async fn roots(store: &Store) -> Vec<(String, OaDeptId)> {
    let mut out = Vec::new();
    for (oa, orgs) in store.org_roots().await.expect("org roots") {
        for org in orgs {
            out.push((org, OaDeptId(oa)));
        }
    }
    out.sort();
    out
}

fn root_of(roots: &[(String, OaDeptId)], org: &str) -> OaDeptId {
    roots
        .iter()
        .find(|(o, _)| o == org)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| panic!("org {org} has a root: {roots:?}"))
}

/// Imports every org with the one-shot command and checks each landed in its own tree.
async fn import_all(sim: &SimHandle, config: &ServiceConfig, store: &Store) {
    let (code, out) = cli(config, &["import"]).await;
    assert_eq!(code, Some(0), "import of every org: {out}");
    for name in ORGS {
        assert!(out.contains(&format!("== org {name} ==")), "{out}");
    }
    let roots = roots(store).await;
    assert_eq!(roots.len(), ORGS.len(), "one OA root per org: {roots:?}");
    let mut total = 0;
    for (i, name) in ORGS.iter().enumerate() {
        let corp = corp_userids(sim, i).await;
        let linked = store
            .for_org(name)
            .id_map_all::<OaUserId>()
            .await
            .expect("id map");
        assert_eq!(linked.len(), corp.len(), "org {name}: every person linked");
        total += corp.len();
    }
    let oa_users = store.snapshot().await.expect("snapshot").users.len();
    assert_eq!(
        oa_users, total,
        "no person of one corp was merged into another's"
    );
}

/// Subscribes each org's callback URL in its corp.
async fn subscribe_all(sim: &SimHandle, config: &ServiceConfig) {
    for (i, name) in ORGS.iter().enumerate() {
        sim_call(
            &http(),
            &sim.base_url(),
            Method::POST,
            &format!("/_sim/orgs/{i}/callback"),
            Some(json!({
                "url": format!("{}/callbacks/dingtalk/{name}", config.base()),
                "token": CALLBACK_TOKEN,
                "aes_key": AES_KEY,
            })),
        )
        .await;
    }
}

/// Creates `id` through the OA API in OA department `dept`.
async fn oa_create_user(config: &ServiceConfig, id: &str, dept: OaDeptId, mobile: &str) {
    let r = http()
        .post(format!("{}/api/v1/users", config.base()))
        .bearer_auth(API_TOKEN)
        .json(
            &json!({"id": id, "name": format!("OA {id}"), "mobile": mobile,
                       "departments": [{"dept": dept.0}], "state": "active"}),
        )
        .send()
        .await
        .expect("OA API answers");
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// Creates `userid` in corp `index` as its DingTalk administrator, in its root department.
async fn ding_create_user(sim: &SimHandle, index: usize, userid: &str, mobile: &str) {
    sim_call(
        &http(),
        &sim.base_url(),
        Method::POST,
        &format!("/_sim/orgs/{index}/users"),
        Some(
            json!({"userid": userid, "name": format!("DT {userid}"), "mobile": mobile,
                    "dept_id_list": "1"}),
        ),
    )
    .await;
}

/// Whether org `name` has synced both of its changes: the OA user reached its corp (and only
/// its corp), the DingTalk user is in OA under the org's root.
async fn org_converged(sim: &SimHandle, store: &Store, index: usize, name: &str) -> bool {
    let oa_id = format!("oa{name}");
    for j in 0..ORGS.len() {
        let has = corp_userids(sim, j).await.contains(&oa_id);
        if has != (j == index) {
            return false;
        }
    }
    let scoped = store.for_org(name);
    let Ok(Some(oa)) = scoped
        .oa_id_of::<OaUserId>(&DingUserId::new(format!("dt{name}")))
        .await
    else {
        return false;
    };
    let root = root_of(&roots(store).await, name);
    match store.get_user(&oa).await {
        Ok(Some(u)) => u.entity.departments.iter().any(|m| m.dept == root),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_orgs_converge_with_changes_on_both_sides_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sim, config) = world(&dir).await;
    let store = Store::connect(&config.database_url()).await.expect("store");
    import_all(&sim, &config, &store).await;
    let mut service = Service::start(&config, &[]).await;
    subscribe_all(&sim, &config).await;
    let roots = roots(&store).await;
    for (i, name) in ORGS.iter().enumerate() {
        oa_create_user(
            &config,
            &format!("oa{name}"),
            root_of(&roots, name),
            &format!("1770000000{i}"),
        )
        .await;
        ding_create_user(&sim, i, &format!("dt{name}"), &format!("1660000000{i}")).await;
    }
    for (i, name) in ORGS.iter().enumerate() {
        let ok = testkit::wait::poll_until(CONVERGE, Duration::from_millis(200), || {
            org_converged(&sim, &store, i, name)
        })
        .await;
        assert!(ok, "org {name} converged\n{}", service.output());
    }
    let (code, out) = cli(&config, &["plan"]).await;
    assert_eq!(code, Some(0), "nothing left to do in any org: {out}");
    let (code, out) = cli(&config, &["status", "--org", "north"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("== org north ==") && !out.contains("== org hq =="),
        "{out}"
    );
    service.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_org_down_leaves_the_others_syncing_and_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (sim, config) = world(&dir).await;
    let store = Store::connect(&config.database_url()).await.expect("store");
    import_all(&sim, &config, &store).await;
    let mut service = Service::start(&config, &[]).await;
    subscribe_all(&sim, &config).await;
    // North's DingTalk refuses every call from now on.
    sim_call(
        &http(),
        &sim.base_url(),
        Method::POST,
        "/_sim/orgs/1/settings",
        Some(json!({"fault_rate": 1.0})),
    )
    .await;
    let roots = roots(&store).await;
    for (i, name) in ORGS.iter().enumerate() {
        oa_create_user(
            &config,
            &format!("oa{name}"),
            root_of(&roots, name),
            &format!("1770000000{i}"),
        )
        .await;
        if *name != "north" {
            ding_create_user(&sim, i, &format!("dt{name}"), &format!("1660000000{i}")).await;
        }
    }
    for (i, name) in ORGS.iter().enumerate().filter(|(_, n)| **n != "north") {
        let ok = testkit::wait::poll_until(CONVERGE, Duration::from_millis(200), || {
            org_converged(&sim, &store, i, name)
        })
        .await;
        assert!(
            ok,
            "org {name} synced while north was down\n{}",
            service.output()
        );
    }
    assert!(
        !corp_userids(&sim, 1).await.contains(&"oanorth".to_owned()),
        "north's DingTalk refused everything"
    );
    let ready = http()
        .get(format!("{}/readyz", config.base()))
        .send()
        .await
        .expect("readyz");
    let status = ready.status().as_u16();
    let body = ready.text().await.unwrap_or_default();
    assert_eq!(
        status, 200,
        "the instance still serves the other orgs: {body}"
    );
    assert!(
        body.contains("org north"),
        "readyz names the broken org: {body}"
    );
    // North's DingTalk answers again; the change queued meanwhile reaches it.
    sim_call(
        &http(),
        &sim.base_url(),
        Method::POST,
        "/_sim/orgs/1/settings",
        Some(json!({"fault_rate": 0.0})),
    )
    .await;
    ding_create_user(&sim, 1, "dtnorth", "16600000001").await;
    let ok = testkit::wait::poll_until(CONVERGE, Duration::from_millis(200), || {
        org_converged(&sim, &store, 1, "north")
    })
    .await;
    assert!(ok, "north recovered\n{}", service.output());
    service.kill().await;
}
