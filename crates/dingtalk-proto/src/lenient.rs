//! Tolerant parsing of numbers and booleans that DingTalk sometimes sends as strings.
//!
//! Real servers answer with typed JSON, but DingTalk's own documentation stringifies every value
//! (`"errcode":"0"`, `"active":"true"`) and some gateways pass such text through. A sync that
//! refuses a whole page of users because one flag came quoted would be worse than useless, so
//! every scalar the client reads goes through [`req`] or [`opt`]: they take the typed value or its
//! decimal text. Serialisation is untouched, so what we send is always typed JSON.

use std::{fmt::Display, str::FromStr};

use serde::{Deserialize, Deserializer, de::Error as _};

/// Either the typed value or a text form of it.
#[derive(Deserialize)]
#[serde(untagged)]
enum TypedOrText<T> {
    Typed(T),
    Text(String),
}

/// Deserialises a required scalar given either typed or as text.
pub(crate) fn req<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + FromStr,
    T::Err: Display,
{
    match TypedOrText::<T>::deserialize(deserializer)? {
        TypedOrText::Typed(value) => Ok(value),
        TypedOrText::Text(text) => text.trim().parse().map_err(D::Error::custom),
    }
}

/// Deserialises an optional scalar given typed, as text, as `null`, or as `""` (read as absent).
pub(crate) fn opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + FromStr,
    T::Err: Display,
{
    match Option::<TypedOrText<T>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(TypedOrText::Typed(value)) => Ok(Some(value)),
        Some(TypedOrText::Text(text)) if text.trim().is_empty() => Ok(None),
        Some(TypedOrText::Text(text)) => text.trim().parse().map(Some).map_err(D::Error::custom),
    }
}

/// Deserialises optional text that may also arrive as a bare number (the TOP gateway's
/// `sub_code` is documented as a string, but a number must not break error handling).
pub(crate) fn opt_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Int(i64),
    }
    Ok(match Option::<TextOrNumber>::deserialize(deserializer)? {
        None => None,
        Some(TextOrNumber::Text(text)) => Some(text),
        Some(TextOrNumber::Int(n)) => Some(n.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Probe {
        #[serde(deserialize_with = "super::req")]
        n: i64,
        #[serde(default, deserialize_with = "super::opt")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "super::opt")]
        m: Option<i64>,
    }

    #[test]
    fn accepts_typed_and_text_forms() {
        let typed: Probe = serde_json::from_str(r#"{"n":5,"b":true,"m":7}"#).unwrap();
        let text: Probe = serde_json::from_str(r#"{"n":"5","b":"true","m":"7"}"#).unwrap();
        assert_eq!(typed, text);
        assert_eq!(
            typed,
            Probe {
                n: 5,
                b: Some(true),
                m: Some(7)
            }
        );
    }

    #[test]
    fn absent_null_and_empty_text_are_none() {
        let p: Probe = serde_json::from_str(r#"{"n":1,"b":null,"m":""}"#).unwrap();
        assert_eq!(
            p,
            Probe {
                n: 1,
                b: None,
                m: None
            }
        );
        let p: Probe = serde_json::from_str(r#"{"n":1}"#).unwrap();
        assert_eq!(p.b, None);
    }

    #[test]
    fn text_accepts_numbers() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "super::opt_text")]
            s: Option<String>,
        }
        let t: T = serde_json::from_str(r#"{"s":40014}"#).unwrap();
        assert_eq!(t.s.as_deref(), Some("40014"));
        let t: T = serde_json::from_str(r#"{"s":"40014"}"#).unwrap();
        assert_eq!(t.s.as_deref(), Some("40014"));
    }

    #[test]
    fn garbage_text_is_an_error_not_a_default() {
        assert!(serde_json::from_str::<Probe>(r#"{"n":"five"}"#).is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"n":1,"b":"yes"}"#).is_err());
    }
}
