//! The plan page and the console's refusals, against the real service without workers (so
//! OA's changes wait for the plan instead of being pushed at once):
//! - OA changes two people's email; the plan lists both; applying only one of them changes
//!   exactly that one in DingTalk;
//! - a viewer who submits an operator form (built by hand: the page shows them no buttons)
//!   is refused, and nothing changes;
//! - an operator's form without its CSRF token is refused, and nothing changes.

use directory_store::UserQuery;
use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;

use super::{PASSWORD, Service, Setup, browser, click, open, shoot, sign_in, start_driver, text};

/// Builds a form posting `fields` to `/console/act` in the page and submits it, the way a
/// hand-made or cross-site form would arrive.
async fn post_form(client: &fantoccini::Client, fields: &[(&str, String)]) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    client
        .execute(
            "const f = document.createElement('form');
             f.method = 'post'; f.action = '/console/act';
             for (const [k, v] of Object.entries(arguments[0])) {
               const i = document.createElement('input');
               i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f); f.submit();",
            vec![serde_json::Value::Object(fields)],
        )
        .await
        .expect("submit");
    text(client).await
}

/// Opens the plan page once a plan is shown: the page computes one in the background on the
/// first visit and after an apply, reloading itself meanwhile.
async fn open_plan(client: &fantoccini::Client, base: &str) -> String {
    for _ in 0..300 {
        let page = open(client, base, "/console/plan").await;
        if !page.contains("Computing a plan") && !page.contains("No plan has been computed") {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no plan was computed within 30 s");
}

/// The CSRF token the page's sign-out form carries.
async fn csrf_of(client: &fantoccini::Client) -> String {
    let value = client
        .execute(
            "return document.querySelector('input[name=csrf]').value",
            vec![],
        )
        .await
        .expect("csrf");
    value.as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_part_of_a_plan_and_refuse_viewers_and_forged_forms() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let service = Service::start(Setup {
        users: 20,
        depts: 3,
        workers: false,
        callback: false,
    })
    .await;
    let base = service.base.clone();
    let store = service.store.clone();
    let users = store
        .list_users(&UserQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("users");
    let (first, second) = (users.items[0].entity.clone(), users.items[1].entity.clone());
    for (user, email) in [
        (&first, "first.plan@acme.example"),
        (&second, "second.plan@acme.example"),
    ] {
        let (status, body) = service
            .oa(
                Method::PATCH,
                &format!("/api/v1/users/{}", user.id.as_str()),
                json!({ "email": email }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let ding_of = |user: &directory_model::User| {
        let store = store.clone();
        let id = user.id.clone();
        async move { store.ding_id_of(&id).await.expect("map").expect("linked").0 }
    };
    let (first_ding, second_ding) = (ding_of(&first).await, ding_of(&second).await);

    let profile = tempfile::tempdir().expect("profile");
    let client = browser(port, profile.path()).await;

    // A viewer sees the plan but no way to apply it, and a hand-made form is refused.
    sign_in(&client, &base, "vera", PASSWORD).await;
    let plan = open_plan(&client, &base).await;
    assert!(
        plan.contains(first.id.as_str()) && plan.contains(second.id.as_str()),
        "{plan}"
    );
    assert!(plan.contains("an operator must apply the plan"), "{plan}");
    assert!(
        client
            .find(Locator::Css("input[data-plan-entry]"))
            .await
            .is_err(),
        "a viewer gets no selection boxes"
    );
    let csrf = csrf_of(&client).await;
    let refused = post_form(
        &client,
        &[
            ("csrf", csrf),
            ("action", "push_now".into()),
            ("kind", "user".into()),
            ("id", first.id.as_str().into()),
        ],
    )
    .await;
    assert!(refused.contains("you need the operator role"), "{refused}");
    shoot(&client, "viewer-refused").await;
    client.delete_all_cookies().await.expect("sign out");

    // An operator's form without its CSRF token is refused before anything is done.
    sign_in(&client, &base, "olga", PASSWORD).await;
    open_plan(&client, &base).await;
    let forged = post_form(
        &client,
        &[
            ("action", "push_now".into()),
            ("kind", "user".into()),
            ("id", first.id.as_str().into()),
        ],
    )
    .await;
    assert!(
        forged
            .to_lowercase()
            .contains("this form was not issued to your session"),
        "{forged}"
    );
    for ding in [&first_ding, &second_ding] {
        let user = service.sim_user(ding).await.expect("in DingTalk");
        assert_ne!(user["email"], "first.plan@acme.example", "{user}");
    }
    let actions = store
        .operator_actions_of("user", first.id.as_str())
        .await
        .expect("actions");
    assert!(
        actions.is_empty(),
        "refused forms reach no backend: {actions:?}"
    );

    // Apply only the first person's entry.
    let plan = open_plan(&client, &base).await;
    assert!(plan.contains("email"), "the changed field: {plan}");
    shoot(&client, "plan").await;
    let checkbox = client
        .find(Locator::XPath(&format!(
            "//tr[.//span[normalize-space()='{}']]//input[@data-plan-entry]",
            first.id.as_str()
        )))
        .await
        .expect("the first person's entry");
    checkbox.click().await.expect("select");
    let applied = click(&client, "button[name=scope][value=selected]").await;
    assert!(applied.contains("applied 1 change(s)"), "{applied}");
    let first_now = service.sim_user(&first_ding).await.expect("first");
    assert_eq!(first_now["email"], "first.plan@acme.example", "{first_now}");
    let second_now = service.sim_user(&second_ding).await.expect("second");
    assert_ne!(
        second_now["email"], "second.plan@acme.example",
        "not selected: {second_now}"
    );
    let plan = open_plan(&client, &base).await;
    assert!(
        plan.contains(second.id.as_str()),
        "the rest still waits: {plan}"
    );
    assert!(
        !plan.contains(&format!("{} {}", first.name, first.id.as_str())),
        "the applied entry is gone: {plan}"
    );
    let _ = client.close().await;
    service.stop().await;
}
