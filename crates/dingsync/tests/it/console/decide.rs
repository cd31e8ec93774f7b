//! Decisions on the attention page against the real service with its workers:
//! - users leave DingTalk, an import started from the runs page holds their deletions
//!   (over the threshold), and approving one applies exactly that one: the person is marked
//!   left in OA, the others stay, and DingTalk still lacks them (nothing re-created);
//! - an OA hire whose mobile another DingTalk account holds is a dead letter (errcode 60104
//!   on the page); a retry before the fix fails again and says why; the DingTalk
//!   administrator removes the stray account holding the number, the operator retries, and the
//!   person is in DingTalk.

use directory_model::{OaUserId, UserState};
use directory_store::{HoldState, QueueState};
use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;

use super::{
    PASSWORD, Service, Setup, browser, click, eventually, open, shoot, sign_in, start_driver, text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_a_held_deletion_and_retry_a_dead_letter() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let service = Service::start(Setup {
        users: 50,
        depts: 5,
        workers: true,
        callback: false,
    })
    .await;
    let base = service.base.clone();
    let store = service.store.clone();
    let profile = tempfile::tempdir().expect("profile");
    let client = browser(port, profile.path()).await;
    sign_in(&client, &base, "olga", PASSWORD).await;

    // Ten people leave DingTalk (20%, over the 10% threshold).
    let state = service.sim_state().await;
    let leavers: Vec<String> = state["users"].as_array().expect("users")[..10]
        .iter()
        .map(|u| u["userid"].as_str().expect("userid").to_owned())
        .collect();
    for userid in &leavers {
        service
            .sim_call(Method::DELETE, &format!("/_sim/users/{userid}"), json!({}))
            .await;
    }
    // An import from the runs page (its button asks for confirmation first).
    open(&client, &base, "/console/runs").await;
    client
        .find(Locator::Css("form[data-confirm] button[type=submit]"))
        .await
        .expect("start button")
        .click()
        .await
        .expect("click");
    client.accept_alert().await.expect("confirm the import");
    let started = text(&client).await;
    assert!(started.contains("import started"), "{started}");
    eventually("the console's import finishes", || async {
        let runs = store.runs_recent(1).await.expect("runs");
        runs.first()
            .is_some_and(|r| r.kind == "import" && r.outcome.is_some())
    })
    .await;
    let held = store
        .held_deletions(Some(HoldState::Held))
        .await
        .expect("holds");
    assert_eq!(held.len(), 10, "{held:?}");

    let first = store
        .get_user(&OaUserId::new(held[0].oa_id.as_str()))
        .await
        .expect("user")
        .expect("a held user is still in OA")
        .entity;
    let attention = open(&client, &base, "/console/attention").await;
    assert!(
        attention.contains(&first.name) && attention.contains(&held[0].oa_id),
        "held deletions by name and id: {attention}"
    );
    assert!(
        attention.contains("Held deletions (1 hold)") && attention.contains("Approve all 10"),
        "the import's ten deletions are one hold: {attention}"
    );
    shoot(&client, "attention-holds").await;
    let notice = click(
        &client,
        &format!(
            "button[aria-label='Approve deleting {} ({})']",
            first.name, held[0].oa_id
        ),
    )
    .await;
    assert!(
        notice.contains("approved; 1 deletion(s) applied"),
        "{notice}"
    );
    let gone = store
        .get_user(&OaUserId::new(held[0].oa_id.as_str()))
        .await
        .expect("user")
        .expect("kept for history");
    assert_eq!(gone.entity.state, UserState::Left);
    let still = store
        .held_deletions(Some(HoldState::Held))
        .await
        .expect("holds");
    assert_eq!(still.len(), 9, "only the approved one is decided");
    for h in &still {
        let user = store
            .get_user(&OaUserId::new(h.oa_id.as_str()))
            .await
            .expect("user");
        assert_eq!(
            user.expect("user").entity.state,
            UserState::Active,
            "{} waits",
            h.oa_id
        );
    }
    // The pusher runs: DingTalk and OA agree the person is gone (nothing re-created).
    testkit::drain::wait_drained(&store, std::time::Duration::from_secs(30))
        .await
        .expect("queues drain");
    let ding = service.sim_state().await;
    let departed = ding["departed_userids"].as_array().expect("departed");
    assert!(
        departed.iter().any(|d| d == held[0].oa_id.as_str()),
        "{departed:?}"
    );
    assert!(service.sim_user(&held[0].oa_id).await.is_none());

    // The rest of the hold is rejected at once: nothing more is deleted.
    open(&client, &base, "/console/attention").await;
    let notice = click(
        &client,
        "form:has(input[value=reject_deletion]):not(:has(input[name=entry])) button",
    )
    .await;
    assert!(notice.contains("9 held deletion(s) rejected"), "{notice}");
    assert!(
        store
            .held_deletions(Some(HoldState::Held))
            .await
            .expect("holds")
            .is_empty()
    );
    for h in &still {
        let user = store
            .get_user(&OaUserId::new(h.oa_id.as_str()))
            .await
            .expect("user")
            .expect("kept");
        assert_eq!(user.entity.state, UserState::Active, "{} stays", h.oa_id);
    }

    // A dead letter: OA hires someone whose mobile a DingTalk account already has.
    let mobile = "13912345678";
    service
        .sim_call(
            Method::POST,
            "/_sim/users",
            json!({"userid": "holder", "name": "号码占用", "mobile": mobile, "dept_id_list": "1"}),
        )
        .await;
    let dept = *store
        .snapshot()
        .await
        .expect("snapshot")
        .departments
        .keys()
        .next()
        .expect("a department");
    let (status, body) = service
        .oa(
            Method::POST,
            "/api/v1/users",
            json!({"id": "newcomer", "name": "新同事", "mobile": mobile,
                   "departments": [{"dept": dept.0}], "state": "active"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    eventually("the hire is a dead letter", || async {
        store.outbox_depth().await.expect("depth").dead == 1
    })
    .await;
    let attention = open(&client, &base, "/console/attention").await;
    assert!(
        attention.contains("60104"),
        "DingTalk's errcode on the page: {attention}"
    );
    shoot(&client, "attention-dead-letter").await;
    // Retrying before the cause is fixed fails again, and says so.
    let again = click(&client, "form input[value=retry_dead_letter] ~ button").await;
    assert!(again.contains("DingTalk refused it again"), "{again}");
    assert!(again.contains("60104"), "with DingTalk's answer: {again}");
    eventually("the early retry is a dead letter again", || async {
        store.outbox_depth().await.expect("depth").dead == 1
    })
    .await;
    assert!(service.sim_user("newcomer").await.is_none());
    // The DingTalk administrator removes the stray account that holds the number (DingTalk
    // lets nobody change someone else's mobile); now the retry succeeds.
    service
        .sim_call(Method::DELETE, "/_sim/users/holder", json!({}))
        .await;
    open(&client, &base, "/console/attention").await;
    let retried = click(&client, "form input[value=retry_dead_letter] ~ button").await;
    assert!(retried.contains("queued again"), "{retried}");
    eventually("the newcomer reaches DingTalk", || async {
        service
            .sim_user("newcomer")
            .await
            .is_some_and(|u| u["mobile"].as_str().is_some_and(|m| m.ends_with(mobile)))
    })
    .await;
    let dead = store
        .outbox_list(Some(QueueState::Dead), None, 10)
        .await
        .expect("dead");
    assert!(dead.is_empty(), "{dead:?}");
    let attention = open(&client, &base, "/console/attention").await;
    assert!(!attention.contains("60104"), "{attention}");
    let _ = client.close().await;
    service.stop().await;
}
