-- Several DingTalk organizations in one deployment (issue 20). DingTalk ids are unique only
-- within a corp, so every DingTalk-side table gains `org` (the `[[orgs]]` name; a deployment
-- without `[[orgs]]` is the one org `default`), and every key that holds a DingTalk id or a
-- per-org fact includes it. Existing rows become org `default`, so a single-org database
-- upgrades in place without loss. The OA directory tables (departments, users, roles…) and the
-- audit log stay org-free: OA ids are one namespace. Leases, checkpoints and sync_state keep
-- their tables: a non-default org's names carry its prefix (see src/db.rs, `Store::scoped`).
--
-- SQLite cannot change a primary key or a column's UNIQUE in place, so the tables whose keys
-- change are rebuilt (new table, copy, drop, rename), keeping their ids and AUTOINCREMENT
-- counters; the others only gain the column. `org` comes last in every table, as PostgreSQL's
-- ADD COLUMN places it. The id map's DingTalk-side index leads with (kind, ding_id) so that
-- finding every org's root link (src/outbox/route.rs) is an index range, not a scan.

CREATE TABLE id_map_new (
    kind    TEXT NOT NULL,
    oa_id   TEXT NOT NULL,
    ding_id TEXT NOT NULL,
    org     TEXT NOT NULL DEFAULT 'default',
    PRIMARY KEY (org, kind, oa_id)
);
INSERT INTO id_map_new (kind, oa_id, ding_id, org) SELECT kind, oa_id, ding_id, 'default' FROM id_map;
DROP TABLE id_map;
ALTER TABLE id_map_new RENAME TO id_map;
CREATE UNIQUE INDEX id_map_ding ON id_map (kind, ding_id, org);

CREATE TABLE base_snapshots_new (
    kind         TEXT   NOT NULL,
    oa_id        TEXT   NOT NULL,
    body_json    TEXT   NOT NULL,
    synced_at_ms BIGINT NOT NULL,
    org          TEXT   NOT NULL DEFAULT 'default',
    PRIMARY KEY (org, kind, oa_id)
);
INSERT INTO base_snapshots_new (kind, oa_id, body_json, synced_at_ms, org)
    SELECT kind, oa_id, body_json, synced_at_ms, 'default' FROM base_snapshots;
DROP TABLE base_snapshots;
ALTER TABLE base_snapshots_new RENAME TO base_snapshots;

CREATE TABLE inbox_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key         TEXT   NOT NULL,
    event_type         TEXT   NOT NULL,
    payload_json       TEXT   NOT NULL,
    received_at_ms     BIGINT NOT NULL,
    state              TEXT   NOT NULL,
    attempts           BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    claimed_by         TEXT,
    claimed_until_ms   BIGINT,
    last_error         TEXT,
    updated_at_ms      BIGINT NOT NULL,
    org                TEXT   NOT NULL DEFAULT 'default'
);
INSERT INTO inbox_new (id, dedupe_key, event_type, payload_json, received_at_ms, state, attempts,
                       next_attempt_at_ms, claimed_by, claimed_until_ms, last_error, updated_at_ms, org)
    SELECT id, dedupe_key, event_type, payload_json, received_at_ms, state, attempts,
           next_attempt_at_ms, claimed_by, claimed_until_ms, last_error, updated_at_ms, 'default'
    FROM inbox;
-- Keep the id counter past ids whose rows were purged, so no id is ever handed out twice.
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('inbox', 'inbox_new'))
    WHERE name = 'inbox_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'inbox_new', seq FROM sqlite_sequence WHERE name = 'inbox'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'inbox_new');
DROP TABLE inbox;
ALTER TABLE inbox_new RENAME TO inbox;
CREATE UNIQUE INDEX inbox_dedupe ON inbox (org, dedupe_key);
CREATE INDEX inbox_state ON inbox (state, id);

CREATE TABLE soft_matches_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ding_userid     TEXT   NOT NULL,
    ding_name       TEXT   NOT NULL,
    match_key       TEXT,
    candidates_json TEXT   NOT NULL,
    seen_at_ms      BIGINT NOT NULL,
    decision        TEXT,
    decided_by      TEXT,
    decided_at_ms   BIGINT,
    org             TEXT   NOT NULL DEFAULT 'default'
);
INSERT INTO soft_matches_new (id, ding_userid, ding_name, match_key, candidates_json, seen_at_ms,
                              decision, decided_by, decided_at_ms, org)
    SELECT id, ding_userid, ding_name, match_key, candidates_json, seen_at_ms,
           decision, decided_by, decided_at_ms, 'default'
    FROM soft_matches;
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence WHERE name IN ('soft_matches', 'soft_matches_new'))
    WHERE name = 'soft_matches_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'soft_matches_new', seq FROM sqlite_sequence WHERE name = 'soft_matches'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'soft_matches_new');
DROP TABLE soft_matches;
ALTER TABLE soft_matches_new RENAME TO soft_matches;
CREATE UNIQUE INDEX soft_matches_ding ON soft_matches (org, ding_userid);

ALTER TABLE outbox ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE held_deletions ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE conflicts ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
