//! The SQLite and PostgreSQL migrations are written twice, once per dialect; this test checks
//! that they build the same schema. It runs every embedded migration (through `Store::connect`)
//! on a fresh SQLite file and a fresh PostgreSQL database, reads both catalogs back and compares
//! them: the same tables; in each, the same columns with corresponding types (see [`TYPE_MAP`]),
//! nullability and auto-numbering, and the same primary key; the same indexes by table, columns
//! in order (an expression key counts as one `<expression>` column) and uniqueness (index names
//! are not compared: SQLite and PostgreSQL name the indexes behind `UNIQUE` constraints
//! differently).
//!
//! PostgreSQL comes from `DINGSYNC_TEST_PG_URL` (a server URL; the test creates and drops its
//! own database). When it is unset the PostgreSQL half cannot run, and the test says so loudly
//! instead of passing silently.

// An unwrap failing here is a failing test, as intended.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use directory_store::{DatabaseUrl, Store};
use sqlx::migrate::MigrateDatabase;
use sqlx::{AnyPool, Row};

/// Which declared column types count as the same, as (SQLite declared type, PostgreSQL
/// `data_type`, the name both map to). SQLite stores every integer in up to 64 bits whatever
/// its declared name, so `INTEGER` and `BIGINT` both match PostgreSQL's `bigint`; PostgreSQL's
/// `integer` is 32-bit and deliberately has no entry, because the store writes millisecond
/// timestamps and ids that do not fit in it. A type missing here fails the test by name.
const TYPE_MAP: &[(&str, &str, &str)] = &[
    ("INTEGER", "bigint", "int64"),
    ("BIGINT", "bigint", "int64"),
    ("TEXT", "text", "text"),
];

/// How an index key that is an expression (`LOWER(name)`) is named on both sides: the two
/// dialects spell expressions differently, so only their place in the key is compared.
const EXPRESSION: &str = "<expression>";

/// The tables sqlx and SQLite keep for themselves.
const INTERNAL_TABLES: &[&str] = &["_sqlx_migrations", "sqlite_sequence"];

/// One column, in backend-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    /// The mapped type (third column of [`TYPE_MAP`]), or `unmapped <type>`.
    ty: String,
    /// Whether NULL may be stored. Primary-key columns count as NOT NULL on both sides: SQLite
    /// lets a non-integer key column hold NULL unless told otherwise, a quirk of SQLite rather
    /// than a difference between the migrations.
    nullable: bool,
    /// Whether the database numbers it (SQLite `AUTOINCREMENT`, PostgreSQL identity).
    auto: bool,
}

/// One table: its columns by name and its primary key in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
}

/// One secondary index (primary keys are compared per table).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    table: String,
    columns: Vec<String>,
    unique: bool,
}

/// What the comparison looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Catalog {
    tables: BTreeMap<String, Table>,
    indexes: BTreeSet<Index>,
}

fn sqlite_type(declared: &str) -> String {
    let declared = declared.trim().to_uppercase();
    TYPE_MAP
        .iter()
        .find(|(s, _, _)| *s == declared)
        .map_or_else(
            || format!("unmapped {declared}"),
            |(_, _, t)| (*t).to_owned(),
        )
}

fn postgres_type(data_type: &str) -> String {
    TYPE_MAP
        .iter()
        .find(|(_, p, _)| *p == data_type)
        .map_or_else(
            || format!("unmapped {data_type}"),
            |(_, _, t)| (*t).to_owned(),
        )
}

/// Reads a SQLite catalog through `pool`.
async fn sqlite_catalog(pool: &AnyPool) -> Catalog {
    let mut catalog = Catalog::default();
    let tables = sqlx::query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        .fetch_all(pool)
        .await
        .unwrap();
    for t in tables {
        let name: String = t.try_get("name").unwrap();
        if INTERNAL_TABLES.contains(&name.as_str()) {
            continue;
        }
        let sql: String = t.try_get("sql").unwrap();
        let autoincrement = sql.to_uppercase().contains("AUTOINCREMENT");
        let mut table = Table::default();
        let cols =
            sqlx::query("SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info($1)")
                .bind(name.clone())
                .fetch_all(pool)
                .await
                .unwrap();
        let mut key: Vec<(i64, String)> = Vec::new();
        for c in cols {
            let col: String = c.try_get("name").unwrap();
            let pk: i64 = c.try_get("pk").unwrap();
            let not_null: i64 = c.try_get("nn").unwrap();
            if pk > 0 {
                key.push((pk, col.clone()));
            }
            let column = Column {
                ty: sqlite_type(&c.try_get::<String, _>("type").unwrap()),
                nullable: not_null == 0 && pk == 0,
                auto: autoincrement && pk > 0,
            };
            table.columns.insert(col, column);
        }
        key.sort();
        table.primary_key = key.into_iter().map(|(_, c)| c).collect();
        let indexes =
            sqlx::query("SELECT name, \"unique\" AS uniq, origin FROM pragma_index_list($1)")
                .bind(name.clone())
                .fetch_all(pool)
                .await
                .unwrap();
        for i in indexes {
            let origin: String = i.try_get("origin").unwrap();
            if origin == "pk" {
                continue;
            }
            let index: String = i.try_get("name").unwrap();
            let columns = sqlx::query("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                .bind(index)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    r.try_get::<Option<String>, _>("name")
                        .unwrap()
                        .unwrap_or_else(|| EXPRESSION.to_owned())
                })
                .collect();
            let unique: i64 = i.try_get("uniq").unwrap();
            catalog.indexes.insert(Index {
                table: name.clone(),
                columns,
                unique: unique != 0,
            });
        }
        catalog.tables.insert(name, table);
    }
    catalog
}

/// Reads the PostgreSQL catalog of the `public` schema through `pool`. Every value is cast to
/// text or bigint, the types `sqlx::Any` can decode.
async fn postgres_catalog(pool: &AnyPool) -> Catalog {
    let mut catalog = Catalog::default();
    let cols = sqlx::query(
        "SELECT table_name::text AS tbl, column_name::text AS col, data_type::text AS ty, \
         is_nullable::text AS nullable, is_identity::text AS ident \
         FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for c in cols {
        let table: String = c.try_get("tbl").unwrap();
        if INTERNAL_TABLES.contains(&table.as_str()) {
            continue;
        }
        let column = Column {
            ty: postgres_type(&c.try_get::<String, _>("ty").unwrap()),
            nullable: c.try_get::<String, _>("nullable").unwrap() == "YES",
            auto: c.try_get::<String, _>("ident").unwrap() == "YES",
        };
        catalog
            .tables
            .entry(table)
            .or_default()
            .columns
            .insert(c.try_get("col").unwrap(), column);
    }
    let index_cols = sqlx::query(
        "SELECT t.relname::text AS tbl, i.relname::text AS idx, \
         (CASE WHEN ix.indisunique THEN 1 ELSE 0 END)::bigint AS uniq, \
         (CASE WHEN ix.indisprimary THEN 1 ELSE 0 END)::bigint AS pk, \
         COALESCE(a.attname::text, '<expression>') AS col \
         FROM pg_index ix \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = 'public' ORDER BY t.relname, i.relname, k.ord",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    // (table, index) -> (unique, primary, columns in order)
    let mut found: BTreeMap<(String, String), (bool, bool, Vec<String>)> = BTreeMap::new();
    for r in index_cols {
        let key = (r.try_get("tbl").unwrap(), r.try_get("idx").unwrap());
        let entry = found.entry(key).or_insert_with(|| {
            let uniq: i64 = r.try_get("uniq").unwrap();
            let pk: i64 = r.try_get("pk").unwrap();
            (uniq != 0, pk != 0, Vec::new())
        });
        entry.2.push(r.try_get("col").unwrap());
    }
    for ((table, _), (unique, primary, columns)) in found {
        if INTERNAL_TABLES.contains(&table.as_str()) {
            continue;
        }
        if primary {
            catalog.tables.entry(table).or_default().primary_key = columns;
        } else {
            catalog.indexes.insert(Index {
                table,
                columns,
                unique,
            });
        }
    }
    catalog
}

/// Every way `pg` differs from `lite`, one line each.
fn differences(lite: &Catalog, pg: &Catalog) -> Vec<String> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = lite.tables.keys().chain(pg.tables.keys()).collect();
    for name in names {
        let (Some(l), Some(p)) = (lite.tables.get(name), pg.tables.get(name)) else {
            let side = if lite.tables.contains_key(name) {
                "SQLite"
            } else {
                "PostgreSQL"
            };
            out.push(format!("table {name} exists only in {side}"));
            continue;
        };
        let cols: BTreeSet<&String> = l.columns.keys().chain(p.columns.keys()).collect();
        for col in cols {
            match (l.columns.get(col), p.columns.get(col)) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => out.push(format!("{name}.{col}: SQLite {a:?}, PostgreSQL {b:?}")),
            }
        }
        if l.primary_key != p.primary_key {
            out.push(format!(
                "{name} primary key: SQLite {:?}, PostgreSQL {:?}",
                l.primary_key, p.primary_key
            ));
        }
    }
    for i in lite.indexes.symmetric_difference(&pg.indexes) {
        let side = if lite.indexes.contains(i) {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        out.push(format!("index {i:?} exists only in {side}"));
    }
    out
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("schema_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_build_the_same_schema() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let lite_url = DatabaseUrl::sqlite_file(&dir.path().join("schema.db"));
    Store::connect_with(&lite_url, Default::default())
        .await
        .unwrap()
        .close()
        .await;
    let lite_pool = AnyPool::connect(lite_url.expose()).await.unwrap();
    let lite = sqlite_catalog(&lite_pool).await;
    lite_pool.close().await;
    // The catalog reader itself must see the schema, or an empty comparison would pass.
    assert!(
        lite.tables.len() >= 20,
        "SQLite tables: {:?}",
        lite.tables.keys()
    );
    let outbox = &lite.tables["outbox"];
    assert_eq!(outbox.primary_key, ["id"]);
    assert!(outbox.columns["id"].auto);
    assert!(lite.indexes.contains(&Index {
        table: "id_map".into(),
        columns: vec!["kind".into(), "ding_id".into(), "org".into()],
        unique: true,
    }));

    let Ok(server) = std::env::var("DINGSYNC_TEST_PG_URL") else {
        eprintln!(
            "\n!!! DINGSYNC_TEST_PG_URL is unset: the PostgreSQL half of the schema comparison \
             did NOT run; only the SQLite catalog was checked. Start one with \
             `scripts/pg-throwaway.sh start /tmp/pg 54329`. !!!\n"
        );
        return;
    };
    let pg_url = DatabaseUrl::parse(server)
        .unwrap()
        .with_database(&unique_name());
    sqlx::Any::create_database(pg_url.expose()).await.unwrap();
    let store = Store::connect_with(&pg_url, Default::default()).await;
    let pg = match store {
        Ok(store) => {
            store.close().await;
            let pool = AnyPool::connect(pg_url.expose()).await.unwrap();
            let pg = postgres_catalog(&pool).await;
            pool.close().await;
            Ok(pg)
        }
        Err(e) => Err(e),
    };
    let _ = sqlx::Any::force_drop_database(pg_url.expose()).await;
    let pg = pg.unwrap_or_else(|e| panic!("the PostgreSQL migrations must apply: {e}"));
    let diff = differences(&lite, &pg);
    assert!(
        diff.is_empty(),
        "the migrations disagree:\n{}",
        diff.join("\n")
    );
}

#[test]
fn a_difference_in_type_nullability_key_or_index_is_reported() {
    let column = |ty: &str| Column {
        ty: ty.into(),
        nullable: false,
        auto: false,
    };
    let mut lite = Catalog::default();
    let mut table = Table::default();
    table.columns.insert("id".into(), column("int64"));
    table.columns.insert("at_ms".into(), column("int64"));
    table.primary_key = vec!["id".into()];
    lite.tables.insert("t".into(), table);
    lite.indexes.insert(Index {
        table: "t".into(),
        columns: vec!["at_ms".into()],
        unique: false,
    });
    assert!(differences(&lite, &lite.clone()).is_empty());

    let mut pg = lite.clone();
    let t = pg.tables.get_mut("t").unwrap();
    t.columns
        .insert("at_ms".into(), column(&postgres_type("integer")));
    t.columns.get_mut("id").unwrap().nullable = true;
    t.primary_key = vec!["at_ms".into()];
    pg.indexes.clear();
    pg.tables.insert("extra".into(), Table::default());
    let diff = differences(&lite, &pg);
    assert_eq!(diff.len(), 5, "{diff:#?}");
    assert!(diff[0].contains("extra"), "{diff:#?}");
    assert!(
        diff.iter().any(|d| d.contains("unmapped integer")),
        "{diff:#?}"
    );
    assert_eq!(sqlite_type("bigint"), "int64");
    assert_eq!(postgres_type("bigint"), sqlite_type("INTEGER"));
}
