-- Several DingTalk organizations in one deployment (issue 20); see ../sqlite/0008_orgs.sql for
-- the why. PostgreSQL changes keys in place.

ALTER TABLE id_map ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE id_map DROP CONSTRAINT id_map_pkey;
ALTER TABLE id_map ADD PRIMARY KEY (org, kind, oa_id);
DROP INDEX id_map_ding;
CREATE UNIQUE INDEX id_map_ding ON id_map (kind, ding_id, org);

ALTER TABLE base_snapshots ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE base_snapshots DROP CONSTRAINT base_snapshots_pkey;
ALTER TABLE base_snapshots ADD PRIMARY KEY (org, kind, oa_id);

ALTER TABLE inbox ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE inbox DROP CONSTRAINT inbox_dedupe_key_key;
CREATE UNIQUE INDEX inbox_dedupe ON inbox (org, dedupe_key);

ALTER TABLE soft_matches ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE soft_matches DROP CONSTRAINT soft_matches_ding_userid_key;
CREATE UNIQUE INDEX soft_matches_ding ON soft_matches (org, ding_userid);

ALTER TABLE outbox ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE held_deletions ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE conflicts ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
