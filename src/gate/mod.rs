//! Threshold, abort and stop_when expressions: `[SELECTOR] METRIC OP VALUE [during PHASE]`,
//! `[SELECTOR] METRIC OP VALUE [for DURATION]` and `[SELECTOR] METRIC OP VALUE`; and `compare
//! --fail-on`'s changes: the threshold grammar with a change (`+10%`, `+0.1pp`) for the value.
//!
//! This module owns the grammar, its errors (byte offset, what was expected, did-you-mean), value
//! normalization and the canonical printed form. It does not know which request names, journeys,
//! clients or phases a scenario has (the scenario validator checks those) and it does not read
//! run results: the engine and the gate evaluation look values up and call [`Op::holds`].
//!
//! API CONTRACT: `parse_threshold`, `parse_abort`, `parse_stop_when`, `parse_change` and the
//! types below.
//! Values are normalized: latency metrics and `lag_p99` in milliseconds, `errors` as a fraction
//! (0.5% → 0.005), `rate` per second, `count` and `dropped` as counts.

mod parse;

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    All,
    Request(String),
    Journey(String),
    Client(String),
    /// A monitor series of the scenario (`monitor:cpu`), with [`Metric::Monitor`].
    Monitor(String),
    /// A scheduled action of the scenario (`action:db-failover`), with [`Metric::Recovery`].
    Action(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    Mean,
    Errors,
    Rate,
    Count,
    Dropped,
    LagP99,
    /// The value of a monitor series (the selector names it): abort and stop_when rules only.
    Monitor,
    /// An action's recovery time (`action:NAME recovery < 30s`): thresholds only.
    Recovery,
}

/// What a metric's value measures, after normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    /// A duration in milliseconds (latency metrics, `lag_p99`).
    Millis,
    /// A fraction between 0 and 1 (`errors`), written as a percentage.
    Fraction,
    /// Events per second (`rate`).
    PerSecond,
    /// A count (`count`, `dropped`).
    Count,
    /// A plain number as the monitor series gives it (`90%` is 90).
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub source: String,
    pub selector: Selector,
    pub metric: Metric,
    pub op: Op,
    pub value: f64,
    pub phase: Option<String>,
    /// Set when `value` is a share of the written limit (`shrink_absolute`).
    pub scaled: Option<Scaled>,
}

/// How a limit was scaled: `value = written × factor`, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaled {
    pub written: f64,
    pub factor: f64,
    /// `--scale 1/20`, `segment 2/3`, or both.
    pub why: String,
}

/// A factor as people write it: `1/20`, `3/4`, `2.5`.
pub fn factor_text(f: f64) -> String {
    if (f - f.round()).abs() < 1e-9 {
        return format!("{}", f.round());
    }
    let inv = 1.0 / f;
    if f < 1.0 && (inv - inv.round()).abs() < 1e-6 {
        return format!("1/{}", inv.round());
    }
    for d in 2..=100u32 {
        let n = f * d as f64;
        if (n - n.round()).abs() < 1e-6 {
            return format!("{}/{d}", n.round());
        }
    }
    let t = format!("{f:.4}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Why a run's absolute limits are a share of the written ones: `--scale 1/20, segment 2/3`;
/// None when they are not.
pub fn scaling_reason(scale: f64, segment: Option<(u32, u32)>) -> Option<String> {
    let mut why = Vec::new();
    if scale != 1.0 {
        why.push(format!("--scale {}", factor_text(scale)));
    }
    if let Some((i, n)) = segment.filter(|(_, n)| *n > 1) {
        why.push(format!("segment {i}/{n}"));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

impl Threshold {
    /// Scales the limit of an absolute amount (`rate`, `count`) by `factor`: a run at
    /// `--scale 1/100`, or one segment of n, is judged against its share of the written limit.
    /// `why` says where the factor comes from (`scaling_reason`), for the texts that show it.
    pub fn shrink_absolute(&mut self, factor: f64, why: Option<String>) {
        if matches!(self.metric, Metric::Rate | Metric::Count) && factor != 1.0 {
            let written = self.scaled.as_ref().map_or(self.value, |s| s.written);
            self.value *= factor;
            self.scaled = Some(Scaled {
                written,
                factor: self.value / written,
                why: why.unwrap_or_default(),
            });
        }
    }

    /// `2000/s × 1/20 (--scale 1/20)`: the written limit and the factor, when it was scaled.
    pub fn scaled_text(&self) -> Option<String> {
        self.scaled.as_ref().map(|s| {
            let why = if s.why.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.why)
            };
            format!(
                "{} × {}{why}",
                self.metric.format_observed(s.written),
                factor_text(s.factor)
            )
        })
    }
}

/// An abort rule: the condition is a *failure* condition (`errors > 30%`) that must hold
/// continuously `for` the given duration.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortRule {
    pub cond: Threshold,
    pub for_: Duration,
}

/// An expression error at byte `offset` of the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
    /// When only the value was wrong: the rest of the expression as read (its value NaN), so
    /// that unknown names in it are reported in the same pass.
    pub partial: Option<Box<Threshold>>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for ExprError {}

/// Parses a threshold: `[SELECTOR] METRIC OP VALUE [during PHASE]`.
pub fn parse_threshold(src: &str) -> Result<Threshold, ExprError> {
    parse::parse(src, parse::Kind::Threshold).map(|(t, _)| t)
}

/// Parses an abort rule: `[SELECTOR] METRIC OP VALUE [for DURATION]` (no `for` means 0s).
pub fn parse_abort(src: &str) -> Result<AbortRule, ExprError> {
    parse::parse(src, parse::Kind::Abort).map(|(cond, for_)| AbortRule { cond, for_ })
}

/// Parses a step drill's stop condition: `[SELECTOR] METRIC OP VALUE`.
pub fn parse_stop_when(src: &str) -> Result<Threshold, ExprError> {
    parse::parse(src, parse::Kind::StopWhen).map(|(t, _)| t)
}

/// Parses a `compare --fail-on` change: `[REQUEST] METRIC OP CHANGE [during PHASE]`, the threshold
/// grammar with a change for its value: `+10%` for latency and rate (relative to the base),
/// `+0.1pp` for errors (percentage points). `value` is the number as written (10, 0.1).
pub fn parse_change(src: &str) -> Result<Threshold, ExprError> {
    let t = parse::parse(src, parse::Kind::Change).map(|(t, _)| t)?;
    if matches!(t.selector, Selector::Journey(_) | Selector::Client(_)) {
        return Err(ExprError {
            offset: 0,
            message: "compare's rows are per request name (clients merged): name a request, or none for all".into(),
            partial: None,
        });
    }
    Ok(t)
}

/// Writes a rule that starts with a bare declared monitor series name (`cpu > 90% for 20s`) in
/// its explicit form (`monitor:cpu > 90% for 20s`); other text is returned as it is.
pub fn with_monitor_names(src: &str, names: &[String]) -> String {
    let t = src.trim_start();
    let end = t
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '=' | '!'))
        .unwrap_or(t.len());
    let word = &t[..end];
    if Metric::from_name(word).is_none() && names.iter().any(|n| n == word) {
        format!("monitor:{t}")
    } else {
        src.to_string()
    }
}

impl Op {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

impl Metric {
    /// Every metric, in the order the grammar lists them.
    pub const ALL: [Metric; 12] = [
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::Mean,
        Metric::Errors,
        Metric::Rate,
        Metric::Count,
        Metric::Dropped,
        Metric::LagP99,
    ];

    /// The name as written in an expression (`p99.9`, `lag_p99`).
    pub fn name(&self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
            Metric::Mean => "mean",
            Metric::Errors => "errors",
            Metric::Rate => "rate",
            Metric::Count => "count",
            Metric::Dropped => "dropped",
            Metric::LagP99 => "lag_p99",
            Metric::Monitor => "monitor",
            Metric::Recovery => "recovery",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// True for request latency (percentiles, max, mean); false for `lag_p99`, which is the
    /// generator's scheduler lag, though it is also in milliseconds.
    pub fn is_latency(&self) -> bool {
        matches!(
            self,
            Metric::P50
                | Metric::P90
                | Metric::P95
                | Metric::P99
                | Metric::P999
                | Metric::Max
                | Metric::Mean
        )
    }

    /// For percentiles, the quantile (0.99 for `p99`); `None` for the other metrics.
    pub fn quantile(&self) -> Option<f64> {
        match self {
            Metric::P50 => Some(0.5),
            Metric::P90 => Some(0.9),
            Metric::P95 => Some(0.95),
            Metric::P99 | Metric::LagP99 => Some(0.99),
            Metric::P999 => Some(0.999),
            _ => None,
        }
    }

    pub fn unit(&self) -> MetricUnit {
        match self {
            Metric::Errors => MetricUnit::Fraction,
            Metric::Rate => MetricUnit::PerSecond,
            Metric::Count | Metric::Dropped => MetricUnit::Count,
            Metric::Monitor => MetricUnit::Plain,
            _ => MetricUnit::Millis,
        }
    }

    /// Formats a normalized value the way an expression writes it (`300ms`, `0.5%`, `2000/s`).
    /// A measured value for people: at most three decimals (325.7333…/s reads as 325.733/s).
    pub fn format_observed(&self, value: f64) -> String {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        match self.unit() {
            MetricUnit::Fraction => self.format_value(r(value * 100.0) / 100.0),
            _ => self.format_value(r(value)),
        }
    }

    pub fn format_value(&self, value: f64) -> String {
        let n = |x: f64| parse::format_number(x);
        match self.unit() {
            MetricUnit::Millis => format!("{}ms", n(value)),
            MetricUnit::Fraction => format!("{}%", n(value * 100.0)),
            MetricUnit::PerSecond => format!("{}/s", n(value)),
            MetricUnit::Count | MetricUnit::Plain => n(value),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Selector {
    /// Empty for [`Selector::All`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => Ok(()),
            Selector::Request(name) => f.write_str(name),
            Selector::Journey(name) => write!(f, "journey:{name}"),
            Selector::Client(name) => write!(f, "client:{name}"),
            Selector::Monitor(name) => write!(f, "monitor:{name}"),
            Selector::Action(name) => write!(f, "action:{name}"),
        }
    }
}

impl fmt::Display for Threshold {
    /// The canonical form: single spaces, normalized units (`create-order p99 < 300ms during
    /// peak`). Parsing it gives back the same threshold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Selector::Monitor(name) = &self.selector {
            write!(
                f,
                "monitor:{name} {} {}",
                self.op,
                self.metric.format_value(self.value)
            )?;
            if let Some(phase) = &self.phase {
                write!(f, " during {phase}")?;
            }
            return Ok(());
        }
        if self.selector != Selector::All {
            write!(f, "{} ", self.selector)?;
        }
        write!(
            f,
            "{} {} {}",
            self.metric,
            self.op,
            self.metric.format_value(self.value)
        )?;
        if let Some(phase) = &self.phase {
            write!(f, " during {phase}")?;
        }
        Ok(())
    }
}

impl fmt::Display for AbortRule {
    /// The canonical form; `for` is left out when it is zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cond)?;
        if !self.for_.is_zero() {
            let ms = self.for_.as_secs_f64() * 1000.0;
            if self.for_.subsec_nanos().is_multiple_of(1_000_000) {
                write!(
                    f,
                    " for {}",
                    crate::scenario::units::format_duration(self.for_)
                )?;
            } else {
                write!(f, " for {}ms", parse::format_number(ms))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_read_as_written() {
        assert_eq!(factor_text(0.05), "1/20");
        assert_eq!(factor_text(1.0 / 60.0), "1/60");
        assert_eq!(factor_text(0.75), "3/4");
        assert_eq!(factor_text(2.0), "2");
        assert_eq!(factor_text(2.5), "5/2");
        assert_eq!(factor_text(0.123456), "0.1235");
    }

    #[test]
    fn a_scaled_limit_says_the_written_value_and_why() {
        let mut t = parse_threshold("rate > 2000/s").unwrap();
        t.shrink_absolute(1.0 / 20.0, scaling_reason(0.05, Some((1, 1))));
        assert_eq!(t.value, 100.0);
        assert_eq!(
            t.scaled_text().as_deref(),
            Some("2000/s × 1/20 (--scale 1/20)")
        );
        let mut t = parse_threshold("count > 6000").unwrap();
        t.shrink_absolute(1.0 / 60.0, scaling_reason(0.05, Some((2, 3))));
        assert_eq!(t.value, 100.0);
        assert_eq!(
            t.scaled_text().as_deref(),
            Some("6000 × 1/60 (--scale 1/20, segment 2/3)")
        );
        // Latency limits and unscaled runs keep the written value, and say nothing.
        let mut t = parse_threshold("p99 < 200ms").unwrap();
        t.shrink_absolute(0.05, scaling_reason(0.05, None));
        assert_eq!((t.value, t.scaled_text()), (200.0, None));
        let mut t = parse_threshold("rate > 2000/s").unwrap();
        t.shrink_absolute(1.0, scaling_reason(1.0, Some((1, 1))));
        assert_eq!(t.scaled_text(), None);
    }
}
