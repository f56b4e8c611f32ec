//! The `tracestate` header: every header line combined, each list member
//! checked against the current grammar, later duplicates of a key discarded,
//! and the whole list dropped when any member is invalid.
//!
//! The key grammar is the current text of the specification (the Level 2
//! draft; Level 1 had `simple-key / tenant@system` with a system-id of at
//! most 14 characters). Every key it matches is passed on, whatever its
//! shape: several `@`, an `@` anywhere after the first character.
//!
//! ```text
//! list        = list-member 0*31( OWS "," OWS list-member )
//! list-member = (key "=" value) / OWS
//! key         = ( lcalpha / DIGIT ) 0*255 ( keychar )
//! keychar     = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
//! lcalpha     = %x61-7A ; a-z
//! value       = 0*255( chr ) nblk-chr
//! nblk-chr    = %x21-2B / %x2D-3C / %x3E-7E
//! chr         = %x20 / nblk-chr
//! ```
//!
//! The stock OpenTelemetry `TraceState` checks keys with a rule of its own,
//! stricter than either text (one `@`, at most 13 characters after it, the
//! first a letter or digit), accepts empty and control-character values and
//! does not trim optional white space around members. Forwarding a malformed
//! list would make *us* the participant that corrupted other vendors' state,
//! so the list is parsed here, to the letter; [`TraceStateList::to_sdk`] says
//! how much of it the SDK can hold.
//!
//! A key may appear only once. A list that repeats one is still readable,
//! and the text lets a vendor delete entries it did not generate, so the
//! first occurrence is kept with the rest of the list and the later ones are
//! discarded: one careless upstream vendor no longer costs every other
//! vendor its entry.

use std::collections::HashSet;
use std::fmt;

use opentelemetry::trace::TraceState;
use thiserror::Error;

/// Header name, lowercase as the specification asks senders to write it.
pub const TRACESTATE: &str = "tracestate";

/// At most 32 list members, counted as received (a discarded duplicate
/// counts: the list as sent was already too long). Empty members (what
/// combining an empty header line leaves behind) are not members and are
/// not counted.
pub const MAX_MEMBERS: usize = 32;

/// Keys and values have 1 to 256 characters.
pub const MAX_KEY: usize = 256;
pub const MAX_VALUE: usize = 256;

/// A valid, non-empty `tracestate` list, members in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStateList {
    members: Vec<(String, String)>,
}

impl TraceStateList {
    /// The members, left-most first.
    pub fn members(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true: an empty list is represented as "no list" (`None`).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The list as the OpenTelemetry SDK's `TraceState` can hold it, so
    /// exported spans show it: every member whose key the SDK accepts, in
    /// order. The SDK's key rule is stricter than the grammar above and
    /// 0.32 has no unchecked constructor, so a key it refuses (a system-id of 14
    /// characters, two `@`, …) cannot be carried: see
    /// [`SdkTraceState::refused`]. The propagator still forwards the whole
    /// list as received.
    pub fn to_sdk(&self) -> SdkTraceState {
        // `insert` puts a member first, so walk from the right.
        let mut trace_state = TraceState::NONE;
        let mut refused = Vec::new();
        for (key, value) in self.members().rev() {
            match trace_state.insert(key, value) {
                Ok(with_member) => trace_state = with_member,
                Err(_) => refused.push(key.to_owned()),
            }
        }
        refused.reverse();
        SdkTraceState {
            trace_state,
            refused,
        }
    }
}

/// What [`TraceStateList::to_sdk`] could make of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkTraceState {
    /// Every member of the list whose key the SDK accepts, in order.
    pub trace_state: TraceState,
    /// The keys of the members left out (valid on the wire), in order.
    pub refused: Vec<String>,
}

impl SdkTraceState {
    /// Whether `trace_state` is the whole list.
    pub fn is_exact(&self) -> bool {
        self.refused.is_empty()
    }
}

/// The single-line form we send: members joined by `,`, no white space.
impl fmt::Display for TraceStateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.members().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// Why a `tracestate` was dropped (the `traceparent` is kept regardless).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TraceStateError {
    #[error("list member {0:?} has no '='")]
    NoEquals(String),
    #[error("invalid key {key:?}: {problem}")]
    Key { key: String, problem: KeyProblem },
    #[error("invalid value for key {key:?}: {problem}")]
    Value { key: String, problem: ValueProblem },
    #[error("{0} list members: at most 32 are allowed")]
    TooManyMembers(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyProblem {
    #[error("empty")]
    Empty,
    #[error("longer than 256 characters")]
    TooLong,
    #[error("a key starts with a lowercase letter or a digit")]
    BadStart,
    #[error("allowed characters are a-z 0-9 _ - * / @")]
    BadCharacter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ValueProblem {
    #[error("empty")]
    Empty,
    #[error("longer than 256 characters")]
    TooLong,
    #[error("only printable ASCII other than ',' and '=' is allowed")]
    BadCharacter,
}

/// Parses the `tracestate` header lines of one request, combined in order as
/// RFC 7230 says (joined with `,`; an empty line adds nothing).
///
/// `Ok(None)`: no header, or only empty members. `Err`: the whole list must
/// be dropped.
pub fn parse_lines(lines: &[&str]) -> Result<Option<TraceStateList>, TraceStateError> {
    parse(&lines.join(","))
}

/// Parses one combined `tracestate` value.
pub fn parse(value: &str) -> Result<Option<TraceStateList>, TraceStateError> {
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    let mut received = 0;
    for member in value.split(',') {
        // Spaces and tabs around a member are optional white space; this is
        // also where a value's trailing spaces go (they are not part of it).
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member
            .split_once('=')
            .ok_or_else(|| TraceStateError::NoEquals(member.to_owned()))?;
        check_key(key).map_err(|problem| TraceStateError::Key {
            key: key.to_owned(),
            problem,
        })?;
        check_value(value).map_err(|problem| TraceStateError::Value {
            key: key.to_owned(),
            problem,
        })?;
        received += 1;
        if !seen.insert(key) {
            tracing::debug!(key, "discarding a later duplicate of a tracestate key");
            continue;
        }
        members.push((key.to_owned(), value.to_owned()));
    }
    if received > MAX_MEMBERS {
        return Err(TraceStateError::TooManyMembers(received));
    }
    Ok((!members.is_empty()).then_some(TraceStateList { members }))
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`.
pub fn check_key(key: &str) -> Result<(), KeyProblem> {
    let b = key.as_bytes();
    let Some(&first) = b.first() else {
        return Err(KeyProblem::Empty);
    };
    if b.len() > MAX_KEY {
        return Err(KeyProblem::TooLong);
    }
    if !is_key_start(first) {
        return Err(KeyProblem::BadStart);
    }
    if b[1..].iter().all(|&c| is_key_char(c)) {
        Ok(())
    } else {
        Err(KeyProblem::BadCharacter)
    }
}

/// `lcalpha / DIGIT`: the first character of a key.
fn is_key_start(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `keychar`: every later character of a key.
fn is_key_char(c: u8) -> bool {
    is_key_start(c) || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
}

/// `0*255(chr) nblk-chr`: 1 to 256 printable ASCII characters without `,`
/// and `=`, not ending with a space. (The caller has already removed
/// trailing white space, so a value of spaces only arrives here empty.)
pub fn check_value(value: &str) -> Result<(), ValueProblem> {
    let b = value.as_bytes();
    let nblk = |c: u8| matches!(c, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    match b.last() {
        None => Err(ValueProblem::Empty),
        Some(_) if b.len() > MAX_VALUE => Err(ValueProblem::TooLong),
        Some(&last) if !nblk(last) => Err(ValueProblem::BadCharacter),
        Some(_) if b.iter().all(|&c| c == b' ' || nblk(c)) => Ok(()),
        Some(_) => Err(ValueProblem::BadCharacter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyProblem as K;
    use TraceStateError as E;
    use ValueProblem as V;

    fn header(lines: &[&str]) -> Result<Option<String>, TraceStateError> {
        parse_lines(lines).map(|list| list.map(|l| l.to_string()))
    }

    fn members(n: usize) -> String {
        (1..=n)
            .map(|i| format!("bar{i:02}={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `n` members, `per_line` to a header line (as the W3C test suite sends).
    fn member_lines(n: usize, per_line: usize) -> Vec<String> {
        let all: Vec<String> = (1..=n).map(|i| format!("bar{i:02}={i:02}")).collect();
        all.chunks(per_line).map(|c| c.join(",")).collect()
    }

    const KEY_START: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
    const KEY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@";

    #[test]
    fn valid_lists_are_combined_trimmed_and_kept_in_order() {
        let all_value_chars: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        let cases: Vec<(&str, Vec<String>, &str)> = vec![
            ("one member", vec!["foo=1".into()], "foo=1"),
            ("two members", vec!["foo=1,bar=2".into()], "foo=1,bar=2"),
            (
                "lines combined in order",
                vec![
                    "foo=1,bar=2".into(),
                    "rojo=1,congo=2".into(),
                    "baz=3".into(),
                ],
                "foo=1,bar=2,rojo=1,congo=2,baz=3",
            ),
            ("empty line after", vec!["foo=1".into(), "".into()], "foo=1"),
            (
                "empty line before",
                vec!["".into(), "foo=1".into()],
                "foo=1",
            ),
            (
                "empty members",
                vec![",foo=1,, ,bar=2,".into()],
                "foo=1,bar=2",
            ),
            (
                "spaces and tabs around commas",
                vec!["foo=1 \t , \t bar=2, \t baz=3".into()],
                "foo=1,bar=2,baz=3",
            ),
            (
                "tabs and spaces",
                vec!["foo=1\t \t,\t \tbar=2,\t \tbaz=3".into()],
                "foo=1,bar=2,baz=3",
            ),
            ("leading space", vec![" foo=1".into()], "foo=1"),
            ("leading tab", vec!["\tfoo=1".into()], "foo=1"),
            (
                "trailing space (not part of the value)",
                vec!["foo=1 ".into()],
                "foo=1",
            ),
            ("trailing tab", vec!["foo=1\t".into()], "foo=1"),
            ("both", vec!["\t foo=1 \t".into()], "foo=1"),
            (
                "leading spaces of a value are kept",
                vec!["foo=  1".into()],
                "foo=  1",
            ),
            (
                "inner spaces of a value are kept",
                vec!["foo=a b".into()],
                "foo=a b",
            ),
            ("every key character", vec![format!("a{KEY_CHARS}=1")], ""),
            (
                "every value character",
                vec![format!("foo={all_value_chars}")],
                "",
            ),
            (
                "Level 1 multi-tenant key",
                vec!["fw529a3039@dt=1".into()],
                "fw529a3039@dt=1",
            ),
            ("key starting with a digit", vec!["1foo=1".into()], "1foo=1"),
            ("key of one letter", vec!["a=1".into()], "a=1"),
            ("key of one digit", vec!["0=1".into()], "0=1"),
            ("key of 256", vec![format!("{}=1", "z".repeat(256))], ""),
            (
                "a 14-character system-id",
                vec![format!("t@{}=1", "v".repeat(14))],
                "",
            ),
            (
                "a 15-character system-id",
                vec![format!("t@{}=1", "v".repeat(15))],
                "",
            ),
            (
                "a 242-character tenant-id",
                vec![format!("{}@v=1", "t".repeat(242))],
                "",
            ),
            ("'@' last", vec!["foo@=1,bar=2".into()], ""),
            ("'@' second", vec!["f@oo=1".into()], ""),
            ("'@@'", vec!["foo@@bar=1".into()], ""),
            ("two '@'", vec!["foo@bar@baz=1".into()], ""),
            ("'@' then a digit", vec!["t@1v=1".into()], ""),
            ("'@' then '-'", vec!["t@-v=1".into()], ""),
            ("value of 256", vec![format!("foo={}", "v".repeat(256))], ""),
            ("32 members", vec![members(32)], ""),
            ("32 members over four lines", member_lines(32, 10), ""),
            (
                "vendor examples",
                vec!["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into()],
                "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            ),
        ];
        for (case, lines, expected) in cases {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let got = header(&lines)
                .unwrap_or_else(|e| panic!("{case}: {lines:?}: {e}"))
                .unwrap_or_else(|| panic!("{case}: no list"));
            // "" means: exactly the input, as one line.
            let expected = if expected.is_empty() {
                lines.join(",")
            } else {
                expected.to_owned()
            };
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn no_list_when_nothing_but_empty_members() {
        for lines in [&[][..], &[""], &["", ""], &[" \t "], &[",, ,"]] {
            assert_eq!(header(lines), Ok(None), "{lines:?}");
        }
    }

    #[test]
    fn a_later_duplicate_is_discarded_and_the_rest_kept() {
        let cases: Vec<(&str, Vec<&str>, &str)> = vec![
            ("same value", vec!["foo=1,foo=1"], "foo=1"),
            ("other value", vec!["foo=1,foo=2"], "foo=1"),
            ("across lines", vec!["foo=1", "foo=2"], "foo=1"),
            (
                "the rest of the list, in order",
                vec!["a=1,foo=1,b=2,foo=2,c=3"],
                "a=1,foo=1,b=2,c=3",
            ),
            (
                "three times",
                vec!["foo=1,foo=2,bar=3,foo=3"],
                "foo=1,bar=3",
            ),
            (
                "two keys repeated",
                vec!["a=1,b=2", "b=3,a=4,c=5"],
                "a=1,b=2,c=5",
            ),
            (
                "keys of the current grammar",
                vec!["t@vvvvvvvvvvvvvv=1,x@y@z=2,t@vvvvvvvvvvvvvv=3"],
                "t@vvvvvvvvvvvvvv=1,x@y@z=2",
            ),
        ];
        for (case, lines, expected) in cases {
            assert_eq!(header(&lines), Ok(Some(expected.to_owned())), "{case}");
        }
        // Members are counted as received: 33 with a duplicate is too many.
        let with_duplicate = format!("{},bar01=x", members(32));
        assert_eq!(header(&[&with_duplicate]), Err(E::TooManyMembers(33)));
        let with_duplicate = format!("{},bar01=x", members(31));
        assert_eq!(header(&[&with_duplicate]), Ok(Some(members(31))));
        // A duplicate that is itself invalid still drops the whole list.
        assert_eq!(
            header(&["foo=1,foo="]),
            Err(E::Value {
                key: "foo".into(),
                problem: V::Empty
            })
        );
    }

    #[test]
    fn any_invalid_member_drops_the_whole_list() {
        let key = |k: &str, p| E::Key {
            key: k.to_owned(),
            problem: p,
        };
        let value = |k: &str, p| E::Value {
            key: k.to_owned(),
            problem: p,
        };
        let cases: Vec<(&str, Vec<String>, TraceStateError)> = vec![
            ("no '='", vec!["foo".into()], E::NoEquals("foo".into())),
            (
                "no '=' in a later line",
                vec!["foo=1".into(), "bar".into()],
                E::NoEquals("bar".into()),
            ),
            ("empty key", vec!["=1".into()], key("", K::Empty)),
            (
                "space before '='",
                vec!["foo =1".into()],
                key("foo ", K::BadCharacter),
            ),
            (
                "uppercase key",
                vec!["FOO=1".into()],
                key("FOO", K::BadStart),
            ),
            (
                "uppercase later in key",
                vec!["fOo=1".into()],
                key("fOo", K::BadCharacter),
            ),
            (
                "dot in key",
                vec!["foo.bar=1".into()],
                key("foo.bar", K::BadCharacter),
            ),
            (
                "key starting with '_'",
                vec!["_foo=1".into()],
                key("_foo", K::BadStart),
            ),
            (
                "key starting with '@'",
                vec!["@foo=1,bar=2".into()],
                key("@foo", K::BadStart),
            ),
            (
                "key starting with '-'",
                vec!["-t@v=1".into()],
                key("-t@v", K::BadStart),
            ),
            (
                "key of 257",
                vec!["foo=1".into(), format!("{}=1", "z".repeat(257))],
                key(&"z".repeat(257), K::TooLong),
            ),
            (
                "'@' key of 257",
                vec![format!("{}@{}=1", "t".repeat(128), "v".repeat(128))],
                key(
                    &format!("{}@{}", "t".repeat(128), "v".repeat(128)),
                    K::TooLong,
                ),
            ),
            (
                "empty value",
                vec!["foo=,bar=3".into()],
                value("foo", V::Empty),
            ),
            (
                "value of spaces only",
                vec!["foo=   ".into()],
                value("foo", V::Empty),
            ),
            (
                "'=' in value",
                vec!["foo=bar=baz".into()],
                value("foo", V::BadCharacter),
            ),
            (
                "tab in value",
                vec!["foo=a\tb".into()],
                value("foo", V::BadCharacter),
            ),
            (
                "non-ASCII value",
                vec!["foo=caf\u{e9}".into()],
                value("foo", V::BadCharacter),
            ),
            (
                "DEL in value",
                vec!["foo=a\u{7f}".into()],
                value("foo", V::BadCharacter),
            ),
            (
                "value of 257",
                vec![format!("foo={}", "v".repeat(257))],
                value("foo", V::TooLong),
            ),
            ("33 members", vec![members(33)], E::TooManyMembers(33)),
            (
                "33 members over four lines",
                member_lines(33, 10),
                E::TooManyMembers(33),
            ),
        ];
        for (case, lines, expected) in cases {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert_eq!(header(&lines), Err(expected), "{case}: {lines:?}");
        }
    }

    /// Every ASCII character in each position of a key — first, second,
    /// middle, last of 256 — against the grammar: only `lcalpha / DIGIT`
    /// may come first, any `keychar` after.
    #[test]
    fn each_character_in_each_key_position() {
        for c in (0u8..=0x7f).map(char::from) {
            for position in [0, 1, 128, 255] {
                let mut key: Vec<char> = "k".repeat(MAX_KEY).chars().collect();
                key[position] = c;
                let key: String = key.into_iter().collect();
                let expected = match (position, KEY_START.contains(c), KEY_CHARS.contains(c)) {
                    (0, true, _) => Ok(()),
                    (0, false, _) => Err(K::BadStart),
                    (_, _, true) => Ok(()),
                    (_, _, false) => Err(K::BadCharacter),
                };
                assert_eq!(check_key(&key), expected, "{c:?} at {position}");
                // Through the whole parser, for every character that is not
                // list syntax (',' separates members; spaces and tabs at
                // the edges are optional white space).
                if matches!(c, ',' | ' ' | '\t') {
                    continue;
                }
                let list = format!("foo=1,{key}=2");
                match expected {
                    Ok(()) => assert_eq!(parse(&list).unwrap().unwrap().to_string(), list),
                    Err(_) => assert!(parse(&list).is_err(), "{c:?} at {position}"),
                }
            }
        }
        // Every keychar in the last place of a two-character key, too.
        for c in KEY_CHARS.chars() {
            assert_eq!(check_key(&format!("a{c}")), Ok(()), "{c:?}");
        }
        assert_eq!(check_key("\u{e9}a"), Err(K::BadStart));
        assert_eq!(check_key("a\u{e9}"), Err(K::BadCharacter));
    }

    /// The examples lesson 3 gives.
    #[test]
    fn lesson_3_key_examples() {
        let fifteen = format!("t@{}", "v".repeat(15));
        for key in ["rojo", "1t@vendor", "a@b@c", &fifteen] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
        for key in ["Rojo", "@vendor", "_x"] {
            assert_eq!(check_key(key), Err(K::BadStart), "{key}");
        }
        // Every Level 1 key is still valid: the longest multi-tenant one.
        let level1 = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        assert_eq!(check_key(&level1), Ok(()));
    }

    #[test]
    fn key_lengths_at_the_boundaries() {
        for (length, expected) in [
            (0, Err(K::Empty)),
            (1, Ok(())),
            (2, Ok(())),
            (255, Ok(())),
            (256, Ok(())),
            (257, Err(K::TooLong)),
        ] {
            for start in ["a", "0"] {
                let key = format!("{start}{}", "@".repeat(length.max(1) - 1));
                let key = if length == 0 { String::new() } else { key };
                assert_eq!(check_key(&key), expected, "{length}: {key}");
            }
        }
    }

    #[test]
    fn sdk_form_is_the_list_where_the_sdk_accepts_every_key() {
        let list = parse("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
            .unwrap()
            .unwrap();
        let sdk = list.to_sdk();
        assert!(sdk.is_exact());
        assert_eq!(sdk.trace_state.header(), list.to_string());
    }

    #[test]
    fn sdk_form_leaves_out_what_the_sdk_refuses_and_says_so() {
        let system14 = format!("t@{}", "v".repeat(14));
        let list = parse(&format!(
            "a=1,{system14}=2,b@c=3,x@y@z=4,t@_v=5,c=6,t@13vvvvvvvvvvv=7"
        ))
        .unwrap()
        .unwrap();
        let sdk = list.to_sdk();
        assert_eq!(sdk.refused, [system14.as_str(), "x@y@z", "t@_v"]);
        assert!(!sdk.is_exact());
        assert_eq!(sdk.trace_state.header(), "a=1,b@c=3,c=6,t@13vvvvvvvvvvv=7");
        let only_refused = parse(&format!("{system14}=1")).unwrap().unwrap();
        assert_eq!(only_refused.to_sdk().trace_state, TraceState::NONE);
    }

    mod grammar {
        //! Lists generated from the grammar itself.
        use proptest::prelude::*;

        use super::super::*;

        fn key() -> impl Strategy<Value = String> {
            "[a-z0-9][a-z0-9_*/@-]{0,255}"
        }

        fn value() -> impl Strategy<Value = String> {
            "[\\x20-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{0,255}[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]"
        }

        fn ows() -> impl Strategy<Value = String> {
            "[ \\t]{0,2}"
        }

        /// 1 to 32 members with distinct keys.
        fn members() -> impl Strategy<Value = Vec<(String, String)>> {
            prop::collection::btree_map(key(), value(), 1..=MAX_MEMBERS)
                .prop_map(|m| m.into_iter().collect())
                .prop_shuffle()
        }

        /// A key that breaks the grammar: a valid key with a character
        /// outside `keychar` put in, or a `keychar` that may not start one.
        fn bad_key() -> impl Strategy<Value = String> {
            let outside = prop::char::range('!', '~').prop_filter("not a keychar", |c| {
                !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-*/@,".contains(*c))
            });
            prop_oneof![
                (key(), any::<prop::sample::Index>(), outside).prop_map(|(k, at, c)| {
                    let at = at.index(k.len() + 1);
                    format!("{}{c}{}", &k[..at], &k[at..])
                }),
                (prop::sample::select(vec!['_', '-', '*', '/', '@']), key())
                    .prop_map(|(c, k)| format!("{c}{k}")),
                ("[a-z0-9]", "[a-z0-9_*/@-]{256,300}").prop_map(|(a, b)| format!("{a}{b}")),
            ]
        }

        fn joined(members: &[(String, String)]) -> String {
            members
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        }

        proptest! {
            #[test]
            fn every_grammar_key_and_value_is_passed_on(k in key(), v in value()) {
                let member = format!("{k}={v}");
                let list = parse(&member).unwrap().unwrap();
                prop_assert_eq!(list.to_string(), member);
            }
        }

        proptest! {
            // Whole lists of up to 32 long members are slow to generate in
            // a debug build: fewer cases, each a big one.
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn lists_are_passed_on_in_order_without_ows(
                members in members(),
                space in prop::collection::vec(ows(), 2 * MAX_MEMBERS),
            ) {
                let header = members
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| format!("{}{k}={v}{}", space[2 * i], space[2 * i + 1]))
                    .collect::<Vec<_>>()
                    .join(",");
                let list = parse(&header).unwrap().unwrap();
                prop_assert_eq!(list.to_string(), joined(&members));
            }

            #[test]
            fn one_bad_key_drops_the_whole_list(
                members in members(),
                bad in bad_key(),
                at in any::<prop::sample::Index>(),
            ) {
                let mut members = members;
                members.truncate(MAX_MEMBERS - 1);
                members.insert(at.index(members.len() + 1), (bad.clone(), "1".into()));
                prop_assert!(parse(&joined(&members)).is_err(), "{bad:?}");
            }

            #[test]
            fn later_duplicates_are_discarded(
                members in members(),
                repeat in any::<prop::sample::Index>(),
                at in any::<prop::sample::Index>(),
                v in value(),
            ) {
                let mut members = members;
                members.truncate(MAX_MEMBERS - 1);
                let original = joined(&members);
                let first = repeat.index(members.len());
                let key = members[first].0.clone();
                let at = first + 1 + at.index(members.len() - first);
                members.insert(at, (key, v));
                let list = parse(&joined(&members)).unwrap().unwrap();
                prop_assert_eq!(list.to_string(), original);
            }

            #[test]
            fn the_sdk_form_is_the_list_less_the_refused_keys(members in members()) {
                let list = parse(&joined(&members)).unwrap().unwrap();
                let sdk = list.to_sdk();
                let kept: Vec<(String, String)> = members
                    .iter()
                    .filter(|(k, _)| !sdk.refused.contains(k))
                    .cloned()
                    .collect();
                prop_assert_eq!(sdk.trace_state.header(), joined(&kept));
                prop_assert_eq!(sdk.refused.len() + kept.len(), members.len());
            }
        }
    }
}
