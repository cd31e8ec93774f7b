//! Shared fixtures: a provisioned user and group as the service would hold them.

use serde_json::{Value, json};

pub fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u-1",
        "externalId": "e-1",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "meta": {"resourceType": "User", "created": "2026-12-07T10:00:00.000Z",
                 "lastModified": "2026-12-07T10:00:00.000Z", "version": "W/\"1\""}
    })
}

pub fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g-1",
        "displayName": "Sales",
        "members": [{"value": "u-1"}, {"value": "u-2"}],
        "meta": {"resourceType": "Group"}
    })
}

pub fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}
