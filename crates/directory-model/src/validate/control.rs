//! Control characters in names, titles, ids and other text.
//!
//! A control character has no business in a directory entry, and several do harm:
//! - an ESC or BEL in a name travels from the OA API through `plan`, `dead-letters list` and the
//!   logs to an administrator's terminal, where it can rewrite the screen (issue 18 B5);
//! - NUL cannot be stored in a PostgreSQL `text` column at all;
//! - DingTalk refuses them in userids (40003), and a name that DingTalk's clients cannot show is
//!   no use to anyone even where DingTalk stores it.
//!
//! So the OA side refuses them at the door, with the character spelled out as a code point
//! (never echoed raw: the error message itself reaches terminals and logs).
//!
//! "Control character" means Unicode category Cc, which is exactly [`char::is_control`]: C0
//! (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F). Single-line fields (names, titles, ids,
//! numbers, addresses) refuse all of them. Free multi-line text (the remark, extension values)
//! may hold tab, line feed and carriage return, which are how line breaks are written; every
//! other control character is refused there too.

/// How much of C0 a field tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A name, title, id or other one-line value: no control character at all.
    SingleLine,
    /// Free text that may hold line breaks: tab, LF and CR are allowed, nothing else.
    MultiLine,
}

impl TextKind {
    /// Whether this kind of field refuses `c`.
    pub fn refuses(self, c: char) -> bool {
        c.is_control() && !(self == TextKind::MultiLine && matches!(c, '\t' | '\n' | '\r'))
    }
}

/// The first character of `value` that a field of `kind` refuses, if any.
pub fn first_control_char(value: &str, kind: TextKind) -> Option<char> {
    value.chars().find(|c| kind.refuses(*c))
}

/// Whether `value` holds a control character (any of C0, DEL, C1).
pub fn has_control_char(value: &str) -> bool {
    first_control_char(value, TextKind::SingleLine).is_some()
}

/// The usual abbreviation of a C0 control character or DEL, for messages.
fn control_name(c: char) -> Option<&'static str> {
    const C0: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF",
        "CR", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM",
        "SUB", "ESC", "FS", "GS", "RS", "US",
    ];
    match c {
        '\u{7f}' => Some("DEL"),
        _ => C0.get(usize::try_from(u32::from(c)).ok()?).copied(),
    }
}

/// Whether `c` is an invisible formatting character (zero-width characters, bidirectional
/// controls, the byte-order mark): printed raw, it would reorder or hide the message around it.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

/// A character spelled out for an error message without ever writing an unprintable or
/// invisible one raw: `U+001B (ESC)`, `U+0085`, `U+202E`, `U+0020 (space)` or `'/' (U+002F)`.
pub fn describe_char(c: char) -> String {
    let code = u32::from(c);
    if let Some(name) = control_name(c) {
        format!("U+{code:04X} ({name})")
    } else if c == ' ' {
        format!("U+{code:04X} (space)")
    } else if c.is_control() || c.is_whitespace() || is_invisible_format(c) {
        format!("U+{code:04X}")
    } else {
        format!("'{c}' (U+{code:04X})")
    }
}

/// The message for a refused control character.
pub(crate) fn control_message(c: char, kind: TextKind) -> String {
    let allowed = match kind {
        TextKind::SingleLine => "",
        TextKind::MultiLine => " other than tab and line breaks",
    };
    format!(
        "must not contain the control character {}; control characters (U+0000–U+001F, \
         U+007F–U+009F){allowed} are refused",
        describe_char(c)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c0_del_and_c1_are_control_characters_and_nothing_else_is() {
        for c in [
            '\0', '\u{7}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}',
        ] {
            assert!(TextKind::SingleLine.refuses(c), "{}", describe_char(c));
            assert!(TextKind::MultiLine.refuses(c), "{}", describe_char(c));
        }
        for c in [
            ' ', 'a', '部', '\u{a0}', '\u{200b}', '\u{202e}', '\u{20}', '~',
        ] {
            assert!(!TextKind::SingleLine.refuses(c), "{}", describe_char(c));
        }
    }

    #[test]
    fn multi_line_text_keeps_tab_and_line_breaks_only() {
        for c in ['\t', '\n', '\r'] {
            assert!(TextKind::SingleLine.refuses(c));
            assert!(!TextKind::MultiLine.refuses(c));
        }
        assert_eq!(
            first_control_char("line one\r\nline\ttwo", TextKind::MultiLine),
            None
        );
        assert_eq!(
            first_control_char("a\nb\u{1b}[2J", TextKind::MultiLine),
            Some('\u{1b}')
        );
        assert_eq!(
            first_control_char("a\nb\u{1b}[2J", TextKind::SingleLine),
            Some('\n')
        );
    }

    #[test]
    fn descriptions_never_contain_the_character_itself() {
        assert_eq!(describe_char('\u{1b}'), "U+001B (ESC)");
        assert_eq!(describe_char('\0'), "U+0000 (NUL)");
        assert_eq!(describe_char('\u{7}'), "U+0007 (BEL)");
        assert_eq!(describe_char('\u{7f}'), "U+007F (DEL)");
        assert_eq!(describe_char('\u{9b}'), "U+009B");
        assert_eq!(describe_char(' '), "U+0020 (space)");
        assert_eq!(describe_char('/'), "'/' (U+002F)");
        assert_eq!(describe_char('\u{202e}'), "U+202E");
        assert_eq!(describe_char('\u{200b}'), "U+200B");
        assert_eq!(describe_char('\u{3000}'), "U+3000");
        for c in (0u32..0xa0)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
        {
            let text = control_message(c, TextKind::SingleLine);
            assert!(!has_control_char(&text), "{text:?}");
        }
    }
}
