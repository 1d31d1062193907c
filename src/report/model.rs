//! The typed form of report.json (schema_version 1, docs/report-schema.md): what every exporter
//! reads, together with the histograms of latency.hlog. A live run builds it from the engine's
//! outcome (`json::build`); `flashcrowd report` deserializes it from the file, so both render
//! the same way.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds; all null when nothing was measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRef {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub target: String,
    /// The UTC offset the scenario's instants are written in, when it writes any.
    #[serde(default)]
    pub zone: Option<String>,
}

fn default_max_error_rate() -> f64 {
    crate::run::result::DEFAULT_MAX_ERROR_RATE
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub planned_duration_s: f64,
    /// passed | completed (no thresholds: nothing checked) | failed | aborted | interrupted | incomplete
    pub status: String,
    pub reason: Option<String>,
    /// The error rate above which the summary warns and `--strict` fails the run.
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    pub segment: String,
    pub seed: u64,
    pub threads: usize,
    /// The `--start-at` instant asked for (RFC 3339), or null.
    pub planned_start: Option<String>,
    /// started_at − planned_start, ms (null without --start-at).
    pub start_lag_ms: Option<f64>,
    /// `flashcrowd merge` only: the segments merged and each shard's own start, lag and burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<serde_json::Value>,
    /// Status `incomplete` only: a run rebuilt from its journal after the generator died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Incomplete>,
    /// The scenario's waits and rendezvous (`wait: sale-start`, `rendezvous: midnight`), for
    /// saying where sessions were parked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<String>,
}

pub use crate::run::result::Incomplete;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rate: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub sessions_started: u64,
    pub sessions_dropped: u64,
    pub sessions_interrupted: u64,
    /// Of the dropped arrivals, those dropped while sessions parked at a wait held at least half
    /// of `max_users`.
    #[serde(default)]
    pub sessions_dropped_parked: u64,
    /// Sessions still parked at a wait or rendezvous when the run ended.
    #[serde(default)]
    pub sessions_left_parked: u64,
    /// Requests resent once on a new connection (absent in reports from before retries).
    #[serde(default)]
    pub retried: u64,
    /// Planned arrivals that never started (absent in reports from before they were counted).
    #[serde(default)]
    pub sessions_unstarted: u64,
    pub errors_by_kind: IndexMap<String, u64>,
    pub status: IndexMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    pub name: String,
    pub client: String,
    pub count: u64,
    pub rate: f64,
    pub errors: IndexMap<String, u64>,
    pub status: IndexMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency_ms: Percentiles,
    pub service_time_ms: Percentiles,
    pub ttfb_ms: Percentiles,
    /// Stream steps (`ws:`, `sse:`) only: what flowed after the open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamRow>,
}

/// What a stream step received and sent after its open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRow {
    /// WebSocket messages or SSE events received.
    pub received: u64,
    pub received_per_s: f64,
    /// WebSocket messages sent.
    pub sent: u64,
    pub sent_per_s: f64,
    /// From the request's send to the first message or event.
    pub first_event_ms: Percentiles,
    /// Between consecutive messages or events.
    pub gap_ms: Percentiles,
    /// From the request's send to the stream's end.
    pub duration_ms: Percentiles,
    /// WebSocket close codes from the server, by code.
    pub close_codes: IndexMap<String, u64>,
}

impl RequestRow {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JourneyRow {
    pub name: String,
    pub sessions: u64,
    pub completed: u64,
    pub errors: u64,
    pub latency_ms: Percentiles,
    /// Sessions a wait or rendezvous held: from the last release to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_release_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRow {
    pub name: String,
    pub sessions: u64,
    pub requests: u64,
    /// The emulated network (`clients.NAME.network`), described; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRow {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    pub planned_rate: f64,
    pub requests: u64,
    pub rate: f64,
    pub error_rate: f64,
    pub latency_ms: Percentiles,
    /// Requests per client in this phase (clients that sent any), in the scenario's order.
    #[serde(default)]
    pub clients: IndexMap<String, u64>,
    /// The mean of each monitor series over the phase (null when none was scraped in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_mean: Option<IndexMap<String, Option<f64>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub t: u64,
    pub planned_rate: f64,
    pub sessions_started: u64,
    pub requests: u64,
    pub errors: u64,
    pub in_flight: u64,
    /// Of `in_flight`, sessions parked at a wait or rendezvous.
    #[serde(default)]
    pub parked: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    #[serde(default)]
    pub errors_by_kind: IndexMap<String, u64>,
    /// Planned arrivals skipped while paused (live control).
    #[serde(default)]
    pub paused: u64,
    /// Planned arrivals of this second that never started.
    #[serde(default)]
    pub unstarted: u64,
    /// The live rate factor relative to the plan (0 while paused).
    #[serde(default = "one")]
    pub rate_factor: f64,
    /// Monitor series (the target's water level), latest value by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<IndexMap<String, f64>>,
    /// Of `requests`, each client's (clients that sent any this second, in the scenario's
    /// order): the client mix second by second, counted as `phases[].clients` counts it.
    #[serde(default)]
    pub clients: IndexMap<String, u64>,
}

fn one() -> f64 {
    1.0
}

/// One timeline event (live control, rule, signal, action): typed, see `crate::run::timeline`.
pub use crate::run::timeline::Event as TimelineEntry;

/// The monitor block: its interval, series names and every scrape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    pub every_s: Option<f64>,
    pub series: Vec<String>,
    pub scrapes: Vec<crate::metrics::ScrapeRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    pub expr: String,
    pub passed: bool,
    pub observed: Option<f64>,
    pub observed_text: Option<String>,
    pub limit: f64,
    pub limit_text: String,
    /// The written limit and the factor it was scaled by (`--scale`, a segment's share):
    /// `2000/s × 1/20 (--scale 1/20)`. Absent when the limit is the written one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_from: Option<String>,
}

impl ThresholdRow {
    /// The limit as judged, with the written one when it was scaled: `100/s = 2000/s × 1/20
    /// (--scale 1/20)`.
    pub fn limit_shown(&self) -> String {
        match &self.scaled_from {
            Some(s) => format!("{} = {s}", self.limit_text),
            None => self.limit_text.clone(),
        }
    }

    /// `observed 1.24ms, limit 300ms` (or `nothing measured, limit …`).
    pub fn observed_vs_limit(&self) -> String {
        match &self.observed_text {
            Some(o) => format!("observed {o}, limit {}", self.limit_shown()),
            None => format!("nothing measured, limit {}", self.limit_shown()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub lag_ms: Lag,
    pub burst_ms: Burst,
    /// Connections opened before time 0 and how long that took; absent from older reports, null
    /// when not known (a rebuilt run, a merge).
    #[serde(default)]
    pub warm_up: Option<WarmUpRow>,
    pub dropped: u64,
    pub overloaded: bool,
    pub cpu_s: f64,
}

/// The warm-up before time 0 (`engine::warm`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmUpRow {
    pub ms: f64,
    pub connections: u64,
}

/// Burst spread: send time − release instant of the first request after a wait or rendezvous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burst {
    pub count: u64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub scenario: ScenarioRef,
    pub run: Run,
    pub totals: Totals,
    pub latency_ms: Percentiles,
    pub service_time_ms: Percentiles,
    pub ttfb_ms: Percentiles,
    pub requests: Vec<RequestRow>,
    pub journeys: Vec<JourneyRow>,
    pub clients: Vec<ClientRow>,
    pub phases: Vec<PhaseRow>,
    pub series: Vec<SeriesPoint>,
    pub thresholds: Vec<ThresholdRow>,
    pub generator: Generator,
    /// Step drills only (`load.steps`): what the drill found (see `crate::capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Live control and rule events (pause, resume, rate, stop, abort, stop_when, interrupt).
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorReport>,
    /// Scheduled actions: what each did and how the target recovered (`crate::run::recovery`).
    #[serde(default)]
    pub actions: Vec<crate::run::recovery::ActionReport>,
}

/// A step drill's result: report.json `capacity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The SLO each step is judged by: the drill's stop_when rules (a step meets the SLO when
    /// none of them holds over the step).
    pub slo: Vec<String>,
    /// The highest achieved rate among fully run steps that meet the SLO (null: none did).
    pub capacity_rate: Option<f64>,
    /// The offered rate of the first step where achieved stops tracking offered or p99 bends.
    pub knee_rate: Option<f64>,
    /// Why that step is the knee.
    pub knee_reason: Option<String>,
    /// Requests each arrival sends (from the first step); achieved rates are divided by it.
    pub requests_per_arrival: f64,
    pub steps: Vec<CapacityStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    pub phase: String,
    /// Planned arrivals/s.
    pub offered_rate: f64,
    /// Successful responses/s ÷ requests_per_arrival, over the part of the step that ran.
    pub achieved_rate: f64,
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
    pub met_slo: bool,
    /// The SLO rules that failed over this step (with the observed value).
    pub slo_failed: Vec<String>,
    /// The drill stopped during this step: its numbers cover only `ran_s` seconds and it does
    /// not count towards capacity_rate.
    pub partial: bool,
    pub ran_s: f64,
}

impl Report {
    /// The exit code this report stands for (0 passed, 1 failed, 3 aborted or interrupted).
    pub fn exit_code(&self) -> u8 {
        match self.run.status.as_str() {
            "passed" | "completed" => 0,
            "failed" => 1,
            // A partial merge whose thresholds failed on what it has: the failure decides.
            "incomplete" if self.thresholds.iter().any(|t| !t.passed) => 1,
            _ => 3,
        }
    }
}

/// A fraction as a percentage with at most one decimal: `5%`, `0.5%`, `12.3%`.
pub fn percent_text(f: f64) -> String {
    let p = f * 100.0;
    let s = format!("{p:.1}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}
