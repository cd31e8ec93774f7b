-- What approving or rejecting a deletion SCIM held does (see src/scim_holds.rs), keyed by the
-- held deletion's id: `on_approve` is what approving does to the OA user ('delete' or 'left', the
-- `[scim] leave` of the request that was held), and for a held `DELETE /Users/{id}` the
-- resource the client deleted (`resource_json`, its userName and externalId), given back to
-- SCIM when an operator rejects the deletion, so the person the directory keeps stays
-- manageable by the client instead of clashing with its next create.
CREATE TABLE scim_holds (
    hold_id       BIGINT NOT NULL PRIMARY KEY,
    user_id       TEXT   NOT NULL,
    on_approve    TEXT   NOT NULL,
    resource_json TEXT,
    user_name     TEXT,
    external_id   TEXT
);
