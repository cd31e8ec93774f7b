//! Signing in, finding a user, and their timeline: a DingTalk administrator renames them (the
//! event arrives over the callback and the apply worker merges it) and OA changes their email
//! (the pusher takes it to DingTalk); the timeline shows both, with their origins, and the two
//! sides agree.

use directory_store::{EntityKind, Origin, RoleQuery, UserQuery};
use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;

use super::{PASSWORD, Service, Setup, browser, eventually, open, shoot, sign_in, start_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_a_user_and_their_timeline_shows_both_sides() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let service = Service::start(Setup {
        users: 20,
        depts: 3,
        workers: true,
        callback: true,
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
        .expect("id map")
        .expect("linked by the import");

    // DingTalk's side: an administrator renames them there.
    let renamed = format!("{}二", user.name);
    service
        .sim_call(
            Method::PATCH,
            &format!("/_sim/users/{}", ding.0),
            json!({ "name": renamed }),
        )
        .await;
    eventually("the rename event is applied to OA", || async {
        let audit = store.audit_of(EntityKind::User, &id).await.expect("audit");
        audit.iter().any(|a| a.origin == Origin::DingTalk)
    })
    .await;
    // OA's side: a new email through the OA API, which the pusher takes to DingTalk.
    let email = "console.timeline@acme.example";
    let (status, body) = service
        .oa(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            json!({ "email": email }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the pusher takes the email to DingTalk", || async {
        service
            .sim_user(&ding.0)
            .await
            .is_some_and(|u| u["email"] == email)
    })
    .await;

    let profile = tempfile::tempdir().expect("profile");
    let client = browser(port, profile.path()).await;
    let refused = sign_in(&client, &base, "olga", "wrong password!").await;
    assert!(refused.to_lowercase().contains("sign in"), "{refused}");
    assert!(
        !refused.contains("Overview"),
        "a wrong password must not sign in: {refused}"
    );
    let overview = sign_in(&client, &base, "olga", PASSWORD).await;
    assert!(overview.contains("olga"), "{overview}");
    assert!(
        overview.contains("outbox"),
        "the overview shows the backlogs: {overview}"
    );
    shoot(&client, "overview").await;

    let q: String = renamed.chars().take(3).collect();
    let q_url: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let found = open(&client, &base, &format!("/console/users?q={q_url}")).await;
    assert!(
        found.contains(&renamed),
        "search {q:?} finds {renamed}: {found}"
    );
    shoot(&client, "users").await;

    // Search by email finds them too.
    let by_email = open(&client, &base, &format!("/console/users?q={email}")).await;
    assert!(by_email.contains(&renamed), "search by {email}: {by_email}");

    let detail = open(&client, &base, &format!("/console/users/{id}")).await;
    assert!(
        detail.contains("from dingtalk"),
        "the DingTalk rename: {detail}"
    );
    assert!(detail.contains("from oa"), "the OA write: {detail}");
    assert!(
        detail.contains("from pusher"),
        "the push to DingTalk: {detail}"
    );
    assert!(
        detail.contains(&format!("name → {renamed}")),
        "what DingTalk changed: {detail}"
    );
    assert!(
        detail.contains(&format!("email → {email}")),
        "what OA changed: {detail}"
    );
    // The rename is older than the email: newest first puts the OA write above it.
    let oa_at = detail.find(&format!("email → {email}")).expect("oa entry");
    let ding_at = detail
        .find(&format!("name → {renamed}"))
        .expect("dingtalk entry");
    assert!(oa_at < ding_at, "newest first: {detail}");
    assert!(
        !detail.contains("differs"),
        "both sides agree after the sync: {detail}"
    );
    shoot(&client, "timeline").await;
    client
        .execute(
            "document.getElementById('timeline').scrollIntoView()",
            vec![],
        )
        .await
        .expect("scroll to the timeline");
    shoot(&client, "timeline-entries").await;

    for page in [
        "departments",
        "attention",
        "plan",
        "runs",
        "audit",
        "settings",
    ] {
        let body = open(&client, &base, &format!("/console/{page}")).await;
        assert!(!body.contains("[object Object]"), "{page}: {body}");
        shoot(&client, page).await;
    }

    // The tree opens a level at a time: a top-level department's row links to its
    // sub-departments, and its members to the users page filtered by it.
    let (top, _) = store.department_level(None, 0, 100).await.expect("top");
    let parent = top.first().expect("a top-level department");
    let (subs, _) = store
        .department_level(Some(parent.id), 0, 100)
        .await
        .expect("level");
    let level = open(
        &client,
        &base,
        &format!("/console/departments?under={}", parent.id),
    )
    .await;
    assert!(level.contains(&parent.name), "the path names it: {level}");
    for sub in &subs {
        assert!(level.contains(&sub.name), "{}: {level}", sub.name);
    }
    shoot(&client, "departments-level").await;
    let members = store
        .console_user_count(Some(parent.id))
        .await
        .expect("count");
    let filtered = open(
        &client,
        &base,
        &format!("/console/users?department={}", parent.id),
    )
    .await;
    assert!(
        filtered.contains(&format!("Members of {}", parent.name))
            && filtered.contains(&format!("{members} user")),
        "{filtered}"
    );

    // Roles: the directory's Roles tab lists the imported roles, and a role's page shows both
    // sides, its id mapping and its timeline, where the import's create reads "import".
    let role = store
        .list_roles(&RoleQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("roles")
        .items
        .into_iter()
        .next()
        .expect("the simulated organization has roles")
        .entity;
    let roles = open(&client, &base, "/console/roles").await;
    assert!(roles.contains(&role.name), "{roles}");
    shoot(&client, "roles").await;
    client
        .find(Locator::Css(&format!(
            "a[href='/console/roles/{}']",
            role.id
        )))
        .await
        .expect("a link to the role's page")
        .click()
        .await
        .expect("open the role");
    let page = super::text(&client).await;
    assert!(page.contains("Id mapping"), "{page}");
    assert!(page.contains("OA and DingTalk side by side"), "{page}");
    let ding_role = store
        .ding_id_of(&role.id)
        .await
        .expect("id map")
        .expect("linked by the import");
    assert!(page.contains(&ding_role.to_string()), "{page}");
    assert!(
        page.contains("import\nfrom import") || page.contains("import from import"),
        "{page}"
    );
    assert!(
        !page.contains("plan entry"),
        "the import's create is no plan entry: {page}"
    );
    shoot(&client, "role").await;

    let _ = client.close().await;
    service.stop().await;
}
