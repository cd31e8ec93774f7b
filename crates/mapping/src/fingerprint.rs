//! A stable fingerprint of the effective mapping and scope.
//!
//! The service stores the fingerprint it last ran with; a different one on start means the
//! mapping or scope changed, so it computes the plan the change implies and holds it for approval
//! instead of rewriting data silently. "Effective" means spellings that change nothing do not
//! change the fingerprint: a rule that restates the default (a field mapped to itself, owner
//! `both`, `always`) is dropped and the default soft-match order is written out before hashing.
//! Expression text is hashed as written, since two texts that look equivalent may not be.

use sha2::{Digest, Sha256};

use crate::config::{FieldRule, MappingConfig, ScopeConfig};
use crate::mapping::DEFAULT_SOFT_MATCH;

/// Bumped if the normalisation below changes, so old fingerprints read as "changed".
const VERSION: &str = "dingsync-mapping-fingerprint-v1";

/// Hex SHA-256 of the normalised config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fingerprint of `mapping` and `scope` as they take effect.
pub fn fingerprint(mapping: &MappingConfig, scope: &ScopeConfig) -> Fingerprint {
    let mapping = normalized(mapping);
    // Serializing plain structs of strings and BTreeMaps cannot fail, and its key order is fixed.
    let json = serde_json::to_vec(&(VERSION, &mapping, scope)).unwrap_or_default();
    Fingerprint(hex::encode(Sha256::digest(&json)))
}

fn normalized(config: &MappingConfig) -> MappingConfig {
    let mut out = config.clone();
    if out.users.soft_match.is_none() {
        out.users.soft_match = Some(
            DEFAULT_SOFT_MATCH
                .iter()
                .map(|f| {
                    <directory_model::User as directory_model::FieldAccess>::field_name(*f)
                        .to_owned()
                })
                .collect(),
        );
    }
    for kind in [&mut out.users, &mut out.departments] {
        for (name, rule) in kind.fields.iter_mut() {
            for text in [&mut rule.to_dingtalk, &mut rule.to_oa] {
                if text.as_deref().map(str::trim) == Some(name.as_str()) {
                    *text = None;
                }
            }
        }
        kind.fields.retain(|_, rule| *rule != FieldRule::default());
    }
    out
}
