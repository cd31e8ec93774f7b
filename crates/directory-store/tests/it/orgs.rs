//! Several DingTalk organizations in one store (issue 20), on SQLite and PostgreSQL: what a
//! handle scoped with `Store::for_org` sees and writes, and which org an OA change is queued for
//! (`src/outbox/route.rs`).

// An unwrap failing here is a failing test, as intended.
#![allow(clippy::unwrap_used)]

use directory_model::{
    Department, DingDeptId, DingUserId, OaDeptId, OaRoleGroupId, OaUserId, RoleGroup, User,
};
use directory_store::{Expect, InboxPut, NewInboxEvent, Store, WriteCtx};

/// An OA write (validation off: the test is about routing, not the rules).
fn oa() -> WriteCtx {
    WriteCtx::oa("test", 1_700_000_000_000).with_check_rules(false)
}

/// The orgs each queued entry of `oa_id` is for, in queue order, from every org's view.
async fn queued_for(store: &Store, oa_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for org in ["default", "a", "b"] {
        for e in store
            .for_org(org)
            .outbox_list(None, None, 1000)
            .await
            .unwrap()
        {
            if e.oa_id == oa_id {
                found.push((e.id, org.to_owned()));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, o)| o).collect()
}

/// Two orgs: `a` rooted at OA department 1 (child 3), `b` at 2 (child 4).
async fn two_orgs(store: &Store) {
    for (id, parent) in [(1, None), (2, None), (3, Some(1)), (4, Some(2))] {
        store
            .create_department(
                &oa(),
                Department::new(OaDeptId(id), format!("d{id}"), parent.map(OaDeptId)),
            )
            .await
            .unwrap();
    }
    store
        .for_org("a")
        .id_map_put(&OaDeptId(1), &DingDeptId::ROOT)
        .await
        .unwrap();
    store
        .for_org("b")
        .id_map_put(&OaDeptId(2), &DingDeptId::ROOT)
        .await
        .unwrap();
}

pub async fn oa_changes_go_to_the_org_whose_tree_holds_them(store: Store) {
    // Before any org links its root, everything is the writer's (single-org behaviour).
    store
        .create_department(&oa(), Department::new(OaDeptId(9), "early", None))
        .await
        .unwrap();
    assert_eq!(queued_for(&store, "9").await, vec!["default"]);
    two_orgs(&store).await;
    store
        .create_department(&oa(), Department::new(OaDeptId(5), "d5", Some(OaDeptId(4))))
        .await
        .unwrap();
    assert_eq!(
        queued_for(&store, "5").await,
        vec!["b"],
        "a department of b's tree"
    );
    let u = OaUserId::new("u1");
    let saved = store
        .create_user(&oa(), User::new(u.clone(), "U", &[OaDeptId(3)]))
        .await
        .unwrap();
    assert_eq!(queued_for(&store, "u1").await, vec!["a"]);
    // In both orgs' trees: pushed to both.
    let both = store
        .save_user(
            &oa(),
            User::new(u.clone(), "U", &[OaDeptId(3), OaDeptId(5)]),
            Expect::Version(saved.value.version),
        )
        .await
        .unwrap();
    assert_eq!(queued_for(&store, "u1").await, vec!["a", "a", "b"]);
    // Leaving a's tree reaches a (which removes them) and b.
    store
        .save_user(
            &oa(),
            User::new(u.clone(), "U", &[OaDeptId(5)]),
            Expect::Version(both.value.version),
        )
        .await
        .unwrap();
    assert_eq!(
        queued_for(&store, "u1").await,
        vec!["a", "a", "b", "a", "b"]
    );
    // Roles are every corp's.
    store
        .save_role_group(
            &oa(),
            RoleGroup {
                id: OaRoleGroupId(1),
                name: "g".to_owned(),
            },
            Expect::Absent,
        )
        .await
        .unwrap();
    assert_eq!(
        queued_for(&store, "1").await.len(),
        3,
        "dept 1 (none) + group for a and b"
    );
    // Each org's pusher claims its own entries only, never waiting on another org's.
    let a = store
        .for_org("a")
        .outbox_claim("pusher", 1_700_000_100_000, 60_000, 100)
        .await
        .unwrap();
    assert!(!a.is_empty());
    let a_ids: Vec<i64> = a.iter().map(|e| e.id).collect();
    for e in store
        .for_org("b")
        .outbox_list(None, None, 100)
        .await
        .unwrap()
    {
        assert!(!a_ids.contains(&e.id));
    }
    let b = store.for_org("b");
    let first = b
        .outbox_claim_ready("pusher", 1_700_000_100_000, 60_000, 100)
        .await
        .unwrap();
    assert!(first.iter().any(|e| e.oa_id == "5"), "{first:?}");
    assert!(
        !first.iter().any(|e| e.oa_id == "u1"),
        "behind b's department 5"
    );
    let ids: Vec<i64> = first.iter().map(|e| e.id).collect();
    b.outbox_done_many(&ids, "pusher", 1_700_000_100_001)
        .await
        .unwrap();
    let next = b
        .outbox_claim_ready("pusher", 1_700_000_100_002, 60_000, 100)
        .await
        .unwrap();
    assert_eq!(
        next.iter().filter(|e| e.oa_id == "u1").count(),
        1,
        "b's first u1 entry goes while a still holds its own: {next:?}"
    );
}

pub async fn each_org_keeps_its_own_bookkeeping(store: Store) {
    let (a, b) = (store.for_org("a"), store.for_org("b"));
    // The same DingTalk id in two corps is two entities.
    a.id_map_put(&OaUserId::new("x"), &DingUserId::new("007"))
        .await
        .unwrap();
    b.id_map_put(&OaUserId::new("y"), &DingUserId::new("007"))
        .await
        .unwrap();
    assert_eq!(
        a.oa_id_of::<OaUserId>(&DingUserId::new("007"))
            .await
            .unwrap(),
        Some(OaUserId::new("x"))
    );
    assert_eq!(
        b.oa_id_of::<OaUserId>(&DingUserId::new("007"))
            .await
            .unwrap(),
        Some(OaUserId::new("y"))
    );
    assert_eq!(
        store
            .oa_id_of::<OaUserId>(&DingUserId::new("007"))
            .await
            .unwrap(),
        None
    );
    // Events deduplicate within an org.
    let event = || NewInboxEvent {
        dedupe_key: "e1".to_owned(),
        event_type: "user_add_org".to_owned(),
        payload_json: "{}".to_owned(),
        received_at_ms: 1,
    };
    assert!(matches!(
        a.inbox_put(event()).await.unwrap(),
        InboxPut::Stored(_)
    ));
    assert!(matches!(
        b.inbox_put(event()).await.unwrap(),
        InboxPut::Stored(_)
    ));
    assert_eq!(a.inbox_put(event()).await.unwrap(), InboxPut::Duplicate);
    assert_eq!(a.inbox_claim("w", 10, 1000, 10).await.unwrap().len(), 1);
    assert_eq!(
        b.inbox_depth().await.unwrap().pending,
        1,
        "a's claim left b's event alone"
    );
    // Leases, checkpoints and state are per org.
    assert!(a.lease_acquire("import", "h1", 0, 60_000).await.unwrap());
    assert!(b.lease_acquire("import", "h2", 0, 60_000).await.unwrap());
    assert!(
        !store
            .for_org("a")
            .lease_acquire("import", "h3", 0, 60_000)
            .await
            .unwrap()
    );
    a.checkpoint_set("import", "{\"a\":1}", 1).await.unwrap();
    assert_eq!(b.checkpoint_get("import").await.unwrap(), None);
    a.state_set("k", "va", 1).await.unwrap();
    b.state_set("k", "vb", 1).await.unwrap();
    assert_eq!(a.state_get("k").await.unwrap().as_deref(), Some("va"));
    assert_eq!(store.state_get("k").await.unwrap(), None);
}

mod cases {
    pub use super::{
        each_org_keeps_its_own_bookkeeping, oa_changes_go_to_the_org_whose_tree_holds_them,
    };
}

conformance!(
    oa_changes_go_to_the_org_whose_tree_holds_them,
    each_org_keeps_its_own_bookkeeping,
);
