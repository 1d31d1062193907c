//! Capacity: what a step drill found (report.json `capacity`) and `flashcrowd capacity`, the
//! projection from a measured capacity to the instances a target peak needs.
//!
//! A step drill (`load.steps`) offers `step-1` … `step-K` rates. Per step: offered (planned
//! arrivals/s), achieved (successful responses/s over the part of the step that ran, divided by
//! the requests each arrival sends), p50, p99, error rate, and whether it met the SLO — the
//! drill's `stop_when` rules evaluated over the whole step. `capacity_rate` is the highest
//! achieved rate among fully run steps that met the SLO; `knee_rate` the offered rate of the first
//! step where achieved falls below 95 % of offered or p99 exceeds twice the first step's and
//! stays there for every later step.

use crate::compare::intervals::TagSeconds;
use crate::gate::{Metric, Selector};
use crate::report::model::{Capacity, CapacityStep, Report};

/// Achieved below this share of offered: the target stopped keeping up.
pub const TRACKING: f64 = 0.95;
/// p99 above this multiple of the first step's: latency bent.
pub const P99_BEND: f64 = 2.0;

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Latency metric `m` (ms) of the requests `sel` picks in `[t0, t1)`, from the interval log.
fn latency_from_log(
    tags: &[TagSeconds],
    sel: &Selector,
    m: Metric,
    t0: f64,
    t1: f64,
) -> Option<f64> {
    let mut h = crate::metrics::recorder::new_histogram();
    for t in tags.iter().filter(|t| match sel {
        Selector::Request(n) => &t.name == n,
        Selector::Client(c) => &t.client == c,
        _ => true,
    }) {
        for (s, iv) in t
            .seconds
            .range(t0.max(0.0) as u64..t1.max(0.0).ceil() as u64)
        {
            let _ = s;
            for (v, c) in &iv.values {
                let _ = h.record_n(*v, *c);
            }
        }
    }
    if h.is_empty() {
        return None;
    }
    Some(match m {
        Metric::Max => h.max() as f64 / 1000.0,
        Metric::Mean => h.mean() / 1000.0,
        m => h.value_at_quantile(m.quantile()?) as f64 / 1000.0,
    })
}

/// The drill's result from its report (and interval log, for rules with a request or client
/// selector); None when the report has no `step-N` phases.
pub fn analyse(r: &Report, tags: &[TagSeconds], stop_when: &[String]) -> Option<Capacity> {
    let phases: Vec<_> = r
        .phases
        .iter()
        .filter(|p| p.name.starts_with("step-"))
        .collect();
    if phases.is_empty() {
        return None;
    }
    let rules: Vec<_> = stop_when
        .iter()
        .filter_map(|s| crate::gate::parse_stop_when(s).ok())
        .collect();
    // Where arrivals stopped when the drill ended early (a stop_when rule, an abort, a signal).
    let stopped_at: Option<f64> = r.run.reason.as_ref().map(|_| {
        r.series
            .iter()
            .filter(|p| p.sessions_started > 0)
            .map(|p| p.t as f64 + 1.0)
            .fold(0.0, f64::max)
    });
    let stop_rule_fired = r
        .run
        .reason
        .as_deref()
        .is_some_and(|s| s.starts_with("stop_when"));
    let first = phases[0];
    let first_len = (first.end_s.min(stopped_at.unwrap_or(f64::MAX)) - first.start_s).max(1e-9);
    let rpa = if first.planned_rate > 0.0 {
        (first.requests as f64 / first_len / first.planned_rate)
            .round()
            .max(1.0)
    } else {
        1.0
    };
    let mut steps = Vec::new();
    for p in phases {
        let end = stopped_at.map_or(p.end_s, |s| s.min(p.end_s));
        let mut ran = end - p.start_s;
        if ran <= 0.0 {
            continue; // never started
        }
        if stopped_at.is_some() && p.planned_rate > 0.0 {
            // Arrivals stop within the second after the rule held: the time the step really
            // offered its rate is its arrivals ÷ the rate.
            let started: u64 = r
                .series
                .iter()
                .filter(|s| (s.t as f64) >= p.start_s && (s.t as f64) < p.end_s)
                .map(|s| s.sessions_started)
                .sum();
            ran = ran.min(started as f64 / p.planned_rate).max(1e-3);
        }
        let partial = ran < (p.end_s - p.start_s) - 0.25;
        let end = p.start_s + ran;
        let good = p.requests as f64 * (1.0 - p.error_rate);
        let achieved = good / ran / rpa;
        let mut failed = Vec::new();
        for t in &rules {
            let observed = match (t.metric, &t.selector) {
                (Metric::Errors, _) => Some(p.error_rate),
                (Metric::Rate, _) => Some(p.requests as f64 / ran),
                (Metric::Count, _) => Some(p.requests as f64),
                (Metric::Dropped | Metric::LagP99, _) => None,
                (m, Selector::All) => match m {
                    Metric::P50 => p.latency_ms.p50,
                    Metric::P90 => p.latency_ms.p90,
                    Metric::P95 => p.latency_ms.p95,
                    Metric::P99 => p.latency_ms.p99,
                    Metric::P999 => p.latency_ms.p99_9,
                    Metric::Max => p.latency_ms.max,
                    _ => p.latency_ms.mean,
                },
                (m, sel) => latency_from_log(tags, sel, m, p.start_s, end),
            };
            if let Some(v) = observed.filter(|v| t.op.holds(*v, t.value)) {
                failed.push(format!(
                    "{} (observed {})",
                    t.source,
                    t.metric.format_observed(v)
                ));
            }
        }
        if partial && stop_rule_fired {
            failed.push(r.run.reason.clone().unwrap_or_default());
        }
        steps.push(CapacityStep {
            phase: p.name.clone(),
            offered_rate: round2(p.planned_rate),
            achieved_rate: round2(achieved),
            requests: p.requests,
            p50_ms: p.latency_ms.p50,
            p99_ms: p.latency_ms.p99,
            error_rate: p.error_rate,
            met_slo: failed.is_empty(),
            slo_failed: failed,
            partial,
            ran_s: round2(ran),
        });
    }
    let capacity_rate = steps
        .iter()
        .filter(|s| s.met_slo && !s.partial)
        .map(|s| s.achieved_rate)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let base_p99 = steps.first().and_then(|s| s.p99_ms);
    let mut knee = None;
    for s in &steps {
        if s.achieved_rate < TRACKING * s.offered_rate {
            knee = Some((
                s.offered_rate,
                format!(
                    "{}: achieved {} is below {:.0}% of offered {}",
                    s.phase,
                    fmt_rate(s.achieved_rate),
                    TRACKING * 100.0,
                    fmt_rate(s.offered_rate)
                ),
            ));
            break;
        }
        if let (Some(b), Some(p)) = (base_p99, s.p99_ms) {
            // A bend that lasts: every later step stays above it (one noisy step is no knee).
            let lasts = |x: &CapacityStep| x.p99_ms.is_some_and(|q| q > P99_BEND * b);
            let i = steps.iter().position(|x| std::ptr::eq(x, s)).unwrap_or(0);
            if p > P99_BEND * b && steps[i..].iter().all(lasts) {
                knee = Some((
                    s.offered_rate,
                    format!(
                        "{}: p99 {} is above {}× the first step's {}",
                        s.phase,
                        crate::report::summary::fmt_ms(p),
                        P99_BEND,
                        crate::report::summary::fmt_ms(b)
                    ),
                ));
                break;
            }
        }
    }
    Some(Capacity {
        slo: stop_when.to_vec(),
        capacity_rate,
        knee_rate: knee.as_ref().map(|k| k.0),
        knee_reason: knee.map(|k| k.1),
        requests_per_arrival: rpa,
        steps,
    })
}

pub fn fmt_rate(v: f64) -> String {
    format!("{}/s", crate::report::chart::fmt_value(v))
}

/// A number as the arithmetic lines print it and compute with it: at most two decimals, trailing
/// zeros dropped (`398.5`, `757900`).
fn exact(v: f64) -> String {
    let s = format!("{:.2}", round2(v));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `--headroom`: a percentage of extra capacity (`30%`, `150%`). A bare number is refused, as a
/// scenario refuses one: `50` could mean 50 % or 5000 %.
pub fn parse_headroom(src: &str) -> Result<f64, String> {
    let s = src.trim();
    let Some(num) = s.strip_suffix('%') else {
        return Err(format!(
            "`{src}` has no unit: write the extra capacity as a percentage, like `{s}%` (or `30%` for 0.3)"
        ));
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / 100.0),
        _ => Err(format!(
            "`{src}` is not a percentage of 0% or more, like `30%`"
        )),
    }
}

/// A stop_when rule turned around: what must hold for a step to meet the SLO (`p99 > 200ms` →
/// `p99 ≤ 200ms`).
pub fn must_hold(rule: &str) -> String {
    match crate::gate::parse_stop_when(rule) {
        Ok(t) => {
            let op = match t.op {
                crate::gate::Op::Gt => "≤",
                crate::gate::Op::Ge => "<",
                crate::gate::Op::Lt => "≥",
                crate::gate::Op::Le => ">",
            };
            let sel = t.selector.to_string();
            format!(
                "{}{} {op} {}",
                if sel.is_empty() {
                    String::new()
                } else {
                    format!("{sel} ")
                },
                t.metric,
                t.metric.format_value(t.value)
            )
        }
        Err(_) => format!("not ({rule})"),
    }
}

/// The SLO as what must hold: `p99 ≤ 200ms, errors ≤ 5%`.
pub fn slo_text(c: &Capacity) -> String {
    if c.slo.is_empty() {
        "no SLO given".into()
    } else {
        c.slo
            .iter()
            .map(|r| must_hold(r))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The one-line capacity summary of a drill.
pub fn summary_line(c: &Capacity) -> String {
    // The first step that missed the SLO, and what broke it.
    let broke = c
        .steps
        .iter()
        .find(|s| !s.met_slo)
        .map(|s| {
            format!(
                "; first missed at {} ({} offered): {}",
                s.phase,
                fmt_rate(s.offered_rate),
                s.slo_failed.join("; ")
            )
        })
        .unwrap_or_default();
    format!(
        "capacity {} (highest achieved rate of a step where {} held){broke}{}",
        c.capacity_rate
            .map(fmt_rate)
            .unwrap_or_else(|| "not found".into()),
        slo_text(c),
        match (&c.knee_rate, &c.knee_reason) {
            (Some(k), Some(why)) => format!("; knee at {} offered ({why})", fmt_rate(*k)),
            _ => "; no knee within the steps run".into(),
        }
    )
}

/// The per-step table for the terminal and Markdown: header, then rows.
pub fn step_rows(c: &Capacity) -> Vec<[String; 7]> {
    let mut out =
        vec![["step", "offered", "achieved", "p50", "p99", "errors", "SLO"].map(String::from)];
    for s in &c.steps {
        out.push([
            format!("{}{}", s.phase, if s.partial { " (partial)" } else { "" }),
            fmt_rate(s.offered_rate),
            fmt_rate(s.achieved_rate),
            crate::report::summary::opt_ms(s.p50_ms),
            crate::report::summary::opt_ms(s.p99_ms),
            format!("{:.2}%", s.error_rate * 100.0),
            if s.met_slo {
                "met".into()
            } else {
                format!("missed: {}", s.slo_failed.join("; "))
            },
        ]);
    }
    out
}

/// The drill's charts: offered vs achieved per step; p99 per step. The x axis is the step, each
/// tick labelled with its number and offered rate; a partial step (cut short by a stop_when rule)
/// is drawn as its own line and its tick says `partial`.
pub fn charts(c: &Capacity) -> Vec<(&'static str, crate::report::charts::Lines)> {
    use crate::report::charts::Lines;
    let x = |i: usize| i as f64 + 1.0;
    let n = c.steps.len() as f64 + 1.0;
    let ticks: Vec<(f64, String)> = c
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                x(i),
                format!(
                    "{} · {}{}",
                    i + 1,
                    fmt_rate(s.offered_rate),
                    if s.partial { " (partial)" } else { "" }
                ),
            )
        })
        .collect();
    let full = |f: &dyn Fn(&CapacityStep) -> Option<f64>| -> Vec<(f64, f64)> {
        c.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.partial)
            .filter_map(|(i, s)| f(s).map(|v| (x(i), v)))
            .collect()
    };
    // A partial step joined to the last full step before it, so it shows as a segment of its own.
    let partial = |f: &dyn Fn(&CapacityStep) -> Option<f64>| -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for (i, s) in c.steps.iter().enumerate().filter(|(_, s)| s.partial) {
            if let Some(prev) = i.checked_sub(1).and_then(|j| c.steps.get(j)) {
                if let Some(v) = f(prev) {
                    out.push((x(i - 1), v));
                }
            }
            if let Some(v) = f(s) {
                out.push((x(i), v));
            }
        }
        out
    };
    let achieved = |s: &CapacityStep| Some(s.achieved_rate);
    let p99 = |s: &CapacityStep| s.p99_ms;
    let mut rate_lines = vec![
        (
            "offered".into(),
            c.steps
                .iter()
                .enumerate()
                .map(|(i, s)| (x(i), s.offered_rate))
                .collect(),
        ),
        ("achieved (successful)".into(), full(&achieved)),
    ];
    let mut p99_lines = vec![("p99".into(), full(&p99))];
    if c.steps.iter().any(|s| s.partial) {
        rate_lines.push(("achieved, partial step".into(), partial(&achieved)));
        p99_lines.push(("p99, partial step".into(), partial(&p99)));
    }
    vec![
        (
            "capacity",
            Lines {
                title: "Step drill: offered vs achieved rate".into(),
                x_label: "step · offered rate".into(),
                y_label: "per second".into(),
                lines: rate_lines,
                fill_first: true,
                spectrum: false,
                x_end: n,
                phases: Vec::new(),
                x_ticks: ticks.clone(),
            },
        ),
        (
            "capacity-p99",
            Lines {
                title: "Step drill: p99 latency per step".into(),
                x_label: "step · offered rate".into(),
                y_label: "milliseconds".into(),
                lines: p99_lines,
                fill_first: false,
                spectrum: false,
                x_end: n,
                phases: Vec::new(),
                x_ticks: ticks,
            },
        ),
    ]
}

/// `flashcrowd capacity`'s arithmetic.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub measured_rate: f64,
    /// The run is a step drill (else the rate is only a lower bound).
    pub measured: bool,
    pub instances_tested: u32,
    pub per_instance: f64,
    pub target: f64,
    pub headroom: f64,
    pub needed: u64,
    pub growth: Option<f64>,
    pub needed_next_year: Option<u64>,
}

/// Instances for `target` with `headroom`: ceil(target × (1 + headroom) ÷ per_instance).
pub fn instances_for(target: f64, headroom: f64, per_instance: f64) -> u64 {
    // A hair of tolerance so 1.3 × 1000 ÷ 100 is 13, not 14 from floating-point dust.
    ((target * (1.0 + headroom) / per_instance) - 1e-9)
        .ceil()
        .max(1.0) as u64
}

/// ceil(a ÷ b), with a hair of tolerance for floating-point dust (at least 1).
fn ceil_ratio(a: f64, b: f64) -> u64 {
    ((a / b) - 1e-9).ceil().max(1.0) as u64
}

pub fn project(
    measured_rate: f64,
    measured: bool,
    instances: u32,
    target: f64,
    headroom: f64,
    growth: Option<f64>,
) -> Projection {
    // Rounded as printed, so every arithmetic line recomputes from the numbers it shows.
    let measured_rate = round2(measured_rate);
    let per_instance = round2(measured_rate / instances.max(1) as f64);
    Projection {
        measured_rate,
        measured,
        instances_tested: instances.max(1),
        per_instance,
        target,
        headroom,
        needed: ceil_ratio(round2(target * (1.0 + headroom)), per_instance),
        growth,
        needed_next_year: growth
            .map(|g| ceil_ratio(round2(round2(target * g) * (1.0 + headroom)), per_instance)),
    }
}

/// The arithmetic step by step and the water-level table. Every number is printed as it is
/// used ([`exact`]), so each line recomputes from what it shows.
pub fn render_projection(p: &Projection) -> String {
    let mut o = String::new();
    if !p.measured {
        o += &format!(
            "  note: this run is not a step drill: {}/s is the rate it achieved, a lower bound, not a measured capacity.\n",
            exact(p.measured_rate)
        );
    }
    let with = round2(p.target * (1.0 + p.headroom));
    o += &format!(
        "  per-instance capacity = {}/s ÷ {} instance(s) = {}/s\n",
        exact(p.measured_rate),
        p.instances_tested,
        exact(p.per_instance)
    );
    o += &format!(
        "  with headroom        = {}/s × (1 + {}%) = {}/s\n",
        exact(p.target),
        exact(p.headroom * 100.0),
        exact(with)
    );
    o += &format!(
        "  instances needed     = ceil({} ÷ {}) = ceil({}) = {}\n",
        exact(with),
        exact(p.per_instance),
        exact(with / p.per_instance),
        p.needed
    );
    if let (Some(g), Some(n)) = (p.growth, p.needed_next_year) {
        let grown = round2(p.target * g);
        let grown_with = round2(grown * (1.0 + p.headroom));
        o += &format!(
            "  next year (×{g})     = {}/s × {g} = {}/s; × (1 + {}%) = {}/s; ceil({} ÷ {}) = ceil({}) = {}\n",
            exact(p.target),
            exact(grown),
            exact(p.headroom * 100.0),
            exact(grown_with),
            exact(grown_with),
            exact(p.per_instance),
            exact(grown_with / p.per_instance),
            n
        );
    }
    o += "\n  water level at the target peak (load ÷ capacity):\n";
    o += "    instances  capacity       load share\n";
    for (n, level, why) in water_levels(p) {
        let mark = if level > 1.0 {
            format!("  {why}, over capacity")
        } else {
            format!("  {why}")
        };
        o += &format!(
            "    {:>9}  {:>13}  {:>9.1}%{}\n",
            n,
            format!("{}/s", exact(n as f64 * p.per_instance)),
            level * 100.0,
            mark.trim_end()
        );
    }
    o
}

/// (instances, load share at the target peak, what the row is) for the answer, ±10 %, ±25 % and
/// next year's answer, in order of instances.
pub fn water_levels(p: &Projection) -> Vec<(u64, f64, String)> {
    let at = |f: f64| ((p.needed as f64 * f).round() as u64).max(1);
    let mut rows: Vec<(u64, String)> = vec![
        (at(0.75), "−25%".into()),
        (at(0.90), "−10%".into()),
        (p.needed, "← needed".into()),
        (at(1.10), "+10%".into()),
        (at(1.25), "+25%".into()),
    ];
    if let (Some(n), Some(g)) = (p.needed_next_year, p.growth) {
        rows.push((n, format!("next year (×{g})")));
    }
    rows.sort_by_key(|r| r.0);
    // One row per instance count; the answer's label wins over a ±% that rounds onto it.
    let mut out: Vec<(u64, f64, String)> = Vec::new();
    for (n, why) in rows {
        match out.iter_mut().find(|r| r.0 == n) {
            Some(r) => {
                if why.starts_with('←') || why.starts_with("next") {
                    r.2 = if r.2.starts_with('←') {
                        format!("{}; {why}", r.2)
                    } else {
                        why
                    };
                }
            }
            None => out.push((n, p.target / (n as f64 * p.per_instance), why)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tmall_peak_on_1000_per_second_instances() {
        // 583,000/s × 1.3 = 757,900/s; ÷ 1,000/s = 757.9 → 758 instances.
        let p = project(4000.0, true, 4, 583_000.0, 0.30, Some(1.07));
        assert_eq!(p.per_instance, 1000.0);
        assert_eq!(p.needed, 758);
        // 583,000 × 1.07 × 1.3 = 810,953 → 811.
        assert_eq!(p.needed_next_year, Some(811));
        let w = water_levels(&p);
        let at = |n: u64| w.iter().find(|x| x.0 == n).unwrap().1;
        assert!((at(758) - 583_000.0 / 758_000.0).abs() < 1e-12);
        // The answer, ±10 %, ±25 % and next year's.
        let ns: Vec<u64> = w.iter().map(|x| x.0).collect();
        assert_eq!(ns, [569, 682, 758, 811, 834, 948]);
        let text = render_projection(&p);
        assert!(
            text.contains("= ceil(757900 ÷ 1000) = ceil(757.9) = 758"),
            "{text}"
        );
    }

    #[test]
    fn the_arithmetic_uses_the_numbers_it_prints() {
        // 797/s over 2 instances is 398.5/s: printed and divided by as 398.5, not "399".
        let p = project(797.0, true, 2, 583_000.0, 0.30, Some(1.07));
        let text = render_projection(&p);
        assert!(text.contains("= 797/s ÷ 2 instance(s) = 398.5/s"), "{text}");
        assert!(
            text.contains("ceil(757900 ÷ 398.5) = ceil(1901.88) = 1902"),
            "{text}"
        );
        assert_eq!(p.needed, 1902);
    }

    #[test]
    fn headroom_is_a_percentage() {
        assert_eq!(parse_headroom("30%"), Ok(0.3));
        assert_eq!(parse_headroom("150%"), Ok(1.5));
        let e = parse_headroom("50").unwrap_err();
        assert!(e.contains("`50%`"), "{e}");
        assert!(parse_headroom("-5%").is_err());
    }

    #[test]
    fn the_slo_is_printed_as_what_must_hold() {
        assert_eq!(must_hold("p99 > 200ms"), "p99 ≤ 200ms");
        assert_eq!(must_hold("errors > 5%"), "errors ≤ 5%");
        assert_eq!(
            must_hold("create-order p99 >= 1s"),
            "create-order p99 < 1000ms"
        );
    }

    #[test]
    fn exact_multiples_do_not_round_up() {
        assert_eq!(instances_for(1000.0, 0.3, 100.0), 13);
        assert_eq!(instances_for(1000.0, 0.0, 100.0), 10);
        assert_eq!(instances_for(1001.0, 0.0, 100.0), 11);
        assert_eq!(instances_for(1.0, 0.0, 100.0), 1);
    }

    #[test]
    fn a_run_that_is_not_a_drill_is_a_lower_bound() {
        let p = project(850.0, false, 1, 583_000.0, 0.3, None);
        assert_eq!(p.needed, 892); // 757,900 / 850 = 891.6
        assert!(render_projection(&p).contains("lower bound"));
    }
}
