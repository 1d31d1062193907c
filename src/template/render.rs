//! Binding and rendering: names resolved to indices once, then rendering appends to a reused
//! buffer with no allocation of its own (only the buffer may grow).
//!
//! Literal parts are written as they are; expression values are escaped for where they land
//! (inside a JSON string, or a URL component). Numbers and UUIDs need no escaping in any mode.

use super::parse::FUNCTIONS;
use super::{Expr, Part, Template};
use std::time::{SystemTime, UNIX_EPOCH};

/// Resolves names to indices once, when the engine compiles a scenario.
pub trait Scope {
    fn data_column(&self, set: &str, column: &str) -> Option<(usize, usize)>;
    fn var(&self, name: &str) -> Option<usize>;
}

/// Supplies values while rendering, one per session.
pub trait Values {
    fn data(&self, set: usize, column: usize) -> &str;
    fn var(&self, index: usize) -> &str;
    fn user(&self) -> u64;
    fn client(&self) -> &str;
    fn next_seq(&mut self) -> u64;
    fn random(&mut self, lo: i64, hi: i64) -> i64;
    /// Random bits for `uuid()`, which sets the version and variant bits itself.
    fn random_u128(&mut self) -> u128;
}

/// How expression values are escaped when rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Written as they are (headers, plain bodies).
    None,
    /// Escaped as inside a JSON string: `"`, `\` and control characters.
    Json,
    /// Percent-encoded; RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) are kept.
    Url,
}

/// A template bound to a scope: names are indices, `env()` is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    parts: Vec<BoundPart>,
}

#[derive(Debug, Clone, PartialEq)]
enum BoundPart {
    Lit(Box<[u8]>),
    /// An `env()` value: known at bind time, but escaped like any other value.
    Text(Box<str>),
    Data(usize, usize),
    Var(usize),
    Random(i64, i64),
    Uuid,
    Seq,
    NowMs,
    User,
    Client,
}

impl Template {
    /// Resolves every name against `scope` and reads `env()` variables. The error names the
    /// first unknown data column, capture or unset environment variable.
    pub fn bind(&self, scope: &dyn Scope) -> Result<Bound, String> {
        let parts = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Lit(s) => Ok(BoundPart::Lit(s.as_bytes().into())),
                Part::Expr(e) => bind_expr(e, scope),
            })
            .collect::<Result<_, _>>()?;
        Ok(Bound { parts })
    }
}

fn bind_expr(expr: &Expr, scope: &dyn Scope) -> Result<BoundPart, String> {
    Ok(match expr {
        Expr::Data { set, column } => match scope.data_column(set, column) {
            Some((s, c)) => BoundPart::Data(s, c),
            None => {
                return Err(format!(
                    "`{set}.{column}` is not a data column: no data set `{set}` with a column `{column}`"
                ))
            }
        },
        Expr::Var(name) => match scope.var(name) {
            Some(i) => BoundPart::Var(i),
            None => {
                let mut message =
                    format!("`{name}` is not a captured value: no earlier step captures it");
                if let Some((_, usage)) = FUNCTIONS.iter().find(|(f, _)| f == name) {
                    message += &format!("; did you mean the function `{usage}`?");
                }
                return Err(message);
            }
        },
        Expr::Env(name) => match std::env::var(name) {
            Ok(value) => BoundPart::Text(value.into()),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!(
                    "environment variable `{name}` (used by `env({name})`) is not set"
                ))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!(
                    "environment variable `{name}` (used by `env({name})`) is not valid UTF-8"
                ))
            }
        },
        Expr::Random(lo, hi) => BoundPart::Random(*lo, *hi),
        Expr::Uuid => BoundPart::Uuid,
        Expr::Seq => BoundPart::Seq,
        Expr::NowMs => BoundPart::NowMs,
        Expr::User => BoundPart::User,
        Expr::Client => BoundPart::Client,
    })
}

impl Bound {
    /// Does it read the wall clock (`now_ms()`)? Such a template is rendered when it is sent,
    /// never ahead of time.
    pub fn reads_clock(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, BoundPart::NowMs))
    }

    /// Appends the rendered template to `out`. Literal parts are not escaped; expression values
    /// are, per `escape`.
    pub fn render(&self, values: &mut dyn Values, escape: Escape, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                BoundPart::Lit(bytes) => out.extend_from_slice(bytes),
                BoundPart::Text(text) => push_escaped(out, text.as_bytes(), escape),
                BoundPart::Data(set, column) => {
                    push_escaped(out, values.data(*set, *column).as_bytes(), escape)
                }
                BoundPart::Var(index) => push_escaped(out, values.var(*index).as_bytes(), escape),
                BoundPart::Client => push_escaped(out, values.client().as_bytes(), escape),
                BoundPart::Random(lo, hi) => push_int(out, values.random(*lo, *hi)),
                BoundPart::Seq => push_int(out, values.next_seq()),
                BoundPart::User => push_int(out, values.user()),
                BoundPart::NowMs => push_int(out, now_ms()),
                BoundPart::Uuid => push_uuid(out, values.random_u128()),
            }
        }
    }

    /// The bytes, when the template has no expressions (it never needs rendering). An `env()`
    /// value counts as an expression: it is escaped per render, like any other value.
    pub fn literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [BoundPart::Lit(bytes)] => Some(bytes),
            _ => None,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn push_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes a version-4 UUID (version and variant bits set) in lowercase hyphenated form.
fn push_uuid(out: &mut Vec<u8>, bits: u128) {
    let uuid = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.extend_from_slice(uuid.hyphenated().encode_lower(&mut buf).as_bytes());
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

pub(super) fn push_escaped(out: &mut Vec<u8>, value: &[u8], escape: Escape) {
    match escape {
        Escape::None => out.extend_from_slice(value),
        Escape::Json => push_json(out, value),
        Escape::Url => push_url(out, value),
    }
}

/// Escapes `value` as the inside of a JSON string. Non-ASCII UTF-8 is kept as it is.
fn push_json(out: &mut Vec<u8>, value: &[u8]) {
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&value[start..i]);
        if short.is_empty() {
            let hex = [
                HEX_LOWER[usize::from(b >> 4)],
                HEX_LOWER[usize::from(b & 15)],
            ];
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&hex);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&value[start..]);
}

/// Percent-encodes every byte but the RFC 3986 unreserved characters.
fn push_url(out: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 15)],
            ]);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::Template;
    use super::*;

    /// Data sets `users(id)` and `skus(id, name)`; captures `cart_id` and `note`.
    pub(in crate::template) struct TestScope;

    impl Scope for TestScope {
        fn data_column(&self, set: &str, column: &str) -> Option<(usize, usize)> {
            match (set, column) {
                ("users", "id") => Some((0, 0)),
                ("skus", "id") => Some((1, 0)),
                ("skus", "name") => Some((1, 1)),
                _ => None,
            }
        }
        fn var(&self, name: &str) -> Option<usize> {
            ["cart_id", "note"].iter().position(|v| *v == name)
        }
    }

    pub(in crate::template) struct TestValues {
        pub data: Vec<Vec<String>>,
        pub vars: Vec<String>,
        pub seq: u64,
        pub random_calls: Vec<(i64, i64)>,
        pub bits: u128,
    }

    impl TestValues {
        pub fn new() -> TestValues {
            TestValues {
                data: vec![
                    vec!["u-7".into()],
                    vec!["sku-42".into(), "Phone \"Pro\"".into()],
                ],
                vars: vec!["cart-1".into(), "plain".into()],
                seq: 0,
                random_calls: Vec::new(),
                bits: 0,
            }
        }
    }

    impl Values for TestValues {
        fn data(&self, set: usize, column: usize) -> &str {
            &self.data[set][column]
        }
        fn var(&self, index: usize) -> &str {
            &self.vars[index]
        }
        fn user(&self) -> u64 {
            1234
        }
        fn client(&self) -> &str {
            "mobile app"
        }
        fn next_seq(&mut self) -> u64 {
            self.seq += 1;
            self.seq
        }
        fn random(&mut self, lo: i64, hi: i64) -> i64 {
            self.random_calls.push((lo, hi));
            lo
        }
        fn random_u128(&mut self) -> u128 {
            self.bits
        }
    }

    fn bind(src: &str) -> Bound {
        Template::compile(src).unwrap().bind(&TestScope).unwrap()
    }

    fn render_with(src: &str, values: &mut TestValues, escape: Escape) -> String {
        let mut out = Vec::new();
        bind(src).render(values, escape, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn render(src: &str, escape: Escape) -> String {
        render_with(src, &mut TestValues::new(), escape)
    }

    fn escaped(value: &str, escape: Escape) -> String {
        let mut out = Vec::new();
        push_escaped(&mut out, value.as_bytes(), escape);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_fill_the_expressions_between_literals() {
        assert_eq!(
            render(
                "/api/items/{{ skus.id }}?u={{users.id}}&cart={{ cart_id }}",
                Escape::None
            ),
            "/api/items/sku-42?u=u-7&cart=cart-1"
        );
        assert_eq!(
            render("{{ user() }}/{{ client() }}", Escape::None),
            "1234/mobile app"
        );
    }

    #[test]
    fn render_appends_to_the_buffer() {
        let mut out = b"GET ".to_vec();
        bind("/x/{{ seq() }}").render(&mut TestValues::new(), Escape::None, &mut out);
        assert_eq!(out, b"GET /x/1");
    }

    #[test]
    fn seq_counts_and_random_gets_its_bounds() {
        let mut values = TestValues::new();
        let bound = bind("{{ seq() }},{{ seq() }},{{ random(-50, -3) }}");
        let mut out = Vec::new();
        bound.render(&mut values, Escape::None, &mut out);
        out.push(b';');
        bound.render(&mut values, Escape::None, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "1,2,-50;3,4,-50");
        assert_eq!(values.random_calls, vec![(-50, -3), (-50, -3)]);
    }

    #[test]
    fn uuid_is_a_version_4_uuid() {
        let mut values = TestValues::new();
        values.bits = u128::MAX;
        assert_eq!(
            render_with("{{ uuid() }}", &mut values, Escape::Url),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        values.bits = 0;
        assert_eq!(
            render_with("{{ uuid() }}", &mut values, Escape::Json),
            "00000000-0000-4000-8000-000000000000"
        );
        values.bits = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;
        let text = render_with("{{uuid()}}", &mut values, Escape::None);
        let parsed = uuid::Uuid::parse_str(&text).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(text, "01234567-89ab-4def-8123-456789abcdef");
    }

    #[test]
    fn now_ms_is_wall_clock_milliseconds() {
        let before = now_ms();
        let rendered: u64 = render("{{ now_ms() }}", Escape::None).parse().unwrap();
        let after = now_ms();
        assert!(before <= rendered && rendered <= after);
        assert!(rendered > 1_600_000_000_000, "after September 2020");
    }

    #[test]
    fn json_escape_keeps_literals_and_escapes_values() {
        let mut values = TestValues::new();
        values.vars[1] = "say \"hi\" \\ ok\n".into();
        assert_eq!(
            render_with("{\"note\": \"{{ note }}\"}", &mut values, Escape::Json),
            "{\"note\": \"say \\\"hi\\\" \\\\ ok\\n\"}"
        );
    }

    #[test]
    fn json_escape_handles_control_chars_and_unicode() {
        let value = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}é💥\u{2028}";
        let out = escaped(value, Escape::Json);
        assert_eq!(
            out,
            "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}é💥\u{2028}"
        );
        let back: String = serde_json::from_str(&format!("\"{out}\"")).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn url_escape_keeps_only_unreserved_characters() {
        assert_eq!(
            escaped("a b&c=d/é~._-Z9\"\\%+?#", Escape::Url),
            "a%20b%26c%3Dd%2F%C3%A9~._-Z9%22%5C%25%2B%3F%23"
        );
        assert_eq!(
            render("/search?q={{ skus.name }}", Escape::Url),
            "/search?q=Phone%20%22Pro%22"
        );
    }

    #[test]
    fn no_escape_writes_values_as_they_are() {
        assert_eq!(escaped("a \"b\"\n/é", Escape::None), "a \"b\"\n/é");
    }

    #[test]
    fn env_is_read_at_bind_time_and_escaped_as_a_value() {
        // std serializes its own environment access; the name is unique to this test.
        std::env::set_var("FLASHCROWD_TEMPLATE_TEST_QUOTED", "to\"ken");
        let bound = bind("Bearer {{ env(\"FLASHCROWD_TEMPLATE_TEST_QUOTED\") }}");
        std::env::remove_var("FLASHCROWD_TEMPLATE_TEST_QUOTED");
        let mut out = Vec::new();
        bound.render(&mut TestValues::new(), Escape::Json, &mut out);
        assert_eq!(out, b"Bearer to\\\"ken");
        assert_eq!(bound.literal(), None);
    }

    #[test]
    fn bind_names_what_is_unknown() {
        let bind_err = |src: &str| {
            Template::compile(src)
                .unwrap()
                .bind(&TestScope)
                .unwrap_err()
        };
        assert_eq!(
            bind_err("{{ skus.idd }}"),
            "`skus.idd` is not a data column: no data set `skus` with a column `idd`"
        );
        assert_eq!(
            bind_err("{{ cart }}"),
            "`cart` is not a captured value: no earlier step captures it"
        );
        assert!(bind_err("{{ uuid }}").ends_with("did you mean the function `uuid()`?"));
        assert_eq!(
            bind_err("{{ env(FLASHCROWD_SURELY_UNSET_4711) }}"),
            "environment variable `FLASHCROWD_SURELY_UNSET_4711` (used by `env(FLASHCROWD_SURELY_UNSET_4711)`) is not set"
        );
    }

    #[test]
    fn a_template_without_expressions_is_a_literal() {
        assert_eq!(bind("/api/health").literal(), Some(&b"/api/health"[..]));
        assert_eq!(bind("").literal(), Some(&b""[..]));
        assert_eq!(bind("/x/{{ users.id }}").literal(), None);
    }
}
