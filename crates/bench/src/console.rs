//! `bench console`: the admin console's page times on a large directory, and how big the
//! history the console shows grows in a month (issue 16).
//!
//! The directory is the simulator's organization imported for real (100,000 people by
//! default). A simulated month of changes is then written straight into the store with
//! timestamps spread over 30 days — OA edits (journaled, queued and marked pushed, as the
//! pusher would), DingTalk-side edits (journaled), and the runs a month of imports and hourly
//! reconciles leaves — so the pages are measured over a month's history, and the history
//! tables' rows and the database's growth are reported. Then every page is requested
//! `--requests` times, one after another, through a signed-in session; each page's p50 and
//! p99 are client-measured on loopback (the server's time plus a local round trip).
//!
//! The plan page shows the last plan computed (a plan crawls DingTalk's side in full, about
//! as long as an import), computing one in the background on the first visit: the bench
//! opens it, reports how long that first computation took (`plan_compute_s`), and then
//! measures the page like the others.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use directory_model::OaUserId;
use directory_store::{UserQuery, WriteCtx};
use reqwest::header::{COOKIE, SET_COOKIE};

use crate::rig::{DbChoice, Rig, RigOptions};
use crate::service::Service;
use crate::stats::{Latencies, round2};
use crate::{BenchReport, round3};

/// `dingsync bench console`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// People in the directory.
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Departments below the root.
    #[arg(long, default_value_t = 1_000)]
    pub depts: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Seconds to wait for the plan page's first background computation.
    #[arg(long, default_value_t = 1_800)]
    pub plan_wait_s: u64,
    /// Days of simulated history.
    #[arg(long, default_value_t = 30)]
    pub days: usize,
    /// OA edits per simulated day (each journaled and pushed).
    #[arg(long, default_value_t = 1_000)]
    pub oa_changes_per_day: usize,
    /// DingTalk-side edits per simulated day (each journaled).
    #[arg(long, default_value_t = 500)]
    pub dingtalk_changes_per_day: usize,
}

impl Default for ConsoleArgs {
    fn default() -> Self {
        Self {
            users: 100_000,
            depts: 1_000,
            requests: 100,
            plan_wait_s: 1_800,
            days: 30,
            oa_changes_per_day: 1_000,
            dingtalk_changes_per_day: 500,
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// The path of a page's `i`-th request.
type PagePath = Box<dyn Fn(usize) -> String>;
const BENCH_USER: &str = "bench-operator";
const BENCH_PASSWORD: &str = "bench console password";

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &ConsoleArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.requests > 0, "--requests must be at least 1");
    anyhow::ensure!(args.users > 0, "--users must be at least 1");
    let rig = Rig::start(
        service,
        &RigOptions {
            users: args.users,
            depts: args.depts,
            qps: 1_000,
            latency_ms: 0,
            workers: false,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    let import_started = Instant::now();
    rig.import().await?;
    let import_s = import_started.elapsed().as_secs_f64();

    let bytes_before = rig.store.database_bytes().await?;
    let month_started = Instant::now();
    let ids = simulate_month(&rig, args).await?;
    let month_s = month_started.elapsed().as_secs_f64();
    let bytes_after = rig.store.database_bytes().await?;
    let history = rig.store.history_row_counts().await?;

    let phc = ::console::hash_password(BENCH_PASSWORD).context("hashing the bench password")?;
    let now = now_ms();
    rig.store
        .console_user_put(BENCH_USER, "operator", phc.as_phc(), now)
        .await?;
    let session = Session::sign_in(&rig.base).await?;

    // A name part that matches a handful of people, taken from real names.
    let sample = rig
        .store
        .list_users(&UserQuery {
            limit: 200,
            ..Default::default()
        })
        .await?;
    let names: Vec<String> = sample
        .items
        .iter()
        .map(|u| u.entity.name.chars().take(2).collect())
        .collect();
    // A top-level department (with its sub-departments and members) for the tree's second
    // level and the users page's department filter.
    let (top, _) = rig.store.department_level(None, 0, 1).await?;
    let top = top.first().map_or(1, |d| d.id);
    // The plan page computes its first plan in the background: wait for it.
    let plan_started = Instant::now();
    loop {
        let page = session.get("/console/plan").await.context("page plan")?;
        if page.contains("data-plan-state=\"ready\"") {
            break;
        }
        anyhow::ensure!(
            !page.contains("data-plan-state=\"none\""),
            "the plan page computes no plan: {page:.500}"
        );
        anyhow::ensure!(
            plan_started.elapsed().as_secs() < args.plan_wait_s,
            "no plan after {} s",
            args.plan_wait_s
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let plan_compute_s = plan_started.elapsed().as_secs_f64();
    let mut pages: Vec<(&str, PagePath)> = vec![
        ("overview", Box::new(|_| "/console".to_owned())),
        (
            "users_in_department",
            Box::new(move |_| format!("/console/users?department={top}")),
        ),
        (
            "departments_level2",
            Box::new(move |_| format!("/console/departments?under={top}")),
        ),
        ("roles", Box::new(|_| "/console/roles".to_owned())),
        ("plan", Box::new(|_| "/console/plan".to_owned())),
        ("users", Box::new(|_| "/console/users".to_owned())),
        (
            "users_search_name",
            Box::new(move |i| {
                let q: String = form_urlencoded(&names[i % names.len()]);
                format!("/console/users?q={q}")
            }),
        ),
        (
            "departments",
            Box::new(|_| "/console/departments".to_owned()),
        ),
        ("attention", Box::new(|_| "/console/attention".to_owned())),
        ("runs", Box::new(|_| "/console/runs".to_owned())),
        ("audit", Box::new(|_| "/console/audit".to_owned())),
        ("settings", Box::new(|_| "/console/settings".to_owned())),
    ];
    let object_ids = ids.clone();
    pages.push((
        "user_detail",
        Box::new(move |i| {
            format!(
                "/console/users/{}",
                object_ids[(i * 7919) % object_ids.len()]
            )
        }),
    ));
    let search_ids = ids;
    pages.push((
        "users_search_userid",
        Box::new(move |i| {
            format!(
                "/console/users?q={}",
                search_ids[(i * 104_729) % search_ids.len()]
            )
        }),
    ));

    let mut out_pages = BTreeMap::new();
    let mut all = Latencies::default();
    let measured = Instant::now();
    let mut worst_p99: f64 = 0.0;
    for (name, path) in &pages {
        let mut lat = Latencies::default();
        for i in 0..args.requests {
            let started = Instant::now();
            session
                .get(&path(i))
                .await
                .with_context(|| format!("page {name}"))?;
            lat.record(started.elapsed());
        }
        let (p50, p99) = (lat.percentile(50.0), lat.percentile(99.0));
        worst_p99 = worst_p99.max(p99.unwrap_or(0.0));
        out_pages.insert(
            (*name).to_owned(),
            serde_json::json!({"p50_ms": p50, "p99_ms": p99, "requests": args.requests}),
        );
        all.extend(lat);
    }
    let wall = measured.elapsed().as_secs_f64();

    let total_requests = args.requests * pages.len();
    let mut out = BenchReport::new("console", db, round3(wall), None);
    out.throughput_per_s = round2(total_requests as f64 / wall);
    out.p50_ms = all.percentile(50.0);
    out.p99_ms = all.percentile(99.0);
    let history: BTreeMap<String, i64> = history
        .into_iter()
        .map(|(table, n)| (table.to_owned(), n))
        .collect();
    out = out
        .with("users", args.users)
        .with("depts", args.depts)
        .with("requests_per_page", args.requests)
        .with(
            "pages",
            serde_json::Value::Object(out_pages.into_iter().collect()),
        )
        .with("worst_page_p99_ms", worst_p99)
        .with("plan_compute_s", round3(plan_compute_s))
        .with("import_s", round3(import_s))
        .with("month_days", args.days)
        .with("month_oa_changes", args.days * args.oa_changes_per_day)
        .with(
            "month_dingtalk_changes",
            args.days * args.dingtalk_changes_per_day,
        )
        .with("month_write_s", round3(month_s))
        .with("history_rows", serde_json::to_value(&history)?)
        .with(
            "database_mb_before_month",
            round2(bytes_before as f64 / 1e6),
        )
        .with("database_mb_after_month", round2(bytes_after as f64 / 1e6))
        .with(
            "history_mb_month",
            round2((bytes_after - bytes_before) as f64 / 1e6),
        );
    rig.shutdown().await?;
    Ok(out)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn form_urlencoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Writes a month of history ending now; answers every user id (for the object pages).
async fn simulate_month(rig: &Rig, args: &ConsoleArgs) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(args.users);
    let mut after: Option<OaUserId> = None;
    loop {
        let page = rig
            .store
            .list_users(&UserQuery {
                limit: 1000,
                after: after.clone(),
                ..Default::default()
            })
            .await?;
        let Some(last) = page.items.last() else { break };
        after = Some(last.entity.id.clone());
        ids.extend(page.items.iter().map(|u| u.entity.id.as_str().to_owned()));
    }
    anyhow::ensure!(!ids.is_empty(), "the import wrote no users");
    let start = now_ms() - i64::try_from(args.days).unwrap_or(30) * DAY_MS;
    let mut n = 0usize;
    for day in 0..args.days {
        let day_ms = start + i64::try_from(day).unwrap_or(0) * DAY_MS;
        let changes = args.oa_changes_per_day + args.dingtalk_changes_per_day;
        for c in 0..changes {
            n += 1;
            let id = &ids[(n * 7_919) % ids.len()];
            let at = day_ms
                + (i64::try_from(c).unwrap_or(0) * DAY_MS)
                    / i64::try_from(changes.max(1)).unwrap_or(1);
            let Some(saved) = rig.store.get_user(&OaUserId::new(id.as_str())).await? else {
                continue;
            };
            let mut user = saved.entity;
            user.remark = Some(format!("change {n} on day {day}"));
            let ctx = if c < args.oa_changes_per_day {
                WriteCtx::oa("bench", at)
            } else {
                WriteCtx::dingtalk("bench", at)
            };
            rig.store.update_user(&ctx, user, None).await?;
        }
        // What the pusher would have done with the day's OA edits.
        loop {
            let claimed = rig
                .store
                .outbox_claim("bench-pusher", day_ms + DAY_MS - 1, 60_000, 1000)
                .await?;
            if claimed.is_empty() {
                break;
            }
            let ids: Vec<i64> = claimed.iter().map(|e| e.id).collect();
            rig.store
                .outbox_done_many(&ids, "bench-pusher", day_ms + DAY_MS - 1)
                .await?;
        }
        // A nightly import and hourly reconciles.
        for (hour, kind) in std::iter::once((2, "import")).chain((0..24).map(|h| (h, "reconcile")))
        {
            let at = day_ms + hour * 3_600_000;
            let id = rig
                .store
                .run_start(&directory_store::RunStart {
                    kind,
                    started_by: "schedule",
                    started_at_ms: at,
                })
                .await?;
            let summary = r#"{"counts":[{"side":"oa","created":3,"changed":40,"deleted":1,"held":0,"failed":0}],"dingtalk_calls":1200,"throttles":0}"#;
            let log = r#"[{"at":"","level":"info","message":"applied 44 change(s)"}]"#;
            rig.store
                .run_finish(id, at + 60_000, "ok", None, summary, log)
                .await?;
        }
    }
    Ok(ids)
}

/// A signed-in console session over plain HTTP (cookies carried by hand).
struct Session {
    http: reqwest::Client,
    base: String,
    cookies: String,
}

impl Session {
    async fn sign_in(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let form = http.get(format!("{base}/console/login")).send().await?;
        let mut jar = cookies_of(&form, BTreeMap::new());
        let html = form.text().await?;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .context("the sign-in form has no CSRF token")?
            .to_owned();
        let answer = http
            .post(format!("{base}/console/login"))
            .header(COOKIE, header(&jar))
            .form(&[
                ("username", BENCH_USER),
                ("password", BENCH_PASSWORD),
                ("csrf", csrf.as_str()),
            ])
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_redirection(),
            "signing in answered {}",
            answer.status()
        );
        jar = cookies_of(&answer, jar);
        Ok(Self {
            http,
            base: base.to_owned(),
            cookies: header(&jar),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookies)
            .send()
            .await?;
        let status = answer.status();
        let body = answer.text().await?;
        anyhow::ensure!(
            status.is_success(),
            "GET {path}: HTTP {status}: {body:.300}"
        );
        Ok(body)
    }
}

fn cookies_of(
    answer: &reqwest::Response,
    mut jar: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    for value in answer.headers().get_all(SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let pair = text.split(';').next().unwrap_or("");
        if let Some((name, value)) = pair.split_once('=') {
            jar.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    jar
}

fn header(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}
