//! The syntax of a userid.
//!
//! dingsync creates every OA user in DingTalk under the OA id, so an OA id that DingTalk refuses
//! is a user that can never be pushed: it used to be accepted with 201 and then dead-lettered with
//! 40003 "不合法的UserID" on every run (issue 18 B3). The OA API must refuse it instead.
//!
//! DingTalk documents the length (1–64 characters) and not the character set
//! (`dingtalk-api.md` §2.2, "Allowed charset: UNCONFIRMED"). The ids it generates are digit
//! strings and the documented examples are ASCII words (`zhangsan`, `manager164`). The simulator
//! takes the strict plausible reading, `[A-Za-z0-9_.@-]{1,64}` (its `org` module docs), and so
//! does this module: an id outside that set is one we cannot show to work, and accepting it
//! would bring back B3 as soon as DingTalk refuses it. So, refused:
//! - anything outside ASCII letters, digits, `_`, `.`, `@` and `-`, which covers path separators
//!   (`/`, `\`), quote characters (`'`, `"`, `` ` ``), whitespace and control characters;
//! - an id made only of dots (`.`, `..`): each character is allowed, but it names a path
//!   segment, and `/api/v1/users/..` is normalised away by HTTP clients and proxies, so such a
//!   user could never be read, changed or deleted through the OA API.

use super::Rule;
use super::control::describe_char;

/// A userid's length limit, in characters (DingTalk: 1–64).
pub const USER_ID_MAX: usize = 64;

/// The allowed characters, as the messages name them.
pub const USER_ID_CHARSET: &str = "A–Z, a–z, 0–9, '_', '.', '@' and '-'";

/// Whether `c` may appear in a userid.
pub fn is_userid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-')
}

/// Whether DingTalk accepts `id` as a userid (see the module docs for the rule).
pub fn is_valid_userid(id: &str) -> bool {
    userid_problems(id).is_empty()
}

/// Every problem with `id` as a userid, each as a rule and a message (empty when valid).
pub fn userid_problems(id: &str) -> Vec<(Rule, String)> {
    if id.is_empty() {
        return vec![(Rule::Required, "must not be empty".to_owned())];
    }
    let mut problems = Vec::new();
    let len = id.chars().count();
    if len > USER_ID_MAX {
        problems.push((
            Rule::TooLong { max: USER_ID_MAX },
            format!("is {len} characters long; a DingTalk userid has at most {USER_ID_MAX}"),
        ));
    }
    if let Some(bad) = id.chars().find(|c| !is_userid_char(*c)) {
        problems.push((
            Rule::ForbiddenCharacter { character: bad },
            format!(
                "must not contain {}; a DingTalk userid is 1–{USER_ID_MAX} characters of \
                 {USER_ID_CHARSET}",
                describe_char(bad)
            ),
        ));
    } else if id.chars().all(|c| c == '.') {
        problems.push((
            Rule::Malformed,
            "must not be made of dots only: it would be a path segment ('.' or '..') in URLs"
                .to_owned(),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ordinary_ids_are_valid() {
        for ok in [
            "zhangsan",
            "manager164",
            "184919295227658120",
            "011505184066774889",
            "first.last",
            "a_b-c",
            "ops@corp",
            ".hidden",
            "a..b",
            &"x".repeat(64),
        ] {
            assert!(is_valid_userid(ok), "{ok}");
        }
    }

    #[test]
    fn path_like_quoted_and_control_ids_are_refused_with_the_character() {
        for (bad, c) in [
            ("../etc/passwd", '/'),
            ("a/b", '/'),
            ("a\\b", '\\'),
            ("o'brien", '\''),
            ("say\"hi\"", '"'),
            ("back`tick", '`'),
            ("tab\there", '\t'),
            ("esc\u{1b}[31m", '\u{1b}'),
            ("bell\u{7}", '\u{7}'),
            ("nul\0", '\0'),
            ("c1\u{85}", '\u{85}'),
            ("del\u{7f}", '\u{7f}'),
            ("two words", ' '),
            ("张三", '张'),
            ("a?b", '?'),
            ("a#b", '#'),
            ("a%2Fb", '%'),
        ] {
            let problems = userid_problems(bad);
            assert_eq!(
                problems.iter().map(|p| &p.0).collect::<Vec<_>>(),
                vec![&Rule::ForbiddenCharacter { character: c }],
                "{bad:?}"
            );
            assert!(problems[0].1.contains("A–Z, a–z, 0–9"), "{}", problems[0].1);
        }
    }

    #[test]
    fn dot_only_ids_are_path_segments() {
        for bad in [".", "..", "..."] {
            assert_eq!(userid_problems(bad)[0].0, Rule::Malformed, "{bad}");
        }
    }

    #[test]
    fn length_and_emptiness() {
        assert_eq!(userid_problems("")[0].0, Rule::Required);
        assert_eq!(
            userid_problems(&"x".repeat(65))[0].0,
            Rule::TooLong { max: 64 }
        );
        // Both problems of one id are reported, not just the first.
        let both = userid_problems(&format!("{}/", "x".repeat(64)));
        assert_eq!(both.len(), 2);
    }

    proptest! {
        #[test]
        fn every_id_in_the_charset_is_valid(id in "[A-Za-z0-9_.@-]{1,64}") {
            prop_assume!(!id.chars().all(|c| c == '.'));
            prop_assert!(is_valid_userid(&id));
        }

        #[test]
        fn one_foreign_character_anywhere_is_refused_by_name(
            id in "[A-Za-z0-9_.@-]{0,30}",
            at in any::<prop::sample::Index>(),
            bad in any::<char>().prop_filter("outside the charset", |c| !is_userid_char(*c)),
        ) {
            let mut chars: Vec<char> = id.chars().collect();
            chars.insert(at.index(chars.len() + 1), bad);
            let id: String = chars.into_iter().collect();
            let problems = userid_problems(&id);
            prop_assert!(!is_valid_userid(&id));
            let named = problems.iter().any(|(rule, message)| {
                *rule == Rule::ForbiddenCharacter { character: bad }
                    && !message.chars().any(char::is_control)
            });
            prop_assert!(named, "{:?}", problems);
        }
    }
}
