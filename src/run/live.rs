//! The live view: an indicatif bar with the current second's numbers on a terminal; plain lines
//! every few seconds when stderr is not a terminal or with `--quiet`.

use crate::metrics::Point;
use crate::plan::{Plan, Segment};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub struct Live {
    closed: bool,
    bar: Option<ProgressBar>,
    every: u64,
    total_s: f64,
    errors: u64,
    requests: u64,
    /// The segment this process runs: its line shows its own share of the plan.
    segment: Segment,
    /// Every release's burst spread so far (µs): report.json's `generator.burst_ms`, live.
    burst: Histogram<u64>,
}

impl Live {
    pub fn new(quiet: bool, total_s: f64, plan: &Plan, segment: Segment) -> Live {
        let tty = std::io::stderr().is_terminal();
        let bar = if tty && !quiet {
            let b = ProgressBar::with_draw_target(
                Some((total_s.ceil() as u64).max(1)),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            b.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len}s {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            Some(b)
        } else {
            None
        };
        Live {
            closed: plan.model == crate::plan::Model::Closed,
            bar,
            every: if quiet { 10 } else { 5 },
            total_s,
            errors: 0,
            requests: 0,
            segment,
            burst: crate::metrics::recorder::new_histogram(),
        }
    }

    /// What the plan asks of this process this second: the whole plan's value, or for a segment
    /// its share of it (`10/s of 30/s (segment 2/3)`).
    fn planned(p: &Point, closed: bool, seg: Segment) -> String {
        let unit = |v: f64| {
            if closed {
                format!("{v:.0} users")
            } else {
                format!("{v:.0}/s")
            }
        };
        if seg.count <= 1 {
            return unit(p.planned_rate);
        }
        let share = if closed {
            seg.share_of((p.planned_rate + 1e-9).floor().max(0.0) as u64) as f64
        } else {
            p.planned_rate / seg.count as f64
        };
        format!(
            "{} of {} (segment {seg})",
            unit(share),
            unit(p.planned_rate)
        )
    }

    /// ` burst p99=Xms (N released)` once users were released together (a `wait` or
    /// rendezvous): how long after the release their requests were sent, p99 over the run so
    /// far.
    fn burst(b: &Histogram<u64>) -> String {
        if b.is_empty() {
            return String::new();
        }
        format!(
            " burst p99={:.1}ms ({} released)",
            b.value_at_quantile(0.99) as f64 / 1000.0,
            b.len()
        )
    }

    fn line(p: &Point, phase: &str, total_s: f64, closed: bool, seg: Segment) -> String {
        let err = if p.requests > 0 {
            100.0 * p.errors as f64 / p.requests as f64
        } else {
            0.0
        };
        format!(
            "t={:>4}s/{:.0}s phase={phase} planned={} started={}/s reqs={}/s in-flight={} p99={:.1}ms errors={:.2}%{}",
            p.t + 1,
            total_s,
            Self::planned(p, closed, seg),
            p.sessions_started,
            p.requests,
            p.in_flight,
            p.p99_ms,
            err,
            if p.dropped > 0 {
                format!(" DROPPED={}", p.dropped)
            } else {
                String::new()
            }
        ) + &Self::extras(p)
    }

    /// Steering and the target's water level, when there is any.
    fn extras(p: &Point) -> String {
        let mut s = String::new();
        if p.unstarted > 0 {
            s.push_str(&format!(" UNSTARTED={}", p.unstarted));
        }
        if p.rate_factor == 0.0 {
            s.push_str(" PAUSED");
        } else if (p.rate_factor - 1.0).abs() > 1e-9 {
            s.push_str(&format!(" rate×{}", crate::ops::fmt_num(p.rate_factor)));
        }
        for (n, v) in p.monitor.iter().filter(|(n, _)| !n.contains('@')) {
            s.push_str(&format!(
                " {n}={}",
                crate::ops::fmt_num((v * 10.0).round() / 10.0)
            ));
        }
        s
    }

    /// Is the interactive bar shown (a terminal, not --quiet)?
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// A completed second, with its releases' burst spread (µs).
    pub fn second(&mut self, p: &Point, plan: &Plan, burst: &Histogram<u64>) {
        let _ = self.burst.add(burst);
        self.errors += p.errors;
        self.requests += p.requests;
        let phase = plan
            .phases
            .get(plan.phase_index_at(p.t as f64 + 0.5))
            .map(|p| p.name.as_str())
            .unwrap_or("-");
        match &self.bar {
            Some(b) => b.set_message(
                Self::line(p, phase, self.total_s, self.closed, self.segment)
                    + &Self::burst(&self.burst),
            ),
            None => {
                if (p.t + 1).is_multiple_of(self.every) {
                    eprintln!(
                        "{}{}",
                        Self::line(p, phase, self.total_s, self.closed, self.segment),
                        Self::burst(&self.burst)
                    );
                }
            }
        }
    }

    pub fn tick(&mut self, elapsed_s: f64) {
        if let Some(b) = &self.bar {
            b.set_position((elapsed_s.max(0.0) as u64).min(self.total_s.ceil() as u64));
        }
    }

    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
