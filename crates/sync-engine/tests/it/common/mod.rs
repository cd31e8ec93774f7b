//! Test helpers: a simulator on a port-0 listener, a fresh SQLite directory in a temporary
//! folder, an engine context wired to both, and an independent comparison of the simulator's
//! `GET /_sim/state` with the directory (read straight from the simulator's JSON, not through
//! the engine's converter, so a conversion mistake cannot hide itself).

#![allow(dead_code)] // Each test module uses a different subset of the helpers.

pub mod receiver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dingtalk_client::{ClientConfig, DingTalkClient};
use dingtalk_sim::{SimConfig, SimHandle};
use directory_model::{
    DingDeptId, DingRoleId, DingUserId, OaDeptId, OaRoleId, OaUserId, Snapshot, UserState,
};
use directory_store::{NewInboxEvent, Store};
use serde_json::{Value, json};
use sync_engine::{ManualClock, Policy, SyncContext};
use testkit::db::TempDb;

/// A full import through `ctx` with default options, which most tests start from.
pub async fn import_all(ctx: &SyncContext) -> sync_engine::import::ImportReport {
    sync_engine::import::import(
        ctx,
        &sync_engine::import::ImportOptions::default(),
        &sync_engine::import::NoProgress,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("import")
}

/// A simulator, a directory and an engine context joined together.
pub struct Harness {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub base: String,
    pub store: Store,
    pub ctx: SyncContext,
    pub clock: Arc<ManualClock>,
    /// The database behind `store` (its SQLite file lives as long as the harness).
    pub db: TempDb,
}

impl Harness {
    /// A simulator generated from `config` and an empty directory.
    pub async fn start(config: SimConfig) -> Harness {
        Self::start_with(config, Policy::default(), |_| {}).await
    }

    /// Like [`Harness::start`] with a policy and a chance to adjust the client configuration.
    pub async fn start_with(
        config: SimConfig,
        policy: Policy,
        tune: impl FnOnce(&mut ClientConfig),
    ) -> Harness {
        Self::start_on(config, policy, tune, TempDb::sqlite().await).await
    }

    /// Like [`Harness::start`], on a fresh database of the PostgreSQL server at
    /// `DINGSYNC_TEST_PG_URL`; `None` when that variable is unset (the case is skipped).
    pub async fn on_postgres(config: SimConfig) -> Option<Harness> {
        let db = TempDb::postgres_if_configured().await?;
        Some(Self::start_on(config, Policy::default(), |_| {}, db).await)
    }

    async fn start_on(
        config: SimConfig,
        policy: Policy,
        tune: impl FnOnce(&mut ClientConfig),
        db: TempDb,
    ) -> Harness {
        let qps = config.qps;
        let sim = testkit::sim::start(config).await;
        let base = sim.base_url();
        let store = db.store.clone();
        let sim_config = sim.config();
        let mut client_config = ClientConfig::new(
            sim_config.client_id.clone(),
            sim_config.client_secret.clone(),
        )
        .with_base_url(base.clone());
        client_config.qps_per_api = qps;
        client_config.rng_seed = Some(7);
        client_config.backoff.initial = std::time::Duration::from_millis(5);
        client_config.backoff.max = std::time::Duration::from_millis(50);
        tune(&mut client_config);
        let client = DingTalkClient::new(client_config).expect("client builds");
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let ctx = SyncContext::new(store.clone(), client, policy)
            .with_clock(clock.clone())
            .with_actor("test");
        Harness {
            sim,
            http: testkit::http::client(),
            base,
            store,
            ctx,
            clock,
            db,
        }
    }

    /// `GET /_sim/...`; panics unless the simulator answered 2xx.
    pub async fn get(&self, path: &str) -> Value {
        let path = format!("/_sim{path}");
        testkit::sim::call(&self.http, &self.base, reqwest::Method::GET, &path, None).await
    }

    /// A `/_sim` admin write; panics unless the simulator accepted it.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let path = format!("/_sim{path}");
        testkit::sim::call(&self.http, &self.base, method, &path, Some(&body)).await
    }

    /// The simulator's whole org.
    pub async fn state(&self) -> Value {
        self.get("/state").await
    }

    /// Puts every simulator event after `after` into the inbox as a new-dialect HTTP push
    /// payload (what the binary's callback route stores); returns the last event id.
    pub async fn events_into_inbox(&self, after: u64) -> u64 {
        let events = self.get(&format!("/events?after={after}")).await;
        let mut last = after;
        for e in events["events"].as_array().cloned().unwrap_or_default() {
            let id = e["id"].as_u64().expect("event id");
            last = last.max(id);
            let mut payload = e["data"].as_object().cloned().unwrap_or_default();
            payload.insert("EventType".into(), e["event_type"].clone());
            payload.insert("EventTime".into(), e["time_ms"].clone());
            payload.insert("CorpId".into(), json!("dingsimcorpid"));
            payload.insert("eventId".into(), json!(format!("sim-{id}")));
            self.store
                .inbox_put(NewInboxEvent {
                    dedupe_key: format!("sim-{id}"),
                    event_type: e["event_type"].as_str().unwrap_or_default().to_owned(),
                    payload_json: Value::Object(payload).to_string(),
                    received_at_ms: self.ctx.now_ms(),
                })
                .await
                .expect("inbox_put");
        }
        last
    }
}

fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Compares the simulator's state with the directory through the id map; returns every
/// difference (empty when they agree). Users outside `only_users` (when given) are ignored.
pub async fn differences(h: &Harness) -> Vec<String> {
    let state = h.state().await;
    let snap: Snapshot = h.store.snapshot().await.expect("snapshot");
    let mut diffs = Vec::new();
    let oa_dept = |d: i64| {
        let store = h.store.clone();
        async move {
            store
                .oa_id_of::<OaDeptId>(&DingDeptId(d))
                .await
                .expect("id map")
        }
    };
    let oa_user = |u: String| {
        let store = h.store.clone();
        async move {
            store
                .oa_id_of::<OaUserId>(&DingUserId::new(u))
                .await
                .expect("id map")
        }
    };

    let depts = state["departments"].as_array().cloned().unwrap_or_default();
    if depts.len() != snap.departments.len() {
        diffs.push(format!(
            "department count: DingTalk {} vs OA {}",
            depts.len(),
            snap.departments.len()
        ));
    }
    for d in &depts {
        let id = d["dept_id"].as_i64().expect("dept_id");
        let Some(oa_id) = oa_dept(id).await else {
            diffs.push(format!("department {id} is not linked"));
            continue;
        };
        let Some(oa) = snap.departments.get(&oa_id) else {
            diffs.push(format!("department {id} (OA {oa_id}) missing in OA"));
            continue;
        };
        if d["name"].as_str() != Some(oa.name.as_str()) {
            diffs.push(format!("department {id} name {} vs {}", d["name"], oa.name));
        }
        let parent = match d["parent_id"].as_i64() {
            Some(p) => oa_dept(p).await,
            None => None,
        };
        if parent != oa.parent {
            diffs.push(format!(
                "department {id} parent {parent:?} vs {:?}",
                oa.parent
            ));
        }
        if d["order"].as_i64().unwrap_or(0) != oa.order {
            diffs.push(format!(
                "department {id} order {} vs {}",
                d["order"], oa.order
            ));
        }
        let mut managers = BTreeSet::new();
        for m in ids_of(&d["dept_manager_userid_list"]) {
            managers.insert(oa_user(m).await);
        }
        let oa_managers: BTreeSet<Option<OaUserId>> =
            oa.managers.iter().cloned().map(Some).collect();
        if managers != oa_managers {
            diffs.push(format!(
                "department {id} managers {managers:?} vs {oa_managers:?}"
            ));
        }
        if text(&d["source_identifier"]) != oa.source_identifier {
            diffs.push(format!("department {id} source_identifier"));
        }
        if d["hide_dept"].as_bool().unwrap_or(false) != oa.hide
            || d["outer_dept"].as_bool().unwrap_or(false) != oa.outer
        {
            diffs.push(format!("department {id} hide/outer"));
        }
    }

    let users = state["users"].as_array().cloned().unwrap_or_default();
    let active = snap
        .users
        .values()
        .filter(|u| u.state == UserState::Active)
        .count();
    if users.len() != active {
        diffs.push(format!(
            "active users: DingTalk {} vs OA {active}",
            users.len()
        ));
    }
    for u in &users {
        let userid = u["userid"].as_str().expect("userid").to_owned();
        let Some(oa_id) = oa_user(userid.clone()).await else {
            diffs.push(format!("user {userid} is not linked"));
            continue;
        };
        let Some(oa) = snap.users.get(&oa_id) else {
            diffs.push(format!("user {userid} missing in OA"));
            continue;
        };
        let mut problems = Vec::new();
        if u["name"].as_str() != Some(oa.name.as_str()) {
            problems.push("name");
        }
        if oa.state != UserState::Active {
            problems.push("state");
        }
        if text(&u["mobile"]) != oa.mobile.as_ref().map(|m| m.number.clone()) {
            problems.push("mobile");
        }
        for (field, value) in [
            ("email", &oa.email),
            ("job_number", &oa.job_number),
            ("org_email", &oa.org_email),
            ("telephone", &oa.telephone),
            ("work_place", &oa.work_place),
            ("remark", &oa.remark),
        ] {
            if text(&u[field]) != *value {
                problems.push(field);
            }
        }
        if u["hired_date"].as_i64() != oa.hired_date_ms {
            problems.push("hired_date");
        }
        let manager = match text(&u["manager_userid"]) {
            Some(m) => oa_user(m).await,
            None => None,
        };
        if manager != oa.manager {
            problems.push("manager");
        }
        let mut depts = BTreeSet::new();
        for d in ids_of(&u["dept_id_list"]) {
            depts.insert(oa_dept(d.parse().expect("dept id")).await);
        }
        let oa_depts: BTreeSet<Option<OaDeptId>> = oa.department_ids().map(Some).collect();
        if depts != oa_depts {
            problems.push("departments");
        }
        let orders: BTreeMap<String, i64> = u["dept_order_list"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| (o["dept_id"].to_string(), o["order"].as_i64().unwrap_or(0)))
            .collect();
        for m in &oa.departments {
            let ding = h
                .store
                .ding_id_of(&m.dept)
                .await
                .expect("id map")
                .map(|d| d.0.to_string())
                .unwrap_or_default();
            if orders.get(&ding).copied().unwrap_or(0) != m.order {
                problems.push("dept order");
            }
        }
        let ext: BTreeMap<String, String> = match text(&u["extension"]) {
            Some(raw) => serde_json::from_str::<serde_json::Map<String, Value>>(&raw)
                .expect("extension JSON")
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect(),
            None => BTreeMap::new(),
        };
        if ext != oa.extension {
            problems.push("extension");
        }
        if !problems.is_empty() {
            diffs.push(format!("user {userid}: {problems:?}"));
        }
    }
    for gone in ids_of(&state["departed_userids"]) {
        if let Some(oa_id) = oa_user(gone.clone()).await
            && snap
                .users
                .get(&oa_id)
                .is_some_and(|u| u.state != UserState::Left)
        {
            diffs.push(format!("departed user {gone} is not marked left"));
        }
    }

    let roles = state["roles"].as_array().cloned().unwrap_or_default();
    if roles.len() != snap.roles.len() {
        diffs.push(format!(
            "role count: DingTalk {} vs OA {}",
            roles.len(),
            snap.roles.len()
        ));
    }
    for r in &roles {
        let id = r["role_id"].as_i64().expect("role_id");
        let Some(oa_id) = h
            .store
            .oa_id_of::<OaRoleId>(&DingRoleId(id))
            .await
            .expect("id map")
        else {
            diffs.push(format!("role {id} is not linked"));
            continue;
        };
        match snap.roles.get(&oa_id) {
            Some(oa) if r["name"].as_str() == Some(oa.name.as_str()) => {}
            _ => diffs.push(format!("role {id} missing or renamed in OA")),
        }
        let mut members = BTreeSet::new();
        for m in ids_of(&r["members"]) {
            members.insert(oa_user(m).await);
        }
        let oa_members: BTreeSet<Option<OaUserId>> = snap
            .assignments
            .iter()
            .filter(|a| a.role == oa_id)
            .map(|a| Some(a.user.clone()))
            .collect();
        if members != oa_members {
            diffs.push(format!(
                "role {id} ({}) members: DingTalk {members:?} vs OA {oa_members:?}",
                r["name"]
            ));
        }
    }
    diffs
}

/// Panics with the differences unless the simulator and the directory agree.
pub async fn assert_converged(h: &Harness) {
    let diffs = differences(h).await;
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(15)]
    );
}
