//! `flashcrowd compare BASE_DIR NEW_DIR`: two runs side by side, with verdicts that account for
//! run-to-run noise.
//!
//! Rows are per request name, clients merged (plus `(all)`), over the whole run and per phase the
//! two runs share. Each row carries rate, error rate, p50, p90, p99 and max with their change and
//! a 95 % bootstrap interval over whole seconds ([`stats`]); the row is *worse* when any judged
//! metric (rate, errors, p50, p90, p99) is worse with its whole interval beyond the practical
//! threshold (10 %, errors 0.1 percentage points). `max` is shown but not judged: one request
//! decides it.
//!
//! What is not judged, and why, is said: a phase with fewer than [`MIN_SECONDS`] whole seconds in
//! either run is "too short to judge" (a bootstrap over one or two seconds measures no noise);
//! the rate of two runs that planned different loads (another `--scale`, another plan) is not
//! compared, since the difference would be the plan's. `--fail-on` conditions use the gate's
//! threshold grammar with a change for the value ([`crate::gate::parse_change`]).

pub mod intervals;
pub mod stats;

use crate::report::model::Report;
use anyhow::{anyhow, bail, Context};
use intervals::TagSeconds;
use serde::Serialize;
use stats::{Buckets, Change, Scale, Second, Stat, Verdict};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Relative changes of latency and rate smaller than this are "same", significant or not. The
/// bootstrap sees the noise within a run, not the drift between runs (another process on the
/// machine, a warmer cache): two runs of one scenario against one target on a loaded 2-core
/// machine differed by up to 6 % on p90, so 10 % keeps such drift from crying wolf.
pub const PRACTICAL: f64 = 0.10;
/// Error-rate changes smaller than this (0.1 percentage points) are "same".
pub const PRACTICAL_ERRORS: f64 = 0.001;
/// A phase is judged only when both runs have at least this many whole seconds in it.
pub const MIN_SECONDS: usize = 5;
/// Planned rates that differ by more than this (relative) make the runs' plans different.
pub const PLAN_TOLERANCE: f64 = 0.01;
pub const ALL: &str = "(all)";
pub const WHOLE: &str = "(run)";

/// A run directory as compare reads it.
pub struct RunData {
    pub dir: PathBuf,
    pub report: Report,
    pub tags: Vec<TagSeconds>,
    /// `--scale` from state.json, when the run directory has one.
    pub scale: Option<f64>,
}

pub fn load(dir: &Path) -> anyhow::Result<RunData> {
    if !dir.is_dir() {
        bail!("{} is not a run directory", dir.display());
    }
    let r = crate::report::load(dir)?;
    let tags = intervals::read(dir)?;
    let scale = crate::report::state::read(dir).ok().map(|s| s.scale);
    Ok(RunData {
        dir: dir.to_path_buf(),
        report: r.report,
        tags,
        scale,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    pub metric: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// Relative change (new / base − 1) for latency and rate; percentage points / 100 for errors.
    pub change: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub significant: bool,
    pub verdict: Verdict,
    /// False for `max`: shown, not judged.
    pub judged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub request: String,
    pub phase: String,
    pub verdict: Verdict,
    /// False when the phase is too short to judge (`note` says so; `metrics` is empty).
    pub judged: bool,
    /// Whole seconds in the base and the new run.
    pub seconds: [usize; 2],
    pub note: Option<String>,
    pub metrics: Vec<MetricRow>,
}

impl Row {
    pub fn metric(&self, m: &str) -> Option<&MetricRow> {
        self.metrics.iter().find(|x| x.metric == m)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FailOnResult {
    pub expr: String,
    pub holds: bool,
    /// The change, in the condition's unit (`%` or `pp`).
    pub observed: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub unit: &'static str,
    pub significant: bool,
    /// Why the condition could not be judged (a phase too short, a rate of different plans).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base_dir: String,
    pub new_dir: String,
    pub base_scenario: String,
    pub new_scenario: String,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
    pub practical_threshold: f64,
    pub practical_threshold_errors_pp: f64,
    pub rows_by: &'static str,
    pub verdict: Verdict,
    pub min_seconds: usize,
    /// Why rates are not compared (the runs planned different loads), or None.
    pub rate_not_compared: Option<String>,
    pub rows: Vec<Row>,
    pub fail_on: Vec<FailOnResult>,
    pub notes: Vec<String>,
}

/// The seconds of `tags` named `name` (None: all) within `[t0, t1)`, over the run's `secs`
/// (seconds without such requests count as empty). `errors`: per-second errors when known.
fn seconds(
    tags: &[TagSeconds],
    name: Option<&str>,
    secs: &[u64],
    b: &Buckets,
    errors: Option<&BTreeMap<u64, u64>>,
) -> Vec<Second> {
    secs.iter()
        .map(|t| {
            let mut m: BTreeMap<u32, u64> = BTreeMap::new();
            let mut s = Second::default();
            for tag in tags.iter().filter(|g| name.is_none_or(|n| g.name == n)) {
                if let Some(iv) = tag.seconds.get(t) {
                    for (v, c) in &iv.values {
                        *m.entry(b.index(*v)).or_insert(0) += c;
                    }
                    s.total += iv.total;
                    s.max_us = s.max_us.max(iv.max_us);
                }
            }
            s.counts = m.into_iter().collect();
            s.errors = errors.and_then(|e| e.get(t)).copied().unwrap_or(0);
            s
        })
        .collect()
}

/// Every second of a run, and the seconds of each phase (by the middle of the second).
fn run_seconds(r: &RunData) -> Vec<u64> {
    let mut s: Vec<u64> = r
        .tags
        .iter()
        .flat_map(|t| t.seconds.keys().copied())
        .chain(r.report.series.iter().map(|p| p.t))
        .collect();
    s.sort();
    s.dedup();
    s
}

/// Second `t` lies wholly within the phase (a second split between two phases is in neither).
fn in_phase(r: &Report, phase: &str, t: u64) -> bool {
    r.phases
        .iter()
        .find(|p| p.name == phase)
        .is_some_and(|p| t as f64 >= p.start_s - 1e-6 && t as f64 + 1.0 <= p.end_s + 1e-6)
}

/// Why the two runs' rates cannot be compared: they planned different loads. None when alike.
fn plans_differ(base: &RunData, new: &RunData) -> Option<String> {
    let (b, n) = (&base.report, &new.report);
    let planned = |r: &Report| -> f64 { r.series.iter().map(|p| p.planned_rate).sum() };
    let started = |r: &Report| -> String {
        let p = planned(r);
        if p > 0.0 {
            format!("{:.0}%", 100.0 * r.totals.sessions_started as f64 / p)
        } else {
            "-".into()
        }
    };
    let differ = |x: f64, y: f64| (x - y).abs() > PLAN_TOLERANCE * x.abs().max(y.abs());
    let mut why = Vec::new();
    if let (Some(x), Some(y)) = (base.scale, new.scale) {
        if differ(x, y) {
            why.push(format!(
                "base ran at --scale {}, new at --scale {}",
                crate::report::chart::fmt_value(x),
                crate::report::chart::fmt_value(y)
            ));
        }
    }
    let pb: Vec<(&str, f64)> = b
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.planned_rate))
        .collect();
    let pn: Vec<(&str, f64)> = n
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.planned_rate))
        .collect();
    if let Some((name, x, y)) = pb.iter().find_map(|(name, x)| {
        pn.iter()
            .find(|(m, _)| m == name)
            .filter(|(_, y)| differ(*x, *y))
            .map(|(_, y)| (*name, *x, *y))
    }) {
        why.push(format!(
            "phase `{name}` planned {}/s in base, {}/s in new",
            crate::report::chart::fmt_value(x),
            crate::report::chart::fmt_value(y)
        ));
    } else if why.is_empty() && differ(planned(b), planned(n)) {
        why.push(format!(
            "base planned {} arrivals, new {}",
            crate::report::chart::fmt_value(planned(b)),
            crate::report::chart::fmt_value(planned(n))
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "rate not compared: the runs planned different loads ({}), so a rate change would be the plan's, not the target's; sessions started of those planned: base {}, new {}",
            why.join("; "),
            started(b),
            started(n)
        )
    })
}

fn names(r: &RunData) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &r.tags {
        if !out.contains(&t.name) {
            out.push(t.name.clone());
        }
    }
    out
}

/// Errors and requests of request `name` over the whole run (report.json rows, clients merged).
fn named_errors(r: &Report, name: &str) -> (u64, u64) {
    r.requests
        .iter()
        .filter(|q| q.name == name)
        .fold((0, 0), |(e, n), q| (e + q.error_count(), n + q.count))
}

/// A difference of two proportions with a 95 % interval (Agresti–Caffo: one success and one
/// failure added to each side for the spread, so 0 % → 100 % still has a width).
fn proportions(b: (u64, u64), n: (u64, u64)) -> Option<Change> {
    if b.1 == 0 || n.1 == 0 {
        return None;
    }
    let (p1, p2) = (b.0 as f64 / b.1 as f64, n.0 as f64 / n.1 as f64);
    let ac = |x: u64, k: u64| (x as f64 + 1.0) / (k as f64 + 2.0);
    let (q1, q2) = (ac(b.0, b.1), ac(n.0, n.1));
    let se = (q1 * (1.0 - q1) / (b.1 as f64 + 2.0) + q2 * (1.0 - q2) / (n.1 as f64 + 2.0)).sqrt();
    let d = p2 - p1;
    Some(Change {
        base: p1,
        new: p2,
        delta: d,
        lo: d - 1.96 * se,
        hi: d + 1.96 * se,
    })
}

fn metric_row(
    name: &'static str,
    c: Option<Change>,
    practical: f64,
    higher_is_worse: bool,
    judged: bool,
) -> MetricRow {
    match c {
        Some(c) => MetricRow {
            metric: name,
            base: Some(c.base),
            new: Some(c.new),
            change: Some(c.delta),
            ci_low: Some(c.lo),
            ci_high: Some(c.hi),
            significant: c.significant(),
            verdict: stats::verdict(&c, practical, higher_is_worse),
            judged,
        },
        None => MetricRow {
            metric: name,
            base: None,
            new: None,
            change: None,
            ci_low: None,
            ci_high: None,
            significant: false,
            verdict: Verdict::Same,
            judged,
        },
    }
}

/// Compares two runs (no `--fail-on` yet: see [`apply_fail_on`]).
pub fn compare(base: &RunData, new: &RunData) -> Comparison {
    let mut notes = Vec::new();
    let mut values: Vec<u64> = base
        .tags
        .iter()
        .chain(&new.tags)
        .flat_map(|t| {
            t.seconds
                .values()
                .flat_map(|i| i.values.iter().map(|v| v.0))
        })
        .collect();
    values.sort();
    values.dedup();
    let b = Buckets { values };
    let (sb, sn) = (run_seconds(base), run_seconds(new));
    let errs = |r: &RunData| -> BTreeMap<u64, u64> {
        r.report.series.iter().map(|p| (p.t, p.errors)).collect()
    };
    let (eb, en) = (errs(base), errs(new));

    let (nb, nn) = (names(base), names(new));
    let common: Vec<String> = nb.iter().filter(|n| nn.contains(n)).cloned().collect();
    for n in nb.iter().filter(|n| !nn.contains(n)) {
        notes.push(format!("request `{n}` is only in the base run"));
    }
    for n in nn.iter().filter(|n| !nb.contains(n)) {
        notes.push(format!("request `{n}` is only in the new run"));
    }
    let mut request_names: Vec<Option<String>> = vec![None];
    if common.len() > 1 || nb.len() != common.len() || nn.len() != common.len() {
        request_names.extend(common.iter().cloned().map(Some));
    } else if common.len() == 1 {
        notes.push(format!(
            "one request name (`{}`): its rows are the `(all)` rows",
            common[0]
        ));
    }
    let mut phases: Vec<Option<String>> = vec![None];
    let pb: Vec<&str> = base.report.phases.iter().map(|p| p.name.as_str()).collect();
    let pn: Vec<&str> = new.report.phases.iter().map(|p| p.name.as_str()).collect();
    if pb.len() > 1 || pn.len() > 1 {
        phases.extend(
            pb.iter()
                .filter(|p| pn.contains(p))
                .map(|p| Some(p.to_string())),
        );
    }
    if base.report.scenario.sha256 != new.report.scenario.sha256 {
        notes.push("the two runs ran different scenario files (sha256 differs)".into());
    }
    let rate_not_compared = plans_differ(base, new);

    let mut rows = Vec::new();
    for phase in &phases {
        let pick = |r: &RunData, all: &[u64]| -> Vec<u64> {
            all.iter()
                .copied()
                .filter(|t| phase.as_deref().is_none_or(|p| in_phase(&r.report, p, *t)))
                .collect()
        };
        let (tb, tn) = (pick(base, &sb), pick(new, &sn));
        if tb.len() < MIN_SECONDS || tn.len() < MIN_SECONDS {
            rows.push(Row {
                request: ALL.into(),
                phase: phase.clone().unwrap_or_else(|| WHOLE.into()),
                verdict: Verdict::Same,
                judged: false,
                seconds: [tb.len(), tn.len()],
                note: Some(format!(
                    "too short to judge: {} whole second(s) in base, {} in new (needs {MIN_SECONDS})",
                    tb.len(),
                    tn.len()
                )),
                metrics: Vec::new(),
            });
            continue;
        }
        for name in &request_names {
            let all = name.is_none();
            let xb = seconds(&base.tags, name.as_deref(), &tb, &b, all.then_some(&eb));
            let xn = seconds(&new.tags, name.as_deref(), &tn, &b, all.then_some(&en));
            let boot =
                |stat: Stat, scale: Scale| stats::bootstrap(stat, scale, &b, &xb, &xn, stats::SEED);
            let sum = |x: &[Second]| {
                x.iter()
                    .fold((0, 0), |(e, n), s| (e + s.errors, n + s.total))
            };
            let errors = if all {
                // Every second alike in both runs (0 % → 100 %) gives the bootstrap no width:
                // the proportions' interval still has one.
                boot(Stat::ErrorRate, Scale::Absolute)
                    .filter(|c| c.hi > c.lo || c.delta == 0.0)
                    .or_else(|| proportions(sum(&xb), sum(&xn)))
            } else if phase.is_none() {
                let n = name.as_deref().unwrap_or_default();
                proportions(named_errors(&base.report, n), named_errors(&new.report, n))
            } else {
                None
            };
            let metrics = vec![
                metric_row(
                    "rate",
                    boot(Stat::Rate, Scale::Relative),
                    PRACTICAL,
                    false,
                    rate_not_compared.is_none(),
                ),
                metric_row("errors", errors, PRACTICAL_ERRORS, true, true),
                metric_row(
                    "p50",
                    boot(Stat::Quantile(0.5), Scale::Relative),
                    PRACTICAL,
                    true,
                    true,
                ),
                metric_row(
                    "p90",
                    boot(Stat::Quantile(0.9), Scale::Relative),
                    PRACTICAL,
                    true,
                    true,
                ),
                metric_row(
                    "p99",
                    boot(Stat::Quantile(0.99), Scale::Relative),
                    PRACTICAL,
                    true,
                    true,
                ),
                metric_row(
                    "max",
                    boot(Stat::Max, Scale::Relative),
                    PRACTICAL,
                    true,
                    false,
                ),
            ];
            let judged = metrics.iter().filter(|m| m.judged);
            let verdict = if judged.clone().any(|m| m.verdict == Verdict::Worse) {
                Verdict::Worse
            } else if judged.clone().any(|m| m.verdict == Verdict::Better) {
                Verdict::Better
            } else {
                Verdict::Same
            };
            rows.push(Row {
                request: name.clone().unwrap_or_else(|| ALL.into()),
                phase: phase.clone().unwrap_or_else(|| WHOLE.into()),
                verdict,
                judged: true,
                seconds: [tb.len(), tn.len()],
                note: None,
                metrics,
            });
        }
    }
    let verdict = if rows.iter().any(|r| r.verdict == Verdict::Worse) {
        Verdict::Worse
    } else if rows.iter().any(|r| r.verdict == Verdict::Better) {
        Verdict::Better
    } else {
        Verdict::Same
    };
    Comparison {
        base_dir: base.dir.display().to_string(),
        new_dir: new.dir.display().to_string(),
        base_scenario: base.report.scenario.name.clone(),
        new_scenario: new.report.scenario.name.clone(),
        confidence: stats::CONFIDENCE,
        resamples: stats::RESAMPLES,
        seed: stats::SEED,
        practical_threshold: PRACTICAL,
        practical_threshold_errors_pp: PRACTICAL_ERRORS * 100.0,
        rows_by: "request name (clients merged) × phase",
        verdict,
        min_seconds: MIN_SECONDS,
        rate_not_compared,
        rows,
        fail_on: Vec::new(),
        notes,
    }
}

/// A `--fail-on` condition: the gate's threshold grammar, `[REQUEST] METRIC OP CHANGE [during
/// PHASE]`, CHANGE `+10%` (latency, rate: relative) or `+0.1pp` (errors: percentage points).
pub type FailOn = crate::gate::Threshold;

pub fn parse_fail_on(src: &str) -> Result<FailOn, String> {
    crate::gate::parse_change(src).map_err(|e| format!("`{src}`: {e}"))
}

/// Evaluates the conditions. One holds when its whole interval lies beyond the limit (`> +10%`:
/// the interval's low end is above +10 %), so a change that merely might be that large does not
/// fail a build; and never on a row too short to judge or a metric not compared.
/// Err when a condition names a row the comparison does not have.
pub fn apply_fail_on(c: &mut Comparison, conds: &[FailOn]) -> anyhow::Result<()> {
    use crate::gate::{Op, Selector};
    for f in conds {
        let req = match &f.selector {
            Selector::Request(r) => r.as_str(),
            _ => ALL,
        };
        let named = req != ALL;
        let phase = f.phase.as_deref().unwrap_or(WHOLE);
        let row = c
            .rows
            .iter()
            .find(|r| r.request == req && r.phase == phase)
            .or_else(|| {
                // One request name, or a phase too short to judge: the (all) row stands for it.
                c.rows
                    .iter()
                    .find(|r| r.phase == phase && r.request == ALL)
                    .filter(|r| !r.judged || (named && c.rows.iter().all(|x| x.request == ALL)))
            })
            .ok_or_else(|| {
                anyhow!(
                    "--fail-on `{}`: no row for request `{req}` in phase `{phase}`",
                    f.source
                )
            })?;
        let metric = f.metric.name();
        let unit = if metric == "errors" { "pp" } else { "%" };
        let m = row.metric(metric);
        let note = if !row.judged {
            row.note.clone()
        } else if metric == "rate" && c.rate_not_compared.is_some() {
            c.rate_not_compared.clone()
        } else {
            None
        };
        let pct = |v: Option<f64>| v.map(|d| d * 100.0);
        let (observed, lo, hi) = match m {
            Some(m) => (pct(m.change), pct(m.ci_low), pct(m.ci_high)),
            None => (None, None, None),
        };
        let significant = m.is_some_and(|m| m.significant);
        let bound = match f.op {
            Op::Gt | Op::Ge => lo,
            Op::Lt | Op::Le => hi,
        };
        let holds = note.is_none() && significant && bound.is_some_and(|b| f.op.holds(b, f.value));
        c.fail_on.push(FailOnResult {
            expr: f.source.clone(),
            holds,
            observed,
            ci_low: lo,
            ci_high: hi,
            unit,
            significant,
            note,
        });
    }
    Ok(())
}

fn fmt_value(metric: &str, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) => match metric {
            "rate" => format!("{v:.1}/s"),
            "errors" => format!("{:.2}%", v * 100.0),
            _ => crate::report::summary::fmt_ms(v),
        },
    }
}

fn fmt_change(metric: &str, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if metric == "errors" => format!("{:+.2}pp", v * 100.0),
        Some(v) => format!("{:+.1}%", v * 100.0),
    }
}

fn fmt_ci(m: &MetricRow) -> String {
    match (m.ci_low, m.ci_high) {
        (Some(a), Some(b)) => format!(
            "[{}, {}]",
            fmt_change(m.metric, Some(a)),
            fmt_change(m.metric, Some(b))
        ),
        _ => "-".into(),
    }
}

fn verdict_text(m: &MetricRow) -> String {
    if !m.judged {
        "(not judged)".into()
    } else if m.change.is_none() {
        "-".into()
    } else {
        m.verdict.name().into()
    }
}

/// The table's cells: request, phase, metric, base, new, change, CI, verdict.
fn cells(c: &Comparison) -> Vec<[String; 8]> {
    let mut out = Vec::new();
    for r in &c.rows {
        if !r.judged {
            let mut line: [String; 8] = Default::default();
            line[0] = r.request.clone();
            line[1] = r.phase.clone();
            line[7] = format!("too short ({} s / {} s)", r.seconds[0], r.seconds[1]);
            out.push(line);
            continue;
        }
        for (i, m) in r.metrics.iter().enumerate() {
            out.push([
                if i == 0 {
                    r.request.clone()
                } else {
                    String::new()
                },
                if i == 0 {
                    r.phase.clone()
                } else {
                    String::new()
                },
                m.metric.to_string(),
                fmt_value(m.metric, m.base),
                fmt_value(m.metric, m.new),
                fmt_change(m.metric, m.change),
                fmt_ci(m),
                verdict_text(m),
            ]);
        }
    }
    out
}

const HEAD: [&str; 8] = [
    "request", "phase", "metric", "base", "new", "change", "95% CI", "verdict",
];

fn method_note(c: &Comparison) -> String {
    format!(
        "Confidence {:.0}%: bootstrap over whole seconds of latency.hlog ({} resamples, seed {:#x}); a change counts only when its interval excludes zero and lies wholly beyond {:.0}% (errors: {}pp). Rows: {}. max is shown, not judged.",
        c.confidence * 100.0,
        c.resamples,
        c.seed,
        c.practical_threshold * 100.0,
        c.practical_threshold_errors_pp,
        c.rows_by
    )
}

/// One verdict line per row that is not the same, with only the changes in its direction (a
/// WORSE row lists its regressions, never its improvements).
pub struct SummaryLine {
    pub verdict: Verdict,
    pub request: String,
    pub phase: String,
    pub changes: Vec<String>,
}

/// What changed, for the short summary: rows worse first, then better.
pub fn changed(c: &Comparison) -> Vec<SummaryLine> {
    let mut out: Vec<SummaryLine> = c
        .rows
        .iter()
        .filter(|r| r.judged && r.verdict != Verdict::Same)
        .map(|r| SummaryLine {
            verdict: r.verdict,
            request: r.request.clone(),
            phase: r.phase.clone(),
            changes: r
                .metrics
                .iter()
                .filter(|m| m.judged && m.verdict == r.verdict)
                .map(|m| {
                    format!(
                        "{} {} → {} ({}, 95% CI {})",
                        m.metric,
                        fmt_value(m.metric, m.base),
                        fmt_value(m.metric, m.new),
                        fmt_change(m.metric, m.change),
                        fmt_ci(m)
                    )
                })
                .collect(),
        })
        .collect();
    out.sort_by_key(|l| std::cmp::Reverse(l.verdict));
    out
}

/// The phases too short to judge: `rise (2 s), decay (1 s)`.
fn too_short(c: &Comparison) -> Option<String> {
    let list: Vec<String> = c
        .rows
        .iter()
        .filter(|r| !r.judged)
        .map(|r| format!("{} ({} s / {} s)", r.phase, r.seconds[0], r.seconds[1]))
        .collect();
    (!list.is_empty()).then(|| {
        format!(
            "too short to judge (whole seconds base / new; a phase needs {} in both): {}",
            c.min_seconds,
            list.join(", ")
        )
    })
}

/// A --fail-on result in words: `✓ --fail-on `p99 > +10% during peak`: observed +3.1% [-2.0%,
/// +8.4%], not beyond +10%`.
fn fail_on_text(f: &FailOnResult) -> String {
    let n = |v: f64| format!("{v:+.1}{}", f.unit);
    let obs = match (f.observed, f.ci_low, f.ci_high) {
        (Some(o), Some(l), Some(h)) => format!("observed {} (95% CI [{}, {}])", n(o), n(l), n(h)),
        (Some(o), _, _) => format!("observed {}", n(o)),
        _ => "nothing measured".into(),
    };
    let verdict = if let Some(why) = &f.note {
        format!("not judged: {why}")
    } else if f.holds {
        "the whole interval is beyond the limit: FAILED".into()
    } else if !f.significant {
        "not significant: passed".into()
    } else {
        "not wholly beyond the limit: passed".into()
    };
    format!(
        "{} --fail-on `{}`: {obs}; {verdict}",
        if f.holds { "✗" } else { "✓" },
        f.expr
    )
}

/// The terminal output: by default a short summary — what changed, with the verdict; with
/// `verbose`, every row's table first.
pub fn render_text(c: &Comparison, verbose: bool) -> String {
    use crate::report::summary::display_width;
    let mut o = format!(
        "\n  compare  base {} ({})\n           new  {} ({})\n\n",
        c.base_dir, c.base_scenario, c.new_dir, c.new_scenario
    );
    if verbose {
        let rows = cells(c);
        let mut w = HEAD.map(display_width);
        for r in &rows {
            for (i, s) in r.iter().enumerate() {
                w[i] = w[i].max(display_width(s));
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::from(" ");
            for (i, x) in cells.iter().enumerate() {
                let pad = " ".repeat(w[i].saturating_sub(display_width(x)));
                if (3..7).contains(&i) {
                    s += &format!(" {pad}{x}");
                } else {
                    s += &format!(" {x}{pad}");
                }
            }
            s.trim_end().to_string() + "\n"
        };
        o += &line(&HEAD.map(String::from));
        for r in &rows {
            if !r[0].is_empty() {
                o.push('\n');
            }
            o += &line(r);
        }
        o.push('\n');
    }
    let lines = changed(c);
    if lines.is_empty() {
        o += "  no row changed beyond the noise and the 10% threshold\n";
    }
    for l in &lines {
        o += &format!(
            "  {} {} {}: {}\n",
            if l.verdict == Verdict::Worse {
                "✗"
            } else {
                "↑"
            },
            l.request,
            l.phase,
            l.verdict.name().to_uppercase()
        );
        for ch in &l.changes {
            o += &format!("      {ch}\n");
        }
    }
    if let Some(t) = too_short(c) {
        o += &format!("  {t}\n");
    }
    if let Some(r) = &c.rate_not_compared {
        o += &format!("  {r}\n");
    }
    for f in &c.fail_on {
        o += &format!("  {}\n", fail_on_text(f));
    }
    for n in &c.notes {
        o += &format!("  note: {n}\n");
    }
    let judged = c.rows.iter().filter(|r| r.judged).count();
    o += &format!(
        "  overall: {}  ({judged} row(s) judged{})\n",
        c.verdict.name().to_uppercase(),
        if verbose {
            String::new()
        } else {
            "; --verbose for every row".into()
        }
    );
    o += &format!("  {}\n", method_note(c));
    o
}

/// The summary's lines as plain text (shared by compare.md and compare.html).
fn summary_items(c: &Comparison) -> Vec<(Option<Verdict>, String)> {
    let mut out = Vec::new();
    for l in changed(c) {
        out.push((
            Some(l.verdict),
            format!(
                "{} {} {}: {}",
                l.request,
                l.phase,
                l.verdict.name().to_uppercase(),
                l.changes.join("; ")
            ),
        ));
    }
    if out.is_empty() {
        out.push((
            None,
            "no row changed beyond the noise and the 10% threshold".into(),
        ));
    }
    out.extend(too_short(c).map(|t| (None, t)));
    out.extend(c.rate_not_compared.clone().map(|t| (None, t)));
    for f in &c.fail_on {
        out.push((
            Some(if f.holds {
                Verdict::Worse
            } else {
                Verdict::Same
            }),
            fail_on_text(f),
        ));
    }
    out.extend(c.notes.iter().map(|n| (None, format!("note: {n}"))));
    out
}

pub fn render_md(c: &Comparison) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut o = format!(
        "# Comparison: {}\n\nBase `{}` ({}) → new `{}` ({}). Overall: **{}**.\n\n",
        esc(&c.new_scenario),
        c.base_dir,
        esc(&c.base_scenario),
        c.new_dir,
        esc(&c.new_scenario),
        c.verdict.name().to_uppercase()
    );
    for (_, line) in summary_items(c) {
        o += &format!("- {}\n", line.replace('`', "'"));
    }
    o += &format!(
        "\n## Every row\n\n| {} |\n|{}\n",
        HEAD.join(" | "),
        "---|".repeat(8)
    );
    for r in cells(c) {
        let r: Vec<String> = r.iter().map(|x| esc(x)).collect();
        o += &format!("| {} |\n", r.join(" | "));
    }
    o += &format!("\n{}\n", method_note(c));
    o
}

/// The charts of compare.html, as (id, chart).
pub fn charts(base: &RunData, new: &RunData) -> Vec<(&'static str, crate::report::charts::Lines)> {
    use crate::report::charts::{spectrum_x, Lines};
    let merged = |r: &RunData| {
        let mut h = crate::metrics::recorder::new_histogram();
        for t in &r.tags {
            for iv in t.seconds.values() {
                for (v, c) in &iv.values {
                    let _ = h.record_n(*v, *c);
                }
            }
        }
        h
    };
    let (hb, hn) = (merged(base), merged(new));
    let n = hb.len().max(hn.len()).max(10);
    let x_max = (n as f64).log10().clamp(2.0, 6.0);
    let spectrum = |h: &hdrhistogram::Histogram<u64>| -> Vec<(f64, f64)> {
        if h.is_empty() {
            return vec![];
        }
        (0..=200)
            .map(|i| {
                let x = x_max * i as f64 / 200.0;
                let q = 1.0 - 10f64.powf(-x);
                (x, h.value_at_quantile(q) as f64 / 1000.0)
            })
            .collect()
    };
    let _ = spectrum_x;
    let per_second =
        |r: &RunData, f: &dyn Fn(&hdrhistogram::Histogram<u64>) -> f64| -> Vec<(f64, f64)> {
            let mut by: BTreeMap<u64, hdrhistogram::Histogram<u64>> = BTreeMap::new();
            for t in &r.tags {
                for (s, iv) in &t.seconds {
                    let h = by
                        .entry(*s)
                        .or_insert_with(crate::metrics::recorder::new_histogram);
                    for (v, c) in &iv.values {
                        let _ = h.record_n(*v, *c);
                    }
                }
            }
            by.iter().map(|(s, h)| (*s as f64 + 0.5, f(h))).collect()
        };
    let x_end = |a: &[(f64, f64)], b: &[(f64, f64)]| {
        a.iter().chain(b).map(|p| p.0 + 0.5).fold(1.0, f64::max)
    };
    let rb = per_second(base, &|h| h.len() as f64);
    let rn = per_second(new, &|h| h.len() as f64);
    let p50b = per_second(base, &|h| h.value_at_quantile(0.5) as f64 / 1000.0);
    let p50n = per_second(new, &|h| h.value_at_quantile(0.5) as f64 / 1000.0);
    let p99b = per_second(base, &|h| h.value_at_quantile(0.99) as f64 / 1000.0);
    let p99n = per_second(new, &|h| h.value_at_quantile(0.99) as f64 / 1000.0);
    vec![
        (
            "spectrum",
            Lines {
                title: "Latency by percentile: base vs new".into(),
                x_label: "percentile (log scale: 1 in N requests above)".into(),
                y_label: "milliseconds".into(),
                lines: vec![
                    ("base".into(), spectrum(&hb)),
                    ("new".into(), spectrum(&hn)),
                ],
                fill_first: false,
                spectrum: true,
                x_end: x_max,
                phases: Vec::new(),
                x_ticks: Vec::new(),
            },
        ),
        (
            "rate",
            Lines {
                title: "Requests per second: base vs new".into(),
                x_label: "time since start".into(),
                y_label: "requests/s".into(),
                x_end: x_end(&rb, &rn),
                lines: vec![("base".into(), rb), ("new".into(), rn)],
                fill_first: false,
                spectrum: false,
                phases: base.report.phases.clone(),
                x_ticks: Vec::new(),
            },
        ),
        (
            "latency",
            Lines {
                title: "Latency over time: base vs new".into(),
                x_label: "time since start".into(),
                y_label: "milliseconds".into(),
                x_end: x_end(&p99b, &p99n),
                lines: vec![
                    ("base p50".into(), p50b),
                    ("new p50".into(), p50n),
                    ("base p99".into(), p99b),
                    ("new p99".into(), p99n),
                ],
                fill_first: false,
                spectrum: false,
                phases: base.report.phases.clone(),
                x_ticks: Vec::new(),
            },
        ),
    ]
}

pub fn render_html(c: &Comparison, base: &RunData, new: &RunData) -> anyhow::Result<String> {
    use crate::report::html::esc;
    let mut o = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>compare — {} — flashcrowd</title><style>\
body{{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}}main{{max-width:1080px;margin:0 auto;padding:24px}}\
table{{border-collapse:collapse;width:100%;background:#fff;font-size:13px}}th,td{{padding:5px 9px;border-bottom:1px solid #e6e8ec;text-align:right;white-space:nowrap}}\
th{{background:#eef0f4}}td:first-child,th:first-child,td.l{{text-align:left}}.worse{{color:#c62828;font-weight:700}}.better{{color:#2e7d32;font-weight:700}}\
figure{{background:#fff;margin:0 0 14px;padding:8px;border-radius:8px}}figure svg{{width:100%;height:auto;display:block}}.meta{{color:#5b6475;font-size:13px}}\
.verdict{{font-size:28px;font-weight:800;margin:4px 0 10px}}.verdict.same{{color:#37474f}}ul.summary{{background:#fff;border-radius:8px;padding:12px 12px 12px 32px;margin:0 0 16px}}\
ul.summary li{{margin:4px 0}}details{{margin:10px 0}}summary{{cursor:pointer;font-weight:600}}\
</style></head><body><main>\n<h1>Comparison: {}</h1><p class=\"meta\">base <code>{}</code> ({}) → new <code>{}</code> ({})</p>\n\
<p id=\"verdict\" class=\"verdict {}\">{}</p>\n<ul class=\"summary\" id=\"summary\">\n",
        esc(&c.new_scenario),
        esc(&c.new_scenario),
        esc(&c.base_dir),
        esc(&c.base_scenario),
        esc(&c.new_dir),
        esc(&c.new_scenario),
        c.verdict.name(),
        c.verdict.name().to_uppercase()
    );
    for (v, line) in summary_items(c) {
        let class = match v {
            Some(Verdict::Worse) => " class=\"worse\"",
            Some(Verdict::Better) => " class=\"better\"",
            _ => "",
        };
        o += &format!("<li{class}>{}</li>\n", esc(&line));
    }
    o += "</ul>\n<h2>Charts</h2>\n<p class=\"meta\">Base and new overlaid on one time axis; the bands are the base run's phases.</p>\n";
    for (id, ch) in charts(base, new) {
        o += &format!("<figure id=\"chart-{id}\">{}</figure>\n", ch.svg()?);
    }
    o += "<h2 id=\"rows\">Every row</h2>\n<table><tr>";
    for h in HEAD {
        o += &format!("<th>{}</th>", esc(h));
    }
    o += "</tr>\n";
    for r in &cells(c) {
        o += "<tr>";
        for (i, x) in r.iter().enumerate() {
            let class = if i == 7 && (x == "worse" || x == "better") {
                format!(" class=\"{x}\"")
            } else if i < 3 {
                " class=\"l\"".into()
            } else {
                String::new()
            };
            o += &format!("<td{class}>{}</td>", esc(x));
        }
        o += "</tr>\n";
    }
    o += "</table>\n";
    o += &format!("<p class=\"meta\">{}</p>\n", esc(&method_note(c)));
    o += "</main></body></html>\n";
    Ok(o)
}

/// Writes compare.md, compare.html and compare.json into `out`; the paths written.
pub fn write(
    c: &Comparison,
    base: &RunData,
    new: &RunData,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut json = serde_json::to_vec_pretty(c)?;
    json.push(b'\n');
    Ok(vec![
        crate::report::rundir::write_atomic(out, "compare.md", render_md(c).as_bytes())?,
        crate::report::rundir::write_atomic(
            out,
            "compare.html",
            render_html(c, base, new)?.as_bytes(),
        )?,
        crate::report::rundir::write_atomic(out, "compare.json", &json)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_uses_the_gate_grammar_with_a_change() {
        use crate::gate::{Metric, Op, Selector};
        let f = parse_fail_on("p99 > +10%").unwrap();
        assert_eq!((f.metric, f.op, f.value), (Metric::P99, Op::Gt, 10.0));
        assert_eq!(f.selector, Selector::All);
        let f = parse_fail_on("create-order p99 > +10% during peak").unwrap();
        assert_eq!(f.selector, Selector::Request("create-order".into()));
        assert_eq!(f.phase.as_deref(), Some("peak"));
        // The gate's tokenizer: no spaces needed around the operator.
        assert_eq!(parse_fail_on("p50>+20%").unwrap().value, 20.0);
        assert_eq!(parse_fail_on("errors > +0.1pp").unwrap().value, 0.1);
        assert_eq!(parse_fail_on("rate < -5%").unwrap().value, -5.0);
        let e = parse_fail_on("errors > +1%").unwrap_err();
        assert!(e.contains("percentage points"), "{e}");
        let e = parse_fail_on("p99 > 10").unwrap_err();
        assert!(e.contains("+10%"), "{e}");
        // The gate's did-you-mean and its errors' byte offsets.
        let e = parse_fail_on("p999 > +1%").unwrap_err();
        assert!(e.contains("at byte"), "{e}");
        assert!(parse_fail_on("p99 +10%").is_err());
        assert!(parse_fail_on("p95 > +10%")
            .unwrap_err()
            .contains("compare judges"));
        assert!(parse_fail_on("client:mobile p99 > +10%").is_err());
        assert!(parse_fail_on("p99 > +10% for 5s").is_err());
    }

    fn row(verdict: Verdict, metrics: Vec<MetricRow>) -> Row {
        Row {
            request: ALL.into(),
            phase: WHOLE.into(),
            verdict,
            judged: true,
            seconds: [10, 10],
            note: None,
            metrics,
        }
    }

    fn m(metric: &'static str, change: f64, lo: f64, hi: f64, verdict: Verdict) -> MetricRow {
        MetricRow {
            metric,
            base: Some(10.0),
            new: Some(10.0 * (1.0 + change)),
            change: Some(change),
            ci_low: Some(lo),
            ci_high: Some(hi),
            significant: lo > 0.0 || hi < 0.0,
            verdict,
            judged: true,
        }
    }

    fn comparison(rows: Vec<Row>) -> Comparison {
        Comparison {
            base_dir: "a".into(),
            new_dir: "b".into(),
            base_scenario: "s".into(),
            new_scenario: "s".into(),
            confidence: 0.95,
            resamples: 1000,
            seed: 1,
            practical_threshold: PRACTICAL,
            practical_threshold_errors_pp: 0.1,
            rows_by: "",
            verdict: Verdict::Worse,
            min_seconds: MIN_SECONDS,
            rate_not_compared: None,
            rows,
            fail_on: Vec::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_worse_row_lists_only_its_regressions() {
        let c = comparison(vec![row(
            Verdict::Worse,
            vec![
                m("p50", -0.278, -0.35, -0.20, Verdict::Better),
                m("p90", -0.212, -0.30, -0.15, Verdict::Better),
                m("p99", 0.75, 0.40, 1.10, Verdict::Worse),
            ],
        )]);
        let l = changed(&c);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].changes.len(), 1, "{:?}", l[0].changes);
        assert!(l[0].changes[0].starts_with("p99 "), "{:?}", l[0].changes);
        let text = render_text(&c, false);
        assert!(!text.contains("p50 ") && text.contains("+75.0%"), "{text}");
    }

    #[test]
    fn fail_on_needs_the_whole_interval_beyond_the_limit_and_shows_units() {
        let mut c = comparison(vec![row(
            Verdict::Worse,
            vec![
                m("p99", 0.179, 0.05, 0.30, Verdict::Same),
                m("p50", 0.20, 0.12, 0.28, Verdict::Worse),
            ],
        )]);
        let conds = [
            parse_fail_on("p99 > +10%").unwrap(),
            parse_fail_on("p50 > +10%").unwrap(),
        ];
        apply_fail_on(&mut c, &conds).unwrap();
        assert!(!c.fail_on[0].holds, "+17.9% but the interval reaches +5%");
        assert!(c.fail_on[1].holds);
        let text = render_text(&c, false);
        assert!(
            text.contains("observed +17.9% (95% CI [+5.0%, +30.0%])"),
            "{text}"
        );
    }

    #[test]
    fn a_zero_width_interval_is_not_significant() {
        let c = stats::Change {
            base: 4.92,
            new: 30.0,
            delta: 5.074,
            lo: 5.074,
            hi: 5.074,
        };
        assert!(!c.significant());
        assert_eq!(stats::verdict(&c, PRACTICAL, true), Verdict::Same);
        // 0 % → 100 % errors still has an interval.
        let p = proportions((0, 50), (50, 50)).unwrap();
        assert!(p.hi > p.lo && p.significant(), "{p:?}");
    }
}
