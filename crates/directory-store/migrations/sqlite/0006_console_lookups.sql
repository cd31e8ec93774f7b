-- The admin console's pages at 100,000 people (issue 16): the user search matches the start of
-- a name through an index on the lower-cased name (SQLite's LOWER folds ASCII letters only;
-- PostgreSQL's index folds the same under the "C" collation), and a page's sync states look up
-- just the objects it shows in the outbox and the held deletions.
CREATE INDEX users_name_prefix ON users (LOWER(name));
CREATE INDEX outbox_entity ON outbox (kind, oa_id, id);
CREATE INDEX held_deletions_entity ON held_deletions (kind, oa_id, state);
-- Ambiguous soft matches the last import left out (a DingTalk user whose key matched several
-- OA users, or whose userid is an OA user linked to someone else), waiting for an operator to
-- link one candidate or create a new user. `candidates_json` is a JSON array of OA user ids.
CREATE TABLE soft_matches (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ding_userid     TEXT   NOT NULL UNIQUE,
    ding_name       TEXT   NOT NULL,
    match_key       TEXT,
    candidates_json TEXT   NOT NULL,
    seen_at_ms      BIGINT NOT NULL,
    decision        TEXT,
    decided_by      TEXT,
    decided_at_ms   BIGINT
);
