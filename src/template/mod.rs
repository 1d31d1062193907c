//! Templates: strings with `{{ expr }}` parts, compiled once when a scenario loads, bound to
//! data-set and capture indices once when the engine compiles the scenario, and rendered into a
//! reused buffer on the hot path.
//!
//! This module owns the template syntax, its errors, name binding, value escaping (JSON string,
//! URL component) and templated JSON bodies. It does not own where values come from: data rows,
//! captures, counters and random numbers are supplied by the engine through [`Values`], and which
//! names exist is answered by the engine through [`Scope`].
//!
//! API CONTRACT (validation and the engine code against these; keep them):
//! `Template::compile(&str) -> Result<Template, TemplateError>`, `template.parts`,
//! `template.exprs()`, `template.literal()`, `Template::bind`, `Bound::render`,
//! `Bound::literal`, `JsonBody::{compile, templates, bind}`, `BoundJson::render`.

mod json;
mod parse;
mod render;

pub use json::{BoundJson, JsonBody};
pub use render::{Bound, Escape, Scope, Values};

use std::fmt;

/// A compiled template: literal text and expressions in order. Adjacent literals are merged and
/// empty literals are left out, so a template without expressions has at most one part.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    Expr(Expr),
}

/// What may stand inside `{{ }}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `users.id`: a column of a data set.
    Data { set: String, column: String },
    /// `cart_id`: a value captured by an earlier step.
    Var(String),
    /// `random(1, 50)`: a uniform integer in [a, b].
    Random(i64, i64),
    /// `uuid()`
    Uuid,
    /// `seq()`: a counter, unique per segment-run.
    Seq,
    /// `now_ms()`: wall-clock milliseconds since the Unix epoch.
    NowMs,
    /// `user()`: the session's global index.
    User,
    /// `client()`: the session's client name.
    Client,
    /// `env(NAME)`: an environment variable, read once at bind time.
    Env(String),
}

/// A template error at byte `offset` of the template source.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses literal text with `{{ expr }}` parts. A lone `{` or `}}` in literal text is text;
    /// in a run of opening braces the last two open the expression (`{{{x}}}` is `{`, `x`, `}`).
    pub fn compile(src: &str) -> Result<Template, TemplateError> {
        parse::compile(src)
    }

    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Lit(_) => None,
        })
    }

    /// The text, when the template has no expressions.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Expr {
    /// The canonical source form, as it would be written inside `{{ }}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Data { set, column } => write!(f, "{set}.{column}"),
            Expr::Var(name) => f.write_str(name),
            Expr::Random(a, b) => write!(f, "random({a}, {b})"),
            Expr::Uuid => f.write_str("uuid()"),
            Expr::Seq => f.write_str("seq()"),
            Expr::NowMs => f.write_str("now_ms()"),
            Expr::User => f.write_str("user()"),
            Expr::Client => f.write_str("client()"),
            Expr::Env(name) if !name.is_empty() && name.chars().all(parse::is_word_char) => {
                write!(f, "env({name})")
            }
            Expr::Env(name) if name.contains('"') => write!(f, "env('{name}')"),
            Expr::Env(name) => write!(f, "env(\"{name}\")"),
        }
    }
}
