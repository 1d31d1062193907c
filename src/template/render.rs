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

    /// The bytes, when the template has no expressions (it never needs rendering).
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
