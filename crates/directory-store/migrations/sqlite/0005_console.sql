-- The admin console (issue 16): its users (argon2 PHC strings, never a plain password), the
-- history of runs it shows on /console/runs, and who decided a recorded conflict, so the
-- attention page lists only conflicts nobody has looked at. The console's session key lives
-- in sync_state (key 'console.session_key') when the configuration does not give one.
CREATE TABLE console_users (
    name          TEXT   NOT NULL PRIMARY KEY,
    role          TEXT   NOT NULL,
    password_phc  TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT   NOT NULL,
    started_by     TEXT   NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT,
    outcome        TEXT,
    failure        TEXT,
    summary_json   TEXT   NOT NULL,
    log_json       TEXT   NOT NULL
);
CREATE INDEX runs_started ON runs (started_at_ms);
ALTER TABLE conflicts ADD COLUMN decided_by TEXT;
ALTER TABLE conflicts ADD COLUMN decided_at_ms BIGINT;
CREATE INDEX audit_at ON audit (at_ms);
-- Operator actions (approve, retry, apply…) with the console user's name. Kept apart from
-- the audit table because that table is also the OA change feed, whose readers expect only
-- directory changes; the console's audit page and timelines read both.
CREATE TABLE operator_actions (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    kind    TEXT,
    oa_id   TEXT,
    action  TEXT   NOT NULL,
    outcome TEXT   NOT NULL
);
CREATE INDEX operator_actions_entity ON operator_actions (kind, oa_id, id);
CREATE INDEX operator_actions_at ON operator_actions (at_ms);
