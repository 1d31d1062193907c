//! `RunResult`: a finished run with everything the exporters need, in one value. Built once,
//! by [`super::outcome::finish`] from the run's outcome or by `flashcrowd merge` from the
//! segments; every exporter reads it and nothing else.

use super::timeline::Event;
use crate::gate::Threshold;
use crate::metrics::{Catalog, Point, Recorder};
use crate::plan::{Plan, Segment};
use serde::{Deserialize, Serialize};

/// One threshold's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub threshold: Threshold,
    /// None when nothing matched (counts as failed: a gate that measured nothing must not pass).
    pub observed: Option<f64>,
    pub passed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Passed,
    /// Ran to its end with no thresholds: nothing was checked, so nothing passed.
    Completed,
    Failed,
    Aborted,
    Interrupted,
    /// The report lacks part of the run: a merge without some of its segments (see
    /// `report::merge`), or a run whose generator died, rebuilt from its journal (see
    /// `report::journal`).
    Incomplete,
}

impl FinalStatus {
    pub fn name(self) -> &'static str {
        match self {
            FinalStatus::Passed => "passed",
            FinalStatus::Completed => "completed",
            FinalStatus::Failed => "failed",
            FinalStatus::Aborted => "aborted",
            FinalStatus::Interrupted => "interrupted",
            FinalStatus::Incomplete => "incomplete",
        }
    }

    /// The process exit code for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            FinalStatus::Passed | FinalStatus::Completed => 0,
            FinalStatus::Failed => 1,
            FinalStatus::Aborted | FinalStatus::Interrupted | FinalStatus::Incomplete => 3,
        }
    }
}

pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub target: String,
    /// The UTC offset the scenario's instants are written in (`+08:00`), for showing times.
    pub zone: Option<String>,
}

pub struct RunResult {
    pub scenario: ScenarioInfo,
    pub status: FinalStatus,
    pub reason: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub planned_start: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: chrono::DateTime<chrono::Utc>,
    pub duration_s: f64,
    pub segment: Segment,
    pub seed: u64,
    pub threads: usize,
    pub catalog: Catalog,
    pub total: Recorder,
    pub series: Vec<Point>,
    pub verdicts: Vec<Verdict>,
    pub cpu_s: f64,
    /// Planned mean rate per phase (open model: arrivals/s; closed: users).
    pub planned_rate: Vec<f64>,
    pub plan_duration_s: f64,
    /// Errors by kind per second, for seconds that had any (from the interval hook).
    pub errors_by_second:
        std::collections::BTreeMap<u64, [u64; crate::metrics::recorder::N_ERROR_KINDS]>,
    /// Live control, rule, signal and action events, in order.
    pub timeline: Vec<Event>,
    /// The monitor's scrapes and series names (empty without `monitor:`).
    pub scrapes: Vec<crate::metrics::ScrapeRecord>,
    pub monitor_names: Vec<String>,
    /// The monitor's interval, seconds.
    pub monitor_every_s: Option<f64>,
    /// The error rate above which the summary warns (and `--strict` fails the run).
    pub max_error_rate: f64,
    /// A run rebuilt from its journal: what was recorded and what is missing.
    pub incomplete: Option<Incomplete>,
    /// Scheduled actions with their recovery (report.json `actions[]`).
    pub actions: Vec<super::recovery::ActionReport>,
    /// Connections opened before time 0 and how long that took (None when not known: a run
    /// rebuilt from its journal, a merge).
    pub warm_up: Option<crate::engine::warm::WarmUp>,
    /// The scenario's waits and rendezvous, named as written (`wait: sale-start`).
    pub waits: Vec<String>,
}

/// Planned mean rate per phase (open model: arrivals/s; closed: users).
pub fn planned_rates(plan: &Plan) -> Vec<f64> {
    plan.phases
        .iter()
        .map(|p| {
            let len = (p.end - p.start).max(1e-9);
            match plan.model {
                crate::plan::Model::Open => plan.expected_arrivals(p.start, p.end) / len,
                crate::plan::Model::Closed => plan.value_at(p.start),
            }
        })
        .collect()
}

/// The error rate above which a run is called out loudly, thresholds or not (`--max-errors`).
pub const DEFAULT_MAX_ERROR_RATE: f64 = 0.05;

/// Lag p99 above this means the generator, not the target, set the pace.
pub const OVERLOAD_LAG_MS: f64 = 10.0;

impl RunResult {
    /// The run's error rate over every request.
    pub fn error_rate(&self) -> f64 {
        let all = self.total.total_where(|_, _, _| true);
        if all.count == 0 {
            0.0
        } else {
            all.error_count() as f64 / all.count as f64
        }
    }

    /// Sets the error rate that calls for a warning; under `strict` (`--strict`, or CI=true) a
    /// run past it that would otherwise pass or complete fails, with the reason said.
    pub fn apply_error_budget(&mut self, max: f64, strict: bool) {
        self.max_error_rate = max;
        let rate = self.error_rate();
        if strict
            && rate > max
            && matches!(self.status, FinalStatus::Passed | FinalStatus::Completed)
        {
            self.status = FinalStatus::Failed;
            self.reason = Some(format!(
                "{:.1}% of requests failed, above the {:.1}% allowed (--max-errors; failed because of --strict or CI=true)",
                rate * 100.0,
                max * 100.0
            ));
        }
    }

    pub fn lag_p99_ms(&self) -> f64 {
        if self.total.lag.is_empty() {
            0.0
        } else {
            self.total.lag.value_at_quantile(0.99) as f64 / 1000.0
        }
    }

    /// Did the generator fall behind its plan?
    pub fn overloaded(&self) -> bool {
        self.lag_p99_ms() > OVERLOAD_LAG_MS
    }
}

/// What a rebuilt run recorded and what it lacks (report.json `run.incomplete`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incomplete {
    /// The last second journaled whole (null: the run died before its first second ended).
    pub last_complete_second: Option<u64>,
    /// Seconds recorded: last_complete_second + 1.
    pub recorded_s: f64,
    /// The plan's duration.
    pub planned_s: f64,
    /// planned_s − recorded_s: what the report cannot show.
    pub missing_s: f64,
    /// The journal's last line was cut short by the death and left out.
    pub journal_truncated: bool,
}
