//! Upgrade without loss (issue 20): a database written by the release before organizations
//! existed (migrations 0001–0007, one DingTalk org) is opened by this release, which migrates it
//! in place (0008); every row of every table 0008 touches is still there, column for column,
//! now under org `default`, and the store reads it as before. On SQLite (whose tables are
//! rebuilt) and on PostgreSQL (altered in place).

// An unwrap failing here is a failing test, as intended.
#![allow(clippy::unwrap_used)]

use directory_model::{DingUserId, OaDeptId, OaUserId};
use directory_store::{
    DEFAULT_ORG, DatabaseUrl, EntityKind, HoldState, InboxPut, NewInboxEvent, QueueState, Store,
    StoreOptions,
};
use sqlx::{AnyPool, Row};

/// The last migration of the release before organizations.
const BEFORE_ORGS: i64 = 7;

/// Each table 0008 changes, with its columns before 0008 and the key that orders its rows.
const TABLES: &[(&str, &str, &str)] = &[
    ("id_map", "kind, oa_id, ding_id", "kind, oa_id"),
    (
        "base_snapshots",
        "kind, oa_id, body_json, synced_at_ms",
        "kind, oa_id",
    ),
    (
        "inbox",
        "id, dedupe_key, event_type, payload_json, received_at_ms, state, attempts, \
         next_attempt_at_ms, claimed_by, claimed_until_ms, last_error, updated_at_ms",
        "id",
    ),
    (
        "outbox",
        "id, kind, oa_id, op, payload_json, audit_seq, state, attempts, next_attempt_at_ms, \
         claimed_by, claimed_until_ms, last_error, created_at_ms, updated_at_ms",
        "id",
    ),
    (
        "outbox_keys",
        "entry_id, dep_key, writes",
        "entry_id, dep_key",
    ),
    (
        "held_deletions",
        "id, kind, oa_id, origin, reason, state, created_at_ms, resolved_at_ms, resolved_by",
        "id",
    ),
    (
        "conflicts",
        "id, kind, oa_id, field, base_json, oa_json, dingtalk_json, winner, at_ms, decided_by, \
         decided_at_ms",
        "id",
    ),
    (
        "import_checkpoints",
        "name, cursor_json, updated_at_ms",
        "name",
    ),
    ("sync_state", "key, value, updated_at_ms", "key"),
    ("leases", "name, holder, until_ms", "name"),
    (
        "soft_matches",
        "id, ding_userid, ding_name, match_key, candidates_json, seen_at_ms, decision, \
         decided_by, decided_at_ms",
        "id",
    ),
    (
        "runs",
        "id, kind, started_by, started_at_ms, finished_at_ms, outcome, failure, summary_json, \
         log_json",
        "id",
    ),
];

/// The tables that gain an `org` column (leases, checkpoints and sync state scope by name).
const WITH_ORG: &[&str] = &[
    "id_map",
    "base_snapshots",
    "inbox",
    "outbox",
    "held_deletions",
    "conflicts",
    "soft_matches",
    "runs",
];

/// What the single-org release wrote: a row in every table, in the states it uses.
const OLD_ROWS: &[&str] = &[
    "INSERT INTO id_map (kind, oa_id, ding_id) VALUES ('department', '1', '1'), \
     ('department', '7', '4711'), ('user', 'alice', 'alice'), ('role', '3', '90001')",
    "INSERT INTO base_snapshots (kind, oa_id, body_json, synced_at_ms) VALUES \
     ('department', '7', '{\"id\":7,\"name\":\"Sales\"}', 1700000000001), \
     ('user', 'alice', '{\"id\":\"alice\",\"name\":\"Alice\"}', 1700000000002)",
    "INSERT INTO inbox (dedupe_key, event_type, payload_json, received_at_ms, state, attempts, \
     next_attempt_at_ms, claimed_by, claimed_until_ms, last_error, updated_at_ms) VALUES \
     ('ev-1', 'user_modify_org', '{\"UserId\":[\"alice\"]}', 1700000000100, 'pending', 0, \
      1700000000100, NULL, NULL, NULL, 1700000000100), \
     ('ev-2', 'org_dept_create', '{\"DeptId\":[4711]}', 1700000000200, 'dead', 5, \
      1700000000200, NULL, NULL, 'errcode 60003: department not found', 1700000000300), \
     ('ev-3', 'user_add_org', '{\"UserId\":[\"bob\"]}', 1700000000300, 'done', 1, \
      1700000000300, NULL, NULL, NULL, 1700000000400)",
    // A purged event: the next id must still be past it after the upgrade.
    "DELETE FROM inbox WHERE dedupe_key = 'ev-3'",
    "INSERT INTO outbox (kind, oa_id, op, payload_json, audit_seq, state, attempts, \
     next_attempt_at_ms, claimed_by, claimed_until_ms, last_error, created_at_ms, updated_at_ms) \
     VALUES ('user', 'carol', 'create', '{\"id\":\"carol\"}', 11, 'pending', 0, 1700000000500, \
      NULL, NULL, NULL, 1700000000500, 1700000000500), \
     ('department', '8', 'update', '{\"id\":8}', 12, 'dead', 3, 1700000000600, NULL, NULL, \
      'errcode 60008: name clash', 1700000000600, 1700000000700), \
     ('department', '9', 'create', '{\"id\":9}', 13, 'claimed', 1, 1700000000800, 'pusher-1', \
      1700000060800, NULL, 1700000000800, 1700000000800)",
    "INSERT INTO outbox_keys (entry_id, dep_key, writes) VALUES (1, 'user:carol', 1), \
     (1, 'department:7', 0), (2, 'department:8', 1), (3, 'department:9', 1)",
    "INSERT INTO held_deletions (kind, oa_id, origin, reason, state, created_at_ms, \
     resolved_at_ms, resolved_by) VALUES \
     ('user', 'dave', 'dingtalk', 'over the deletion threshold', 'held', 1700000001000, NULL, NULL), \
     ('department', '5', 'import', 'over the deletion threshold', 'approved', 1700000001100, \
      1700000001200, 'ops')",
    "INSERT INTO conflicts (kind, oa_id, field, base_json, oa_json, dingtalk_json, winner, \
     at_ms, decided_by, decided_at_ms) VALUES \
     ('user', 'alice', 'mobile', '\"1\"', '\"2\"', '\"3\"', 'oa', 1700000002000, NULL, NULL), \
     ('user', 'alice', 'email', '\"a\"', '\"b\"', '\"c\"', 'oa', 1700000002100, 'ops', 1700000002200)",
    "INSERT INTO import_checkpoints (name, cursor_json, updated_at_ms) VALUES \
     ('import', '{\"phase\":\"users\",\"after\":4711}', 1700000003000)",
    "INSERT INTO sync_state (key, value, updated_at_ms) VALUES \
     ('console.session_key', 'c2VjcmV0LXNlc3Npb24ta2V5', 1700000004000), \
     ('last_reconcile_ms', '1700000004100', 1700000004100)",
    "INSERT INTO leases (name, holder, until_ms) VALUES ('import', 'host-a:123', 1700000005000)",
    "INSERT INTO soft_matches (ding_userid, ding_name, match_key, candidates_json, seen_at_ms, \
     decision, decided_by, decided_at_ms) VALUES \
     ('erin', 'Erin', 'mobile', '[\"erin1\",\"erin2\"]', 1700000006000, NULL, NULL, NULL), \
     ('frank', 'Frank', 'email', '[\"frank\"]', 1700000006100, 'link', 'ops', 1700000006200)",
    "INSERT INTO runs (kind, started_by, started_at_ms, finished_at_ms, outcome, failure, \
     summary_json, log_json) VALUES ('import', 'cli', 1700000007000, 1700000008000, 'ok', NULL, \
     '{\"users\":3}', '[\"started\",\"done\"]')",
];

/// Every row of `table` (columns `cols` as text, ordered by `key`).
async fn rows(pool: &AnyPool, table: &str, cols: &str, key: &str) -> Vec<Vec<Option<String>>> {
    let select = cols
        .split(',')
        .map(|c| format!("CAST({} AS TEXT) AS {}", c.trim(), c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let n = cols.split(',').count();
    sqlx::query(&format!("SELECT {select} FROM {table} ORDER BY {key}"))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("read {table}: {e}"))
        .iter()
        .map(|r| {
            (0..n)
                .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                .collect()
        })
        .collect()
}

/// Builds the old database at `url`, upgrades it, and checks it row by row.
async fn upgrade_keeps_every_row(url: DatabaseUrl) {
    let old = Store::connect_at_version(&url, BEFORE_ORGS).await.unwrap();
    let pool = AnyPool::connect(url.expose()).await.unwrap();
    for statement in OLD_ROWS {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let mut before = Vec::new();
    for (table, cols, key) in TABLES {
        let found = rows(&pool, table, cols, key).await;
        assert!(!found.is_empty(), "the old database has rows in {table}");
        before.push(found);
    }
    old.close().await;

    // The new release opens it.
    let store = Store::connect_with(&url, StoreOptions::default())
        .await
        .unwrap();
    for ((table, cols, key), old_rows) in TABLES.iter().zip(&before) {
        assert_eq!(
            &rows(&pool, table, cols, key).await,
            old_rows,
            "{table} after the upgrade"
        );
    }
    for table in WITH_ORG {
        let orgs = rows(&pool, table, "org", "org").await;
        assert!(!orgs.is_empty());
        assert!(
            orgs.iter().all(|o| o[0].as_deref() == Some(DEFAULT_ORG)),
            "{table}: every old row belongs to org default: {orgs:?}"
        );
    }

    // The store reads it as the default org, as the old release did.
    assert_eq!(store.org(), DEFAULT_ORG);
    assert_eq!(
        store.ding_id_of(&OaUserId::new("alice")).await.unwrap(),
        Some(DingUserId::new("alice"))
    );
    assert_eq!(
        store
            .oa_id_of::<OaDeptId>(&directory_model::DingDeptId(4711))
            .await
            .unwrap(),
        Some(OaDeptId(7))
    );
    let base: serde_json::Value = store
        .base_get(EntityKind::Department, "7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(base["name"], "Sales");
    let inbox = store.inbox_list(None, None, 10).await.unwrap();
    assert_eq!(
        inbox.iter().map(|e| (e.id, e.state)).collect::<Vec<_>>(),
        vec![(1, QueueState::Pending), (2, QueueState::Dead)]
    );
    let dead = store.outbox_dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("errcode 60008: name clash")
    );
    assert_eq!(store.outbox_depth().await.unwrap().pending, 1);
    let held = store.held_deletions(Some(HoldState::Held)).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].oa_id, "dave");
    assert_eq!(
        store.checkpoint_get("import").await.unwrap().as_deref(),
        Some("{\"phase\":\"users\",\"after\":4711}")
    );
    assert_eq!(
        store
            .state_get("console.session_key")
            .await
            .unwrap()
            .as_deref(),
        Some("c2VjcmV0LXNlc3Npb24ta2V5")
    );
    assert_eq!(
        store.lease_holder("import").await.unwrap(),
        Some(("host-a:123".to_owned(), 1_700_000_005_000))
    );
    // The old pending entry is claimable, behind no one (its keys came through).
    let claimed = store
        .outbox_claim("pusher-2", 1_700_000_100_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.oa_id.as_str()).collect::<Vec<_>>(),
        vec!["carol", "9"],
        "the pending entry and the expired claim are claimable again"
    );

    // The dedupe key is per org now, and ids keep counting past the purged event.
    let event = |key: &str| NewInboxEvent {
        dedupe_key: key.to_owned(),
        event_type: "user_modify_org".to_owned(),
        payload_json: "{}".to_owned(),
        received_at_ms: 1_700_000_020_000,
    };
    assert_eq!(
        store.inbox_put(event("ev-1")).await.unwrap(),
        InboxPut::Duplicate
    );
    // (A refused duplicate may use up an id too, so only "past 3" is promised.)
    let InboxPut::Stored(fresh) = store.inbox_put(event("ev-4")).await.unwrap() else {
        panic!("ev-4 is new");
    };
    assert!(
        fresh > 3,
        "no id is handed out twice (ev-3 had 3): got {fresh}"
    );
    let other = store.for_org("subsidiary");
    assert!(
        matches!(other.inbox_put(event("ev-1")).await.unwrap(), InboxPut::Stored(id) if id > fresh),
        "another org's event with the same key is its own"
    );
    assert_eq!(
        other.ding_id_of(&OaUserId::new("alice")).await.unwrap(),
        None
    );
    assert_eq!(other.checkpoint_get("import").await.unwrap(), None);
    assert!(other.held_deletions(None).await.unwrap().is_empty());
    assert_eq!(other.inbox_list(None, None, 10).await.unwrap().len(), 1);
    store.close().await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_of_the_single_org_release_upgrades_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::sqlite_file(&dir.path().join("old.db"));
    upgrade_keeps_every_row(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_of_the_single_org_release_upgrades_without_loss() {
    let Ok(admin) = std::env::var(testkit::db::PG_ENV) else {
        if std::env::var(testkit::db::SKIP_ENV).as_deref() == Ok("1") {
            return;
        }
        panic!("{} is not set (see scripts/test.sh)", testkit::db::PG_ENV);
    };
    let admin = DatabaseUrl::parse(admin).unwrap();
    let url = testkit::db::create_postgres_database(&admin, "upgrade").await;
    upgrade_keeps_every_row(url.clone()).await;
    testkit::db::drop_postgres_database(&url).await;
}
