//! `dingsync demo`: the whole product in one command, on embedded defaults.
//!
//! It starts the DingTalk simulator in-process with a sample organization, a SQLite directory in
//! a temporary folder and the service on free ports, subscribes the service to the simulator's
//! event pushes, runs the full import with a progress bar, then makes changes on both sides —
//! as an OA user through the OA API and as a DingTalk administrator through the simulator — and
//! waits for each to show up on the other side. It ends with a summary and a final `plan`, and
//! exits 0 only when the plan finds nothing to do (both sides converged).
//!
//! Everything the demo does goes through the same public surfaces a user has: the OA API over
//! HTTP, the simulator's `/_sim` routes over HTTP, and the service's own workers.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};
use sync_engine::import::{ImportOptions, ImportProgress, Progress};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret};
use crate::server::Application;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// People in the sample organization.
    #[arg(long, default_value_t = 2000)]
    pub users: usize,
    /// Calls per second per API the simulated DingTalk allows. DingTalk's standard edition
    /// allows 20 and paid editions more; 40 keeps the default demo well under two minutes
    /// (the import reads every user's details, one call each).
    #[arg(long, default_value_t = 40)]
    pub qps: u32,
    /// Seed of the sample organization.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Leave the simulator and the service running at the end, and print how to reach them.
    #[arg(long)]
    pub keep_running: bool,
    /// How DingTalk's events reach dingsync: HTTP push to the callback URL, or Stream mode
    /// (dingsync connects out; no public URL needed).
    #[arg(long, value_enum, default_value_t = EventsArg::Http)]
    pub events: EventsArg,
    /// How long to wait for one change to reach the other side before giving up.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsArg {
    Http,
    Stream,
}

/// Narration: one numbered line per step, so a reader can follow what happens.
struct Narrator {
    step: usize,
    started: Instant,
}

impl Narrator {
    fn say(&mut self, text: impl AsRef<str>) {
        self.step += 1;
        println!(
            "[{:>5.1}s] {:>2}. {}",
            self.started.elapsed().as_secs_f64(),
            self.step,
            text.as_ref()
        );
    }
    fn done(&self, text: impl AsRef<str>) {
        println!("           ✓ {}", text.as_ref());
    }
}

struct Bar(ProgressBar);

impl ImportProgress for Bar {
    fn report(&self, p: &Progress) {
        self.0.set_message(crate::commands::progress_line(p));
        self.0.tick();
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut n = Narrator { step: 0, started };
    let timeout = Duration::from_secs(args.timeout_secs);
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;

    n.say(format!(
        "Starting a simulated DingTalk with {} people ({} calls/s per API)",
        args.users, args.qps
    ));
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = dingtalk_sim::start(
        dingtalk_sim::SimConfig {
            users: args.users,
            depts: (args.users / 15).max(3),
            seed: args.seed,
            qps: args.qps,
            ..Default::default()
        },
        sim_listener,
    )
    .await
    .context("cannot start the simulator")?;
    let sim_url = sim.base_url();
    n.done(format!("DingTalk simulator at {sim_url}"));

    let mut rng = rand::thread_rng();
    let mut random = |len: usize| -> String {
        (&mut rng)
            .sample_iter(Alphanumeric)
            .take(len)
            .map(char::from)
            .collect()
    };
    let api_token = random(32);
    let callback_token = random(16);
    let aes_key = random(43);

    let mut config = Config::default();
    config.dingtalk.base_url = sim_url.clone();
    config.dingtalk.client_id = sim.config().client_id.clone();
    config.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    config.dingtalk.corp_id = sim.config().corp_id.clone();
    config.dingtalk.qps = args.qps;
    config.callback.token = Secret::new(callback_token.clone());
    config.callback.aes_key = Secret::new(aes_key.clone());
    config.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("dingsync.db").display()
    ));
    config.server.listen = "127.0.0.1:0".into();
    config.api.tokens = vec![Secret::new(api_token.clone())];
    config.events.catchup_interval_secs = 10;
    config.sync.reconcile_interval_secs = 0;
    if args.events == EventsArg::Stream {
        config.events.mode = crate::config::EventsMode::Stream;
        sim.set_stream_settings(&dingtalk_sim::StreamSettingsPatch {
            delivery: Some(dingtalk_sim::Delivery::Stream),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot switch the simulator to Stream mode: {e}"))?;
    }
    config.validate()?;

    n.say("Starting dingsync with a SQLite directory in a temporary folder");
    let app = Application::build(&config).await?;
    let base = format!("http://{}", app.local_addr());
    let ctx = app
        .sync_context()
        .cloned()
        .context("the demo needs DingTalk credentials")?;
    let stop = CancellationToken::new();
    let service = tokio::spawn(app.run_until_stopped(stop.clone()));
    n.done(format!("service at {base} (OA API under {base}/api/v1)"));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let oa = Oa {
        http: http.clone(),
        base: base.clone(),
        token: api_token.clone(),
    };
    let dt = Sim {
        http: http.clone(),
        base: sim_url.clone(),
    };

    if args.events == EventsArg::Stream {
        n.say("Events over Stream mode: dingsync opens an outbound connection to DingTalk");
        wait(timeout, "the Stream connection", || async {
            let ready = http.get(format!("{base}/readyz")).send().await?;
            Ok(ready.status().is_success().then_some(()))
        })
        .await?;
        n.done("connected (see /readyz)");
    } else {
        n.say("Subscribing dingsync to DingTalk's contacts events (the simulator checks the URL first)");
        dt.post(
            "/_sim/callback",
            json!({"url": format!("{base}/callbacks/dingtalk"), "token": callback_token, "aes_key": aes_key}),
        )
        .await
        .context("subscribing the callback")?;
        n.done("check_url answered with an encrypted \"success\"");
    }

    n.say("Full import: departments, then the people of each department, then roles");
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("           {spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let report =
        sync_engine::import::import(&ctx, &ImportOptions::default(), &Bar(bar.clone()), &stop)
            .await
            .context("the full import failed")?;
    bar.finish_and_clear();
    crate::commands::record_import(&ctx.store, &report).await?;
    for line in crate::commands::import_summary(&report).lines() {
        n.done(line.trim());
    }

    // ---- OA → DingTalk -------------------------------------------------------------------
    let root = oa.root_department().await?;
    n.say("OA: create department \"Demo Lab\" under the root");
    let lab = oa
        .post("/departments", json!({"name": "Demo Lab", "parent": root}))
        .await?;
    let lab_id = lab["id"].as_i64().context("department id")?;
    let lab_ding = wait(timeout, "Demo Lab to appear in DingTalk", || async {
        Ok(dt.state().await?["departments"].as_array().and_then(|ds| {
            ds.iter()
                .find(|d| d["name"] == "Demo Lab")
                .and_then(|d| d["dept_id"].as_i64())
        }))
    })
    .await?;
    n.done(format!(
        "DingTalk created it as department {lab_ding}; the id is in the id map"
    ));

    n.say("OA: create role group \"Demo Roles\" and role \"Reviewer\"");
    let group = oa
        .post("/role-groups", json!({"name": "Demo Roles"}))
        .await?;
    let group_id = group["id"].as_i64().context("group id")?;
    let role = oa
        .post("/roles", json!({"group": group_id, "name": "Reviewer"}))
        .await?;
    let role_id = role["id"].as_i64().context("role id")?;
    wait(timeout, "the role to appear in DingTalk", || async {
        Ok(dt.state().await?["roles"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == "Reviewer").map(|_| ())))
    })
    .await?;
    n.done("both exist in DingTalk");

    let manager = oa.any_active_user().await?;
    n.say(format!("OA: hire \"demo.alice\" into Demo Lab as Lab Lead, reporting to {manager}, with the Reviewer role"));
    oa.post(
        "/users",
        json!({
            "id": "demo.alice", "name": "Alice Demo", "mobile": "13912345678",
            "departments": [{"dept": lab_id, "title": "Lab Lead"}],
            "manager": manager, "job_number": "D0001", "email": "alice.demo@example.com",
            "extension": {"Hobby": "climbing"}
        }),
    )
    .await?;
    oa.post(
        "/role-assignments",
        json!({"user": "demo.alice", "role": role_id}),
    )
    .await?;
    wait(
        timeout,
        "demo.alice to appear in DingTalk with her role",
        || async {
            let state = dt.state().await?;
            let user = state["users"]
                .as_array()
                .and_then(|us| us.iter().find(|u| u["userid"] == "demo.alice").cloned());
            let has_role = state["roles"].as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["name"] == "Reviewer"
                        && r["members"]
                            .as_array()
                            .is_some_and(|m| m.iter().any(|u| u == "demo.alice"))
                })
            });
            Ok(user
                .filter(|u| u["manager_userid"] == manager.as_str() && has_role)
                .map(|_| ()))
        },
    )
    .await?;
    n.done("DingTalk has her, in Demo Lab, with her manager and role");

    n.say("OA: rename Demo Lab to \"Demo Research\"");
    oa.patch(
        &format!("/departments/{lab_id}"),
        json!({"name": "Demo Research"}),
    )
    .await?;
    wait(timeout, "the rename to reach DingTalk", || async {
        Ok(dt
            .dept(&dt.state().await?, lab_ding)
            .filter(|d| d["name"] == "Demo Research")
            .map(|_| ()))
    })
    .await?;
    n.done("renamed in DingTalk");

    n.say("OA: move demo.alice to the root department");
    oa.patch(
        "/users/demo.alice",
        json!({"departments": [{"dept": root, "title": "Lab Lead"}]}),
    )
    .await?;
    wait(timeout, "the move to reach DingTalk", || async {
        let state = dt.state().await?;
        Ok(state["users"].as_array().and_then(|us| {
            us.iter()
                .find(|u| u["userid"] == "demo.alice" && u["dept_id_list"] == json!([1]))
                .map(|_| ())
        }))
    })
    .await?;
    n.done("moved in DingTalk");

    n.say("OA: remove the now empty department Demo Research");
    oa.delete(&format!("/departments/{lab_id}")).await?;
    wait(timeout, "the removal to reach DingTalk", || async {
        Ok(dt
            .dept(&dt.state().await?, lab_ding)
            .is_none()
            .then_some(()))
    })
    .await?;
    n.done("removed in DingTalk");

    // ---- DingTalk → OA -------------------------------------------------------------------
    n.say("DingTalk admin: hire \"dt.bob\" into the root department");
    dt.post("/_sim/users", json!({"userid": "dt.bob", "name": "Bob DingTalk", "mobile": "13800001234", "dept_id_list": "1", "title": "Engineer"}))
        .await?;
    wait(timeout, "dt.bob to reach the OA directory", || async {
        Ok(oa.user("dt.bob").await?.map(|_| ()))
    })
    .await?;
    n.done("the user_add_org event arrived and dt.bob is in the OA directory");

    n.say("DingTalk admin: change dt.bob's name to \"Robert DingTalk\"");
    dt.patch("/_sim/users/dt.bob", json!({"name": "Robert DingTalk"}))
        .await?;
    wait(timeout, "the change to reach OA", || async {
        Ok(oa
            .user("dt.bob")
            .await?
            .filter(|u| u["name"] == "Robert DingTalk")
            .map(|_| ()))
    })
    .await?;
    n.done("renamed in the OA directory");

    let movable = dt.leaf_department_under_root(&dt.state().await?, lab_ding)?;
    let target_parent = dt.other_top_department(&dt.state().await?, movable)?;
    n.say(format!(
        "DingTalk admin: move department {movable} under department {target_parent}"
    ));
    dt.patch(
        &format!("/_sim/depts/{movable}"),
        json!({"parent_id": target_parent}),
    )
    .await?;
    let (movable_oa, parent_oa) = (
        ctx.store
            .oa_id_of::<directory_model::OaDeptId>(&directory_model::DingDeptId(movable))
            .await?,
        ctx.store
            .oa_id_of::<directory_model::OaDeptId>(&directory_model::DingDeptId(target_parent))
            .await?,
    );
    let (movable_oa, parent_oa) = (
        movable_oa.context("moved department not imported")?,
        parent_oa.context("target not imported")?,
    );
    wait(timeout, "the move to reach OA", || async {
        Ok(oa
            .get(&format!("/departments/{}", movable_oa.0))
            .await?
            .filter(|d| d["parent"] == parent_oa.0)
            .map(|_| ()))
    })
    .await?;
    n.done("moved in the OA directory");

    n.say("DingTalk admin: dt.bob leaves the company");
    dt.delete("/_sim/users/dt.bob").await?;
    wait(timeout, "the leave to reach OA", || async {
        Ok(oa
            .user("dt.bob")
            .await?
            .filter(|u| u["state"] == "left")
            .map(|_| ()))
    })
    .await?;
    n.done("dt.bob is marked as left in the OA directory");

    // ---- Converged? ----------------------------------------------------------------------
    n.say("Checking both sides with a full plan (what reconcile would change)");
    let plan = sync_engine::plan::plan(&ctx, sync_engine::plan::PlanOptions::default()).await?;
    let converged = plan.items.is_empty();
    if converged {
        n.done("no differences: OA and DingTalk agree");
    } else {
        println!("{}", plan.render_table());
        // Show how each differing entity got there, so a failed demo explains itself.
        for item in &plan.items {
            if let Some(oa_id) = &item.oa_id {
                for a in ctx.store.audit_of(item.kind, oa_id).await? {
                    println!(
                        "  audit #{} {} {:?} by {} ({:?})",
                        a.seq, item.kind, a.op, a.actor, a.origin
                    );
                }
            }
        }
    }

    summary(&ctx.store, &dt, started).await?;

    if args.keep_running {
        println!("\nEverything is still running. Try:");
        println!("  curl -s -H 'Authorization: Bearer {api_token}' {base}/api/v1/users?limit=3");
        println!("  curl -s {sim_url}/_sim/calls");
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
    }
    stop.cancel();
    service.await.context("the service task panicked")??;
    sim.shutdown().await;
    Ok(converged)
}

async fn summary(store: &directory_store::Store, dt: &Sim, started: Instant) -> anyhow::Result<()> {
    let state = dt.state().await?;
    let (oa_depts, oa_users) = store.counts().await?;
    let inbox = store.inbox_depth().await?;
    let outbox = store.outbox_depth().await?;
    let received = store.inbox_list(None, None, 1_000_000).await?.len();
    let pushed = store.outbox_list(None, None, 1_000_000).await?.len();
    let conflicts = store.conflicts(None, 1000).await?.len();
    let calls: Value = dt
        .http
        .get(format!("{}/_sim/calls", dt.base))
        .send()
        .await?
        .json()
        .await?;
    println!();
    println!("  {:<28} {:>12} {:>12}", "", "OA", "DingTalk");
    println!(
        "  {:<28} {:>12} {:>12}",
        "departments", oa_depts, state["counts"]["departments"]
    );
    println!(
        "  {:<28} {:>12} {:>12}",
        "users (incl. left in OA)", oa_users, state["counts"]["users"]
    );
    println!(
        "  {:<28} {:>12}",
        "events received / waiting",
        format!("{received} / {}", inbox.pending + inbox.claimed)
    );
    println!(
        "  {:<28} {:>12}",
        "OA changes queued / waiting",
        format!("{pushed} / {}", outbox.pending + outbox.claimed)
    );
    println!("  {:<28} {:>12}", "dead letters", inbox.dead + outbox.dead);
    println!("  {:<28} {:>12}", "conflicts recorded", conflicts);
    println!(
        "  {:<28} {:>12}",
        "DingTalk API calls", calls["total"]["calls"]
    );
    println!(
        "  {:<28} {:>12}",
        "throttled (90018)", calls["total"]["throttled"]
    );
    println!(
        "  {:<28} {:>11.1}s",
        "time taken",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Polls `probe` until it yields a value or `timeout` passes.
async fn wait<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {}s waiting for {what}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The OA API, as the OA system would call it.
struct Oa {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Oa {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| what.to_owned())?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {body}");
        }
        Ok(body)
    }
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(
            self.http.post(self.url(path)).json(&body),
            &format!("POST {path}"),
        )
        .await
    }
    async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(
            self.http.patch(self.url(path)).json(&body),
            &format!("PATCH {path}"),
        )
        .await
    }
    async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.delete(self.url(path)), &format!("DELETE {path}"))
            .await
    }
    async fn get(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {path}: HTTP {status}: {body}");
        }
        Ok(Some(body))
    }
    async fn user(&self, id: &str) -> anyhow::Result<Option<Value>> {
        self.get(&format!("/users/{id}")).await
    }
    async fn root_department(&self) -> anyhow::Result<i64> {
        let list = self
            .get("/departments?limit=1000")
            .await?
            .context("department list")?;
        list["items"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["parent"].is_null()))
            .and_then(|d| d["id"].as_i64())
            .context("the OA directory has no root department after the import")
    }
    async fn any_active_user(&self) -> anyhow::Result<String> {
        let list = self
            .get("/users?limit=5&state=active")
            .await?
            .context("user list")?;
        list["items"]
            .as_array()
            .and_then(|us| us.first())
            .and_then(|u| u["id"].as_str())
            .map(str::to_owned)
            .context("the OA directory has no users after the import")
    }
}

/// The simulator's admin surface, acting as a DingTalk administrator.
struct Sim {
    http: reqwest::Client,
    base: String,
}

impl Sim {
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let resp = req.send().await.with_context(|| what.to_owned())?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {body}");
        }
        Ok(body)
    }
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(
            self.http.post(format!("{}{path}", self.base)).json(&body),
            &format!("POST {path}"),
        )
        .await
    }
    async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(
            self.http.patch(format!("{}{path}", self.base)).json(&body),
            &format!("PATCH {path}"),
        )
        .await
    }
    async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(
            self.http.delete(format!("{}{path}", self.base)),
            &format!("DELETE {path}"),
        )
        .await
    }
    async fn state(&self) -> anyhow::Result<Value> {
        self.send(
            self.http.get(format!("{}/_sim/state", self.base)),
            "GET /_sim/state",
        )
        .await
    }
    fn dept<'a>(&self, state: &'a Value, id: i64) -> Option<&'a Value> {
        state["departments"]
            .as_array()?
            .iter()
            .find(|d| d["dept_id"] == id)
    }
    /// A department without children directly under the root (not `avoid`).
    fn leaf_department_under_root(&self, state: &Value, avoid: i64) -> anyhow::Result<i64> {
        state["departments"]
            .as_array()
            .and_then(|ds| {
                ds.iter().find(|d| {
                    d["parent_id"] == 1
                        && d["dept_id"] != avoid
                        && d["child_dept_ids"].as_array().is_some_and(Vec::is_empty)
                })
            })
            .and_then(|d| d["dept_id"].as_i64())
            .context("the sample organization has no leaf department under the root")
    }
    /// Another top-level department to move `moving` under.
    fn other_top_department(&self, state: &Value, moving: i64) -> anyhow::Result<i64> {
        state["departments"]
            .as_array()
            .and_then(|ds| {
                ds.iter()
                    .find(|d| d["parent_id"] == 1 && d["dept_id"] != moving)
            })
            .and_then(|d| d["dept_id"].as_i64())
            .context("the sample organization has a single top-level department")
    }
}
