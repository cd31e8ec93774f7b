-- What a SCIM client sent for each resource it provisions (see src/scim_resources.rs): the
-- attributes the OA model has no field for (userName, externalId, the raw Enterprise
-- `department` string, anything else the schema publishes) are kept here as the resource's JSON,
-- keyed by kind ('User' / 'Group') and the OA id. `user_name` and `external_id` are copied
-- out, lower-cased where SCIM compares case-insensitively, for the lookups IdPs make before
-- every create. `rev` counts SCIM writes; it is part of the resource's ETag.
CREATE TABLE scim_resources (
    kind          TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    user_name     TEXT,
    external_id   TEXT,
    body_json     TEXT   NOT NULL,
    rev           BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX scim_resources_user_name ON scim_resources (kind, user_name);
CREATE INDEX scim_resources_external_id ON scim_resources (kind, external_id);
