//! The `tracestate` header: every header line combined, each list member
//! checked against the current grammar, and the whole list dropped when any
//! member is invalid.
//!
//! The stock OpenTelemetry `TraceState` checks keys with an older rule (a
//! system-id of at most 13 characters instead of 14), accepts empty and
//! control-character values and does not trim optional white space around
//! members. Forwarding a malformed list would make *us* the participant that
//! corrupted other vendors' state, so the list is parsed here, to the letter:
//!
//! ```text
//! list             = list-member 0*31( OWS "," OWS list-member )
//! list-member      = (key "=" value) / OWS
//! key              = simple-key / multi-tenant-key
//! simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//! multi-tenant-key = tenant-id "@" system-id
//! tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//! system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//! value            = 0*255( chr ) nblk-chr
//! nblk-chr         = %x21-2B / %x2D-3C / %x3E-7E
//! chr              = %x20 / nblk-chr
//! ```

use std::collections::HashSet;
use std::fmt;

use opentelemetry::trace::TraceState;
use thiserror::Error;

/// Header name, lowercase as the specification asks senders to write it.
pub const TRACESTATE: &str = "tracestate";

/// At most 32 list members. Empty members (what combining an empty header
/// line leaves behind) are not members and are not counted.
pub const MAX_MEMBERS: usize = 32;

const MAX_SIMPLE_KEY: usize = 256;
const MAX_TENANT_ID: usize = 241;
const MAX_SYSTEM_ID: usize = 14;
const MAX_VALUE: usize = 256;

/// A valid, non-empty `tracestate` list, members in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStateList {
    members: Vec<(String, String)>,
}

impl TraceStateList {
    /// The members, left-most first.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true: an empty list is represented as "no list" (`None`).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The same list as the OpenTelemetry SDK's `TraceState`, so exported
    /// spans show it. `None` when the SDK's older key rule refuses a member
    /// that the current grammar allows (a 14-character system-id): the
    /// propagator then still forwards the list as received.
    pub fn to_sdk(&self) -> Option<TraceState> {
        TraceState::from_key_value(self.members()).ok()
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
    #[error("key {0:?} appears more than once")]
    DuplicateKey(String),
    #[error("{0} list members: at most 32 are allowed")]
    TooManyMembers(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyProblem {
    #[error("empty")]
    Empty,
    #[error("a simple key has at most 256 characters")]
    TooLong,
    #[error("a simple key starts with a lowercase letter")]
    BadStart,
    #[error("allowed characters are a-z 0-9 _ - * / and one @")]
    BadCharacter,
    #[error("more than one '@'")]
    SeveralAts,
    #[error("a tenant-id has 1 to 241 characters")]
    TenantLength,
    #[error("a tenant-id starts with a lowercase letter or a digit")]
    TenantStart,
    #[error("a system-id has 1 to 14 characters")]
    SystemLength,
    #[error("a system-id starts with a lowercase letter")]
    SystemStart,
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
        if !seen.insert(key) {
            return Err(TraceStateError::DuplicateKey(key.to_owned()));
        }
        members.push((key.to_owned(), value.to_owned()));
    }
    if members.len() > MAX_MEMBERS {
        return Err(TraceStateError::TooManyMembers(members.len()));
    }
    Ok((!members.is_empty()).then_some(TraceStateList { members }))
}

/// `simple-key / multi-tenant-key`.
pub fn check_key(key: &str) -> Result<(), KeyProblem> {
    let b = key.as_bytes();
    if b.is_empty() {
        return Err(KeyProblem::Empty);
    }
    match key.split_once('@') {
        None => {
            if b.len() > MAX_SIMPLE_KEY {
                return Err(KeyProblem::TooLong);
            }
            if !b[0].is_ascii_lowercase() {
                return Err(KeyProblem::BadStart);
            }
            key_chars(b)
        }
        Some((tenant, system)) => {
            if system.contains('@') {
                return Err(KeyProblem::SeveralAts);
            }
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            key_chars(tenant)?;
            key_chars(system)?;
            if tenant.is_empty() || tenant.len() > MAX_TENANT_ID {
                return Err(KeyProblem::TenantLength);
            }
            if !(tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit()) {
                return Err(KeyProblem::TenantStart);
            }
            if system.is_empty() || system.len() > MAX_SYSTEM_ID {
                return Err(KeyProblem::SystemLength);
            }
            if !system[0].is_ascii_lowercase() {
                return Err(KeyProblem::SystemStart);
            }
            Ok(())
        }
    }
}

fn key_chars(b: &[u8]) -> Result<(), KeyProblem> {
    let allowed = |c: &u8| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
    };
    if b.iter().all(allowed) {
        Ok(())
    } else {
        Err(KeyProblem::BadCharacter)
    }
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

    #[test]
    fn valid_lists_are_combined_trimmed_and_kept_in_order() {
        let all_key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
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
            (
                "every key character",
                vec![format!("{all_key_chars}=1")],
                "",
            ),
            (
                "every value character",
                vec![format!("foo={all_value_chars}")],
                "",
            ),
            (
                "multi-tenant key",
                vec!["fw529a3039@dt=1".into()],
                "fw529a3039@dt=1",
            ),
            (
                "tenant starting with a digit",
                vec!["1tenant@vendor=1".into()],
                "1tenant@vendor=1",
            ),
            (
                "multi-tenant, every character",
                vec![format!("{all_key_chars}@a-z0-9_-*/=1")],
                "",
            ),
            ("key of 256", vec![format!("{}=1", "z".repeat(256))], ""),
            (
                "tenant of 241, system of 14",
                vec![format!("{}@{}=1", "t".repeat(241), "v".repeat(14))],
                "",
            ),
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
                "simple key starting with a digit",
                vec!["1foo=1".into()],
                key("1foo", K::BadStart),
            ),
            (
                "simple key starting with '_'",
                vec!["_foo=1".into()],
                key("_foo", K::BadStart),
            ),
            (
                "key of 257",
                vec!["foo=1".into(), format!("{}=1", "z".repeat(257))],
                key(&"z".repeat(257), K::TooLong),
            ),
            (
                "empty system-id",
                vec!["foo@=1,bar=2".into()],
                key("foo@", K::SystemLength),
            ),
            (
                "empty tenant-id",
                vec!["@foo=1,bar=2".into()],
                key("@foo", K::TenantLength),
            ),
            (
                "'@@'",
                vec!["foo@@bar=1,bar=2".into()],
                key("foo@@bar", K::SeveralAts),
            ),
            (
                "two '@'",
                vec!["foo@bar@baz=1,bar=2".into()],
                key("foo@bar@baz", K::SeveralAts),
            ),
            (
                "tenant of 242",
                vec![format!("{}@v=1", "t".repeat(242))],
                key(&format!("{}@v", "t".repeat(242)), K::TenantLength),
            ),
            (
                "system of 15",
                vec![format!("t@{}=1", "v".repeat(15))],
                key(&format!("t@{}", "v".repeat(15)), K::SystemLength),
            ),
            (
                "system starting with a digit",
                vec!["t@1v=1".into()],
                key("t@1v", K::SystemStart),
            ),
            (
                "tenant starting with '-'",
                vec!["-t@v=1".into()],
                key("-t@v", K::TenantStart),
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
            (
                "duplicate key, same value",
                vec!["foo=1,foo=1".into()],
                E::DuplicateKey("foo".into()),
            ),
            (
                "duplicate key, other value",
                vec!["foo=1,foo=2".into()],
                E::DuplicateKey("foo".into()),
            ),
            (
                "duplicate key across lines",
                vec!["foo=1".into(), "foo=2".into()],
                E::DuplicateKey("foo".into()),
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

    #[test]
    fn sdk_form_matches_unless_the_sdk_rule_is_older() {
        let list = parse("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
            .unwrap()
            .unwrap();
        assert_eq!(list.to_sdk().unwrap().header(), list.to_string());
        // A 14-character system-id is valid today; the SDK allows 13.
        let list = parse(&format!("t@{}=1", "v".repeat(14))).unwrap().unwrap();
        assert_eq!(list.to_sdk(), None);
    }
}
