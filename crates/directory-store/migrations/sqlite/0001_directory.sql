-- The OA directory, the sync bookkeeping, and the queues (SQLite dialect).
-- Keep this file and ../postgres/0001_directory.sql in step: same tables, same columns, same
-- meaning; only the dialect differs (INTEGER PRIMARY KEY AUTOINCREMENT vs identity columns).
-- Booleans are stored as BIGINT 0/1 because the store reads rows through sqlx::Any, which has
-- no portable boolean between the two backends.

CREATE TABLE departments (
    id                BIGINT PRIMARY KEY,
    name              TEXT   NOT NULL,
    parent_id         BIGINT,
    ord               BIGINT NOT NULL,
    source_identifier TEXT,
    hide              BIGINT NOT NULL,
    outer_dept        BIGINT NOT NULL,
    version           BIGINT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);
CREATE INDEX departments_parent ON departments (parent_id, id);
CREATE INDEX departments_name ON departments (name);

-- A table rather than a JSON column so that "does anyone still name this user as a manager?"
-- is an indexed query.
CREATE TABLE department_managers (
    dept_id  BIGINT NOT NULL,
    user_id  TEXT   NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (dept_id, user_id)
);
CREATE INDEX department_managers_user ON department_managers (user_id, dept_id);

CREATE TABLE users (
    id             TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    main_dept_id   BIGINT,
    manager_id     TEXT,
    job_number     TEXT,
    mobile_country TEXT,
    mobile_number  TEXT,
    email          TEXT,
    org_email      TEXT,
    telephone      TEXT,
    work_place     TEXT,
    hired_date_ms  BIGINT,
    remark         TEXT,
    extension_json TEXT   NOT NULL,
    state          TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX users_mobile ON users (mobile_number);
CREATE INDEX users_email ON users (email);
CREATE INDEX users_job_number ON users (job_number);
CREATE INDEX users_manager ON users (manager_id);
CREATE INDEX users_updated ON users (updated_at_ms);

CREATE TABLE user_departments (
    user_id  TEXT   NOT NULL,
    dept_id  BIGINT NOT NULL,
    position BIGINT NOT NULL,
    title    TEXT,
    ord      BIGINT NOT NULL,
    PRIMARY KEY (user_id, dept_id)
);
CREATE INDEX user_departments_dept ON user_departments (dept_id, user_id);

CREATE TABLE role_groups (
    id            BIGINT PRIMARY KEY,
    name          TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE roles (
    id            BIGINT PRIMARY KEY,
    group_id      BIGINT NOT NULL,
    name          TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX roles_group ON roles (group_id, id);

CREATE TABLE user_roles (
    user_id TEXT   NOT NULL,
    role_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (role_id, user_id);

CREATE TABLE id_map (
    kind    TEXT NOT NULL,
    oa_id   TEXT NOT NULL,
    ding_id TEXT NOT NULL,
    PRIMARY KEY (kind, oa_id)
);
CREATE UNIQUE INDEX id_map_ding ON id_map (kind, ding_id);

CREATE TABLE id_counters (
    kind    TEXT   PRIMARY KEY,
    next_id BIGINT NOT NULL
);

CREATE TABLE base_snapshots (
    kind         TEXT   NOT NULL,
    oa_id        TEXT   NOT NULL,
    body_json    TEXT   NOT NULL,
    synced_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, oa_id)
);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    origin      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    oa_id       TEXT   NOT NULL,
    op          TEXT   NOT NULL,
    before_json TEXT,
    after_json  TEXT
);
CREATE INDEX audit_entity ON audit (kind, oa_id, seq);

CREATE TABLE outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    kind               TEXT   NOT NULL,
    oa_id              TEXT   NOT NULL,
    op                 TEXT   NOT NULL,
    payload_json       TEXT,
    audit_seq          BIGINT NOT NULL,
    state              TEXT   NOT NULL,
    attempts           BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    claimed_by         TEXT,
    claimed_until_ms   BIGINT,
    last_error         TEXT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL
);
CREATE INDEX outbox_state ON outbox (state, id);

CREATE TABLE outbox_keys (
    entry_id BIGINT NOT NULL,
    dep_key  TEXT   NOT NULL,
    writes   BIGINT NOT NULL,
    PRIMARY KEY (entry_id, dep_key)
);
CREATE INDEX outbox_keys_key ON outbox_keys (dep_key, entry_id);

CREATE TABLE inbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key         TEXT   NOT NULL UNIQUE,
    event_type         TEXT   NOT NULL,
    payload_json       TEXT   NOT NULL,
    received_at_ms     BIGINT NOT NULL,
    state              TEXT   NOT NULL,
    attempts           BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    claimed_by         TEXT,
    claimed_until_ms   BIGINT,
    last_error         TEXT,
    updated_at_ms      BIGINT NOT NULL
);
CREATE INDEX inbox_state ON inbox (state, id);

CREATE TABLE import_checkpoints (
    name          TEXT   PRIMARY KEY,
    cursor_json   TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE held_deletions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT   NOT NULL,
    oa_id          TEXT   NOT NULL,
    origin         TEXT   NOT NULL,
    reason         TEXT   NOT NULL,
    state          TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    resolved_by    TEXT
);
CREATE INDEX held_deletions_state ON held_deletions (state, id);

CREATE TABLE sync_state (
    key           TEXT   PRIMARY KEY,
    value         TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE leases (
    name     TEXT   PRIMARY KEY,
    holder   TEXT   NOT NULL,
    until_ms BIGINT NOT NULL
);
