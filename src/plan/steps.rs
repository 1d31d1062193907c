//! `load.steps`: the capacity drill, an open model whose offered rate climbs in steps.
//!
//! Step k (1-based) offers `start + (k−1)·step` for `every`, for k = 1…K where K is the number of
//! steps from `start` to `max` inclusive. Phases are `step-1` … `step-K`, and `Plan::drill` lists
//! the steps. Stopping early on `stop_when` rules is the engine's decision, not the plan's (the
//! rules' grammar and names are checked with the other expressions in `scenario::validate`).

use super::curve::{Piece, Shape};
use super::source::LoadSource;
use super::{phase, secs, DrillStep, Model, PlanOptions, Shaped};
use crate::scenario::spans::KeyPath;
use crate::scenario::units::{format_rate, Dur, Rate};
use crate::scenario::Issue;
use serde::{Deserialize, Serialize};

/// More steps than this is surely a typo (a step of 1/s up to 20000/s).
pub const MAX_STEPS: u64 = 10_000;

/// Capacity drill: the offered rate climbs by `step` every `every` until `max` or a `stop_when` rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepDrill {
    pub start: Rate,
    pub step: Rate,
    pub every: Dur,
    pub max: Rate,
    #[serde(default)]
    pub stop_when: Vec<String>,
}

/// Steps of a drill from `start` to `max` inclusive (1 when the numbers make no drill; at most
/// `MAX_STEPS`).
fn drill_steps(start: f64, step: f64, max: f64) -> u64 {
    if !(step > 0.0 && max >= start) {
        return 1;
    }
    let k = ((max - start) / step + 1e-9).floor() + 1.0;
    if k.is_finite() {
        (k as u64).clamp(1, MAX_STEPS)
    } else {
        MAX_STEPS
    }
}

impl LoadSource for StepDrill {
    fn key(&self) -> &'static str {
        "steps"
    }

    fn check(&self, dp: &KeyPath, issues: &mut Vec<Issue>) {
        let d = self;
        if d.start.0 <= 0.0 {
            issues.push(Issue::at(
                dp.key("start"),
                "the drill's start rate must be above 0/s",
            ));
        }
        if d.step.0 <= 0.0 {
            issues.push(Issue::at(
                dp.key("step"),
                "the drill's step must be above 0/s",
            ));
        }
        if d.every.0.is_zero() {
            issues.push(Issue::at(
                dp.key("every"),
                "each drill step must last longer than 0s",
            ));
        }
        if d.max.0 < d.start.0 {
            issues.push(Issue::at(
                dp.key("max"),
                format!(
                    "max ({}) is below start ({})",
                    format_rate(d.max.0),
                    format_rate(d.start.0)
                ),
            ));
        } else if d.step.0 > 0.0 && (d.max.0 - d.start.0) / d.step.0 + 1.0 > MAX_STEPS as f64 {
            issues.push(
                Issue::at(
                    dp.key("step"),
                    format!("the drill would have more than {MAX_STEPS} steps"),
                )
                .help("use a larger step"),
            );
        }
    }

    fn phase_names(&self) -> Vec<String> {
        (1..=drill_steps(self.start.0, self.step.0, self.max.0))
            .map(|k| format!("step-{k}"))
            .collect()
    }

    fn compile(&self, opts: &PlanOptions) -> Result<Shaped, String> {
        compile(self, opts)
    }
}

pub(crate) fn compile(d: &StepDrill, opts: &PlanOptions) -> Result<Shaped, String> {
    let (start, step, max) = (d.start.0, d.step.0, d.max.0);
    if step <= 0.0 {
        return Err(format!(
            "load.steps.step is {}: it must be greater than zero, like 500/s",
            format_rate(step)
        ));
    }
    if max < start {
        return Err(format!(
            "load.steps.max ({}) is below start ({}): the drill climbs from start to max",
            format_rate(max),
            format_rate(start)
        ));
    }
    // Counted on the unscaled rates, so --scale changes the rates but never the schedule; the
    // tolerance keeps 500/s + 39·500/s = 20000/s the 40th step despite rounding.
    let k = ((max - start) / step + 1e-9).floor() as u64 + 1;
    if k > MAX_STEPS {
        return Err(format!(
            "load.steps would have {k} steps from {} to {} by {}: at most {MAX_STEPS}; use a larger step",
            format_rate(start),
            format_rate(max),
            format_rate(step)
        ));
    }
    let every = secs(d.every, opts);
    let mut pieces = Vec::with_capacity(k as usize);
    let mut phases = Vec::with_capacity(k as usize);
    let mut drill = Vec::with_capacity(k as usize);
    for i in 0..k {
        let rate = (start + i as f64 * step) * opts.scale;
        let (t0, t1) = (i as f64 * every, (i + 1) as f64 * every);
        pieces.push(Piece {
            t0,
            t1,
            shape: Shape::Const { v: rate },
        });
        phases.push(phase(format!("step-{}", i + 1), t0, t1));
        drill.push(DrillStep {
            offered_rate: rate,
            start: t0,
            end: t1,
        });
    }
    Ok(Shaped {
        model: Model::Open,
        pieces,
        phases,
        sale_start: None,
        drill: Some(drill),
        ..Shaped::default()
    })
}

#[cfg(test)]
mod tests {
    use crate::plan::StepDrill;
    use crate::plan::{DrillStep, Plan, PlanOptions, Segment};
    use crate::scenario::model::{Arrivals, Load};
    use crate::scenario::units::{Dur, Rate};
    use std::time::Duration;

    fn drill(start: f64, step: f64, every: u64, max: f64) -> Load {
        Load {
            steps: Some(StepDrill {
                start: Rate(start),
                step: Rate(step),
                every: Dur(Duration::from_secs(every)),
                max: Rate(max),
                stop_when: vec![],
            }),
            arrivals: Arrivals::Uniform,
            ..Load::default()
        }
    }

    #[test]
    fn design_drill_has_forty_thirty_second_steps() {
        let p = Plan::compile(&drill(500.0, 500.0, 30, 20000.0), &PlanOptions::default()).unwrap();
        let steps = p.drill.as_ref().unwrap();
        assert_eq!(steps.len(), 40);
        assert_eq!(p.phases.len(), 40);
        assert_eq!(p.phases[0].name, "step-1");
        assert_eq!(p.phases[39].name, "step-40");
        assert_eq!(
            steps[0],
            DrillStep {
                offered_rate: 500.0,
                start: 0.0,
                end: 30.0
            }
        );
        assert_eq!(
            steps[39],
            DrillStep {
                offered_rate: 20000.0,
                start: 1170.0,
                end: 1200.0
            }
        );
        assert_eq!(p.duration, 1200.0);
        assert_eq!(p.value_at(45.0), 1000.0);
        assert_eq!(p.phase_index_at(45.0), 1);
        assert_eq!(p.peak(), (20000.0, 1170.0));
        // 30 s · 500/s · (1 + 2 + … + 40)
        assert_eq!(p.expected_arrivals(0.0, 1200.0), 12_300_000.0);
    }

    #[test]
    fn max_between_steps_is_not_exceeded() {
        let p = Plan::compile(&drill(100.0, 300.0, 10, 1000.0), &PlanOptions::default()).unwrap();
        let rates: Vec<f64> = p.drill.unwrap().iter().map(|s| s.offered_rate).collect();
        assert_eq!(rates, [100.0, 400.0, 700.0, 1000.0]);
        let p = Plan::compile(&drill(100.0, 300.0, 10, 999.0), &PlanOptions::default()).unwrap();
        assert_eq!(p.drill.unwrap().len(), 3);
    }

    #[test]
    fn each_step_gets_rate_times_every_arrivals() {
        let p = Plan::compile(&drill(10.0, 10.0, 3, 30.0), &PlanOptions::default()).unwrap();
        let mut per = [0u32; 3];
        for a in p.arrivals(Segment::WHOLE) {
            per[p.phase_index_at(a.t)] += 1;
        }
        assert_eq!(per, [30, 60, 90]);
    }

    #[test]
    fn bad_drills_are_errors() {
        let o = PlanOptions::default();
        assert!(Plan::compile(&drill(500.0, 0.0, 30, 1000.0), &o)
            .unwrap_err()
            .contains("greater than zero"));
        assert!(Plan::compile(&drill(500.0, 100.0, 30, 100.0), &o)
            .unwrap_err()
            .contains("below start"));
        assert!(Plan::compile(&drill(1.0, 0.001, 30, 1000.0), &o)
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn scale_changes_rates_not_the_schedule() {
        let o = PlanOptions {
            scale: 0.01,
            time_scale: 0.5,
            ..PlanOptions::default()
        };
        let p = Plan::compile(&drill(500.0, 500.0, 30, 20000.0), &o).unwrap();
        let steps = p.drill.unwrap();
        assert_eq!(steps.len(), 40);
        assert_eq!(steps[1].offered_rate, 10.0);
        assert_eq!(steps[1].start, 15.0);
        assert_eq!(p.duration, 600.0);
    }
}
