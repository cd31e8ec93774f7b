//! Building configs from TOML text and sample entities.

use directory_model::{Department, Mobile, OaDeptId, OaUserId, User};
use mapping::{Loaded, MappingConfig, ScopeConfig};

/// Parses `[mapping]` and `[scope]` out of one TOML document, as the binary will.
pub fn configs(text: &str) -> (MappingConfig, ScopeConfig) {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct File {
        mapping: MappingConfig,
        scope: ScopeConfig,
    }
    let file: File = toml::from_str(text).expect("test TOML parses");
    (file.mapping, file.scope)
}

/// Loads a TOML document that must be valid.
pub fn load(text: &str) -> Loaded {
    let (m, s) = configs(text);
    match mapping::load(&m, &s) {
        Ok(l) => l,
        Err(e) => panic!("config should load: {e}"),
    }
}

/// A user with most optional fields set.
pub fn sample_user() -> User {
    let mut u = User::new(
        OaUserId::new("zhangsan"),
        "Zhang San",
        &[OaDeptId(2), OaDeptId(3)],
    );
    u.job_number = Some("1042".into());
    u.mobile = Some(Mobile::mainland("18513027676"));
    u.email = Some("zs@example.com".into());
    u.work_place = Some("Hangzhou".into());
    u.extension.insert("title_code".into(), "D02".into());
    u
}

pub fn sample_dept() -> Department {
    Department::new(OaDeptId(7), "R&D", Some(OaDeptId(1)))
}
