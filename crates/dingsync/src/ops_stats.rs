//! What the running service has been through, kept where `dingsync status` can read it.
//!
//! Why: `status` is a separate process, so it cannot see the service's in-memory counters, and
//! `/metrics` shows only the present moment of the process that serves it. After a DingTalk
//! incident or a database outage an operator asks "did anything fail, how often did we retry,
//! were we throttled, was the database away and for how long?". So the service periodically
//! (each gauge tick, see `workers`) writes a JSON snapshot of its DingTalk client counters and
//! its database-unavailability counters into `sync_state` under [`STATE_KEY`], and exports the
//! same counters to Prometheus; `status` renders the snapshot ([`render`]).
//!
//! Database unavailability is told apart from every other store failure by
//! [`StoreError::is_unavailable`]: a locked or busy SQLite, a PostgreSQL connection that was
//! refused, reset or shut down, or a pool that could not hand out a connection in time. Those
//! are the failures that pass by themselves, so the OA API answers them with 503 + `Retry-After`
//! and the callback receiver with 503 (DingTalk then retries). Their error responses carry an
//! [`Unavailable`] mark, and the service's [`count_unavailable`] layer counts it here
//! ([`OpsStats::note_unavailable`]) — the error types cannot reach the service's state, the
//! layer can. An *outage* is opened by the first such failure and closed by the next successful
//! snapshot write, which gives its duration to within one tick.
//!
//! The counters are one service's ([`OpsStats`] lives in the application's state), like the
//! metrics recorder they feed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use directory_store::StoreError;
use serde_json::{Value, json};
use sync_engine::SyncContext;

use crate::clock::SharedClock;
use sync_engine::error_chain;

/// The `sync_state` key of the snapshot.
pub const STATE_KEY: &str = "service.stats";

/// Where a database failure was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// An OA API request (answered 503).
    Api,
    /// A DingTalk callback (answered 503, so DingTalk retries).
    Callback,
    /// A background task (the stats writer itself; workers restart after their own failures).
    Worker,
    /// The `/readyz` probe (failed, or got no answer in time).
    Readiness,
}

impl Site {
    fn label(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Callback => "callback",
            Self::Worker => "worker",
            Self::Readiness => "readiness",
        }
    }
}

/// The database counters behind the snapshot.
#[derive(Debug, Default, Clone)]
struct DbCounters {
    /// Unavailability failures seen by OA API requests.
    api: u64,
    /// Unavailability failures seen by callbacks.
    callback: u64,
    /// Unavailability failures seen by background tasks.
    worker: u64,
    /// Failed or timed-out readiness probes.
    readiness: u64,
    /// When the open outage's first failure was seen (Unix ms), if one is open.
    outage_since_ms: Option<i64>,
    /// Outages that have ended.
    outages: u64,
    /// How long the last ended outage lasted, from its first failure to the first successful
    /// write after it.
    last_outage_ms: Option<i64>,
    /// The last failure's message (a driver message such as "database is locked"; it never
    /// holds the URL, which is the only place a password could be).
    last_error: Option<String>,
}

/// One service's operations counters; cheap to clone (the counters are shared).
#[derive(Debug, Clone)]
pub struct OpsStats {
    /// The database counters, updated by requests and the stats writer alike.
    db: Arc<Mutex<DbCounters>>,
    /// "Now", for outages noted from a response.
    clock: SharedClock,
}

impl OpsStats {
    /// Zeroed counters, dated by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            db: Arc::default(),
            clock,
        }
    }

    fn db(&self) -> MutexGuard<'_, DbCounters> {
        // A poisoned lock only means a panic mid-increment elsewhere; the counters stay usable.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one unavailability failure at `site` (`message` says what failed) and opens an
    /// outage if none is open.
    pub fn note_unavailable(&self, site: Site, message: String, now_ms: i64) {
        metrics::counter!("dingsync_db_unavailable_total", "site" => site.label()).increment(1);
        let mut db = self.db();
        match site {
            Site::Api => db.api += 1,
            Site::Callback => db.callback += 1,
            Site::Worker => db.worker += 1,
            Site::Readiness => db.readiness += 1,
        }
        if db.outage_since_ms.is_none() {
            db.outage_since_ms = Some(now_ms);
            metrics::gauge!("dingsync_db_available").set(0.0);
        }
        db.last_error = Some(message);
    }

    /// Closes the open outage, if any, at `now_ms`.
    fn note_available(&self, now_ms: i64) {
        let mut db = self.db();
        if let Some(since) = db.outage_since_ms.take() {
            db.outages += 1;
            db.last_outage_ms = Some(now_ms.saturating_sub(since).max(0));
            metrics::counter!("dingsync_db_outages_total").increment(1);
            tracing::info!(
                outage_ms = now_ms.saturating_sub(since).max(0),
                "the database is available again"
            );
        }
        metrics::gauge!("dingsync_db_available").set(1.0);
    }
}

/// The mark an error response carries when the database was unavailable (see the module doc).
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// Who answered.
    pub site: Site,
    /// The store error's whole chain.
    pub message: String,
}

impl Unavailable {
    /// Marks `response` as answered because the database was away (`error` says how).
    pub fn mark(response: &mut Response, site: Site, error: &StoreError) {
        response.extensions_mut().insert(Self {
            site,
            message: error_chain(error),
        });
    }
}

/// The service-wide layer: counts every response marked [`Unavailable`].
pub async fn count_unavailable(
    State(stats): State<OpsStats>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(mark) = response.extensions().get::<Unavailable>() {
        stats.note_unavailable(mark.site, mark.message.clone(), stats.clock.now_ms());
    }
    response
}

/// The snapshot written to `sync_state`.
fn snapshot(ctx: &SyncContext, ops: &OpsStats, now_ms: i64) -> Value {
    let stats = ctx.client.stats();
    let endpoints: serde_json::Map<String, Value> = stats
        .endpoints
        .iter()
        .map(|(api, e)| {
            (
                (*api).to_owned(),
                json!({
                    "calls": e.calls,
                    "errors": e.errors,
                    "throttled": e.throttles,
                    "retries": e.retries,
                    "token_replays": e.token_replays,
                    "server_errors": e.server_errors,
                    "timeouts": e.timeouts,
                    "transport_errors": e.transport_errors,
                }),
            )
        })
        .collect();
    let db = ops.db().clone();
    json!({
        "updated_ms": now_ms,
        "pid": std::process::id(),
        "dingtalk": {
            "calls": stats.total_calls(),
            "retries": stats.total_retries(),
            "throttled": stats.total_throttles(),
            "faults": stats.total_faults(),
            "token_fetches": stats.token_fetches,
            "token_replays": stats.endpoints.values().map(|e| e.token_replays).sum::<u64>(),
            "endpoints": endpoints,
        },
        "database": {
            "unavailable": {"api": db.api, "callback": db.callback, "worker": db.worker,
                "readiness": db.readiness},
            "outages": db.outages,
            "last_outage_ms": db.last_outage_ms,
            "outage_since_ms": db.outage_since_ms,
            "last_error": db.last_error,
        },
    })
}

/// Exports the client's retry / fault / token counters to Prometheus (the call, error and
/// throttle counters are exported by `workers`).
fn export(ctx: &SyncContext) {
    let stats = ctx.client.stats();
    for (api, e) in &stats.endpoints {
        let api = *api;
        metrics::counter!("dingsync_dingtalk_retries_total", "api" => api).absolute(e.retries);
        metrics::counter!("dingsync_dingtalk_token_replays_total", "api" => api)
            .absolute(e.token_replays);
        for (kind, n) in [
            ("server", e.server_errors),
            ("timeout", e.timeouts),
            ("transport", e.transport_errors),
        ] {
            metrics::counter!("dingsync_dingtalk_faults_total", "api" => api, "kind" => kind)
                .absolute(n);
        }
    }
    metrics::counter!("dingsync_dingtalk_token_fetches_total").absolute(stats.token_fetches);
}

/// One tick: exports the counters and writes the snapshot. A write that fails because the
/// database is away is counted (it *is* the outage); any other failure is logged. Never fails,
/// so it cannot take the gauge loop down with it.
pub async fn tick(ctx: &SyncContext, stats: &OpsStats) {
    export(ctx);
    let now_ms = ctx.clock.now_ms();
    let value = snapshot(ctx, stats, now_ms).to_string();
    match ctx.store.state_set(STATE_KEY, &value, now_ms).await {
        // The write may have waited for the database for a while: the outage ended when it
        // returned, not when it began.
        Ok(()) => stats.note_available(ctx.clock.now_ms()),
        Err(error) if error.is_unavailable() => {
            stats.note_unavailable(Site::Worker, error_chain(&error), now_ms);
        }
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "could not persist the service stats");
        }
    }
}

/// The snapshot as `dingsync status` prints it; `now_ms` dates it.
pub fn render(snapshot_json: &str, now_ms: i64) -> String {
    let Ok(v) = serde_json::from_str::<Value>(snapshot_json) else {
        return "service stats   unreadable\n".to_owned();
    };
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let d = &v["dingtalk"];
    let age_s = now_ms.saturating_sub(v["updated_ms"].as_i64().unwrap_or(0)) / 1000;
    let mut out = format!(
        "service stats   from pid {} ({age_s} s ago; counters since that process started)\n",
        n(&v["pid"])
    );
    out.push_str(&format!(
        "DingTalk calls  {} made, {} retries, {} throttled, {} faults, {} token fetches, {} token replays\n",
        n(&d["calls"]),
        n(&d["retries"]),
        n(&d["throttled"]),
        n(&d["faults"]),
        n(&d["token_fetches"]),
        n(&d["token_replays"]),
    ));
    if let Some(endpoints) = d["endpoints"].as_object() {
        for (api, e) in endpoints {
            let faults = n(&e["server_errors"]) + n(&e["timeouts"]) + n(&e["transport_errors"]);
            if n(&e["errors"]) == 0 && n(&e["retries"]) == 0 {
                continue;
            }
            out.push_str(&format!(
                "  {api}: {} calls, {} retries, {} throttled, {faults} faults ({} server errors, {} timeouts, {} connection errors)\n",
                n(&e["calls"]),
                n(&e["retries"]),
                n(&e["throttled"]),
                n(&e["server_errors"]),
                n(&e["timeouts"]),
                n(&e["transport_errors"]),
            ));
        }
    }
    let db = &v["database"];
    let un = &db["unavailable"];
    out.push_str(&format!(
        "database        unavailable {} time(s) (API {}, callbacks {}, workers {}, readiness probes {}); {} outage(s) ended{}\n",
        n(&un["api"]) + n(&un["callback"]) + n(&un["worker"]) + n(&un["readiness"]),
        n(&un["api"]),
        n(&un["callback"]),
        n(&un["worker"]),
        n(&un["readiness"]),
        n(&db["outages"]),
        db["last_outage_ms"]
            .as_i64()
            .map(|ms| format!(", the last lasted {:.1} s", ms as f64 / 1000.0))
            .unwrap_or_default(),
    ));
    if let Some(since) = db["outage_since_ms"].as_i64() {
        out.push_str(&format!(
            "  UNAVAILABLE since {} s before the snapshot\n",
            v["updated_ms"]
                .as_i64()
                .unwrap_or(since)
                .saturating_sub(since)
                / 1000
        ));
    }
    if let Some(last) = db["last_error"].as_str() {
        out.push_str(&format!("  last database error: {last}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_names_retries_faults_tokens_and_outages() {
        let snapshot = json!({
            "updated_ms": 10_000, "pid": 7,
            "dingtalk": {"calls": 100, "retries": 9, "throttled": 3, "faults": 6,
                "token_fetches": 4, "token_replays": 2,
                "endpoints": {"/topapi/v2/user/get": {"calls": 50, "errors": 6, "throttled": 0,
                    "retries": 6, "token_replays": 1, "server_errors": 4, "timeouts": 2,
                    "transport_errors": 0}}},
            "database": {"unavailable": {"api": 2, "callback": 1, "worker": 0, "readiness": 1}, "outages": 1,
                "last_outage_ms": 4200, "outage_since_ms": null, "last_error": "database is locked"}
        });
        let text = render(&snapshot.to_string(), 12_000);
        assert!(
            text.contains("100 made, 9 retries, 3 throttled, 6 faults, 4 token fetches"),
            "{text}"
        );
        assert!(
            text.contains("/topapi/v2/user/get: 50 calls, 6 retries"),
            "{text}"
        );
        assert!(text.contains("4 server errors, 2 timeouts"), "{text}");
        assert!(
            text.contains("unavailable 4 time(s) (API 2, callbacks 1"),
            "{text}"
        );
        assert!(text.contains("the last lasted 4.2 s"), "{text}");
        assert!(text.contains("database is locked"), "{text}");
        assert!(!text.contains("UNAVAILABLE since"), "{text}");
    }
}
