//! Every endpoint through the client against the simulator over real HTTP: the happy path, and
//! each documented rule surfacing as a `ClientError::Api` with DingTalk's errcode — and not
//! retried, since no retry can fix it.

use crate::common;

use std::sync::atomic::Ordering;

use common::{
    Sim,
    receiver::{self, Receiver},
};
use dingtalk_client::{ClientError, endpoints::paths};
use dingtalk_proto::{
    DingDeptId, DingRoleId, DingUserId,
    callback::RegisterCallbackRequest,
    dept::{DeptCreateRequest, DeptUpdateRequest},
    user::{UserCreateRequest, UserUpdateRequest},
};
use dingtalk_sim::SimConfig;

fn code(err: &ClientError) -> i64 {
    err.errcode()
        .map(|c| c.0)
        .unwrap_or_else(|| panic!("not an API error: {err:?}"))
}

async fn sim() -> Sim {
    Sim::start(SimConfig {
        qps: 1000,
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn departments_crud_and_rules() {
    let sim = sim().await;
    let client = sim.client();

    let mut create = DeptCreateRequest::new("研发部", DingDeptId::ROOT);
    create.source_identifier = Some("oa-dept-1".into());
    create.order = Some(3);
    let rd = client.dept_create(&create).await.unwrap();
    let qa = client
        .dept_create(&DeptCreateRequest::new("测试组", rd))
        .await
        .unwrap();
    assert!(rd.0 > 1 && qa.0 > rd.0, "server-assigned ids: {rd} {qa}");

    let children = client.dept_list_sub(DingDeptId::ROOT).await.unwrap();
    assert!(
        children.iter().any(|d| d.dept_id == rd
            && d.name == "研发部"
            && d.parent_id == Some(DingDeptId::ROOT))
    );
    assert_eq!(client.dept_list_sub_ids(rd).await.unwrap(), vec![qa]);
    let detail = client.dept_get(rd).await.unwrap();
    assert_eq!(detail.name, "研发部");
    assert_eq!(detail.source_identifier.as_deref(), Some("oa-dept-1"));
    assert_eq!(
        client.dept_list_parents(qa).await.unwrap(),
        vec![qa, rd, DingDeptId::ROOT]
    );

    let mut rename = DeptUpdateRequest::new(qa);
    rename.name = Some("质量组".into());
    client.dept_update(&rename).await.unwrap();
    assert_eq!(client.dept_get(qa).await.unwrap().name, "质量组");

    // The rules, each with its documented code.
    let dup = client
        .dept_create(&DeptCreateRequest::new("研发部", DingDeptId::ROOT))
        .await
        .unwrap_err();
    assert_eq!(code(&dup), 60008);
    assert!(dup.is_validation() && !dup.is_retryable());
    let bad_name = client
        .dept_create(&DeptCreateRequest::new("a-b", DingDeptId::ROOT))
        .await
        .unwrap_err();
    assert!(matches!(code(&bad_name), 60001 | 60009), "{bad_name}");
    let no_parent = client
        .dept_create(&DeptCreateRequest::new("x", DingDeptId(999_999_999)))
        .await
        .unwrap_err();
    assert_eq!(code(&no_parent), 60004);
    let mut root = DeptUpdateRequest::new(DingDeptId::ROOT);
    root.name = Some("root".into());
    assert_eq!(code(&client.dept_update(&root).await.unwrap_err()), 60018);
    let mut cycle = DeptUpdateRequest::new(rd);
    cycle.parent_id = Some(qa);
    assert_eq!(code(&client.dept_update(&cycle).await.unwrap_err()), 60010);
    assert_eq!(
        code(&client.dept_delete(DingDeptId::ROOT).await.unwrap_err()),
        60007
    );
    assert_eq!(code(&client.dept_delete(rd).await.unwrap_err()), 60006);
    assert_eq!(
        code(&client.dept_get(DingDeptId(999_999_999)).await.unwrap_err()),
        60003
    );

    // A department with a member can't be deleted; an empty leaf can.
    let user = client
        .user_create(&UserCreateRequest::new("张三", "13800000001", [qa]))
        .await
        .unwrap();
    assert_eq!(code(&client.dept_delete(qa).await.unwrap_err()), 60005);
    client.user_delete(&user.userid).await.unwrap();
    client.dept_delete(qa).await.unwrap();
    assert_eq!(code(&client.dept_get(qa).await.unwrap_err()), 60003);

    // Validation errors were not retried.
    let stats = client.stats();
    assert_eq!(stats.endpoint(paths::DEPT_CREATE).retries, 0);
    assert_eq!(stats.endpoint(paths::DEPT_UPDATE).retries, 0);
    assert!(
        stats
            .endpoint(paths::DEPT_CREATE)
            .last_error
            .unwrap()
            .contains("60004")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn users_crud_paging_and_rules() {
    let sim = sim().await;
    let client = sim.client();
    let dept = client
        .dept_create(&DeptCreateRequest::new("销售部", DingDeptId::ROOT))
        .await
        .unwrap();

    let mut create = UserCreateRequest::new("李四", "13900000000", [dept, DingDeptId::ROOT]);
    create.userid = Some(DingUserId::new("lisi"));
    create.title = Some("经理".into());
    create.email = Some("lisi@example.com".into());
    create.job_number = Some("A001".into());
    create.hired_date = Some(1_597_573_616_828);
    create.extension = Some(r#"{"爱好":"旅游"}"#.into());
    let created = client.user_create(&create).await.unwrap();
    assert_eq!(created.userid.as_str(), "lisi");
    assert!(created.union_id.is_some(), "user/create answers unionId");

    let got = client.user_get(&created.userid).await.unwrap();
    assert_eq!(got.name, "李四");
    assert_eq!(got.title.as_deref(), Some("经理"));
    assert_eq!(got.hired_date, Some(1_597_573_616_828));
    let mut depts = got.dept_id_list.clone().unwrap();
    depts.sort();
    assert_eq!(depts, vec![DingDeptId::ROOT, dept]);
    assert_eq!(
        client.user_get_by_mobile("13900000000").await.unwrap(),
        created.userid
    );
    assert_eq!(
        client
            .dept_list_parents_by_user(&created.userid)
            .await
            .unwrap()
            .len(),
        2,
        "one parent chain per department"
    );

    let mut update = UserUpdateRequest::new(created.userid.clone());
    update.title = Some("总监".into());
    client.user_update(&update).await.unwrap();
    assert_eq!(
        client
            .user_get(&created.userid)
            .await
            .unwrap()
            .title
            .as_deref(),
        Some("总监")
    );

    // 230 members: three pages of at most 100, every one seen once.
    for i in 0..230 {
        let req = UserCreateRequest::new(format!("员工{i}"), format!("1370000{i:04}"), [dept]);
        client.user_create(&req).await.unwrap();
    }
    let before = client.stats().endpoint(paths::USER_LIST).calls;
    let members = client.user_list_all(dept).await.unwrap();
    assert_eq!(members.len(), 231);
    let unique: std::collections::BTreeSet<_> = members.iter().map(|u| u.userid.clone()).collect();
    assert_eq!(unique.len(), 231);
    assert_eq!(
        client.stats().endpoint(paths::USER_LIST).calls - before,
        3,
        "pages of 100"
    );
    assert_eq!(client.user_list_ids(dept).await.unwrap().len(), 231);
    assert_eq!(client.user_count(false).await.unwrap(), 231);

    // The rules.
    let dup_mobile = UserCreateRequest::new("重号", "13900000000", [dept]);
    assert_eq!(
        code(&client.user_create(&dup_mobile).await.unwrap_err()),
        60104
    );
    let mut dup_id = UserCreateRequest::new("重名", "13900000009", [dept]);
    dup_id.userid = Some(DingUserId::new("lisi"));
    assert_eq!(code(&client.user_create(&dup_id).await.unwrap_err()), 60102);
    let bad_mobile = UserCreateRequest::new("坏号", "12", [dept]);
    assert_eq!(
        code(&client.user_create(&bad_mobile).await.unwrap_err()),
        60103
    );
    let mut dup_email = UserCreateRequest::new("重邮", "13900000010", [dept]);
    dup_email.email = Some("lisi@example.com".into());
    assert_eq!(
        code(&client.user_create(&dup_email).await.unwrap_err()),
        60106
    );
    let too_many = UserCreateRequest::new(
        "多部门",
        "13900000011",
        (0..101).map(|i| DingDeptId(1000 + i)),
    );
    assert_eq!(
        code(&client.user_create(&too_many).await.unwrap_err()),
        60110
    );
    let nobody = DingUserId::new("nobody");
    let err = client.user_get(&nobody).await.unwrap_err();
    assert_eq!(code(&err), 60121);
    assert!(err.errcode().unwrap().is_not_found(None));
    assert_eq!(code(&client.user_delete(&nobody).await.unwrap_err()), 60121);
    assert_eq!(
        code(&client.user_get_by_mobile("13911111111").await.unwrap_err()),
        60121
    );

    client.user_delete(&created.userid).await.unwrap();
    assert_eq!(
        code(&client.user_get(&created.userid).await.unwrap_err()),
        60121
    );
    assert_eq!(client.stats().endpoint(paths::USER_CREATE).retries, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn roles_groups_assignment_and_rules() {
    let sim = sim().await;
    let client = sim.client();
    let dept = client
        .dept_create(&DeptCreateRequest::new("职能部", DingDeptId::ROOT))
        .await
        .unwrap();
    let mut users = Vec::new();
    for i in 0..45 {
        let created = client
            .user_create(&UserCreateRequest::new(
                format!("成员{i}"),
                format!("1360000{i:04}"),
                [dept],
            ))
            .await
            .unwrap();
        users.push(created.userid);
    }

    let group = client.role_group_add("职务").await.unwrap();
    let finance = client.role_add(group, "财务").await.unwrap();
    let legal = client.role_add(group, "法务").await.unwrap();
    let detail = client.role_group_get(group).await.unwrap();
    assert_eq!(detail.group_name, "职务");
    assert_eq!(detail.roles.len(), 2);
    let role = client.role_get(finance).await.unwrap();
    assert_eq!((role.name.as_str(), role.group_id), ("财务", group));

    client.role_update(legal, "法律顾问").await.unwrap();
    assert_eq!(client.role_get(legal).await.unwrap().name, "法律顾问");

    let groups = client.role_list_all().await.unwrap();
    assert!(
        groups.iter().any(|g| g.name == "默认"),
        "the built-in group is listed"
    );
    let ours = groups.iter().find(|g| g.group_id == group).unwrap();
    let mut names: Vec<_> = ours.roles.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["法律顾问", "财务"]);

    // 45 users need three addrolesforemps calls of at most 20 users.
    let before = client.stats().endpoint(paths::ROLE_ADD_FOR_EMPS).calls;
    client
        .roles_add_for_users(&[finance, legal], &users)
        .await
        .unwrap();
    assert_eq!(
        client.stats().endpoint(paths::ROLE_ADD_FOR_EMPS).calls - before,
        3
    );
    let members = client.role_members_all(finance).await.unwrap();
    assert_eq!(members.len(), 45);
    let user = client.user_get(&users[0]).await.unwrap();
    let held: Vec<_> = user
        .role_list
        .unwrap_or_default()
        .iter()
        .map(|r| r.id)
        .collect();
    assert!(held.contains(&finance) && held.contains(&legal), "{held:?}");

    // A role with members can't be deleted; after removing them it can.
    assert!(client.role_delete(legal).await.unwrap_err().is_validation());
    client
        .roles_remove_for_users(&[legal], &users)
        .await
        .unwrap();
    assert!(client.role_members_all(legal).await.unwrap().is_empty());
    client.role_delete(legal).await.unwrap();
    assert_eq!(code(&client.role_get(legal).await.unwrap_err()), 33011);

    // The rules.
    assert_eq!(
        code(&client.role_add(group, "财务").await.unwrap_err()),
        34021
    );
    assert_eq!(
        code(
            &client
                .role_add(dingtalk_proto::DingRoleGroupId(42), "x")
                .await
                .unwrap_err()
        ),
        34020
    );
    assert_eq!(
        code(&client.role_update(DingRoleId(42), "x").await.unwrap_err()),
        33011
    );
    assert_eq!(
        code(&client.role_delete(DingRoleId(42)).await.unwrap_err()),
        33011
    );
    let builtin = groups.iter().find(|g| g.name == "默认").unwrap();
    let builtin_role = builtin.roles[0].id;
    assert!(
        client
            .role_update(builtin_role, "改名")
            .await
            .unwrap_err()
            .is_validation()
    );
    assert!(client.role_delete(builtin_role).await.is_err());
    assert!(
        client
            .roles_add_for_users(&[builtin_role], &users[..1])
            .await
            .is_err()
    );
    let unknown_user = client
        .roles_add_for_users(&[finance], &[DingUserId::new("nobody")])
        .await
        .unwrap_err();
    assert!(unknown_user.is_validation(), "{unknown_user}");
    assert_eq!(client.stats().endpoint(paths::ROLE_ADD).retries, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_registration_and_failed_event_catch_up() {
    let sim = sim().await;
    let client = sim.client();
    let (rx, url) = Receiver::start(&sim.handle.config().corp_id).await;
    let request = RegisterCallbackRequest {
        call_back_tag: vec!["user_add_org".into(), "org_dept_create".into()],
        token: receiver::TOKEN.into(),
        aes_key: receiver::AES_KEY.into(),
        url,
    };
    client.register_callback(&request).await.unwrap();
    assert!(
        rx.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["EventType"] == "check_url"),
        "registration verified the URL with check_url"
    );
    let again = client.register_callback(&request).await.unwrap_err();
    assert_eq!(code(&again), 71006);
    assert!(
        !format!("{request:?} {again}").contains(receiver::AES_KEY),
        "secrets stay out of Debug"
    );

    // The receiver goes down; the pushes fail and land in the failed list.
    rx.ack_events.store(false, Ordering::SeqCst);
    sim.fast_push_retries().await;
    let dept = client
        .dept_create(&DeptCreateRequest::new("补偿部", DingDeptId::ROOT))
        .await
        .unwrap();
    let user = client
        .user_create(&UserCreateRequest::new("补偿", "13500000001", [dept]))
        .await
        .unwrap();
    sim.wait_pushes().await;

    let failed = client.failed_callbacks().await.unwrap();
    let list = failed.failed_list.unwrap_or_default();
    let tags: Vec<&str> = list.iter().map(|f| f.call_back_tag.as_str()).collect();
    assert!(
        tags.contains(&"user_add_org") && tags.contains(&"org_dept_create"),
        "{tags:?}"
    );
    let add = list
        .iter()
        .find(|f| f.call_back_tag == "user_add_org")
        .unwrap();
    assert_eq!(add.payload().unwrap()["userid"][0], user.userid.as_str());
    assert!(add.event_time.is_some());
    // Reading removes them.
    let again = client.failed_callbacks().await.unwrap();
    assert!(again.failed_list.unwrap_or_default().is_empty());
    sim.shutdown().await;
}
