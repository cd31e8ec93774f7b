//! Each test replays the request shape a real client sends (from the client's documentation or
//! from SCIM server projects' bug reports about that client) and checks the resource after.

use scim::patch::apply_patch;
use scim::schema::{GROUP, USER};
use serde_json::json;

use crate::support::{group, patch, user};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[test]
fn entra_disables_with_capitalised_replace_and_a_false_string() {
    let body = patch(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out["active"], json!(false));
    let body = patch(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    assert_eq!(
        apply_patch(&out, &body, &USER).unwrap()["active"],
        json!(true)
    );
}

#[test]
fn entra_updates_several_attributes_with_capitalised_ops() {
    // Entra ID's update: "Replace" for single-valued attributes, "Add" for the work e-mail.
    let body = patch(json!([
        {"op": "Replace", "path": "title", "value": "tester"},
        {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "babs@new.example.com"},
        {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+86 138 0000 0000"},
        {"op": "Replace", "path": "name.givenName", "value": "Babs"}
    ]));
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out["title"], "tester");
    assert_eq!(
        out["emails"],
        json!([{"value": "babs@new.example.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        out["phoneNumbers"],
        json!([{"type": "mobile", "value": "+86 138 0000 0000"}])
    );
    assert_eq!(out["name"]["givenName"], "Babs");
    assert_eq!(out["name"]["familyName"], "Jensen");
}

#[test]
fn entra_sets_the_manager_by_extension_path_as_a_bare_id() {
    let body =
        patch(json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "u-9"}]));
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out[ENTERPRISE]["manager"], json!({"value": "u-9"}));
    assert!(
        out["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE))
    );
    // The same with {"value": ...}, as Entra sends with the SCIM-compliance flag.
    let body = patch(
        json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "u-8"}}]),
    );
    let out = apply_patch(&out, &body, &USER).unwrap();
    assert_eq!(out[ENTERPRISE]["manager"], json!({"value": "u-8"}));
    // Removing the manager removes the now-empty extension and its URN.
    let body = patch(json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}]));
    let out = apply_patch(&out, &body, &USER).unwrap();
    assert!(out.get(ENTERPRISE).is_none());
    assert!(
        !out["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE))
    );
}

#[test]
fn entra_legacy_job_wraps_single_values_in_arrays() {
    let body = patch(json!([
        {"op": "Replace", "path": "name.givenName", "value": [{"$ref": null, "value": "Barb"}]},
        {"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "u-7"}]}
    ]));
    // `manager` unqualified resolves to the one extension that defines it.
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out[ENTERPRISE]["manager"], json!({"value": "u-7"}));
    let body = patch(json!([
        {"op": "Replace", "path": "name.givenName", "value": [{"$ref": null, "value": "Barb"}]},
        {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": [{"$ref": null, "value": "u-7"}]}
    ]));
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out["name"]["givenName"], "Barb");
    assert_eq!(out[ENTERPRISE]["manager"], json!({"value": "u-7"}));
}

#[test]
fn entra_replace_without_path_uses_dotted_and_urn_keys() {
    let body = patch(json!([{"op": "Replace", "value": {
        "displayName": "Bjfe",
        "name.givenName": "Kkom",
        "name.familyName": "Unua",
        format!("{ENTERPRISE}:employeeNumber"): "Aklq",
        "active": "False"
    }}]));
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out["displayName"], "Bjfe");
    assert_eq!(
        out["name"],
        json!({"formatted": "Barbara Jensen", "familyName": "Unua", "givenName": "Kkom"})
    );
    assert_eq!(out[ENTERPRISE]["employeeNumber"], "Aklq");
    assert_eq!(out["active"], json!(false));
}

#[test]
fn entra_removes_group_members_listed_in_the_value() {
    let body = patch(json!([{"op": "Remove", "path": "members", "value": [{"value": "u-1"}]}]));
    let out = apply_patch(&group(), &body, &GROUP).unwrap();
    assert_eq!(out["members"], json!([{"value": "u-2"}]));
    let body = patch(
        json!([{"op": "Add", "path": "members", "value": [{"value": "u-3"}, {"value": "u-2"}]}]),
    );
    let out = apply_patch(&out, &body, &GROUP).unwrap();
    assert_eq!(out["members"], json!([{"value": "u-2"}, {"value": "u-3"}]));
}

#[test]
fn okta_deactivates_with_a_patch_without_path() {
    let body = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let out = apply_patch(&user(), &body, &USER).unwrap();
    assert_eq!(out["active"], json!(false));
    assert_eq!(out["userName"], "bjensen@example.com");
}

#[test]
fn okta_renames_a_group_and_patches_members_by_filter() {
    let body = patch(json!([
        {"op": "replace", "value": {"id": "g-1", "displayName": "Sales EMEA"}},
        {"op": "remove", "path": "members[value eq \"u-2\"]"},
        {"op": "add", "path": "members", "value": [{"value": "u-4", "display": "dave@example.com"}]}
    ]));
    let out = apply_patch(&group(), &body, &GROUP).unwrap();
    assert_eq!(out["displayName"], "Sales EMEA");
    assert_eq!(
        out["members"],
        json!([{"value": "u-1"}, {"value": "u-4", "display": "dave@example.com"}])
    );
    // Echoing a different id is a mutability error.
    let body = patch(json!([{"op": "replace", "value": {"id": "g-2"}}]));
    let e = apply_patch(&group(), &body, &GROUP).unwrap_err();
    assert_eq!(e.scim_type, Some(scim::ScimType::Mutability));
}

#[test]
fn deactivate_then_reactivate_restores_the_same_resource() {
    let off = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    let on = patch(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    let deactivated = apply_patch(&user(), &off, &USER).unwrap();
    assert_eq!(deactivated["active"], json!(false));
    let reactivated = apply_patch(&deactivated, &on, &USER).unwrap();
    assert_eq!(reactivated, user());
}

#[test]
fn the_queries_entra_and_okta_send_before_writing() {
    use scim::filter::{matches, parse_filter};
    use scim::list::Page;
    use scim::project::Projection;
    // Entra ID: is the user there (by the matching attribute), is the member in the group.
    let f = parse_filter(r#"userName eq "BJensen@example.com""#).unwrap();
    assert!(matches(&f, &user(), &USER).unwrap());
    let f = parse_filter(r#"id eq "g-1" and members[value eq "u-2"]"#).unwrap();
    assert!(matches(&f, &group(), &GROUP).unwrap());
    let f = parse_filter(r#"id eq "g-1" and members[value eq "u-3"]"#).unwrap();
    assert!(!matches(&f, &group(), &GROUP).unwrap());
    let out = Projection::from_params(None, Some("members"), &GROUP)
        .unwrap()
        .apply(&group(), &GROUP);
    assert!(out.get("members").is_none() && out["id"] == "g-1");
    // Okta: the same lookup with explicit paging.
    let page = Page::from_params(Some("1"), Some("100"), 100, 200).unwrap();
    assert_eq!((page.offset(), page.count), (0, 100));
    let f = parse_filter(r#"externalId eq "e-1""#).unwrap();
    assert!(matches(&f, &user(), &USER).unwrap());
}
