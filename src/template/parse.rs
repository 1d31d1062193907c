//! The template parser: splits source text into literal parts and `{{ }}` expressions and checks
//! each expression (known function, argument count and types) with the byte offset of the
//! offending token. It never panics, whatever the input.

use super::{Expr, Part, Template, TemplateError};

/// The functions a template may call, with how each is written.
pub(super) const FUNCTIONS: &[(&str, &str)] = &[
    ("random", "random(a, b)"),
    ("uuid", "uuid()"),
    ("seq", "seq()"),
    ("now_ms", "now_ms()"),
    ("user", "user()"),
    ("client", "client()"),
    ("env", "env(NAME)"),
];

const EXPECTED_EXPR: &str =
    "a data column (`users.id`), a captured value (`cart_id`) or a function call (`random(1, 50)`)";

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn err(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

pub(super) fn compile(src: &str) -> Result<Template, TemplateError> {
    let mut parts = Vec::new();
    let mut pos = 0;
    while let Some(found) = src[pos..].find("{{") {
        let mut open = pos + found;
        // In a run of opening braces the last two open the expression.
        while src.as_bytes().get(open + 2) == Some(&b'{') {
            open += 1;
        }
        push_lit(&mut parts, &src[pos..open]);
        let (expr, end) = parse_expr(src, open)?;
        parts.push(Part::Expr(expr));
        pos = end;
    }
    push_lit(&mut parts, &src[pos..]);
    Ok(Template { parts })
}

fn push_lit(parts: &mut Vec<Part>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Part::Lit(prev)) = parts.last_mut() {
        prev.push_str(text);
    } else {
        parts.push(Part::Lit(text.to_string()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Word(&'a str),
    Quoted(&'a str),
    Dot,
    LParen,
    RParen,
    Comma,
    Close,
}

impl Tok<'_> {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Quoted(q) => format!("the quoted text \"{q}\""),
            Tok::Dot => "`.`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Close => "`}}`".into(),
        }
    }
}

/// Tokens of one expression, from just after `{{` up to and including `}}`.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// Where the `{{` of this expression starts, for the "unclosed" error.
    open: usize,
}

impl<'a> Lexer<'a> {
    fn unclosed(&self) -> TemplateError {
        err(
            self.open,
            "unclosed `{{`: expected `}}` to end the expression",
        )
    }

    fn next(&mut self) -> Result<(Tok<'a>, usize), TemplateError> {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        self.pos += rest.len() - trimmed.len();
        let start = self.pos;
        let Some(c) = trimmed.chars().next() else {
            return Err(self.unclosed());
        };
        let tok = match c {
            '}' if trimmed.starts_with("}}") => {
                self.pos += 2;
                return Ok((Tok::Close, start));
            }
            '}' => {
                return Err(err(
                    start,
                    "a single `}` inside an expression: close it with `}}`",
                ))
            }
            '.' => Tok::Dot,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '"' | '\'' => {
                let body = &trimmed[1..];
                let Some(len) = body.find(c) else {
                    return Err(err(
                        start,
                        format!("unclosed quote: expected a closing {c}"),
                    ));
                };
                self.pos += len + 2;
                return Ok((Tok::Quoted(&body[..len]), start));
            }
            c if is_word_char(c) => {
                let len = trimmed
                    .char_indices()
                    .find(|(_, c)| !is_word_char(*c))
                    .map(|(i, _)| i)
                    .unwrap_or(trimmed.len());
                self.pos += len;
                return Ok((Tok::Word(&trimmed[..len]), start));
            }
            other => {
                return Err(err(
                    start,
                    format!("unexpected `{other}` in an expression: expected {EXPECTED_EXPR}"),
                ))
            }
        };
        self.pos += 1;
        Ok((tok, start))
    }

    fn expect_close(&mut self, after: &str) -> Result<(), TemplateError> {
        match self.next()? {
            (Tok::Close, _) => Ok(()),
            (tok, at) => Err(err(
                at,
                format!("expected `}}}}` after `{after}`, got {}", tok.describe()),
            )),
        }
    }
}

fn starts_like_name(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Parses the expression whose `{{` starts at `open`; returns it and the offset after its `}}`.
fn parse_expr(src: &str, open: usize) -> Result<(Expr, usize), TemplateError> {
    let mut lx = Lexer {
        src,
        pos: open + 2,
        open,
    };
    if !src[lx.pos..].contains("}}") {
        return Err(lx.unclosed());
    }
    let (first, at) = lx.next()?;
    let word = match first {
        Tok::Word(w) => w,
        Tok::Close => {
            return Err(err(
                open,
                format!("empty `{{{{ }}}}`: expected {EXPECTED_EXPR}"),
            ))
        }
        other => {
            return Err(err(
                at,
                format!("expected {EXPECTED_EXPR}, got {}", other.describe()),
            ))
        }
    };
    if !starts_like_name(word) {
        return Err(err(
            at,
            format!("`{word}` is not a name: expected {EXPECTED_EXPR}"),
        ));
    }
    let expr = match lx.next()? {
        (Tok::Close, _) => Expr::Var(word.to_string()),
        (Tok::Dot, dot) => match lx.next()? {
            (Tok::Word(column), _) => {
                lx.expect_close(&format!("{word}.{column}"))?;
                Expr::Data {
                    set: word.to_string(),
                    column: column.to_string(),
                }
            }
            (tok, at) => {
                return Err(err(
                    if tok == Tok::Close { dot } else { at },
                    format!(
                        "expected a column name after `{word}.`, got {}",
                        tok.describe()
                    ),
                ))
            }
        },
        (Tok::LParen, _) => {
            let expr = parse_call(&mut lx, word, at)?;
            lx.expect_close(&format!("{expr}"))?;
            expr
        }
        (tok, next_at) => {
            return Err(err(
                next_at,
                format!(
                    "expected `}}}}`, `.column` or `(` after `{word}`, got {}",
                    tok.describe()
                ),
            ))
        }
    };
    Ok((expr, lx.pos))
}

struct Arg<'a> {
    text: &'a str,
    quoted: bool,
    offset: usize,
}

/// Parses a call's arguments (after its `(`) and checks them against the function.
fn parse_call(lx: &mut Lexer<'_>, name: &str, name_at: usize) -> Result<Expr, TemplateError> {
    let Some(&(_, usage)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
        let mut message = format!("`{name}` is not a function");
        match closest(name, FUNCTIONS.iter().map(|(f, _)| *f)) {
            Some(f) => message += &format!(": did you mean `{f}`?"),
            None => {
                let all: Vec<&str> = FUNCTIONS.iter().map(|(_, u)| *u).collect();
                message += &format!(": expected one of {}", all.join(", "));
            }
        }
        return Err(err(name_at, message));
    };
    let mut args = Vec::new();
    loop {
        let (tok, at) = lx.next()?;
        match tok {
            Tok::RParen if args.is_empty() => break,
            Tok::Word(text) => args.push(Arg {
                text,
                quoted: false,
                offset: at,
            }),
            Tok::Quoted(text) => args.push(Arg {
                text,
                quoted: true,
                offset: at,
            }),
            other => {
                return Err(err(
                    at,
                    format!(
                        "expected an argument of `{usage}`, got {}",
                        other.describe()
                    ),
                ))
            }
        }
        match lx.next()? {
            (Tok::Comma, _) => {}
            (Tok::RParen, _) => break,
            (other, at) => {
                return Err(err(
                    at,
                    format!("expected `,` or `)` in `{usage}`, got {}", other.describe()),
                ))
            }
        }
    }
    let want = usage.matches(',').count() + usize::from(!usage.ends_with("()"));
    if args.len() != want {
        let at = args.get(want).map_or(name_at, |a| a.offset);
        let takes = match want {
            0 => "no arguments".to_string(),
            1 => "one argument".to_string(),
            n => format!("{n} arguments"),
        };
        return Err(err(
            at,
            format!("`{usage}` takes {takes}, got {}", args.len()),
        ));
    }
    Ok(match name {
        "random" => {
            let lo = integer(&args[0])?;
            let hi = integer(&args[1])?;
            if lo > hi {
                return Err(err(
                    args[0].offset,
                    format!("`random({lo}, {hi})`: the lower bound must not exceed the upper bound; did you mean `random({hi}, {lo})`?"),
                ));
            }
            Expr::Random(lo, hi)
        }
        "env" => {
            let arg = &args[0];
            if arg.text.is_empty() || arg.text.contains(['=', '\0']) {
                return Err(err(
                    arg.offset,
                    format!(
                        "`{}` is not an environment variable name: expected a name like `API_TOKEN`",
                        arg.text
                    ),
                ));
            }
            Expr::Env(arg.text.to_string())
        }
        "uuid" => Expr::Uuid,
        "seq" => Expr::Seq,
        "now_ms" => Expr::NowMs,
        "user" => Expr::User,
        _ => Expr::Client,
    })
}

fn integer(arg: &Arg<'_>) -> Result<i64, TemplateError> {
    let parsed = if arg.quoted {
        None
    } else {
        arg.text.parse::<i64>().ok()
    };
    parsed.ok_or_else(|| {
        err(
            arg.offset,
            format!(
                "`random(a, b)` takes whole numbers (negative allowed), got {}",
                if arg.quoted {
                    format!("the quoted text \"{}\"", arg.text)
                } else {
                    format!("`{}`", arg.text)
                }
            ),
        )
    })
}

/// The candidate closest to a misspelt `word`, when one is close enough to suggest.
pub(super) fn closest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = word.to_lowercase();
    candidates
        .filter_map(|c| {
            let d = strsim::damerau_levenshtein(&lower, c);
            let prefix = lower.len() >= 3 && (c.starts_with(&lower) || lower.starts_with(c));
            (d <= (c.len() / 3).max(1) || prefix).then_some((d, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::super::{Expr, Part, Template, TemplateError};

    fn parts(src: &str) -> Vec<Part> {
        Template::compile(src).unwrap().parts
    }

    fn lit(s: &str) -> Part {
        Part::Lit(s.to_string())
    }

    fn expr(src: &str) -> Expr {
        match parts(src).as_slice() {
            [Part::Expr(e)] => e.clone(),
            other => panic!("expected one expression, got {other:?}"),
        }
    }

    fn error(src: &str) -> TemplateError {
        Template::compile(src).unwrap_err()
    }

    #[test]
    fn plain_text_is_one_literal() {
        let t = Template::compile("/api/items").unwrap();
        assert_eq!(t.parts, vec![lit("/api/items")]);
        assert_eq!(t.literal(), Some("/api/items"));
        assert_eq!(Template::compile("").unwrap().parts, vec![]);
        assert_eq!(Template::compile("").unwrap().literal(), Some(""));
    }

    #[test]
    fn lone_braces_in_text_are_text() {
        assert_eq!(parts("a } b }} c { d"), vec![lit("a } b }} c { d")]);
        assert_eq!(parts("{\"a\": 1}"), vec![lit("{\"a\": 1}")]);
    }

    #[test]
    fn data_columns_and_captures_between_literals() {
        let data = Expr::Data {
            set: "skus".into(),
            column: "id".into(),
        };
        assert_eq!(
            parts("/api/items/{{ skus.id }}?cart={{cart_id}}"),
            vec![
                lit("/api/items/"),
                Part::Expr(data.clone()),
                lit("?cart="),
                Part::Expr(Expr::Var("cart_id".into())),
            ]
        );
        let t = Template::compile("{{skus.id}}{{ cart_id }}").unwrap();
        assert_eq!(t.exprs().count(), 2);
        assert_eq!(t.literal(), None);
    }

    #[test]
    fn names_may_hold_digits_underscores_dashes_and_unicode() {
        assert_eq!(
            expr("{{ user-data_2.e-mail_1 }}"),
            Expr::Data {
                set: "user-data_2".into(),
                column: "e-mail_1".into()
            }
        );
        assert_eq!(
            expr("{{ 订单.编号 }}"),
            Expr::Data {
                set: "订单".into(),
                column: "编号".into()
            }
        );
        assert_eq!(expr("{{ _x }}"), Expr::Var("_x".into()));
        assert_eq!(
            expr("{{ skus.2nd }}"),
            Expr::Data {
                set: "skus".into(),
                column: "2nd".into()
            }
        );
    }

    #[test]
    fn every_function_parses() {
        assert_eq!(expr("{{ random(1, 50) }}"), Expr::Random(1, 50));
        assert_eq!(expr("{{random(-5,-5)}}"), Expr::Random(-5, -5));
        assert_eq!(expr("{{ random( -10 , 10 ) }}"), Expr::Random(-10, 10));
        assert_eq!(expr("{{ uuid() }}"), Expr::Uuid);
        assert_eq!(expr("{{ seq( ) }}"), Expr::Seq);
        assert_eq!(expr("{{ now_ms() }}"), Expr::NowMs);
        assert_eq!(expr("{{ user() }}"), Expr::User);
        assert_eq!(expr("{{ client() }}"), Expr::Client);
        assert_eq!(expr("{{ env(API_TOKEN) }}"), Expr::Env("API_TOKEN".into()));
        assert_eq!(
            expr("{{ env(\"API TOKEN\") }}"),
            Expr::Env("API TOKEN".into())
        );
        assert_eq!(expr("{{ env('A}}B') }}"), Expr::Env("A}}B".into()));
    }

    #[test]
    fn expressions_display_in_canonical_form() {
        for src in [
            "users.id",
            "cart_id",
            "random(-1, 5)",
            "uuid()",
            "seq()",
            "now_ms()",
            "user()",
            "client()",
            "env(TOKEN)",
        ] {
            assert_eq!(expr(&format!("{{{{{src}}}}}")).to_string(), src);
        }
        assert_eq!(Expr::Env("A B".into()).to_string(), "env(\"A B\")");
    }

    #[test]
    fn extra_opening_braces_are_literal() {
        assert_eq!(
            parts("{{{ x }}}"),
            vec![lit("{"), Part::Expr(Expr::Var("x".into())), lit("}")]
        );
    }

    #[test]
    fn unclosed_braces_point_at_the_opening() {
        let e = error("/a/{{ users.id");
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("unclosed `{{`"), "{}", e.message);
        assert_eq!(error("ok {{ a }} then {{").offset, 16);
        // `}}` only inside a quoted argument does not close the expression.
        assert_eq!(error("{{ env('}}') ").offset, 0);
    }

    #[test]
    fn empty_expression_is_an_error_at_its_opening() {
        let e = error("x{{ }}");
        assert_eq!(e.offset, 1);
        assert!(e.message.contains("empty"), "{}", e.message);
        assert_eq!(error("{{}}").offset, 0);
    }

    #[test]
    fn unknown_function_suggests_the_closest() {
        let e = error("id={{ uuid4() }}");
        assert_eq!(e.offset, 6);
        assert_eq!(e.message, "`uuid4` is not a function: did you mean `uuid`?");
        assert!(error("{{ randon(1, 2) }}")
            .message
            .contains("did you mean `random`?"));
        assert!(error("{{ now() }}")
            .message
            .contains("did you mean `now_ms`?"));
        let e = error("{{ frobnicate() }}");
        assert!(
            e.message.contains("expected one of random(a, b), uuid()"),
            "{}",
            e.message
        );
    }

    #[test]
    fn wrong_argument_counts_are_errors() {
        let e = error("{{ random(1) }}");
        assert_eq!(e.offset, 3);
        assert_eq!(e.message, "`random(a, b)` takes 2 arguments, got 1");
        let e = error("{{ random(1, 2, 3) }}");
        assert_eq!(e.offset, 16, "points at the extra argument");
        let e = error("{{ uuid(1) }}");
        assert_eq!(e.offset, 8);
        assert_eq!(e.message, "`uuid()` takes no arguments, got 1");
        assert_eq!(
            error("{{ env() }}").message,
            "`env(NAME)` takes one argument, got 0"
        );
    }

    #[test]
    fn wrong_argument_types_are_errors_at_the_argument() {
        let e = error("{{ random(1, ten) }}");
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("whole numbers"), "{}", e.message);
        assert_eq!(error("{{ random(\"1\", 2) }}").offset, 10);
        assert_eq!(error("{{ random(1, 99999999999999999999) }}").offset, 13);
        assert_eq!(error("{{ env(\"A=B\") }}").offset, 7);
        assert_eq!(error("{{ env('') }}").offset, 7);
    }

    #[test]
    fn reversed_random_bounds_are_an_error() {
        let e = error("{{ random(5, 1) }}");
        assert_eq!(e.offset, 10);
        assert!(
            e.message.contains("did you mean `random(1, 5)`?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn malformed_expressions_point_at_the_bad_token() {
        let e = error("{{ a b }}");
        assert_eq!(e.offset, 5);
        assert_eq!(
            e.message,
            "expected `}}`, `.column` or `(` after `a`, got `b`"
        );
        assert_eq!(error("{{ a. }}").offset, 4);
        assert_eq!(error("{{ a.b.c }}").offset, 6);
        assert_eq!(error("{{ a + b }}").offset, 5);
        assert_eq!(error("{{ a } }}").offset, 5);
        assert_eq!(error("{{ 5 }}").offset, 3);
        assert_eq!(error("{{ -x }}").offset, 3);
        assert_eq!(error("{{ (a) }}").offset, 3);
        assert_eq!(error("{{ random(1, 2,) }}").offset, 15);
        assert_eq!(error("{{ random(1 2) }}").offset, 12);
        assert_eq!(error("{{ uuid() x }}").offset, 10);
        assert_eq!(error("{{ env(\"A) }}").offset, 7);
    }

    #[test]
    fn random_token_soup_never_panics() {
        let alphabet = [
            "{{", "}}", "{", "}", "(", ")", ",", ".", "\"", "'", " ", "random", "env", "uuid", "a",
            "-1", "5", "é", "💥", "\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let mut src = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                src.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = Template::compile(&src);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "{{",
            "{{{",
            "}}{{",
            "{{\"",
            "{{'",
            "{{ random(",
            "{{ random(1,",
            "{{ a.",
            "{{ é",
            "{{ 💥 }}",
            "{{ env(💥) }}",
            "\u{0}{{\u{0}}}",
            "{{ a.💥 }}",
            "{{(((((",
            "{{ random(-, 1) }}",
        ];
        for src in inputs {
            let _ = Template::compile(src);
        }
        // Every prefix of a valid template, cut at a char boundary.
        let src = "x{{ random(-1, 2) }}é{{ env('Ä') }}{{ a.b }}";
        for (i, _) in src.char_indices() {
            let _ = Template::compile(&src[..i]);
        }
    }
}
