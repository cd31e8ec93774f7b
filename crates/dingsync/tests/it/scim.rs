//! SCIM 2.0 at `/scim/v2` on the real service (`Application`, port 0, SQLite) against the
//! simulator: the two third-party conformance suites, and IdP request shapes end to end.

use std::time::Duration;

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const API_TOKEN: &str = "api-token-0123456789abcdef";
const SCIM_TOKEN: &str = "scim-token-0123456789abcdef";

struct Service {
    base: String,
    config: Config,
    db_url: String,
    sim_base: String,
    stop: CancellationToken,
    _sim: dingtalk_sim::SimHandle,
    _dir: tempfile::TempDir,
}

async fn start() -> Service {
    start_with(|_| {}).await
}

/// [`start`] with `tweak` applied to the config.
async fn start_with(tweak: impl FnOnce(&mut Config)) -> Service {
    let sim = testkit::sim::start(dingtalk_sim::SimConfig {
        users: 3,
        depts: 2,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Config::default();
    c.dingtalk.base_url = sim.base_url();
    c.dingtalk.client_id = sim.config().client_id.clone();
    c.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    let db_url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    c.database.url = Secret::new(db_url.clone());
    c.server.listen = "127.0.0.1:0".into();
    c.api.tokens = vec![Secret::new(API_TOKEN)];
    c.scim.tokens = vec![Secret::new(SCIM_TOKEN)];
    c.console.secure_cookies = false;
    tweak(&mut c);
    // `dingsync import` first, as an operator would: DingTalk's tree, with its root, becomes
    // the OA directory; SCIM users land in the root.
    dingsync::commands::import(&c, false).await.expect("import");
    let app = Application::build(&c).await.expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = testkit::http::client();
    // The first import brings DingTalk's root department into the OA directory; SCIM users
    // land there.
    let url = format!("{base}/api/v1/departments/1");
    let imported =
        testkit::wait::poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .bearer_auth(API_TOKEN)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
    assert!(
        imported,
        "the root department never reached the OA directory"
    );
    Service {
        base,
        config: c,
        db_url,
        sim_base: sim.base_url(),
        stop,
        _sim: sim,
        _dir: dir,
    }
}

async fn scim(
    s: &Service,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = testkit::http::client()
        .request(method, format!("{}/scim/v2{path}", s.base))
        .bearer_auth(SCIM_TOKEN);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs both third-party suites against `s`; false when `python3 -m venv` is missing (loudly).
async fn run_suites(s: &Service) -> bool {
    let venv_ok = std::process::Command::new("python3")
        .args(["-m", "venv", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !venv_ok {
        eprintln!(
            "\n\n!!!!! SKIPPED: `python3 -m venv` is missing; the SCIM suites did NOT run !!!!!\n\n"
        );
        return false;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/scim-suites.sh");
    let url = format!("{}/scim/v2", s.base);
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .arg(&url)
        .arg(SCIM_TOKEN)
        .output()
        .await
        .expect("run scim-suites.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "a SCIM suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("scim2-tester summary:"), "{stdout}");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_conformance_suites_pass_against_the_real_service() {
    let s = start().await;
    run_suites(&s).await;
    s.stop.cancel();
}

/// `[scim] groups = "roles"`: both suites pass, and a Group is a DingTalk role in the `SCIM`
/// role group whose holders are its members, renamed, re-membered and deleted with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_as_roles_pass_the_suites_and_reach_dingtalk() {
    let s = start_with(|c| c.scim.groups = dingsync::scim::GroupsAs::Roles).await;
    run_suites(&s).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (st, v) = scim(
            &s,
            reqwest::Method::POST,
            "/Users",
            Some(idp_user(100 + i, "Ops")),
        )
        .await;
        assert_eq!(st, 201, "{v:#}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    let roles_named = |name: &'static str| {
        let store = store.clone();
        async move {
            let page = store
                .list_roles(&directory_store::RoleQuery {
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .expect("roles");
            page.items
                .iter()
                .filter(|r| r.entity.name == name)
                .map(|r| r.entity.id)
                .collect::<Vec<_>>()
        }
    };
    // Member ids that are no user are kept in SCIM only.
    let (st, g) = scim(
        &s,
        reqwest::Method::POST,
        "/Groups",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Approvers",
            "members": [{"value": ids[0]}, {"value": ids[1]}, {"value": "not-a-user"}]
        })),
    )
    .await;
    assert_eq!(st, 201, "{g:#}");
    let (st, other) = scim(
        &s,
        reqwest::Method::POST,
        "/Groups",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Others"
        })),
    )
    .await;
    assert_eq!(st, 201, "{other:#}");
    let gid = g["id"].as_str().expect("id").to_owned();
    let holders = |role: directory_model::OaRoleId| {
        let store = store.clone();
        async move {
            let page = store
                .list_assignments(&directory_store::AssignmentQuery {
                    role: Some(role),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .expect("assignments");
            let mut users: Vec<String> = page.items.iter().map(|a| a.user.to_string()).collect();
            users.sort();
            users
        }
    };
    let role_id = roles_named("Approvers").await[0];
    let mut first = vec![ids[0].clone(), ids[1].clone()];
    first.sort();
    assert_eq!(holders(role_id).await, first);
    // One request: members added and a rename the directory refuses (another role has the
    // name). Nothing of it is written: no assignment, no rename, no resource revision.
    let oid = other["id"].as_str().expect("id").to_owned();
    let others = roles_named("Others").await[0];
    let (st, e) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Groups/{oid}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": ids[2]}]},
                {"op": "replace", "path": "displayName", "value": "Approvers"},
            ]
        })),
    )
    .await;
    assert!((400..500).contains(&st), "{st} {e:#}");
    assert_eq!(
        roles_named("Others").await,
        vec![others],
        "the rename was not written"
    );
    assert!(
        holders(others).await.is_empty(),
        "no assignment was written"
    );
    let (_, g) = scim(&s, reqwest::Method::GET, &format!("/Groups/{oid}"), None).await;
    assert_eq!(g["displayName"], "Others", "{g:#}");
    assert!(g["members"].as_array().is_none_or(Vec::is_empty), "{g:#}");
    assert_eq!(g["meta"]["version"], other["meta"]["version"], "{g:#}");
    let (_, g) = scim(&s, reqwest::Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(g["members"].as_array().map(Vec::len), Some(3), "{g:#}");
    let (st, v) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Remove", "path": format!("members[value eq \"{}\"]", ids[0])},
                {"op": "add", "path": "members", "value": [{"value": ids[2]}]},
                {"op": "replace", "path": "displayName", "value": "Senior approvers"},
            ]
        })),
    )
    .await;
    assert_eq!(st, 200, "{v:#}");
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let state = testkit::sim::state(&testkit::http::client(), &s.sim_base).await;
    let group_id = state["role_groups"]
        .as_array()
        .expect("role groups")
        .iter()
        .find(|g| g["name"] == "SCIM")
        .map(|g| g["group_id"].clone())
        .expect("the SCIM role group reached DingTalk");
    let role = state["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "Senior approvers")
        .cloned()
        .expect("the Group reached DingTalk as a role");
    assert_eq!(role["group_id"], group_id);
    let mut members: Vec<String> = role["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    members.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(members, expected);
    // Deleting the Group takes the role from its holders and deletes it.
    let (st, _) = scim(&s, reqwest::Method::DELETE, &format!("/Groups/{gid}"), None).await;
    assert_eq!(st, 204);
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let state = testkit::sim::state(&testkit::http::client(), &s.sim_base).await;
    assert!(
        !state["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .any(|r| r["name"] == "Senior approvers"),
        "{:#}",
        state["roles"]
    );
    let (st, _) = scim(&s, reqwest::Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(st, 404);
    s.stop.cancel();
}

/// Extension attributes reach the DingTalk user's `extension` under the configured keys: the
/// Enterprise ones by default, a core attribute by configuration; removing one removes the key,
/// and keys set elsewhere are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_attributes_reach_dingtalk_under_the_configured_keys() {
    let s = start_with(|c| {
        c.scim.extension.insert("nickName".into(), "nick".into());
    })
    .await;
    let mut u = idp_user(7, "Finance");
    u["nickName"] = json!("Sev");
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["costCenter"] = json!("CC-42");
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["division"] = json!("EMEA");
    let (st, v) = scim(&s, reqwest::Method::POST, "/Users", Some(u)).await;
    assert_eq!(st, 201, "{v:#}");
    let id = v["id"].as_str().expect("id").to_owned();
    let oa = api_user(&s, &id).await;
    assert_eq!(oa["job_number"], "E7", "employeeNumber is the job number");
    assert_eq!(
        oa["extension"],
        json!({"costCenter": "CC-42", "division": "EMEA", "nick": "Sev"}),
        "{oa:#}"
    );
    let (st, v) = scim(&s, reqwest::Method::PATCH, &format!("/Users/{id}"), Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division"}]
    }))).await;
    assert_eq!(st, 200, "{v:#}");
    let oa = api_user(&s, &id).await;
    assert_eq!(
        oa["extension"],
        json!({"costCenter": "CC-42", "nick": "Sev"}),
        "{oa:#}"
    );
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let ding = sim_users(&s)
        .await
        .into_iter()
        .find(|u| u["userid"] == json!(id))
        .expect("the user reached DingTalk");
    assert_eq!(ding["job_number"], "E7", "{ding:#}");
    let ext: Value = match &ding["extension"] {
        Value::String(text) => serde_json::from_str(text).expect("extension JSON"),
        other => other.clone(),
    };
    assert_eq!(
        ext,
        json!({"costCenter": "CC-42", "nick": "Sev"}),
        "{ding:#}"
    );
    s.stop.cancel();
}

#[tokio::test]
async fn entra_and_okta_shapes_end_to_end() {
    // A handful of users: one deactivation is a fifth of them, which the default deletion
    // threshold would hold (tested in `a_mass_deactivation_is_held_and_the_idp_still_succeeds`).
    let s = start_with(|c| c.sync.deletion_max_percent = 50.0).await;
    let u = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": "alice@example.com", "externalId": "e-1", "active": true,
        "displayName": "Alice", "title": "Engineer",
        "phoneNumbers": [{"type": "mobile", "value": "13800000001"}],
        "emails": [{"type": "work", "value": "alice@example.com", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
            {"employeeNumber": "E1", "department": "Sales/East"}
    });
    let (st, alice) = scim(&s, reqwest::Method::POST, "/Users", Some(u.clone())).await;
    assert_eq!(st, 201, "{alice:#}");
    let alice_id = alice["id"].as_str().expect("id").to_owned();
    // Uniqueness: same userName, and another userName with the same mobile.
    let (st, e) = scim(&s, reqwest::Method::POST, "/Users", Some(u.clone())).await;
    assert_eq!(
        (st, e["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{e:#}"
    );
    let mut clash = u.clone();
    clash["userName"] = json!("other@example.com");
    clash["emails"] = json!([]);
    let (st, e) = scim(&s, reqwest::Method::POST, "/Users", Some(clash)).await;
    assert_eq!(
        (st, e["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{e:#}"
    );
    // Filter by externalId.
    let (st, l) = scim(
        &s,
        reqwest::Method::GET,
        "/Users?filter=externalId%20eq%20%22e-1%22",
        None,
    )
    .await;
    assert_eq!((st, l["totalResults"].as_u64()), (200, Some(1)), "{l:#}");

    // A second user, no mobile: accepted.
    let (st, bob) = scim(&s, reqwest::Method::POST, "/Users", Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@example.com",
        "name": {"givenName": "Bob", "familyName": "B"}
    }))).await;
    assert_eq!(st, 201, "{bob:#}");
    let bob_id = bob["id"].as_str().expect("id").to_owned();

    // No mobile: a dead letter naming `mobile`, until one arrives.
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    let dead =
        testkit::wait::poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
            let (store, bob_id) = (store.clone(), bob_id.clone());
            async move {
                store.outbox_dead_letters(None, 100).await.is_ok_and(|d| {
                    d.iter().any(|e| {
                        e.oa_id == bob_id
                            && e.last_error
                                .as_deref()
                                .is_some_and(|m| m.contains("mobile"))
                    })
                })
            }
        })
        .await;
    assert!(dead, "bob's push waits as a dead letter naming the mobile");
    let (st, b) = scim(&s, reqwest::Method::PATCH, &format!("/Users/{bob_id}"), Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "13800000002"}]}]
    }))).await;
    assert_eq!(st, 200, "{b:#}");
    let http = testkit::http::client();
    let pushed =
        testkit::wait::poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
            let (http, sim, bob_id) = (http.clone(), s.sim_base.clone(), bob_id.clone());
            async move {
                testkit::sim::state(&http, &sim)
                    .await
                    .to_string()
                    .contains(&bob_id)
            }
        })
        .await;
    assert!(
        pushed,
        "once the mobile arrives, bob reaches DingTalk by himself"
    );

    // Entra: capitalised ops, "False" strings, the manager path.
    let (st, b) = scim(&s, reqwest::Method::PATCH, &format!("/Users/{bob_id}"), Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Bobby"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": alice_id},
        ]
    }))).await;
    assert_eq!(st, 200, "{b:#}");
    let oa = api_user(&s, &bob_id).await;
    assert_eq!(oa["name"], "Bobby");
    assert_eq!(oa["manager"], json!(alice_id));

    // Okta: PATCH without path (deactivate), then reactivate.
    let (st, b) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Users/{bob_id}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": "False"}}]
        })),
    )
    .await;
    assert_eq!((st, &b["active"]), (200, &json!(false)), "{b:#}");
    assert_eq!(
        api_status(&s, &bob_id).await,
        404,
        "leave = delete removes the OA user"
    );
    let (st, b) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Users/{bob_id}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": true}}]
        })),
    )
    .await;
    assert_eq!((st, &b["active"]), (200, &json!(true)), "{b:#}");
    assert_eq!(
        api_user(&s, &bob_id).await["name"],
        "Bobby",
        "re-created under the same id"
    );

    // Groups → departments: members become memberships.
    let (st, g) = scim(
        &s,
        reqwest::Method::POST,
        "/Groups",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Platform",
            "members": [{"value": alice_id}]
        })),
    )
    .await;
    assert_eq!(st, 201, "{g:#}");
    let gid: i64 = g["id"].as_str().expect("id").parse().expect("numeric");
    let depts: Vec<i64> = api_user(&s, &alice_id).await["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .map(|m| m["dept"].as_i64().unwrap_or(0))
        .collect();
    assert!(depts.contains(&gid), "{depts:?}");
    let (st, _) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Remove", "path": format!("members[value eq \"{alice_id}\"]")}]
        })),
    )
    .await;
    assert_eq!(st, 200);
    let depts: Vec<i64> = api_user(&s, &alice_id).await["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .map(|m| m["dept"].as_i64().unwrap_or(0))
        .collect();
    assert!(!depts.contains(&gid), "{depts:?}");
    s.stop.cancel();
}

async fn api_status(s: &Service, id: &str) -> u16 {
    testkit::http::client()
        .get(format!("{}/api/v1/users/{id}", s.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("get")
        .status()
        .as_u16()
}

async fn api_user(s: &Service, id: &str) -> Value {
    testkit::http::client()
        .get(format!("{}/api/v1/users/{id}", s.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// Sends `reqs` (method, path, body) eight at a time; returns the statuses in order.
async fn send_all(s: &Service, reqs: Vec<(reqwest::Method, String, Value)>) -> Vec<(u16, Value)> {
    use futures::StreamExt;
    futures::stream::iter(reqs)
        .map(|(m, p, b)| async move { scim(s, m, &p, Some(b)).await })
        .buffered(8)
        .collect()
        .await
}

fn idp_user(i: usize, dept: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": format!("user{i:04}@example.com"), "externalId": format!("x{i}"),
        "displayName": format!("User {i}"), "active": true,
        "phoneNumbers": [{"type": "mobile", "value": format!("139{i:08}")}],
        "emails": [{"type": "work", "value": format!("user{i:04}@example.com"), "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
            {"employeeNumber": format!("E{i}"), "department": dept}
    })
}

async fn sim_users(s: &Service) -> Vec<Value> {
    let state = testkit::sim::state(&testkit::http::client(), &s.sim_base).await;
    state["users"].as_array().cloned().unwrap_or_default()
}

/// An IdP-style run (issue 17): 1,000 users and 50 groups, renames, moves, manager changes and
/// deactivations through SCIM, all reaching the simulator; then the same requests again, which
/// change nothing in the directory and create nothing in DingTalk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_provisioning_run_reaches_dingtalk_and_a_rerun_changes_nothing() {
    const USERS: usize = 1000;
    const GROUPS: usize = 50;
    let s = start().await;
    let before = sim_users(&s).await.len();
    let started = std::time::Instant::now();
    let post = reqwest::Method::POST;
    let reqs = (0..USERS)
        .map(|i| {
            (
                post.clone(),
                "/Users".to_owned(),
                idp_user(i, &format!("Region{}/Team{}", i % 5, i % 4)),
            )
        })
        .collect();
    let users = send_all(&s, reqs).await;
    let ids: Vec<String> = users
        .iter()
        .map(|(st, v)| {
            assert_eq!(*st, 201, "{v:#}");
            v["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let reqs = (0..GROUPS)
        .map(|g| {
            let members: Vec<Value> = (0..USERS)
                .filter(|i| i % GROUPS == g)
                .map(|i| json!({"value": ids[i]}))
                .collect();
            (
                post.clone(),
                "/Groups".to_owned(),
                json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("Group {g}"), "members": members}),
            )
        })
        .collect();
    for (st, v) in send_all(&s, reqs).await {
        assert_eq!(st, 201, "{v:#}");
    }
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let changes: Vec<(reqwest::Method, String, Value)> = (0..USERS)
        .filter_map(|i| {
            let path = format!("/Users/{}", ids[i]);
            let ops = match i % 10 {
                0 => json!([{"op": "Replace", "path": "displayName", "value": format!("Renamed {i}")}]),
                1 => json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Moved/Here"}]),
                2 => json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": ids[0]}]),
                3 if i < 200 => json!([{"op": "replace", "value": {"active": false}}]),
                _ => return None,
            };
            Some((reqwest::Method::PATCH, path, patch(ops)))
        })
        .collect();
    for (st, v) in send_all(&s, changes).await {
        assert_eq!(st, 200, "{v:#}");
    }
    let accepted = started.elapsed();
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    testkit::drain::wait_drained(&store, Duration::from_secs(600))
        .await
        .expect("the pusher drains");
    let reached = started.elapsed();
    let deactivated = (0..USERS).filter(|i| i % 10 == 3 && *i < 200).count();
    let in_ding = sim_users(&s).await;
    assert_eq!(
        in_ding.len(),
        before + USERS - deactivated,
        "every active user, once"
    );
    println!(
        "SCIM provisioning: {USERS} users + {GROUPS} groups + changes accepted in {accepted:?}; \
         in DingTalk after {reached:?}"
    );
    let find = |i: usize| {
        in_ding
            .iter()
            .find(|u| u["userid"] == json!(ids[i]))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(find(10)["name"], "Renamed 10");
    assert_eq!(find(12)["manager_userid"], json!(ids[0]));

    // The re-run: every user PUT as the IdP last sent it (active ones), nothing changes.
    let outbox_before = store
        .outbox_list(None, None, 100_000)
        .await
        .expect("outbox")
        .len();
    let mut rerun = Vec::new();
    for id in &ids {
        let (st, cur) = scim(&s, reqwest::Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(st, 200);
        rerun.push((reqwest::Method::PUT, format!("/Users/{id}"), cur));
    }
    for (st, v) in send_all(&s, rerun).await {
        assert_eq!(st, 200, "{v:#}");
    }
    let outbox_after = store
        .outbox_list(None, None, 100_000)
        .await
        .expect("outbox");
    // Nothing at all is queued: the re-run finds every user as it left it. (Concurrent creates
    // of one department used to leave the loser's user outside it, moved only by the re-run.)
    let new: Vec<String> = outbox_after
        .iter()
        .skip(outbox_before)
        .map(|e| format!("{:?} {} {:?}", e.kind, e.oa_id, e.op))
        .collect();
    assert!(
        new.is_empty(),
        "a re-run of the same requests queues nothing: {new:#?}"
    );
    assert_eq!(
        sim_users(&s).await.len(),
        in_ding.len(),
        "no duplicate in DingTalk"
    );
    s.stop.cancel();
}

/// An IdP misconfigured to unassign everyone (issue 17): deactivations past the deletion
/// threshold succeed for the IdP but are held for an operator, so DingTalk keeps those users;
/// those under it reach DingTalk. Reactivating a held user releases its hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_deactivation_is_held_and_the_idp_still_succeeds() {
    const USERS: usize = 30;
    const DEACTIVATED: usize = 20;
    let s = start().await;
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    let mut ids = Vec::new();
    for i in 0..USERS {
        let (st, v) = scim(
            &s,
            reqwest::Method::POST,
            "/Users",
            Some(idp_user(i, "Wave")),
        )
        .await;
        assert_eq!(st, 201, "{v:#}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let (_, total) = store.counts().await.expect("counts");
    let total = usize::try_from(total).expect("count");
    assert!(total >= USERS, "{total}");
    // Sequential deactivations, as an IdP's provisioning cycle sends them.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]});
    for id in ids.iter().take(DEACTIVATED) {
        let (st, v) = scim(
            &s,
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch.clone()),
        )
        .await;
        assert_eq!(
            (st, &v["active"]),
            (200, &json!(false)),
            "the IdP gets its success: {v:#}"
        );
    }
    // The default threshold lets 10 % of the directory go; the rest is held.
    let allowed = total / 10;
    let held = store
        .held_deletions(Some(directory_store::HoldState::Held))
        .await
        .expect("held");
    assert_eq!(held.len(), DEACTIVATED - allowed, "{held:#?}");
    assert!(
        held.iter()
            .all(|h| h.kind == directory_store::EntityKind::User
                && h.reason.starts_with(directory_store::SCIM_HOLD_REASON))
    );
    for (n, id) in ids.iter().take(DEACTIVATED).enumerate() {
        let expected = if n < allowed { 404 } else { 200 };
        assert_eq!(api_status(&s, id).await, expected, "user #{n}");
        let (_, v) = scim(&s, reqwest::Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(
            v["active"],
            json!(false),
            "the IdP reads back what it wrote"
        );
    }
    // The same deactivation again holds nothing twice.
    let again = &ids[DEACTIVATED - 1];
    let (st, _) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Users/{again}"),
        Some(patch.clone()),
    )
    .await;
    assert_eq!(st, 200);
    let held_now = store
        .held_deletions(Some(directory_store::HoldState::Held))
        .await
        .expect("held");
    assert_eq!(held_now.len(), held.len());
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let in_ding: Vec<String> = sim_users(&s)
        .await
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(in_ding.contains(id), n >= allowed, "user #{n} in DingTalk");
    }
    // Reactivating a held user releases its hold; the user never left DingTalk.
    let (st, v) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Users/{again}"),
        Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true}}]})),
    )
    .await;
    assert_eq!((st, &v["active"]), (200, &json!(true)), "{v:#}");
    let rejected = store
        .held_deletions(Some(directory_store::HoldState::Rejected))
        .await
        .expect("held");
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert_eq!(rejected[0].oa_id, *again);
    s.stop.cancel();
}

const OPERATOR_PASSWORD: &str = "correct horse battery";

/// A console session of operator `olga` for the admin API: (cookie header, CSRF token).
async fn admin_session(s: &Service) -> (String, String) {
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    let now = dingsync::clock::system_clock().now_ms();
    dingsync::admin::users::add_user(
        &store,
        "olga",
        console::Role::Operator,
        OPERATOR_PASSWORD,
        now,
    )
    .await
    .expect("add user");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut cookies = std::collections::BTreeMap::new();
    let keep = |cookies: &mut std::collections::BTreeMap<String, String>, r: &reqwest::Response| {
        for line in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let line = line.to_str().expect("ascii");
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    };
    let header = |c: &std::collections::BTreeMap<String, String>| {
        c.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let form = http
        .get(format!("{}/console/login", s.base))
        .send()
        .await
        .expect("login page");
    keep(&mut cookies, &form);
    let page = form.text().await.expect("body");
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a csrf field") + marker.len();
    let csrf = page[at..].split('"').next().expect("value").to_owned();
    let signed = http
        .post(format!("{}/console/login", s.base))
        .header(reqwest::header::COOKIE, header(&cookies))
        .form(&[
            ("username", "olga"),
            ("password", OPERATOR_PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed.status().as_u16(), 303, "signed in");
    keep(&mut cookies, &signed);
    let cookie = header(&cookies);
    let me: Value = http
        .get(format!("{}/api/v1/admin/me", s.base))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let token = me["csrf_token"].as_str().expect("csrf_token").to_owned();
    (cookie, token)
}

/// Approves or rejects held deletion `hold` through the admin API; (status, body).
async fn decide(
    s: &Service,
    session: &(String, String),
    hold: i64,
    decision: &str,
) -> (u16, Value) {
    let r = testkit::http::client()
        .post(format!("{}/api/v1/admin/actions", s.base))
        .header(reqwest::header::COOKIE, &session.0)
        .header("x-csrf-token", &session.1)
        .json(
            &json!({"action": "decide_deletion", "hold": hold.to_string(),
                      "entry": null, "decision": decision}),
        )
        .send()
        .await
        .expect("action");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn held_now(store: &directory_store::Store) -> Vec<directory_store::HeldDeletion> {
    store
        .held_deletions(Some(directory_store::HoldState::Held))
        .await
        .expect("held")
}

/// Creates `n` IdP users and waits until DingTalk has them; their ids.
async fn provision(s: &Service, store: &directory_store::Store, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (st, v) = scim(
            s,
            reqwest::Method::POST,
            "/Users",
            Some(idp_user(i, "Wave")),
        )
        .await;
        assert_eq!(st, 201, "{v:#}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    testkit::drain::wait_drained(store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    ids
}

fn deactivation() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]})
}

async fn ding_ids(s: &Service) -> Vec<String> {
    sim_users(s)
        .await
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .collect()
}

/// Gap 1 of issue 17: a held SCIM deactivation is the OA side's deletion. Approving it (the
/// admin API, `reconcile --yes`) deletes the person in OA and, through the outbox, in DingTalk;
/// rejecting it keeps them on both sides and SCIM says they are active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_held_scim_deactivation_deletes_in_dingtalk_and_rejecting_keeps_both_sides() {
    const USERS: usize = 30;
    const DEACTIVATED: usize = 20;
    let s = start().await;
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    let ids = provision(&s, &store, USERS).await;
    for id in ids.iter().take(DEACTIVATED) {
        let (st, v) = scim(
            &s,
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(deactivation()),
        )
        .await;
        assert_eq!(st, 200, "{v:#}");
    }
    let held = held_now(&store).await;
    assert!(held.len() >= 10, "most are held: {held:#?}");
    let held_ids: Vec<String> = held.iter().map(|h| h.oa_id.clone()).collect();
    let session = admin_session(&s).await;

    // Rejected: the person stays in OA and DingTalk, and SCIM reads them as active again.
    let kept = held[0].clone();
    let (st, v) = decide(&s, &session, kept.id, "reject").await;
    assert_eq!(st, 200, "{v:#}");
    assert_eq!(api_user(&s, &kept.oa_id).await["state"], "active");
    let (_, v) = scim(
        &s,
        reqwest::Method::GET,
        &format!("/Users/{}", kept.oa_id),
        None,
    )
    .await;
    assert_eq!(v["active"], json!(true), "{v:#}");

    // Approved through the admin API: gone from OA at once.
    let one = held[1].clone();
    let (st, v) = decide(&s, &session, one.id, "approve").await;
    assert_eq!(st, 200, "{v:#}");
    assert_eq!(api_status(&s, &one.oa_id).await, 404);

    // The rest approved by `reconcile --yes`.
    dingsync::commands::reconcile_cmd(&s.config, true)
        .await
        .expect("reconcile --yes");
    assert!(held_now(&store).await.is_empty(), "nothing waits any more");
    let approved = store
        .held_deletions(Some(directory_store::HoldState::Approved))
        .await
        .expect("approved");
    assert_eq!(approved.len(), held.len() - 1);
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let in_ding = ding_ids(&s).await;
    for (n, id) in ids.iter().enumerate() {
        let expected = n >= DEACTIVATED || *id == kept.oa_id;
        assert_eq!(in_ding.contains(id), expected, "user #{n} in DingTalk");
        assert_eq!(
            api_status(&s, id).await,
            if expected { 200 } else { 404 },
            "user #{n} in OA"
        );
    }
    // The IdP still reads what it wrote for the approved ones, and a reactivation brings one
    // back under the same id.
    let back = &held_ids[2];
    let (_, v) = scim(&s, reqwest::Method::GET, &format!("/Users/{back}"), None).await;
    assert_eq!(v["active"], json!(false), "{v:#}");
    let (st, v) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Users/{back}"),
        Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true}}]})),
    )
    .await;
    assert_eq!(st, 200, "{v:#}");
    assert_eq!(
        api_status(&s, back).await,
        200,
        "back in OA under the same id"
    );
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    // DingTalk keeps a deleted user's userid, so the person comes back under a reissued one
    // (`<id>.1`), linked to the same OA id.
    let ding = store
        .ding_id_of(&directory_model::OaUserId::new(back.as_str()))
        .await
        .expect("id map")
        .expect("the reactivated user is linked to DingTalk again");
    assert_ne!(ding.as_str(), back.as_str(), "a new DingTalk userid");
    assert!(
        ding_ids(&s).await.contains(&ding.as_str().to_owned()),
        "a reactivation after an approved deletion is created in DingTalk again"
    );
    s.stop.cancel();
}

/// Gap 2 of issue 17: with `[scim] leave = "left"` a mass deactivation is held like a deletion
/// (approving marks the person left, which takes them out of DingTalk), and so is a mass
/// `DELETE /Users/{id}`: the IdP gets its 204 and a 404 afterwards, the person stays until an
/// operator decides; rejecting gives the resource back to SCIM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_left_and_delete_past_the_threshold_are_held() {
    const USERS: usize = 30;
    const DEACTIVATED: usize = 20;
    const DELETED: usize = 4;
    let s = start_with(|c| c.scim.leave = dingsync::scim::Leave::Left).await;
    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    let ids = provision(&s, &store, USERS).await;
    let (_, total) = store.counts().await.expect("counts");
    let allowed = usize::try_from(total).expect("count") / 10;
    for id in ids.iter().take(DEACTIVATED) {
        let (st, v) = scim(
            &s,
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(deactivation()),
        )
        .await;
        assert_eq!((st, &v["active"]), (200, &json!(false)), "{v:#}");
    }
    assert_eq!(held_now(&store).await.len(), DEACTIVATED - allowed);
    for (n, id) in ids.iter().take(DEACTIVATED).enumerate() {
        let expected = if n < allowed { "left" } else { "active" };
        assert_eq!(api_user(&s, id).await["state"], expected, "user #{n}");
    }
    // DELETEs past the threshold: 204, then 404 for the IdP; the people stay, held.
    let deleted: Vec<String> = ids[DEACTIVATED..DEACTIVATED + DELETED].to_vec();
    for id in &deleted {
        let (st, v) = scim(&s, reqwest::Method::DELETE, &format!("/Users/{id}"), None).await;
        assert_eq!(st, 204, "{v:#}");
        let (st, _) = scim(&s, reqwest::Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(st, 404);
        assert_eq!(api_user(&s, id).await["state"], "active");
    }
    let held = held_now(&store).await;
    assert_eq!(held.len(), DEACTIVATED - allowed + DELETED, "{held:#?}");
    let hold_of = |id: &str| held.iter().find(|h| h.oa_id == id).expect("held").id;
    let session = admin_session(&s).await;
    // A rejected DELETE gives the resource back; an approved one deletes the person.
    let (st, v) = decide(&s, &session, hold_of(&deleted[0]), "reject").await;
    assert_eq!(st, 200, "{v:#}");
    let (st, v) = scim(
        &s,
        reqwest::Method::GET,
        &format!("/Users/{}", deleted[0]),
        None,
    )
    .await;
    assert_eq!(
        (st, &v["userName"]),
        (200, &json!(format!("user{:04}@example.com", DEACTIVATED))),
        "{v:#}"
    );
    let (st, v) = decide(&s, &session, hold_of(&deleted[1]), "approve").await;
    assert_eq!(st, 200, "{v:#}");
    assert_eq!(api_status(&s, &deleted[1]).await, 404);
    // An approved `left` marks the person left.
    let (st, v) = decide(&s, &session, hold_of(&ids[DEACTIVATED - 1]), "approve").await;
    assert_eq!(st, 200, "{v:#}");
    assert_eq!(api_user(&s, &ids[DEACTIVATED - 1]).await["state"], "left");
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let in_ding = ding_ids(&s).await;
    assert!(in_ding.contains(&deleted[0]), "rejected: still in DingTalk");
    assert!(
        !in_ding.contains(&deleted[1]),
        "approved DELETE: gone from DingTalk"
    );
    assert!(
        !in_ding.contains(&ids[DEACTIVATED - 1]),
        "approved leave: gone from DingTalk"
    );
    assert!(
        in_ding.contains(&ids[DEACTIVATED - 2]),
        "still held: still in DingTalk"
    );
    assert!(
        !in_ding.contains(&ids[0]),
        "under the threshold: left at once"
    );
    s.stop.cancel();
}

/// Gap 3 of issue 17: a configured extension with its own schema URN is served like the
/// Enterprise one — kept on POST, PUT and PATCH (with an extension path), read back, published
/// in `Schemas` and `ResourceTypes` — and reaches DingTalk's `extension`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_extension_urn_round_trips_and_reaches_dingtalk() {
    const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
    let s = start_with(|c| {
        c.scim
            .extension
            .insert(format!("{ACME}:costCenter"), "acmeCost".into());
        c.scim
            .extension
            .insert(format!("{ACME}:badge"), "badge".into());
    })
    .await;
    // Published truthfully.
    let (_, rt) = scim(&s, reqwest::Method::GET, "/ResourceTypes/User", None).await;
    let exts: Vec<&str> = rt["schemaExtensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .filter_map(|e| e["schema"].as_str())
        .collect();
    assert!(exts.contains(&ACME), "{rt:#}");
    let (st, schema) = scim(&s, reqwest::Method::GET, &format!("/Schemas/{ACME}"), None).await;
    assert_eq!(st, 200, "{schema:#}");
    let mut names: Vec<&str> = schema["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["badge", "costCenter"]);
    let (_, all) = scim(&s, reqwest::Method::GET, "/Schemas", None).await;
    assert!(
        all["Resources"]
            .as_array()
            .expect("schemas")
            .iter()
            .any(|x| x["id"] == ACME),
        "{all:#}"
    );

    // POST keeps it.
    let mut u = idp_user(3, "Finance");
    u["schemas"]
        .as_array_mut()
        .expect("schemas")
        .push(json!(ACME));
    u[ACME] = json!({"costCenter": "CC-1", "badge": "B-7"});
    let (st, v) = scim(&s, reqwest::Method::POST, "/Users", Some(u.clone())).await;
    assert_eq!(st, 201, "{v:#}");
    assert_eq!(
        v[ACME],
        json!({"costCenter": "CC-1", "badge": "B-7"}),
        "{v:#}"
    );
    assert!(
        v["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!(ACME)),
        "{v:#}"
    );
    let id = v["id"].as_str().expect("id").to_owned();
    assert_eq!(api_user(&s, &id).await["extension"]["acmeCost"], "CC-1");
    // PUT replaces it.
    u[ACME] = json!({"costCenter": "CC-2"});
    let (st, v) = scim(&s, reqwest::Method::PUT, &format!("/Users/{id}"), Some(u)).await;
    assert_eq!(st, 200, "{v:#}");
    assert_eq!(v[ACME], json!({"costCenter": "CC-2"}), "{v:#}");
    // PATCH with an extension path.
    let (st, v) = scim(
        &s,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": format!("{ACME}:costCenter"), "value": "CC-3"},
                           {"op": "add", "path": format!("{ACME}:badge"), "value": "B-9"}]
        })),
    )
    .await;
    assert_eq!(st, 200, "{v:#}");
    let (_, v) = scim(&s, reqwest::Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(
        v[ACME],
        json!({"costCenter": "CC-3", "badge": "B-9"}),
        "{v:#}"
    );
    // Filters reach it too.
    let filter = format!("{ACME}:costCenter eq \"CC-3\"");
    let (st, found) = scim(
        &s,
        reqwest::Method::GET,
        &format!("/Users?filter={}", urlencode(&filter)),
        None,
    )
    .await;
    assert_eq!((st, &found["totalResults"]), (200, &json!(1)), "{found:#}");

    let store = directory_store::Store::connect(&s.db_url)
        .await
        .expect("store");
    testkit::drain::wait_drained(&store, Duration::from_secs(120))
        .await
        .expect("the pusher drains");
    let ding = sim_users(&s)
        .await
        .into_iter()
        .find(|u| u["userid"] == json!(id))
        .expect("the user reached DingTalk");
    let ext: Value = match &ding["extension"] {
        Value::String(text) => serde_json::from_str(text).expect("extension JSON"),
        other => other.clone(),
    };
    assert_eq!(ext["acmeCost"], "CC-3", "{ding:#}");
    assert_eq!(ext["badge"], "B-9", "{ding:#}");
    s.stop.cancel();
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
