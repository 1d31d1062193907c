//! The expression parser. Tokens are whitespace-separated words, with runs of `<>=!` split out
//! as operator tokens so that `p99<300ms` reads like `p99 < 300ms`. The metric is the last
//! metric keyword followed by an operator; everything before it is the selector, so request names
//! may hold spaces and slashes. Never panics, whatever the input.

use super::{ExprError, Metric, MetricUnit, Op, Selector, Threshold};
use crate::scenario::units::{parse_duration, parse_rate, parse_share};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Threshold,
    Abort,
    StopWhen,
    /// `compare --fail-on`: a threshold whose value is a change (`+10%`, `+0.1pp`).
    Change,
}

impl Kind {
    fn example(self) -> &'static str {
        match self {
            Kind::Threshold => "`p99 < 300ms` or `create-order errors < 1% during peak`",
            Kind::Abort => "`errors > 30% for 10s`",
            Kind::StopWhen => "`p99 > 500ms`",
            Kind::Change => "`p99 > +10%` or `create-order errors > +0.1pp during peak`",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Threshold => "a threshold",
            Kind::Abort => "an abort rule",
            Kind::StopWhen => "a stop_when condition",
            Kind::Change => "a --fail-on change",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    at: usize,
    /// A run of `<`, `>`, `=`, `!`.
    op: bool,
    /// An operator run with whitespace (or the ends of the input) on both sides.
    spaced: bool,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '!')
}

fn tokenize(src: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    for (word_at, word) in split_whitespace_indices(src) {
        let mut start = 0;
        let mut chars = word.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let op = is_op_char(c);
            let next_differs = chars.peek().is_none_or(|&(_, n)| is_op_char(n) != op);
            if next_differs {
                let end = i + c.len_utf8();
                tokens.push(Token {
                    text: &word[start..end],
                    at: word_at + start,
                    op,
                    spaced: op && start == 0 && end == word.len(),
                });
                start = end;
            }
        }
    }
    tokens
}

fn split_whitespace_indices(src: &str) -> impl Iterator<Item = (usize, &str)> {
    src.split(char::is_whitespace)
        .scan(0usize, |pos, word| {
            let at = *pos;
            // The separator is one whitespace char; find its length to step over it.
            let sep = src[at + word.len()..]
                .chars()
                .next()
                .map_or(0, char::len_utf8);
            *pos = at + word.len() + sep;
            Some((at, word))
        })
        .filter(|(_, w)| !w.is_empty())
}

fn err(at: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        offset: at,
        message: message.into(),
        partial: None,
    }
}

fn metric_list() -> String {
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    names.join(", ")
}

const OPERATORS: &str = "an operator (<, <=, >, >=)";

pub(super) fn parse(src: &str, kind: Kind) -> Result<(Threshold, Duration), ExprError> {
    let toks = tokenize(src);
    if toks.is_empty() {
        return Err(err(
            0,
            format!(
                "expected {}, like {}, got nothing",
                kind.what(),
                kind.example()
            ),
        ));
    }
    if let Some(name) = toks[0].text.strip_prefix("monitor:") {
        return parse_monitor(src, &toks, name, kind);
    }
    if let Some(name) = toks[0].text.strip_prefix("action:") {
        return parse_action(src, &toks, name, kind);
    }
    let found = (0..toks.len()).rev().find(|&i| {
        !toks[i].op
            && Metric::from_name(toks[i].text).is_some()
            && toks.get(i + 1).is_some_and(|t| t.op)
    });
    let Some(mi) = found else {
        return Err(no_metric(src, &toks, kind));
    };
    let metric_tok = toks[mi];
    let metric = Metric::from_name(metric_tok.text).unwrap_or(Metric::P99);
    let op = parse_op(toks[mi + 1])?;
    let selector = parse_selector(src, &toks[..mi], metric_tok)?;

    let Some(&value_tok) = toks.get(mi + 2) else {
        return Err(err(
            src.len(),
            format!(
                "expected a value after `{}`, like {}",
                toks[mi + 1].text,
                value_example(metric)
            ),
        ));
    };
    // A wrong value does not hide the rest: the expression is read on, and the error carries
    // what was read so that its names are checked too.
    let value_result = if kind == Kind::Change {
        parse_change(metric, value_tok)
    } else {
        parse_value(metric, value_tok)
    };
    let value = *value_result.as_ref().unwrap_or(&f64::NAN);

    let mut phase = None;
    let mut for_ = Duration::ZERO;
    let mut rest = toks[mi + 3..].iter();
    if let Some(&word) = rest.next() {
        let allowed = match kind {
            Kind::Threshold | Kind::Change => "`during PHASE` or the end",
            Kind::Abort => "`for DURATION` or the end",
            Kind::StopWhen => "the end",
        };
        match (kind, word.text) {
            (Kind::Threshold | Kind::Change, "during") => {
                let name = operand(rest.next(), src, word, "a phase name, like `peak`")?;
                phase = Some(name.text.to_string());
            }
            (Kind::Abort, "for") => {
                let tok = operand(rest.next(), src, word, "a duration, like `10s`")?;
                for_ = parse_duration(tok.text).map_err(|e| {
                    err(tok.at, format!("after `for`: {e}"))
                })?;
            }
            (Kind::Threshold | Kind::Change, "for") => {
                return Err(err(
                    word.at,
                    "a threshold takes `during PHASE`, not `for`: `for DURATION` belongs to abort rules",
                ))
            }
            (Kind::Abort, "during") => {
                return Err(err(
                    word.at,
                    "an abort rule takes `for DURATION`, not `during`: `during PHASE` belongs to thresholds",
                ))
            }
            (Kind::StopWhen, "during" | "for") => {
                return Err(err(
                    word.at,
                    format!("a stop_when condition ends after its value; `{}` is not allowed here", word.text),
                ))
            }
            _ => {
                let mut message = format!(
                    "expected {allowed} after `{}`, got `{}`",
                    value_tok.text, word.text
                );
                if kind != Kind::StopWhen {
                    if let Some(k) = closest(word.text, ["during", "for"].into_iter()) {
                        message += &format!(": did you mean `{k}`?");
                    }
                }
                return Err(err(word.at, message));
            }
        }
        if let Some(extra) = rest.next() {
            return Err(err(
                extra.at,
                format!(
                    "expected the end of {} after `{}`, got `{}`",
                    kind.what(),
                    src[word.at..extra.at].trim_end(),
                    extra.text
                ),
            ));
        }
    }
    let threshold = Threshold {
        source: src.trim().to_string(),
        selector,
        metric,
        op,
        value,
        phase,
        scaled: None,
    };
    if let Err(mut e) = value_result {
        e.partial = Some(Box::new(threshold));
        return Err(e);
    }
    Ok((threshold, for_))
}

/// `monitor:NAME OP VALUE [for DURATION]`: a monitor series against a plain number (`90%` is
/// 90, as a CPU busy percentage reads). Abort and stop_when rules only: thresholds are judged
/// at the end, on the load generator's own measurements.
fn parse_monitor(
    src: &str,
    toks: &[Token<'_>],
    name: &str,
    kind: Kind,
) -> Result<(Threshold, Duration), ExprError> {
    let first = toks[0];
    if matches!(kind, Kind::Threshold | Kind::Change) {
        return Err(err(
            first.at,
            "monitor series belong in abort and stop_when rules, not thresholds",
        ));
    }
    if name.is_empty() {
        return Err(err(
            first.at + "monitor:".len(),
            "expected a monitor series name after `monitor:`, like `monitor:cpu`",
        ));
    }
    let Some(&op_tok) = toks.get(1) else {
        return Err(err(
            src.len(),
            format!("expected {OPERATORS} after `{}`", first.text),
        ));
    };
    let op = parse_op(op_tok)?;
    let Some(&value_tok) = toks.get(2) else {
        return Err(err(
            src.len(),
            format!(
                "expected a value after `{}`, like `90%` or `8`",
                op_tok.text
            ),
        ));
    };
    let text = value_tok.text.strip_suffix('%').unwrap_or(value_tok.text);
    let value: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            err(
                value_tok.at,
                format!(
                    "a monitor series takes a number, like `90%` or `8`, got `{}`",
                    value_tok.text
                ),
            )
        })?;
    let mut for_ = Duration::ZERO;
    let mut rest = toks[3..].iter();
    if let Some(&word) = rest.next() {
        match (kind, word.text) {
            (Kind::Abort, "for") => {
                let tok = operand(rest.next(), src, word, "a duration, like `10s`")?;
                for_ = parse_duration(tok.text)
                    .map_err(|e| err(tok.at, format!("after `for`: {e}")))?;
            }
            _ => {
                return Err(err(
                    word.at,
                    format!(
                        "expected {} after `{}`, got `{}`",
                        if kind == Kind::Abort {
                            "`for DURATION` or the end"
                        } else {
                            "the end"
                        },
                        value_tok.text,
                        word.text
                    ),
                ))
            }
        }
        if let Some(extra) = rest.next() {
            return Err(err(
                extra.at,
                format!("expected the end of {} , got `{}`", kind.what(), extra.text),
            ));
        }
    }
    Ok((
        Threshold {
            source: src.trim().to_string(),
            selector: Selector::Monitor(name.to_string()),
            metric: Metric::Monitor,
            op,
            value,
            phase: None,
            scaled: None,
        },
        for_,
    ))
}

/// `action:NAME recovery OP DURATION`: how long the target took to recover after a scheduled
/// action. Thresholds only (it is known at the end of the run).
fn parse_action(
    src: &str,
    toks: &[Token<'_>],
    name: &str,
    kind: Kind,
) -> Result<(Threshold, Duration), ExprError> {
    let first = toks[0];
    let example = "`action:db-failover recovery < 30s`";
    if kind != Kind::Threshold {
        return Err(err(
            first.at,
            format!("an action's recovery is judged at the end: write it as a threshold, like {example}"),
        ));
    }
    if name.is_empty() {
        return Err(err(
            first.at + "action:".len(),
            format!("expected an action name after `action:`, like {example}"),
        ));
    }
    match toks.get(1) {
        Some(t) if t.text == "recovery" => {}
        Some(t) => {
            return Err(err(
                t.at,
                format!("expected `recovery` after `{}`, like {example}", first.text),
            ))
        }
        None => {
            return Err(err(
                src.len(),
                format!("expected `recovery` after `{}`, like {example}", first.text),
            ))
        }
    }
    let Some(&op_tok) = toks.get(2) else {
        return Err(err(
            src.len(),
            format!("expected {OPERATORS} after `recovery`"),
        ));
    };
    let op = parse_op(op_tok)?;
    let value_tok = operand(toks.get(3), src, op_tok, "a duration, like `30s`")?;
    let d = parse_duration(value_tok.text)
        .map_err(|e| err(value_tok.at, format!("after `{}`: {e}", op_tok.text)))?;
    if let Some(extra) = toks.get(4) {
        return Err(err(
            extra.at,
            format!("expected the end of the threshold, got `{}`", extra.text),
        ));
    }
    Ok((
        Threshold {
            source: src.trim().to_string(),
            selector: Selector::Action(name.to_string()),
            metric: Metric::Recovery,
            op,
            value: d.as_secs_f64() * 1000.0,
            phase: None,
            scaled: None,
        },
        Duration::ZERO,
    ))
}

/// The word after `during` or `for`, which must exist and not be an operator.
fn operand<'a>(
    tok: Option<&Token<'a>>,
    src: &str,
    keyword: Token<'_>,
    expected: &str,
) -> Result<Token<'a>, ExprError> {
    match tok {
        Some(t) if !t.op => Ok(*t),
        Some(t) => Err(err(
            t.at,
            format!(
                "expected {expected} after `{}`, got `{}`",
                keyword.text, t.text
            ),
        )),
        None => Err(err(
            src.len(),
            format!("expected {expected} after `{}`", keyword.text),
        )),
    }
}

fn parse_op(tok: Token<'_>) -> Result<Op, ExprError> {
    Ok(match tok.text {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        other => {
            let hint = match other {
                "=<" => ": did you mean `<=`?".to_string(),
                "=>" => ": did you mean `>=`?".to_string(),
                "=" | "==" | "!=" => ": a limit is a bound, so compare with < or >".to_string(),
                _ => String::new(),
            };
            return Err(err(
                tok.at,
                format!("`{other}` is not an operator: expected {OPERATORS}{hint}"),
            ));
        }
    })
}

fn parse_selector(src: &str, toks: &[Token<'_>], metric: Token<'_>) -> Result<Selector, ExprError> {
    let Some(first) = toks.first() else {
        return Ok(Selector::All);
    };
    if let Some(op) = toks.iter().find(|t| t.spaced && parse_op(**t).is_ok()) {
        return Err(err(
            op.at,
            format!(
                "`{}` before the metric `{}`: write one condition per expression",
                op.text, metric.text
            ),
        ));
    }
    let text = src[first.at..metric.at].trim_end();
    for (prefix, make) in [
        ("journey:", Selector::Journey as fn(String) -> Selector),
        ("client:", Selector::Client),
    ] {
        if let Some(name) = text.strip_prefix(prefix) {
            let name = name.trim();
            if name.is_empty() {
                return Err(err(
                    first.at + prefix.len(),
                    format!(
                        "expected a {} name after `{prefix}`",
                        prefix.trim_end_matches(':')
                    ),
                ));
            }
            return Ok(make(name.to_string()));
        }
    }
    if let Some((kind, _)) = text.split_once(':') {
        if !kind.is_empty() && kind.chars().all(char::is_alphabetic) {
            if let Some(k) = closest(kind, ["journey", "client"].into_iter()) {
                return Err(err(
                    first.at,
                    format!("`{kind}:` is not a selector: did you mean `{k}:`?"),
                ));
            }
        }
    }
    Ok(Selector::Request(text.to_string()))
}

fn value_example(metric: Metric) -> &'static str {
    match metric.unit() {
        MetricUnit::Millis => "`300ms` or `1.5s`",
        MetricUnit::Fraction => "`0.5%`",
        MetricUnit::PerSecond => "`2000/s` or `60/min`",
        MetricUnit::Count => "`1000`",
        MetricUnit::Plain => "`90%` or `8`",
    }
}

/// The metrics `compare` judges, and so the ones a change may name.
pub(super) const CHANGE_METRICS: [Metric; 6] = [
    Metric::P50,
    Metric::P90,
    Metric::P99,
    Metric::Max,
    Metric::Rate,
    Metric::Errors,
];

/// A change: `+10%` (relative, latency and rate) or `+0.1pp` (errors, percentage points); the
/// number as written (10.0, 0.1).
fn parse_change(metric: Metric, tok: Token<'_>) -> Result<f64, ExprError> {
    let (text, at, name) = (tok.text, tok.at, metric.name());
    if !CHANGE_METRICS.contains(&metric) {
        return Err(err(
            at,
            format!("compare judges p50, p90, p99, max, rate and errors, not `{name}`"),
        ));
    }
    let errors = metric == Metric::Errors;
    let (num, unit_ok) = match (text.strip_suffix("pp"), text.strip_suffix('%')) {
        (Some(n), _) => (n, errors),
        (_, Some(n)) => (n, !errors),
        _ => (text, false),
    };
    let example = if errors { "+0.1pp" } else { "+10%" };
    if !unit_ok {
        return Err(err(
            at,
            format!(
                "`{text}`: a change of `{name}` is written {}, like `{example}`",
                if errors {
                    "in percentage points (pp)"
                } else {
                    "in percent of the base (%)"
                }
            ),
        ));
    }
    num.trim_start_matches('+')
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| err(at, format!("`{text}` is not a change, like `{example}`")))
}

fn parse_value(metric: Metric, tok: Token<'_>) -> Result<f64, ExprError> {
    let text = tok.text;
    let at = tok.at;
    let name = metric.name();
    match metric.unit() {
        MetricUnit::Millis => {
            if text.parse::<f64>().is_ok() {
                return Err(err(
                    at,
                    format!("`{text}` has no unit: `{name}` takes a duration, so add ms or s, like `{text}ms`"),
                ));
            }
            let d = parse_duration(text)
                .map_err(|e| err(at, format!("`{name}` takes a duration: {e}")))?;
            // Rounded to the microsecond, so `300ms` is exactly 300.0.
            Ok((d.as_secs_f64() * 1e6).round() / 1e3)
        }
        MetricUnit::Fraction => {
            parse_share(text).map_err(|e| err(at, format!("`{name}` takes a percentage: {e}")))
        }
        MetricUnit::PerSecond => {
            parse_rate(text).map_err(|e| err(at, format!("`{name}` takes a rate: {e}")))
        }
        MetricUnit::Plain => text
            .strip_suffix('%')
            .unwrap_or(text)
            .parse::<f64>()
            .map_err(|_| err(at, format!("`{name}` takes a number, got `{text}`"))),
        MetricUnit::Count => match text.parse::<u64>() {
            Ok(n) => Ok(n as f64),
            Err(_) => Err(err(
                at,
                format!("`{name}` takes a whole number, like `1000`, got `{text}`"),
            )),
        },
    }
}

/// Explains why no `METRIC OP` pair was found, pointing at the likeliest culprit.
fn no_metric(src: &str, toks: &[Token<'_>], kind: Kind) -> ExprError {
    if let Some(j) = toks.iter().position(|t| t.op) {
        let op = toks[j];
        if j == 0 {
            return err(
                op.at,
                format!("expected a metric ({}) before `{}`", metric_list(), op.text),
            );
        }
        let word = toks[j - 1];
        return not_a_metric(word, &format!(" before `{}`", op.text));
    }
    if let Some(m) = toks
        .iter()
        .rev()
        .find(|t| Metric::from_name(t.text).is_some())
    {
        let next = toks.iter().find(|t| t.at > m.at);
        return match next {
            Some(n) => err(
                n.at,
                format!("expected {OPERATORS} after `{}`, got `{}`", m.text, n.text),
            ),
            None => err(
                src.len(),
                format!("expected {OPERATORS} after `{}`", m.text),
            ),
        };
    }
    if let Some((t, s)) = toks
        .iter()
        .find_map(|t| suggest_metric(t.text).map(|s| (t, s)))
    {
        return err(
            t.at,
            format!("`{}` is not a metric: did you mean `{s}`?", t.text),
        );
    }
    err(
        toks[0].at,
        format!(
            "expected {}, like {}: found no metric ({}) followed by {OPERATORS}",
            kind.what(),
            kind.example(),
            metric_list()
        ),
    )
}

fn not_a_metric(word: Token<'_>, context: &str) -> ExprError {
    let text = word.text;
    let message = match suggest_metric(text) {
        Some(s) => format!("`{text}` is not a metric: did you mean `{s}`?"),
        None if is_percentile(text).is_some() => {
            format!("`{text}` is not a metric: the percentiles are p50, p90, p95, p99 and p99.9")
        }
        None => format!(
            "expected a metric ({}){context}, got `{text}`",
            metric_list()
        ),
    };
    err(word.at, message)
}

/// `p98` → 98.0, for words shaped like a percentile.
fn is_percentile(word: &str) -> Option<f64> {
    let digits = word.strip_prefix(['p', 'P'])?;
    let n: f64 = digits.parse().ok()?;
    (digits.starts_with(|c: char| c.is_ascii_digit()) && n > 0.0 && n <= 100.0).then_some(n)
}

/// A metric that a misspelt or foreign word probably means.
fn suggest_metric(word: &str) -> Option<&'static str> {
    let lower = word.to_lowercase();
    if let Some(m) = Metric::from_name(&lower) {
        return Some(m.name());
    }
    let alias = match lower.as_str() {
        "p999" | "p99_9" | "p99,9" => Some("p99.9"),
        "median" => Some("p50"),
        "avg" | "average" => Some("mean"),
        "p100" | "maximum" => Some("max"),
        "error" | "error_rate" | "errors%" | "failures" | "failed" => Some("errors"),
        "rps" | "qps" | "tps" | "throughput" => Some("rate"),
        "requests" | "total" => Some("count"),
        "drops" | "drop" => Some("dropped"),
        "lag" | "lag_p99.9" => Some("lag_p99"),
        _ => None,
    };
    if alias.is_some() {
        return alias;
    }
    if let Some(n) = is_percentile(&lower) {
        let nearest = [
            Metric::P50,
            Metric::P90,
            Metric::P95,
            Metric::P99,
            Metric::P999,
        ]
        .into_iter()
        .filter_map(|m| Some((m.quantile()? * 100.0 - n).abs()).map(|d| (d, m)))
        .filter(|(d, _)| *d <= 5.0)
        .min_by(|a, b| a.0.total_cmp(&b.0));
        return nearest.map(|(_, m)| m.name());
    }
    closest(&lower, Metric::ALL.iter().map(|m| m.name()))
}

fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let lower = word.to_lowercase();
    candidates
        .map(|c| (strsim::damerau_levenshtein(&lower, c), c))
        .filter(|(d, c)| *c != word && *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A number without float noise: `0.5`, `300`, `0.333333`.
pub(super) fn format_number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 && x.abs() < 1e15 {
        return format!("{}", x.round() as i64);
    }
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn t(src: &str) -> Threshold {
        parse_threshold(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    fn terr(src: &str) -> ExprError {
        parse_threshold(src).unwrap_err()
    }

    #[test]
    fn every_metric_parses_with_its_unit() {
        let cases = [
            ("p50 < 100ms", Metric::P50, 100.0),
            ("p90 < 1.5s", Metric::P90, 1500.0),
            ("p95 < 2m", Metric::P95, 120_000.0),
            ("p99 < 300ms", Metric::P99, 300.0),
            ("p99.9 < 1s", Metric::P999, 1000.0),
            ("max < 5s", Metric::Max, 5000.0),
            ("mean < 250ms", Metric::Mean, 250.0),
            ("errors < 0.5%", Metric::Errors, 0.005),
            ("rate > 2000/s", Metric::Rate, 2000.0),
            ("rate > 60/min", Metric::Rate, 1.0),
            ("count >= 1000", Metric::Count, 1000.0),
            ("dropped <= 0", Metric::Dropped, 0.0),
            ("lag_p99 < 10ms", Metric::LagP99, 10.0),
        ];
        for (src, metric, value) in cases {
            let th = t(src);
            assert_eq!((th.metric, th.value), (metric, value), "{src}");
            assert_eq!(th.selector, Selector::All, "{src}");
            assert_eq!(th.phase, None, "{src}");
            assert_eq!(th.source, src);
        }
    }

    #[test]
    fn every_operator_parses_with_or_without_spaces() {
        assert_eq!(t("p99 < 1s").op, Op::Lt);
        assert_eq!(t("p99 <= 1s").op, Op::Le);
        assert_eq!(t("p99 > 1s").op, Op::Gt);
        assert_eq!(t("p99 >= 1s").op, Op::Ge);
        assert_eq!(
            t("p99<=1s"),
            Threshold {
                source: "p99<=1s".into(),
                ..t("p99 <= 1s")
            }
        );
    }

    #[test]
    fn selectors_of_each_kind() {
        assert_eq!(
            t("create-order p99 < 300ms").selector,
            Selector::Request("create-order".into())
        );
        assert_eq!(
            t("GET /api/items p99 < 300ms").selector,
            Selector::Request("GET /api/items".into())
        );
        assert_eq!(
            t("journey:flash-buy errors < 1%").selector,
            Selector::Journey("flash-buy".into())
        );
        assert_eq!(
            t("client:mobile-app rate > 10/s").selector,
            Selector::Client("mobile-app".into())
        );
        assert_eq!(t("  errors < 1%  ").selector, Selector::All);
    }

    #[test]
    fn a_request_name_may_contain_metric_words() {
        let th = t("GET /max/count p99 < 300ms during peak");
        assert_eq!(th.selector, Selector::Request("GET /max/count".into()));
        assert_eq!(th.metric, Metric::P99);
        let th = t("GET /items?page={{ random(1, 50) }} max < 2s");
        assert_eq!(
            th.selector,
            Selector::Request("GET /items?page={{ random(1, 50) }}".into())
        );
    }

    #[test]
    fn during_names_a_phase() {
        let th = t("create-order rate > 2000/s during peak");
        assert_eq!(th.phase.as_deref(), Some("peak"));
        assert_eq!(th.value, 2000.0);
    }

    #[test]
    fn abort_rules_take_for_and_default_to_zero() {
        let rule = parse_abort("errors > 30% for 10s").unwrap();
        assert_eq!(rule.cond.metric, Metric::Errors);
        assert_eq!(rule.cond.value, 0.3);
        assert_eq!(rule.for_, Duration::from_secs(10));
        let rule = parse_abort("p99 > 5s").unwrap();
        assert_eq!(rule.for_, Duration::ZERO);
        assert_eq!(rule.cond.value, 5000.0);
        let e = parse_abort("p99 > 5s during peak").unwrap_err();
        assert_eq!(e.offset, 9);
        assert!(
            e.message.contains("takes `for DURATION`, not `during`"),
            "{}",
            e.message
        );
        let e = parse_abort("p99 > 5s for 10").unwrap_err();
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("no unit"), "{}", e.message);
        assert_eq!(parse_abort("p99 > 5s for").unwrap_err().offset, 12);
    }

    #[test]
    fn stop_when_takes_no_suffix() {
        let th = parse_stop_when("p99 > 500ms").unwrap();
        assert_eq!((th.metric, th.op, th.value), (Metric::P99, Op::Gt, 500.0));
        assert_eq!(
            parse_stop_when("errors > 1% for 10s").unwrap_err().offset,
            12
        );
        assert_eq!(
            parse_stop_when("errors > 1% during peak")
                .unwrap_err()
                .offset,
            12
        );
    }

    #[test]
    fn thresholds_reject_for() {
        let e = terr("p99 < 1s for 10s");
        assert_eq!(e.offset, 9);
        assert!(
            e.message.contains("belongs to abort rules"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_operator_is_reported_after_the_metric() {
        let e = terr("p99 300ms");
        assert_eq!(e.offset, 4);
        assert_eq!(
            e.message,
            "expected an operator (<, <=, >, >=) after `p99`, got `300ms`"
        );
        let e = terr("GET /a p99");
        assert_eq!(e.offset, 10);
        assert_eq!(e.message, "expected an operator (<, <=, >, >=) after `p99`");
    }

    #[test]
    fn misspelt_metrics_get_a_suggestion() {
        let e = terr("p98 < 300ms");
        assert_eq!(e.offset, 0);
        assert_eq!(e.message, "`p98` is not a metric: did you mean `p99`?");
        assert!(terr("create-order eror < 1%")
            .message
            .contains("did you mean `errors`?"));
        assert!(terr("p999 < 1s").message.contains("did you mean `p99.9`?"));
        assert!(terr("avg < 1s").message.contains("did you mean `mean`?"));
        assert!(terr("P99 < 1s").message.contains("did you mean `p99`?"));
        let e = terr("p75 < 1s");
        assert!(e.message.contains("the percentiles are"), "{}", e.message);
        let e = terr("latency < 1s");
        assert!(
            e.message.starts_with("expected a metric (p50, p90"),
            "{}",
            e.message
        );
        assert_eq!(
            terr("p98 300ms").offset,
            0,
            "suggests even without an operator"
        );
        assert_eq!(terr("< 1s").offset, 0);
    }

    #[test]
    fn bad_operators_are_errors_at_the_operator() {
        let e = terr("p99 = 300ms");
        assert_eq!(e.offset, 4);
        assert!(
            e.message.starts_with("`=` is not an operator"),
            "{}",
            e.message
        );
        assert!(terr("p99 =< 1s").message.contains("did you mean `<=`?"));
        assert!(terr("p99 => 1s").message.contains("did you mean `>=`?"));
        assert_eq!(terr("p99 <> 1s").offset, 4);
    }

    #[test]
    fn values_are_checked_against_the_metric() {
        let e = terr("p99 < 300");
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("add ms or s"), "{}", e.message);
        assert_eq!(terr("p99 < 0.5%").offset, 6);
        assert_eq!(terr("lag_p99 < 5").offset, 10);
        let e = terr("errors < 0.5");
        assert_eq!(e.offset, 9);
        assert!(e.message.contains("percentage"), "{}", e.message);
        assert!(terr("errors < 150%")
            .message
            .contains("between 0% and 100%"));
        assert_eq!(terr("rate > 2000").offset, 7);
        assert_eq!(terr("rate > 2000/fortnight").offset, 7);
        assert_eq!(terr("count > 1.5").offset, 8);
        assert_eq!(terr("dropped > -1").offset, 10);
        assert_eq!(terr("count > 10/s").offset, 8);
        let e = terr("p99 <");
        assert_eq!(e.offset, 5);
        assert!(
            e.message.contains("expected a value after `<`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn selector_errors_point_at_the_selector() {
        let e = terr("journey: errors < 1%");
        assert_eq!(e.offset, 8);
        assert_eq!(e.message, "expected a journey name after `journey:`");
        let e = terr(" jouney:flash-buy errors < 1%");
        assert_eq!(e.offset, 1);
        assert!(
            e.message.contains("did you mean `journey:`?"),
            "{}",
            e.message
        );
        let e = terr("p99 < 1s p95 < 2s");
        assert_eq!(e.offset, 4);
        assert!(
            e.message.contains("one condition per expression"),
            "{}",
            e.message
        );
    }

    #[test]
    fn trailing_words_are_errors() {
        let e = terr("p99 < 1s durin peak");
        assert_eq!(e.offset, 9);
        assert!(
            e.message.contains("did you mean `during`?"),
            "{}",
            e.message
        );
        let e = terr("p99 < 1s during peak now");
        assert_eq!(e.offset, 21);
        assert_eq!(
            e.message,
            "expected the end of a threshold after `during peak`, got `now`"
        );
        assert_eq!(terr("p99 < 1s during").offset, 15);
        assert_eq!(terr("p99 < 1s during <").offset, 16);
    }

    #[test]
    fn empty_input_is_an_error() {
        for src in ["", "   ", "\n\t"] {
            let e = terr(src);
            assert_eq!(e.offset, 0);
            assert!(e.message.contains("got nothing"), "{}", e.message);
        }
    }

    #[test]
    fn garbage_and_unicode_never_panic() {
        let inputs = [
            "💥",
            "p99 < 💥",
            "💥 p99 < 1s",
            "p99 <💥",
            "<<<<",
            "!!!",
            "p99 < 1s during 峰值 💥",
            "journey:购物 errors < 1%",
            "\u{3000}p99\u{3000}<\u{3000}1s",
            "p99 < 99999999999999999999999h",
            "count > 99999999999999999999999",
            "p99.9.9 < 1s",
            "p < 1s",
            "p0 < 1s",
            "pNaN < 1s",
            "rate > NaN/s",
            "errors < NaN%",
            "p99 < 1e400s",
            ":",
            "journey:",
            "client:x",
            "p99 < 1s for 1e999s",
            "\u{0}",
        ];
        for src in inputs {
            let _ = parse_threshold(src);
            let _ = parse_abort(src);
            let _ = parse_stop_when(src);
        }
        let th = t("journey:购物 errors < 1% during 峰值");
        assert_eq!(th.selector, Selector::Journey("购物".into()));
        assert_eq!(th.phase.as_deref(), Some("峰值"));
        let th = t("\u{3000}p99\u{3000}<\u{3000}1s");
        assert_eq!(th.value, 1000.0);
        let e = terr("商品 p98 < 1s");
        assert_eq!(e.offset, "商品 ".len());
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        let cases = [
            (
                "create-order  p99<300ms   during peak",
                "create-order p99 < 300ms during peak",
            ),
            ("errors < 0.5%", "errors < 0.5%"),
            (
                "journey:flash-buy errors <= 0.7%",
                "journey:flash-buy errors <= 0.7%",
            ),
            ("client:pc-web rate > 60/min", "client:pc-web rate > 1/s"),
            (
                "GET /api/items p99.9 >= 1.5s",
                "GET /api/items p99.9 >= 1500ms",
            ),
            ("count > 1000", "count > 1000"),
            ("rate > 100/min", "rate > 1.666667/s"),
        ];
        for (src, canonical) in cases {
            let th = t(src);
            assert_eq!(th.to_string(), canonical, "{src}");
            let again = t(canonical);
            assert_eq!(
                (&again.selector, again.metric, again.op, &again.phase),
                (&th.selector, th.metric, th.op, &th.phase)
            );
            assert!(
                (again.value - th.value).abs() <= th.value.abs() * 1e-6,
                "{src}"
            );
        }
        let rule = parse_abort("errors > 30%  for 10s").unwrap();
        assert_eq!(rule.to_string(), "errors > 30% for 10s");
        assert_eq!(parse_abort("p99 > 5s").unwrap().to_string(), "p99 > 5000ms");
    }

    #[test]
    fn abort_durations_display_in_scenario_units() {
        let rule = parse_abort("p99 > 1s for 1.5s").unwrap();
        assert_eq!(rule.to_string(), "p99 > 1000ms for 1s500ms");
        assert_eq!(parse_abort(&rule.to_string()).unwrap().for_, rule.for_);
    }

    #[test]
    fn random_token_soup_never_panics() {
        let alphabet = [
            "p99", "p99.9", "errors", "rate", "count", "<", "<=", ">", "=", "!", "300ms", "1%",
            "10/s", "5", "during", "for", "peak", "journey:", "client:", " ", "  ", "é", "💥", ":",
            "-", ".", "/", "\t",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut src = String::new();
            for _ in 0..(state % 9) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                src.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse_threshold(&src);
            let _ = parse_abort(&src);
            let _ = parse_stop_when(&src);
        }
    }

    #[test]
    fn metric_helpers() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
        assert!(Metric::P999.is_latency() && Metric::Mean.is_latency());
        assert!(!Metric::LagP99.is_latency() && !Metric::Errors.is_latency());
        assert_eq!(Metric::LagP99.unit(), MetricUnit::Millis);
        assert_eq!(Metric::P999.quantile(), Some(0.999));
        assert_eq!(Metric::Errors.format_value(0.005), "0.5%");
    }
}

#[cfg(test)]
mod monitor_tests {
    use crate::gate::{
        parse_abort, parse_stop_when, parse_threshold, with_monitor_names, Metric, Op, Selector,
    };
    use std::time::Duration;

    #[test]
    fn monitor_series_in_abort_and_stop_when_rules() {
        let r = parse_abort("monitor:cpu > 90% for 20s").unwrap();
        assert_eq!(r.cond.selector, Selector::Monitor("cpu".into()));
        assert_eq!(
            (r.cond.metric, r.cond.op, r.cond.value),
            (Metric::Monitor, Op::Gt, 90.0)
        );
        assert_eq!(r.for_, Duration::from_secs(20));
        assert_eq!(r.to_string(), "monitor:cpu > 90 for 20s");
        let t = parse_stop_when("monitor:load1 >= 8").unwrap();
        assert_eq!(t.value, 8.0);
        assert!(parse_threshold("monitor:cpu > 90%").is_err());
        assert!(parse_abort("monitor: > 90%").is_err());
        assert!(parse_abort("monitor:cpu > hot").is_err());
        assert!(parse_stop_when("monitor:cpu > 90 for 1s").is_err());
    }

    #[test]
    fn bare_declared_names_become_monitor_rules() {
        let names = vec!["cpu".to_string()];
        assert_eq!(
            with_monitor_names("cpu > 90% for 20s", &names),
            "monitor:cpu > 90% for 20s"
        );
        assert_eq!(with_monitor_names("cpu>90%", &names), "monitor:cpu>90%");
        // Metric words and other names are left alone.
        assert_eq!(
            with_monitor_names("errors > 30% for 10s", &names),
            "errors > 30% for 10s"
        );
        assert_eq!(with_monitor_names("p99 > 1s", &[]), "p99 > 1s");
    }
}
