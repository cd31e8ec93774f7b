//! `[mapping]` and `[scope]` end to end, against the simulator over HTTP and a real SQLite
//! directory, with a realistic mapping: job numbers with a prefix, titles from an HR code table
//! (a map literal), a grade kept in DingTalk's `extension` JSON under another name, and a rule
//! that keeps contractors out of DingTalk.
//!
//! What DingTalk holds is read from the simulator's own state (`/_sim/state`), independently of
//! the engine's translation.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use dingtalk_sim::SimConfig;
use directory_model::{Department, Mobile, OaDeptId, OaUserId, User};
use serde_json::{Value, json};
use sync_engine::plan::{Action, PlanOptions, Target, plan, reconcile};
use sync_engine::push::{PushConfig, Pusher};
use sync_engine::rules::Rules;
use sync_engine::{Clock, Policy, SyncContext, approval};

use crate::support::{World, find};

/// The mapping the tests change to.
fn realistic() -> Rules {
    let mapping = json!({"users": {
        "fields": {
            "job_number": {
                "to_dingtalk": "user.job_number == null ? null : 'E' + user.job_number",
                "to_oa": "user.job_number != null && user.job_number.startsWith('E') ? user.job_number.substring(1) : user.job_number",
                "owner": "oa"},
            "departments": {
                "to_dingtalk": "user.departments.map(m, {'dept': m.dept, 'order': m.order, 'title': m.title == null ? null : {'T01': 'Engineer', 'T02': 'Manager', 'T03': 'Director'}[m.title]})",
                "owner": "oa"}
        },
        "extension": {
            "level": {"to_dingtalk": "user.extension.?grade.orValue(null)", "to_oa": "null"},
            "grade": {"to_dingtalk": "null", "to_oa": "user.extension.?level.orValue(null)"}
        }
    }});
    let scope = json!({"to_dingtalk": {"users": {
        "not_contractor": "user.extension.?employment_type.orValue('') != 'contractor'"}}});
    rules(mapping, scope)
}

fn rules(mapping: Value, scope: Value) -> Rules {
    let m = serde_json::from_value(mapping).unwrap();
    let s = serde_json::from_value(scope).unwrap();
    Rules::new(mapping::load(&m, &s).unwrap())
}

fn ctx_with(w: &World, rules: &Rules) -> SyncContext {
    let policy = Policy {
        rules: rules.clone(),
        ..Policy::default()
    };
    SyncContext::new(w.store.clone(), w.client.clone(), policy)
        .with_clock(w.clock.clone())
        .with_actor("test")
}

fn pusher_for(ctx: &SyncContext) -> Pusher {
    Pusher::new(
        ctx,
        11,
        PushConfig {
            worker: "test-pusher".into(),
            ..PushConfig::default()
        },
    )
}

/// An OA org of `depts` departments and `n` users (every `contractor_every`-th a contractor),
/// pushed to DingTalk with `rules`.
async fn oa_org(n: usize, depts: i64, contractor_every: usize, rules: &Rules) -> World {
    let w = World::start(SimConfig {
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    for d in 0..depts {
        let dept = Department::new(OaDeptId(10 + d), format!("Dept {d}"), Some(OaDeptId(1)));
        w.store.create_department(&w.oa(), dept).await.unwrap();
    }
    for i in 0..n {
        let dept = OaDeptId(10 + (i as i64 % depts));
        let mut u = User::new(OaUserId::new(format!("u{i}")), format!("User {i}"), &[dept]);
        u.mobile = Some(Mobile::mainland(format!("139{i:08}")));
        u.job_number = Some(format!("{}", 10_000 + i));
        u.departments[0].title = Some(["T01", "T02", "T03"][i % 3].to_owned());
        u.extension
            .insert("grade".into(), format!("P{}", 4 + i % 4));
        if contractor_every > 0 && i % contractor_every == 0 {
            u.extension
                .insert("employment_type".into(), "contractor".into());
        }
        w.store.create_user(&w.oa(), u).await.unwrap();
    }
    let ctx = ctx_with(&w, rules);
    let report = pusher_for(&ctx).drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    approval::approve(&w.store, rules, w.clock.now_ms())
        .await
        .unwrap();
    w
}

fn sim_user<'a>(state: &'a Value, id: &str) -> Option<&'a Value> {
    find(state, "users", "userid", &json!(id))
        .into_iter()
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_change_on_2000_people_is_held_previewed_approved_and_converges() {
    let identity = Rules::default();
    let w = oa_org(2_000, 20, 100, &identity).await;
    let before = w.state().await;
    assert_eq!(
        sim_user(&before, "u1").unwrap()["job_number"],
        json!("10001")
    );

    // The service restarts with the new mapping: the change waits for approval.
    let new = realistic();
    assert!(approval::pending(&w.store, &new).await.unwrap());
    let ctx = ctx_with(&w, &new);

    // Preview: every person's DingTalk values change field by field; contractors leave.
    let p = plan(&ctx, PlanOptions::default()).await.unwrap();
    let u1 = p
        .items
        .iter()
        .find(|i| i.oa_id.as_deref() == Some("u1"))
        .unwrap_or_else(|| panic!("u1 planned:\n{}", p.render_table()));
    assert_eq!((u1.target, u1.action), (Target::DingTalk, Action::Update));
    for f in ["job_number", "departments", "extension"] {
        assert!(u1.fields.iter().any(|x| x == f), "{f} in {:?}", u1.fields);
    }
    let updates = p
        .items
        .iter()
        .filter(|i| i.target == Target::DingTalk && i.action == Action::Update)
        .count();
    let deletes: Vec<_> = p
        .items
        .iter()
        .filter(|i| i.target == Target::DingTalk && i.action == Action::Delete)
        .collect();
    assert_eq!(updates, 1_980, "{}", p.render_table());
    assert_eq!(deletes.len(), 20, "the contractors");
    assert!(deletes.iter().all(|d| {
        d.oa_id
            .as_deref()
            .is_some_and(|id| id.trim_start_matches('u').parse::<usize>().unwrap() % 100 == 0)
    }));
    assert!(
        p.items.iter().all(|i| i.target == Target::DingTalk),
        "OA's values do not change:\n{}",
        p.render_table()
    );
    // Previewing changed nothing in DingTalk.
    assert_eq!(w.state().await["users"], before["users"]);

    // Approved: reconcile applies the plan, then the new rules are the approved ones.
    let report = reconcile(&ctx, &pusher_for(&ctx), &p, true).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    approval::approve(&w.store, &new, w.clock.now_ms())
        .await
        .unwrap();
    assert!(!approval::pending(&w.store, &new).await.unwrap());

    let after = w.state().await;
    let u1 = sim_user(&after, "u1").unwrap();
    assert_eq!(u1["job_number"], json!("E10001"));
    assert_eq!(u1["title"], json!("Manager"), "T02 through the code table");
    let ext: Value = serde_json::from_str(u1["extension"].as_str().unwrap()).unwrap();
    assert_eq!(
        ext,
        json!({"level": "P5"}),
        "the grade under DingTalk's name"
    );
    assert!(
        sim_user(&after, "u0").is_none(),
        "a contractor left DingTalk"
    );
    assert!(sim_user(&after, "u1999").is_some());
    // OA kept its own values.
    let oa_u1 = w
        .store
        .get_user(&OaUserId::new("u1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(oa_u1.entity.job_number.as_deref(), Some("10001"));
    assert_eq!(oa_u1.entity.departments[0].title.as_deref(), Some("T02"));

    // Converged: nothing more to do, and DingTalk's values read back as OA's exactly.
    let again = plan(&ctx, PlanOptions::default()).await.unwrap();
    assert!(again.is_empty(), "{}", again.render_table());
    w.finish().await;
}

#[tokio::test]
async fn a_failing_expression_dead_letters_one_user_and_the_rest_sync() {
    let new = realistic();
    let w = World::start(SimConfig {
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(10), "Sales", Some(OaDeptId(1))),
        )
        .await
        .unwrap();
    for i in 0..20 {
        let mut u = User::new(
            OaUserId::new(format!("s{i}")),
            format!("Seller {i}"),
            &[OaDeptId(10)],
        );
        u.mobile = Some(Mobile::mainland(format!("137{i:08}")));
        // s7's title code is not in the code table.
        u.departments[0].title = Some(if i == 7 { "T99" } else { "T01" }.to_owned());
        w.store.create_user(&w.oa(), u).await.unwrap();
    }
    let ctx = ctx_with(&w, &new);
    let report = pusher_for(&ctx).drain().await.unwrap();
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    let dead = w.store.outbox_dead_letters(None, 100).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].oa_id, "s7");
    let why = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        why.contains("mapping.users.fields.departments.to_dingtalk"),
        "{why}"
    );
    let state = w.state().await;
    assert!(sim_user(&state, "s7").is_none());
    for i in (0..20).filter(|i| *i != 7) {
        let u = sim_user(&state, &format!("s{i}")).unwrap();
        assert_eq!(u["title"], json!("Engineer"));
    }
    w.finish().await;
}

#[tokio::test]
async fn a_scope_change_that_removes_30_percent_is_held() {
    let w = oa_org(100, 4, 0, &Rules::default()).await;
    // 30 of them become contractors in OA, then the contractor rule is configured.
    for i in 0..30 {
        let id = OaUserId::new(format!("u{i}"));
        let mut u = w.store.get_user(&id).await.unwrap().unwrap().entity;
        u.extension
            .insert("employment_type".into(), "contractor".into());
        w.store.update_user(&w.oa(), u, None).await.unwrap();
    }
    let scope_only = rules(
        json!({}),
        json!({"to_dingtalk": {"users": {
            "not_contractor": "user.extension.?employment_type.orValue('') != 'contractor'"}}}),
    );
    let ctx = ctx_with(&w, &scope_only);
    // Their pushes do nothing now: out of scope, never deleted one by one.
    let report = pusher_for(&ctx).drain().await.unwrap();
    assert_eq!(report.dead_lettered, 0);
    assert!(sim_user(&w.state().await, "u0").is_some());

    let p = plan(&ctx, PlanOptions::default()).await.unwrap();
    let deletes: Vec<_> = p
        .items
        .iter()
        .filter(|i| i.target == Target::DingTalk && i.action == Action::Delete)
        .collect();
    assert_eq!(deletes.len(), 30, "{}", p.render_table());
    assert!(p.deletions_held);
    assert!(deletes.iter().all(|d| d.held));

    let report = reconcile(&ctx, &pusher_for(&ctx), &p, false).await.unwrap();
    assert_eq!(report.skipped_held, 30);
    let state = w.state().await;
    assert!(sim_user(&state, "u0").is_some(), "held, not deleted");

    // Confirmed, they leave DingTalk; the rest stay.
    let report = reconcile(&ctx, &pusher_for(&ctx), &p, true).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let state = w.state().await;
    assert!(sim_user(&state, "u0").is_none());
    assert!(sim_user(&state, "u30").is_some());
    w.finish().await;
}

/// A mapping change that only touches departments: `plan` lists each department's DingTalk
/// update field by field (DingTalk's value now, OA's mapped), reconcile pushes it, OA keeps its
/// own names, and the next plan is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_mapping_change_is_planned_field_by_field_and_converges() {
    let w = oa_org(20, 4, 0, &Rules::default()).await;
    let prefixed = rules(
        json!({"departments": {"fields": {"name": {
            "to_dingtalk": "'ACME ' + dept.name",
            "to_oa": "dept.name.startsWith('ACME ') ? dept.name.substring(5) : dept.name",
            "owner": "oa"}}}}),
        json!({}),
    );
    assert!(approval::pending(&w.store, &prefixed).await.unwrap());
    let ctx = ctx_with(&w, &prefixed);

    let p = plan(&ctx, PlanOptions::default()).await.unwrap();
    let depts: Vec<_> = p
        .items
        .iter()
        .filter(|i| i.kind == directory_store::EntityKind::Department)
        .collect();
    assert_eq!(depts.len(), 4, "{}", p.render_table());
    for i in &depts {
        assert_eq!((i.target, i.action), (Target::DingTalk, Action::Update));
        assert_eq!(i.fields, vec!["name".to_owned()]);
        assert_eq!(i.changes.len(), 1);
        let (old, new) = (&i.changes[0].old, &i.changes[0].new);
        assert_eq!(new, &json!(format!("ACME {}", old.as_str().unwrap())));
    }
    assert!(
        p.items.iter().all(|i| i.target == Target::DingTalk),
        "OA's names do not change:\n{}",
        p.render_table()
    );
    assert!(
        p.render_table().contains("ACME Dept 0"),
        "{}",
        p.render_table()
    );

    let report = reconcile(&ctx, &pusher_for(&ctx), &p, true).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    approval::approve(&w.store, &prefixed, w.clock.now_ms())
        .await
        .unwrap();
    let state = w.state().await;
    for d in 0..4 {
        assert_eq!(
            find(
                &state,
                "departments",
                "name",
                &json!(format!("ACME Dept {d}"))
            )
            .len(),
            1,
            "Dept {d} renamed in DingTalk"
        );
        let oa = w
            .store
            .get_department(OaDeptId(10 + d))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(oa.entity.name, format!("Dept {d}"));
    }
    let again = plan(&ctx, PlanOptions::default()).await.unwrap();
    assert!(again.is_empty(), "{}", again.render_table());
    w.finish().await;
}
