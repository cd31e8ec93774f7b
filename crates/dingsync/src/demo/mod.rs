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

mod sides;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use dingsync_bench::rig::{DbChoice, Rig, RigOptions, start_sim};
use directory_model::{DingDeptId, OaDeptId};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sync_engine::import::ImportOptions;
use tokio_util::sync::CancellationToken;

use sides::{Admin, Oa};

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

/// `dingsync demo`: true when both sides converged. Each step narrates itself; see the module
/// doc for the story.
pub async fn run(args: DemoArgs) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut n = Narrator { step: 0, started };
    let timeout = Duration::from_secs(args.timeout_secs);
    let rig = start_world(&args, &mut n).await?;
    let mut demo = Demo {
        n,
        timeout,
        rig: &rig,
    };
    demo.connect_events(args.events).await?;
    demo.full_import().await?;
    let lab_ding = demo.oa_to_dingtalk().await?;
    demo.dingtalk_to_oa(lab_ding).await?;
    let converged = demo.check_converged().await?;
    summary(&rig, started).await?;
    if args.keep_running {
        println!("\nEverything is still running. Try:");
        println!(
            "  curl -s -H 'Authorization: Bearer {}' {}/api/v1/users?limit=3",
            rig.api_token.expose(),
            rig.base
        );
        println!("  curl -s {}/_sim/calls", rig.sim.base_url());
        print_console_login(&rig).await?;
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
    }
    rig.shutdown().await?;
    Ok(converged)
}

/// Creates the demo's console operator with a random password and prints the console's URL
/// and that login (there is no default account; this one lives only in the demo's database).
async fn print_console_login(rig: &Rig) -> anyhow::Result<()> {
    let password: String = {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..20)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect()
    };
    let now = crate::clock::system_clock().now_ms();
    crate::admin::users::add_user(&rig.store, "demo", console::Role::Operator, &password, now)
        .await?;
    println!(
        "  admin console: {}/console  (user demo, password {password})",
        rig.base
    );
    Ok(())
}

/// The simulator with the sample organization, then the service on a temporary SQLite
/// directory — the same rig `dingsync bench` measures.
async fn start_world(args: &DemoArgs, n: &mut Narrator) -> anyhow::Result<Rig> {
    n.say(format!(
        "Starting a simulated DingTalk with {} people ({} calls/s per API)",
        args.users, args.qps
    ));
    let options = RigOptions {
        users: args.users,
        depts: (args.users / 15).max(3),
        qps: args.qps,
        latency_ms: 0,
        workers: true,
        db: DbChoice::Sqlite,
        seed: args.seed,
        catchup_interval_secs: 10,
        stream_events: args.events == EventsArg::Stream,
        mapping: None,
    };
    let sim = start_sim(&options).await?;
    n.done(format!("DingTalk simulator at {}", sim.base_url()));
    if options.stream_events {
        sim.set_stream_settings(&dingtalk_sim::StreamSettingsPatch {
            delivery: Some(dingtalk_sim::Delivery::Stream),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("cannot switch the simulator to Stream mode: {e}"))?;
    }
    n.say("Starting dingsync with a SQLite directory in a temporary folder");
    let rig = Rig::with_sim(&crate::local::Local, sim, &options).await?;
    let base = &rig.base;
    n.done(format!("service at {base} (OA API under {base}/api/v1)"));
    Ok(rig)
}

/// The demo's running state: the narration, the patience per change and the world.
struct Demo<'a> {
    n: Narrator,
    timeout: Duration,
    rig: &'a Rig,
}

impl<'a> Demo<'a> {
    fn oa(&self) -> Oa<'a> {
        Oa(self.rig)
    }

    fn admin(&self) -> Admin<'a> {
        Admin(self.rig)
    }

    /// Waits for the Stream connection, or subscribes the callback URL.
    async fn connect_events(&mut self, events: EventsArg) -> anyhow::Result<()> {
        let rig = self.rig;
        if events == EventsArg::Stream {
            self.n
                .say("Events over Stream mode: dingsync opens an outbound connection to DingTalk");
            wait(self.timeout, "the Stream connection", || async {
                let ready = rig.http.get(format!("{}/readyz", rig.base)).send().await?;
                Ok(ready.status().is_success().then_some(()))
            })
            .await?;
            self.n.done("connected (see /readyz)");
        } else {
            self.n.say("Subscribing dingsync to DingTalk's contacts events (the simulator checks the URL first)");
            rig.subscribe_callbacks()
                .await
                .context("subscribing the callback")?;
            self.n
                .done("check_url answered with an encrypted \"success\"");
        }
        Ok(())
    }

    /// The full import with a progress bar, recorded as `dingsync import` records it.
    async fn full_import(&mut self) -> anyhow::Result<()> {
        self.n
            .say("Full import: departments, then the people of each department, then roles");
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("           {spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let ctx = &self.rig.ctx;
        let never = CancellationToken::new();
        let spinner = crate::import_progress::Spinner::new(bar.clone());
        let report = sync_engine::import::import(ctx, &ImportOptions::default(), &spinner, &never)
            .await
            .context("the full import failed")?;
        bar.finish_and_clear();
        crate::commands::record_import(&ctx.store, &report).await?;
        for line in crate::commands::import_summary(&report).lines() {
            self.n.done(line.trim());
        }
        Ok(())
    }

    /// OA-side changes, each waited for in DingTalk; returns the (removed) lab's DingTalk id.
    async fn oa_to_dingtalk(&mut self) -> anyhow::Result<i64> {
        let root = self.rig.root_department().await?;
        let (lab_id, lab_ding) = self.create_lab(root).await?;
        let role_id = self.create_role().await?;
        self.hire_alice(lab_id, role_id).await?;
        self.rename_lab(lab_id, lab_ding).await?;
        self.move_alice(root).await?;
        self.remove_lab(lab_id, lab_ding).await?;
        Ok(lab_ding)
    }

    /// OA: a new department under the root; returns its OA and DingTalk ids.
    async fn create_lab(&mut self, root: i64) -> anyhow::Result<(i64, i64)> {
        self.n
            .say("OA: create department \"Demo Lab\" under the root");
        let lab = self
            .oa()
            .post("/departments", json!({"name": "Demo Lab", "parent": root}))
            .await?;
        let lab_id = lab["id"].as_i64().context("department id")?;
        let admin = self.admin();
        let lab_ding = wait(self.timeout, "Demo Lab to appear in DingTalk", || async {
            Ok(admin.state().await?["departments"]
                .as_array()
                .and_then(|ds| {
                    ds.iter()
                        .find(|d| d["name"] == "Demo Lab")
                        .and_then(|d| d["dept_id"].as_i64())
                }))
        })
        .await?;
        self.n.done(format!(
            "DingTalk created it as department {lab_ding}; the id is in the id map"
        ));
        Ok((lab_id, lab_ding))
    }

    /// OA: a role group and a role in it; returns the role's OA id.
    async fn create_role(&mut self) -> anyhow::Result<i64> {
        self.n
            .say("OA: create role group \"Demo Roles\" and role \"Reviewer\"");
        let oa = self.oa();
        let group = oa
            .post("/role-groups", json!({"name": "Demo Roles"}))
            .await?;
        let group_id = group["id"].as_i64().context("group id")?;
        let role = oa
            .post("/roles", json!({"group": group_id, "name": "Reviewer"}))
            .await?;
        let role_id = role["id"].as_i64().context("role id")?;
        let admin = self.admin();
        wait(self.timeout, "the role to appear in DingTalk", || async {
            Ok(admin.state().await?["roles"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["name"] == "Reviewer").map(|_| ())))
        })
        .await?;
        self.n.done("both exist in DingTalk");
        Ok(role_id)
    }

    /// OA: a new user in the lab with a manager and the role.
    async fn hire_alice(&mut self, lab_id: i64, role_id: i64) -> anyhow::Result<()> {
        let oa = self.oa();
        let manager = oa.any_active_user().await?;
        self.n.say(format!("OA: hire \"demo.alice\" into Demo Lab as Lab Lead, reporting to {manager}, with the Reviewer role"));
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
        let admin = self.admin();
        let what = "demo.alice to appear in DingTalk with her role";
        wait(self.timeout, what, || async {
            let state = admin.state().await?;
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
        })
        .await?;
        self.n
            .done("DingTalk has her, in Demo Lab, with her manager and role");
        Ok(())
    }

    /// OA: rename the lab.
    async fn rename_lab(&mut self, lab_id: i64, lab_ding: i64) -> anyhow::Result<()> {
        self.n.say("OA: rename Demo Lab to \"Demo Research\"");
        self.oa()
            .patch(
                &format!("/departments/{lab_id}"),
                json!({"name": "Demo Research"}),
            )
            .await?;
        let admin = self.admin();
        wait(self.timeout, "the rename to reach DingTalk", || async {
            Ok(sides::dept(&admin.state().await?, lab_ding)
                .filter(|d| d["name"] == "Demo Research")
                .map(|_| ()))
        })
        .await?;
        self.n.done("renamed in DingTalk");
        Ok(())
    }

    /// OA: move the new user to the root department.
    async fn move_alice(&mut self, root: i64) -> anyhow::Result<()> {
        self.n.say("OA: move demo.alice to the root department");
        self.oa()
            .patch(
                "/users/demo.alice",
                json!({"departments": [{"dept": root, "title": "Lab Lead"}]}),
            )
            .await?;
        let admin = self.admin();
        wait(self.timeout, "the move to reach DingTalk", || async {
            let state = admin.state().await?;
            Ok(state["users"].as_array().and_then(|us| {
                us.iter()
                    .find(|u| u["userid"] == "demo.alice" && u["dept_id_list"] == json!([1]))
                    .map(|_| ())
            }))
        })
        .await?;
        self.n.done("moved in DingTalk");
        Ok(())
    }

    /// OA: delete the now empty lab.
    async fn remove_lab(&mut self, lab_id: i64, lab_ding: i64) -> anyhow::Result<()> {
        self.n
            .say("OA: remove the now empty department Demo Research");
        self.oa().delete(&format!("/departments/{lab_id}")).await?;
        let admin = self.admin();
        wait(self.timeout, "the removal to reach DingTalk", || async {
            Ok(sides::dept(&admin.state().await?, lab_ding)
                .is_none()
                .then_some(()))
        })
        .await?;
        self.n.done("removed in DingTalk");
        Ok(())
    }

    /// DingTalk-side changes, each waited for in the OA directory (`lab_ding` is the removed
    /// lab, which must not be picked as the department to move).
    async fn dingtalk_to_oa(&mut self, lab_ding: i64) -> anyhow::Result<()> {
        self.hire_bob().await?;
        self.rename_bob().await?;
        self.move_department(lab_ding).await?;
        self.bob_leaves().await
    }

    /// DingTalk admin: a new user in the root department.
    async fn hire_bob(&mut self) -> anyhow::Result<()> {
        self.n
            .say("DingTalk admin: hire \"dt.bob\" into the root department");
        self.admin().post("/_sim/users", json!({"userid": "dt.bob", "name": "Bob DingTalk", "mobile": "13800001234", "dept_id_list": "1", "title": "Engineer"}))
            .await?;
        let oa = self.oa();
        wait(self.timeout, "dt.bob to reach the OA directory", || async {
            Ok(oa.user("dt.bob").await?.map(|_| ()))
        })
        .await?;
        self.n
            .done("the user_add_org event arrived and dt.bob is in the OA directory");
        Ok(())
    }

    /// DingTalk admin: rename the user.
    async fn rename_bob(&mut self) -> anyhow::Result<()> {
        self.n
            .say("DingTalk admin: change dt.bob's name to \"Robert DingTalk\"");
        self.admin()
            .patch("/_sim/users/dt.bob", json!({"name": "Robert DingTalk"}))
            .await?;
        let oa = self.oa();
        wait(self.timeout, "the change to reach OA", || async {
            Ok(oa
                .user("dt.bob")
                .await?
                .filter(|u| u["name"] == "Robert DingTalk")
                .map(|_| ()))
        })
        .await?;
        self.n.done("renamed in the OA directory");
        Ok(())
    }

    /// DingTalk admin: move a leaf department under another top-level one.
    async fn move_department(&mut self, lab_ding: i64) -> anyhow::Result<()> {
        let admin = self.admin();
        let movable = sides::leaf_department_under_root(&admin.state().await?, lab_ding)?;
        let target_parent = sides::other_top_department(&admin.state().await?, movable)?;
        self.n.say(format!(
            "DingTalk admin: move department {movable} under department {target_parent}"
        ));
        admin
            .patch(
                &format!("/_sim/depts/{movable}"),
                json!({"parent_id": target_parent}),
            )
            .await?;
        let store = &self.rig.store;
        let movable_oa = store.oa_id_of::<OaDeptId>(&DingDeptId(movable)).await?;
        let parent_oa = store
            .oa_id_of::<OaDeptId>(&DingDeptId(target_parent))
            .await?;
        let (movable_oa, parent_oa) = (
            movable_oa.context("moved department not imported")?,
            parent_oa.context("target not imported")?,
        );
        let oa = self.oa();
        wait(self.timeout, "the move to reach OA", || async {
            Ok(oa
                .get(&format!("/departments/{}", movable_oa.0))
                .await?
                .filter(|d| d["parent"] == parent_oa.0)
                .map(|_| ()))
        })
        .await?;
        self.n.done("moved in the OA directory");
        Ok(())
    }

    /// DingTalk admin: the user leaves the company.
    async fn bob_leaves(&mut self) -> anyhow::Result<()> {
        self.n.say("DingTalk admin: dt.bob leaves the company");
        self.admin().delete("/_sim/users/dt.bob").await?;
        let oa = self.oa();
        wait(self.timeout, "the leave to reach OA", || async {
            Ok(oa
                .user("dt.bob")
                .await?
                .filter(|u| u["state"] == "left")
                .map(|_| ()))
        })
        .await?;
        self.n.done("dt.bob is marked as left in the OA directory");
        Ok(())
    }

    /// A full plan: converged when it finds nothing to do. Otherwise prints the plan and the
    /// audit trail of each differing entity, so a failed demo explains itself.
    async fn check_converged(&mut self) -> anyhow::Result<bool> {
        self.n
            .say("Checking both sides with a full plan (what reconcile would change)");
        let ctx = &self.rig.ctx;
        let plan = sync_engine::plan::plan(ctx, sync_engine::plan::PlanOptions::default()).await?;
        let converged = plan.items.is_empty();
        if converged {
            self.n.done("no differences: OA and DingTalk agree");
            return Ok(true);
        }
        println!("{}", plan.render_table());
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
        Ok(false)
    }
}

/// The closing table: both sides' sizes, the queues, conflicts and DingTalk calls.
async fn summary(rig: &Rig, started: Instant) -> anyhow::Result<()> {
    let store = &rig.store;
    let admin = Admin(rig);
    let state = admin.state().await?;
    let (oa_depts, oa_users) = store.counts().await?;
    let inbox = store.inbox_depth().await?;
    let outbox = store.outbox_depth().await?;
    let received = store.inbox_list(None, None, 1_000_000).await?.len();
    let pushed = store.outbox_list(None, None, 1_000_000).await?.len();
    let conflicts = store.conflicts(None, 1000).await?.len();
    let calls = admin.calls().await?;
    println!();
    row("", &"OA", Some(&"DingTalk"));
    row(
        "departments",
        &oa_depts,
        Some(&state["counts"]["departments"]),
    );
    row(
        "users (incl. left in OA)",
        &oa_users,
        Some(&state["counts"]["users"]),
    );
    let (waiting_in, waiting_out) = (
        inbox.pending + inbox.claimed,
        outbox.pending + outbox.claimed,
    );
    row(
        "events received / waiting",
        &format!("{received} / {waiting_in}"),
        None,
    );
    row(
        "OA changes queued / waiting",
        &format!("{pushed} / {waiting_out}"),
        None,
    );
    row("dead letters", &(inbox.dead + outbox.dead), None);
    row("conflicts recorded", &conflicts, None);
    row("DingTalk API calls", &calls["total"]["calls"], None);
    row("throttled (90018)", &calls["total"]["throttled"], None);
    println!(
        "  {:<28} {:>11.1}s",
        "time taken",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One summary line: a label, the OA figure and, where it has one, DingTalk's.
fn row(label: &str, oa: &dyn std::fmt::Display, dingtalk: Option<&dyn std::fmt::Display>) {
    println!("{}", row_text(label, oa, dingtalk));
}

/// The line [`row`] prints. Each figure is made a string before it is padded: a JSON value's
/// `Display` ignores width, which is how the DingTalk column once came out ragged.
fn row_text(
    label: &str,
    oa: &dyn std::fmt::Display,
    dingtalk: Option<&dyn std::fmt::Display>,
) -> String {
    let oa = oa.to_string();
    match dingtalk {
        Some(dingtalk) => format!("  {label:<28} {oa:>12} {:>12}", dingtalk.to_string()),
        None => format!("  {label:<28} {oa:>12}"),
    }
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

#[cfg(test)]
mod summary_tests {
    use super::row_text;

    #[test]
    fn summary_columns_line_up_whatever_the_figure_type() {
        let header = row_text("", &"OA", Some(&"DingTalk"));
        let json = serde_json::json!({"n": 2001});
        let from_json = row_text("users", &2001, Some(&json["n"]));
        let plain = row_text("departments", &"12 / 0", None);
        assert_eq!(
            header.chars().count(),
            from_json.chars().count(),
            "{header:?} vs {from_json:?}"
        );
        assert!(from_json.ends_with("         2001"), "{from_json:?}");
        assert_eq!(
            plain.chars().count() + 13,
            header.chars().count(),
            "{plain:?}"
        );
    }
}
