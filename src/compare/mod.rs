//! `flashcrowd compare BASE_DIR NEW_DIR`: two runs side by side, with verdicts that account for
//! run-to-run noise.
//!
//! Rows are per request name, clients merged (plus `(all)`), over the whole run and per phase the
//! two runs share. Each row carries rate, error rate, p50, p90, p99 and max with their change and
//! a 95 % bootstrap interval over whole seconds ([`stats`]); the row is *worse* when any judged
//! metric (rate, errors, p50, p90, p99) is worse with its whole interval beyond the practical
//! threshold (10 %, errors 0.1 percentage points). `max` is shown but not judged: one request
//! decides it.

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
pub const ALL: &str = "(all)";
pub const WHOLE: &str = "(run)";

/// A run directory as compare reads it.
pub struct RunData {
    pub dir: PathBuf,
    pub report: Report,
    pub tags: Vec<TagSeconds>,
}

pub fn load(dir: &Path) -> anyhow::Result<RunData> {
    if !dir.is_dir() {
        bail!("{} is not a run directory", dir.display());
    }
    let r = crate::report::load(dir)?;
    let tags = intervals::read(dir)?;
    Ok(RunData {
        dir: dir.to_path_buf(),
        report: r.report,
        tags,
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
    pub observed: Option<f64>,
    pub significant: bool,
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

fn in_phase(r: &Report, phase: &str, t: u64) -> bool {
    r.phases
        .iter()
        .find(|p| p.name == phase)
        .is_some_and(|p| (t as f64 + 0.5) >= p.start_s && (t as f64 + 0.5) < p.end_s)
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

/// A difference of two proportions with a normal-approximation 95 % interval.
fn proportions(b: (u64, u64), n: (u64, u64)) -> Option<Change> {
    if b.1 == 0 || n.1 == 0 {
        return None;
    }
    let (p1, p2) = (b.0 as f64 / b.1 as f64, n.0 as f64 / n.1 as f64);
    let se = (p1 * (1.0 - p1) / b.1 as f64 + p2 * (1.0 - p2) / n.1 as f64).sqrt();
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

    let mut rows = Vec::new();
    for phase in &phases {
        let pick = |r: &RunData, all: &[u64]| -> Vec<u64> {
            all.iter()
                .copied()
                .filter(|t| phase.as_deref().is_none_or(|p| in_phase(&r.report, p, *t)))
                .collect()
        };
        let (tb, tn) = (pick(base, &sb), pick(new, &sn));
        if tb.is_empty() || tn.is_empty() {
            if let Some(p) = phase {
                notes.push(format!(
                    "phase `{p}` has no measured second in one of the runs"
                ));
            }
            continue;
        }
        for name in &request_names {
            let all = name.is_none();
            let xb = seconds(&base.tags, name.as_deref(), &tb, &b, all.then_some(&eb));
            let xn = seconds(&new.tags, name.as_deref(), &tn, &b, all.then_some(&en));
            let boot =
                |stat: Stat, scale: Scale| stats::bootstrap(stat, scale, &b, &xb, &xn, stats::SEED);
            let errors = if all {
                boot(Stat::ErrorRate, Scale::Absolute)
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
                    true,
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
        rows,
        fail_on: Vec::new(),
        notes,
    }
}

/// A `--fail-on` condition: `[REQUEST] METRIC OP CHANGE [during PHASE]`, CHANGE `+10%` (latency,
/// rate: relative) or `+0.1pp` (errors: percentage points).
#[derive(Debug, Clone, PartialEq)]
pub struct FailOn {
    pub expr: String,
    pub request: Option<String>,
    pub phase: Option<String>,
    pub metric: String,
    pub op: crate::gate::Op,
    /// Percent (relative) or percentage points (errors).
    pub value: f64,
}

pub fn parse_fail_on(src: &str) -> Result<FailOn, String> {
    use crate::gate::Op;
    let mut words: Vec<&str> = src.split_whitespace().collect();
    let mut phase = None;
    if let Some(i) = words.iter().position(|w| *w == "during") {
        let p = words[i + 1..].join(" ");
        if p.is_empty() {
            return Err(format!("`{src}`: `during` needs a phase name"));
        }
        phase = Some(p);
        words.truncate(i);
    }
    let op_at = words
        .iter()
        .position(|w| matches!(*w, ">" | ">=" | "<" | "<="))
        .ok_or_else(|| format!("`{src}`: expected [REQUEST] METRIC OP CHANGE, like `p99 > +10%` or `errors > +0.1pp`"))?;
    if op_at == 0 || op_at + 2 != words.len() {
        return Err(format!(
            "`{src}`: expected [REQUEST] METRIC OP CHANGE, like `create-order p99 > +10%`"
        ));
    }
    let metric = words[op_at - 1].to_string();
    let request = (op_at > 1).then(|| words[..op_at - 1].join(" "));
    let op = match words[op_at] {
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Le,
    };
    let v = words[op_at + 1];
    let errors = metric == "errors";
    if !["p50", "p90", "p99", "max", "rate", "errors"].contains(&metric.as_str()) {
        return Err(format!(
            "`{src}`: unknown metric `{metric}`; use p50, p90, p99, max, rate or errors"
        ));
    }
    let (num, unit_ok) = if let Some(n) = v.strip_suffix("pp") {
        (n, errors)
    } else if let Some(n) = v.strip_suffix('%') {
        (n, !errors)
    } else {
        (v, false)
    };
    if !unit_ok {
        return Err(format!(
            "`{src}`: the change `{v}` needs a unit: `%` for {metric} (relative), `pp` for errors (percentage points), like `+10%` or `+0.1pp`"
        ));
    }
    let value: f64 = num
        .trim_start_matches('+')
        .parse()
        .map_err(|_| format!("`{src}`: `{v}` is not a number"))?;
    Ok(FailOn {
        expr: src.to_string(),
        request,
        phase,
        metric,
        op,
        value,
    })
}

/// Evaluates the conditions: one holds when its row's change satisfies it and is significant.
/// Err when a condition names a row the comparison does not have.
pub fn apply_fail_on(c: &mut Comparison, conds: &[FailOn]) -> anyhow::Result<()> {
    for f in conds {
        let req = f.request.as_deref().unwrap_or(ALL);
        let phase = f.phase.as_deref().unwrap_or(WHOLE);
        let row = c
            .rows
            .iter()
            .find(|r| r.request == req && r.phase == phase)
            .or_else(|| {
                // One request name: its rows are the (all) rows.
                (f.request.is_some() && c.rows.iter().all(|r| r.request == ALL))
                    .then(|| c.rows.iter().find(|r| r.phase == phase))
                    .flatten()
            })
            .ok_or_else(|| {
                anyhow!(
                    "--fail-on `{}`: no row for request `{req}` in phase `{phase}`",
                    f.expr
                )
            })?;
        let m = row.metric(&f.metric).context("metric")?;
        let observed = m.change.map(|d| d * 100.0);
        let holds = observed.is_some_and(|o| f.op.holds(o, f.value)) && m.significant;
        c.fail_on.push(FailOnResult {
            expr: f.expr.clone(),
            holds,
            observed,
            significant: m.significant,
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

/// The terminal table.
pub fn render_text(c: &Comparison) -> String {
    use crate::report::summary::display_width;
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
    let mut o = format!(
        "\n  compare  base {} ({})\n           new  {} ({})\n\n",
        c.base_dir, c.base_scenario, c.new_dir, c.new_scenario
    );
    o += &line(&HEAD.map(String::from));
    for r in &rows {
        if !r[0].is_empty() {
            o.push('\n');
        }
        o += &line(r);
    }
    o.push('\n');
    for r in &c.rows {
        let why: Vec<String> = r
            .metrics
            .iter()
            .filter(|m| m.judged && m.verdict != Verdict::Same)
            .map(|m| format!("{} {}", m.metric, fmt_change(m.metric, m.change)))
            .collect();
        o += &format!(
            "  {} {} {}: {}{}\n",
            match r.verdict {
                Verdict::Worse => "✗",
                Verdict::Better => "↑",
                Verdict::Same => "=",
            },
            r.request,
            r.phase,
            r.verdict.name().to_uppercase(),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join(", "))
            }
        );
    }
    for f in &c.fail_on {
        o += &format!(
            "  {} --fail-on `{}`: observed {}{}\n",
            if f.holds { "✗" } else { "✓" },
            f.expr,
            f.observed
                .map(|v| format!("{v:+.2}"))
                .unwrap_or_else(|| "nothing".into()),
            if f.holds {
                " (significant): FAILED".to_string()
            } else if !f.significant {
                " (not significant)".to_string()
            } else {
                String::new()
            }
        );
    }
    for n in &c.notes {
        o += &format!("  note: {n}\n");
    }
    o += &format!(
        "  overall: {}\n  {}\n",
        c.verdict.name().to_uppercase(),
        method_note(c)
    );
    o
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
        c.verdict.name()
    );
    o += &format!("| {} |\n|{}\n", HEAD.join(" | "), "---|".repeat(8));
    for r in cells(c) {
        let r: Vec<String> = r.iter().map(|x| esc(x)).collect();
        o += &format!("| {} |\n", r.join(" | "));
    }
    o += "\n| request | phase | verdict |\n|---|---|---|\n";
    for r in &c.rows {
        o += &format!(
            "| {} | {} | **{}** |\n",
            esc(&r.request),
            esc(&r.phase),
            r.verdict.name()
        );
    }
    if !c.fail_on.is_empty() {
        o += "\n| --fail-on | observed | significant | result |\n|---|---|---|---|\n";
        for f in &c.fail_on {
            o += &format!(
                "| `{}` | {} | {} | {} |\n",
                esc(&f.expr),
                f.observed
                    .map(|v| format!("{v:+.2}"))
                    .unwrap_or_else(|| "-".into()),
                f.significant,
                if f.holds { "FAIL" } else { "pass" }
            );
        }
    }
    for n in &c.notes {
        o += &format!("\n- {}", esc(n));
    }
    o += &format!("\n\n{}\n", method_note(c));
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
</style></head><body><main>\n<h1>Comparison: {}</h1><p class=\"meta\">base <code>{}</code> ({}) → new <code>{}</code> ({}) · overall <b class=\"{}\">{}</b></p>\n",
        esc(&c.new_scenario),
        esc(&c.new_scenario),
        esc(&c.base_dir),
        esc(&c.base_scenario),
        esc(&c.new_dir),
        esc(&c.new_scenario),
        c.verdict.name(),
        c.verdict.name().to_uppercase()
    );
    o += "<table><tr>";
    for h in HEAD {
        o += &format!("<th>{}</th>", esc(h));
    }
    o += "</tr>\n";
    let rows = cells(c);
    for r in &rows {
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
    for f in &c.fail_on {
        o += &format!(
            "<p class=\"{}\">--fail-on <code>{}</code>: {}</p>\n",
            if f.holds { "worse" } else { "better" },
            esc(&f.expr),
            if f.holds { "FAILED" } else { "passed" }
        );
    }
    for n in &c.notes {
        o += &format!("<p class=\"meta\">note: {}</p>\n", esc(n));
    }
    o += &format!(
        "<p class=\"meta\">{}</p>\n<h2>Charts</h2>\n",
        esc(&method_note(c))
    );
    for (id, ch) in charts(base, new) {
        o += &format!("<figure id=\"chart-{id}\">{}</figure>\n", ch.svg()?);
    }
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
    fn fail_on_parses_selectors_units_and_phases() {
        let f = parse_fail_on("p99 > +10%").unwrap();
        assert_eq!(
            (f.metric.as_str(), f.value, f.request.clone()),
            ("p99", 10.0, None)
        );
        let f = parse_fail_on("create-order p99 > +10% during peak").unwrap();
        assert_eq!(f.request.as_deref(), Some("create-order"));
        assert_eq!(f.phase.as_deref(), Some("peak"));
        let f = parse_fail_on("errors > +0.1pp").unwrap();
        assert_eq!(f.value, 0.1);
        assert_eq!(parse_fail_on("rate < -5%").unwrap().value, -5.0);
        assert!(parse_fail_on("errors > +1%").is_err());
        assert!(parse_fail_on("p99 > 10").is_err());
        assert!(parse_fail_on("p42 > +1%").is_err());
        assert!(parse_fail_on("p99 +10%").is_err());
    }
}
