//! Property tests for the laws the protocol layer promises.

use proptest::prelude::*;
use scim::filter::{Filter, matches, parse_filter};
use scim::list::Page;
use scim::patch::{PatchPath, apply_patch};
use scim::project::Projection;
use scim::schema::USER;
use serde_json::{Value, json};

use crate::support::{patch, user};

/// Filters over attributes the fixture user has, built from a few atoms.
fn filter_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just(r#"userName eq "bjensen@example.com""#.to_owned()),
        Just(r#"userName sw "BJ""#.to_owned()),
        Just(r#"displayName co "zz""#.to_owned()),
        Just("title pr".to_owned()),
        Just("active eq true".to_owned()),
        Just(r#"emails[type eq "work"]"#.to_owned()),
        Just(r#"emails.value ew ".org""#.to_owned()),
        Just(r#"name.givenName gt "A""#.to_owned()),
    ];
    atom.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn eval(f: &Filter) -> bool {
    matches(f, &user(), &USER).expect("every generated filter names known attributes")
}

proptest! {
    #[test]
    fn not_not_f_is_f(text in filter_text()) {
        let f = parse_filter(&text).unwrap();
        let nn = parse_filter(&format!("not (not ({text}))")).unwrap();
        prop_assert_eq!(eval(&f), eval(&nn));
        let negated = parse_filter(&format!("not ({text})")).unwrap();
        prop_assert_ne!(eval(&f), eval(&negated));
    }

    #[test]
    fn rendering_a_filter_parses_back_to_it(text in filter_text()) {
        let f = parse_filter(&text).unwrap();
        prop_assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
    }

    #[test]
    fn the_same_replace_twice_is_a_no_op(
        title in "[a-zA-Z ]{0,12}",
        given in "[a-zA-Z]{1,8}",
        active in any::<bool>(),
        email in "[a-z]{1,6}@[a-z]{1,6}\\.org",
    ) {
        let body = patch(json!([
            {"op": "replace", "path": "title", "value": title},
            {"op": "replace", "path": "name.givenName", "value": given},
            {"op": "replace", "value": {"active": active}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": email},
        ]));
        let once = apply_patch(&user(), &body, &USER).unwrap();
        let twice = apply_patch(&once, &body, &USER).unwrap();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn add_of_members_is_idempotent(ids in proptest::collection::vec("[a-f0-9]{1,4}", 0..6)) {
        let members: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
        let body = patch(json!([{"op": "add", "path": "members", "value": members}]));
        let g = crate::support::group();
        let once = apply_patch(&g, &body, &scim::schema::GROUP).unwrap();
        let twice = apply_patch(&once, &body, &scim::schema::GROUP).unwrap();
        prop_assert_eq!(once, twice);
    }
}

/// Names a client may put in `attributes` / `excludedAttributes`, including the always-returned.
fn projection_names() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "id",
        "meta",
        "schemas",
        "userName",
        "name",
        "name.givenName",
        "emails",
        "emails.value",
        "active",
        "title",
        "externalId",
        "displayName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ]);
    proptest::collection::vec(name, 0..5).prop_map(|v| v.join(","))
}

proptest! {
    #[test]
    fn projection_keeps_id_schemas_and_meta(attrs in projection_names(), excl in projection_names(), use_attrs in any::<bool>()) {
        let p = Projection::from_params(use_attrs.then_some(attrs.as_str()), Some(excl.as_str()), &USER).unwrap();
        let out = p.apply(&user(), &USER);
        prop_assert_eq!(&out["id"], &json!("u-1"));
        prop_assert_eq!(&out["schemas"], &user()["schemas"]);
        prop_assert_eq!(&out["meta"], &user()["meta"]);
        // Nothing appears that the resource did not have.
        for key in out.as_object().unwrap().keys() {
            prop_assert!(user().get(key).is_some(), "{} appeared", key);
        }
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(text in "\\PC{0,40}") {
        let _ = parse_filter(&text);
        let _ = PatchPath::parse(&text);
        let _ = Projection::from_params(Some(&text), Some(&text), &USER);
        let _ = Page::from_params(Some(&text), Some(&text), 10, 100);
    }

    #[test]
    fn parsers_never_panic_on_filter_like_text(text in "[a-zA-Z.:\\[\\]() \"\\\\0-9]{0,40}") {
        if let Ok(f) = parse_filter(&text) {
            let _ = matches(&f, &user(), &USER);
        }
        let _ = PatchPath::parse(&text);
    }

    #[test]
    fn paging_returns_at_most_count_from_start(start in -5i64..40, count in -5i64..40, len in 0usize..30) {
        let page = Page::from_params(Some(&start.to_string()), Some(&count.to_string()), 10, 25).unwrap();
        let items: Vec<usize> = (0..len).collect();
        let got = page.slice(&items);
        prop_assert!(got.len() <= usize::try_from(count.max(0)).unwrap().min(25));
        if let Some(first) = got.first() {
            prop_assert_eq!(*first, usize::try_from(start.max(1) - 1).unwrap());
        }
    }
}
