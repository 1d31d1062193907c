//! `flashcrowd plan`: print a scenario's load plan — phases, planned rate or users, expected
//! sessions and requests, the peak, a terminal chart — and optionally draw it as a PNG.
//!
//! It reads and compiles; it sends nothing. The arithmetic is `crate::plan`'s, the drawing
//! `crate::report::chart`'s; this file only puts them on the screen.

use super::{Failure, Outcome};
use crate::cli::PlanArgs;
use crate::plan::waits::grouped;
use crate::plan::{Model, Phase, Plan, PlanOptions};
use crate::report::chart::{self, fmt_time, fmt_value, Series};
use crate::scenario::model::Scenario;
use crate::scenario::units::parse_fraction;
use std::fmt::Write as _;

/// Columns of the terminal chart.
const CHART_WIDTH: usize = 60;
/// Rows of the terminal chart.
const CHART_HEIGHT: usize = 6;

pub fn plan(a: PlanArgs) -> Outcome {
    let factor = |flag: &str, v: &Option<String>| -> Result<f64, Failure> {
        match v {
            None => Ok(1.0),
            Some(s) => parse_fraction(s).map_err(|e| Failure::BadInput(format!("{flag}: {e}"))),
        }
    };
    let loaded = crate::scenario::load(&a.scenario, &a.opts.all_sets())
        .map_err(|d| Failure::BadInput(d.to_string()))?;
    let opts = PlanOptions {
        scale: factor("--scale", &a.opts.scale)?,
        time_scale: factor("--time-scale", &a.opts.time_scale)?,
        strict: a.opts.strict,
        ..PlanOptions::for_scenario(&loaded)
    };
    let plan = Plan::compile(&loaded.scenario.load, &opts)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", a.scenario.display())))?;

    for n in &plan.notes {
        println!("{n}");
    }
    print!("{}", render(&loaded.scenario, &plan, &a.opts));
    let warnings = wait_warnings(&loaded, &plan);
    if !warnings.is_empty() {
        println!();
    }
    for w in warnings {
        println!("{w}");
    }

    if let Some(png) = &a.png {
        let (series_name, y_label) = match plan.model {
            Model::Open => ("planned arrivals/s", "arrivals per second"),
            Model::Closed => ("planned users", "users"),
        };
        let series = [Series {
            name: series_name.into(),
            points: plan.curve().outline(120),
        }];
        let title = format!("{}: planned load", loaded.scenario.name);
        chart::rate_chart(png, &title, &series, &chart_phases(&plan), y_label)
            .map_err(|e| Failure::BadInput(format!("--png: {e:#}")))?;
        println!("\nchart written to {}", png.display());
    }
    Ok(0)
}

/// The phases to mark on a chart: a calendar's moments (each of its stretches as one band named
/// by the moment, `base` between them), else the plan's phases.
fn chart_phases(plan: &Plan) -> Vec<Phase> {
    if plan.moments().is_empty() {
        return plan.phases.clone();
    }
    let mut out: Vec<Phase> = Vec::new();
    for p in &plan.phases {
        let name = crate::scenario::validate::moment_of(&p.name).unwrap_or(&p.name);
        match out.last_mut() {
            Some(last) if last.name == name => last.end = p.end,
            _ => out.push(Phase {
                name: name.to_string(),
                start: p.start,
                end: p.end,
            }),
        }
    }
    out
}

/// A calendar's moments: when each comes (run time and the calendar's wall clock), its peak and
/// when its spike is over.
fn moments_table(plan: &Plan) -> String {
    let mut rows = vec![["moment", "at", "instant", "peak", "peak at", "over at"]
        .map(String::from)
        .to_vec()];
    for m in plan.moments() {
        rows.push(vec![
            m.name.clone(),
            fmt_time(m.at_s),
            m.instant
                .map(|i| i.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
                .unwrap_or_else(|| "-".into()),
            format!("{}/s", fmt_value(m.peak_rate)),
            fmt_time(m.peak_s),
            fmt_time(m.end_s),
        ]);
    }
    table(&rows)
}

/// The plan's warnings about its waits and rendezvous (`plan::waits`), each as
/// `warning: FILE:LINE: …` pointing at the step.
pub fn wait_warnings(loaded: &crate::scenario::Loaded, plan: &Plan) -> Vec<String> {
    use crate::scenario::spans::KeyPath;
    let spans = crate::scenario::spans::index(&loaded.source).ok();
    crate::plan::waits::warnings(&loaded.scenario, plan)
        .into_iter()
        .map(|w| {
            let path = KeyPath::root()
                .key("journeys")
                .key(&w.journey)
                .key("steps")
                .index(w.step);
            let line = spans
                .as_ref()
                .and_then(|s| s.nearest(&path))
                .map(|(sp, _)| format!(":{}", sp.key.unwrap_or(sp.value).line))
                .unwrap_or_default();
            format!("warning: {}{line}: {}", loaded.file.display(), w.message)
        })
        .collect()
}

/// The planned value at the start of a phase and just before its end: `300/s` or `300/s → 6000/s`.
fn span(plan: &Plan, start: f64, end: f64, unit: &str) -> String {
    let a = plan.value_at(start);
    let b = plan.curve().value_before(end);
    if fmt_value(a) == fmt_value(b) {
        format!("{}{unit}", fmt_value(a))
    } else {
        format!("{}{unit} → {}{unit}", fmt_value(a), fmt_value(b))
    }
}

/// Lays out rows of cells: the first column left-aligned, the others right-aligned.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let w = widths[c];
            if c == 0 {
                let _ = write!(line, "{cell:<w$}");
            } else {
                let _ = write!(line, "  {cell:>w$}");
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// What stream steps do per session, and each client's emulated network: one line each.
fn streams_and_networks(s: &Scenario) -> String {
    use crate::scenario::model::StreamKind;
    let mut out = String::new();
    for (cname, c) in &s.clients {
        if let Some(n) = &c.network {
            let _ = writeln!(out, "network   {cname}: {}", n.describe());
        }
    }
    for (jname, j) in &s.journeys {
        for st in &j.steps {
            let Some((kind, _)) = st.stream() else {
                continue;
            };
            let name = crate::scenario::request_name(st).unwrap_or_default();
            let what = match kind {
                StreamKind::Ws => {
                    let sends = match (&st.send, st.every, st.hold) {
                        (None, _, _) => "sends nothing".to_string(),
                        (Some(_), Some(e), Some(h)) if !e.0.is_zero() => {
                            let n = (h.0.as_secs_f64() / e.0.as_secs_f64() - 1e-9)
                                .ceil()
                                .max(1.0);
                            format!("sends {n} messages (on open and every {e})")
                        }
                        (Some(_), Some(e), None) => format!("sends on open and every {e}"),
                        (Some(_), _, _) => "sends 1 message on open".to_string(),
                    };
                    let hold = st.hold.map_or("until the server closes".to_string(), |h| {
                        format!("holds {h}")
                    });
                    format!("WebSocket, {sends}, {hold}")
                }
                StreamKind::Sse => {
                    let until = match &st.until {
                        Some(u) if u.event.is_some() => {
                            format!("until event `{}`", u.event.as_deref().unwrap_or_default())
                        }
                        Some(u) if u.events.is_some() => {
                            format!("until {} events", u.events.unwrap_or_default())
                        }
                        Some(u) if u.for_.is_some() => {
                            format!("for {}", u.for_.unwrap_or_default())
                        }
                        _ => "until the server ends it".to_string(),
                    };
                    format!("event stream, read {until}")
                }
            };
            let _ = writeln!(out, "stream    {name} ({jname}): {what} per session");
        }
    }
    out
}

/// The whole printout, without the PNG note.
fn render(s: &Scenario, plan: &Plan, opts: &crate::cli::ScenarioOpts) -> String {
    let mut out = String::new();
    let open = plan.model == Model::Open;
    let unit = if open { "/s" } else { "" };
    let _ = writeln!(out, "scenario  {}", s.name);
    if let Some(d) = &s.description {
        let _ = writeln!(out, "          {}", d.trim());
    }
    let arrivals = match plan.arrivals {
        crate::scenario::model::Arrivals::Poisson => "poisson",
        crate::scenario::model::Arrivals::Uniform => "uniform",
    };
    if s.load.replay.as_ref().is_some_and(|r| r.shape.is_none()) {
        let _ = writeln!(
            out,
            "model     open: each record is sent at its own time in the log, one request each"
        );
    } else if open {
        let _ = writeln!(
            out,
            "model     open: sessions arrive at planned instants ({arrivals}, seed {})",
            plan.seed
        );
    } else {
        let _ = writeln!(
            out,
            "model     closed: a planned number of users repeat their journeys (seed {})",
            plan.seed
        );
    }
    let mut scaled = Vec::new();
    if let Some(f) = &opts.scale {
        scaled.push(format!("rates and users × {f}"));
    }
    if let Some(f) = &opts.time_scale {
        scaled.push(format!("durations × {f}"));
    }
    if !scaled.is_empty() {
        let _ = writeln!(out, "scaled    {}", scaled.join(", "));
    }
    if let Some(m) = plan.max_users {
        let _ = writeln!(
            out,
            "cap       {} sessions in flight; arrivals beyond it are dropped",
            grouped(m as f64)
        );
    }
    if let Some(n) = plan.iterations {
        let what = match open {
            true => format!("{} sessions in all", grouped(n as f64)),
            false => format!("{} journeys per user", grouped(n as f64)),
        };
        let _ = writeln!(
            out,
            "iterations {what}; the run ends when they are done (at the latest when the plan does)"
        );
    }
    out.push('\n');

    let mut rows = vec![];
    let mut header: Vec<String> = ["phase", "start", "end"].map(String::from).to_vec();
    let mut per_session = vec![];
    if open {
        header.extend(["planned rate", "sessions", "requests"].map(String::from));
    } else {
        header.push("users".into());
    }
    rows.push(header);
    let (mut sessions, mut requests) = (0.0, 0.0);
    for ph in &plan.phases {
        let mut row = vec![ph.name.clone(), fmt_time(ph.start), fmt_time(ph.end)];
        let by_own_timing = s.load.replay.as_ref().is_some_and(|r| r.shape.is_none());
        if by_own_timing && ph.end > ph.start {
            // A log's own timing is no curve: its mean rate says more than its first second.
            let n = plan.expected_arrivals(ph.start, ph.end);
            row.push(format!("mean {}{unit}", fmt_value(n / (ph.end - ph.start))));
        } else {
            row.push(span(plan, ph.start, ph.end, unit));
        }
        if open {
            let n = plan.expected_arrivals(ph.start, ph.end);
            let k = crate::plan::waits::requests_per_session(s, &ph.name);
            per_session.push(k);
            sessions += n;
            requests += n * k;
            row.push(grouped(n));
            row.push(grouped(n * k));
        }
        rows.push(row);
    }
    let mut total = vec!["total".into(), fmt_time(0.0), fmt_time(plan.duration)];
    if open {
        total.extend([String::new(), grouped(sessions), grouped(requests)]);
    }
    rows.push(total);
    out += &table(&rows);
    out.push('\n');
    if !plan.moments().is_empty() {
        out += &moments_table(plan);
        out.push('\n');
    }

    let (peak, at) = plan.peak();
    let peak_unit = if open { "/s" } else { " users" };
    let _ = write!(
        out,
        "peak      {}{peak_unit} at {}",
        fmt_value(peak),
        fmt_time(at)
    );
    if let Some(sale) = plan.sale_start {
        let _ = write!(
            out,
            " ({} after the sale starts at {})",
            fmt_time(at - sale),
            fmt_time(sale)
        );
    }
    if let Some(m) = plan.moments().iter().find(|m| m.peak_s == at) {
        let _ = write!(
            out,
            " (the top of `{}`, {} after its instant)",
            m.name,
            fmt_time(at - m.at_s)
        );
    }
    out.push('\n');
    if open {
        let lo = per_session.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_session.iter().copied().fold(0.0, f64::max);
        if (hi - lo).abs() < 1e-9 {
            let _ = writeln!(out, "requests  {} per session", fmt_value(hi));
        } else {
            let _ = writeln!(
                out,
                "requests  {} to {} per session, by each phase's client mix",
                fmt_value(lo),
                fmt_value(hi)
            );
        }
    } else {
        let _ = writeln!(
            out,
            "requests  depend on response times (closed model: each user sends its next request when the last one is answered)"
        );
    }
    out += &streams_and_networks(s);
    out.push('\n');

    let width = CHART_WIDTH;
    let columns: Vec<f64> = (0..width)
        .map(|c| {
            let t0 = plan.duration * c as f64 / width as f64;
            let t1 = plan.duration * (c + 1) as f64 / width as f64;
            (plan.curve().cumulative(t1) - plan.curve().cumulative(t0)) / (t1 - t0)
        })
        .collect();
    out += &chart::text_chart(
        &columns,
        plan.duration,
        &chart_phases(plan),
        CHART_HEIGHT,
        peak,
        unit,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(1861374.339), "1,861,374");
    }
}
