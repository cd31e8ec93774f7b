//! RFC 7644 §3.5.2 behaviour: add / remove / replace, with and without paths and filters, and
//! the errors it names.

use scim::ScimType;
use scim::patch::apply_patch;
use scim::schema::{GROUP, USER};
use serde_json::{Value, json};

use crate::support::{group, patch, user};

fn apply(resource: &Value, ops: Value) -> Value {
    apply_patch(resource, &patch(ops.clone()), &USER).unwrap_or_else(|e| panic!("{ops}: {e}"))
}

fn fails(resource: &Value, ops: Value) -> scim::ScimError {
    apply_patch(resource, &patch(ops.clone()), &USER).expect_err(&ops.to_string())
}

#[test]
fn add_appends_to_multi_valued_and_demotes_the_old_primary() {
    let out = apply(
        &user(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "b@x.org", "type": "home", "primary": true}]}]),
    );
    assert_eq!(
        out["emails"],
        json!([
            {"value": "bjensen@example.com", "type": "work", "primary": false},
            {"value": "b@x.org", "type": "home", "primary": true}
        ])
    );
}

#[test]
fn replace_with_a_filter_and_sub_attribute_changes_only_matches() {
    let u = apply(
        &user(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "b@x.org", "type": "home"}]}]),
    );
    let out = apply(
        &u,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "c@x.org"}]),
    );
    assert_eq!(
        out["emails"][1],
        json!({"value": "c@x.org", "type": "home"})
    );
    assert_eq!(out["emails"][0]["value"], "bjensen@example.com");
    // No match and a filter that describes no single value: noTarget.
    let e = fails(
        &u,
        json!([{"op": "replace", "path": "emails[type ne \"work\" and type ne \"home\"].value", "value": "x"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn replace_of_a_complex_attribute_merges_sub_attributes() {
    let out = apply(
        &user(),
        json!([{"op": "replace", "path": "name", "value": {"givenName": "B"}}]),
    );
    assert_eq!(
        out["name"],
        json!({"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "B"})
    );
}

#[test]
fn replace_of_a_missing_attribute_adds_it() {
    let out = apply(
        &user(),
        json!([{"op": "replace", "path": "title", "value": "CEO"}]),
    );
    assert_eq!(out["title"], "CEO");
}

#[test]
fn remove_by_filter_and_remove_of_a_sub_attribute() {
    let g = apply_patch(
        &group(),
        &patch(json!([{"op": "remove", "path": "members[value eq \"u-1\"]"}])),
        &GROUP,
    )
    .unwrap();
    assert_eq!(g["members"], json!([{"value": "u-2"}]));
    // Removing what is not there succeeds and changes nothing.
    let again = apply_patch(
        &g,
        &patch(json!([{"op": "remove", "path": "members[value eq \"u-1\"]"}])),
        &GROUP,
    )
    .unwrap();
    assert_eq!(again, g);
    let out = apply(
        &user(),
        json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "emails"}]),
    );
    assert_eq!(
        out["name"],
        json!({"formatted": "Barbara Jensen", "familyName": "Jensen"})
    );
    assert!(out.get("emails").is_none());
    let g = apply_patch(
        &group(),
        &patch(json!([{"op": "remove", "path": "members"}])),
        &GROUP,
    )
    .unwrap();
    assert!(g.get("members").is_none());
}

#[test]
fn mutability_errors() {
    for ops in [
        json!([{"op": "replace", "path": "id", "value": "other"}]),
        json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
        json!([{"op": "add", "path": "groups", "value": [{"value": "g-1"}]}]),
    ] {
        let e = fails(&user(), ops.clone());
        assert_eq!(e.scim_type, Some(ScimType::Mutability), "{ops}: {e}");
        assert_eq!(e.status, 400);
    }
    let e = apply_patch(
        &group(),
        &patch(
            json!([{"op": "replace", "path": "members[value eq \"u-1\"].value", "value": "u-9"}]),
        ),
        &GROUP,
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability), "{e}");
    // Echoing the current id is harmless.
    let out = apply(
        &user(),
        json!([{"op": "replace", "value": {"id": "u-1", "title": "x"}}]),
    );
    assert_eq!(out["title"], "x");
}

#[test]
fn path_and_value_errors_name_the_operation() {
    let e = fails(
        &user(),
        json!([{"op": "add", "path": "title", "value": "x"}, {"op": "replace", "path": "shoeSize", "value": "x"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
    let e = fails(
        &user(),
        json!([{"op": "replace", "path": "active", "value": "maybe"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    let e = fails(&user(), json!([{"op": "remove", "path": "userName"}]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    let e = fails(
        &user(),
        json!([{"op": "add", "path": "title[value eq \"x\"]", "value": "x"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = fails(&user(), json!([{"op": "add", "value": "not an object"}]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn a_failed_request_changes_nothing() {
    // The first operation alone would succeed; the second fails; the caller keeps the original.
    let original = user();
    let e = fails(
        &original,
        json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "id", "value": "y"}]),
    );
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert!(original.get("title").is_none());
}

#[test]
fn extension_object_as_a_whole() {
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    // scim2-tester's extension values carry their own `schemas`, which is not an attribute.
    let out = apply(
        &user(),
        json!([{"op": "add", "path": ext, "value": {"schemas": [ext], "department": "Sales/East", "employeeNumber": "7"}}]),
    );
    assert_eq!(
        out[ext],
        json!({"department": "Sales/East", "employeeNumber": "7"})
    );
    let out = apply(
        &out,
        json!([{"op": "add", "value": {ext: {"organization": "ACME"}}}]),
    );
    assert_eq!(out[ext]["organization"], "ACME");
    assert_eq!(out[ext]["department"], "Sales/East");
    let out = apply(&out, json!([{"op": "remove", "path": ext}]));
    assert!(out.get(ext).is_none());
}

#[test]
fn group_parent_extension_takes_an_id() {
    let ext = "urn:dingsync:params:scim:schemas:extension:2.0:Group";
    let body = patch(json!([{"op": "replace", "path": format!("{ext}:parent"), "value": "g-0"}]));
    let out = apply_patch(&group(), &body, &GROUP).unwrap();
    assert_eq!(out[ext]["parent"], json!({"value": "g-0"}));
    assert!(out["schemas"].as_array().unwrap().contains(&json!(ext)));
}
