//! The Prometheus endpoint's metrics (prometheus-client, OpenMetrics text). The collector calls
//! [`Exporter::second`] once per completed second with that second's merged records; a scrape
//! reads the registry. The shards never touch any of this.
//!
//! Latency is exposed as Prometheus *histograms* (`flashcrowd_latency_seconds`, one per request
//! name, all clients merged, cumulative since the start): each bucket's count is taken from the
//! second's merged HdrHistogram (3 significant digits, so a value within 0.1 % of a bucket bound
//! may be counted on either side of it). Use `histogram_quantile()` in Grafana.

use crate::engine::shard::Steering;
use crate::metrics::recorder::ErrorKind;
use crate::metrics::{Catalog, Point, Recorder};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

/// Upper bounds of the latency buckets, seconds.
pub const BUCKETS_S: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Debug, Default, Clone)]
struct Hist {
    /// Cumulative counts per bucket (≤ bound), then the sum (s) and the count.
    le: [u64; BUCKETS_S.len()],
    sum: f64,
    count: u64,
}

/// Latency histograms per request name, as one metric family.
#[derive(Debug, Default, Clone)]
struct LatencyFamily(Arc<Mutex<Vec<(String, Hist)>>>);

impl EncodeMetric for LatencyFamily {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let Ok(v) = self.0.lock() else {
            return Ok(());
        };
        for (name, h) in v.iter() {
            let labels = vec![("request".to_string(), name.clone())];
            // The encoder takes each bucket's own count and sums them up itself.
            let mut below = 0;
            let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(BUCKETS_S.len() + 1);
            for (b, c) in BUCKETS_S.iter().zip(h.le.iter()) {
                buckets.push((*b, c.saturating_sub(below)));
                below = below.max(*c);
            }
            buckets.push((f64::INFINITY, h.count.saturating_sub(below)));
            encoder
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

pub struct Exporter {
    registry: Registry,
    /// Held while a second is folded in and while the text is encoded, so that a scrape sees
    /// one whole second: never `flashcrowd_elapsed_seconds` of one second beside counters of
    /// the one before (encoding reads the families one after another).
    second_lock: std::sync::Mutex<()>,
    requests: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    sessions: Family<Labels, Counter>,
    retried: Counter,
    in_flight: Gauge,
    planned: FGauge,
    achieved: FGauge,
    request_rate: FGauge,
    rate_factor: FGauge,
    paused: Gauge,
    phase: Family<Labels, Gauge>,
    lag_p99: FGauge,
    elapsed: Gauge,
    latency: LatencyFamily,
    monitor: Family<Labels, FGauge>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exporter")
    }
}

impl Exporter {
    pub fn new(closed: bool) -> Exporter {
        let mut r = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let errors = Family::<Labels, Counter>::default();
        let sessions = Family::<Labels, Counter>::default();
        let retried = Counter::default();
        let in_flight = Gauge::default();
        let planned = FGauge::default();
        let achieved = FGauge::default();
        let request_rate = FGauge::default();
        let rate_factor = FGauge::default();
        let paused = Gauge::default();
        let phase = Family::<Labels, Gauge>::default();
        let lag_p99 = FGauge::default();
        let elapsed = Gauge::default();
        let latency = LatencyFamily::default();
        let monitor = Family::<Labels, FGauge>::default();
        rate_factor.set(1.0);
        let unit = if closed {
            "users"
        } else {
            "arrivals per second"
        };
        r.register(
            "flashcrowd_requests",
            "Requests completed, by request name and client",
            requests.clone(),
        );
        r.register(
            "flashcrowd_errors",
            "Failed requests, by request name, client and error kind",
            errors.clone(),
        );
        r.register(
            "flashcrowd_sessions",
            "Sessions by outcome at arrival: started, dropped (past max_users), paused (live control), unstarted (planned, never started: a stop, or the generator over 1 s behind)",
            sessions.clone(),
        );
        r.register(
            "flashcrowd_retried",
            "Resends of requests whose attempt certainly got no answer (connection closed first, HTTP/2 refused unprocessed)",
            retried.clone(),
        );
        r.register(
            "flashcrowd_in_flight",
            "Sessions in flight at the end of the last second",
            in_flight.clone(),
        );
        r.register(
            "flashcrowd_planned_rate",
            format!("The plan's rate in the last second ({unit}), before live steering"),
            planned.clone(),
        );
        r.register(
            "flashcrowd_achieved_rate",
            "Sessions started in the last second (per second)",
            achieved.clone(),
        );
        r.register(
            "flashcrowd_request_rate",
            "Requests completed in the last second (per second)",
            request_rate.clone(),
        );
        r.register(
            "flashcrowd_rate_factor",
            "Live rate factor relative to the plan (1 = as planned)",
            rate_factor.clone(),
        );
        r.register(
            "flashcrowd_paused",
            "1 while new arrivals are paused by live control",
            paused.clone(),
        );
        r.register(
            "flashcrowd_phase",
            "The current phase of the plan (1 for the current one, 0 for the others)",
            phase.clone(),
        );
        r.register(
            "flashcrowd_generator_lag_p99_seconds",
            "Scheduler lag p99 (actual − intended send) in the last second",
            lag_p99.clone(),
        );
        r.register(
            "flashcrowd_elapsed_seconds",
            "Completed seconds of the run",
            elapsed.clone(),
        );
        r.register(
            "flashcrowd_latency_seconds",
            "Latency from the intended start (coordinated-omission free), by request name",
            latency.clone(),
        );
        r.register(
            "flashcrowd_monitor",
            "The target's water level: the monitor series scraped from its own endpoints",
            monitor.clone(),
        );
        Exporter {
            registry: r,
            second_lock: std::sync::Mutex::new(()),
            requests,
            errors,
            sessions,
            retried,
            in_flight,
            planned,
            achieved,
            request_rate,
            rate_factor,
            paused,
            phase,
            lag_p99,
            elapsed,
            latency,
            monitor,
        }
    }

    /// Folds in one completed second.
    pub fn second(
        &self,
        rec: &Recorder,
        cat: &Catalog,
        p: &Point,
        phase: usize,
        steering: Steering,
    ) {
        let _whole = self.second_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<(String, crate::metrics::recorder::RequestStats)> = Vec::new();
        for (e, c, _p, s) in rec.iter() {
            let name = &cat.endpoints[e].name;
            let client = &cat.clients[c];
            let l = vec![
                ("request".to_string(), name.clone()),
                ("client".to_string(), client.clone()),
            ];
            self.requests.get_or_create(&l).inc_by(s.count);
            for (k, n) in ErrorKind::ALL.iter().zip(s.errors.iter()) {
                if *n > 0 {
                    let mut l = l.clone();
                    l.push(("kind".to_string(), k.name().to_string()));
                    self.errors.get_or_create(&l).inc_by(*n);
                }
            }
            match names.iter_mut().find(|(n, _)| n == name) {
                Some((_, t)) => t.merge(s),
                None => {
                    let mut t = crate::metrics::recorder::RequestStats::default();
                    t.merge(s);
                    names.push((name.clone(), t));
                }
            }
        }
        if let Ok(mut hists) = self.latency.0.lock() {
            for (name, s) in names {
                let h = &s.latency;
                let i = match hists.iter().position(|(n, _)| *n == name) {
                    Some(i) => i,
                    None => {
                        hists.push((name, Hist::default()));
                        hists.len() - 1
                    }
                };
                let e = &mut hists[i].1;
                if !h.is_empty() {
                    for (k, b) in BUCKETS_S.iter().enumerate() {
                        e.le[k] += h.count_between(0, (*b * 1e6) as u64);
                    }
                    e.sum += h.mean() * h.len() as f64 / 1e6;
                    e.count += h.len();
                }
            }
        }
        for (what, n) in [
            ("started", rec.sessions_started),
            ("dropped", rec.sessions_dropped),
            ("paused", rec.sessions_paused),
            ("unstarted", rec.sessions_unstarted),
        ] {
            self.sessions
                .get_or_create(&vec![("outcome".to_string(), what.to_string())])
                .inc_by(n);
        }
        self.retried.inc_by(rec.retried);
        self.in_flight.set(p.in_flight as i64);
        self.planned.set(p.planned_rate);
        self.achieved.set(p.sessions_started as f64);
        self.request_rate.set(p.requests as f64);
        self.rate_factor.set(p.rate_factor);
        self.paused.set(steering.paused as i64);
        for (i, ph) in cat.phases.iter().enumerate() {
            self.phase
                .get_or_create(&vec![("phase".to_string(), ph.name.clone())])
                .set((i == phase) as i64);
        }
        self.lag_p99.set(if rec.lag.is_empty() {
            0.0
        } else {
            rec.lag.value_at_quantile(0.99) as f64 / 1e6
        });
        self.elapsed.set(p.t as i64 + 1);
        for (name, v) in &p.monitor {
            self.monitor
                .get_or_create(&vec![("series".to_string(), name.clone())])
                .set(*v);
        }
    }

    /// The exposition text (OpenMetrics 1.0, which Prometheus reads).
    pub fn render(&self) -> String {
        let _whole = self.second_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
