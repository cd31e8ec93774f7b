//! Fault runs (issue 9 §2): the real `dingsync serve` and CLI against a simulator that fails,
//! throttles, expires tokens and mangles its pushes, and over a database that is locked or
//! restarted. Each run imports, then changes both sides for a while (see
//! `support::faults::workload`), and must end with
//! - every change on both sides (nothing lost) and `dingsync plan --json` empty;
//! - both sides holding exactly the start count plus the created users (nothing duplicated);
//! - `/metrics` and `dingsync status` showing what happened (faults, retries, throttled
//!   answers, token fetches and replays, database outages, dead letters).
//!
//! Each run prints one `FAULT RUN` line with its numbers (the note reports them).
//! `DINGSYNC_FAULT_SECS=N` makes each workload run N seconds instead of a few (and the token
//! lifetime DingTalk's minute instead of 2 s), for a soak.

use crate::support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use support::faults::{
    Postgres, Rig, RigOptions, assert_no_duplicates, converge, metric_sum, run_secs, tail,
    wait_applied, wait_drained, workload,
};

/// Bound on waiting for convergence after a workload.
const CONVERGE: Duration = Duration::from_secs(120);

/// The number just before `label` in the `dingsync status` line starting with `line_start`,
/// e.g. `retries` in "DingTalk calls  10 made, 3 retries, …".
fn status_number(status: &str, line_start: &str, label: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start:?} line in:\n{status}"));
    line.find(&format!(" {label}"))
        .and_then(|at| line[..at].split_whitespace().last())
        .and_then(|word| word.trim_start_matches('(').parse().ok())
        .unwrap_or_else(|| panic!("no number before {label:?} in {line:?}"))
}

/// The checks every run ends with; returns the `dingsync status` text.
async fn finish(rig: &Rig, workloads: &[&support::faults::Workload], started_ms: i64) -> String {
    assert_no_duplicates(rig, workloads).await;
    // A snapshot written after the run, so it holds everything the run did.
    let status = rig.status_after(now_ms().max(started_ms)).await;
    // Nothing parked for a person: the faults were all bridged.
    assert!(
        status.contains("inbox           0 waiting, 0 in progress, 0 dead letters"),
        "{status}"
    );
    assert!(
        status.contains("outbox          0 waiting, 0 in progress, 0 dead letters"),
        "{status}"
    );
    status
}

fn now_ms() -> i64 {
    support::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_during_import_events_and_pushes() {
    let started_ms = now_ms();
    let mut rig = Rig::start(RigOptions::new(0xFA_0001)).await;
    // -1, 502 and slow answers in equal shares; a slow answer (6 s) is past the client's 5 s
    // request timeout, so the client sees a timeout and cannot know whether a write happened.
    rig.sim_settings(json!({"fault_rate": 0.1, "slow_answer_ms": 6000}))
        .await;
    let t = Instant::now();
    let import = rig.import().await;
    let import_secs = t.elapsed().as_secs_f64();
    let w = workload(&rig, 1, run_secs(8)).await;
    let applied = wait_applied(&rig, &[&w], CONVERGE).await;
    wait_drained(&rig, CONVERGE).await;
    // The faults stay on until every change has crossed and every queued event and push is
    // done; only the final full comparison runs on a healthy DingTalk, so that it measures the
    // sync and not the checker's luck.
    rig.sim_settings(json!({"fault_rate": 0.0})).await;
    converge(&rig, &[&w], CONVERGE).await;
    let calls = rig.sim_get("/_sim/calls").await;
    let status = finish(&rig, &[&w], started_ms).await;
    let metrics = rig.metrics().await;
    let faults = status_number(&status, "DingTalk calls", "faults");
    let retries = status_number(&status, "DingTalk calls", "retries");
    assert!(calls["total"]["faulted"].as_u64() > Some(0), "{calls}");
    assert!(faults > 0 && retries >= faults, "{status}");
    assert!(
        metric_sum(&metrics, "dingsync_dingtalk_faults_total") > 0.0,
        "{metrics}"
    );
    assert!(metric_sum(&metrics, "dingsync_dingtalk_retries_total") > 0.0);
    println!(
        "FAULT RUN faults: import {import_secs:.1}s; simulator faulted {} of {} calls; service saw \
         {faults} faults, {retries} retries; {} OA + {} DingTalk changes applied {:.1}s after the \
         workload\n{status}\nimport: {import}",
        calls["total"]["faulted"],
        calls["total"]["calls"],
        w.oa_created.len() + w.oa_renamed.len(),
        w.dt_created.len() + w.dt_renamed.len(),
        applied.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_burst_mid_run_backs_off_and_converges() {
    let started_ms = now_ms();
    let mut rig = Rig::start(RigOptions::new(0xFA_0002)).await;
    rig.import().await;
    let secs = run_secs(10);
    let (w, ()) = tokio::join!(workload(&rig, 2, secs), async {
        // A few seconds in, DingTalk's limit drops to 2 calls per second per API for 4 s (the
        // client's own budget still allows 20): every burst above it is answered 90018.
        tokio::time::sleep(Duration::from_secs(2)).await;
        rig.sim_settings(json!({"qps": 2})).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        rig.sim_settings(json!({"qps": 20})).await;
    });
    let applied = wait_applied(&rig, &[&w], CONVERGE).await;
    converge(&rig, &[&w], CONVERGE).await;
    let calls = rig.sim_get("/_sim/calls").await;
    let status = finish(&rig, &[&w], started_ms).await;
    let metrics = rig.metrics().await;
    let throttled = status_number(&status, "DingTalk calls", "throttled");
    assert!(calls["total"]["throttled"].as_u64() > Some(0), "{calls}");
    assert!(throttled > 0, "{status}");
    assert!(metric_sum(&metrics, "dingsync_dingtalk_throttles_total") > 0.0);
    println!(
        "FAULT RUN throttling: simulator answered 90018 {} times; service saw {throttled} \
         throttled, {} retries; converged {:.1}s after the workload\n{status}",
        calls["total"]["throttled"],
        status_number(&status, "DingTalk calls", "retries"),
        applied.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expiring_never_fail_a_call() {
    let started_ms = now_ms();
    let soak = std::env::var("DINGSYNC_FAULT_SECS").is_ok();
    // DingTalk's tokens live 7200 s; here 2 s (60 s in a soak), and on top every issued token
    // is revoked every 1.5 s (20 s in a soak), so calls also meet a token that died in flight.
    let (ttl, revoke_every) = if soak {
        (60, Duration::from_secs(20))
    } else {
        (2, Duration::from_millis(1500))
    };
    let mut rig = Rig::start(RigOptions::new(0xFA_0003)).await;
    rig.sim_settings(json!({"token_ttl_secs": ttl})).await;
    rig.import().await;
    let secs = run_secs(10);
    let stop = tokio_util::sync::CancellationToken::new();
    let revoker = {
        let (http, sim, stop) = (rig.http.clone(), rig.sim_url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut revoked = 0_u32;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return revoked,
                    () = tokio::time::sleep(revoke_every) => {}
                }
                support::sim_call(&http, &sim, Method::POST, "/_sim/tokens/expire", None).await;
                revoked += 1;
            }
        })
    };
    let w = workload(&rig, 3, secs).await;
    let applied = wait_applied(&rig, &[&w], CONVERGE).await;
    stop.cancel();
    let revoked = revoker.await.expect("the revoker");
    converge(&rig, &[&w], CONVERGE).await;
    let status = finish(&rig, &[&w], started_ms).await;
    let fetches = status_number(&status, "DingTalk calls", "token fetches");
    let replays = status_number(&status, "DingTalk calls", "token replays");
    // One fetch per lifetime (at least) over the run, and revoked tokens were replaced.
    assert!(fetches >= 3, "{status}");
    let output = rig.service.output();
    assert!(
        output.matches("access token rejected").count() as u64 <= replays,
        "every rejection is a counted replay"
    );
    // A rejected token shows up only in the replay's own line: no event retried, no push
    // failed and no worker restarted because of one.
    let failed: Vec<&str> = output
        .lines()
        .filter(|l| names_code(l, "40014") && !l.contains("access token rejected"))
        .collect();
    assert!(failed.is_empty(), "calls failed on a token: {failed:#?}");
    println!(
        "FAULT RUN tokens: lifetime {ttl}s, {revoked} revocations; service fetched {fetches} \
         tokens, replayed {replays} calls; converged {:.1}s after the workload\n{status}",
        applied.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_delayed_reordered_callbacks_apply_once() {
    let started_ms = now_ms();
    let mut rig = Rig::start(RigOptions::new(0xFA_0004)).await;
    rig.push_settings(json!({
        "dialect": "new", "duplicate_rate": 0.3, "delay_ms": 300, "reorder_window_ms": 400
    }))
    .await;
    rig.import().await;
    let w = workload(&rig, 4, run_secs(8)).await;
    let applied = wait_applied(&rig, &[&w], CONVERGE).await;
    // Delayed copies and the echoes of dingsync's own pushes are still on their way: wait for
    // the simulator to deliver everything, then for the service to drain its inbox.
    assert!(rig.sim.wait_pushes_idle(Duration::from_secs(30)).await);
    converge(&rig, &[&w], CONVERGE).await;
    assert!(rig.sim.wait_pushes_idle(Duration::from_secs(30)).await);
    let pushes = rig.sim_get("/_sim/pushes").await;
    let records = pushes["pushes"].as_array().expect("pushes");
    let duplicates = records
        .iter()
        .filter(|p| p["duplicate"] == Value::Bool(true))
        .count();
    let events: std::collections::BTreeSet<u64> = records
        .iter()
        .filter_map(|p| p["event_id"].as_u64())
        .collect();
    assert!(duplicates > 0, "the simulator sent no duplicates");
    // Exactly one inbox row (one application) per event, whatever arrived twice.
    let store = directory_store::Store::connect(&rig.database_url())
        .await
        .expect("open the store");
    let inbox = support::whole_inbox(&store).await;
    store.close().await;
    assert_eq!(inbox.len(), events.len(), "one inbox row per event");
    let not_done: Vec<String> = inbox
        .iter()
        .filter(|e| e.state != directory_store::QueueState::Done)
        .map(|e| {
            format!(
                "#{} {} {:?}: {:?} {}",
                e.id, e.event_type, e.state, e.last_error, e.payload_json
            )
        })
        .collect();
    assert!(not_done.is_empty(), "every event applied: {not_done:#?}");
    let status = finish(&rig, &[&w], started_ms).await;
    let metrics = rig.metrics().await;
    let received = metrics
        .lines()
        .find(|l| l.starts_with("dingsync_callbacks_received_total{outcome=\"duplicate\"}"))
        .unwrap_or_default()
        .to_owned();
    assert!(!received.is_empty(), "duplicates are counted:\n{metrics}");
    println!(
        "FAULT RUN callbacks: {} pushes for {} events, {duplicates} duplicates; {received}; \
         {} inbox rows; converged {:.1}s after the workload\n{status}",
        records.len(),
        events.len(),
        inbox.len(),
        applied.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_answers_503_and_converges() {
    use sqlx::Connection as _;
    let started_ms = now_ms();
    let mut options = RigOptions::new(0xFA_0005);
    // The service waits 1 s for a lock (30 s by default), so a 4 s lock is an outage.
    options.sqlite_busy_timeout_ms = Some(1000);
    let mut rig = Rig::start(options).await;
    rig.import().await;
    let url = rig.database_url();
    let secs = run_secs(8).max(Duration::from_secs(7));
    let lock_for = Duration::from_secs(4);
    let (w, (held, during)) = tokio::join!(workload(&rig, 5, secs), async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Another program takes the write lock of the file and keeps it.
        let mut holder = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("open the file");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .expect("lock");
        let t = Instant::now();
        // DingTalk-side changes while the lock is held: their pushes meet the lock (the
        // workload's own DingTalk changes wait behind its OA writes, which are retrying).
        let mut during = support::faults::Workload::default();
        for i in 0..3 {
            let (id, name) = (format!("locked-{i}"), format!("锁定期间{i}"));
            support::sim_call(
                &rig.http,
                &rig.sim_url,
                Method::POST,
                "/_sim/users",
                Some(
                    json!({"userid": id, "name": name, "mobile": format!("1770000000{i}"),
                            "dept_id_list": "1"}),
                ),
            )
            .await;
            during.dt_created.push((id, name));
        }
        tokio::time::sleep(lock_for.saturating_sub(t.elapsed())).await;
        sqlx::query("COMMIT")
            .execute(&mut holder)
            .await
            .expect("unlock");
        (t.elapsed(), during)
    });
    let applied = wait_applied(&rig, &[&w, &during], CONVERGE).await;
    converge(&rig, &[&w, &during], CONVERGE).await;
    let pushes = rig.sim_get("/_sim/pushes").await;
    let refused = pushes["pushes"]
        .as_array()
        .expect("pushes")
        .iter()
        .filter(|p| p["event_id"].is_u64() && p["acked"] == Value::Bool(false))
        .count();
    let status = finish(&rig, &[&w, &during], started_ms).await;
    let metrics = rig.metrics().await;
    assert!(w.oa_unavailable > 0, "no OA write met the lock");
    assert!(refused > 0, "no callback was refused during the lock");
    assert!(
        status_number(&status, "database        unavailable", "outage(s)") >= 1,
        "{status}"
    );
    assert!(
        status.contains("database is locked"),
        "the cause is named:\n{status}"
    );
    let api = metrics
        .lines()
        .find(|l| l.starts_with("dingsync_db_unavailable_total{site=\"api\"}"))
        .unwrap_or_default()
        .to_owned();
    assert!(!api.is_empty(), "{metrics}");
    let output = rig.service.output();
    let restarts: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("worker failed; restarting"))
        .collect();
    println!(
        "FAULT RUN sqlite-locked: lock held {:.1}s; {} OA writes answered 503 and retried; {refused} \
         pushes refused (503) and redelivered; {} worker restarts; converged {:.1}s after the \
         workload\n{status}\n{}",
        held.as_secs_f64(),
        w.oa_unavailable,
        restarts.len(),
        applied.as_secs_f64(),
        restarts.join("\n"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_reconnects_and_converges() {
    let started_ms = now_ms();
    let Some(pg) = Postgres::start() else {
        return;
    };
    let mut options = RigOptions::new(0xFA_0006);
    options.database_url = Some(pg.url.clone());
    let mut rig = Rig::start(options).await;
    rig.import().await;
    let secs = run_secs(8).max(Duration::from_secs(7));
    let stop = tokio_util::sync::CancellationToken::new();
    let readiness = {
        let (http, url, stop) = (
            rig.http.clone(),
            format!("{}/readyz", rig.config.base()),
            stop.clone(),
        );
        tokio::spawn(async move {
            // Each answer, in order: whether it was 200.
            let mut seen: Vec<bool> = Vec::new();
            while !stop.is_cancelled() {
                let ok = http
                    .get(&url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if seen.last() != Some(&ok) {
                    seen.push(ok);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            seen
        })
    };
    let (w, down) = tokio::join!(workload(&rig, 6, secs), async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t = Instant::now();
        tokio::task::block_in_place(|| pg.stop());
        tokio::time::sleep(Duration::from_secs(3)).await;
        tokio::task::block_in_place(|| pg.start_again());
        t.elapsed()
    });
    let applied = wait_applied(&rig, &[&w], CONVERGE).await;
    converge(&rig, &[&w], CONVERGE).await;
    let ready_again = support::poll_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            rig.http
                .get(format!("{}/readyz", rig.config.base()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
    stop.cancel();
    let transitions = readiness.await.expect("the readiness poller");
    let status = finish(&rig, &[&w], started_ms).await;
    assert!(ready_again, "not ready after the restart");
    // Green, red while the server was away, green again.
    assert!(
        transitions.starts_with(&[true, false, true]),
        "readiness went {transitions:?}\n{}",
        tail(&rig.service.output(), 40)
    );
    assert!(
        status_number(&status, "database        unavailable", "outage(s)") >= 1,
        "{status}"
    );
    assert!(status.contains("the last lasted"), "{status}");
    assert!(!status.contains("lasted -"), "{status}");
    let metrics = rig.metrics().await;
    assert!(
        metric_sum(&metrics, "dingsync_db_unavailable_total") > 0.0,
        "{metrics}"
    );
    assert!(metric_sum(&metrics, "dingsync_db_outages_total") > 0.0);
    println!(
        "FAULT RUN postgres-restart: server away {:.1}s; readiness {transitions:?}; {} OA writes \
         answered 503; converged {:.1}s after the workload\n{status}",
        down.as_secs_f64(),
        w.oa_unavailable,
        applied.as_secs_f64(),
    );
}

/// Whether `line` names the error `code` as a number of its own: a log line's timestamp
/// (`14:14:05.400143Z`) holds the same digits inside its fraction, which made a plain
/// `contains` flag innocent lines.
fn names_code(line: &str, code: &str) -> bool {
    line.match_indices(code).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[test]
fn a_timestamp_fraction_is_not_an_error_code() {
    assert!(!names_code(
        "2026-11-26T14:14:05.400143Z INFO stored",
        "40014"
    ));
    assert!(names_code("errcode=88 sub_code=40014 retried", "40014"));
    assert!(names_code("\"sub_code\":\"40014\"", "40014"));
}
