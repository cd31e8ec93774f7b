//! Side-qualified identifiers.
//!
//! dingsync holds two id spaces for the same people and departments: the OA system's ids (chosen by
//! the OA directory) and DingTalk's ids (assigned by DingTalk, which never lets a caller pick a
//! department id). Confusing the two is the classic way a sync tool creates a duplicate user or
//! moves the wrong department, so every id is a distinct newtype and passing an `OaDeptId` where a
//! `DingDeptId` is expected does not compile. There are deliberately no `From` conversions between
//! the two sides: the only way across is the id map in the store.
//!
//! ```compile_fail
//! use directory_model::{DingDeptId, OaDeptId};
//! fn push_to_dingtalk(_dept: DingDeptId) {}
//! push_to_dingtalk(OaDeptId(7)); // an OA id is not a DingTalk id
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines one integer id newtype with the traits every id needs.
macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw number, for storage and wire encoding at the edges.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

/// Defines one string id newtype with the traits every id needs.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps anything string-like.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The raw text, for storage and wire encoding at the edges.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

int_id!(
    /// A department id in the OA directory.
    OaDeptId
);
int_id!(
    /// A role group id in the OA directory.
    OaRoleGroupId
);
int_id!(
    /// A role id in the OA directory.
    OaRoleId
);
string_id!(
    /// A user id in the OA directory.
    OaUserId
);

int_id!(
    /// A department id assigned by DingTalk (the root department is 1).
    DingDeptId
);
int_id!(
    /// A role group id assigned by DingTalk.
    DingRoleGroupId
);
int_id!(
    /// A role id assigned by DingTalk.
    DingRoleId
);
string_id!(
    /// A DingTalk `userid` (1–64 characters, unique in the organisation, immutable).
    DingUserId
);

impl DingDeptId {
    /// DingTalk's root department, which every organisation has and nobody can delete or update.
    pub const ROOT: DingDeptId = DingDeptId(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_bare_values() {
        assert_eq!(serde_json::to_string(&OaDeptId(42)).unwrap(), "42");
        assert_eq!(
            serde_json::to_string(&DingUserId::new("u1")).unwrap(),
            "\"u1\""
        );
        let back: OaUserId = serde_json::from_str("\"zhangsan\"").unwrap();
        assert_eq!(back.as_str(), "zhangsan");
    }

    #[test]
    fn display_is_the_raw_value() {
        assert_eq!(OaRoleId(7).to_string(), "7");
        assert_eq!(DingDeptId::ROOT.to_string(), "1");
    }
}
