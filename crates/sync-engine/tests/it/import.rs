//! The full import against the simulator over real HTTP into a real SQLite directory.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{Harness, assert_converged};
use dingtalk_sim::SimConfig;
use directory_model::{Mobile, OaDeptId, OaUserId, User, UserState};
use directory_store::{HoldState, WriteCtx};
use reqwest::Method;
use serde_json::json;
use sync_engine::import::{self, ImportOptions, ImportProgress, MatchedBy, NoProgress, Progress};
use sync_engine::{MatchKey, Policy};
use tokio_util::sync::CancellationToken;

fn org(users: usize, depts: usize) -> SimConfig {
    SimConfig {
        users,
        depts,
        qps: 0,
        ..SimConfig::default()
    }
}

async fn run(h: &Harness, options: &ImportOptions) -> import::ImportReport {
    import::import(&h.ctx, options, &NoProgress, &CancellationToken::new())
        .await
        .expect("import succeeds")
}

#[tokio::test]
async fn import_of_a_generated_org_equals_the_simulator_state() {
    let h = Harness::start(org(300, 30)).await;
    let report = run(&h, &ImportOptions::default()).await;
    assert!(report.complete, "{:?}", report.failures);
    assert_eq!(report.users.created, 300);
    assert_eq!(
        report.departments.created, 31,
        "30 departments and the root"
    );
    assert!(report.roles.created > 0 && report.assignments_added > 0);
    assert_converged(&h).await;

    // Calls: everything the minimum requires and nothing more (no throttles at qps 0).
    assert_eq!(report.calls.throttled, 0);
    for (api, min) in &report.calls.minimum {
        let made = report.calls.made.get(api).copied().unwrap_or(0);
        assert_eq!(made, *min, "{api}: made {made}, minimum {min}");
    }

    // A second import changes nothing and writes nothing.
    let seq = h.store.latest_seq().await.unwrap();
    let again = run(&h, &ImportOptions::default()).await;
    assert_eq!(again.users.unchanged, 300);
    assert_eq!(again.users.created + again.users.updated, 0);
    assert_eq!(h.store.latest_seq().await.unwrap(), seq, "no audit rows");
    assert_eq!(
        h.store.outbox_depth().await.unwrap().pending,
        0,
        "nothing to push back"
    );
}

#[tokio::test]
async fn dry_run_reports_without_writing() {
    let h = Harness::start(org(50, 5)).await;
    let report = run(
        &h,
        &ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        },
    )
    .await;
    assert!(report.dry_run);
    assert_eq!(report.users.created, 50);
    assert_eq!(h.store.counts().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn soft_match_links_existing_people_and_reports_ambiguity() {
    let h = Harness::start(org(40, 4)).await;
    let state = h.state().await;
    let users = state["users"].as_array().unwrap().clone();
    // The OA directory already has: one person with the same mobile as DingTalk user 0, one
    // with user 1's job number, and two people sharing user 2's job number.
    let ctx = WriteCtx::oa("hr", 1).with_enqueue(false);
    h.store
        .create_department(
            &ctx,
            directory_model::Department::new(OaDeptId(1), "HQ", None),
        )
        .await
        .unwrap();
    let mk = |id: &str, n: u32| {
        let mut u = User::new(OaUserId::new(id), id, &[OaDeptId(1)]);
        // A mobile no DingTalk user has (the OA side requires one).
        u.mobile = Some(Mobile::mainland(format!("199000000{n:02}")));
        u
    };
    let mut a = mk("emp-a", 1);
    a.mobile = Some(Mobile::mainland(users[0]["mobile"].as_str().unwrap()));
    let mut b = mk("emp-b", 2);
    b.job_number = users[1]["job_number"].as_str().map(str::to_owned);
    let mut c1 = mk("emp-c1", 3);
    c1.job_number = users[2]["job_number"].as_str().map(str::to_owned);
    let mut c2 = mk("emp-c2", 4);
    c2.job_number = c1.job_number.clone();
    for u in [a, b, c1, c2] {
        h.store.create_user(&ctx, u).await.unwrap();
    }
    let report = run(&h, &ImportOptions::default()).await;
    let matched: Vec<(String, String, MatchedBy)> = report
        .soft_matched
        .iter()
        .map(|m| (m.ding.0.clone(), m.oa.0.clone(), m.by))
        .collect();
    let uid = |i: usize| users[i]["userid"].as_str().unwrap().to_owned();
    assert!(matched.contains(&(uid(0), "emp-a".into(), MatchedBy::Key(MatchKey::Mobile))));
    assert!(matched.contains(&(uid(1), "emp-b".into(), MatchedBy::Key(MatchKey::JobNumber))));
    assert_eq!(report.ambiguous.len(), 1);
    assert_eq!(report.ambiguous[0].ding.0, uid(2));
    // The matched OA users now carry DingTalk's data under their own ids; nobody is duplicated.
    let emp_a = h
        .store
        .get_user(&OaUserId::new("emp-a"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(emp_a.entity.name, users[0]["name"].as_str().unwrap());
    assert!(
        h.store
            .get_user(&OaUserId::new(uid(0)))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.store
            .get_user(&OaUserId::new(uid(2)))
            .await
            .unwrap()
            .is_none(),
        "not guessed"
    );
}

/// A manager linked by a soft match (decided only once everyone is listed) is still the
/// manager of the people listed before the decision, and of their departments: the streaming
/// import's provisional manager links are corrected.
#[tokio::test]
async fn people_keep_a_manager_who_was_soft_matched_after_them() {
    let h = Harness::start(org(60, 4)).await;
    let state = h.state().await;
    let users = state["users"].as_array().unwrap().clone();
    let manager = users
        .iter()
        .filter_map(|u| u["manager_userid"].as_str())
        .next()
        .expect("the generated org has managers")
        .to_owned();
    let mobile = users
        .iter()
        .find(|u| u["userid"] == manager.as_str())
        .and_then(|u| u["mobile"].as_str())
        .unwrap()
        .to_owned();
    let ctx = WriteCtx::oa("hr", 1).with_enqueue(false);
    h.store
        .create_department(
            &ctx,
            directory_model::Department::new(OaDeptId(1), "HQ", None),
        )
        .await
        .unwrap();
    let mut m = User::new(OaUserId::new("emp-m"), "M", &[OaDeptId(1)]);
    m.mobile = Some(Mobile::mainland(mobile));
    h.store.create_user(&ctx, m).await.unwrap();
    let options = ImportOptions {
        batch_size: 5,
        concurrency: 2,
        ..ImportOptions::default()
    };
    let report = run(&h, &options).await;
    assert!(report.complete, "{:?}", report.failures);
    assert!(
        report
            .soft_matched
            .iter()
            .any(|s| s.ding.0 == manager && s.oa.0 == "emp-m")
    );
    let reports: Vec<&str> = users
        .iter()
        .filter(|u| u["manager_userid"] == manager.as_str())
        .filter_map(|u| u["userid"].as_str())
        .collect();
    assert!(!reports.is_empty());
    for r in reports {
        let got = h.store.get_user(&OaUserId::new(r)).await.unwrap().unwrap();
        assert_eq!(
            got.entity.manager,
            Some(OaUserId::new("emp-m")),
            "the manager of {r}"
        );
    }
    assert!(
        h.store
            .get_user(&OaUserId::new(manager.as_str()))
            .await
            .unwrap()
            .is_none(),
        "no provisional person left behind"
    );
    assert_converged(&h).await;
}

/// Cancels the import after its first user batch is written.
struct StopAfterFirstBatch {
    token: CancellationToken,
    seen: AtomicBool,
}

impl ImportProgress for StopAfterFirstBatch {
    fn report(&self, p: &Progress) {
        if p.phase == import::ImportPhase::Users && p.users_written > 0 {
            self.seen.store(true, Ordering::SeqCst);
            self.token.cancel();
        }
    }
}

#[tokio::test]
async fn an_interrupted_import_resumes_where_it_stopped() {
    let h = Harness::start(org(120, 6)).await;
    let options = ImportOptions {
        batch_size: 25,
        concurrency: 4,
        ..ImportOptions::default()
    };
    let stopper = StopAfterFirstBatch {
        token: CancellationToken::new(),
        seen: AtomicBool::new(false),
    };
    let err = import::import(&h.ctx, &options, &stopper, &stopper.token)
        .await
        .unwrap_err();
    assert!(matches!(err, import::ImportError::Cancelled));
    assert!(stopper.seen.load(Ordering::SeqCst));
    let (_, written) = h.store.counts().await.unwrap();
    assert!(
        (25..120).contains(&written),
        "first batch(es) written: {written}"
    );

    let gets_before = h.ctx.client.stats().endpoint("/topapi/v2/user/get").calls;
    let report = run(&h, &options).await;
    assert!(report.resumed_after.is_some());
    let gets = h.ctx.client.stats().endpoint("/topapi/v2/user/get").calls - gets_before;
    assert!(gets < 120, "resumed run read only the rest: {gets}");
    assert!(report.complete);
    assert_converged(&h).await;
    assert!(h.store.checkpoint_get("import").await.unwrap().is_none());
}

#[tokio::test]
async fn a_crawl_with_failing_calls_deletes_nothing() {
    let h = Harness::start_with(org(60, 6), Policy::default(), |c| c.max_retries = 0).await;
    run(&h, &ImportOptions::default()).await;
    // A user leaves, then the next crawl hits faults: nothing may be marked left.
    let leaver = h.state().await["users"][5]["userid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.admin(Method::DELETE, &format!("/users/{leaver}"), json!({}))
        .await;
    h.admin(Method::POST, "/settings", json!({"fault_rate": 0.3}))
        .await;
    let report = run(&h, &ImportOptions::default()).await;
    assert!(!report.complete);
    assert!(report.deletions.skipped_incomplete_crawl);
    let snap = h.store.snapshot().await.unwrap();
    assert!(snap.users.values().all(|u| u.state == UserState::Active));
    assert_eq!(snap.departments.len(), 7);
    // Without faults the departure is mirrored.
    h.admin(Method::POST, "/settings", json!({"fault_rate": 0.0}))
        .await;
    let report = run(&h, &ImportOptions::default()).await;
    assert!(report.complete, "{:?}", report.failures);
    assert_eq!(report.deletions.users_left, vec![OaUserId::new(leaver)]);
    assert_converged(&h).await;
}

#[tokio::test]
async fn a_twenty_percent_deletion_is_held_until_approved() {
    let h = Harness::start(org(50, 5)).await;
    run(&h, &ImportOptions::default()).await;
    let state = h.state().await;
    let leavers: Vec<String> = state["users"].as_array().unwrap()[..10]
        .iter()
        .map(|u| u["userid"].as_str().unwrap().to_owned())
        .collect();
    for u in &leavers {
        h.admin(Method::DELETE, &format!("/users/{u}"), json!({}))
            .await;
    }
    let report = run(&h, &ImportOptions::default()).await;
    assert_eq!(report.deletions.held, 10);
    assert!(report.deletions.users_left.is_empty());
    let snap = h.store.snapshot().await.unwrap();
    assert!(
        snap.users.values().all(|u| u.state == UserState::Active),
        "nothing applied"
    );
    let held = h.store.held_deletions(Some(HoldState::Held)).await.unwrap();
    assert_eq!(held.len(), 10);
    // Importing again does not hold them twice.
    run(&h, &ImportOptions::default()).await;
    assert_eq!(
        h.store
            .held_deletions(Some(HoldState::Held))
            .await
            .unwrap()
            .len(),
        10
    );
    // An operator approves; the deletions are applied.
    for d in held {
        h.store
            .resolve_held_deletion(d.id, true, "admin", 5)
            .await
            .unwrap();
    }
    let applied = import::apply_approved_deletions(&h.ctx).await.unwrap();
    assert_eq!(applied, 10);
    assert_converged(&h).await;
}
