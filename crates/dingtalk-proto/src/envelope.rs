//! The response envelopes: TOP gateway answers wrap their payload in `result`, a few legacy paths
//! put fields at top level, and some answer with the status alone.
//!
//! Each response type flattens [`ApiStatus`] so that parsing and re-serialising a captured answer
//! gives back exactly the same keys (the golden fixtures test this).

use serde::{Deserialize, Serialize};

use crate::ApiStatus;

/// A `/topapi/...` answer: status fields plus `result` (absent on failure and on the write calls
/// that return nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopResponse<T> {
    /// `errcode`, `errmsg`, `sub_code`, `sub_msg`, `request_id`.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// The payload; `None` on failure.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

/// An answer that carries nothing but its status (updates, deletes, role assignment, …).
pub type StatusResponse = ApiStatus;

/// Implemented by every response type, so the client can check the status of any answer.
pub trait HasStatus {
    /// The status fields of this answer.
    fn status(&self) -> &ApiStatus;
}

impl HasStatus for ApiStatus {
    fn status(&self) -> &ApiStatus {
        self
    }
}

impl<T> HasStatus for TopResponse<T> {
    fn status(&self) -> &ApiStatus {
        &self.status
    }
}

/// Implements [`HasStatus`] for response structs whose flattened status field is `status`.
macro_rules! has_status {
    ($($ty:ty),* $(,)?) => {$(
        impl $crate::envelope::HasStatus for $ty {
            fn status(&self) -> &$crate::ApiStatus {
                &self.status
            }
        }
    )*};
}
pub(crate) use has_status;
