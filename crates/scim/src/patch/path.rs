//! PATCH paths (RFC 7644 §3.5.2): `attrPath`, or `valuePath` with an optional sub-attribute,
//! e.g. `members[value eq "2819c223"]` or `emails[type eq "work"].value`.

use crate::attr_path::AttrPath;
use crate::error::ScimError;
use crate::filter::lexer::Tok;
use crate::filter::{Filter, Parser};

/// A parsed PATCH path.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (its `.sub` when written without a filter, like `name.givenName`).
    pub attr: AttrPath,
    /// The value filter inside `[...]`.
    pub filter: Option<Filter>,
    /// The sub-attribute after `].`.
    pub sub_after_filter: Option<String>,
}

impl PatchPath {
    /// Parses a path; errors are `invalidPath` naming the position.
    pub fn parse(text: &str) -> Result<PatchPath, ScimError> {
        let bad = |at: usize, msg: String| {
            ScimError::invalid_path(format!("path '{text}' at position {at}: {msg}"))
        };
        let mut p = Parser::new(text)
            .map_err(|e| ScimError::invalid_path(format!("path '{text}': {}", e.detail)))?;
        let attr = match p.next() {
            Some((at, Tok::Word(w))) => {
                AttrPath::parse(&w).map_err(|(off, msg)| bad(at + off, msg))?
            }
            Some((at, _)) => return Err(bad(at, "expected an attribute name".into())),
            None => return Err(ScimError::invalid_path("the path is empty")),
        };
        let mut filter = None;
        let mut sub_after_filter = None;
        if let Some((at, Tok::LBracket)) = p.peek().map(|(a, t)| (a, t.clone())) {
            p.pos += 1;
            if attr.sub.is_some() {
                return Err(bad(
                    at,
                    "a value filter follows the attribute, not a sub-attribute".into(),
                ));
            }
            let f = p
                .or_expr(true)
                .map_err(|e| ScimError::invalid_path(format!("path '{text}': {}", e.detail)))?;
            p.expect(&Tok::RBracket, "']'")
                .map_err(|e| ScimError::invalid_path(format!("path '{text}': {}", e.detail)))?;
            filter = Some(f);
            if let Some((at, Tok::Word(w))) = p.peek().map(|(a, t)| (a, t.clone())) {
                p.pos += 1;
                let sub = w.strip_prefix('.').ok_or_else(|| {
                    bad(
                        at,
                        format!("expected '.sub-attribute' after ']', found '{w}'"),
                    )
                })?;
                let parsed = AttrPath::parse(sub).map_err(|(off, msg)| bad(at + 1 + off, msg))?;
                if parsed.urn.is_some() || parsed.sub.is_some() {
                    return Err(bad(at, format!("'{sub}' is not a sub-attribute name")));
                }
                sub_after_filter = Some(parsed.name);
            }
        }
        if let Some((at, _)) = p.peek() {
            return Err(bad(at, "unexpected text after the path".into()));
        }
        Ok(PatchPath {
            attr,
            filter,
            sub_after_filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_shapes() {
        let p = PatchPath::parse("name.givenName").unwrap();
        assert_eq!(p.attr, AttrPath::new("name", Some("givenName")));
        assert!(p.filter.is_none());
        let p = PatchPath::parse(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!(p.attr.name, "members");
        assert_eq!(
            p.filter.map(|f| f.to_string()).as_deref(),
            Some(r#"value eq "2819c223""#)
        );
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.sub_after_filter.as_deref(), Some("value"));
        let p =
            PatchPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")
                .unwrap();
        assert_eq!(p.attr.name, "manager");
    }

    #[test]
    fn malformed_paths_are_invalid_path() {
        for text in [
            "",
            "emails[type eq]",
            "emails[type eq \"w\"]value",
            "emails[type eq \"w\"] x",
            "1x",
            "emails.value[type pr]",
        ] {
            let e = PatchPath::parse(text).unwrap_err();
            assert_eq!(
                e.scim_type,
                Some(crate::ScimType::InvalidPath),
                "{text}: {e}"
            );
        }
    }
}
