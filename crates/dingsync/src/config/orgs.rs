//! `[[orgs]]`: several DingTalk organizations (corps) in one deployment (issue 20).
//!
//! `check` reports every problem of every org (naming the org); `serve` runs one runtime per
//! org (`crate::orgs`), and `import`, `plan`, `reconcile`, `status` and `dead-letters` run for
//! every org or the one `--org` names, each on the org's derived configuration
//! ([`Config::for_org`]).
//!
//! Why a list of tables: an internal DingTalk app serves exactly one corp, so N corps mean N apps,
//! each with its own credentials, callback keys and events mode. Settings shared by every org
//! (`dingtalk.base_url`, `dingtalk.qps`, the database, the listeners) stay in their sections.
//! A configuration without `[[orgs]]` is one org named `default`, made of `[dingtalk]`,
//! `[callback]`, `[events]` and `[sync]` ([`OrgSection::from_single`]), so every existing file
//! keeps its meaning.
//!
//! Secrets of an org come from the file itself, from a file (`client_secret_file`,
//! `callback_token_file`, `callback_aes_key_file`), or from an environment variable the org names
//! (`client_secret_env`, …): `DINGSYNC_<SECTION>__<KEY>` cannot address one table of a list, so
//! the org says which variable holds its secret.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, EventsMode, Secret};

/// Longest org name (it appears in paths, metric labels and log lines).
const MAX_NAME: usize = 32;

/// One `[[orgs]]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OrgSection {
    /// Short name: 1–32 of `a-z 0-9 - _`, unique; used in `/callbacks/dingtalk/{name}`,
    /// `--org NAME` and the `org` metric label.
    pub name: String,
    pub corp_id: String,
    /// The org's app: Client ID (AppKey).
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_file: Option<PathBuf>,
    /// The name of an environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    pub callback_token: Secret,
    pub callback_token_file: Option<PathBuf>,
    pub callback_token_env: Option<String>,
    pub callback_aes_key: Secret,
    pub callback_aes_key_file: Option<PathBuf>,
    pub callback_aes_key_env: Option<String>,
    /// The owner key of the org's encrypted callbacks; empty means the client id (console
    /// configured push), as in `[callback]`.
    pub owner_key: String,
    /// How this org's events arrive; `None` takes `[events] mode`.
    pub events_mode: Option<EventsMode>,
    /// DingTalk department ids of this org whose subtrees are synced (empty: everything).
    pub include_depts: Vec<i64>,
    /// DingTalk department ids of this org that are never synced.
    pub exclude_depts: Vec<i64>,
    /// The top-level OA department the org's DingTalk root is linked to (its tree is that
    /// department's subtree); `None`: a top-level OA department of its own, named after the
    /// org, created when the org first starts (`crate::orgs::ensure_root`).
    pub oa_parent: Option<i64>,
}

impl OrgSection {
    /// The one org a configuration without `[[orgs]]` describes, named `default`.
    pub fn from_single(config: &Config) -> OrgSection {
        OrgSection {
            name: "default".to_owned(),
            corp_id: config.dingtalk.corp_id.clone(),
            client_id: config.dingtalk.client_id.clone(),
            client_secret: config.dingtalk.client_secret.clone(),
            callback_token: config.callback.token.clone(),
            callback_aes_key: config.callback.aes_key.clone(),
            owner_key: config.callback.owner_key.clone(),
            events_mode: Some(config.events.mode),
            include_depts: config.sync.include_depts.clone(),
            exclude_depts: config.sync.exclude_depts.clone(),
            ..OrgSection::default()
        }
    }

    /// Fills each secret from its `*_file` or `*_env` source; problems name the org and key.
    pub(super) fn read_secrets(&mut self, at: &str, problems: &mut Vec<String>) {
        let sources = [
            (
                "client_secret",
                &self.client_secret_file,
                &self.client_secret_env,
                &mut self.client_secret,
            ),
            (
                "callback_token",
                &self.callback_token_file,
                &self.callback_token_env,
                &mut self.callback_token,
            ),
            (
                "callback_aes_key",
                &self.callback_aes_key_file,
                &self.callback_aes_key_env,
                &mut self.callback_aes_key,
            ),
        ];
        for (key, file, env, target) in sources {
            if file.is_some() && env.is_some() {
                problems.push(format!(
                    "{at}: {key}_file and {key}_env are both set; choose one"
                ));
                continue;
            }
            if let Some(path) = file {
                match std::fs::read_to_string(path) {
                    Ok(text) => *target = Secret::new(text.trim()),
                    Err(e) => problems.push(format!(
                        "{at}: {key}_file: cannot read {}: {e}",
                        path.display()
                    )),
                }
            }
            if let Some(var) = env {
                match std::env::var(var) {
                    Ok(value) => *target = Secret::new(value.trim()),
                    Err(_) => problems.push(format!(
                        "{at}: {key}_env: the environment variable {var} is not set"
                    )),
                }
            }
        }
    }

    /// What is wrong with this org alone; each line starts with `at` (`orgs[i] (name)`).
    fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.chars().count() <= MAX_NAME
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !name_ok {
            p.push(format!(
                "{at}: name: must be 1 to {MAX_NAME} of a-z, 0-9, - and _ (got {:?})",
                self.name
            ));
        }
        if self.corp_id.is_empty() {
            p.push(format!(
                "{at}: corp_id: missing (the organization's CorpId)"
            ));
        }
        if self.client_id.is_empty() {
            p.push(format!(
                "{at}: client_id: missing (the org's app: Client ID / AppKey)"
            ));
        }
        if self.client_secret.is_empty() {
            p.push(format!(
                "{at}: client_secret: missing (set client_secret, client_secret_file or client_secret_env)"
            ));
        }
        let token_len = self.callback_token.expose().chars().count();
        if !self.callback_token.is_empty() && !(3..=64).contains(&token_len) {
            p.push(format!(
                "{at}: callback_token: must be 3 to 64 characters (has {token_len})"
            ));
        }
        let key = self.callback_aes_key.expose();
        if !key.is_empty() && (key.len() != 43 || !key.chars().all(|c| c.is_ascii_alphanumeric())) {
            p.push(format!(
                "{at}: callback_aes_key: must be exactly 43 letters and digits (DingTalk's EncodingAESKey)"
            ));
        }
        if self.callback_token.is_empty() != self.callback_aes_key.is_empty() {
            p.push(format!(
                "{at}: callback_token and callback_aes_key go together; set both or neither"
            ));
        }
        if let Some(d) = self.include_depts.iter().find(|d| **d < 1) {
            p.push(format!("{at}: include_depts: {d} is not a department id"));
        }
        if let Some(d) = self.exclude_depts.iter().find(|d| **d < 1) {
            p.push(format!("{at}: exclude_depts: {d} is not a department id"));
        }
        if self.oa_parent.is_some_and(|d| d < 1) {
            p.push(format!(
                "{at}: oa_parent: must be an OA department id (at least 1)"
            ));
        }
        p
    }
}

/// Where an org is in the file, for messages: `orgs[1] (beijing)`.
pub(super) fn place(index: usize, org: &OrgSection) -> String {
    if org.name.is_empty() {
        format!("orgs[{index}]")
    } else {
        format!("orgs[{index}] ({})", org.name)
    }
}

impl Config {
    /// The organizations this configuration describes: `[[orgs]]`, or the one org `default`.
    pub fn effective_orgs(&self) -> Vec<OrgSection> {
        if self.orgs.is_empty() {
            vec![OrgSection::from_single(self)]
        } else {
            self.orgs.clone()
        }
    }

    /// The single-org configuration that runs `org`: this one with `[dingtalk]`'s app and corp,
    /// `[callback]`'s keys, `[events] mode` and `[sync]`'s scope replaced by the org's, and no
    /// `[[orgs]]`. Why: every part of the service that serves one org (client, callback route,
    /// Stream, workers) is built from a `Config` already, so one org's runtime is that code run
    /// on the org's derived configuration, over the store scoped to the org.
    pub fn for_org(&self, org: &OrgSection) -> Config {
        let mut c = self.clone();
        c.orgs = Vec::new();
        c.org_scope = Some(org.name.clone());
        c.dingtalk.client_id = org.client_id.clone();
        c.dingtalk.client_secret = org.client_secret.clone();
        c.dingtalk.client_secret_file = None;
        c.dingtalk.corp_id = org.corp_id.clone();
        c.callback.token = org.callback_token.clone();
        c.callback.token_file = None;
        c.callback.aes_key = org.callback_aes_key.clone();
        c.callback.aes_key_file = None;
        c.callback.owner_key = org.owner_key.clone();
        if let Some(mode) = org.events_mode {
            c.events.mode = mode;
        }
        c.sync.include_depts = org.include_depts.clone();
        c.sync.exclude_depts = org.exclude_depts.clone();
        c
    }

    /// Every problem of `[[orgs]]`, each naming its org; nothing when there is no `[[orgs]]`
    /// (the single org is checked by the sections it comes from).
    pub(super) fn org_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.orgs.is_empty() {
            return p;
        }
        let mut names = BTreeSet::new();
        let mut corps = BTreeSet::new();
        let mut apps = BTreeSet::new();
        for (i, org) in self.orgs.iter().enumerate() {
            let at = place(i, org);
            p.extend(org.problems(&at));
            if !org.name.is_empty() && !names.insert(org.name.as_str()) {
                p.push(format!(
                    "{at}: name: another org is already named {:?}",
                    org.name
                ));
            }
            if !org.corp_id.is_empty() && !corps.insert(org.corp_id.as_str()) {
                p.push(format!(
                    "{at}: corp_id: another org has the same corp (one [[orgs]] table per corp)"
                ));
            }
            if !org.client_id.is_empty() && !apps.insert(org.client_id.as_str()) {
                p.push(format!(
                    "{at}: client_id: another org uses the same app (an internal app serves exactly one corp)"
                ));
            }
        }
        p
    }

    /// What `check` notes about `[[orgs]]`: the sections an org replaces are ignored.
    pub(super) fn org_warnings(&self) -> Vec<String> {
        if self.orgs.is_empty() || self.dingtalk.client_id.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "[[orgs]] lists {} organization(s): the app of [dingtalk] (client_id {}) is not \
             used; each org runs with its own client_id, callback keys and scope",
            self.orgs.len(),
            self.dingtalk.client_id
        )]
    }

    /// Reads every org's `*_file` / `*_env` secrets.
    pub(super) fn read_org_secrets(&mut self, problems: &mut Vec<String>) {
        for (i, org) in self.orgs.iter_mut().enumerate() {
            let at = place(i, org);
            org.read_secrets(&at, problems);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";

    fn org(name: &str, corp: &str, app: &str) -> OrgSection {
        OrgSection {
            name: name.to_owned(),
            corp_id: corp.to_owned(),
            client_id: app.to_owned(),
            client_secret: Secret::new("secret-value"),
            ..OrgSection::default()
        }
    }

    #[test]
    fn no_orgs_means_one_org_named_default() {
        let mut c = Config::default();
        c.dingtalk.client_id = "app".into();
        c.dingtalk.corp_id = "dingcorp".into();
        c.sync.include_depts = vec![7];
        let orgs = c.effective_orgs();
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].name, "default");
        assert_eq!(orgs[0].client_id, "app");
        assert_eq!(orgs[0].corp_id, "dingcorp");
        assert_eq!(orgs[0].include_depts, vec![7]);
        assert!(c.org_problems().is_empty());
        assert!(c.org_warnings().is_empty());
    }

    #[test]
    fn orgs_parse_from_toml() {
        let text = r#"
[[orgs]]
name = "hq"
corp_id = "dinghq"
client_id = "apphq"
client_secret = "s1"
events_mode = "stream"

[[orgs]]
name = "beijing"
corp_id = "dingbj"
client_id = "appbj"
client_secret = "s2"
callback_token = "tok"
callback_aes_key = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus"
include_depts = [3]
oa_parent = 12
"#;
        let c: Config = toml::from_str(text).expect("parses");
        assert_eq!(c.orgs.len(), 2);
        assert_eq!(c.orgs[0].events_mode, Some(EventsMode::Stream));
        assert_eq!(c.orgs[1].oa_parent, Some(12));
        assert!(c.org_problems().is_empty(), "{:?}", c.org_problems());
        assert_eq!(c.effective_orgs().len(), 2);
        // Without an app in [dingtalk] there is nothing ignored to warn about.
        assert!(c.org_warnings().is_empty());
        let derived = c.for_org(&c.orgs[1]);
        assert_eq!(derived.dingtalk.client_id, "appbj");
        assert_eq!(derived.dingtalk.corp_id, "dingbj");
        assert_eq!(derived.sync.include_depts, vec![3]);
        assert_eq!(derived.org_scope.as_deref(), Some("beijing"));
        assert!(derived.orgs.is_empty());
        let unknown = "[[orgs]]\nname = \"x\"\nsecret = \"typo\"\n";
        assert!(toml::from_str::<Config>(unknown).is_err());
    }

    #[test]
    fn every_problem_names_its_org() {
        let mut c = Config::default();
        let mut bad = org("Bad Name!", "", "app1");
        bad.client_secret = Secret::default();
        bad.callback_token = Secret::new("tok");
        let mut dup = org("dup", "dingx", "app1");
        dup.callback_aes_key = Secret::new("short");
        dup.include_depts = vec![0];
        c.orgs = vec![bad, dup.clone(), dup];
        let text = c.org_problems().join("\n");
        for needle in [
            "orgs[0] (Bad Name!): name: must be",
            "orgs[0] (Bad Name!): corp_id: missing",
            "orgs[0] (Bad Name!): client_secret: missing",
            "orgs[0] (Bad Name!): callback_token and callback_aes_key go together",
            "orgs[1] (dup): client_id: another org uses the same app",
            "orgs[1] (dup): callback_aes_key: must be exactly 43",
            "orgs[1] (dup): include_depts: 0",
            "orgs[2] (dup): name: another org is already named",
            "orgs[2] (dup): corp_id: another org has the same corp",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        assert!(!text.contains("secret-value"), "{text}");
    }

    #[test]
    fn secrets_come_from_files_or_named_variables() {
        let dir = std::env::temp_dir().join(format!("dingsync-orgs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").expect("write");
        let mut c = Config::default();
        let mut a = org("a", "dinga", "appa");
        a.client_secret = Secret::default();
        a.client_secret_file = Some(file.clone());
        let mut b = org("b", "dingb", "appb");
        b.callback_aes_key_env = Some("DINGSYNC_TEST_ORGS_SURELY_UNSET_VARIABLE".into());
        b.callback_token = Secret::new("tok");
        let mut both = org("both", "dingc", "appc");
        both.client_secret_file = Some(file.clone());
        both.client_secret_env = Some("PATH".into());
        c.orgs = vec![a, b, both];
        let mut problems = Vec::new();
        c.read_org_secrets(&mut problems);
        assert_eq!(c.orgs[0].client_secret.expose(), "from-file");
        let text = problems.join("\n");
        assert!(
            text.contains("orgs[1] (b): callback_aes_key_env: the environment variable DINGSYNC_TEST_ORGS_SURELY_UNSET_VARIABLE is not set"),
            "{text}"
        );
        assert!(
            text.contains("orgs[2] (both): client_secret_file and client_secret_env"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(AES.len(), 43);
    }
}
