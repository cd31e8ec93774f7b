//! Writes DingTalk will always refuse are refused at the OA API's door (issue 18 B3/B4): a
//! userid DingTalk cannot hold (`../x`, a quote), a control character in a name, and every
//! change to DingTalk's built-in roles. Each is a 422 naming the field and the rule, and leaves
//! the directory, the change feed and the outbox exactly as they were.

use crate::common;

use common::{App, Reply};
use directory_model::{OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup};
use directory_store::{Expect, WriteCtx};
use reqwest::StatusCode;
use serde_json::json;

fn refused(r: &Reply, field: &str, rule: &str, what: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {:#}",
        r.body
    );
    assert_eq!(r.code(), "validation_failed", "{what}: {:#}", r.body);
    assert!(
        r.fields().contains(&(field.to_owned(), rule.to_owned())),
        "{what}: expected {field}/{rule} in {:#}",
        r.body
    );
    let message = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        !message.chars().any(|c| c.is_control()),
        "{what}: the message echoes no control character: {message:?}"
    );
}

#[tokio::test]
async fn user_ids_and_names_dingtalk_refuses_are_422_and_write_nothing() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    let user = |id: &str, name: &str| json!({"id": id, "name": name, "mobile": "13900000088", "departments": [{"dept": 3}]});
    for (body, field, what) in [
        (user("../x", "Eve"), "id", "path-like id"),
        (user("e\"ve", "Eve"), "id", "quote in id"),
        (user("e've", "Eve"), "id", "apostrophe in id"),
        (user("eve", "E\u{1b}[31mve"), "name", "ESC in name"),
        (user("e\u{7}ve", "Eve"), "id", "BEL in id"),
    ] {
        let r = app.post("/api/v1/users", body).await;
        refused(&r, field, "forbidden_character", what);
    }
    let r = app
        .post(
            "/api/v1/departments",
            json!({"name": "Ops\u{1b}]0;pwned\u{7}", "parent": 1}),
        )
        .await;
    refused(
        &r,
        "name",
        "forbidden_character",
        "ESC in a department name",
    );
    let r = app
        .patch("/api/v1/users/alice", json!({"name": "A\u{0}lice"}))
        .await;
    refused(&r, "name", "forbidden_character", "NUL in a renamed user");
    assert_eq!(app.fingerprint().await, before, "nothing written");
    app.stop().await;
}

/// The built-in group 默认 and its roles, as an import brings them in (DingTalk's state is
/// taken as it is), plus an ordinary group with one role; alice holds 负责人.
async fn import_builtin_roles(app: &App) {
    let ctx = WriteCtx::import("importer", 1_700_000_000_000);
    for (id, name) in [(1, "默认"), (2, "职务")] {
        let group = RoleGroup {
            id: OaRoleGroupId(id),
            name: name.into(),
        };
        app.store
            .save_role_group(&ctx, group, Expect::Any)
            .await
            .expect("import a role group");
    }
    for (id, group, name) in [(10, 1, "负责人"), (11, 1, "主管"), (20, 2, "出纳")] {
        let role = Role {
            id: OaRoleId(id),
            group: OaRoleGroupId(group),
            name: name.into(),
        };
        app.store
            .save_role(&ctx, role, Expect::Any)
            .await
            .expect("import a role");
    }
    app.store
        .assign_role(&ctx, &OaUserId::new("alice"), OaRoleId(10))
        .await
        .expect("import an assignment");
}

#[tokio::test]
async fn dingtalks_built_in_roles_are_refused_as_built_in_and_write_nothing() {
    let app = App::sqlite().await;
    app.seed().await;
    import_builtin_roles(&app).await;
    let before = app.fingerprint().await;

    let r = app
        .post(
            "/api/v1/role-assignments",
            json!({"user": "bob", "role": 10}),
        )
        .await;
    refused(&r, "role", "built_in", "assigning 负责人");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("负责人"),
        "{:#}",
        r.body
    );
    let r = app.delete("/api/v1/role-assignments/10/alice").await;
    refused(&r, "role", "built_in", "taking 负责人 away");
    let r = app.patch("/api/v1/roles/11", json!({"name": "经理"})).await;
    refused(&r, "name", "built_in", "renaming 主管");
    let r = app.patch("/api/v1/roles/20", json!({"group": 1})).await;
    refused(&r, "group", "built_in", "moving a role into 默认");
    let r = app.delete("/api/v1/roles/11").await;
    refused(&r, "id", "built_in", "deleting 主管");
    let r = app
        .post("/api/v1/roles", json!({"group": 1, "name": "新角色"}))
        .await;
    refused(&r, "group", "built_in", "a new role in 默认");
    let r = app
        .patch("/api/v1/role-groups/1", json!({"name": "默认组"}))
        .await;
    refused(&r, "name", "built_in", "renaming 默认");
    let r = app.delete("/api/v1/role-groups/1").await;
    refused(&r, "id", "built_in", "deleting 默认");
    let r = app
        .post("/api/v1/role-groups", json!({"name": "默认"}))
        .await;
    refused(&r, "name", "built_in", "a second 默认");
    assert_eq!(app.fingerprint().await, before, "nothing written");

    // Ordinary roles still work.
    let r = app
        .post(
            "/api/v1/role-assignments",
            json!({"user": "bob", "role": 20}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    app.stop().await;
}

#[tokio::test]
async fn a_path_parameter_that_does_not_parse_is_400_naming_it() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    for (method, path, param) in [
        ("GET", "/api/v1/departments/abc", "id"),
        ("PATCH", "/api/v1/departments/1.5", "id"),
        ("DELETE", "/api/v1/departments/abc", "id"),
        ("GET", "/api/v1/role-groups/x", "id"),
        ("GET", "/api/v1/roles/-", "id"),
        ("DELETE", "/api/v1/role-assignments/abc/alice", "role"),
    ] {
        let r = match method {
            "GET" => app.get(path).await,
            "PATCH" => app.patch(path, json!({"name": "X"})).await,
            _ => app.delete(path).await,
        };
        let what = format!("{method} {path}");
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:#}", r.body);
        assert_eq!(r.code(), "bad_request", "{what}");
        assert_eq!(
            r.fields(),
            vec![(param.to_owned(), "invalid_type".to_owned())],
            "{what}"
        );
        let message = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("integer"), "{what}: {message}");
    }
    // A well-formed id that names nothing is still a 404.
    assert_eq!(
        app.get("/api/v1/departments/999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.fingerprint().await, before, "nothing written");
    app.stop().await;
}
