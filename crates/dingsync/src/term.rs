//! What reaches the administrator's terminal: every CLI line goes through [`escape_unprintable`].
//!
//! Names, ids and DingTalk's error texts come from outside (an OA API client, DingTalk, an
//! event). Printed raw, an ESC in a user's name rewrites the administrator's screen or retitles
//! the window, a BEL rings, and a bidi override makes `rm evil` read as something else (issue 18
//! B5). So the one-shot commands (`plan`, `status`, `dead-letters`, `import`) and the one-line
//! errors print through [`out!`](crate::out) / [`outln!`](crate::outln), which escape the whole
//! rendered text with one function: a table or a message cannot forget a field.
//!
//! Escaped: every control character (Unicode Cc: C0, DEL, C1) except the line feed and tab that
//! lay out the output, and the invisible bidi controls (U+061C, U+200E/F, U+202A–U+202E,
//! U+2066–U+2069). Each becomes `\u{…}` (ESC is `\u{1b}`), which is what Rust's `{:?}` shows, so
//! a name can be copied back out of the output and recognised. Everything else, CJK included,
//! passes unchanged.
//!
//! JSON output (`plan --json`) goes through [`escape_json`] instead: `\u{…}` is not a JSON
//! escape, and serde_json writes C1 controls and bidi controls raw, so these become JSON's own
//! `\uXXXX`, which a JSON reader decodes back to the same character.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw.
pub fn is_unprintable(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\t'))
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every unprintable character (see the module docs) written as `\u{…}`.
pub fn escape_unprintable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unprintable) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unprintable(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with every unprintable character (see the module docs) written as JSON's
/// `\uXXXX`. Outside strings serialized JSON is ASCII, so only string contents change, and
/// every unprintable character is in the Basic Multilingual Plane (one `\uXXXX` each).
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unprintable) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unprintable(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `print!` through [`escape_unprintable`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        ::std::print!("{}", $crate::term::escape_unprintable(&::std::format!($($arg)*)))
    };
}

/// `println!` through [`escape_unprintable`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        ::std::println!("{}", $crate::term::escape_unprintable(&::std::format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_layout_and_cjk_are_not() {
        assert_eq!(
            escape_unprintable("a\u{1b}[31mb\u{7}c\u{0}d\u{7f}e\u{9b}f\rg"),
            "a\\u{1b}[31mb\\u{7}c\\u{0}d\\u{7f}e\\u{9b}f\\u{d}g"
        );
        assert_eq!(
            escape_unprintable("x\u{202e}gpj.exe\u{2066}y\u{200f}"),
            "x\\u{202e}gpj.exe\\u{2066}y\\u{200f}"
        );
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "name": "a\u{1b}b\u{9b}c\u{202e}d\u{7f}e负责人"
        }))
        .unwrap_or_default();
        let escaped = escape_json(&json);
        assert!(!escaped.chars().any(is_unprintable), "{escaped}");
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap_or_default();
        assert_eq!(back["name"], "a\u{1b}b\u{9b}c\u{202e}d\u{7f}e负责人");
        let plain = "负责人 alice\tbob\nnext line";
        assert!(matches!(escape_unprintable(plain), Cow::Borrowed(s) if s == plain));
    }
}
