//! Load shapes compiled into a `Plan`: the planned arrival rate (open model) or user count
//! (closed model) as a function of time, the phases, and the arrival instants of a segment.
//!
//! Pure arithmetic, no I/O and no clocks: the engine asks the plan "when is the next arrival of
//! my segment" and "how many users should my segment have now". One load source per file
//! (`stages.rs`, `users.rs`, `countdown.rs`, `steps.rs`, `calendar.rs`): its YAML block, rules, phase names and
//! compilation into the same `Curve`, behind the `source::LoadSource` seam.
//!
//! API CONTRACT (the engine codes against these signatures; keep them):
//! - `Plan::compile(&Load, &PlanOptions) -> Result<Plan, String>`
//! - `plan.value_at(t)`, `plan.phase_index_at(t)`, `plan.expected_arrivals(t0, t1)`,
//!   `plan.arrivals(segment)`, `plan.users_at(t, segment)`, `plan.peak()`.
//! - `plan.moments()` (a calendar's moments and their instants), `plan.wait_instant(name)`,
//!   `plan.phases_named(name)`.

pub mod calendar;
mod countdown;
pub mod curve;
pub mod replay;
pub mod segment;
pub mod source;
mod staged;
mod stages;
mod steps;
mod users;
pub mod waits;

pub use calendar::Calendar;
pub use countdown::Countdown;
pub use curve::Curve;
pub use replay::Replay;
pub use segment::Segment;
pub use source::FixedRequest;
pub use stages::Stage;
pub use steps::StepDrill;
pub use users::UserStage;

use crate::scenario::model::{Arrivals, Load};
use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::Exp1;
use std::sync::Arc;

/// What one load source compiles into, before the options common to all sources are applied.
#[derive(Default)]
pub struct Shaped {
    pub model: Model,
    /// The planned value over time, laid end to end from 0.
    pub pieces: Vec<curve::Piece>,
    /// Phases in time order; those of zero length are dropped when the plan is made.
    pub phases: Vec<Phase>,
    /// The countdown's sale-start instant (seconds from run start), for `wait: sale-start`.
    pub sale_start: Option<f64>,
    pub drill: Option<Vec<DrillStep>>,
    /// Arrivals the source places itself (with their requests), instead of the curve's.
    pub feed: Option<Arc<dyn source::Feed>>,
    /// The request names of the source's fixed requests.
    pub names: Vec<String>,
    /// What the source wants said before the run (records read, lines skipped).
    pub notes: Vec<String>,
    /// A calendar's moments, in the order written (empty for other sources).
    pub moments: Vec<Moment>,
}

/// Knobs applied while compiling: `--scale` multiplies rates and user counts, `--time-scale`
/// multiplies every duration of the load shape; `start` resolves RFC 3339 instants.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub scale: f64,
    pub time_scale: f64,
    pub start: DateTime<Utc>,
    /// Where files a load source reads (a replay's log) are found: the scenario's directory.
    pub base_dir: std::path::PathBuf,
    /// The scenario's clients in declaration order (a source fixes clients by index).
    pub clients: Vec<String>,
    /// `--strict`: a malformed record in a source's file is an error, not a skipped line.
    pub strict: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            scale: 1.0,
            time_scale: 1.0,
            start: Utc::now(),
            base_dir: ".".into(),
            clients: vec!["default".into()],
            strict: false,
        }
    }
}

impl PlanOptions {
    /// The options for a loaded scenario: its directory and clients, the rest as given.
    pub fn for_scenario(loaded: &crate::scenario::Loaded) -> PlanOptions {
        let s = &loaded.scenario;
        PlanOptions {
            base_dir: loaded.base_dir.clone(),
            clients: if s.clients.is_empty() {
                vec!["default".into()]
            } else {
                s.clients.keys().cloned().collect()
            },
            ..PlanOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// Sessions arrive at planned instants whatever the target does (stages, countdown, steps).
    #[default]
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

/// One moment of a calendar, in run seconds (after `--time-scale`).
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    pub name: String,
    /// The moment's instant: its spike starts to climb (and `wait: NAME` releases).
    pub at_s: f64,
    /// The top of the climb, `at + rise`.
    pub peak_s: f64,
    /// The end of the hold, where the decay begins.
    pub hold_end_s: f64,
    /// The end of the decay: the spike is over.
    pub end_s: f64,
    /// The planned rate at the top of the spike alone (base included, after `--scale`).
    pub peak_rate: f64,
    /// The wall-clock instant the calendar gives it (`from` + its offset as written), when the
    /// calendar has a `from`.
    pub instant: Option<DateTime<chrono::FixedOffset>>,
}

/// One planned arrival: its global number (for segment ownership and seeding), its intended
/// instant in seconds from the run start, and the request it sends when its source fixed one
/// (None: the session picks a client and journey by share).
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub index: u64,
    pub t: f64,
    pub fixed: Option<Arc<FixedRequest>>,
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
    /// `load.iterations`: journeys per user (closed model) or sessions in all (open model);
    /// the run ends when they are done. Not scaled: it is a count, not a rate.
    pub iterations: Option<u64>,
    /// Capacity-drill steps (steps load only).
    pub drill: Option<Vec<DrillStep>>,
    /// A calendar's moments, in the order written (calendar load only).
    moments: Vec<Moment>,
    pub scale: f64,
    pub time_scale: f64,
    /// The planned value over time, shared with the arrival iterators.
    curve: Arc<Curve>,
    /// Arrivals placed by the source itself (replay).
    feed: Option<Arc<dyn source::Feed>>,
    /// The request names of fixed requests (`FixedRequest::name` indexes this).
    pub fixed_names: Vec<String>,
    /// What the load source wants said before the run.
    pub notes: Vec<String>,
}

/// Tolerance for "the integral reaches k": a total within a billionth of an integer counts as
/// that integer, so 500/s for 4 s plans exactly 2000 arrivals despite rounding in the sums.
fn arrival_limit(total: f64) -> f64 {
    total - 1e-9 * total.max(1.0)
}

/// A duration of the shape in seconds, after `--time-scale`.
fn secs(d: crate::scenario::units::Dur, opts: &PlanOptions) -> f64 {
    d.as_secs_f64() * opts.time_scale
}

/// A phase `[start, end)`.
fn phase(name: impl Into<String>, start: f64, end: f64) -> Phase {
    Phase {
        name: name.into(),
        start,
        end,
    }
}

/// Rejects non-finite or non-positive scale factors.
fn check_factor(what: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{what} must be a number greater than zero, got {v}"
        ))
    }
}

impl Plan {
    /// Compiles the one load shape in `load`. Errors name the key and say what to change.
    pub fn compile(load: &Load, opts: &PlanOptions) -> Result<Plan, String> {
        check_factor("--scale", opts.scale)?;
        check_factor("--time-scale", opts.time_scale)?;
        let shaped = match source::given(load).as_slice() {
            [] => {
                return Err(format!(
                    "load: no load shape: expected one of {}",
                    source::keys_quoted()
                ))
            }
            [one] => one.compile(opts)?,
            _ => {
                return Err(format!(
                    "load: more than one load shape: keep exactly one of {}",
                    source::keys_quoted()
                ))
            }
        };
        let curve = Curve::new(shaped.pieces);
        let duration = curve.duration();
        let phases: Vec<Phase> = shaped
            .phases
            .into_iter()
            .filter(|p| p.end > p.start)
            .collect();
        if duration <= 0.0 || phases.is_empty() {
            return Err(
                "load: the load shape lasts no time at all: give its stages a length".into(),
            );
        }
        let max_users = load
            .max_users
            .map(|m| ((m as f64 * opts.scale).round() as u64).max(1));
        Ok(Plan {
            model: shaped.model,
            arrivals: load.arrivals,
            seed: load.seed.unwrap_or(1),
            duration,
            phases,
            sale_start: shaped.sale_start,
            max_users,
            iterations: load.iterations,
            drill: shaped.drill,
            moments: shaped.moments,
            scale: opts.scale,
            time_scale: opts.time_scale,
            curve: Arc::new(curve),
            feed: shaped.feed,
            fixed_names: shaped.names,
            notes: shaped.notes,
        })
    }

    /// The planned value as a piecewise curve (for charts and reports).
    pub fn curve(&self) -> &Curve {
        &self.curve
    }

    /// Planned arrival rate per second (open) or user count (closed) at `t` seconds; 0 outside
    /// `[0, duration)`.
    pub fn value_at(&self, t: f64) -> f64 {
        self.curve.value_at(t)
    }

    /// Index into `phases` of the phase containing `t` (the last phase for `t >= duration`).
    pub fn phase_index_at(&self, t: f64) -> usize {
        self.phases
            .partition_point(|p| p.end <= t)
            .min(self.phases.len() - 1)
    }

    /// Expected arrivals in `[t0, t1)`: the integral of the rate (open model; 0 for closed).
    pub fn expected_arrivals(&self, t0: f64, t1: f64) -> f64 {
        if self.model == Model::Closed || t1 <= t0 {
            return 0.0;
        }
        self.curve.cumulative(t1) - self.curve.cumulative(t0)
    }

    /// The arrivals owned by `segment`, in time order, within `[0, duration)`. Uniform arrivals put
    /// arrival k at the instant where the integral of the rate reaches k; Poisson arrivals use
    /// seeded unit-exponential gaps in the same integrated time. Both are numbered globally so
    /// that `segment.owns(index)` splits them exactly.
    ///
    /// The iterator is lazy and O(1) in memory. Uniform arrivals jump straight to the segment's
    /// own numbers; Poisson arrivals draw every global gap (one random number each) so that a
    /// segment's arrivals are the same whether it runs alone or beside the others. A closed plan
    /// has no arrivals.
    pub fn arrivals(&self, segment: Segment) -> Box<dyn Iterator<Item = Arrival> + Send> {
        if self.model == Model::Closed {
            return Box::new(std::iter::empty());
        }
        let placed = self.placed(segment);
        match &self.feed {
            Some(feed) => feed.arrivals(segment, placed),
            None => placed,
        }
    }

    /// The arrivals the curve places for `segment` (see `arrivals`).
    fn placed(&self, segment: Segment) -> Box<dyn Iterator<Item = Arrival> + Send> {
        let limit = arrival_limit(self.curve.total());
        let curve = Arc::clone(&self.curve);
        match self.arrivals {
            Arrivals::Uniform => Box::new(UniformArrivals {
                curve,
                limit,
                segment,
                next: 0,
                cursor: 0,
            }),
            Arrivals::Poisson => Box::new(PoissonArrivals {
                curve,
                limit,
                segment,
                rng: SmallRng::seed_from_u64(self.seed),
                y: 0.0,
                next: 0,
                cursor: 0,
                done: false,
            }),
        }
    }

    /// Closed model: the number of users `segment` should have at `t`: its share of the planned
    /// count rounded down, so the segments' counts add up to the planned count exactly. 0 for an
    /// open plan and outside `[0, duration)`.
    pub fn users_at(&self, t: f64, segment: Segment) -> u64 {
        if self.model == Model::Open {
            return 0;
        }
        let u = self.curve.value_at(t);
        // A ramp from 0 to 500 users over 30 s has 250 at 15 s, not 249.99999.
        let whole = (u + 1e-9).floor().max(0.0) as u64;
        segment.share_of(whole)
    }

    /// The highest planned value and the first instant it is reached.
    pub fn peak(&self) -> (f64, f64) {
        self.curve.peak()
    }

    /// A calendar's moments with their instants, in the order written; empty for other shapes.
    pub fn moments(&self) -> &[Moment] {
        &self.moments
    }

    /// The moment called `name`.
    pub fn moment(&self, name: &str) -> Option<&Moment> {
        self.moments.iter().find(|m| m.name == name)
    }

    /// The instant (run seconds) a `wait: NAME` step holds a user until: `sale-start` of a
    /// countdown, or a calendar moment's `at`.
    pub fn wait_instant(&self, name: &str) -> Option<f64> {
        match name {
            "sale-start" => self.sale_start,
            _ => self.moment(name).map(|m| m.at_s),
        }
    }

    /// The indices of the phases `name` means in `during` and thresholds: every stretch of the
    /// phase called `name` (`base` comes back between moments), or, when no phase is called so,
    /// every phase of the moment `name` (`sale` → `sale.rise`, `sale.peak`, `sale.decay`).
    pub fn phases_named(&self, name: &str) -> Vec<usize> {
        crate::scenario::validate::phases_named(self.phases.iter().map(|p| p.name.as_str()), name)
    }
}

/// Uniform arrivals of one segment: global arrival k where Λ(t) = k.
struct UniformArrivals {
    curve: Arc<Curve>,
    limit: f64,
    segment: Segment,
    /// The segment's next own arrival, counted within the segment.
    next: u64,
    cursor: usize,
}

impl Iterator for UniformArrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let index = self.segment.global(self.next);
        let y = index as f64;
        if y >= self.limit {
            return None;
        }
        let t = self.curve.inverse(y, &mut self.cursor)?;
        self.next += 1;
        Some(Arrival {
            index,
            t,
            fixed: None,
        })
    }
}

/// Poisson arrivals of one segment: global arrival k where Λ(t) = E1 + … + E(k+1), the gaps
/// drawn from one seeded stream shared (by construction, not by memory) with every segment.
struct PoissonArrivals {
    curve: Arc<Curve>,
    limit: f64,
    segment: Segment,
    rng: SmallRng,
    /// Λ of the last global arrival drawn.
    y: f64,
    /// The global number of the next arrival to draw.
    next: u64,
    cursor: usize,
    done: bool,
}

impl Iterator for PoissonArrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        while !self.done {
            let gap: f64 = self.rng.sample(Exp1);
            self.y += gap;
            let index = self.next;
            self.next += 1;
            if self.y >= self.limit {
                self.done = true;
                break;
            }
            if self.segment.owns(index) {
                let t = self.curve.inverse(self.y, &mut self.cursor)?;
                return Some(Arrival {
                    index,
                    t,
                    fixed: None,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
