//! Writing the plan's diff and diffing again changes nothing; what the file does not govern is
//! kept; departments that already exist by name are adopted.

use directory_model::{Department, OaDeptId, User};
use oa_file::load_path;

use crate::helpers::{config, fixture};

fn root() -> Department {
    Department::new(OaDeptId(1), "总部", None)
}

/// Applies a diff the way the binary will (creates, then updates, replacing by id).
fn write(depts: &mut Vec<Department>, users: &mut Vec<User>, diff: oa_file::LoadDiff) {
    depts.extend(diff.create_departments);
    for d in diff.update_departments {
        let i = depts.iter().position(|x| x.id == d.id).expect("dept");
        depts[i] = d;
    }
    users.extend(diff.create_users);
    for u in diff.update_users {
        let i = users.iter().position(|x| x.id == u.id).expect("user");
        users[i] = u;
    }
}

#[test]
fn rerun_against_its_own_result_changes_nothing() {
    let plan = load_path(&fixture("staff-utf8.csv"), &config())
        .expect("load")
        .into_plan()
        .expect("plan");
    let (mut depts, mut users) = (vec![root()], Vec::new());
    let first = plan.diff(&depts, &users);
    assert_eq!(first.create_departments.len(), 14);
    assert_eq!(first.create_users.len(), 20);
    write(&mut depts, &mut users, first);
    let again = plan.diff(&depts, &users);
    assert!(again.is_noop(), "{again:#?}");
    // A second read of the file gives the same ids.
    let plan2 = load_path(&fixture("staff-gbk.csv"), &config())
        .expect("load")
        .into_plan()
        .expect("plan");
    assert!(plan2.diff(&depts, &users).is_noop());
}

#[test]
fn fields_outside_the_file_are_kept_and_changed_ones_updated() {
    let plan = load_path(&fixture("staff-utf8.csv"), &config())
        .expect("load")
        .into_plan()
        .expect("plan");
    let (mut depts, mut users) = (vec![root()], Vec::new());
    let first = plan.diff(&depts, &users);
    write(&mut depts, &mut users, first);
    // Someone set a remark and a membership order in the console, and a department's order.
    users[3].remark = Some("备注".into());
    users[3].departments[0].order = 7;
    depts[2].order = 5;
    users[4].name = "改名".into();
    let diff = plan.diff(&depts, &users);
    assert_eq!(diff.update_users.len(), 1, "{diff:#?}");
    assert_eq!(diff.update_users[0].id, users[4].id);
    assert_ne!(diff.update_users[0].name, "改名");
    assert!(diff.update_departments.is_empty());
}

#[test]
fn existing_departments_of_the_same_name_are_adopted() {
    let plan = load_path(&fixture("staff-utf8.csv"), &config())
        .expect("load")
        .into_plan()
        .expect("plan");
    let sales = Department::new(OaDeptId(42), "销售部", Some(OaDeptId(1)));
    let (mut depts, mut users) = (vec![root(), sales], Vec::new());
    let diff = plan.diff(&depts, &users);
    assert_eq!(diff.create_departments.len(), 13);
    assert!(diff.create_departments.iter().all(|d| d.name != "销售部"));
    let east = diff
        .create_departments
        .iter()
        .find(|d| d.name == "华东")
        .expect("华东");
    assert_eq!(east.parent, Some(OaDeptId(42)));
    let wang = diff
        .create_users
        .iter()
        .find(|u| u.name == "王芳")
        .expect("王芳");
    assert_eq!(wang.main_department, Some(OaDeptId(42)));
    write(&mut depts, &mut users, diff);
    assert!(plan.diff(&depts, &users).is_noop());
}

#[test]
fn department_ids_must_exist_and_lists_give_several_memberships() {
    let mut config = config();
    config.columns.department_path = None;
    config.columns.department_id = Some("部门".into());
    config.list_separator = Some(";".into());
    let text = format!(
        "{}\na,甲,13900000001,,,经理,7;8,,,\nb,乙,13900000002,,,,9,a,,\nc,丙,13900000003,,,,x7,,,\n",
        crate::helpers::HEADER
    );
    let loaded =
        oa_file::load_bytes(text.as_bytes(), oa_file::FileKind::Csv, &config).expect("load");
    assert_eq!(crate::helpers::cells(&loaded.problems), [(4, "部门")]);
    assert!(loaded.problems[0].reason.contains("x7"));
    let a = &loaded.plan.users[0].user;
    assert_eq!(
        a.department_ids().collect::<Vec<_>>(),
        [OaDeptId(7), OaDeptId(8)]
    );
    assert_eq!(a.main_department, Some(OaDeptId(7)));
    assert!(
        a.departments
            .iter()
            .all(|m| m.title.as_deref() == Some("经理"))
    );
    assert!(loaded.plan.departments.is_empty());
    let depts = vec![
        root(),
        Department::new(OaDeptId(7), "七", Some(OaDeptId(1))),
        Department::new(OaDeptId(8), "八", Some(OaDeptId(1))),
    ];
    let diff = loaded.plan.diff(&depts, &[]);
    assert_eq!(diff.unknown_departments, [(3, OaDeptId(9))]);
    assert_eq!(diff.departments_not_in_file, Vec::<OaDeptId>::new());
}
