//! `bench scim`: an identity provider provisioning through SCIM (issue 17) — SCIM creates and
//! updates per second with their latency, and how long the created users take to reach
//! DingTalk against the rate-limit bound.
//!
//! The IdP `POST`s `users` Users (each with a mobile, so each is pushable), `concurrency` at a
//! time, as Entra ID and Okta do; the run then waits until the outbox is empty, i.e. every user
//! is in DingTalk. Each user costs one `v2/user/create` call, so the bound is `users ÷ qps`.
//! Then the IdP renames every user with a `PATCH` (Entra's capitalised `"Replace"`), and those
//! updates drain the same way (one `v2/user/update` each, the same bound). The rig has a SCIM
//! token of its own (the service refuses one shared with the OA API).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dingtalk_client::endpoints::paths;
use reqwest::Method;
use serde_json::{Value, json};

use super::rig::{DbChoice, Rig, RigOptions};
use super::stats::{calls_delta, rate_bound_s, round2};
use super::{BenchReport, load};
use crate::service::Service;

/// `bench scim` options.
#[derive(Debug, Clone, Args)]
pub struct ScimArgs {
    /// Users the IdP provisions (then renames).
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// SCIM requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// DingTalk's calls per second per API.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
}

impl Default for ScimArgs {
    fn default() -> Self {
        Self {
            users: 1000,
            concurrency: 8,
            qps: 20,
        }
    }
}

/// The `i`-th User an IdP provisions (Entra ID's shape, with the Enterprise extension).
pub fn scim_user(i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": format!("bench{i}@example.com"), "externalId": format!("x{i}"),
        "active": true, "displayName": format!("Bench User {i}"),
        "phoneNumbers": [{"type": "mobile", "value": format!("136{:08}", i % 100_000_000)}],
        "emails": [{"type": "work", "value": format!("bench{i}@example.com"), "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
            {"employeeNumber": format!("E{i}")}
    })
}

/// Sends one SCIM request (`path` below `/scim/v2`); returns the JSON body of a success.
async fn scim_send(rig: &Rig, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
    let resp = rig
        .http
        .request(method, format!("{}/scim/v2{path}", rig.base))
        .bearer_auth(rig.scim_token.expose())
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("calling {path}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{path}: HTTP {status}: {body}");
    Ok(body)
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &ScimArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.users > 0, "--users must be at least 1");
    let rig = Rig::start(
        service,
        &RigOptions {
            qps: args.qps,
            workers: true,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    rig.import()
        .await
        .context("the import of the empty organization failed")?;
    let calls_before = rig.sim_calls().await?;

    let ids = std::sync::Mutex::new(vec![String::new(); args.users]);
    let started = Instant::now();
    let creates = load::run(args.users, args.concurrency, |i| {
        let (rig, ids) = (&rig, &ids);
        async move {
            let v = scim_send(rig, Method::POST, "/Users", &scim_user(i)).await?;
            let id = v["id"].as_str().context("a created User has no id")?;
            ids.lock()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))?[i] = id.to_owned();
            Ok(())
        }
    })
    .await?;
    let patience =
        Duration::from_secs_f64(args.users as f64 / f64::from(args.qps.max(1)) * 3.0 + 60.0);
    rig.wait_drained(started, patience).await?;
    let created_wall = started.elapsed();
    let calls_created = rig.sim_calls().await?;

    let ids = ids
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a writer panicked"))?;
    let renamed = Instant::now();
    let updates = load::run(args.users, args.concurrency, |i| {
        let (rig, id) = (&rig, &ids[i]);
        async move {
            let patch = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "displayName",
                                "value": format!("Renamed {i}")}]
            });
            scim_send(rig, Method::PATCH, &format!("/Users/{id}"), &patch).await?;
            Ok(())
        }
    })
    .await?;
    rig.wait_drained(renamed, patience).await?;
    let updated_wall = renamed.elapsed();

    let n = args.users as u64;
    let create_calls = calls_delta(&calls_before, &calls_created);
    let update_calls = calls_delta(&calls_created, &rig.sim_calls().await?);
    let min_calls = [(paths::USER_CREATE.to_owned(), n)].into();
    let bound_s = rate_bound_s(&min_calls, args.qps);
    let update_bound_s = rate_bound_s(&[(paths::USER_UPDATE.to_owned(), n)].into(), args.qps);

    let mut out = BenchReport::new("scim", db, created_wall.as_secs_f64(), bound_s);
    out.calls = create_calls;
    out.min_calls = min_calls;
    out.throughput_per_s = round2(args.users as f64 / created_wall.as_secs_f64());
    out.p50_ms = creates.latencies.percentile(50.0);
    out.p99_ms = creates.latencies.percentile(99.0);
    out = out
        .with("users", args.users)
        .with("concurrency", args.concurrency)
        .with("qps", args.qps)
        .with("creates_per_s", creates.per_s())
        .with("create_p50_ms", creates.latencies.percentile(50.0))
        .with("create_p99_ms", creates.latencies.percentile(99.0))
        .with("updates_per_s", updates.per_s())
        .with("update_p50_ms", updates.latencies.percentile(50.0))
        .with("update_p99_ms", updates.latencies.percentile(99.0))
        .with("updates_in_dingtalk_s", round2(updated_wall.as_secs_f64()))
        .with("update_bound_s", update_bound_s)
        .with(
            "update_calls",
            serde_json::to_value(&update_calls).unwrap_or(Value::Null),
        );
    rig.shutdown().await?;
    Ok(out)
}
