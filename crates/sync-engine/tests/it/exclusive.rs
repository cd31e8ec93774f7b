//! Catch-up and reconcile rounds under a lease, with two "instances" (two contexts, each its own
//! pool) on one PostgreSQL database: only one runs; when the holder is killed without releasing,
//! the other takes over once the lease expired (the engine clock is driven by the test).

use crate::common;

use std::time::Duration;

use common::Harness;
use dingtalk_sim::SimConfig;
use directory_store::{Store, StoreError, StoreOptions};
use sync_engine::SyncContext;
use sync_engine::exclusive::{ExclusiveJob, Round, run_exclusive};
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_runs_and_the_other_takes_over_after_expiry() {
    let Some(h) = Harness::on_postgres(SimConfig {
        users: 1,
        depts: 1,
        qps: 0,
        ..SimConfig::default()
    })
    .await
    else {
        eprintln!("DINGSYNC_TEST_PG_URL unset: skipping the PostgreSQL case");
        return;
    };
    let other = Store::connect_with(h.store.url(), StoreOptions::default())
        .await
        .expect("second pool");
    let a: SyncContext = h.ctx.clone();
    let b = SyncContext {
        store: other,
        ..h.ctx.clone()
    };
    let job = ExclusiveJob {
        ttl: Duration::from_secs(60),
        min_gap: Duration::from_secs(3600),
        ..ExclusiveJob::new("catch-up")
    };

    // A takes the lease and stays inside its job until killed.
    let (started_tx, started_rx) = oneshot::channel();
    let holder = {
        let (a, job) = (a.clone(), job.clone());
        tokio::spawn(async move {
            run_exclusive::<(), StoreError, _>(&a, &job, "host-a:1:aa", async move {
                let _ = started_tx.send(());
                std::future::pending::<()>().await;
                Ok(())
            })
            .await
        })
    };
    started_rx.await.expect("A's job started");

    let mut b_ran = false;
    let round = run_exclusive::<(), StoreError, _>(&b, &job, "host-b:2:bb", async {
        b_ran = true;
        Ok(())
    })
    .await
    .expect("B's round");
    assert_eq!(round, Round::Held);
    assert!(!b_ran, "B ran while A held the lease");

    // Kill A: no release, the lease stays until it expires.
    holder.abort();
    assert!(holder.await.is_err(), "A was killed");
    h.clock.advance(59_000);
    let round = run_exclusive::<(), StoreError, _>(&b, &job, "host-b:2:bb", async { Ok(()) })
        .await
        .expect("B's round");
    assert_eq!(round, Round::Held, "A's lease has 1 s left");
    h.clock.advance(1_001);
    let round = run_exclusive::<u32, StoreError, _>(&b, &job, "host-b:2:bb", async { Ok(7) })
        .await
        .expect("B's round");
    assert_eq!(round, Round::Ran(7), "B took over after expiry");

    // B released at the end; A (restarted) is free to take the lease, but B's round just
    // finished, so A skips the round as recent.
    let round = run_exclusive::<(), StoreError, _>(&a, &job, "host-a:1:cc", async {
        panic!("a recent round must not run again")
    })
    .await
    .expect("A's round");
    assert_eq!(round, Round::Recent);
    h.clock.advance(3_600_000);
    let round = run_exclusive::<(), StoreError, _>(&a, &job, "host-a:1:cc", async { Ok(()) })
        .await
        .expect("A's round");
    assert_eq!(round, Round::Ran(()));
}
