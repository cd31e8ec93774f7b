-- Conflicts found by the three-way merge (design invariant 7): both sides changed a field
-- differently since the last sync. Kept for operators; the winner was applied to both sides.
CREATE TABLE conflicts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT   NOT NULL,
    oa_id         TEXT   NOT NULL,
    field         TEXT   NOT NULL,
    base_json     TEXT   NOT NULL,
    oa_json       TEXT   NOT NULL,
    dingtalk_json TEXT   NOT NULL,
    winner        TEXT   NOT NULL,
    at_ms         BIGINT NOT NULL
);
CREATE INDEX conflicts_entity ON conflicts (kind, oa_id, id);
