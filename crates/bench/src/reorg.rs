//! `bench reorg`: a reorganisation. An administrator moves `--people` people (default 5,000) to
//! another department and gives each a new title, all at once, in DingTalk; the figure is the
//! time until the OA directory holds every change, against the bound, and each change's
//! change-to-visible latency in that burst.
//!
//! Each change is one `/_sim` user update (`dept_id_list` replaced, `title` set), so DingTalk
//! pushes one `user_modify_org` and the applier makes one `user/get`: the bound is
//! `people ÷ qps`, the fetch API's budget. A change is *visible* when the OA change feed lists
//! the user in the one new department with the new title.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dingtalk_client::endpoints::paths;
use reqwest::Method;
use serde_json::{Value, json};

use super::events::Feed;
use super::rig::{DbChoice, Rig, RigOptions};
use super::stats::{Latencies, calls_delta, rate_bound_s, round2};
use super::{BenchReport, load};
use crate::service::Service;

/// How often the OA change feed is polled.
const POLL: Duration = Duration::from_millis(20);

/// DingTalk's rate window plus a margin, so the burst starts with the whole budget free.
const SETTLE: Duration = Duration::from_millis(1100);

/// Administrators' writes in flight at once while the reorganisation is entered.
const WRITERS: usize = 8;

/// `bench reorg` options.
#[derive(Debug, Clone, Args)]
pub struct ReorgArgs {
    /// People moved and retitled at once.
    #[arg(long, default_value_t = 5000)]
    pub people: usize,
    /// DingTalk's calls per second per API.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// Latency the simulator adds to every call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

impl Default for ReorgArgs {
    fn default() -> Self {
        Self {
            people: 5000,
            qps: 20,
            latency_ms: 0,
        }
    }
}

/// One person's move: where to, and the title that marks the change.
struct Move {
    userid: String,
    dept_id: i64,
    title: String,
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &ReorgArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.people > 0, "--people must be at least 1");
    let rig = Rig::start(
        service,
        &RigOptions {
            users: args.people,
            depts: (args.people / 15).max(2),
            qps: args.qps,
            latency_ms: args.latency_ms,
            workers: true,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    anyhow::ensure!(rig.import().await?.complete, "the import was incomplete");
    rig.subscribe_callbacks().await?;
    let moves = plan_moves(&rig.sim_send(Method::GET, "/_sim/state", None).await?, args)?;
    let mut feed = Feed::new(&rig);
    feed.users().await?;
    tokio::time::sleep(SETTLE).await;

    let calls_before = rig.sim_calls().await?;
    let patience =
        Duration::from_secs_f64(args.people as f64 / f64::from(args.qps.max(1)) * 3.0 + 60.0);
    let started = Instant::now();
    let changed_at = std::sync::Mutex::new(HashMap::new());
    let entered = load::run(moves.len(), WRITERS, |i| {
        let (changed_at, moves, rig) = (&changed_at, &moves, &rig);
        async move {
            let m = moves.get(i).context("move index")?;
            rig.sim_send(
                Method::PATCH,
                &format!("/_sim/users/{}", m.userid),
                Some(json!({ "dept_id_list": m.dept_id.to_string(), "title": m.title })),
            )
            .await?;
            changed_at
                .lock()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))?
                .insert(m.title.clone(), Instant::now());
            Ok(())
        }
    });
    let watch = async {
        let mut visible_at = HashMap::new();
        let mut tick = tokio::time::interval(POLL);
        while visible_at.len() < moves.len() {
            tick.tick().await;
            for user in feed.users().await? {
                if let Some(title) = moved_title(&user) {
                    visible_at.entry(title).or_insert_with(Instant::now);
                }
            }
            anyhow::ensure!(
                started.elapsed() < patience,
                "only {} of {} changes visible after {patience:?}",
                visible_at.len(),
                moves.len()
            );
        }
        anyhow::Ok(visible_at)
    };
    let (entered, visible_at) = tokio::try_join!(entered, watch)?;
    let wall = started.elapsed();
    let calls = calls_delta(&calls_before, &rig.sim_calls().await?);
    let changed_at = changed_at
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a writer panicked"))?;
    let mut latencies = Latencies::default();
    for (title, seen) in &visible_at {
        if let Some(changed) = changed_at.get(title) {
            latencies.record(seen.saturating_duration_since(*changed));
        }
    }

    let min_calls = [(paths::USER_GET.to_owned(), args.people as u64)].into();
    let bound_s = rate_bound_s(&min_calls, args.qps);
    let mut out = BenchReport::new("reorg", db, wall.as_secs_f64(), bound_s);
    out.calls = calls;
    out.min_calls = min_calls;
    out.throughput_per_s = round2(args.people as f64 / wall.as_secs_f64());
    out.p50_ms = latencies.percentile(50.0);
    out.p99_ms = latencies.percentile(99.0);
    out = out
        .with("people", args.people)
        .with("qps", args.qps)
        .with("latency_ms", args.latency_ms)
        .with("changes_sent_s", round2(entered.wall.as_secs_f64()));
    rig.shutdown().await?;
    Ok(out)
}

/// Picks, for each of the first `args.people` users, a department they are not in, and a
/// title naming the change.
fn plan_moves(state: &Value, args: &ReorgArgs) -> anyhow::Result<Vec<Move>> {
    let depts: Vec<i64> = state["departments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["dept_id"].as_i64())
        .filter(|d| *d != 1)
        .collect();
    anyhow::ensure!(depts.len() >= 2, "the simulator has too few departments");
    let users = state["users"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        users.len() >= args.people,
        "the simulator has too few users"
    );
    users
        .iter()
        .take(args.people)
        .enumerate()
        .map(|(i, u)| {
            let userid = u["userid"].as_str().context("a user without userid")?;
            let current: Vec<i64> = u["dept_id_list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            let dept_id = (0..depts.len())
                .map(|k| depts[(i + 1 + k) % depts.len()])
                .find(|d| !current.contains(d))
                .context("a user in every department")?;
            Ok(Move {
                userid: userid.to_owned(),
                dept_id,
                title: format!("Reorg {i}"),
            })
        })
        .collect()
}

/// The title of a user the feed shows moved: in exactly one department, titled `Reorg …`.
fn moved_title(user: &Value) -> Option<String> {
    let departments = user["departments"].as_array()?;
    let [only] = departments.as_slice() else {
        return None;
    };
    only["title"]
        .as_str()
        .filter(|t| t.starts_with("Reorg "))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_move_goes_to_a_department_the_person_is_not_in() {
        let state = json!({
            "departments": [{"dept_id": 1}, {"dept_id": 2}, {"dept_id": 3}],
            "users": [
                {"userid": "a", "dept_id_list": [2]},
                {"userid": "b", "dept_id_list": [3]},
                {"userid": "c", "dept_id_list": [2, 3]},
            ],
        });
        let args = ReorgArgs {
            people: 2,
            ..ReorgArgs::default()
        };
        let moves = plan_moves(&state, &args).unwrap_or_default();
        assert_eq!(moves.len(), 2);
        assert_eq!((moves[0].userid.as_str(), moves[0].dept_id), ("a", 3));
        assert_eq!((moves[1].userid.as_str(), moves[1].dept_id), ("b", 2));
        assert_eq!(moves[1].title, "Reorg 1");
        let all = ReorgArgs {
            people: 3,
            ..ReorgArgs::default()
        };
        assert!(
            plan_moves(&state, &all).is_err(),
            "c is in every department"
        );
    }

    #[test]
    fn visible_only_when_moved_and_retitled() {
        let moved = json!({"departments": [{"dept": "d3", "title": "Reorg 4"}]});
        assert_eq!(moved_title(&moved).as_deref(), Some("Reorg 4"));
        let not_moved = json!({"departments": [
            {"dept": "d2", "title": "Reorg 4"}, {"dept": "d3", "title": null}]});
        assert_eq!(moved_title(&not_moved), None);
        let old_title = json!({"departments": [{"dept": "d3", "title": "Engineer"}]});
        assert_eq!(moved_title(&old_title), None);
    }
}
