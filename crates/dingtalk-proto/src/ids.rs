//! Identifier newtypes for DingTalk's side of the directory, and the comma-joined id lists some
//! requests want.
//!
//! The engine juggles two id spaces (OA and DingTalk) for four kinds of entity. Making each one
//! its own type turns "passed a role id where a department id was due" into a compile error.
//! Numeric ids accept their decimal text as well, because DingTalk's documentation and some
//! gateways quote them.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A DingTalk department id. Server-assigned, large, never reused; the root is [`Self::ROOT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DingDeptId(#[serde(deserialize_with = "crate::lenient::req")] pub i64);

impl DingDeptId {
    /// The root department of every organisation.
    pub const ROOT: Self = Self(1);

    /// True for the root department, which can be neither updated (60018) nor deleted (60007).
    pub fn is_root(self) -> bool {
        self == Self::ROOT
    }
}

/// A DingTalk user id: 1–64 characters, unique in the organisation, immutable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DingUserId(pub String);

impl DingUserId {
    /// Wraps a user id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DingTalk role ("label") id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DingRoleId(#[serde(deserialize_with = "crate::lenient::req")] pub i64);

/// A DingTalk role group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DingRoleGroupId(#[serde(deserialize_with = "crate::lenient::req")] pub i64);

macro_rules! display_and_parse {
    ($($ty:ident($inner:ty)),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
        impl FromStr for $ty {
            type Err = <$inner as FromStr>::Err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    )*};
}

display_and_parse!(
    DingDeptId(i64),
    DingUserId(String),
    DingRoleId(i64),
    DingRoleGroupId(i64)
);

/// A list that travels as one comma-joined string (`"2,3,4"`), as `dept_id_list` on user create,
/// `roleIds`/`userIds` on role assignment and the permit lists on departments do.
///
/// Parsing also accepts a JSON array, because that is what the same fields look like in responses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommaList<T>(pub Vec<T>);

impl<T> CommaList<T> {
    /// Wraps the items.
    pub fn new(items: impl IntoIterator<Item = T>) -> Self {
        Self(items.into_iter().collect())
    }
}

impl<T> From<Vec<T>> for CommaList<T> {
    fn from(items: Vec<T>) -> Self {
        Self(items)
    }
}

impl<T: fmt::Display> Serialize for CommaList<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let joined = self
            .0
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        serializer.serialize_str(&joined)
    }
}

impl<'de, T> Deserialize<'de> for CommaList<T>
where
    T: FromStr + Deserialize<'de>,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire<T> {
            Joined(String),
            Array(Vec<T>),
        }
        match Wire::<T>::deserialize(deserializer)? {
            Wire::Array(items) => Ok(Self(items)),
            Wire::Joined(text) => text
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| part.parse().map_err(serde::de::Error::custom))
                .collect::<Result<Vec<T>, D::Error>>()
                .map(Self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_accept_numbers_and_text() {
        let a: DingDeptId = serde_json::from_str("432825033").unwrap();
        let b: DingDeptId = serde_json::from_str("\"432825033\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "432825033");
        assert!(DingDeptId::ROOT.is_root());
        assert!(!a.is_root());
    }

    #[test]
    fn comma_list_round_trip() {
        let list = CommaList::new([DingDeptId(2), DingDeptId(3), DingDeptId(4)]);
        assert_eq!(serde_json::to_string(&list).unwrap(), "\"2,3,4\"");
        let back: CommaList<DingDeptId> = serde_json::from_str("\"2,3,4\"").unwrap();
        assert_eq!(back, list);
        let from_array: CommaList<DingDeptId> = serde_json::from_str("[2,3,4]").unwrap();
        assert_eq!(from_array, list);
    }

    #[test]
    fn comma_list_of_user_ids_and_bad_items() {
        let users: CommaList<DingUserId> = serde_json::from_str("\"a, b\"").unwrap();
        assert_eq!(users.0, vec![DingUserId::new("a"), DingUserId::new("b")]);
        assert!(serde_json::from_str::<CommaList<DingRoleId>>("\"1,x\"").is_err());
    }
}
