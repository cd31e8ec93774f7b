//! Configuration: a TOML file plus `DINGSYNC_<SECTION>__<KEY>` environment overrides.
//!
//! Why this shape: operators keep the non-secret settings in a file they can review and diff, and
//! inject secrets from the environment or from files mounted by their secret store (`*_file`
//! keys). Every problem is collected and reported at once, because fixing a config one error per
//! restart is miserable. Secrets are wrapped in [`Secret`], whose `Debug`/`Display` never print the
//! value, so a config can be logged or printed by `dingsync check` safely.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub mod mapping;
mod orgs;
pub use orgs::OrgSection;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret string: serialisable (so `init` can write placeholders) but never printed.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The only way to read the value; grep for `expose` to audit where secrets flow.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub dingtalk: DingTalkSection,
    pub callback: CallbackSection,
    pub database: DatabaseSection,
    pub server: ServerSection,
    pub api: ApiSection,
    pub events: EventsSection,
    pub sync: SyncSection,
    /// `[load]`: how `dingsync load` reads an OA/HR export (the `oa-file` crate); no default,
    /// since only the operator knows the file's column names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<oa_file::LoadConfig>,
    pub scim: ScimSection,
    /// The admin console (`/console`), see `admin::config`.
    pub console: crate::admin::ConsoleSection,
    /// `[mapping]`: field mapping as expressions (see `config::mapping`).
    pub mapping: ::mapping::MappingConfig,
    /// `[scope]`: which entities take part, as predicates per direction.
    pub scope: ::mapping::ScopeConfig,
    /// `[mapping]` and `[scope]` compiled by [`Config::load`] (identity until then).
    #[serde(skip)]
    pub rules: sync_engine::rules::Rules,
    /// `[[orgs]]`: several DingTalk organizations (see `config::orgs`). Empty: the one org of
    /// `[dingtalk]`, named `default`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<OrgSection>,
    /// Set on the configuration [`Config::for_org`] derives: the org whose share of the store
    /// [`crate::server::open_store`] opens (`None`: the unscoped store, org `default`).
    #[serde(skip)]
    pub org_scope: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DingTalkSection {
    /// Where DingTalk's server API lives; point it at `dingsync sim` to try things locally.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_file: Option<PathBuf>,
    pub corp_id: String,
    /// Calls per second per API that this deployment may make (DingTalk's standard limit is 20).
    pub qps: u32,
    /// Where that budget is kept: shared through the database (every instance together stays
    /// within `qps`) or in this process only.
    pub rate_budget: RateBudgetMode,
    /// Calls per second over every API and every org leaving this deployment's egress IP (a
    /// second budget every call also passes, kept where `rate_budget` says); 0: no such layer.
    /// DingTalk allows an IP 10,000 calls per 20 s ([`MAX_IP_BUDGET`] per second).
    pub ip_budget: u32,
    /// How long DingTalk may be unreachable before `/readyz` says "not ready" (a blip or a
    /// DingTalk restart should not take the service out of a load balancer).
    pub ready_grace_secs: u64,
}

/// The most calls per second `[dingtalk] ip_budget` may allow: DingTalk's per-IP limit of
/// 10,000 calls per 20 s, as a rate no 20 s window can exceed. Beyond the limit DingTalk bans the
/// IP for 5 minutes, so a larger budget is refused rather than trusted.
pub const MAX_IP_BUDGET: u32 = 500;

/// Where the DingTalk rate budget is kept (`[dingtalk] rate_budget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RateBudgetMode {
    /// Shared by every process using the database, whatever the backend: on PostgreSQL with the
    /// other instances (slots in the database), on SQLite between `serve` and a one-shot command
    /// (`import`, `plan`, `reconcile`) run beside it (slots in a sidecar file beside the
    /// database), which would otherwise each allow `qps` (issue 18).
    #[default]
    Auto,
    /// In this process only: right for one instance; with several, each would allow `qps`.
    Local,
    /// The same as `auto` (kept so configurations that asked for sharing on SQLite still load).
    Shared,
}

impl Default for DingTalkSection {
    fn default() -> Self {
        Self {
            base_url: "https://oapi.dingtalk.com".into(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: None,
            corp_id: String::new(),
            qps: 20,
            rate_budget: RateBudgetMode::Auto,
            ip_budget: MAX_IP_BUDGET,
            ready_grace_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackSection {
    pub token: Secret,
    pub token_file: Option<PathBuf>,
    pub aes_key: Secret,
    pub aes_key_file: Option<PathBuf>,
    /// The owner key DingTalk appends to every encrypted message: the client id for console
    /// configured HTTP push (the default, when empty), the corp id for `register_call_back`.
    pub owner_key: String,
    /// How far a callback's timestamp may be from now before it is refused as stale.
    pub timestamp_window_secs: u64,
}

impl Default for CallbackSection {
    fn default() -> Self {
        Self {
            token: Secret::default(),
            token_file: None,
            aes_key: Secret::default(),
            aes_key_file: None,
            owner_key: String::new(),
            timestamp_window_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://dingsync.db` (embedded, the default) or `postgres://user:pass@host/db`.
    pub url: Secret,
    /// Connections of this instance's main pool (the shared rate budget has 6 more of its own).
    pub max_connections: u32,
    /// SQLite only: how long a write waits for another connection's lock before it fails (the
    /// API then answers 503, a callback 503 so DingTalk retries).
    pub sqlite_busy_timeout_ms: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://dingsync.db?mode=rwc"),
            max_connections: 8,
            sqlite_busy_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// The public listener: what faces DingTalk's pushes (the callback route; SCIM later).
    pub listen: String,
    /// The internal listener: the OA API, `/metrics` and the OpenAPI document. Empty (the
    /// default) or equal to `listen` serves everything on `listen`.
    pub internal_listen: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            internal_listen: String::new(),
        }
    }
}

impl ServerSection {
    /// The internal listener's address when it differs from `listen` (the split layout).
    /// Port 0 ("any free port") on both is two listeners, not one.
    pub fn split_internal(&self) -> Option<&str> {
        let internal = self.internal_listen.trim();
        let split =
            !internal.is_empty() && (internal != self.listen.trim() || internal.ends_with(":0"));
        split.then_some(internal)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Bearer tokens accepted by the OA API; no token configured means no access at all.
    pub tokens: Vec<Secret>,
    pub tokens_file: Option<PathBuf>,
}

/// `[scim]`: SCIM 2.0 at `/scim/v2` for identity providers (see `crate::scim`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScimSection {
    /// Bearer tokens of the SCIM clients (not the OA API's); none means SCIM answers 401.
    pub tokens: Vec<Secret>,
    pub tokens_file: Option<PathBuf>,
    /// What a SCIM Group becomes: `departments` or `roles`.
    pub groups: crate::scim::GroupsAs,
    /// With `groups = "roles"`: the role group the roles live in (created on first use).
    pub role_group: String,
    /// What `active=false` does: `delete` or `left`.
    pub leave: crate::scim::Leave,
    /// The separator of Enterprise `department` paths (`Sales/East`); empty: a plain name.
    pub department_path: String,
    /// The OA department under which departments named by users are found or created.
    pub create_under: i64,
    /// SCIM attribute path → DingTalk `extension` key (`[scim.extension]`).
    pub extension: std::collections::BTreeMap<String, String>,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
}

impl Default for ScimSection {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            tokens_file: None,
            groups: crate::scim::GroupsAs::Departments,
            role_group: "SCIM".into(),
            leave: crate::scim::Leave::Delete,
            department_path: "/".into(),
            create_under: 1,
            extension: crate::scim::settings::default_extension()
                .into_iter()
                .collect(),
            max_body_bytes: 1 << 20,
        }
    }
}

impl ScimSection {
    /// The settings the SCIM handlers use (tokens as digests).
    pub fn settings(&self) -> crate::scim::ScimSettings {
        crate::scim::ScimSettings {
            tokens: self
                .tokens
                .iter()
                .map(|t| crate::api::ApiToken::unnamed(t.expose()))
                .collect(),
            groups: self.groups,
            role_group: self.role_group.clone(),
            leave: self.leave,
            department_path: if self.department_path.is_empty() {
                crate::scim::settings::DepartmentPath::Name
            } else {
                crate::scim::settings::DepartmentPath::Path(self.department_path.clone())
            },
            create_under: directory_model::OaDeptId(self.create_under),
            extension: self
                .extension
                .iter()
                .map(|(p, k)| (p.clone(), k.clone()))
                .collect(),
            // `validate` reports a catalog that cannot be built.
            catalog: self.catalog().unwrap_or_default(),
            max_body_bytes: self.max_body_bytes,
            ..crate::scim::ScimSettings::default()
        }
    }

    /// The served schemas, with a User extension for every schema URN `extension` maps
    /// (`urn:...:extension:acme:2.0:User:costCenter`) other than the Enterprise User's.
    pub fn catalog(&self) -> Result<scim::schema::Catalog, scim::schema::CustomError> {
        let mut custom: Vec<scim::schema::CustomExtension> = Vec::new();
        for (path, key) in &self.extension {
            let Some((urn, attr)) = path.rsplit_once(':') else {
                continue;
            };
            if !urn.to_ascii_lowercase().starts_with("urn:")
                || urn.eq_ignore_ascii_case(crate::scim::settings::ENTERPRISE)
            {
                continue;
            }
            let described = (
                attr.to_owned(),
                format!("Carried into the DingTalk extension under the key `{key}`."),
            );
            match custom.iter_mut().find(|c| c.urn.eq_ignore_ascii_case(urn)) {
                Some(c) => c.attributes.push(described),
                None => custom.push(scim::schema::CustomExtension {
                    urn: urn.to_owned(),
                    attributes: vec![described],
                }),
            }
        }
        scim::schema::Catalog::with_user_extensions(&custom)
    }
}

/// How DingTalk's events reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EventsMode {
    /// DingTalk pushes to `POST /callbacks/dingtalk` (needs a URL DingTalk can reach).
    #[default]
    Http,
    /// dingsync opens an outbound Stream connection (no public URL needed).
    Stream,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSection {
    pub mode: EventsMode,
    /// How often DingTalk's failed-push list is read into the inbox (also once at start);
    /// 0 turns the schedule off (start-up still catches up).
    pub catchup_interval_secs: u64,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            mode: EventsMode::Http,
            catchup_interval_secs: 300,
        }
    }
}

/// Which side wins when both changed the same field since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Winner {
    #[default]
    Oa,
    Dingtalk,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    /// Run the background workers (event application, pusher, catch-up, scheduled reconcile).
    pub workers: bool,
    pub conflict_winner: Winner,
    /// Deletions of more than this share of users or departments are held for confirmation…
    pub deletion_max_percent: f64,
    /// …and so are more than this many, whichever is smaller.
    pub deletion_max_count: usize,
    /// How often a full reconcile repairs drift; 0 turns it off.
    pub reconcile_interval_secs: u64,
    /// How long an inbox or outbox claim lasts before another worker may take the entry over:
    /// after a crash, what the dead process had claimed waits this long.
    pub claim_lease_secs: u64,
    /// DingTalk department ids whose subtrees are synced (empty: everything).
    pub include_depts: Vec<i64>,
    /// DingTalk department ids whose subtrees are never synced.
    pub exclude_depts: Vec<i64>,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            workers: true,
            conflict_winner: Winner::Oa,
            deletion_max_percent: 10.0,
            deletion_max_count: 500,
            reconcile_interval_secs: 86_400,
            claim_lease_secs: 60,
            include_depts: Vec::new(),
            exclude_depts: Vec::new(),
        }
    }
}

/// The top-level sections, in the order the documented file lists them.
pub const SECTIONS: [&str; 9] = [
    "dingtalk", "callback", "database", "server", "api", "events", "sync", "load", "console",
];

/// Everything wrong with a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("the configuration has {} problem(s):\n  - {}", .0.len(), .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Loads defaults, then the file (when given and present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigErrors> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigErrors(vec![format!(
                    "config file {} does not exist (create one with `dingsync init`)",
                    path.display()
                )]));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only `DINGSYNC_<SECTION>__<KEY>` variables are configuration; others that share the
        // prefix (test settings, say) are not ours to refuse.
        figment = figment.merge(
            Env::prefixed("DINGSYNC_")
                .filter(|key| {
                    // Environment names are upper case; section names are lower case.
                    let key = key.as_str().to_ascii_lowercase();
                    SECTIONS.iter().any(|s| key.starts_with(&format!("{s}__")))
                })
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigErrors(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.read_secret_files()?;
        // Compiled once, here; a problem is reported by `validate` with the others.
        config.rules = mapping::compile(&config.mapping, &config.scope).unwrap_or_default();
        Ok(config)
    }

    /// Replaces each `*_file` secret by the file's trimmed contents.
    fn read_secret_files(&mut self) -> Result<(), ConfigErrors> {
        let mut problems = Vec::new();
        let mut read = |key: &str, path: &Option<PathBuf>, target: &mut Secret| {
            if let Some(path) = path {
                match std::fs::read_to_string(path) {
                    Ok(text) => *target = Secret::new(text.trim()),
                    Err(e) => problems.push(format!("{key}: cannot read {}: {e}", path.display())),
                }
            }
        };
        read(
            "dingtalk.client_secret_file",
            &self.dingtalk.client_secret_file,
            &mut self.dingtalk.client_secret,
        );
        read(
            "callback.token_file",
            &self.callback.token_file,
            &mut self.callback.token,
        );
        read(
            "callback.aes_key_file",
            &self.callback.aes_key_file,
            &mut self.callback.aes_key,
        );
        read(
            "console.session_key_file",
            &self.console.session_key_file,
            &mut self.console.session_key,
        );
        if let Some(path) = &self.api.tokens_file {
            match std::fs::read_to_string(path) {
                Ok(text) => self.api.tokens.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(Secret::new),
                ),
                Err(e) => problems.push(format!(
                    "api.tokens_file: cannot read {}: {e}",
                    path.display()
                )),
            }
        }
        if let Some(path) = &self.scim.tokens_file {
            match std::fs::read_to_string(path) {
                Ok(text) => self.scim.tokens.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(Secret::new),
                ),
                Err(e) => problems.push(format!(
                    "scim.tokens_file: cannot read {}: {e}",
                    path.display()
                )),
            }
        }
        self.read_org_secrets(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// The owner key DingTalk uses for this app (see [`CallbackSection::owner_key`]).
    #[allow(dead_code)] // used by `serve` once the callback receiver is wired in
    pub fn owner_key(&self) -> &str {
        if self.callback.owner_key.is_empty() {
            &self.dingtalk.client_id
        } else {
            &self.callback.owner_key
        }
    }

    /// What is valid but probably not meant: `check` prints these and `serve` logs them.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.api.tokens.is_empty() {
            w.push(
                "no OA API token is configured ([api] tokens or tokens_file): every OA API call \
                 will be refused with 401"
                    .to_owned(),
            );
        }
        w.extend(self.org_warnings());
        w
    }

    /// Checks every rule at once; what `serve` and `check` run before doing anything.
    ///
    /// Longer than 80 lines on purpose: it is the one list of cross-key rules, one short
    /// `if` per rule, so a reader finds every rule in one place.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut p = Vec::new();
        let d = &self.dingtalk;
        if !(d.base_url.starts_with("http://") || d.base_url.starts_with("https://")) {
            p.push(format!(
                "dingtalk.base_url: must start with http:// or https:// (got {:?})",
                d.base_url
            ));
        }
        // With `[[orgs]]` the apps are the orgs' (checked in `org_problems`).
        if d.client_id.is_empty() && self.orgs.is_empty() {
            p.push("dingtalk.client_id: missing (the app's Client ID / AppKey; set DINGSYNC_DINGTALK__CLIENT_ID)".into());
        }
        if d.client_secret.is_empty() && self.orgs.is_empty() {
            p.push("dingtalk.client_secret: missing (set DINGSYNC_DINGTALK__CLIENT_SECRET or dingtalk.client_secret_file)".into());
        }
        if d.qps == 0 {
            p.push("dingtalk.qps: must be at least 1".into());
        }
        if d.ip_budget > MAX_IP_BUDGET {
            p.push(format!(
                "dingtalk.ip_budget: {} calls/s is over DingTalk's per-IP limit of 10,000 calls \
                 per 20 s ({MAX_IP_BUDGET}/s), past which it bans the IP for 5 minutes; set at \
                 most {MAX_IP_BUDGET} (0 turns the IP budget off)",
                d.ip_budget
            ));
        }
        if self.sync.claim_lease_secs == 0 {
            p.push("sync.claim_lease_secs: must be at least 1".into());
        }
        let c = &self.callback;
        let token_len = c.token.expose().chars().count();
        if !c.token.is_empty() && !(3..=64).contains(&token_len) {
            p.push(format!(
                "callback.token: must be 3 to 64 characters (has {token_len})"
            ));
        }
        if !c.aes_key.is_empty()
            && (c.aes_key.expose().len() != 43
                || !c
                    .aes_key
                    .expose()
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric()))
        {
            p.push("callback.aes_key: must be exactly 43 letters and digits (DingTalk's EncodingAESKey)".into());
        }
        if c.token.is_empty() != c.aes_key.is_empty() {
            p.push("callback: token and aes_key go together; set both or neither".into());
        }
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            p.push("database.url: must be sqlite://PATH or postgres://USER:PASS@HOST/DB".into());
        }
        if self.database.max_connections == 0 {
            p.push("database.max_connections: must be at least 1".into());
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            p.push(format!(
                "server.listen: not an address:port ({:?})",
                self.server.listen
            ));
        }
        if let Some(internal) = self.server.split_internal()
            && internal.parse::<SocketAddr>().is_err()
        {
            p.push(format!(
                "server.internal_listen: not an address:port ({internal:?}); leave it empty to serve everything on server.listen"
            ));
        }
        if !(0.0..=100.0).contains(&self.sync.deletion_max_percent) {
            p.push("sync.deletion_max_percent: must be between 0 and 100".into());
        }
        let mut seen = BTreeSet::new();
        for (i, t) in self.api.tokens.iter().enumerate() {
            if t.expose().len() < 16 {
                p.push(format!(
                    "api.tokens[{i}]: too short; use at least 16 random characters"
                ));
            }
            if !seen.insert(t.expose()) {
                p.push(format!("api.tokens[{i}]: duplicate token"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, t) in self.scim.tokens.iter().enumerate() {
            if t.expose().len() < 16 {
                p.push(format!(
                    "scim.tokens[{i}]: too short; use at least 16 random characters"
                ));
            }
            if !seen.insert(t.expose()) || self.api.tokens.iter().any(|a| a.expose() == t.expose())
            {
                p.push(format!(
                    "scim.tokens[{i}]: duplicate token (SCIM tokens are their own, not the API's)"
                ));
            }
        }
        if self.scim.create_under < 1 {
            p.push("scim.create_under: must be an OA department id (at least 1)".into());
        }
        if let Err(e) = self.scim.catalog() {
            p.push(format!("scim.extension: {e}"));
        }
        if self.scim.max_body_bytes < 1024 {
            p.push("scim.max_body_bytes: must be at least 1024".into());
        }
        p.extend(self.console.problems());
        if let Err(problems) = mapping::compile(&self.mapping, &self.scope) {
            p.extend(problems);
        }
        p.extend(self.org_problems());
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(p))
        }
    }
}

/// The file `dingsync init` writes: every option, its default, and what it is for.
pub const DOCUMENTED_CONFIG: &str = include_str!("../config.default.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let mut c = Config::default();
        c.dingtalk.client_secret = Secret::new("s3cr3t-value");
        c.callback.aes_key = Secret::new("k3y-value");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cr3t-value") && !dbg.contains("k3y-value"),
            "{dbg}"
        );
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn documented_config_parses_and_matches_defaults() {
        let parsed: Config = toml::from_str(DOCUMENTED_CONFIG).expect("config.default.toml parses");
        let defaults = Config::default();
        assert_eq!(parsed.dingtalk.base_url, defaults.dingtalk.base_url);
        assert_eq!(parsed.dingtalk.qps, defaults.dingtalk.qps);
        assert_eq!(parsed.server.listen, defaults.server.listen);
        assert_eq!(parsed.database.url, defaults.database.url);
        assert_eq!(
            parsed.database.sqlite_busy_timeout_ms,
            defaults.database.sqlite_busy_timeout_ms
        );
        assert_eq!(
            parsed.callback.timestamp_window_secs,
            defaults.callback.timestamp_window_secs
        );
    }

    #[test]
    fn scim_section_is_documented_and_every_problem_is_named() {
        let parsed: Config = toml::from_str(DOCUMENTED_CONFIG).expect("config.default.toml parses");
        let d = ScimSection::default();
        assert_eq!(parsed.scim.groups, d.groups);
        assert_eq!(parsed.scim.leave, d.leave);
        assert_eq!(parsed.scim.department_path, d.department_path);
        assert_eq!(parsed.scim.create_under, d.create_under);
        assert_eq!(parsed.scim.max_body_bytes, d.max_body_bytes);

        let mut c = Config::default();
        c.api.tokens = vec![Secret::new("shared-token-0123456789")];
        c.scim.tokens = vec![Secret::new("short"), Secret::new("shared-token-0123456789")];
        c.scim.create_under = 0;
        c.scim.max_body_bytes = 10;
        let text = c.validate().unwrap_err().0.join("\n");
        for needle in [
            "scim.tokens[0]: too short",
            "scim.tokens[1]: duplicate",
            "scim.create_under",
            "scim.max_body_bytes",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
        assert!(!text.contains("shared-token"), "{text}");
        let settings = c.scim.settings();
        assert!(!format!("{settings:?}").contains("shared-token"));
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let mut c = Config::default();
        c.dingtalk.base_url = "ftp://x".into();
        c.callback.aes_key = Secret::new("short");
        c.server.listen = "nowhere".into();
        let err = c.validate().expect_err("invalid");
        let fields: Vec<_> = err
            .0
            .iter()
            .map(|m| m.split(':').next().unwrap_or(""))
            .collect();
        for f in [
            "dingtalk.base_url",
            "dingtalk.client_id",
            "dingtalk.client_secret",
            "callback.aes_key",
            "server.listen",
        ] {
            assert!(fields.contains(&f), "{f} missing from {:?}", err.0);
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn environment_overrides_the_file_and_ignores_unrelated_variables() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[dingtalk]\nclient_id = \"from-file\"\nqps = 5\n")?;
            jail.set_env("DINGSYNC_DINGTALK__CLIENT_ID", "from-env");
            jail.set_env("DINGSYNC_CALLBACK__TIMESTAMP_WINDOW_SECS", "60");
            jail.set_env("DINGSYNC_TEST_PG_URL", "postgres://not-config");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.dingtalk.client_id, "from-env");
            assert_eq!(c.dingtalk.qps, 5);
            assert_eq!(c.callback.timestamp_window_secs, 60);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail dictates the closure's error type
    fn rate_budget_and_pool_size_come_from_file_or_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[dingtalk]\nrate_budget = \"local\"\n")?;
            jail.set_env("DINGSYNC_DATABASE__MAX_CONNECTIONS", "20");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.dingtalk.rate_budget, RateBudgetMode::Local);
            assert_eq!(c.database.max_connections, 20);
            jail.create_file("d.toml", "[dingtalk]\nrate_budget = \"everywhere\"\n")?;
            let refused = Config::load(Some(Path::new("d.toml"))).map(|_| ());
            assert!(refused.is_err(), "an unknown budget mode is refused");
            Ok(())
        });
    }

    #[test]
    fn no_api_token_is_a_warning_and_a_bad_internal_listener_an_error() {
        let mut c = Config::default();
        assert!(c.warnings().iter().any(|w| w.contains("no OA API token")));
        c.api.tokens = vec![Secret::new("0123456789abcdef0123")];
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        assert_eq!(c.server.split_internal(), None, "one address by default");
        c.server.internal_listen = c.server.listen.clone();
        assert_eq!(
            c.server.split_internal(),
            None,
            "the same address is one listener"
        );
        c.server.listen = "127.0.0.1:0".into();
        c.server.internal_listen = "127.0.0.1:0".into();
        assert_eq!(
            c.server.split_internal(),
            Some("127.0.0.1:0"),
            "two free ports"
        );
        c.server.internal_listen = "nowhere".into();
        let err = c.validate().expect_err("invalid");
        assert!(err.to_string().contains("server.internal_listen"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[dingtalk]\nclient_idd = \"x\"\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("unknown key");
        assert!(err.to_string().contains("client_idd"), "{err}");
    }
}
