//! Recursive-descent parser for RFC 7644 §3.4.2.2 filters.
//!
//! Precedence, loosest first: `or`, `and`, `not`, then a comparison, a value path
//! `attr[...]` or a parenthesised group. Keywords and operators are case-insensitive.

use super::lexer::{Tok, tokenize};
use super::{CompValue, CompareOp, Filter};
use crate::attr_path::AttrPath;
use crate::error::ScimError;

/// Parses a whole filter.
pub fn parse_filter(text: &str) -> Result<Filter, ScimError> {
    let mut p = Parser::new(text)?;
    if p.toks.is_empty() {
        return Err(ScimError::invalid_filter(0, "the filter is empty"));
    }
    let f = p.or_expr(false)?;
    match p.peek() {
        None => Ok(f),
        Some((at, tok)) => Err(ScimError::invalid_filter(
            at,
            format!("unexpected {}", describe(tok)),
        )),
    }
}

/// A cursor over the tokens; also used by the PATCH path parser.
pub(crate) struct Parser {
    pub(crate) toks: Vec<(usize, Tok)>,
    pub(crate) pos: usize,
    end: usize,
}

impl Parser {
    pub(crate) fn new(text: &str) -> Result<Self, ScimError> {
        Ok(Parser {
            toks: tokenize(text)?,
            pos: 0,
            end: text.len(),
        })
    }

    pub(crate) fn peek(&self) -> Option<(usize, &Tok)> {
        self.toks.get(self.pos).map(|(at, t)| (*at, t))
    }

    pub(crate) fn next(&mut self) -> Option<(usize, Tok)> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case(kw))
    }

    pub(crate) fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ScimError> {
        match self.next() {
            Some((_, ref t)) if t == want => Ok(()),
            Some((at, t)) => Err(ScimError::invalid_filter(
                at,
                format!("expected {what}, found {}", describe(&t)),
            )),
            None => Err(ScimError::invalid_filter(
                self.end,
                format!("expected {what}, found the end"),
            )),
        }
    }

    /// `and`-chains joined by `or`. `in_brackets`: inside a value path, where nesting another
    /// value path is not allowed.
    pub(crate) fn or_expr(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut left = self.and_expr(in_brackets)?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and_expr(in_brackets)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        let mut left = self.unary(in_brackets)?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.unary(in_brackets)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, in_brackets: bool) -> Result<Filter, ScimError> {
        if self.peek_keyword("not") {
            self.pos += 1;
            self.expect(&Tok::LParen, "'(' after 'not'")?;
            let inner = self.or_expr(in_brackets)?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        match self.next() {
            Some((_, Tok::LParen)) => {
                let inner = self.or_expr(in_brackets)?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(inner)
            }
            Some((at, Tok::Word(w))) => self.attr_expr(at, &w, in_brackets),
            Some((at, t)) => Err(ScimError::invalid_filter(
                at,
                format!("expected an attribute, found {}", describe(&t)),
            )),
            None => Err(ScimError::invalid_filter(
                self.end,
                "expected an attribute, found the end",
            )),
        }
    }

    /// After an attribute path: `pr`, `op value`, or `[filter]`.
    fn attr_expr(&mut self, at: usize, word: &str, in_brackets: bool) -> Result<Filter, ScimError> {
        let path =
            AttrPath::parse(word).map_err(|(off, msg)| ScimError::invalid_filter(at + off, msg))?;
        if matches!(self.peek(), Some((_, Tok::LBracket))) {
            let (bat, _) = self.next().unwrap_or((at, Tok::LBracket));
            if in_brackets {
                return Err(ScimError::invalid_filter(
                    bat,
                    "value paths cannot be nested",
                ));
            }
            if path.sub.is_some() {
                return Err(ScimError::invalid_filter(
                    bat,
                    "a value filter follows the attribute, not a sub-attribute",
                ));
            }
            let inner = self.or_expr(true)?;
            self.expect(&Tok::RBracket, "']'")?;
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let (op_at, op_word) = match self.next() {
            Some((op_at, Tok::Word(w))) => (op_at, w),
            Some((op_at, t)) => {
                return Err(ScimError::invalid_filter(
                    op_at,
                    format!(
                        "expected an operator after '{word}', found {}",
                        describe(&t)
                    ),
                ));
            }
            None => {
                return Err(ScimError::invalid_filter(
                    self.end,
                    format!("expected an operator after '{word}'"),
                ));
            }
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::from_keyword(&op_word).ok_or_else(|| {
            ScimError::invalid_filter(op_at, format!("unknown operator '{op_word}'"))
        })?;
        let value = self.comp_value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        match self.next() {
            Some((_, Tok::Str(s))) => Ok(CompValue::Str(s)),
            Some((at, Tok::Word(w))) => match w.to_ascii_lowercase().as_str() {
                "true" => Ok(CompValue::Bool(true)),
                "false" => Ok(CompValue::Bool(false)),
                "null" => Ok(CompValue::Null),
                _ => serde_json::from_str::<serde_json::Number>(&w)
                    .map(CompValue::Number)
                    .map_err(|_| {
                        ScimError::invalid_filter(
                            at,
                            format!("'{w}' is not a value (strings are quoted)"),
                        )
                    }),
            },
            Some((at, t)) => Err(ScimError::invalid_filter(
                at,
                format!("expected a value, found {}", describe(&t)),
            )),
            None => Err(ScimError::invalid_filter(
                self.end,
                "expected a value, found the end",
            )),
        }
    }
}

pub(crate) fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::Str(s) => format!("the string {}", serde_json::Value::String(s.clone())),
        Tok::Word(w) => format!("'{w}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Filter {
        parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn precedence_is_or_then_and_then_not() {
        let f = p(r#"a eq 1 or b eq 2 and not (c pr)"#);
        assert_eq!(f.to_string(), "(a eq 1 or (b eq 2 and not (c pr)))");
        let f = p(r#"(a eq 1 or b eq 2) and c pr"#);
        assert_eq!(f.to_string(), "((a eq 1 or b eq 2) and c pr)");
    }

    #[test]
    fn keywords_are_case_insensitive_and_values_typed() {
        let f = p(r#"userName EQ "Bob" AND active Eq TRUE And x eq null And n GE 1.5"#);
        assert_eq!(
            f.to_string(),
            r#"(((userName eq "Bob" and active eq true) and x eq null) and n ge 1.5)"#
        );
    }

    #[test]
    fn value_paths_and_urns() {
        let f = p(
            r#"emails[type eq "work" and value co "@example.com"] or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber sw "7""#,
        );
        match f {
            Filter::Or(a, b) => {
                assert!(matches!(*a, Filter::ValuePath(ref path, _) if path.name == "emails"));
                assert!(
                    matches!(*b, Filter::Compare(ref path, CompareOp::Sw, _) if path.urn.is_some())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_carry_positions() {
        for (text, at) in [
            ("userName xx \"a\"", 9),
            ("userName eq", 11),
            ("userName eq bob", 12),
            ("(userName pr", 12),
            ("not userName pr", 4),
            ("emails[value[type pr]]", 12),
            ("userName pr extra", 12),
            ("", 0),
        ] {
            let e = parse_filter(text).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidFilter));
            assert!(
                e.detail.contains(&format!("position {at}:")),
                "{text}: {}",
                e.detail
            );
        }
    }
}
