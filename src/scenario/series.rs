//! The `monitor.series` expression language, parsed when a scenario is validated and evaluated
//! on each scrape by the live monitor (`ops::monitor`) (which owns the scraping; this owns the syntax).
//!
//! A series is an expression of terms joined by space-separated `+ - * /`, left to right:
//! - `METRIC` or `METRIC{label="v", other!="w"}` — a gauge: the sum of the matching samples;
//! - `rate(METRIC{...})` — a counter's per-second increase between two scrapes (summed);
//! - `busy(METRIC{...})` — CPU busy %: 100 × (1 − Δidle / Δall) between two scrapes, where the
//!   samples with `mode="idle"` are idle (for `node_cpu_seconds_total`);
//! - a number.

#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub label: String,
    pub value: String,
    pub negate: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Gauge(Selector),
    Rate(Selector),
    Busy(Selector),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExpr {
    pub first: Term,
    pub rest: Vec<(char, Term)>,
}

pub(crate) fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn parse_selector(s: &str) -> Result<Selector, String> {
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    if name.is_empty()
        || !name
            .chars()
            .enumerate()
            .all(|(i, c)| is_name_char(c, i == 0))
    {
        return Err(format!(
            "`{name}` is not a metric name (letters, digits, `_` and `:`)"
        ));
    }
    let mut matchers = Vec::new();
    if let Some(rest) = rest {
        let inner = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| format!("`{rest}`: label matchers go in one pair of braces"))?;
        for part in split_labels(inner) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (label, negate, raw) = if let Some((l, v)) = part.split_once("!=") {
                (l, true, v)
            } else if let Some((l, v)) = part.split_once('=') {
                (l, false, v)
            } else {
                return Err(format!(
                    "`{part}`: a label matcher is label=\"value\" or label!=\"value\""
                ));
            };
            let v = raw.trim();
            let value = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| format!("`{part}`: quote the value: {}=\"…\"", l_trim(label)))?;
            matchers.push(Matcher {
                label: label.trim().to_string(),
                value: value.to_string(),
                negate,
            });
        }
    }
    Ok(Selector {
        name: name.to_string(),
        matchers,
    })
}

fn l_trim(s: &str) -> &str {
    s.trim()
}

/// Splits `a="x,y", b="z"` at the commas outside quotes.
fn split_labels(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_term(s: &str) -> Result<Term, String> {
    if let Ok(n) = s.parse::<f64>() {
        return Ok(Term::Number(n));
    }
    for (f, make) in [
        ("rate(", Term::Rate as fn(Selector) -> Term),
        ("busy(", Term::Busy),
    ] {
        if let Some(inner) = s.strip_prefix(f) {
            let inner = inner
                .strip_suffix(')')
                .ok_or_else(|| format!("`{s}`: missing `)`"))?;
            return Ok(make(parse_selector(inner)?));
        }
    }
    if let Some((f, _)) = s.split_once('(') {
        return Err(format!(
            "`{f}(…)` is not a function here: use rate(…) or busy(…)"
        ));
    }
    Ok(Term::Gauge(parse_selector(s)?))
}

/// Parses a series expression (see the module's documentation).
pub fn parse_series(src: &str) -> Result<SeriesExpr, String> {
    // Split at operators that stand alone between spaces (label values may hold anything).
    let mut terms: Vec<String> = Vec::new();
    let mut ops: Vec<char> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let words: Vec<&str> = src.split(' ').collect();
    for w in words {
        let q = w.matches('"').count() % 2 == 1;
        if !quoted && matches!(w, "+" | "-" | "*" | "/") {
            if cur.trim().is_empty() {
                return Err(format!("`{src}`: `{w}` needs a term before it"));
            }
            terms.push(std::mem::take(&mut cur));
            ops.push(w.chars().next().unwrap_or('+'));
            continue;
        }
        if q {
            quoted = !quoted;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if cur.trim().is_empty() {
        return Err(format!(
            "`{src}`: expected a metric, rate(…), busy(…) or a number"
        ));
    }
    terms.push(cur);
    let mut it = terms.iter().map(|t| parse_term(t.trim()));
    let first = it.next().unwrap_or_else(|| Err("empty".into()))?;
    let mut rest = Vec::new();
    for (op, t) in ops.into_iter().zip(it) {
        rest.push((op, t?));
    }
    Ok(SeriesExpr { first, rest })
}
