//! Templates: strings with `{{ expr }}` parts, compiled once at load time.
//!
//! API CONTRACT (validation and the engine code against these; keep them):
//! `Template::compile(&str) -> Result<Template, TemplateError>`, `template.parts`,
//! `template.exprs()`, `template.literal()`.

/// A compiled template: literal text and expressions in order.
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
    /// `env(NAME)`: an environment variable, read once at load time.
    Env(String),
}

/// A template error at byte `offset` of the template source.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    pub fn compile(_src: &str) -> Result<Template, TemplateError> {
        unimplemented!()
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
