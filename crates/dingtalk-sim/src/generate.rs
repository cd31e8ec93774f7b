//! The sample-org generator: a realistic, deterministic organization of any size.
//!
//! Same `(users, depts, seed)` ⇒ the same org, id for id, so a demo or a benchmark can be
//! repeated. The shape imitates real companies rather than a uniform tree: department parents
//! are drawn with a bias towards early (shallow) departments, which gives a few wide branches and
//! many narrow ones, down to [`MAX_GEN_DEPTH`] levels; members are drawn with a bias too, so
//! department sizes are uneven. About one user in ten belongs to more than one department. Each
//! department with members gets a manager, who is the `manager_userid` of its other members.
//!
//! It writes straight into the `Org` (no per-call validation and no events: this is the state
//! before the story begins), but every value it produces satisfies the API's own rules (name
//! characters, unique mobiles and emails, at most 100 departments per user), which the tests
//! check by re-validating a generated org. Mobiles and job numbers come from an injective
//! function of the user's index, so uniqueness needs no lookup; 100,000 users take about a
//! second and some 100 MB. Some users carry a `telephone` (unique, from the job number), an
//! `org_email` and a `remark`, chosen from the index without drawing from the RNG, so a seed
//! still gives the same ids, names and memberships as before these fields existed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use crate::org::{BUILTIN_ROLES, Dept, Org, ROOT_DEPT, Role, RoleGroup, User};

/// Remarks some users carry (`remark`, free text up to 2000 characters).
const REMARKS: &[&str] = &["试用期", "外派", "兼职", "Remote"];

/// Deepest level the generator creates (DingTalk allows more; real orgs rarely go deeper).
pub const MAX_GEN_DEPTH: usize = 8;

const DEPT_STEMS: &[&str] = &[
    "研发",
    "产品",
    "市场",
    "销售",
    "财务",
    "人力资源",
    "行政",
    "法务",
    "运营",
    "客服",
    "采购",
    "质量",
    "设计",
    "数据",
    "安全",
    "基础架构",
    "前端",
    "后端",
    "测试",
    "华东",
    "华南",
    "华北",
    "西南",
    "海外",
    "品牌",
    "渠道",
    "供应链",
    "战略",
    "投资",
    "审计",
];
const DEPT_SUFFIXES: &[&str] = &["部", "中心", "组", "事业部", "团队"];
const ENGLISH_DEPTS: &[&str] = &["Platform Team", "Growth Lab", "Cloud Ops", "Mobile Squad"];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "欧阳", "司马",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "建", "国", "文", "辉", "玲", "婷",
];
const ENGLISH_GIVEN: &[&str] = &[
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Zoe", "Leo", "Grace",
    "Henry",
];
const ENGLISH_SURNAMES: &[&str] = &["Zhang", "Wang", "Smith", "Chen", "Brown", "Li", "Lee", "Wu"];
const TITLES: &[&str] = &[
    "工程师",
    "高级工程师",
    "产品经理",
    "设计师",
    "销售代表",
    "会计",
    "人事专员",
    "行政助理",
    "项目经理",
    "数据分析师",
    "Software Engineer",
    "Account Manager",
];
const MOBILE_PREFIXES: &[&str] = &["13", "15", "17", "18", "19"];
const ROLE_GROUPS: &[(&str, &[&str])] = &[
    ("职务", &["总监", "经理", "主管", "专员"]),
    ("岗位", &["财务", "人事", "行政", "IT支持", "法务"]),
    ("项目组", &["项目甲", "项目乙", "项目丙"]),
];

/// Picks an index in `0..len`, biased towards small indexes (squared uniform).
fn skewed(rng: &mut StdRng, len: usize) -> usize {
    let r: f64 = rng.r#gen();
    ((r * r * len as f64) as usize).min(len.saturating_sub(1))
}

/// A Chinese or (one in five) English person name.
fn person_name(rng: &mut StdRng) -> (String, bool) {
    if rng.gen_ratio(1, 5) {
        let given = ENGLISH_GIVEN[rng.gen_range(0..ENGLISH_GIVEN.len())];
        let surname = ENGLISH_SURNAMES[rng.gen_range(0..ENGLISH_SURNAMES.len())];
        return (format!("{given} {surname}"), true);
    }
    let mut name = SURNAMES[rng.gen_range(0..SURNAMES.len())].to_owned();
    for _ in 0..rng.gen_range(1..=2) {
        name.push_str(GIVEN[rng.gen_range(0..GIVEN.len())]);
    }
    (name, false)
}

/// Fills `org` (fresh from `Org::new`) with `depts` departments and `users` users.
pub fn populate(org: &mut Org, users: usize, depts: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dept_ids = generate_depts(org, &mut rng, depts);
    let userids = generate_users(org, &mut rng, users, &dept_ids);
    assign_managers(org);
    generate_roles(org, &mut rng, &userids);
}

fn generate_depts(org: &mut Org, rng: &mut StdRng, count: usize) -> Vec<i64> {
    // (id, depth), in creation order, for the parent draw.
    let mut nodes: Vec<(i64, usize)> = vec![(ROOT_DEPT, 0)];
    let mut names: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
    for i in 0..count {
        let (parent, depth) = loop {
            let candidate = nodes[skewed(rng, nodes.len())];
            if candidate.1 < MAX_GEN_DEPTH {
                break candidate;
            }
        };
        let base = if rng.gen_ratio(1, 25) {
            ENGLISH_DEPTS[rng.gen_range(0..ENGLISH_DEPTS.len())].to_owned()
        } else {
            let stem = DEPT_STEMS[rng.gen_range(0..DEPT_STEMS.len())];
            let suffix = DEPT_SUFFIXES[rng.gen_range(0..DEPT_SUFFIXES.len())];
            format!("{stem}{suffix}")
        };
        let taken = names.entry(parent).or_default();
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}{n}");
            n += 1;
        }
        taken.insert(name.clone());
        let id = org.next_dept_id();
        let mut dept = Dept::new(id, name, parent);
        dept.order = i64::try_from(i).unwrap_or(i64::MAX);
        if rng.gen_ratio(1, 3) {
            dept.source_identifier = Some(format!("oa-dept-{i}"));
        }
        dept.create_dept_group = rng.gen_ratio(1, 4);
        org.depts.insert(id, dept);
        if let Some(p) = org.depts.get_mut(&parent) {
            p.children.insert(id);
        }
        nodes.push((id, depth + 1));
    }
    nodes.into_iter().map(|(id, _)| id).collect()
}

fn generate_users(org: &mut Org, rng: &mut StdRng, count: usize, dept_ids: &[i64]) -> Vec<String> {
    let mut userids = Vec::with_capacity(count);
    // Multiplier coprime to 10^9, so `i * M mod 10^9` is injective for i < 10^9.
    const M: u64 = 736_481_113;
    let offset = rng.gen_range(0..1_000_000_000u64);
    for i in 0..count {
        let index = i as u64;
        let (name, english) = person_name(rng);
        let primary = if i == 0 {
            ROOT_DEPT
        } else {
            dept_ids[skewed(rng, dept_ids.len())]
        };
        let depts = with_extra_depts(rng, primary, dept_ids);
        let number = (index.wrapping_mul(M).wrapping_add(offset)) % 1_000_000_000;
        let mobile = format!("{}{number:09}", MOBILE_PREFIXES[i % MOBILE_PREFIXES.len()]);
        let job = 100_000 + index;
        let email = rng
            .gen_ratio(4, 5)
            .then(|| sample_email(&name, english, job));
        let extension = rng.gen_ratio(1, 10).then(|| workstation(rng));
        let dept_order: BTreeMap<i64, i64> =
            depts.iter().map(|d| (*d, rng.gen_range(0..100))).collect();
        let userid = org.generate_userid();
        let unionid = org.generate_unionid();
        let user = User {
            userid: userid.clone(),
            unionid,
            name,
            state_code: "86".to_owned(),
            mobile,
            hide_mobile: false,
            telephone: (i % 7 == 3).then(|| format!("0571-8{job:07}")),
            job_number: Some(format!("{job}")),
            title: Some(TITLES[rng.gen_range(0..TITLES.len())].to_owned()),
            email,
            org_email: (i % 5 == 1).then(|| format!("{job}@corp.dingsim.example.com")),
            work_place: rng.gen_ratio(1, 2).then(|| "杭州".to_owned()),
            remark: (i % 9 == 4).then(|| REMARKS[i % REMARKS.len()].to_owned()),
            dept_ids: depts,
            dept_order,
            dept_title: BTreeMap::new(),
            extension,
            // 2010-01-01 .. 2026-01-01 in ms.
            hired_date: Some(rng.gen_range(1_262_304_000_000i64..1_767_225_600_000)),
            manager_userid: None,
            login_email: None,
            senior: false,
            active: i == 0 || rng.gen_ratio(19, 20),
            admin: i == 0,
            boss: i == 0,
            roles: BTreeSet::new(),
            entry_seq: 0,
            modify_seq: 0,
        };
        org.insert_generated_user(user);
        userids.push(userid);
    }
    userids
}

/// The primary department plus, for one user in ten, one or two others (when there are others).
fn with_extra_depts(rng: &mut StdRng, primary: i64, dept_ids: &[i64]) -> Vec<i64> {
    let mut depts = vec![primary];
    if dept_ids.len() > 1 && rng.gen_ratio(1, 10) {
        for _ in 0..rng.gen_range(1..=2) {
            let extra = dept_ids[rng.gen_range(0..dept_ids.len())];
            if !depts.contains(&extra) {
                depts.push(extra);
            }
        }
    }
    depts
}

/// A work email: the name for an English name, `staff` otherwise, made unique by the job number.
fn sample_email(name: &str, english: bool, job: u64) -> String {
    let local = if english {
        name.to_lowercase().replace(' ', ".")
    } else {
        "staff".to_owned()
    };
    format!("{local}.{job}@dingsim.example.com")
}

/// An `extension` with a desk location, as some orgs keep.
fn workstation(rng: &mut StdRng) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "工位".to_owned(),
        Value::String(format!(
            "{}F-{}",
            rng.gen_range(1..30),
            rng.gen_range(1..200)
        )),
    );
    m
}

/// Makes the first member of each department its manager, and each user's manager the manager
/// of their first department (or of the nearest ancestor with one).
fn assign_managers(org: &mut Org) {
    let mut managers: BTreeMap<i64, String> = BTreeMap::new();
    for d in org.depts.values_mut() {
        if let Some(first) = d.members.iter().next() {
            d.manager_userids = vec![first.clone()];
            managers.insert(d.id, first.clone());
        }
    }
    let parents: BTreeMap<i64, i64> = org.depts.values().map(|d| (d.id, d.parent_id)).collect();
    for user in org.users.values_mut() {
        let mut dept = user.dept_ids.first().copied().unwrap_or(ROOT_DEPT);
        loop {
            match managers.get(&dept) {
                Some(m) if *m != user.userid => {
                    user.manager_userid = Some(m.clone());
                    break;
                }
                _ if dept == ROOT_DEPT => break,
                _ => dept = parents.get(&dept).copied().unwrap_or(ROOT_DEPT),
            }
        }
    }
}

fn generate_roles(org: &mut Org, rng: &mut StdRng, userids: &[String]) {
    if userids.is_empty() {
        return;
    }
    // The boss is the main administrator.
    let main_admin = org
        .roles
        .values()
        .find(|r| r.builtin && r.name == BUILTIN_ROLES[2])
        .map(|r| r.id);
    if let Some(role) = main_admin {
        add_member(org, role, &userids[0]);
    }
    for (group_name, roles) in ROLE_GROUPS {
        let group = org.next_label_id();
        let mut role_ids = BTreeSet::new();
        for role_name in *roles {
            let id = org.next_label_id();
            org.roles.insert(
                id,
                Role {
                    id,
                    name: (*role_name).to_owned(),
                    group_id: group,
                    builtin: false,
                    members: BTreeSet::new(),
                },
            );
            role_ids.insert(id);
        }
        org.groups.insert(
            group,
            RoleGroup {
                id: group,
                name: (*group_name).to_owned(),
                builtin: false,
                roles: role_ids.clone(),
            },
        );
        for role in role_ids {
            let members = (userids.len() / 40).clamp(1, 2_000);
            for _ in 0..members {
                let user = &userids[rng.gen_range(0..userids.len())];
                add_member(org, role, user);
            }
        }
    }
}

fn add_member(org: &mut Org, role: i64, userid: &str) {
    if let Some(r) = org.roles.get_mut(&role) {
        r.members.insert(userid.to_owned());
    }
    if let Some(u) = org.users.get_mut(userid) {
        u.roles.insert(role);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::dept::check_dept_name;

    fn org(users: usize, depts: usize, seed: u64) -> Org {
        let mut org = Org::new("Corp", seed, 60008);
        populate(&mut org, users, depts, seed);
        org
    }

    /// Resident memory of this process in KiB (Linux), for the measurement below.
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    #[test]
    #[ignore = "measurement; run with --ignored --nocapture"]
    fn hundred_thousand_users_measurement() {
        let before = rss_kib();
        let started = std::time::Instant::now();
        let org = org(100_000, 2_000, 1);
        let elapsed = started.elapsed();
        assert_eq!(org.users.len(), 100_000);
        eprintln!(
            "100,000 users / 2,000 departments: {elapsed:?}, +{} MiB resident",
            rss_kib().saturating_sub(before) / 1024
        );
    }

    #[test]
    fn same_seed_same_org_different_seed_different_org() {
        let a = org(500, 40, 9).state_json();
        let b = org(500, 40, 9).state_json();
        let c = org(500, 40, 10).state_json();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn generated_org_obeys_the_api_rules() {
        let org = org(3000, 150, 4);
        assert_eq!(org.users.len(), 3000);
        assert_eq!(org.depts.len(), 151);
        let mut mobiles = HashSet::new();
        let mut emails = HashSet::new();
        let mut multi = 0;
        for u in org.users.values() {
            assert!(
                crate::org::user_fields::parse_mobile(&u.mobile).is_some(),
                "{}",
                u.mobile
            );
            assert!(mobiles.insert(u.mobile.clone()), "duplicate mobile");
            if let Some(e) = &u.email {
                assert!(emails.insert(e.clone()), "duplicate email");
            }
            assert!(!u.dept_ids.is_empty() && u.dept_ids.len() <= 100);
            if u.dept_ids.len() > 1 {
                multi += 1;
            }
            for d in &u.dept_ids {
                assert!(org.depts[d].members.contains(&u.userid));
            }
        }
        assert!(multi > 100, "only {multi} users in several departments");
        let mut max_depth = 0;
        for d in org.depts.values() {
            if d.id != ROOT_DEPT {
                assert!(check_dept_name(&d.name).is_ok(), "{}", d.name);
            }
            let siblings: Vec<&str> = org
                .sorted_children(d.id)
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            let unique: HashSet<&&str> = siblings.iter().collect();
            assert_eq!(unique.len(), siblings.len());
            max_depth = max_depth.max(org.depth(d.id).unwrap_or(99));
        }
        assert!(max_depth <= MAX_GEN_DEPTH);
        assert!(max_depth >= 4, "tree too flat: {max_depth}");
        assert!(org.groups.len() >= 4);
        assert!(
            org.roles
                .values()
                .filter(|r| !r.builtin)
                .all(|r| !r.members.is_empty())
        );
    }
}
