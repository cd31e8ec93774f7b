//! Tokens of the filter and PATCH-path grammars, each with its byte offset for error messages.

use crate::error::ScimError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A JSON string literal, unescaped.
    Str(String),
    /// Anything else up to whitespace or punctuation: names, keywords, numbers, `.sub` after `]`.
    Word(String),
}

/// Splits `text` into tokens with their byte offsets.
pub(crate) fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ScimError> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let single = match c {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = single {
            out.push((i, tok));
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' {
            let end = string_end(bytes, i)
                .ok_or_else(|| ScimError::invalid_filter(i, "unterminated string"))?;
            let literal: String = serde_json::from_str(&text[i..=end])
                .map_err(|e| ScimError::invalid_filter(i, format!("bad string literal: {e}")))?;
            out.push((i, Tok::Str(literal)));
            i = end + 1;
        } else {
            let start = i;
            while i < bytes.len()
                && !bytes[i].is_ascii_whitespace()
                && !matches!(bytes[i], b'(' | b')' | b'[' | b']' | b'"')
            {
                i += 1;
            }
            out.push((start, Tok::Word(text[start..i].to_owned())));
        }
    }
    Ok(out)
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_strings_and_brackets() {
        let toks = tokenize(r#"emails[type eq "wo\"rk"].value"#).unwrap();
        let kinds: Vec<_> = toks.into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            kinds,
            vec![
                Tok::Word("emails".into()),
                Tok::LBracket,
                Tok::Word("type".into()),
                Tok::Word("eq".into()),
                Tok::Str("wo\"rk".into()),
                Tok::RBracket,
                Tok::Word(".value".into()),
            ]
        );
    }

    #[test]
    fn unterminated_string_names_its_position() {
        let e = tokenize(r#"userName eq "bob"#).unwrap_err();
        assert!(e.detail.contains("position 12"), "{}", e.detail);
    }
}
