//! `Store::outbox_claim_ready` (the pusher's claim, in `directory-store/src/engine_support.rs`)
//! hands out exactly what the store's reference `outbox_claim` hands out, round by round, on the
//! same queue: parents before children, departments before members, one entity's changes in
//! order, a retried entry blocking its dependents — and nothing else blocked.

#![allow(clippy::unwrap_used)]

use directory_model::{
    Department, Mobile, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup, User,
};
use directory_store::{DatabaseUrl, Expect, Store, WriteCtx};

const T: i64 = 1_000;

async fn store(dir: &tempfile::TempDir, name: &str) -> Store {
    let url = DatabaseUrl::sqlite_file(&dir.path().join(name));
    Store::connect_with(&url, Default::default()).await.unwrap()
}

fn user(id: &str, dept: i64, mobile: &str) -> User {
    let mut u = User::new(OaUserId::new(id), id, &[OaDeptId(dept)]);
    u.mobile = Some(Mobile::mainland(mobile));
    u
}

/// The same OA history in any store.
async fn history(s: &Store) {
    let oa = WriteCtx::oa("t", T);
    let import = WriteCtx::import("t", T);
    s.create_department(&import, Department::new(OaDeptId(1), "Root", None))
        .await
        .unwrap();
    for (id, parent) in [(10, 1), (11, 10), (12, 1), (13, 11)] {
        s.create_department(
            &oa,
            Department::new(OaDeptId(id), format!("D{id}"), Some(OaDeptId(parent))),
        )
        .await
        .unwrap();
    }
    s.create_user(&oa, user("a", 11, "13000000001"))
        .await
        .unwrap();
    s.create_user(&oa, user("b", 10, "13000000002"))
        .await
        .unwrap();
    s.create_user(&oa, user("c", 12, "13000000003"))
        .await
        .unwrap();
    let mut a = user("a", 11, "13000000001");
    a.name = "A two".into();
    s.update_user(&oa, a.clone(), None).await.unwrap();
    a.name = "A three".into();
    s.update_user(&oa, a, None).await.unwrap();
    s.save_role_group(
        &oa,
        RoleGroup {
            id: OaRoleGroupId(1),
            name: "G".into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.save_role(
        &oa,
        Role {
            id: OaRoleId(1),
            group: OaRoleGroupId(1),
            name: "R".into(),
        },
        Expect::Absent,
    )
    .await
    .unwrap();
    s.assign_role(&oa, &OaUserId::new("a"), OaRoleId(1))
        .await
        .unwrap();
    for i in 0..6 {
        s.create_user(&oa, user(&format!("m{i}"), 13, &format!("1310000000{i}")))
            .await
            .unwrap();
    }
}

/// Claims rounds of at most `limit` with one of the two claims; the first claimed entry of
/// kind user is put back for later (a retry) once, to check that it keeps blocking.
async fn rounds(s: &Store, fast: bool, limit: u32) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut retried = false;
    let mut now = T;
    for _ in 0..100 {
        let batch = if fast {
            s.outbox_claim_ready("w", now, 60_000, limit).await.unwrap()
        } else {
            s.outbox_claim("w", now, 60_000, limit).await.unwrap()
        };
        if batch.is_empty() {
            if now > T {
                break;
            }
            now += 1_000_000;
            continue;
        }
        out.push(
            batch
                .iter()
                .map(|e| format!("{}:{}:{}", e.kind, e.oa_id, e.op.as_str()))
                .collect(),
        );
        for e in batch {
            if !retried && e.kind == directory_store::EntityKind::User {
                retried = true;
                s.outbox_retry_later(e.id, "w", T + 500_000, "later", now)
                    .await
                    .unwrap();
            } else {
                s.outbox_done(e.id, "w", now).await.unwrap();
            }
        }
    }
    out
}

#[tokio::test]
async fn fast_claim_matches_the_reference_claim_round_by_round() {
    let dir = tempfile::tempdir().unwrap();
    for limit in [1, 3, 64] {
        let reference = store(&dir, &format!("ref{limit}.db")).await;
        let fast = store(&dir, &format!("fast{limit}.db")).await;
        history(&reference).await;
        history(&fast).await;
        let want = rounds(&reference, false, limit).await;
        let got = rounds(&fast, true, limit).await;
        assert_eq!(got, want, "limit {limit}");
        let total: usize = got.iter().map(Vec::len).sum();
        assert!(total >= 18, "every entry was claimed ({total})");
        // The retried user entry blocked its later updates: they come in a later round.
        let flat: Vec<&String> = got.iter().flatten().collect();
        let first_a = flat.iter().position(|e| e.starts_with("user:a:")).unwrap();
        assert!(flat[first_a + 1..].iter().any(|e| e.starts_with("user:a:")));
    }
}
