//! `bench callbacks`: signed, encrypted pushes straight at the receiver — each one verified,
//! decrypted, durably stored in the inbox and acknowledged — next to the same server answering
//! `/healthz` (a fixed response, no work) under the same load: the HTTP stack's own ceiling on
//! this machine, measured in the same run.
//!
//! The workers are off, so the receiver is measured alone (the apply worker would otherwise
//! compete for the database and the CPU). Every push carries a different user, so none is a
//! duplicate; the bodies are encrypted and signed before the clock starts, so the generator's
//! own crypto is not counted against the receiver. The efficiency is the receiver's rate over
//! the ceiling's.

use anyhow::Context;
use callback_crypto::CallbackCrypto;
use clap::Args;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sync_engine::{Clock as _, SystemClock};

use super::rig::{DbChoice, Rig, RigOptions};
use super::{BenchReport, load, round3};
use crate::service::Service;

/// `bench callbacks` options.
#[derive(Debug, Clone, Args)]
pub struct CallbacksArgs {
    /// Pushes in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Pushes in total (and `/healthz` requests for the ceiling).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
}

impl Default for CallbacksArgs {
    fn default() -> Self {
        Self {
            concurrency: 32,
            requests: 20_000,
        }
    }
}

/// One ready-to-send push.
struct Push {
    /// `signature`, `timestamp` and `nonce`.
    query: [(&'static str, String); 3],
    /// `{"encrypt": ...}`.
    body: String,
}

/// `requests` pushes as DingTalk would send them to this rig: each a different user, encrypted
/// and signed before the clock starts.
fn encrypted_pushes(rig: &Rig, requests: usize) -> anyhow::Result<Vec<Push>> {
    let sender = CallbackCrypto::new(
        rig.callback_token.expose(),
        rig.aes_key.expose(),
        &rig.owner_key,
    )
    .context("cannot build the sender's crypto")?;
    // Seeded: the ciphertext prefixes only need to differ, not to be unpredictable.
    let mut rng = StdRng::seed_from_u64(8);
    let timestamp = SystemClock.now_ms().to_string();
    (0..requests)
        .map(|i| {
            let plaintext = format!(
                r#"{{"EventType":"user_modify_org","CorpId":"{}","UserId":["bench{i}"],"TimeStamp":"{timestamp}"}}"#,
                rig.sim.config().corp_id
            );
            let encrypt = sender.encrypt(&plaintext, &mut rng)?;
            let nonce = format!("n{i:07}");
            let signature = sender.signature(&timestamp, &nonce, &encrypt);
            Ok(Push {
                query: [
                    ("signature", signature),
                    ("timestamp", timestamp.clone()),
                    ("nonce", nonce),
                ],
                body: serde_json::json!({ "encrypt": encrypt }).to_string(),
            })
        })
        .collect::<Result<Vec<_>, callback_crypto::CryptoError>>()
        .context("cannot encrypt the pushes")
}

/// The same number of `/healthz` requests at the same concurrency: the HTTP stack's ceiling.
async fn healthz_ceiling(rig: &Rig, args: &CallbacksArgs) -> anyhow::Result<load::LoadResult> {
    let health_url = format!("{}/healthz", rig.base);
    load::run(args.requests, args.concurrency, |_| {
        let url = &health_url;
        async move {
            let resp = rig.http.get(url).send().await?;
            anyhow::ensure!(resp.status().is_success(), "/healthz: {}", resp.status());
            resp.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &CallbacksArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    let rig = Rig::start(
        service,
        &RigOptions {
            users: 0,
            depts: 0,
            qps: 20,
            latency_ms: 0,
            workers: false,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    let pushes = encrypted_pushes(&rig, args.requests)?;
    let url = format!("{}{}", rig.base, rig.callback_path);

    let accepted = load::run(args.requests, args.concurrency, |i| {
        let (rig, url, pushes) = (&rig, &url, &pushes);
        async move {
            let push = pushes.get(i).context("push index")?;
            let resp = rig
                .http
                .post(url)
                .query(&push.query)
                .header("content-type", "application/json")
                .body(push.body.clone())
                .send()
                .await?;
            let status = resp.status();
            let reply: serde_json::Value = resp.json().await?;
            anyhow::ensure!(
                status.is_success() && reply.get("encrypt").is_some(),
                "push {i} refused: HTTP {status}: {reply}"
            );
            Ok(())
        }
    })
    .await?;
    let stored = rig.store.inbox_depth().await?;
    anyhow::ensure!(
        usize::try_from(stored.pending).ok() == Some(args.requests),
        "{} pushes acknowledged but {} stored",
        args.requests,
        stored.pending
    );

    let ceiling = healthz_ceiling(&rig, args).await?;

    // The bound: the same number of requests at the no-work ceiling's rate.
    let bound_s = ceiling.wall.as_secs_f64();
    let mut out = BenchReport::new("callbacks", db, accepted.wall.as_secs_f64(), Some(bound_s));
    out.throughput_per_s = accepted.per_s();
    out.p50_ms = accepted.latencies.percentile(50.0);
    out.p99_ms = accepted.latencies.percentile(99.0);
    out = out
        .with("concurrency", args.concurrency)
        .with("requests", args.requests)
        .with("stored", stored.pending)
        .with("ceiling_per_s", ceiling.per_s())
        .with("ceiling_wall_s", round3(bound_s))
        .with("ceiling_p50_ms", ceiling.latencies.percentile(50.0))
        .with("ceiling_p99_ms", ceiling.latencies.percentile(99.0));
    rig.shutdown().await?;
    Ok(out)
}
