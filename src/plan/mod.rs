//! Load shapes compiled into a `Plan`: the planned arrival rate (open model) or user count
//! (closed model) as a function of time, the phases, and the arrival instants of a segment.
//!
//! Pure arithmetic, no I/O and no clocks: the engine asks the plan "when is the next arrival of
//! my segment" and "how many users should my segment have now". One load shape per file
//! (`stages.rs`, `users.rs`, `countdown.rs`, `steps.rs`), all compiling into the same `Curve`.
//!
//! API CONTRACT (the engine codes against these signatures; keep them):
//! - `Plan::compile(&Load, &PlanOptions) -> Result<Plan, String>`
//! - `plan.value_at(t)`, `plan.phase_index_at(t)`, `plan.expected_arrivals(t0, t1)`,
//!   `plan.arrivals(segment)`, `plan.users_at(t, segment)`, `plan.peak()`.

pub mod segment;

pub use segment::Segment;

use crate::scenario::model::{Arrivals, Load};
use chrono::{DateTime, Utc};

/// Knobs applied while compiling: `--scale` multiplies rates and user counts, `--time-scale`
/// multiplies every duration of the load shape; `start` resolves RFC 3339 instants.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub scale: f64,
    pub time_scale: f64,
    pub start: DateTime<Utc>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            scale: 1.0,
            time_scale: 1.0,
            start: Utc::now(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Sessions arrive at planned instants whatever the target does (stages, countdown, steps).
    Open,
    /// A planned number of users loop their journeys (users).
    Closed,
}

/// A named interval of the plan, `[start, end)` in seconds from the run start.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub start: f64,
    pub end: f64,
}

/// One step of a capacity drill.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillStep {
    pub offered_rate: f64,
    pub start: f64,
    pub end: f64,
}

/// One planned arrival: its global number (for segment ownership and seeding) and its intended
/// instant in seconds from the run start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    pub index: u64,
    pub t: f64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub model: Model,
    pub arrivals: Arrivals,
    pub seed: u64,
    /// Planned length in seconds.
    pub duration: f64,
    /// Contiguous phases covering `[0, duration)`.
    pub phases: Vec<Phase>,
    /// The countdown's sale-start instant (seconds from run start), for `wait: sale-start`.
    pub sale_start: Option<f64>,
    pub max_users: Option<u64>,
    /// Capacity-drill steps (steps load only).
    pub drill: Option<Vec<DrillStep>>,
    pub scale: f64,
    pub time_scale: f64,
}

impl Plan {
    pub fn compile(_load: &Load, _opts: &PlanOptions) -> Result<Plan, String> {
        unimplemented!("plan compile")
    }

    /// Planned arrival rate per second (open) or user count (closed) at `t` seconds.
    pub fn value_at(&self, _t: f64) -> f64 {
        unimplemented!()
    }

    /// Index into `phases` of the phase containing `t` (the last phase for `t >= duration`).
    pub fn phase_index_at(&self, _t: f64) -> usize {
        unimplemented!()
    }

    /// Expected arrivals in `[t0, t1)`: the integral of the rate (open model; 0 for closed).
    pub fn expected_arrivals(&self, _t0: f64, _t1: f64) -> f64 {
        unimplemented!()
    }

    /// The arrivals owned by `segment`, in time order, within `[0, duration)`. Uniform arrivals put
    /// arrival k at the instant where the integral of the rate reaches k; Poisson arrivals use
    /// seeded unit-exponential gaps in the same integrated time. Both are numbered globally so
    /// that `segment.owns(index)` splits them exactly.
    pub fn arrivals(&self, _segment: Segment) -> Box<dyn Iterator<Item = Arrival> + Send> {
        unimplemented!()
    }

    /// Closed model: the number of users `segment` should have at `t`.
    pub fn users_at(&self, _t: f64, _segment: Segment) -> u64 {
        unimplemented!()
    }

    /// The highest planned value and the first instant it is reached.
    pub fn peak(&self) -> (f64, f64) {
        unimplemented!()
    }
}
