//! Steering from the console against the real service (no workers: the console's own runs
//! and actions do the work):
//! - both sides change one person's email; "Re-fetch from DingTalk now" merges and records
//!   the conflict (OA wins by default); "Apply other side" gives OA DingTalk's value and pushes
//!   it, so both sides end with DingTalk's value;
//! - an import started from the runs page shows its live progress (the simulator answers
//!   slowly) and ends `ok`; a reconcile started there ends `ok` with its counts.

use directory_model::OaUserId;
use directory_store::UserQuery;
use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;

use super::{
    PASSWORD, Service, Setup, browser, click, eventually, open, shoot, sign_in, start_driver, text,
};

/// Clicks the submit button of the form whose `action` field is `action`, accepting the
/// confirmation it asks for.
async fn confirm_action(client: &fantoccini::Client, action: &str) -> String {
    client
        .find(Locator::Css(&format!(
            "form input[value={action}] ~ button"
        )))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    client.accept_alert().await.expect("confirm");
    text(client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_started_from_the_console_and_a_conflict_turned_around() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let service = Service::start(Setup {
        users: 40,
        depts: 4,
        workers: false,
        callback: false,
    })
    .await;
    let base = service.base.clone();
    let store = service.store.clone();
    let users = store
        .list_users(&UserQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("users");
    let user = users.items[0].entity.clone();
    let id = user.id.as_str().to_owned();
    let ding = store
        .ding_id_of(&user.id)
        .await
        .expect("map")
        .expect("linked")
        .0;
    let profile = tempfile::tempdir().expect("profile");
    let client = browser(port, profile.path()).await;
    sign_in(&client, &base, "olga", PASSWORD).await;

    // Both sides change the same field before either reaches the other.
    let (oa_email, ding_email) = ("oa.side@acme.example", "ding.side@acme.example");
    let (status, body) = service
        .oa(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            json!({ "email": oa_email }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    service
        .sim_call(
            Method::PATCH,
            &format!("/_sim/users/{ding}"),
            json!({ "email": ding_email }),
        )
        .await;
    open(&client, &base, &format!("/console/users/{id}")).await;
    let merged = click(&client, "form input[value=refetch] ~ button").await;
    assert!(merged.contains("re-fetched from DingTalk"), "{merged}");
    let attention = open(&client, &base, "/console/attention").await;
    assert!(
        attention.contains(ding_email) && attention.contains(oa_email),
        "{attention}"
    );
    shoot(&client, "attention-conflict").await;
    let turned = click(&client, "form input[value=apply_other_side] ~ button").await;
    assert!(
        turned.contains("now has the other side's value"),
        "{turned}"
    );
    let oa_now = store
        .get_user(&OaUserId::new(id.as_str()))
        .await
        .expect("get")
        .expect("user");
    assert_eq!(oa_now.entity.email.as_deref(), Some(ding_email));
    let ding_now = service.sim_user(&ding).await.expect("in DingTalk");
    assert_eq!(ding_now["email"], ding_email, "{ding_now}");
    let attention = open(&client, &base, "/console/attention").await;
    assert!(
        !attention.contains(oa_email),
        "the conflict is decided: {attention}"
    );

    // An import from the runs page, slowed down so its progress can be watched.
    service
        .sim_call(
            Method::POST,
            "/_sim/settings",
            json!({ "latency_ms": 1500 }),
        )
        .await;
    open(&client, &base, "/console/runs").await;
    let started = confirm_action(&client, "start_import").await;
    assert!(started.contains("import started"), "{started}");
    let mut seen = String::new();
    let mut last = String::new();
    for _ in 0..100 {
        let page = open(&client, &base, "/console/runs").await;
        last.clone_from(&page);
        if ["reading DingTalk", "linking departments", "writing users"]
            .iter()
            .any(|stage| page.contains(stage))
        {
            shoot(&client, "runs-progress").await;
            seen = page;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        !seen.is_empty(),
        "the runs page never showed the import's progress: {last} {:?}",
        store.runs_recent(1).await
    );
    eventually("the import finishes", || async {
        let runs = store.runs_recent(1).await.expect("runs");
        runs.first().is_some_and(|r| r.outcome.is_some())
    })
    .await;
    let runs = store.runs_recent(1).await.expect("runs");
    assert_eq!(runs[0].outcome.as_deref(), Some("ok"), "{:?}", runs[0]);
    service
        .sim_call(Method::POST, "/_sim/settings", json!({ "latency_ms": 0 }))
        .await;

    // A reconcile from the runs page.
    open(&client, &base, "/console/runs").await;
    let started = confirm_action(&client, "start_reconcile").await;
    assert!(started.contains("reconcile started"), "{started}");
    eventually("the reconcile finishes", || async {
        let runs = store.runs_recent(1).await.expect("runs");
        runs.first()
            .is_some_and(|r| r.kind == "reconcile" && r.outcome.is_some())
    })
    .await;
    let run = store.runs_recent(1).await.expect("runs").remove(0);
    assert_eq!(run.outcome.as_deref(), Some("ok"), "{run:?}");
    let page = open(&client, &base, &format!("/console/runs/{}", run.id)).await;
    assert!(page.contains("the plan has"), "its log: {page}");
    assert!(page.contains("DingTalk calls"), "{page}");
    shoot(&client, "run").await;
    let _ = client.close().await;
    service.stop().await;
}
