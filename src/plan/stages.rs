//! `load.stages`: the open model written as stages of arrival rate. `{rate, for}` jumps to a rate
//! and keeps it, `{to, over}` ramps linearly from the previous rate (0 before the first stage),
//! `{hold}` keeps the previous rate. Each stage is one phase, named by its `name` or `stage-N`.
//!
//! The block, its rules (with key paths, for `scenario::validate`), its phase names and its
//! arithmetic all live here; a malformed stage that slipped past validation is still an error
//! when compiling, never a panic.

use super::staged::{staged, Form, StageForm, StageKind};
use super::{secs, Model, PlanOptions, Shaped};
use crate::scenario::units::{Dur, Rate};
use serde::{Deserialize, Serialize};

/// One stage of an open-model `stages` load: `{rate, for}`, `{to, over}` or `{hold}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    #[serde(default)]
    pub rate: Option<Rate>,
    #[serde(default, rename = "for")]
    pub for_: Option<Dur>,
    #[serde(default)]
    pub to: Option<Rate>,
    #[serde(default)]
    pub over: Option<Dur>,
    #[serde(default)]
    pub hold: Option<Dur>,
    #[serde(default)]
    pub name: Option<String>,
}

impl StageKind for Stage {
    const KEY: &'static str = "stages";
    const LEVEL: &'static str = "rate";
    const EXAMPLE: &'static str = "{ rate: 50/s, for: 30s }";

    fn form(&self) -> StageForm {
        StageForm {
            level: self.rate.is_some(),
            for_: self.for_.map(|d| d.0),
            to: self.to.is_some(),
            over: self.over.map(|d| d.0),
            hold: self.hold.map(|d| d.0),
            name: self.name.clone(),
        }
    }

    fn compile(stages: &[Self], opts: &PlanOptions) -> Result<Shaped, String> {
        compile(stages, opts)
    }
}

pub(crate) fn compile(stages: &[Stage], opts: &PlanOptions) -> Result<Shaped, String> {
    if stages.is_empty() {
        return Err("load.stages is empty: add a stage like { rate: 100/s, for: 1m }".into());
    }
    let forms = stages
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let form = match (st.rate, st.for_, st.to, st.over, st.hold) {
                (Some(r), Some(d), None, None, None) => Form::Jump(r.0 * opts.scale, secs(d, opts)),
                (None, None, Some(r), Some(d), None) => Form::Ramp(r.0 * opts.scale, secs(d, opts)),
                (None, None, None, None, Some(d)) => Form::Hold(secs(d, opts)),
                _ => {
                    return Err(format!(
                        "load.stages[{i}] (stage {}): expected {{ rate, for }}, {{ to, over }} or {{ hold }}",
                        i + 1
                    ))
                }
            };
            Ok((form, st.name.clone()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(staged(Model::Open, forms))
}

#[cfg(test)]
mod tests {
    use crate::plan::Stage;
    use crate::plan::{Plan, PlanOptions, Segment};
    use crate::scenario::model::{Arrivals, Load};
    use crate::scenario::units::{Dur, Rate};
    use std::time::Duration;

    fn dur(s: f64) -> Option<Dur> {
        Some(Dur(Duration::from_secs_f64(s)))
    }
    fn rate(r: f64) -> Option<Rate> {
        Some(Rate(r))
    }
    fn load(stages: Vec<Stage>) -> Load {
        Load {
            stages: Some(stages),
            arrivals: Arrivals::Uniform,
            ..Load::default()
        }
    }
    fn count(plan: &Plan, t0: f64, t1: f64) -> usize {
        plan.arrivals(Segment::WHOLE)
            .filter(|a| a.t >= t0 && a.t < t1)
            .count()
    }

    #[test]
    fn constant_stage_plans_rate_times_length_arrivals() {
        let l = load(vec![Stage {
            rate: rate(500.0),
            for_: dur(4.0),
            ..Stage::default()
        }]);
        let plan = Plan::compile(&l, &PlanOptions::default()).unwrap();
        assert_eq!(plan.expected_arrivals(0.0, 4.0), 2000.0);
        assert_eq!(plan.arrivals(Segment::WHOLE).count(), 2000);
        assert_eq!(count(&plan, 1.0, 2.0), 500);
        let first: Vec<f64> = plan.arrivals(Segment::WHOLE).take(3).map(|a| a.t).collect();
        assert_eq!(first, vec![0.0, 0.002, 0.004]);
    }

    #[test]
    fn ramp_from_zero_plans_its_triangle_exactly() {
        let l = load(vec![Stage {
            to: rate(1000.0),
            over: dur(10.0),
            ..Stage::default()
        }]);
        let plan = Plan::compile(&l, &PlanOptions::default()).unwrap();
        assert_eq!(plan.expected_arrivals(0.0, 10.0), 5000.0);
        assert_eq!(plan.arrivals(Segment::WHOLE).count(), 5000);
        // Λ(5) = 50·5² = 1250: the first half of the ramp carries a quarter of the arrivals.
        assert_eq!(plan.expected_arrivals(0.0, 5.0), 1250.0);
        assert_eq!(count(&plan, 0.0, 5.0), 1250);
        assert_eq!(count(&plan, 5.0, 10.0), 3750);
        assert_eq!(plan.value_at(2.5), 250.0);
        assert_eq!(plan.peak(), (1000.0, 10.0));
    }

    #[test]
    fn ramp_starts_from_previous_rate_and_hold_keeps_it() {
        let l = load(vec![
            Stage {
                rate: rate(50.0),
                for_: dur(30.0),
                name: Some("warmup".into()),
                ..Stage::default()
            },
            Stage {
                to: rate(1000.0),
                over: dur(10.0),
                ..Stage::default()
            },
            Stage {
                hold: dur(60.0),
                ..Stage::default()
            },
        ]);
        let plan = Plan::compile(&l, &PlanOptions::default()).unwrap();
        let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["warmup", "stage-2", "stage-3"]);
        assert_eq!(plan.phases[1].start, 30.0);
        assert_eq!(plan.phases[2].end, 100.0);
        assert_eq!(plan.duration, 100.0);
        assert_eq!(plan.value_at(30.0), 50.0);
        assert_eq!(plan.value_at(35.0), 525.0);
        assert_eq!(plan.value_at(99.0), 1000.0);
        // 50·30 + (50+1000)/2·10 + 1000·60
        assert_eq!(
            plan.expected_arrivals(0.0, 100.0),
            1500.0 + 5250.0 + 60000.0
        );
        assert_eq!(plan.arrivals(Segment::WHOLE).count(), 66750);
        assert_eq!(plan.phase_index_at(29.999), 0);
        assert_eq!(plan.phase_index_at(30.0), 1);
        assert_eq!(plan.phase_index_at(500.0), 2);
        assert_eq!(plan.peak(), (1000.0, 40.0));
    }

    #[test]
    fn malformed_stage_is_an_error_naming_it() {
        let l = load(vec![Stage {
            rate: rate(5.0),
            over: dur(1.0),
            ..Stage::default()
        }]);
        let e = Plan::compile(&l, &PlanOptions::default()).unwrap_err();
        assert!(e.contains("stage 1"), "{e}");
        assert!(Plan::compile(&load(vec![]), &PlanOptions::default()).is_err());
    }

    #[test]
    fn scale_multiplies_rates_and_time_scale_durations() {
        let l = load(vec![Stage {
            rate: rate(500.0),
            for_: dur(4.0),
            ..Stage::default()
        }]);
        let opts = PlanOptions {
            scale: 0.5,
            time_scale: 0.25,
            ..PlanOptions::default()
        };
        let plan = Plan::compile(&l, &opts).unwrap();
        assert_eq!(plan.duration, 1.0);
        assert_eq!(plan.value_at(0.5), 250.0);
        assert_eq!(plan.arrivals(Segment::WHOLE).count(), 250);
    }
}
