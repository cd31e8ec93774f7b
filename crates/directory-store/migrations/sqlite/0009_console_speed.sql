-- The admin console at 100,000 people (issue 16), second round.
-- Every page's navigation counts what waits for a person; undecided conflicts are found
-- through this index instead of reading every conflict ever recorded.
CREATE INDEX conflicts_undecided ON conflicts (decided_by, id);
-- When each id link was made, for the object page's id mapping ("Linked"). Links made before
-- this migration have none, and the page says so.
ALTER TABLE id_map ADD COLUMN linked_at_ms BIGINT;
