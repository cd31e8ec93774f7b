//! Whether the `[mapping]` and `[scope]` the service runs with are the ones an operator
//! approved: changing them never changes data silently.
//!
//! The approved fingerprint (`mapping::Fingerprint`, or `identity` when neither section says
//! anything) is kept in the store. A service started with other rules holds its writing workers
//! (apply, push, the scheduled reconcile) while `plan` previews what the change implies, field
//! by field, and `reconcile --yes` applies that plan and records the new fingerprint, after
//! which the held workers go on. A first import into an empty directory approves the rules it
//! imported with.

use directory_store::{Store, StoreError};

use crate::rules::Rules;

/// The `sync_state` key of the approved fingerprint.
const KEY: &str = "mapping_fingerprint";

/// What no rules at all are recorded as.
pub const IDENTITY: &str = "identity";

/// The fingerprint of `rules` as it is recorded.
pub fn fingerprint_of(rules: &Rules) -> String {
    rules
        .fingerprint()
        .map_or_else(|| IDENTITY.to_owned(), |f| f.0.clone())
}

/// The approved fingerprint (`identity` when none was ever recorded).
pub async fn approved(store: &Store) -> Result<String, StoreError> {
    Ok(store
        .state_get(KEY)
        .await?
        .unwrap_or_else(|| IDENTITY.to_owned()))
}

/// Whether `rules` differ from the approved ones.
pub async fn pending(store: &Store, rules: &Rules) -> Result<bool, StoreError> {
    Ok(approved(store).await? != fingerprint_of(rules))
}

/// Records `rules` as approved.
pub async fn approve(store: &Store, rules: &Rules, now_ms: i64) -> Result<(), StoreError> {
    store.state_set(KEY, &fingerprint_of(rules), now_ms).await
}
