//! `[mapping]` and `[scope]`: field mapping and scope as CEL expressions (the `mapping` crate),
//! compiled once when the configuration is loaded.
//!
//! Why here: the expressions are configuration, so their problems belong with every other
//! configuration problem — `dingsync check` lists each one with its key and, for a syntax
//! error, its line and column, all at once — and the engine receives them already compiled in
//! its [`Policy`](sync_engine::Policy). Two sections that say nothing are today's fixed
//! behaviour and cost nothing at run time ([`Rules::default`]).
//!
//! What the engine has its own settings for is taken from the mapping here, so that there is
//! one home for each: field owners and the conflict winner go into the policy's merge policies
//! (a `winner` under `[mapping.users]` overrides `sync.conflict_winner` for users), and
//! `mapping.users.soft_match` becomes the soft-match order.

use std::path::Path;

use directory_model::UserField;
use mapping::{MappingConfig, ScopeConfig};
use sync_engine::Policy;
use sync_engine::policy::MatchKey;
use sync_engine::rules::Rules;

/// The compiled sections, or every problem found in them (as `key (line L, column C): why`).
pub fn compile(mapping: &MappingConfig, scope: &ScopeConfig) -> Result<Rules, Vec<String>> {
    let mut problems = Vec::new();
    if let Some(order) = &mapping.users.soft_match {
        for (i, name) in order.iter().enumerate() {
            if !["mobile", "job_number", "email"].contains(&name.as_str()) {
                problems.push(format!(
                    "mapping.users.soft_match[{i}]: `{name}` cannot link users; soft matching \
                     compares mobile, job_number or email"
                ));
            }
        }
    }
    if *mapping == MappingConfig::default() && *scope == ScopeConfig::default() {
        return if problems.is_empty() {
            Ok(Rules::default())
        } else {
            Err(problems)
        };
    }
    match mapping::load(mapping, scope) {
        Ok(loaded) if problems.is_empty() => Ok(Rules::new(loaded)),
        Ok(_) => Err(problems),
        Err(errors) => {
            problems.extend(errors.problems.iter().map(ToString::to_string));
            Err(problems)
        }
    }
}

/// The `[mapping]` and `[scope]` sections of a TOML file that may hold nothing else (what
/// `dingsync bench --mapping FILE` runs with); every other section is ignored.
pub fn read_file(path: &Path) -> Result<(MappingConfig, ScopeConfig), Vec<String>> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Sections {
        mapping: MappingConfig,
        scope: ScopeConfig,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    let sections: Sections = toml::from_str(&text).map_err(|e| vec![e.to_string()])?;
    Ok((sections.mapping, sections.scope))
}

/// Puts what the rules say about owners, winners and soft matching into `policy`.
pub fn apply_to_policy(policy: &mut Policy, rules: Rules) {
    if let Some(loaded) = rules.loaded() {
        let m = &loaded.mapping;
        policy
            .users
            .authority
            .extend(m.user_policy().authority.clone());
        if m.user_winner_configured() {
            policy.users.winner = m.user_policy().winner;
        }
        policy
            .departments
            .authority
            .extend(m.department_policy().authority.clone());
        if m.department_winner_configured() {
            policy.departments.winner = m.department_policy().winner;
        }
        policy.soft_match.order = m
            .soft_match()
            .iter()
            .filter_map(|f| match f {
                UserField::Mobile => Some(MatchKey::Mobile),
                UserField::JobNumber => Some(MatchKey::JobNumber),
                UserField::Email => Some(MatchKey::Email),
                _ => None,
            })
            .collect();
    }
    policy.rules = rules;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> (MappingConfig, ScopeConfig) {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Both {
            mapping: MappingConfig,
            scope: ScopeConfig,
        }
        let both: Both = toml::from_str(text).expect("toml");
        (both.mapping, both.scope)
    }

    #[test]
    fn absent_sections_are_the_identity() {
        let rules = compile(&MappingConfig::default(), &ScopeConfig::default()).expect("ok");
        assert!(rules.loaded().is_none());
        assert!(rules.fingerprint().is_none());
    }

    #[test]
    fn every_problem_is_reported_with_key_and_position() {
        let (m, s) = sections(
            r#"
[mapping.users]
soft_match = ["name"]
[mapping.users.fields.job_number]
to_dingtalk = '"E" + '
to_oa = 'user.job_number'
owner = "oa"
[mapping.users.fields.nickname]
to_oa = "name"
[scope.to_dingtalk.users]
broken = 'user.name ==='
"#,
        );
        let problems = compile(&m, &s).expect_err("invalid");
        let text = problems.join("\n");
        for needle in [
            "mapping.users.soft_match[0]",
            "mapping.users.fields.job_number.to_dingtalk (line 1, column",
            "mapping.users.fields.nickname",
            "scope.to_dingtalk.users.broken (line 1, column",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }

    #[test]
    fn check_reports_mapping_problems_with_the_other_config_problems() {
        let (m, s) = sections(
            "[mapping.users.fields.name]\nto_dingtalk = 'user.nam +'\n[scope.to_oa.users]\nx = 'usr.name == \"a\"'\n",
        );
        let mut c = crate::config::Config::default();
        c.dingtalk.base_url = "ftp://x".into();
        c.mapping = m;
        c.scope = s;
        let text = c.validate().expect_err("invalid").to_string();
        for needle in [
            "dingtalk.base_url",
            "mapping.users.fields.name.to_dingtalk (line 1, column",
            "scope.to_oa.users.x (line 1, column 1): unknown variable `usr`",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }

    #[test]
    fn owners_winner_and_soft_match_reach_the_policy() {
        let (m, s) = sections(
            r#"
[mapping.users]
winner = "dingtalk"
soft_match = ["job_number"]
[mapping.users.fields.job_number]
to_dingtalk = 'user.job_number == null ? null : "E" + user.job_number'
to_oa = 'user.job_number == null ? null : user.job_number.substring(1)'
owner = "oa"
"#,
        );
        let rules = compile(&m, &s).expect("valid");
        let mut policy = Policy::default();
        apply_to_policy(&mut policy, rules);
        assert_eq!(policy.users.winner, directory_model::Side::DingTalk);
        assert_eq!(
            policy.users.authority_of(UserField::JobNumber),
            directory_model::Authority::Oa
        );
        assert_eq!(policy.soft_match.order, vec![MatchKey::JobNumber]);
        assert_eq!(policy.departments.winner, directory_model::Side::Oa);
        assert!(policy.rules.fingerprint().is_some());
    }

    /// `docs/examples/mapping-ten-rules.toml`, the mapping `bench import --mapping` measures:
    /// it compiles, has ten rules, and each does what its comment says.
    #[test]
    fn the_ten_rule_example_file_loads_and_each_rule_works() {
        use directory_model::{Department, OaDeptId, OaUserId, User};
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/examples/mapping-ten-rules.toml");
        let (m, s) = read_file(&path).expect("the example file reads");
        let rules = compile(&m, &s).expect("the example file compiles");
        let count = m.users.fields.len()
            + m.users.extension.len()
            + m.departments.fields.len()
            + m.departments.extension.len()
            + s.to_dingtalk.users.len()
            + s.to_dingtalk.departments.len()
            + s.to_oa.users.len()
            + s.to_oa.departments.len();
        assert_eq!(count, 10, "ten rules");
        let loaded = rules.loaded().expect("rules");

        // DingTalk -> OA, as the import maps a person.
        let mut ding = User::new(OaUserId::new("u1"), "Li Lei", &[OaDeptId(2), OaDeptId(3)]);
        ding.job_number = Some("100042".into());
        ding.email = Some("Li.Lei@Example.COM".into());
        ding.departments[0].title = Some("高级工程师".into());
        ding.departments[1].title = Some("Chief Cat Herder".into());
        ding.extension.insert("工位".into(), "3F-12".into());
        let oa = loaded.mapping.user_to_oa(&ding).expect("maps").entity;
        assert_eq!(oa.job_number.as_deref(), Some("HR-100042"));
        assert_eq!(oa.email.as_deref(), Some("li.lei@example.com"));
        assert_eq!(oa.departments[0].title.as_deref(), Some("T02"));
        assert_eq!(oa.departments[1].title.as_deref(), Some("Chief Cat Herder"));
        assert_eq!(oa.extension.get("desk").map(String::as_str), Some("3F-12"));
        assert!(!oa.extension.contains_key("工位"));

        // OA -> DingTalk: the inverse pair gives DingTalk's values back.
        let back = loaded.mapping.user_to_dingtalk(&oa).expect("maps");
        assert_eq!(back.entity.job_number.as_deref(), Some("100042"));
        assert_eq!(
            back.entity.departments[0].title.as_deref(),
            Some("高级工程师")
        );
        assert_eq!(
            back.entity.extension.get("工位").map(String::as_str),
            Some("3F-12")
        );
        assert!(back.create_only.contains(&UserField::Remark));
        let dept = Department::new(OaDeptId(5), "  Sales ", Some(OaDeptId(1)));
        let mapped = loaded.mapping.department_to_dingtalk(&dept).expect("maps");
        assert_eq!(mapped.entity.name, "Sales");

        // Scope: contractors and the subsidiary stay out of DingTalk, users without a job
        // number out of OA.
        let mut contractor = oa.clone();
        contractor
            .extension
            .insert("employment_type".into(), "contractor".into());
        let scope = &loaded.scope;
        assert!(
            scope
                .includes_oa_user(&oa, &[OaDeptId(2)])
                .expect("ok")
                .included
        );
        assert!(
            !scope
                .includes_oa_user(&contractor, &[OaDeptId(2)])
                .expect("ok")
                .included
        );
        let sub = Department::new(OaDeptId(900_001), "Sub", Some(OaDeptId(900_000)));
        let chain = [OaDeptId(900_001), OaDeptId(900_000), OaDeptId(1)];
        assert!(
            !scope
                .includes_oa_department(&sub, &chain)
                .expect("ok")
                .included
        );
        assert!(
            scope
                .includes_oa_department(&dept, &[OaDeptId(5), OaDeptId(1)])
                .expect("ok")
                .included
        );
        let mut no_number = ding.clone();
        no_number.job_number = None;
        assert!(
            scope
                .includes_dingtalk_user(&ding, &[])
                .expect("ok")
                .included
        );
        assert!(
            !scope
                .includes_dingtalk_user(&no_number, &[])
                .expect("ok")
                .included
        );
    }
}
