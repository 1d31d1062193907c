//! What a run ended with ([`RunOutcome`]: how it stopped, what it measured, what happened), and
//! [`finish`], which judges it into the [`RunResult`] the exporters read.

use super::judge::{judge, Evidence};
use super::result::{RunResult, ScenarioInfo};
use super::timeline::Event;
use crate::gate::Threshold;
use crate::metrics::{Catalog, Point, Recorder};
use crate::plan::{Plan, Segment};
use chrono::{DateTime, Utc};

/// How the run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Ran to the end (thresholds decide passed/failed later).
    Completed,
    Aborted,
    Interrupted,
}

pub struct RunOutcome {
    pub status: Status,
    /// The `--start-at` instant asked for, if any (`started_at` is when the run really began).
    pub planned_start: Option<DateTime<Utc>>,
    /// Why the run stopped early (abort rule or signal).
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration_s: f64,
    pub total: Recorder,
    pub series: Vec<Point>,
    pub threads: usize,
    /// Generator CPU seconds (user + sys of this process).
    pub cpu_s: f64,
    /// Live control, rule, signal and action events, in order.
    pub timeline: Vec<Event>,
    /// The monitor's scrapes (empty without a `monitor:` block).
    pub scrapes: Vec<crate::metrics::ScrapeRecord>,
    /// The monitor's series names, in declaration order.
    pub monitor_names: Vec<String>,
    /// Scheduled actions: each firing with its recovery, then those that never fired.
    pub actions: Vec<super::recovery::ActionReport>,
    /// Connections opened before time 0, and how long that took.
    pub warm_up: crate::engine::warm::WarmUp,
}

/// Judges the outcome against the thresholds and gathers everything the exporters read.
pub fn finish(
    outcome: RunOutcome,
    catalog: Catalog,
    plan: &Plan,
    scenario: ScenarioInfo,
    segment: Segment,
    thresholds: &[Threshold],
) -> RunResult {
    let (verdicts, status) = judge(
        &Evidence {
            catalog: &catalog,
            total: &outcome.total,
            duration_s: outcome.duration_s,
            actions: &outcome.actions,
        },
        thresholds,
        outcome.status,
    );
    let planned_rate = super::result::planned_rates(plan);
    RunResult {
        scenario,
        status,
        reason: outcome.reason,
        started_at: outcome.started_at,
        planned_start: outcome.planned_start,
        ended_at: outcome.ended_at,
        duration_s: outcome.duration_s,
        segment,
        seed: plan.seed,
        threads: outcome.threads,
        catalog,
        total: outcome.total,
        series: outcome.series,
        verdicts,
        cpu_s: outcome.cpu_s,
        planned_rate,
        plan_duration_s: plan.duration,
        errors_by_second: Default::default(),
        timeline: outcome.timeline,
        scrapes: outcome.scrapes,
        monitor_names: outcome.monitor_names,
        monitor_every_s: None,
        max_error_rate: super::result::DEFAULT_MAX_ERROR_RATE,
        incomplete: None,
        actions: outcome.actions,
        warm_up: Some(outcome.warm_up),
        waits: Vec::new(),
    }
}
