//! The store's conformance suite: every case runs against SQLite (a temp file) and PostgreSQL
//! (a fresh database per test, server URL from `DINGSYNC_TEST_PG_URL`), through the same code.

// The cases are plain async functions called by generated #[test]s, which clippy does not
// recognise as test code; an unwrap failing here is a failing test, as intended.
#![allow(clippy::unwrap_used)]

use crate::support;

mod cases {
    use directory_model::{
        Department, DingDeptId, DingUserId, Membership, Mobile, OaDeptId, OaRoleGroupId, OaRoleId,
        OaUserId, Role, RoleAssignment, RoleGroup, Rule, Snapshot, User, UserState,
    };
    use directory_store::{
        AssignmentQuery, DeptQuery, EntityKind, Expect, HoldState, InboxPut, NewInboxEvent,
        NewSoftMatch, Op, Origin, OutboxEntry, Outcome, QueueDepth, QueueState, RoleQuery, Store,
        StoreError, UserQuery, Waiting, WriteCtx,
    };

    /// The fixed "now" of every case (a clock passed in, never read from the system).
    const T0: i64 = 1_700_000_000_000;

    fn oa() -> WriteCtx {
        WriteCtx::oa("tester", T0)
    }

    fn oa_at(now: i64) -> WriteCtx {
        WriteCtx::oa("tester", now)
    }

    fn ding() -> WriteCtx {
        WriteCtx::dingtalk("engine", T0)
    }

    fn dept(id: i64, name: &str, parent: Option<i64>) -> Department {
        Department::new(OaDeptId(id), name, parent.map(OaDeptId))
    }

    fn uid(id: &str) -> OaUserId {
        OaUserId::new(id)
    }

    fn user(id: &str, name: &str, depts: &[i64], mobile: &str) -> User {
        let ids: Vec<OaDeptId> = depts.iter().copied().map(OaDeptId).collect();
        let mut u = User::new(uid(id), name, &ids);
        u.mobile = Some(Mobile::mainland(mobile));
        u
    }

    fn mobile(n: u32) -> String {
        format!("138{n:08}")
    }

    /// Everything a refused write must leave untouched.
    #[derive(Debug, PartialEq)]
    struct Fingerprint {
        snapshot: Snapshot,
        outbox: Vec<OutboxEntry>,
        seq: i64,
        bases: Vec<Option<serde_json::Value>>,
    }

    async fn fingerprint(store: &Store) -> Fingerprint {
        let snapshot = store.snapshot().await.unwrap();
        let mut bases = Vec::new();
        for id in snapshot.departments.keys() {
            bases.push(
                store
                    .base_get(EntityKind::Department, &id.to_string())
                    .await
                    .unwrap(),
            );
        }
        for id in snapshot.users.keys() {
            bases.push(store.base_get(EntityKind::User, id.as_str()).await.unwrap());
        }
        Fingerprint {
            outbox: store.outbox_list(None, None, 100_000).await.unwrap(),
            seq: store.latest_seq().await.unwrap(),
            snapshot,
            bases,
        }
    }

    /// Asserts that `attempt` fails with an error matching `check` and changes nothing.
    macro_rules! refused {
        ($store:expr, $attempt:expr, $pat:pat $(if $guard:expr)?) => {{
            let before = fingerprint(&$store).await;
            let result = $attempt.await;
            match result {
                Err($pat) $(if $guard)? => {}
                other => panic!("expected {}, got {other:?}", stringify!($pat)),
            }
            assert_eq!(fingerprint(&$store).await, before, "a refused write changed something");
        }};
    }

    /// A root department 1 and two children 2, 3 (OA writes, already pushed).
    async fn small_tree(store: &Store) {
        store
            .create_department(&oa(), dept(1, "Acme", None))
            .await
            .unwrap();
        store
            .create_department(&oa(), dept(2, "R&D", Some(1)))
            .await
            .unwrap();
        store
            .create_department(&oa(), dept(3, "Sales", Some(1)))
            .await
            .unwrap();
    }

    /// Claims everything claimable now and returns (kind, oa_id, op) in order.
    async fn claim_all(store: &Store, worker: &str, now: i64) -> Vec<OutboxEntry> {
        store.outbox_claim(worker, now, 60_000, 1000).await.unwrap()
    }

    fn keys(entries: &[OutboxEntry]) -> Vec<(EntityKind, String, Op)> {
        entries
            .iter()
            .map(|e| (e.kind, e.oa_id.clone(), e.op))
            .collect()
    }

    async fn finish(store: &Store, entries: &[OutboxEntry], worker: &str) {
        for e in entries {
            store.outbox_done(e.id, worker, T0).await.unwrap();
        }
    }

    // ----------------------------------------------------------------------------------------

    pub async fn department_crud_versions_and_noop(store: Store) {
        small_tree(&store).await;
        let got = store.get_department(OaDeptId(2)).await.unwrap().unwrap();
        assert_eq!(got.entity.name, "R&D");
        assert_eq!(got.version, 1);
        assert_eq!(got.updated_at_ms, T0);

        let mut renamed = got.entity.clone();
        renamed.name = "Research".into();
        renamed.order = 7;
        let saved = store
            .update_department(&oa_at(T0 + 5), renamed.clone(), Some(1))
            .await
            .unwrap();
        assert_eq!(saved.outcome, Outcome::Updated);
        assert_eq!(saved.value.version, 2);
        assert!(saved.outbox_id.is_some());
        let stored = store.get_department(OaDeptId(2)).await.unwrap().unwrap();
        assert_eq!(stored.entity, renamed);
        assert_eq!(stored.updated_at_ms, T0 + 5);

        // A stale If-Match is refused and changes nothing.
        let mut stale = renamed.clone();
        stale.name = "Stale".into();
        refused!(
            store,
            store.update_department(&oa(), stale, Some(1)),
            StoreError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }
        );
        // Saving the same state is a no-op: no version bump, no audit, no outbox entry.
        let before = fingerprint(&store).await;
        let same = store
            .update_department(&oa(), renamed.clone(), Some(2))
            .await
            .unwrap();
        assert_eq!(same.outcome, Outcome::Unchanged);
        assert_eq!(same.value.version, 2);
        assert_eq!(same.audit_seq, None);
        assert_eq!(fingerprint(&store).await, before);
        // Update of a missing department, create of an existing one.
        refused!(
            store,
            store.update_department(&oa(), dept(99, "Ghost", Some(1)), None),
            StoreError::NotFound {
                kind: EntityKind::Department,
                ..
            }
        );
        refused!(
            store,
            store.create_department(&oa(), dept(2, "Again", Some(1))),
            StoreError::AlreadyExists {
                kind: EntityKind::Department,
                ..
            }
        );
    }

    /// dingsync's own `dingsync:<id>` marker, written without a new version before the first
    /// push, survives an OA update that read the department before it and leaves the field
    /// empty; another value from OA replaces it (a race `multi_instance` found).
    pub async fn an_oa_update_keeps_dingsyncs_own_marker(store: Store) {
        small_tree(&store).await;
        let read = store.get_department(OaDeptId(2)).await.unwrap().unwrap();
        let mut marked = read.entity.clone();
        marked.source_identifier = Some("dingsync:2".into());
        let pusher = WriteCtx::reconcile("pusher", T0).with_keep_version(true);
        store
            .update_department(&pusher, marked, None)
            .await
            .unwrap();
        // The OA client's stale read, renamed, with the version it read (still current).
        let mut renamed = read.entity.clone();
        renamed.name = "Research".into();
        store
            .update_department(&oa(), renamed.clone(), Some(read.version))
            .await
            .unwrap();
        let got = store.get_department(OaDeptId(2)).await.unwrap().unwrap();
        assert_eq!(got.entity.name, "Research");
        assert_eq!(got.entity.source_identifier.as_deref(), Some("dingsync:2"));
        // Another department's marker or any other value from OA is OA's to set.
        renamed.source_identifier = Some("hr-42".into());
        store.update_department(&oa(), renamed, None).await.unwrap();
        let got = store.get_department(OaDeptId(2)).await.unwrap().unwrap();
        assert_eq!(got.entity.source_identifier.as_deref(), Some("hr-42"));
        // A marker naming another department is not kept.
        let mut other = got.entity.clone();
        other.source_identifier = Some("dingsync:3".into());
        store
            .update_department(&oa(), other.clone(), None)
            .await
            .unwrap();
        other.source_identifier = None;
        store.update_department(&oa(), other, None).await.unwrap();
        let got = store.get_department(OaDeptId(2)).await.unwrap().unwrap();
        assert_eq!(got.entity.source_identifier, None);
    }

    pub async fn department_refusals_change_nothing(store: Store) {
        small_tree(&store).await;
        store
            .create_department(&oa(), dept(4, "Backend", Some(2)))
            .await
            .unwrap();
        store
            .create_department(&oa(), dept(5, "Storage", Some(4)))
            .await
            .unwrap();
        refused!(
            store,
            store.create_department(&oa(), dept(10, "Orphan", Some(77))),
            StoreError::UnknownParent {
                parent: OaDeptId(77)
            }
        );
        refused!(
            store,
            store.create_department(&oa(), dept(10, "Second root", None)),
            StoreError::SecondRoot
        );
        refused!(
            store,
            store.create_department(&oa(), dept(10, "Sales", Some(1))),
            StoreError::DuplicateDepartmentName {
                parent: OaDeptId(1),
                ..
            }
        );
        // Renaming onto a sibling's name is refused too; the same name elsewhere is fine.
        refused!(
            store,
            store.update_department(&oa(), dept(3, "R&D", Some(1)), None),
            StoreError::DuplicateDepartmentName { .. }
        );
        store
            .create_department(&oa(), dept(11, "Sales", Some(2)))
            .await
            .unwrap();
        // Moving R&D (2) under its grandchild Storage (5) would make a cycle (DingTalk 60010).
        refused!(
            store,
            store.update_department(&oa(), dept(2, "R&D", Some(5)), None),
            StoreError::DepartmentCycle {
                id: OaDeptId(2),
                parent: OaDeptId(5)
            }
        );
        refused!(
            store,
            store.update_department(&oa(), dept(2, "R&D", Some(2)), None),
            StoreError::Invalid { .. }
        );
        // DingTalk's name rules, with the field named.
        let before = fingerprint(&store).await;
        match store
            .create_department(&oa(), dept(10, "A-B", Some(1)))
            .await
        {
            Err(e @ StoreError::Invalid { .. }) => {
                assert_eq!(e.field(), Some("name"));
                assert!(e.is_client_error());
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(fingerprint(&store).await, before);
        let mut bad_manager = dept(10, "Ops", Some(1));
        bad_manager.managers = vec![uid("nobody")];
        refused!(
            store,
            store.create_department(&oa(), bad_manager),
            StoreError::UnknownUser { ref field, .. } if field == "managers[0]"
        );
        // Deleting: children, members, root.
        refused!(
            store,
            store.delete_department(&oa(), OaDeptId(4), None, false),
            StoreError::HasChildren {
                id: OaDeptId(4),
                count: 1
            }
        );
        store
            .create_user(&oa(), user("u1", "Ann", &[5], &mobile(1)))
            .await
            .unwrap();
        refused!(
            store,
            store.delete_department(&oa(), OaDeptId(5), None, false),
            StoreError::HasMembers {
                id: OaDeptId(5),
                count: 1
            }
        );
        refused!(
            store,
            store.delete_department(&oa(), OaDeptId(1), None, true),
            StoreError::DeleteRoot
        );
        refused!(
            store,
            store.delete_department(&oa(), OaDeptId(3), Some(9), false),
            StoreError::VersionConflict { .. }
        );
        // A legal move and a legal delete still work afterwards.
        store
            .update_department(&oa(), dept(4, "Backend", Some(3)), Some(1))
            .await
            .unwrap();
        store
            .delete_department(&oa(), OaDeptId(11), Some(1), false)
            .await
            .unwrap();
        assert!(store.get_department(OaDeptId(11)).await.unwrap().is_none());
    }

    pub async fn cascade_delete_moves_members_and_orders_the_outbox(store: Store) {
        small_tree(&store).await;
        store
            .create_department(&oa(), dept(4, "Backend", Some(2)))
            .await
            .unwrap();
        store
            .create_user(&oa(), user("u1", "Ann", &[4], &mobile(1)))
            .await
            .unwrap();
        store
            .create_user(&oa(), user("u2", "Bo", &[4, 3], &mobile(2)))
            .await
            .unwrap();
        // Push everything so far.
        loop {
            let batch = claim_all(&store, "w", T0).await;
            if batch.is_empty() {
                break;
            }
            finish(&store, &batch, "w").await;
        }
        let report = store
            .delete_department(&oa(), OaDeptId(2), None, true)
            .await
            .unwrap();
        assert_eq!(report.departments, vec![OaDeptId(4), OaDeptId(2)]);
        assert_eq!(report.users_moved, vec![uid("u1"), uid("u2")]);
        // u1 had only department 4: moved to the deleted subtree's parent (1).
        let u1 = store.get_user(&uid("u1")).await.unwrap().unwrap().entity;
        assert_eq!(u1.department_ids().collect::<Vec<_>>(), vec![OaDeptId(1)]);
        assert_eq!(u1.main_department, Some(OaDeptId(1)));
        // u2 keeps Sales (3).
        let u2 = store.get_user(&uid("u2")).await.unwrap().unwrap().entity;
        assert_eq!(u2.department_ids().collect::<Vec<_>>(), vec![OaDeptId(3)]);
        assert_eq!(u2.main_department, Some(OaDeptId(3)));
        // The member moves come first; then Backend (4); then R&D (2).
        let first = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&first),
            vec![
                (EntityKind::User, "u1".into(), Op::Update),
                (EntityKind::User, "u2".into(), Op::Update),
            ]
        );
        finish(&store, &first, "w").await;
        let second = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&second),
            vec![(EntityKind::Department, "4".into(), Op::Delete)]
        );
        finish(&store, &second, "w").await;
        let third = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&third),
            vec![(EntityKind::Department, "2".into(), Op::Delete)]
        );
        // The deletion's payload is the last state, so the pusher knows what it removes.
        assert_eq!(third[0].payload.as_ref().unwrap()["name"], "R&D");
    }

    pub async fn user_refusals_change_nothing(store: Store) {
        small_tree(&store).await;
        let mut boss = user("boss", "Boss", &[1], &mobile(1));
        boss.email = Some("boss@acme.cn".into());
        store.create_user(&oa(), boss).await.unwrap();
        let mut mid = user("mid", "Mid", &[2], &mobile(2));
        mid.manager = Some(uid("boss"));
        store.create_user(&oa(), mid).await.unwrap();

        refused!(
            store,
            store.create_user(&oa(), user("boss", "Dup", &[2], &mobile(3))),
            StoreError::AlreadyExists {
                kind: EntityKind::User,
                ..
            }
        );
        refused!(
            store,
            store.create_user(&oa(), user("x", "X", &[2], &mobile(1))),
            StoreError::DuplicateMobile { ref existing } if existing.as_str() == "boss"
        );
        let mut dup_email = user("x", "X", &[2], &mobile(3));
        dup_email.email = Some("boss@acme.cn".into());
        refused!(
            store,
            store.create_user(&oa(), dup_email),
            StoreError::DuplicateEmail { .. }
        );
        refused!(
            store,
            store.create_user(&oa(), user("x", "X", &[2, 42], &mobile(3))),
            StoreError::UnknownDepartment { ref field, id: OaDeptId(42) } if field == "departments[1].dept"
        );
        let mut unknown_manager = user("x", "X", &[2], &mobile(3));
        unknown_manager.manager = Some(uid("ghost"));
        refused!(
            store,
            store.create_user(&oa(), unknown_manager),
            StoreError::UnknownUser { ref field, .. } if field == "manager"
        );
        // boss → managed by mid, who is managed by boss: a cycle.
        let mut cyclic = store.get_user(&uid("boss")).await.unwrap().unwrap().entity;
        cyclic.manager = Some(uid("mid"));
        refused!(
            store,
            store.update_user(&oa(), cyclic, None),
            StoreError::ManagerCycle { .. }
        );
        // Every validation problem at once, with field paths.
        let mut invalid = user("x", &"n".repeat(81), &[2], "123");
        invalid.departments[0].title = Some("t".repeat(201));
        invalid.email = Some("not-an-email".into());
        let before = fingerprint(&store).await;
        match store.create_user(&oa(), invalid).await {
            Err(StoreError::Invalid {
                kind: EntityKind::User,
                source,
            }) => {
                for f in ["name", "departments[0].title", "mobile", "email"] {
                    assert!(source.has_field(f), "{f} missing from {source:?}");
                }
                assert!(
                    source
                        .errors()
                        .iter()
                        .any(|e| e.rule == Rule::TooLong { max: 200 })
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(fingerprint(&store).await, before);
        // Deleting someone who still manages others is refused; version mismatch too.
        refused!(
            store,
            store.delete_user(&oa(), &uid("boss"), None),
            StoreError::UserIsManager { count: 1, .. }
        );
        refused!(
            store,
            store.delete_user(&oa(), &uid("mid"), Some(5)),
            StoreError::VersionConflict {
                expected: 5,
                actual: 1,
                ..
            }
        );
        refused!(
            store,
            store.delete_user(&oa(), &uid("nobody"), None),
            StoreError::NotFound {
                kind: EntityKind::User,
                ..
            }
        );
        // A user who left frees their mobile for a new hire.
        let mut left = store.get_user(&uid("mid")).await.unwrap().unwrap().entity;
        left.state = UserState::Left;
        store.update_user(&oa(), left, Some(1)).await.unwrap();
        store
            .create_user(&oa(), user("new", "New", &[2], &mobile(2)))
            .await
            .unwrap();
        store
            .delete_user(&oa(), &uid("mid"), Some(2))
            .await
            .unwrap();
        assert!(store.get_user(&uid("mid")).await.unwrap().is_none());
    }

    pub async fn user_round_trips_every_field(store: Store) {
        small_tree(&store).await;
        store
            .create_user(&oa(), user("boss", "Boss", &[1], &mobile(9)))
            .await
            .unwrap();
        let mut u = user("zs", "张三", &[3, 2], &mobile(1));
        u.departments[0].title = Some("Sales lead".into());
        u.departments[0].order = 5;
        u.departments[1] = Membership {
            dept: OaDeptId(2),
            title: None,
            order: -3,
        };
        u.main_department = Some(OaDeptId(2));
        u.manager = Some(uid("boss"));
        u.job_number = Some("E001".into());
        u.mobile = Some(Mobile::parse("+852-91234567"));
        u.email = Some("zs@acme.cn".into());
        u.org_email = Some("zs@corp.acme.cn".into());
        u.telephone = Some("010-1234".into());
        u.work_place = Some("Hangzhou".into());
        u.hired_date_ms = Some(1_600_000_000_000);
        u.remark = Some("remark".into());
        u.extension.insert("爱好".into(), "旅游".into());
        store.create_user(&oa(), u.clone()).await.unwrap();
        let got = store.get_user(&uid("zs")).await.unwrap().unwrap();
        assert_eq!(got.entity, u);
        assert_eq!(got.version, 1);
    }

    pub async fn roles_groups_and_assignments(store: Store) {
        small_tree(&store).await;
        store
            .create_user(&oa(), user("u1", "Ann", &[2], &mobile(1)))
            .await
            .unwrap();
        let g = RoleGroup {
            id: OaRoleGroupId(1),
            name: "Jobs".into(),
        };
        store
            .save_role_group(&oa(), g, Expect::Absent)
            .await
            .unwrap();
        let r = |id: i64, group: i64, name: &str| Role {
            id: OaRoleId(id),
            group: OaRoleGroupId(group),
            name: name.into(),
        };
        store
            .save_role(&oa(), r(10, 1, "Cashier"), Expect::Absent)
            .await
            .unwrap();
        refused!(
            store,
            store.save_role(&oa(), r(11, 9, "Clerk"), Expect::Absent),
            StoreError::UnknownRoleGroup {
                id: OaRoleGroupId(9)
            }
        );
        refused!(
            store,
            store.save_role(&oa(), r(11, 1, "Cashier"), Expect::Absent),
            StoreError::DuplicateRoleName { .. }
        );
        refused!(
            store,
            store.save_role(&oa(), r(11, 1, "  "), Expect::Absent),
            StoreError::Invalid {
                kind: EntityKind::Role,
                ..
            }
        );
        refused!(
            store,
            store.assign_role(&oa(), &uid("ghost"), OaRoleId(10)),
            StoreError::UnknownUser { .. }
        );
        refused!(
            store,
            store.assign_role(&oa(), &uid("u1"), OaRoleId(77)),
            StoreError::UnknownRole { id: OaRoleId(77) }
        );
        assert_eq!(
            store
                .assign_role(&oa(), &uid("u1"), OaRoleId(10))
                .await
                .unwrap(),
            Outcome::Created
        );
        // Assigning again is a no-op that records nothing.
        let before = fingerprint(&store).await;
        assert_eq!(
            store
                .assign_role(&oa(), &uid("u1"), OaRoleId(10))
                .await
                .unwrap(),
            Outcome::Unchanged
        );
        assert_eq!(fingerprint(&store).await, before);
        refused!(
            store,
            store.delete_role(&oa(), OaRoleId(10), None),
            StoreError::RoleHasMembers { count: 1, .. }
        );
        refused!(
            store,
            store.delete_role_group(&oa(), OaRoleGroupId(1), None),
            StoreError::GroupHasRoles { count: 1, .. }
        );
        let page = store
            .list_assignments(&AssignmentQuery {
                role: Some(OaRoleId(10)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.items,
            vec![RoleAssignment {
                user: uid("u1"),
                role: OaRoleId(10)
            }]
        );
        assert_eq!(
            store
                .unassign_role(&oa(), &uid("u1"), OaRoleId(10))
                .await
                .unwrap(),
            Outcome::Updated
        );
        store
            .delete_role(&oa(), OaRoleId(10), Some(1))
            .await
            .unwrap();
        store
            .delete_role_group(&oa(), OaRoleGroupId(1), Some(1))
            .await
            .unwrap();
        assert!(
            store
                .get_role_group(OaRoleGroupId(1))
                .await
                .unwrap()
                .is_none()
        );
    }

    pub async fn one_transaction_per_write(store: Store) {
        small_tree(&store).await;
        // Every OA write has exactly one audit row and one outbox entry pointing at it.
        let entries = store.outbox_list(None, None, 100).await.unwrap();
        assert_eq!(entries.len(), 3);
        let feed = store.changes_since(0, 100).await.unwrap();
        assert_eq!(feed.len(), 3);
        for (e, a) in entries.iter().zip(&feed) {
            assert_eq!(e.audit_seq, a.seq);
            assert_eq!((e.kind, &e.oa_id, e.op), (a.kind, &a.oa_id, a.op));
            assert_eq!(a.origin, Origin::Oa);
            assert_eq!(a.actor, "tester");
        }
        // OA writes leave the base alone (DingTalk does not have them yet).
        assert_eq!(
            store
                .base_get::<Department>(EntityKind::Department, "2")
                .await
                .unwrap(),
            None
        );
        // A write from DingTalk: directory + base + audit, no outbox.
        let saved = store
            .save_department(&ding(), dept(4, "Support", Some(1)), Expect::Any)
            .await
            .unwrap();
        assert_eq!(saved.outbox_id, None);
        assert_eq!(store.outbox_list(None, None, 100).await.unwrap().len(), 3);
        assert_eq!(
            store
                .base_get::<Department>(EntityKind::Department, "4")
                .await
                .unwrap(),
            Some(dept(4, "Support", Some(1)))
        );
        let last = store.changes_since(3, 10).await.unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].origin, Origin::DingTalk);
        // ... unless the engine asks for a push.
        let pushed = store
            .save_department(
                &ding().with_enqueue(true),
                dept(4, "Support 2", Some(1)),
                Expect::Any,
            )
            .await
            .unwrap();
        assert!(pushed.outbox_id.is_some());
        // The echo of a state we already hold writes and queues nothing (invariant 5).
        let before = fingerprint(&store).await;
        let echo = store
            .save_department(&ding(), dept(4, "Support 2", Some(1)), Expect::Any)
            .await
            .unwrap();
        assert_eq!(echo.outcome, Outcome::Unchanged);
        assert_eq!(fingerprint(&store).await, before);
    }

    /// Breaks the outbox on purpose: the directory write must roll back with it (invariant 2).
    pub async fn a_failing_outbox_rolls_back_the_write(store: Store) {
        small_tree(&store).await;
        let before = fingerprint(&store).await;
        let mut conn = sqlx::AnyConnection::connect_with(&store.url().expose().parse().unwrap())
            .await
            .unwrap();
        use sqlx::{Connection, Executor};
        conn.execute("ALTER TABLE outbox_keys RENAME TO outbox_keys_gone")
            .await
            .unwrap();
        let result = store
            .create_department(&oa(), dept(9, "Doomed", Some(1)))
            .await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        conn.execute("ALTER TABLE outbox_keys_gone RENAME TO outbox_keys")
            .await
            .unwrap();
        conn.close().await.unwrap();
        assert!(store.get_department(OaDeptId(9)).await.unwrap().is_none());
        assert_eq!(fingerprint(&store).await, before);
    }

    pub async fn inbox_dedupes_claims_and_dead_letters(store: Store) {
        let ev = |key: &str| NewInboxEvent {
            dedupe_key: key.into(),
            event_type: "user_add_org".into(),
            payload_json: format!(r#"{{"eventId":"{key}","userId":["u1"]}}"#),
            received_at_ms: T0,
        };
        let InboxPut::Stored(first) = store.inbox_put(ev("e1")).await.unwrap() else {
            panic!("first put must store");
        };
        assert_eq!(
            store.inbox_put(ev("e1")).await.unwrap(),
            InboxPut::Duplicate
        );
        let InboxPut::Stored(second) = store.inbox_put(ev("e2")).await.unwrap() else {
            panic!("second key must store");
        };
        assert!(second > first);
        assert_eq!(
            store.inbox_depth().await.unwrap(),
            QueueDepth {
                pending: 2,
                claimed: 0,
                dead: 0
            }
        );
        let claimed = store.inbox_claim("w1", T0, 30_000, 10).await.unwrap();
        assert_eq!(
            claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![first, second]
        );
        assert_eq!(claimed[0].attempts, 1);
        assert_eq!(claimed[0].claimed_by.as_deref(), Some("w1"));
        assert_eq!(claimed[0].claimed_until_ms, Some(T0 + 30_000));
        assert_eq!(claimed[0].payload_json, ev("e1").payload_json);
        // Leased: nobody else gets them before the lease ends.
        assert!(
            store
                .inbox_claim("w2", T0 + 1, 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        store.inbox_done(first, "w1", T0 + 2).await.unwrap();
        // The duplicate stays a duplicate after the original was applied.
        assert_eq!(
            store.inbox_put(ev("e1")).await.unwrap(),
            InboxPut::Duplicate
        );
        // Retry later: invisible until its time, then claimable again.
        store
            .inbox_retry_later(second, "w1", T0 + 10_000, "DingTalk -1 busy", T0 + 2)
            .await
            .unwrap();
        assert!(
            store
                .inbox_claim("w2", T0 + 9_999, 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store
            .inbox_claim("w2", T0 + 10_000, 30_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(again[0].last_error.as_deref(), Some("DingTalk -1 busy"));
        // Dead letter, listed with its error; retry; dead again; drop.
        store
            .inbox_dead_letter(second, "w2", "60121 user not found", T0 + 11_000)
            .await
            .unwrap();
        let dead = store.inbox_dead_letters(None, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].state, QueueState::Dead);
        assert_eq!(dead[0].last_error.as_deref(), Some("60121 user not found"));
        assert_eq!(store.inbox_depth().await.unwrap().dead, 1);
        store.inbox_retry_dead(second, T0 + 12_000).await.unwrap();
        let revived = store
            .inbox_claim("w3", T0 + 12_000, 1_000, 10)
            .await
            .unwrap();
        assert_eq!(revived.len(), 1);
        store
            .inbox_dead_letter(second, "w3", "still broken", T0 + 12_001)
            .await
            .unwrap();
        store.inbox_drop_dead(second).await.unwrap();
        assert!(matches!(
            store.inbox_drop_dead(second).await,
            Err(StoreError::EntryNotFound { .. })
        ));
        assert_eq!(store.inbox_depth().await.unwrap(), QueueDepth::default());
    }

    pub async fn expired_leases_are_taken_over(store: Store) {
        for key in ["a", "b"] {
            store
                .inbox_put(NewInboxEvent {
                    dedupe_key: key.into(),
                    event_type: "org_dept_create".into(),
                    payload_json: "{}".into(),
                    received_at_ms: T0,
                })
                .await
                .unwrap();
        }
        let mine = store.inbox_claim("crashy", T0, 5_000, 1).await.unwrap();
        assert_eq!(mine.len(), 1);
        // Another worker gets only the other event while the lease runs.
        let other = store.inbox_claim("w2", T0 + 1, 5_000, 10).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_ne!(other[0].id, mine[0].id);
        // After the lease ends the crashed worker's event is taken over ...
        let taken = store
            .inbox_claim("w3", T0 + 5_000, 5_000, 10)
            .await
            .unwrap();
        assert_eq!(
            taken.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![mine[0].id]
        );
        assert_eq!(taken[0].attempts, 2);
        // ... and the old holder can no longer report on it.
        assert!(matches!(
            store.inbox_done(mine[0].id, "crashy", T0 + 5_001).await,
            Err(StoreError::LeaseLost { .. })
        ));
        store
            .inbox_done(mine[0].id, "w3", T0 + 5_001)
            .await
            .unwrap();
        assert!(matches!(
            store.inbox_done(999_999, "w3", T0).await,
            Err(StoreError::EntryNotFound { .. })
        ));
    }

    pub async fn a_restarted_worker_releases_its_own_claims(store: Store) {
        for key in ["a", "b", "c"] {
            store
                .inbox_put(NewInboxEvent {
                    dedupe_key: key.into(),
                    event_type: "org_dept_create".into(),
                    payload_json: "{}".into(),
                    received_at_ms: T0,
                })
                .await
                .unwrap();
        }
        let mine = store.inbox_claim("w1", T0, 60_000, 2).await.unwrap();
        let theirs = store.inbox_claim("w2", T0, 60_000, 1).await.unwrap();
        assert_eq!((mine.len(), theirs.len()), (2, 1));
        // w1 failed mid-round and starts again: its two events are free at once, w2's is not.
        assert_eq!(store.inbox_release_claims("w1", T0 + 1).await.unwrap(), 2);
        assert_eq!(store.inbox_release_claims("w1", T0 + 1).await.unwrap(), 0);
        let again = store.inbox_claim("w1", T0 + 2, 60_000, 10).await.unwrap();
        let mut ids: Vec<i64> = again.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        let mut expected: Vec<i64> = mine.iter().map(|e| e.id).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected);
        store.inbox_done(theirs[0].id, "w2", T0 + 3).await.unwrap();

        small_tree(&store).await;
        let claimed = claim_all(&store, "p1", T0).await;
        assert!(!claimed.is_empty());
        assert_eq!(
            store.outbox_release_claims("p1", T0 + 1).await.unwrap(),
            claimed.len() as u64
        );
        assert_eq!(store.outbox_depth().await.unwrap().claimed, 0);
    }

    /// The applier's guard against re-creating what OA deleted when no base remembers it.
    pub async fn a_queued_deletion_is_seen_until_it_is_pushed(store: Store) {
        store
            .create_department(&oa(), dept(1, "Acme", None))
            .await
            .unwrap();
        store
            .create_user(&oa(), user("u1", "Ann", &[1], &mobile(1)))
            .await
            .unwrap();
        assert!(
            !store
                .outbox_deletion_queued(EntityKind::User, "u1")
                .await
                .unwrap()
        );
        store.delete_user(&oa(), &uid("u1"), None).await.unwrap();
        assert!(
            store
                .outbox_deletion_queued(EntityKind::User, "u1")
                .await
                .unwrap()
        );
        assert!(
            !store
                .outbox_deletion_queued(EntityKind::User, "u2")
                .await
                .unwrap()
        );
        assert!(
            !store
                .outbox_deletion_queued(EntityKind::Department, "u1")
                .await
                .unwrap()
        );
        // Claimed (by a worker that may have died) still counts; pushed does not.
        let claimed = claim_all(&store, "p1", T0).await;
        assert!(
            store
                .outbox_deletion_queued(EntityKind::User, "u1")
                .await
                .unwrap()
        );
        finish(&store, &claimed, "p1").await;
        // Dependency order hands out the rest a round at a time.
        loop {
            let next = claim_all(&store, "p1", T0).await;
            if next.is_empty() {
                break;
            }
            finish(&store, &next, "p1").await;
        }
        assert!(
            !store
                .outbox_deletion_queued(EntityKind::User, "u1")
                .await
                .unwrap()
        );
    }

    pub async fn outbox_claims_in_dependency_order(store: Store) {
        store
            .create_department(&oa(), dept(1, "Acme", None))
            .await
            .unwrap();
        store
            .create_department(&oa(), dept(2, "R&D", Some(1)))
            .await
            .unwrap();
        store
            .create_user(&oa(), user("u1", "Ann", &[2], &mobile(1)))
            .await
            .unwrap();
        store
            .save_role_group(
                &oa(),
                RoleGroup {
                    id: OaRoleGroupId(1),
                    name: "Jobs".into(),
                },
                Expect::Absent,
            )
            .await
            .unwrap();
        store
            .save_role(
                &oa(),
                Role {
                    id: OaRoleId(10),
                    group: OaRoleGroupId(1),
                    name: "Cashier".into(),
                },
                Expect::Absent,
            )
            .await
            .unwrap();
        store
            .assign_role(&oa(), &uid("u1"), OaRoleId(10))
            .await
            .unwrap();
        let dept_key = |id: &str| (EntityKind::Department, id.to_string(), Op::Create);
        // Round 1: the root and the role group (nothing before them).
        let r1 = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&r1),
            vec![
                dept_key("1"),
                (EntityKind::RoleGroup, "1".into(), Op::Create)
            ]
        );
        // Nothing else is claimable until they are done, even by another worker.
        assert!(claim_all(&store, "other", T0).await.is_empty());
        finish(&store, &r1, "w").await;
        // Round 2: the child department and the role.
        let r2 = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&r2),
            vec![dept_key("2"), (EntityKind::Role, "10".into(), Op::Create)]
        );
        finish(&store, &r2, "w").await;
        // Round 3: the user; round 4: the assignment.
        let r3 = claim_all(&store, "w", T0).await;
        assert_eq!(keys(&r3), vec![(EntityKind::User, "u1".into(), Op::Create)]);
        finish(&store, &r3, "w").await;
        let r4 = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&r4),
            vec![(EntityKind::RoleAssignment, "10:u1".into(), Op::Create)]
        );
        finish(&store, &r4, "w").await;
        // Members of one department are pushed in parallel (they only read it) ...
        for i in 2..5 {
            store
                .create_user(&oa(), user(&format!("u{i}"), "X", &[2], &mobile(i)))
                .await
                .unwrap();
        }
        // ... but a later rename of the department waits for them, and a later update of u2
        // waits for u2's creation.
        store
            .update_department(&oa(), dept(2, "Research", Some(1)), None)
            .await
            .unwrap();
        let mut u2 = store.get_user(&uid("u2")).await.unwrap().unwrap().entity;
        u2.name = "Renamed".into();
        store.update_user(&oa(), u2, None).await.unwrap();
        let r5 = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&r5)
                .into_iter()
                .map(|(_, id, _)| id)
                .collect::<Vec<_>>(),
            vec!["u2", "u3", "u4"]
        );
        finish(&store, &r5, "w").await;
        let r6 = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&r6),
            vec![(EntityKind::Department, "2".into(), Op::Update)]
        );
        finish(&store, &r6, "w").await;
        let r7 = claim_all(&store, "w", T0).await;
        assert_eq!(keys(&r7), vec![(EntityKind::User, "u2".into(), Op::Update)]);
    }

    pub async fn outbox_retries_and_dead_letters(store: Store) {
        small_tree(&store).await;
        let r1 = claim_all(&store, "w", T0).await;
        assert_eq!(r1.len(), 1);
        // A retry with backoff keeps blocking the children until it succeeds.
        store
            .outbox_retry_later(r1[0].id, "w", T0 + 1_000, "90018 throttled", T0)
            .await
            .unwrap();
        assert!(claim_all(&store, "w", T0 + 999).await.is_empty());
        let again = claim_all(&store, "w", T0 + 1_000).await;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        assert_eq!(again[0].last_error.as_deref(), Some("90018 throttled"));
        finish(&store, &again, "w").await;
        let children = claim_all(&store, "w", T0 + 1_000).await;
        assert_eq!(children.len(), 2);
        // One child cannot be fixed by retrying: a dead letter with DingTalk's error.
        store
            .outbox_dead_letter(children[0].id, "w", "60008 name exists", T0)
            .await
            .unwrap();
        store.outbox_done(children[1].id, "w", T0).await.unwrap();
        let dead = store.outbox_dead_letters(None, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("60008 name exists"));
        assert_eq!(
            store.outbox_depth().await.unwrap(),
            QueueDepth {
                pending: 0,
                claimed: 0,
                dead: 1
            }
        );
        // A dead letter does not stall later changes of other entities that read it.
        store
            .create_user(&oa(), user("u1", "Ann", &[2], &mobile(1)))
            .await
            .unwrap();
        let next = claim_all(&store, "w", T0).await;
        assert_eq!(
            keys(&next),
            vec![(EntityKind::User, "u1".into(), Op::Create)]
        );
        finish(&store, &next, "w").await;
        // Retry the dead letter: pending again with a fresh attempt count.
        store.outbox_retry_dead(dead[0].id, T0 + 5).await.unwrap();
        let revived = claim_all(&store, "w", T0 + 5).await;
        assert_eq!(revived.len(), 1);
        assert_eq!(revived[0].id, dead[0].id);
        assert_eq!(revived[0].attempts, 1);
        store
            .outbox_dead_letter(revived[0].id, "w", "still", T0 + 6)
            .await
            .unwrap();
        store.outbox_drop_dead(revived[0].id).await.unwrap();
        assert_eq!(store.outbox_depth().await.unwrap(), QueueDepth::default());
        assert!(matches!(
            store.outbox_retry_dead(revived[0].id, T0).await,
            Err(StoreError::EntryNotFound { .. })
        ));
        // Purging finished entries.
        assert!(store.outbox_purge_done(T0 + 10).await.unwrap() >= 3);
    }

    pub async fn concurrent_claims_are_disjoint(store: Store) {
        store
            .create_department(&oa(), dept(1, "Acme", None))
            .await
            .unwrap();
        let r = claim_all(&store, "w", T0).await;
        finish(&store, &r, "w").await;
        let users: Vec<User> = (0..40)
            .map(|i| user(&format!("u{i:02}"), "X", &[1], &mobile(i)))
            .collect();
        for u in users {
            store.create_user(&oa(), u).await.unwrap();
        }
        let mut tasks = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .outbox_claim(&format!("w{w}"), T0, 60_000, 3)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(got.into_iter().map(|e| e.id));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an entry was claimed twice");
        assert_eq!(n, 40);
    }

    pub async fn listing_pages_and_filters(store: Store) {
        small_tree(&store).await;
        for i in 0..25u32 {
            let d = if i % 2 == 0 { 2 } else { 3 };
            let mut u = user(
                &format!("u{i:02}"),
                &format!("Person {i}"),
                &[d],
                &mobile(i),
            );
            u.job_number = Some(format!("J{i}"));
            let ctx = oa_at(T0 + i64::from(i));
            store.create_user(&ctx, u).await.unwrap();
        }
        // Keyset pages of 10: 10 + 10 + 5, in id order, no overlap.
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = store
                .list_users(&UserQuery {
                    after: after.clone(),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap();
            pages += 1;
            seen.extend(page.items.iter().map(|u| u.entity.id.0.clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let expected: Vec<String> = (0..25).map(|i| format!("u{i:02}")).collect();
        assert_eq!(seen, expected);
        let by_dept = store
            .list_users(&UserQuery {
                department: Some(OaDeptId(3)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_dept.items.len(), 12);
        assert!(
            by_dept
                .items
                .iter()
                .all(|u| u.entity.departments[0].dept == OaDeptId(3))
        );
        let by_name = store
            .list_users(&UserQuery {
                name_contains: Some("PERSON 1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        // "Person 1" and "Person 10".."Person 19".
        assert_eq!(by_name.items.len(), 11);
        let by_mobile = store
            .list_users(&UserQuery {
                mobile: Some(mobile(7)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_mobile.items[0].entity.id, uid("u07"));
        let by_job = store
            .list_users(&UserQuery {
                job_number: Some("J24".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_job.items.len(), 1);
        let recent = store
            .list_users(&UserQuery {
                updated_since_ms: Some(T0 + 20),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(recent.items.len(), 5);
        // LIKE wildcards in the filter are literal.
        let literal = store
            .list_users(&UserQuery {
                name_contains: Some("%".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(literal.items.is_empty());
        let children = store
            .list_departments(&DeptQuery {
                parent: Some(OaDeptId(1)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            children
                .items
                .iter()
                .map(|d| d.entity.id)
                .collect::<Vec<_>>(),
            vec![OaDeptId(2), OaDeptId(3)]
        );
        let named = store
            .list_departments(&DeptQuery {
                name_contains: Some("sal".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(named.items.len(), 1);
        let dept_page = store
            .list_departments(&DeptQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(dept_page.next, Some(OaDeptId(2)));
        // Roles by group, assignments paged.
        for g in 1..=2 {
            store
                .save_role_group(
                    &oa(),
                    RoleGroup {
                        id: OaRoleGroupId(g),
                        name: format!("G{g}"),
                    },
                    Expect::Absent,
                )
                .await
                .unwrap();
        }
        for r in 1..=5 {
            store
                .save_role(
                    &oa(),
                    Role {
                        id: OaRoleId(r),
                        group: OaRoleGroupId(if r <= 3 { 1 } else { 2 }),
                        name: format!("R{r}"),
                    },
                    Expect::Absent,
                )
                .await
                .unwrap();
        }
        let g1 = store
            .list_roles(&RoleQuery {
                group: Some(OaRoleGroupId(1)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(g1.items.len(), 3);
        let groups = store.list_role_groups(None, 1).await.unwrap();
        assert_eq!(groups.items.len(), 1);
        assert_eq!(groups.next, Some(OaRoleGroupId(1)));
        for i in 0..5 {
            store
                .assign_role(&oa(), &uid(&format!("u{i:02}")), OaRoleId(1))
                .await
                .unwrap();
        }
        let p1 = store
            .list_assignments(&AssignmentQuery {
                role: Some(OaRoleId(1)),
                limit: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p1.items.len(), 3);
        let p2 = store
            .list_assignments(&AssignmentQuery {
                role: Some(OaRoleId(1)),
                limit: 3,
                after: p1.next.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p2.items.len(), 2);
        assert_eq!(p2.next, None);
        assert_eq!(p2.items[1].user, uid("u04"));
        let of_user = store
            .list_assignments(&AssignmentQuery {
                user: Some(uid("u03")),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(of_user.items.len(), 1);
    }

    pub async fn change_feed_is_ordered_and_resumable(store: Store) {
        small_tree(&store).await;
        store
            .create_user(&oa(), user("u1", "Ann", &[2], &mobile(1)))
            .await
            .unwrap();
        store
            .save_department(&ding(), dept(4, "Support", Some(1)), Expect::Any)
            .await
            .unwrap();
        store
            .import_departments(
                &WriteCtx::import("importer", T0),
                &[dept(5, "Ops", Some(1))],
            )
            .await
            .unwrap();
        store.delete_user(&oa(), &uid("u1"), None).await.unwrap();
        let all = store.changes_since(0, 100).await.unwrap();
        assert_eq!(all.len(), 7);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(
            all.iter().map(|a| a.origin).collect::<Vec<_>>(),
            vec![
                Origin::Oa,
                Origin::Oa,
                Origin::Oa,
                Origin::Oa,
                Origin::DingTalk,
                Origin::Import,
                Origin::Oa
            ]
        );
        let deleted = &all[6];
        assert_eq!(deleted.op, Op::Delete);
        assert_eq!(deleted.after, None);
        assert_eq!(deleted.before.as_ref().unwrap()["name"], "Ann");
        // Resuming from a cursor yields exactly the rest.
        let rest = store.changes_since(all[3].seq, 2).await.unwrap();
        assert_eq!(rest, all[4..6].to_vec());
        assert_eq!(store.latest_seq().await.unwrap(), all[6].seq);
        let history = store.audit_of(EntityKind::User, "u1").await.unwrap();
        assert_eq!(
            history.iter().map(|a| a.op).collect::<Vec<_>>(),
            vec![Op::Create, Op::Delete]
        );
    }

    pub async fn dingtalk_deletions_clear_references(store: Store) {
        small_tree(&store).await;
        let mut d2 = dept(2, "R&D", Some(1));
        store
            .create_user(&oa(), user("boss", "Boss", &[1], &mobile(1)))
            .await
            .unwrap();
        d2.managers = vec![uid("boss")];
        store.update_department(&oa(), d2, None).await.unwrap();
        let mut e = user("e", "E", &[2], &mobile(2));
        e.manager = Some(uid("boss"));
        store.create_user(&oa(), e).await.unwrap();
        store
            .save_role_group(
                &oa(),
                RoleGroup {
                    id: OaRoleGroupId(1),
                    name: "G".into(),
                },
                Expect::Absent,
            )
            .await
            .unwrap();
        store
            .save_role(
                &oa(),
                Role {
                    id: OaRoleId(1),
                    group: OaRoleGroupId(1),
                    name: "R".into(),
                },
                Expect::Absent,
            )
            .await
            .unwrap();
        store
            .assign_role(&oa(), &uid("boss"), OaRoleId(1))
            .await
            .unwrap();
        let queued = store.outbox_list(None, None, 1000).await.unwrap().len();
        // DingTalk says the boss is gone: mirror it, clearing what pointed at them.
        store
            .delete_user(&ding(), &uid("boss"), None)
            .await
            .unwrap();
        assert!(store.get_user(&uid("boss")).await.unwrap().is_none());
        let e = store.get_user(&uid("e")).await.unwrap().unwrap().entity;
        assert_eq!(e.manager, None);
        let d2 = store
            .get_department(OaDeptId(2))
            .await
            .unwrap()
            .unwrap()
            .entity;
        assert!(d2.managers.is_empty());
        assert!(
            store
                .list_assignments(&AssignmentQuery::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        // Nothing queued: DingTalk already has this state.
        assert_eq!(
            store.outbox_list(None, None, 1000).await.unwrap().len(),
            queued
        );
    }

    pub async fn id_map_both_directions(store: Store) {
        store
            .id_map_put(&OaDeptId(2), &DingDeptId(432_825_033))
            .await
            .unwrap();
        store
            .id_map_put(&OaDeptId(2), &DingDeptId(432_825_033))
            .await
            .unwrap();
        store
            .id_map_put(&uid("zs"), &DingUserId::new("184919295227658120"))
            .await
            .unwrap();
        assert_eq!(
            store.ding_id_of(&OaDeptId(2)).await.unwrap(),
            Some(DingDeptId(432_825_033))
        );
        assert_eq!(
            store
                .oa_id_of::<OaDeptId>(&DingDeptId(432_825_033))
                .await
                .unwrap(),
            Some(OaDeptId(2))
        );
        assert_eq!(
            store
                .oa_id_of::<OaUserId>(&DingUserId::new("184919295227658120"))
                .await
                .unwrap(),
            Some(uid("zs"))
        );
        // Kinds are separate spaces.
        assert_eq!(store.ding_id_of(&OaRoleId(2)).await.unwrap(), None);
        assert!(matches!(
            store
                .id_map_put(&OaDeptId(3), &DingDeptId(432_825_033))
                .await,
            Err(StoreError::IdMapConflict { .. })
        ));
        assert!(matches!(
            store.id_map_put(&OaDeptId(2), &DingDeptId(5)).await,
            Err(StoreError::IdMapConflict { .. })
        ));
        assert!(store.id_map_remove(&OaDeptId(2)).await.unwrap());
        assert_eq!(store.ding_id_of(&OaDeptId(2)).await.unwrap(), None);
    }

    pub async fn bookkeeping_state_checkpoints_leases_holds(store: Store) {
        assert_eq!(store.state_get("cursor").await.unwrap(), None);
        store.state_set("cursor", "a", T0).await.unwrap();
        store.state_set("cursor", "b", T0).await.unwrap();
        assert_eq!(
            store.state_get("cursor").await.unwrap().as_deref(),
            Some("b")
        );

        store
            .checkpoint_set("full-import", r#"{"dept":2}"#, T0)
            .await
            .unwrap();
        assert_eq!(
            store
                .checkpoint_get("full-import")
                .await
                .unwrap()
                .as_deref(),
            Some(r#"{"dept":2}"#)
        );
        store.checkpoint_clear("full-import").await.unwrap();
        assert_eq!(store.checkpoint_get("full-import").await.unwrap(), None);

        assert!(store.lease_acquire("import", "a", T0, 1_000).await.unwrap());
        assert!(
            !store
                .lease_acquire("import", "b", T0 + 999, 1_000)
                .await
                .unwrap()
        );
        assert!(
            store
                .lease_acquire("import", "a", T0 + 500, 1_000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .lease_acquire("import", "b", T0 + 1_499, 1_000)
                .await
                .unwrap()
        );
        assert!(
            store
                .lease_acquire("import", "b", T0 + 1_500, 1_000)
                .await
                .unwrap()
        );
        store.lease_release("import", "a").await.unwrap();
        assert!(
            !store
                .lease_acquire("import", "a", T0 + 1_600, 1_000)
                .await
                .unwrap()
        );
        store.lease_release("import", "b").await.unwrap();
        assert!(
            store
                .lease_acquire("import", "a", T0 + 1_600, 1_000)
                .await
                .unwrap()
        );

        let h = store
            .hold_deletion(EntityKind::User, "u1", Origin::DingTalk, "12% of users", T0)
            .await
            .unwrap();
        let h2 = store
            .hold_deletion(EntityKind::User, "u2", Origin::DingTalk, "12% of users", T0)
            .await
            .unwrap();
        assert_eq!(
            store
                .held_deletions(Some(HoldState::Held))
                .await
                .unwrap()
                .len(),
            2
        );
        let resolved = store
            .resolve_held_deletion(h, true, "admin", T0 + 1)
            .await
            .unwrap();
        assert_eq!(resolved.state, HoldState::Approved);
        assert_eq!(resolved.resolved_by.as_deref(), Some("admin"));
        store
            .resolve_held_deletion(h2, false, "admin", T0 + 1)
            .await
            .unwrap();
        assert!(matches!(
            store.resolve_held_deletion(h, false, "admin", T0 + 2).await,
            Err(StoreError::EntryNotFound { .. })
        ));
        assert!(
            store
                .held_deletions(Some(HoldState::Held))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.held_deletions(None).await.unwrap().len(), 2);
    }

    pub async fn batch_import_is_idempotent(store: Store) {
        let ctx = WriteCtx::import("importer", T0);
        let depts: Vec<Department> = std::iter::once(dept(1, "Acme", None))
            .chain((2..=20).map(|i| dept(i, &format!("D{i}"), Some(1))))
            .collect();
        let r = store.import_departments(&ctx, &depts).await.unwrap();
        assert_eq!(r.created, 20);
        let users: Vec<User> = (0..1_000u32)
            .map(|i| {
                let mut u = user(
                    &format!("u{i:04}"),
                    &format!("P{i}"),
                    &[2 + i64::from(i % 19), 1],
                    &mobile(i),
                );
                // Managers that come later in the batch are fine: DingTalk's state is taken
                // as it is.
                u.manager = Some(uid(&format!("u{:04}", (i + 1) % 1000)));
                u.departments[0].title = Some("Engineer".into());
                u
            })
            .collect();
        let r = store.import_users(&ctx, &users[..600]).await.unwrap();
        assert_eq!(r.created, 600);
        let r = store.import_users(&ctx, &users).await.unwrap();
        assert_eq!((r.created, r.unchanged, r.updated), (400, 600, 0));
        let before = fingerprint(&store).await;
        let r = store.import_users(&ctx, &users).await.unwrap();
        assert_eq!(r.unchanged, 1000);
        assert_eq!(fingerprint(&store).await, before);
        let mut changed = users[10].clone();
        changed.name = "Changed".into();
        changed.departments.pop();
        let r = store.import_users(&ctx, &[changed.clone()]).await.unwrap();
        assert_eq!(r.updated, 1);
        let got = store.get_user(&changed.id).await.unwrap().unwrap();
        assert_eq!(got.entity, changed);
        assert_eq!(got.version, 2);
        assert_eq!(
            store
                .get_user(&users[999].id)
                .await
                .unwrap()
                .unwrap()
                .entity,
            users[999]
        );
        // Imported state is the base; nothing is queued; every change is audited.
        assert_eq!(
            store
                .base_get::<User>(EntityKind::User, changed.id.as_str())
                .await
                .unwrap(),
            Some(changed)
        );
        assert!(store.outbox_list(None, None, 10).await.unwrap().is_empty());
        assert_eq!(store.latest_seq().await.unwrap(), 20 + 1000 + 1);
        assert_eq!(store.counts().await.unwrap(), (20, 1000));
        // A batch that must be pushed goes through the checked path, in one transaction:
        // one bad user refuses the whole batch.
        let push = WriteCtx::oa("bulk", T0);
        let ok = user("new1", "N", &[2], &mobile(5000));
        let bad = user("new2", "N", &[999], &mobile(5001));
        refused!(
            store,
            store.import_users(&push, &[ok, bad]),
            StoreError::UnknownDepartment { .. }
        );
    }

    pub async fn allocated_ids_never_collide(store: Store) {
        small_tree(&store).await;
        let first = store
            .allocate_ids(EntityKind::Department, 10)
            .await
            .unwrap();
        assert_eq!(first, 4);
        let next = store.allocate_ids(EntityKind::Department, 1).await.unwrap();
        assert_eq!(next, 14);
        store
            .create_department(&oa(), dept(100, "High", Some(1)))
            .await
            .unwrap();
        assert_eq!(
            store.allocate_ids(EntityKind::Department, 1).await.unwrap(),
            101
        );
        assert_eq!(store.allocate_ids(EntityKind::Role, 1).await.unwrap(), 1);
        assert!(store.allocate_ids(EntityKind::User, 1).await.is_err());
    }

    pub async fn merge_conflicts_are_recorded(store: Store) {
        use directory_model::{DeptField, MergePolicy, merge};
        let base = dept(2, "Base", Some(1));
        let mut ours = base.clone();
        ours.name = "OA name".into();
        let mut theirs = base.clone();
        theirs.name = "DingTalk name".into();
        theirs.hide = true;
        let merged = merge(&base, &ours, &theirs, &MergePolicy::default());
        assert_eq!(merged.conflicts.len(), 1);
        store
            .record_conflicts(EntityKind::Department, "2", &merged.conflicts, T0)
            .await
            .unwrap();
        store
            .record_conflicts::<DeptField>(EntityKind::Department, "2", &[], T0)
            .await
            .unwrap();
        let got = store.conflicts(None, 10).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field, "name");
        assert_eq!(got[0].base, "Base");
        assert_eq!(got[0].oa, "OA name");
        assert_eq!(got[0].dingtalk, "DingTalk name");
        assert_eq!(got[0].winner, directory_model::Side::Oa);
        assert!(
            store
                .conflicts(Some(got[0].id), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn concurrent_inbox_claims_are_disjoint(store: Store) {
        for i in 0..40 {
            store
                .inbox_put(NewInboxEvent {
                    dedupe_key: format!("e{i}"),
                    event_type: "user_modify_org".into(),
                    payload_json: "{}".into(),
                    received_at_ms: T0,
                })
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .inbox_claim(&format!("w{w}"), T0, 60_000, 3)
                        .await
                        .unwrap();
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(got.into_iter().map(|e| e.id));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an event was claimed twice");
        assert_eq!(n, 40);
        assert_eq!(store.inbox_depth().await.unwrap().claimed, 40);
    }

    /// Not a correctness case: writes a 100,000-person directory in batches and prints timings.
    pub async fn measure_100k_import(store: Store) {
        let ctx = WriteCtx::import("importer", T0);
        let started = std::time::Instant::now();
        let depts: Vec<Department> = std::iter::once(dept(1, "Acme", None))
            .chain((2..=1_000).map(|i| dept(i, &format!("D{i}"), Some(1 + (i - 2) / 10))))
            .collect();
        store.import_departments(&ctx, &depts).await.unwrap();
        let dept_time = started.elapsed();
        let started = std::time::Instant::now();
        let batch = 1_000;
        for b in 0..100u32 {
            let users: Vec<User> = (0..batch)
                .map(|j| {
                    let i = b * batch + j;
                    let mut u = user(
                        &format!("user{i:06}"),
                        &format!("Person {i}"),
                        &[2 + i64::from(i % 999)],
                        &format!("13{i:09}"),
                    );
                    u.job_number = Some(format!("E{i:06}"));
                    u.email = Some(format!("p{i}@acme.cn"));
                    u.departments[0].title = Some("Engineer".into());
                    u
                })
                .collect();
            store.import_users(&ctx, &users).await.unwrap();
        }
        let user_time = started.elapsed();
        assert_eq!(store.counts().await.unwrap(), (1_000, 100_000));
        let started = std::time::Instant::now();
        let page = store
            .list_users(&UserQuery {
                department: Some(OaDeptId(500)),
                ..Default::default()
            })
            .await
            .unwrap();
        let list_time = started.elapsed();
        assert!(!page.items.is_empty());
        println!(
            "[{:?}] 1,000 departments in {:.2?}; 100,000 users in batches of {batch} in {:.2?} \
             ({:.0} users/s); one filtered page in {:.2?}",
            store.backend(),
            dept_time,
            user_time,
            100_000.0 / user_time.as_secs_f64(),
            list_time,
        );
    }
    /// A SCIM user write commits the OA user and its SCIM resource together: when either is
    /// refused, neither is written (no user pushed that the IdP was told failed, no resource
    /// without its user), and a SCIM deletion removes both or neither.
    pub async fn scim_user_and_resource_commit_together(store: Store) {
        use directory_store::{ScimChange, ScimWrite};
        small_tree(&store).await;
        let w = |id: &'static str, name: &'static str| ScimWrite {
            kind: "User",
            id,
            user_name: Some(name),
            external_id: None,
            body_json: "{}",
        };
        let saved = store
            .scim_save(
                &oa(),
                ScimChange::SaveUser(
                    Box::new(user("alice", "Alice", &[2], &mobile(1))),
                    Expect::Absent,
                ),
                w("alice", "Alice@example.com"),
            )
            .await
            .unwrap();
        assert_eq!(saved.rev, 1);
        assert!(store.get_user(&uid("alice")).await.unwrap().is_some());

        // The resource is refused (another resource holds the userName, case-insensitively):
        // the user is not written either.
        refused!(
            store,
            store.scim_save(
                &oa(),
                ScimChange::SaveUser(Box::new(user("bob", "Bob", &[2], &mobile(2))), Expect::Absent),
                w("bob", "ALICE@example.com"),
            ),
            StoreError::DuplicateUserName { ref existing, .. } if existing == "alice"
        );
        assert!(store.get_user(&uid("bob")).await.unwrap().is_none());
        assert!(store.scim_get("User", "bob").await.unwrap().is_none());

        // The user is refused (alice's mobile): the resource is not written either.
        refused!(
            store,
            store.scim_save(
                &oa(),
                ScimChange::SaveUser(
                    Box::new(user("bob", "Bob", &[2], &mobile(1))),
                    Expect::Absent
                ),
                w("bob", "bob@example.com"),
            ),
            StoreError::DuplicateMobile { .. }
        );
        assert!(store.scim_get("User", "bob").await.unwrap().is_none());
        assert_eq!(
            store
                .scim_id_by_user_name("User", "bob@example.com")
                .await
                .unwrap(),
            None
        );

        // A deletion refused by the directory (alice manages carol) keeps the resource.
        let mut carol = user("carol", "Carol", &[2], &mobile(3));
        carol.manager = Some(uid("alice"));
        store.create_user(&oa(), carol).await.unwrap();
        refused!(
            store,
            store.scim_remove(&oa(), ScimChange::DeleteUser(uid("alice")), "User", "alice"),
            StoreError::UserIsManager { .. }
        );
        assert!(store.scim_get("User", "alice").await.unwrap().is_some());
        // Deactivation as deletion keeps the resource but removes the user, together.
        store.delete_user(&oa(), &uid("carol"), None).await.unwrap();
        let kept = store
            .scim_save(
                &oa(),
                ScimChange::DeleteUser(uid("alice")),
                w("alice", "alice@example.com"),
            )
            .await
            .unwrap();
        assert_eq!(kept.rev, 2);
        assert!(store.get_user(&uid("alice")).await.unwrap().is_none());
        // Removing a resource whose user is already gone succeeds.
        store
            .scim_remove(&oa(), ScimChange::DeleteUser(uid("alice")), "User", "alice")
            .await
            .unwrap();
        assert!(store.scim_get("User", "alice").await.unwrap().is_none());
    }

    /// The console's reads: the search answers from indexed lookups (name prefix,
    /// case-insensitive for ASCII; exact id, mobile, job number, email), pages by id, and the
    /// waiting state of just the objects asked about; ambiguous soft matches wait until
    /// decided, and each import replaces the undecided ones.
    pub async fn console_search_pages_and_waiting(store: Store) {
        store
            .create_department(&oa(), dept(1, "HQ", None))
            .await
            .unwrap();
        store
            .create_department(&oa(), dept(2, "Sales", Some(1)))
            .await
            .unwrap();
        let mut zhang = user("u1", "Zhang San", &[1], &mobile(1));
        zhang.job_number = Some("J1".into());
        zhang.email = Some("zhang@acme.cn".into());
        for u in [
            zhang,
            user("u2", "zhang Wei", &[1], &mobile(2)),
            user("u3", "Wang Fang", &[2], &mobile(3)),
            user("u4", "王芳", &[2], &mobile(4)),
            user("u5", "王小明", &[1], &mobile(5)),
        ] {
            store.create_user(&oa(), u).await.unwrap();
        }
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let search = |q: &'static str, d: Option<i64>| {
            let store = store.clone();
            async move { store.console_user_ids(q, d, 100).await.unwrap() }
        };
        assert_eq!(search("ZHA", None).await, ids(&["u1", "u2"]));
        assert_eq!(search("王", None).await, ids(&["u4", "u5"]));
        assert_eq!(search("王小", None).await, ids(&["u5"]));
        assert_eq!(search("Fang", None).await, ids(&[]), "a prefix, not a part");
        assert_eq!(search("u3", None).await, ids(&["u3"]));
        assert_eq!(search("J1", None).await, ids(&["u1"]));
        assert_eq!(
            search("Zhang@ACME.cn", None).await,
            ids(&["u1"]),
            "lower-cased too"
        );
        assert_eq!(search("zhang@acme.cn", None).await, ids(&["u1"]));
        let phone = format!("+86-{}", mobile(3));
        assert_eq!(
            store.console_user_ids(&phone, None, 100).await.unwrap(),
            ids(&["u3"])
        );
        assert_eq!(search("zha", Some(2)).await, ids(&[]));
        assert_eq!(search("w", Some(2)).await, ids(&["u3"]));
        assert_eq!(search("", None).await, ids(&[]));

        assert_eq!(
            store.console_user_page_ids(None, 1, 2).await.unwrap(),
            ids(&["u2", "u3"])
        );
        assert_eq!(
            store.console_user_page_ids(Some(2), 0, 10).await.unwrap(),
            ids(&["u3", "u4"])
        );
        assert_eq!(store.console_user_count(None).await.unwrap(), 5);
        assert_eq!(store.console_user_count(Some(2)).await.unwrap(), 2);
        assert_eq!(
            store
                .users_in_department(1, &ids(&["u1", "u3", "u5"]))
                .await
                .unwrap(),
            ids(&["u1", "u5"])
        );
        let found = store
            .users_by_ids(&ids(&["u3", "nobody", "u1"]))
            .await
            .unwrap();
        let names: Vec<&str> = found.iter().map(|u| u.entity.name.as_str()).collect();
        assert_eq!(names, ["Wang Fang", "Zhang San"]);
        assert_eq!(found[1].entity.departments[0].dept, OaDeptId(1));
        let mut briefs = store.department_briefs(&[2, 1, 99]).await.unwrap();
        briefs.sort_by_key(|d| d.id);
        let briefs: Vec<(i64, &str, Option<i64>)> = briefs
            .iter()
            .map(|d| (d.id, d.name.as_str(), d.parent))
            .collect();
        assert_eq!(briefs, vec![(1, "HQ", None), (2, "Sales", Some(1))]);
        // The tree one level at a time, each row counted with one grouped query.
        let (top, n) = store.department_level(None, 0, 10).await.unwrap();
        assert_eq!((top.len(), n, top[0].id), (1, 1, 1));
        let (under, n) = store.department_level(Some(1), 0, 10).await.unwrap();
        assert_eq!((under.len(), n, under[0].name.as_str()), (1, 1, "Sales"));
        assert_eq!(
            store.department_level(Some(1), 1, 10).await.unwrap().0,
            vec![]
        );
        let mut members = store
            .department_member_counts_of(&[1, 2, 99])
            .await
            .unwrap();
        members.sort_unstable();
        assert_eq!(members, vec![(1, 3), (2, 2)]);
        assert_eq!(
            store.department_child_counts_of(&[1, 2]).await.unwrap(),
            vec![(1, 1)]
        );
        assert_eq!(
            store.department_brief(2).await.unwrap().map(|d| d.parent),
            Some(Some(1))
        );

        // Every OA create is queued for DingTalk: pending. A held deletion is listed apart.
        let waiting = store
            .waiting_of(EntityKind::User, &ids(&["u1", "u2", "nobody"]))
            .await
            .unwrap();
        assert!(waiting.contains(&("u1".to_owned(), Waiting::PendingPush)));
        assert!(waiting.iter().all(|(id, _)| id != "nobody"));
        store
            .hold_deletion(EntityKind::User, "u2", Origin::DingTalk, "threshold", T0)
            .await
            .unwrap();
        let waiting = store
            .waiting_of(EntityKind::User, &ids(&["u2"]))
            .await
            .unwrap();
        assert!(waiting.contains(&("u2".to_owned(), Waiting::HeldDeletion)));
        assert_eq!(
            store
                .waiting_ids(EntityKind::User, Waiting::HeldDeletion, 10)
                .await
                .unwrap(),
            ids(&["u2"])
        );
        assert_eq!(
            store
                .waiting_ids(EntityKind::Department, Waiting::PendingPush, 10)
                .await
                .unwrap(),
            ids(&["1", "2"])
        );

        let soft = |d: &str, c: &[&str]| NewSoftMatch {
            ding_userid: d.to_owned(),
            ding_name: format!("name of {d}"),
            key: Some("mobile".to_owned()),
            candidates: ids(c),
        };
        store
            .soft_matches_replace(&[soft("d1", &["u1", "u2"]), soft("d2", &["u3", "u4"])], T0)
            .await
            .unwrap();
        let waiting = store.soft_matches_waiting(10).await.unwrap();
        assert_eq!(waiting.len(), 2);
        assert_eq!(waiting[0].found, soft("d1", &["u1", "u2"]));
        assert!(
            store
                .soft_match_decide(waiting[0].id, "link:u1", "console:olga", T0)
                .await
                .unwrap()
        );
        assert!(
            !store
                .soft_match_decide(waiting[0].id, "create", "console:olga", T0)
                .await
                .unwrap()
        );
        // The next import found d2 and d3 ambiguous: d2 stays, d3 joins, d1 stays decided.
        store
            .soft_matches_replace(
                &[soft("d2", &["u3", "u4"]), soft("d3", &["u5", "u1"])],
                T0 + 1,
            )
            .await
            .unwrap();
        let now: Vec<String> = store
            .soft_matches_waiting(10)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.found.ding_userid)
            .collect();
        assert_eq!(now, ids(&["d2", "d3"]));
        assert_eq!(store.soft_matches_waiting_count().await.unwrap(), 2);
        let first = store.soft_match_get(waiting[0].id).await.unwrap().unwrap();
        assert_eq!(first.decision.as_deref(), Some("link:u1"));
        assert_eq!(first.decided_by.as_deref(), Some("console:olga"));
    }

    /// Deletions SCIM held: approving one applies the OA side's deletion (or leave) in the
    /// approving transaction, with its outbox entry; rejecting one gives SCIM its resource
    /// back (a held `DELETE`) or makes it active again (a held deactivation). A refused
    /// approval (the user manages someone) stays held and changes nothing.
    pub async fn scim_holds_apply_when_approved_and_restore_when_rejected(store: Store) {
        use directory_store::{HoldState, Origin, ScimChange, ScimLeave, ScimWrite};
        small_tree(&store).await;
        for (n, id) in ["ann", "ben", "cat", "dan"].into_iter().enumerate() {
            let body = format!(r#"{{"userName":"{id}@x","active":true}}"#);
            store
                .scim_save(
                    &oa(),
                    ScimChange::SaveUser(
                        Box::new(user(id, id, &[2], &mobile(n as u32 + 1))),
                        Expect::Absent,
                    ),
                    ScimWrite {
                        kind: "User",
                        id,
                        user_name: Some(&format!("{id}@x")),
                        external_id: Some("ext"),
                        body_json: &body,
                    },
                )
                .await
                .unwrap();
        }
        let hold = |id: &str, leave| ScimChange::HoldUserDeletion {
            id: uid(id),
            reason: format!("{} test", directory_store::SCIM_HOLD_REASON),
            leave,
        };
        let inactive = |id: &'static str| ScimWrite {
            kind: "User",
            id,
            user_name: None,
            external_id: None,
            body_json: r#"{"active":false}"#,
        };
        // ann and ben deactivated (delete / left), cat deleted, dan deactivated then deleted.
        store
            .scim_save(&oa(), hold("ann", ScimLeave::Delete), inactive("ann"))
            .await
            .unwrap();
        store
            .scim_save(&oa(), hold("ben", ScimLeave::Left), inactive("ben"))
            .await
            .unwrap();
        store
            .scim_remove(&oa(), hold("cat", ScimLeave::Delete), "User", "cat")
            .await
            .unwrap();
        store
            .scim_save(&oa(), hold("dan", ScimLeave::Left), inactive("dan"))
            .await
            .unwrap();
        store
            .scim_remove(&oa(), hold("dan", ScimLeave::Delete), "User", "dan")
            .await
            .unwrap();
        let held = store.held_deletions(Some(HoldState::Held)).await.unwrap();
        assert_eq!(held.len(), 4, "one hold each, dan's not twice: {held:?}");
        assert!(held.iter().all(|h| h.origin == Origin::Oa));
        assert_eq!(store.scim_user_departures_since(0).await.unwrap().held, 4);
        let of = |id: &str| held.iter().find(|h| h.oa_id == id).unwrap().id;
        for id in ["ann", "ben", "cat", "dan"] {
            assert!(
                store.get_user(&uid(id)).await.unwrap().is_some(),
                "{id} stays while held"
            );
        }
        let outbox_before = store.outbox_depth().await.unwrap().pending;

        // Approved: ann deleted, ben left, each with its push queued.
        store
            .resolve_held_deletion(of("ann"), true, "op", 5)
            .await
            .unwrap();
        assert!(store.get_user(&uid("ann")).await.unwrap().is_none());
        store
            .resolve_held_deletion(of("ben"), true, "op", 5)
            .await
            .unwrap();
        let ben = store.get_user(&uid("ben")).await.unwrap().unwrap();
        assert_eq!(ben.entity.state, directory_model::UserState::Left);
        assert!(store.outbox_depth().await.unwrap().pending >= outbox_before + 2);
        // Rejected: cat's resource comes back, dan's DELETE (after a deactivation) too.
        store
            .resolve_held_deletion(of("cat"), false, "op", 6)
            .await
            .unwrap();
        let cat = store
            .scim_get("User", "cat")
            .await
            .unwrap()
            .expect("given back");
        assert!(cat.body_json.contains("cat@x"), "{cat:?}");
        assert_eq!(
            store
                .scim_id_by_user_name("User", "CAT@x")
                .await
                .unwrap()
                .as_deref(),
            Some("cat")
        );
        store
            .resolve_held_deletion(of("dan"), false, "op", 6)
            .await
            .unwrap();
        assert!(store.scim_get("User", "dan").await.unwrap().is_some());
        assert!(store.get_user(&uid("cat")).await.unwrap().is_some());
        assert!(
            store
                .held_deletions(Some(HoldState::Held))
                .await
                .unwrap()
                .is_empty()
        );

        // A held deactivation rejected: the resource is active again, as a new revision.
        store
            .scim_save(&oa(), hold("cat", ScimLeave::Delete), inactive("cat"))
            .await
            .unwrap();
        let before = store.scim_get("User", "cat").await.unwrap().unwrap();
        let h = store.held_deletions(Some(HoldState::Held)).await.unwrap()[0].id;
        store
            .resolve_held_deletion(h, false, "op", 7)
            .await
            .unwrap();
        let after = store.scim_get("User", "cat").await.unwrap().unwrap();
        assert_eq!(after.rev, before.rev + 1);
        let body: serde_json::Value = serde_json::from_str(&after.body_json).unwrap();
        assert_eq!(body["active"], serde_json::json!(true));

        // An approval the directory refuses stays held and changes nothing.
        let mut eve = user("eve", "Eve", &[2], &mobile(9));
        eve.manager = Some(uid("cat"));
        store.create_user(&oa(), eve).await.unwrap();
        store
            .scim_save(&oa(), hold("cat", ScimLeave::Delete), inactive("cat"))
            .await
            .unwrap();
        let h = store.held_deletions(Some(HoldState::Held)).await.unwrap()[0].id;
        refused!(
            store,
            store.resolve_held_deletion(h, true, "op", 8),
            StoreError::UserIsManager { .. }
        );
        assert_eq!(
            store
                .held_deletions(Some(HoldState::Held))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.get_user(&uid("cat")).await.unwrap().is_some());
    }
}

conformance!(
    console_search_pages_and_waiting,
    scim_holds_apply_when_approved_and_restore_when_rejected,
    scim_user_and_resource_commit_together,
    department_crud_versions_and_noop,
    an_oa_update_keeps_dingsyncs_own_marker,
    department_refusals_change_nothing,
    cascade_delete_moves_members_and_orders_the_outbox,
    user_refusals_change_nothing,
    user_round_trips_every_field,
    roles_groups_and_assignments,
    one_transaction_per_write,
    a_failing_outbox_rolls_back_the_write,
    inbox_dedupes_claims_and_dead_letters,
    expired_leases_are_taken_over,
    a_restarted_worker_releases_its_own_claims,
    a_queued_deletion_is_seen_until_it_is_pushed,
    outbox_claims_in_dependency_order,
    outbox_retries_and_dead_letters,
    concurrent_claims_are_disjoint,
    listing_pages_and_filters,
    change_feed_is_ordered_and_resumable,
    dingtalk_deletions_clear_references,
    id_map_both_directions,
    bookkeeping_state_checkpoints_leases_holds,
    batch_import_is_idempotent,
    allocated_ids_never_collide,
    merge_conflicts_are_recorded,
    concurrent_inbox_claims_are_disjoint,
);

/// SQLite runs in WAL mode (readers are not blocked by the writer) with foreign keys on.
#[tokio::test]
async fn sqlite_uses_wal() {
    use sqlx::{Connection, Row};
    let db = support::sqlite().await;
    let url = db.store.url().expose().to_owned();
    // A write makes sure a pooled connection has run its setup.
    db.store.state_set("k", "v", 1).await.unwrap();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mode: String = row.try_get(0).unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    conn.close().await.unwrap();
    db.run(|_| async {}).await;
}

/// A password in the URL never shows in `Debug`/`Display` of the store (the test server trusts
/// every connection, so any password is accepted and must still be hidden).
#[tokio::test]
async fn store_debug_hides_the_password() {
    let Some(db) = support::postgres().await else {
        return;
    };
    let url = db
        .store
        .url()
        .expose()
        .replacen("postgres@", "postgres:s3cr3t-pw@", 1);
    let parsed = directory_store::DatabaseUrl::parse(url).unwrap();
    let store = directory_store::Store::connect_with(&parsed, Default::default())
        .await
        .unwrap();
    let shown = format!("{store:?} {} {:?}", store.url(), store.url());
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
    store.close().await;
    db.run(|_| async {}).await;
}

/// The 100k measurement, on both backends; run with `--ignored --nocapture`.
mod measure {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: cargo test -p directory-store --test it conformance:: -- --ignored --nocapture"]
    async fn sqlite_100k() {
        crate::support::sqlite()
            .await
            .run(super::cases::measure_100k_import)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: cargo test -p directory-store --test it conformance:: -- --ignored --nocapture"]
    async fn postgres_100k() {
        if let Some(db) = crate::support::postgres().await {
            db.run(super::cases::measure_100k_import).await;
        }
    }
}
