//! The live page's record of a run: every completed second (the numbers the charts draw), the
//! running totals, the thresholds as they stand so far, the timeline, and at the end the
//! verdict. It keeps the whole run, not a window: the page asks for the seconds after the last
//! one it has (`GET /api/state?from=N`) and keeps them itself.
//!
//! It also keeps each completed second's interval histograms, one per request name × client in
//! latency.hlog's encoding (V2 deflate, base64, tag `NAME|CLIENT`), with the second's counters
//! (`GET /api/intervals?from=N`): what `flashcrowd watch` merges exactly over many generators.
//!
//! A board is fed by a local run (the collector, once a second) or by the watcher (merged
//! seconds); the page does not know which. Every text it serves passes the run's redactor.

use super::spill::Spill;
use crate::metrics::catalog::PhaseSpan;
use crate::metrics::recorder::{ErrorKind, N_ERROR_KINDS};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Removes secrets from a text the board serves.
pub type Redact = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// What the page shows of the run that does not change.
#[derive(Debug, Clone, Default)]
pub struct BoardInfo {
    pub scenario: String,
    /// The target, user-info removed.
    pub target: String,
    /// `i/n`, or `watch` for a watcher's merged view.
    pub segment: String,
    pub closed: bool,
    /// The planned length, seconds.
    pub duration_s: f64,
    pub phases: Vec<PhaseSpan>,
    /// Named instants (seconds from the start) the countdown clock counts to.
    pub moments: Vec<(String, f64)>,
}

/// One completed second, from a run's collector or merged by the watcher.
#[derive(Debug, Clone)]
pub struct Second {
    pub t: u64,
    pub planned: f64,
    pub started: u64,
    pub requests: u64,
    pub errors: [u64; N_ERROR_KINDS],
    pub in_flight: u64,
    pub dropped: u64,
    pub paused: u64,
    /// Scheduler lag p99 in ms (None: no arrival this second).
    pub lag_p99_ms: Option<f64>,
    pub rate_factor: f64,
    pub phase: usize,
    pub monitor: Vec<(String, f64)>,
    /// Latency of every request of this second, µs.
    pub latency: Histogram<u64>,
    /// Per tag `NAME|CLIENT` (latency.hlog's), this second's latencies: what watchers merge.
    pub hists: Vec<(String, Histogram<u64>)>,
    /// The burst spread of this second's releases, µs: how long after a `wait` or rendezvous
    /// released them its users' next requests were sent (report.json `generator.burst_ms`).
    pub burst: Histogram<u64>,
}

/// A threshold as it stands so far.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveThreshold {
    pub source: String,
    /// The observed value, formatted with its unit; None while nothing was measured.
    pub observed: Option<String>,
    pub pass: bool,
}

/// The run's end as the page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// passed | failed | aborted | interrupted | error
    pub status: String,
    pub reason: Option<String>,
    pub exit_code: i32,
    /// The run directory (report.html is served at /report.html while the process lives).
    pub dir: Option<String>,
}

struct Inner {
    info: BoardInfo,
    /// Each second's row of the page's series, and its interval histograms for watchers, as
    /// JSON texts (on an unlinked file for a local run: see `spill`).
    rows: Spill,
    intervals: Spill,
    total: Histogram<u64>,
    /// Every release's spread so far, µs.
    burst: Histogram<u64>,
    requests: u64,
    errors: [u64; N_ERROR_KINDS],
    started: u64,
    dropped: u64,
    thresholds: Vec<LiveThreshold>,
    verdict: Option<Verdict>,
    started_at: Option<DateTime<Utc>>,
    /// Extra sections a feeder adds (the watcher's segments).
    extra: Map<String, Value>,
    last_poll: Option<Instant>,
    polled_after_verdict: bool,
}

pub struct Board {
    redact: Redact,
    /// The timeline and steering of a local run (a watcher has none).
    steer: Option<Arc<super::Steer>>,
    inner: Mutex<Inner>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// `v` (an object) as JSON text with `key` added last, its value the JSON text `raw`.
fn with_last(v: Value, key: &str, raw: &str) -> String {
    let mut s = v.to_string();
    if s.ends_with('}') {
        s.pop();
        if !s.ends_with('{') {
            s.push(',');
        }
        s.push_str(&Value::String(key.to_string()).to_string());
        s.push(':');
        s.push_str(raw);
        s.push('}');
    }
    s
}

fn kinds(errors: &[u64; N_ERROR_KINDS]) -> Value {
    let mut m = Map::new();
    for (k, n) in ErrorKind::ALL.iter().zip(errors.iter()) {
        if *n > 0 {
            m.insert(k.name().to_string(), json!(n));
        }
    }
    Value::Object(m)
}

impl Board {
    pub fn new(info: BoardInfo, steer: Option<Arc<super::Steer>>, redact: Redact) -> Board {
        Board {
            redact,
            steer,
            inner: Mutex::new(Inner {
                info,
                rows: Spill::in_memory(),
                intervals: Spill::in_memory(),
                total: crate::metrics::recorder::new_recording_histogram(),
                burst: crate::metrics::recorder::new_histogram(),
                requests: 0,
                errors: [0; N_ERROR_KINDS],
                started: 0,
                dropped: 0,
                thresholds: Vec::new(),
                verdict: None,
                started_at: None,
                extra: Map::new(),
                last_poll: None,
                polled_after_verdict: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fixed facts, once known (a watcher learns them from the first segment's answer).
    pub fn set_info(&self, info: BoardInfo) {
        self.lock().info = info;
    }

    /// The run's wall-clock start (the watcher aligns segments on it).
    pub fn set_started_at(&self, at: DateTime<Utc>) {
        self.lock().started_at.get_or_insert(at);
    }

    /// Keeps the seconds on unlinked files in `dir` (the run directory) rather than in memory,
    /// so that the process does not grow with the run's length. Call before the first second.
    pub fn spill_to(&self, dir: &Path) {
        let mut g = self.lock();
        if g.rows.is_empty() {
            g.rows = Spill::in_dir(dir, "live-series");
            g.intervals = Spill::in_dir(dir, "live-intervals");
        }
    }

    /// Adds a completed second.
    pub fn push(&self, s: Second) {
        let mut g = self.lock();
        let lat = &s.latency;
        let q = |p: f64| (!lat.is_empty()).then(|| ms(lat.value_at_quantile(p)));
        let mut monitor = Map::new();
        for (n, v) in &s.monitor {
            monitor.insert(n.clone(), json!(v));
        }
        let row = json!({
            "t": s.t,
            "planned": (s.planned * 1000.0).round() / 1000.0,
            "started": s.started,
            "requests": s.requests,
            "errors": s.errors.iter().sum::<u64>(),
            "by_kind": kinds(&s.errors),
            "in_flight": s.in_flight,
            "dropped": s.dropped,
            "paused": s.paused,
            "p50": q(0.5),
            "p99": q(0.99),
            "max": (!lat.is_empty()).then(|| ms(lat.max())),
            "lag_p99": s.lag_p99_ms,
            "burst": s.burst.len(),
            "burst_p99": (!s.burst.is_empty()).then(|| ms(s.burst.value_at_quantile(0.99))),
            "factor": s.rate_factor,
            "phase": s.phase,
            "monitor": monitor,
        });
        g.rows.push(&row.to_string());
        let hists: Vec<Value> = s
            .hists
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(tag, h)| json!({"tag": tag, "hist": crate::report::state::encode_histogram(h)}))
            .collect();
        let interval = json!({
            "t": s.t,
            "planned": s.planned,
            "started": s.started,
            "requests": s.requests,
            "errors": s.errors.to_vec(),
            "in_flight": s.in_flight,
            "dropped": s.dropped,
            "paused": s.paused,
            "lag_p99": s.lag_p99_ms,
            "factor": s.rate_factor,
            "phase": s.phase,
            "hists": hists,
            "burst": (!s.burst.is_empty()).then(|| crate::report::state::encode_histogram(&s.burst)),
        });
        g.intervals.push(&interval.to_string());
        let _ = g.total.add(lat);
        let _ = g.burst.add(&s.burst);
        g.requests += s.requests;
        for (a, b) in g.errors.iter_mut().zip(s.errors.iter()) {
            *a += b;
        }
        g.started += s.started;
        g.dropped += s.dropped;
    }

    pub fn set_thresholds(&self, t: Vec<LiveThreshold>) {
        self.lock().thresholds = t;
    }

    /// A feeder's own section of the state (the watcher's `segments`).
    pub fn set_extra(&self, key: &str, v: Value) {
        self.lock().extra.insert(key.to_string(), v);
    }

    pub fn finish(&self, v: Verdict) {
        self.lock().verdict = Some(v);
    }

    pub fn verdict(&self) -> Option<Verdict> {
        self.lock().verdict.clone()
    }

    pub fn seconds(&self) -> usize {
        self.lock().rows.len()
    }

    /// The totals so far: (requests, merged latency histogram, errors by kind).
    pub fn totals(&self) -> (u64, Histogram<u64>, [u64; N_ERROR_KINDS]) {
        let g = self.lock();
        (g.requests, g.total.clone(), g.errors)
    }

    /// Every release's burst spread so far (µs).
    pub fn burst(&self) -> Histogram<u64> {
        self.lock().burst.clone()
    }

    fn polled(&self, g: &mut Inner) {
        g.last_poll = Some(Instant::now());
        if g.verdict.is_some() {
            g.polled_after_verdict = true;
        }
    }

    /// The page's state: fixed facts, the seconds from `from` on, totals, thresholds,
    /// timeline, steering and verdict. JSON text, secrets removed.
    pub fn state(&self, from: usize) -> String {
        let mut g = self.lock();
        self.polled(&mut g);
        let i = g.info.clone();
        let lat = &g.total;
        let totals = json!({
            "requests": g.requests,
            "errors": g.errors.iter().sum::<u64>(),
            "by_kind": kinds(&g.errors),
            "started": g.started,
            "dropped": g.dropped,
            "p50": (!lat.is_empty()).then(|| ms(lat.value_at_quantile(0.5))),
            "p99": (!lat.is_empty()).then(|| ms(lat.value_at_quantile(0.99))),
            "max": (!lat.is_empty()).then(|| ms(lat.max())),
            // report.json's generator.burst_ms, so far.
            "burst": {
                "count": g.burst.len(),
                "p50": (!g.burst.is_empty()).then(|| ms(g.burst.value_at_quantile(0.5))),
                "p99": (!g.burst.is_empty()).then(|| ms(g.burst.value_at_quantile(0.99))),
                "max": (!g.burst.is_empty()).then(|| ms(g.burst.max())),
            },
        });
        let (timeline, steering) = match &self.steer {
            Some(s) => {
                let st = s.control.steering();
                (
                    serde_json::to_value(s.timeline()).unwrap_or(Value::Null),
                    json!({"paused": st.paused, "factor": st.factor, "set": st.set,
                           "stopping": s.control.get() > 0}),
                )
            }
            None => (json!([]), Value::Null),
        };
        let elapsed = match (&self.steer, g.started_at) {
            (Some(s), _) => s.elapsed_s(),
            (None, Some(at)) => (Utc::now() - at).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        let mut v = json!({
            "scenario": i.scenario,
            "target": i.target,
            "segment": i.segment,
            "unit": if i.closed { "users" } else { "arrivals/s" },
            "duration_s": i.duration_s,
            "started_at": g.started_at.map(|t| t.to_rfc3339()),
            "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
            "phases": i.phases.iter().map(|p| json!({"name": p.name, "start": p.start_s, "end": p.end_s})).collect::<Vec<_>>(),
            "moments": i.moments.iter().map(|(n, t)| json!({"name": n, "t": t})).collect::<Vec<_>>(),
            "from": from.min(g.rows.len()),
            "totals": totals,
            "thresholds": g.thresholds,
            "timeline": timeline,
            "steering": steering,
            "control": self.steer.is_some(),
            "verdict": g.verdict,
        });
        if let Value::Object(m) = &mut v {
            for (k, e) in &g.extra {
                m.insert(k.clone(), e.clone());
            }
        }
        let series = g.rows.array_from(from);
        (self.redact)(&with_last(v, "series", &series))
    }

    /// Each completed second's interval histograms and counters from `from` on, for watchers.
    pub fn intervals(&self, from: usize) -> String {
        let mut g = self.lock();
        self.polled(&mut g);
        let i = &g.info;
        let v = json!({
            "scenario": i.scenario,
            "segment": i.segment,
            "started_at": g.started_at.map(|t| t.to_rfc3339()),
            "duration_s": i.duration_s,
            "closed": i.closed,
            "phases": i.phases,
            "moments": i.moments,
            "from": from.min(g.intervals.len()),
            "done": g.verdict.is_some(),
            "verdict": g.verdict,
        });
        let intervals = g.intervals.array_from(from);
        (self.redact)(&with_last(v, "intervals", &intervals))
    }

    /// At the end of a run: while a page or watcher is reading (a poll in the last 5 s), wait
    /// until one has read the verdict, at most `limit`.
    pub fn linger(&self, limit: Duration) {
        let began = Instant::now();
        loop {
            {
                let g = self.lock();
                let watched = g
                    .last_poll
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(5));
                if !watched || g.polled_after_verdict || began.elapsed() >= limit {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
