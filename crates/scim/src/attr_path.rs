//! Attribute paths as filters, PATCH paths and `attributes=` name them (RFC 7644 §3.10):
//! `[schema-urn ":"] name ["." sub-attribute]`.

use std::fmt;

/// A parsed attribute path. Names keep the client's spelling; matching against the schema and
/// against JSON keys is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, if the client qualified the name.
    pub urn: Option<String>,
    /// The attribute's name.
    pub name: String,
    /// The sub-attribute's name, after a `.`.
    pub sub: Option<String>,
}

impl AttrPath {
    /// An unqualified path, `name` or `name.sub`.
    pub fn new(name: &str, sub: Option<&str>) -> Self {
        AttrPath {
            urn: None,
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        }
    }

    /// Parses one path. On error, returns the byte offset in `text` and what is wrong.
    pub fn parse(text: &str) -> Result<AttrPath, (usize, String)> {
        let (urn, rest, rest_at) = if text
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            // The attribute follows the URN's last colon (RFC 7644 §3.10).
            match text.rfind(':') {
                Some(i) => (Some(text[..i].to_owned()), &text[i + 1..], i + 1),
                None => (None, text, 0),
            }
        } else {
            (None, text, 0)
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        check_name(name).map_err(|e| (rest_at, e))?;
        if let Some(s) = sub {
            check_name(s).map_err(|e| (rest_at + name.len() + 1, e))?;
        }
        Ok(AttrPath {
            urn,
            name: name.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }
}

/// ATTRNAME = ALPHA *(nameChar), plus `$ref` (RFC 7643 §2.1).
fn check_name(name: &str) -> Result<(), String> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        Some(_) => return Err(format!("attribute name '{name}' must start with a letter")),
        None => return Err("empty attribute name".into()),
    }
    match chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        Some(c) => Err(format!("attribute name '{name}' contains '{c}'")),
        None => Ok(()),
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_sub_and_urn_paths() {
        assert_eq!(
            AttrPath::parse("userName").unwrap(),
            AttrPath::new("userName", None)
        );
        assert_eq!(
            AttrPath::parse("name.givenName").unwrap(),
            AttrPath::new("name", Some("givenName"))
        );
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub.as_deref(),
            Some("$ref")
        );
    }

    #[test]
    fn rejects_bad_names_with_their_offset() {
        assert_eq!(AttrPath::parse("1abc").unwrap_err().0, 0);
        let (at, msg) = AttrPath::parse("name.giv%n").unwrap_err();
        assert_eq!(at, 5);
        assert!(msg.contains('%'), "{msg}");
        assert!(AttrPath::parse("").is_err());
    }
}
