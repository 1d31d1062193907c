//! `load.users`: the closed model written as stages of user counts. `{users, for}` jumps to a
//! count and keeps it, `{to, over}` ramps linearly from the previous count (0 before the first
//! stage), `{hold}` keeps it. Each stage is one phase, named by its `name` or `stage-N`.
//!
//! The plan says how many users should exist at each instant; starting and stopping them is the
//! engine's job. `--scale` multiplies each count and rounds it to a whole user (never to 0 for a
//! count that was not 0), so `--scale 1/100` of 50 users rehearses with 1 user, not none.

use super::staged::{staged, Form, StageForm, StageKind};
use super::{secs, Model, PlanOptions, Shaped};
use crate::scenario::units::Dur;
use serde::{Deserialize, Serialize};

/// One stage of a closed-model `users` load: `{users, for}`, `{to, over}` or `{hold}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserStage {
    #[serde(default)]
    pub users: Option<u64>,
    #[serde(default, rename = "for")]
    pub for_: Option<Dur>,
    #[serde(default)]
    pub to: Option<u64>,
    #[serde(default)]
    pub over: Option<Dur>,
    #[serde(default)]
    pub hold: Option<Dur>,
    #[serde(default)]
    pub name: Option<String>,
}

impl StageKind for UserStage {
    const KEY: &'static str = "users";
    const LEVEL: &'static str = "users";
    const EXAMPLE: &'static str = "{ users: 50, for: 30s }";

    fn form(&self) -> StageForm {
        StageForm {
            level: self.users.is_some(),
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

fn scaled(users: u64, opts: &PlanOptions) -> f64 {
    let v = (users as f64 * opts.scale).round();
    if users > 0 {
        v.max(1.0)
    } else {
        0.0
    }
}

pub(crate) fn compile(stages: &[UserStage], opts: &PlanOptions) -> Result<Shaped, String> {
    if stages.is_empty() {
        return Err("load.users is empty: add a stage like { users: 50, for: 1m }".into());
    }
    let forms = stages
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let form = match (st.users, st.for_, st.to, st.over, st.hold) {
                (Some(u), Some(d), None, None, None) => Form::Jump(scaled(u, opts), secs(d, opts)),
                (None, None, Some(u), Some(d), None) => Form::Ramp(scaled(u, opts), secs(d, opts)),
                (None, None, None, None, Some(d)) => Form::Hold(secs(d, opts)),
                _ => {
                    return Err(format!(
                        "load.users[{i}] (stage {}): expected {{ users, for }}, {{ to, over }} or {{ hold }}",
                        i + 1
                    ))
                }
            };
            Ok((form, st.name.clone()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(staged(Model::Closed, forms))
}

#[cfg(test)]
mod tests {
    use crate::plan::UserStage;
    use crate::plan::{Model, Plan, PlanOptions, Segment};
    use crate::scenario::model::Load;
    use crate::scenario::units::Dur;
    use std::time::Duration;

    fn dur(s: u64) -> Option<Dur> {
        Some(Dur(Duration::from_secs(s)))
    }

    /// The design's example: 50 users for 10 s, ramp to 500 over 30 s, hold 2 m.
    fn design_users() -> Load {
        Load {
            users: Some(vec![
                UserStage {
                    users: Some(50),
                    for_: dur(10),
                    ..UserStage::default()
                },
                UserStage {
                    to: Some(500),
                    over: dur(30),
                    ..UserStage::default()
                },
                UserStage {
                    hold: dur(120),
                    ..UserStage::default()
                },
            ]),
            ..Load::default()
        }
    }

    #[test]
    fn user_stages_jump_ramp_and_hold() {
        let plan = Plan::compile(&design_users(), &PlanOptions::default()).unwrap();
        assert_eq!(plan.model, Model::Closed);
        assert_eq!(plan.duration, 160.0);
        let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["stage-1", "stage-2", "stage-3"]);
        assert_eq!(plan.users_at(0.0, Segment::WHOLE), 50);
        assert_eq!(plan.users_at(9.99, Segment::WHOLE), 50);
        // 50 + 450·15/30
        assert_eq!(plan.users_at(25.0, Segment::WHOLE), 275);
        assert_eq!(plan.users_at(40.0, Segment::WHOLE), 500);
        assert_eq!(plan.users_at(159.0, Segment::WHOLE), 500);
        assert_eq!(plan.users_at(160.0, Segment::WHOLE), 0);
        assert_eq!(plan.peak(), (500.0, 40.0));
        assert_eq!(plan.expected_arrivals(0.0, 160.0), 0.0);
        assert_eq!(plan.arrivals(Segment::WHOLE).count(), 0);
    }

    #[test]
    fn ramp_users_round_down_between_whole_users() {
        let plan = Plan::compile(&design_users(), &PlanOptions::default()).unwrap();
        // 50 + 450·(10.1 − 10)/30 = 51.5
        assert_eq!(plan.users_at(10.1, Segment::WHOLE), 51);
    }

    #[test]
    fn users_over_segments_sum_to_the_planned_users() {
        let plan = Plan::compile(&design_users(), &PlanOptions::default()).unwrap();
        for n in 1..=7u32 {
            for t in [0.0, 10.0, 12.345, 25.0, 39.9, 100.0] {
                let whole = plan.users_at(t, Segment::WHOLE);
                let sum: u64 = (0..n)
                    .map(|i| plan.users_at(t, Segment::new(i, n).unwrap()))
                    .sum();
                assert_eq!(sum, whole, "n {n} t {t}");
            }
        }
    }

    #[test]
    fn scale_rounds_user_counts_and_keeps_at_least_one() {
        let opts = PlanOptions {
            scale: 0.01,
            time_scale: 0.5,
            ..PlanOptions::default()
        };
        let plan = Plan::compile(&design_users(), &opts).unwrap();
        assert_eq!(plan.duration, 80.0);
        assert_eq!(plan.users_at(1.0, Segment::WHOLE), 1);
        assert_eq!(plan.users_at(79.0, Segment::WHOLE), 5);
    }
}
