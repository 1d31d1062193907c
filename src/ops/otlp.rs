//! OpenTelemetry out (`run --otlp URL`): once a second, the run's metrics as OTLP/HTTP JSON to a
//! collector (an OpenTelemetry Collector, Grafana Cloud, Datadog, Honeycomb...), so that the
//! night's numbers sit beside the target's own dashboards.
//!
//! What is sent, every point cumulative from the run's start (temporality CUMULATIVE, so a lost
//! export loses nothing but a second of freshness):
//! - `flashcrowd.requests` (sum, `request`, `client`) and `flashcrowd.errors` (sum, `request`,
//!   `client`, `kind`);
//! - `flashcrowd.request.duration` (histogram, ms, from the intended start, per `request`),
//!   with explicit bucket bounds; count and sum are exact, the buckets counted from the run's
//!   HdrHistograms;
//! - `flashcrowd.sessions` (sum, `outcome` started | dropped | paused), and the gauges
//!   `flashcrowd.in_flight`, `flashcrowd.planned_rate`, `flashcrowd.generator.lag_p99` (ms).
//!
//! The resource names the run: `service.name` flashcrowd, `flashcrowd.scenario`,
//! `flashcrowd.segment`, `flashcrowd.run_id`. Headers (`--otlp-header`,
//! `OTEL_EXPORTER_OTLP_HEADERS`) carry a collector's credentials: they are sent, never printed.
//!
//! Sending happens on a thread of its own; the collector's second never waits for the network.
//! A collector that does not answer costs a warning, not the run. This file reads finished
//! seconds only; it does not steer or judge.

use crate::metrics::recorder::{ErrorKind, RequestStats};
use crate::metrics::{Catalog, Point, Recorder};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds of the latency buckets, ms (the last bucket is everything above).
pub const BOUNDS_MS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// Where to send and what to say about the run.
#[derive(Debug, Clone)]
pub struct OtlpSpec {
    /// The metrics URL (`…/v1/metrics`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub scenario: String,
    pub segment: String,
    pub run_id: String,
}

impl OtlpSpec {
    /// The metrics URL for `endpoint`: an OTLP base URL (`http://collector:4318`) gets
    /// `/v1/metrics`, a URL that already ends with it is kept.
    pub fn metrics_url(endpoint: &str) -> Result<String, String> {
        let e = endpoint.trim();
        let parsed = reqwest::Url::parse(e).map_err(|err| {
            format!("`{e}` is not a URL ({err}): give the collector's OTLP/HTTP address, like http://127.0.0.1:4318")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "`{e}`: OTLP is sent over http:// or https://, like http://127.0.0.1:4318"
            ));
        }
        Ok(match e.trim_end_matches('/').ends_with("/v1/metrics") {
            true => e.to_string(),
            false => format!("{}/v1/metrics", e.trim_end_matches('/')),
        })
    }

    /// `K=V` headers, from `--otlp-header` and from OTEL_EXPORTER_OTLP_HEADERS (`k=v,k2=v2`).
    pub fn parse_headers(
        args: &[String],
        env: Option<&str>,
    ) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let env_items = env.map(|e| e.split(',').map(str::to_string).collect::<Vec<_>>());
        for item in args.iter().cloned().chain(env_items.into_iter().flatten()) {
            if item.trim().is_empty() {
                continue;
            }
            let Some((k, v)) = item.split_once('=') else {
                return Err(format!(
                    "--otlp-header: `{}` is not KEY=VALUE, like `Authorization=Bearer …`",
                    item.split(':').next().unwrap_or("")
                ));
            };
            let k = k.trim();
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("--otlp-header: `{k}` is not a header name"));
            }
            out.push((k.to_string(), v.trim().to_string()));
        }
        Ok(out)
    }
}

/// Running totals for one (request, client).
#[derive(Default)]
struct Series {
    count: u64,
    errors: [u64; crate::metrics::recorder::N_ERROR_KINDS],
}

/// A cumulative histogram for one request name.
#[derive(Default, Clone)]
struct Hist {
    buckets: [u64; BOUNDS_MS.len() + 1],
    count: u64,
    sum_ms: f64,
    min_ms: Option<f64>,
    max_ms: f64,
}

impl Hist {
    fn add(&mut self, s: &RequestStats) {
        let h = &s.latency;
        if h.is_empty() {
            return;
        }
        let mut below = 0;
        for (k, b) in BOUNDS_MS.iter().enumerate() {
            let upto = h.count_between(0, (*b * 1000.0) as u64);
            self.buckets[k] += upto - below;
            below = upto;
        }
        self.buckets[BOUNDS_MS.len()] += h.len() - below;
        self.count += h.len();
        self.sum_ms += h.mean() * h.len() as f64 / 1000.0;
        let lo = h.min() as f64 / 1000.0;
        self.min_ms = Some(self.min_ms.map_or(lo, |m: f64| m.min(lo)));
        self.max_ms = self.max_ms.max(h.max() as f64 / 1000.0);
    }
}

/// The exporter: cumulative state, fed each second; a thread posts the payloads.
pub struct Otlp {
    spec: OtlpSpec,
    start_ns: u128,
    series: Vec<((String, String), Series)>,
    hists: Vec<(String, Hist)>,
    sessions: [u64; 3],
    tx: Option<mpsc::SyncSender<String>>,
    sender: Option<std::thread::JoinHandle<()>>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn attrs(kv: &[(&str, &str)]) -> Value {
    Value::Array(
        kv.iter()
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect(),
    )
}

impl Otlp {
    /// Starts the sending thread. Nothing is sent until the first second.
    pub fn start(spec: OtlpSpec) -> Result<Otlp, String> {
        // At most a few payloads queue behind a slow collector; past that a second is skipped
        // (the next one is cumulative, so nothing is lost but freshness).
        let (tx, rx) = mpsc::sync_channel::<String>(4);
        let url = spec.url.clone();
        let headers = spec.headers.clone();
        let sender = std::thread::Builder::new()
            .name("flashcrowd-otlp".into())
            .spawn(move || send_loop(&url, &headers, rx))
            .map_err(|e| format!("--otlp: cannot start the sending thread: {e}"))?;
        Ok(Otlp {
            spec,
            start_ns: now_ns(),
            series: Vec::new(),
            hists: Vec::new(),
            sessions: [0; 3],
            tx: Some(tx),
            sender: Some(sender),
        })
    }

    /// One finished second: adds it to the totals and queues the payload.
    pub fn second(&mut self, rec: &Recorder, cat: &Catalog, p: &Point) {
        for (e, c, _phase, s) in rec.iter() {
            let key = (cat.endpoints[e].name.clone(), cat.clients[c].clone());
            let i = match self.series.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    self.series.push((key.clone(), Series::default()));
                    self.series.len() - 1
                }
            };
            let t = &mut self.series[i].1;
            t.count += s.count;
            for (a, b) in t.errors.iter_mut().zip(s.errors.iter()) {
                *a += b;
            }
            let j = match self.hists.iter().position(|(n, _)| *n == key.0) {
                Some(j) => j,
                None => {
                    self.hists.push((key.0.clone(), Hist::default()));
                    self.hists.len() - 1
                }
            };
            self.hists[j].1.add(s);
        }
        self.sessions[0] += rec.sessions_started;
        self.sessions[1] += rec.sessions_dropped;
        self.sessions[2] += rec.sessions_paused;
        let lag_p99 = if rec.lag.is_empty() {
            0.0
        } else {
            rec.lag.value_at_quantile(0.99) as f64 / 1000.0
        };
        let body = self.payload(p, lag_p99, now_ns());
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(body);
        }
    }

    /// The OTLP/HTTP JSON body of the totals so far.
    fn payload(&self, p: &Point, lag_p99_ms: f64, now: u128) -> String {
        let (start, now) = (self.start_ns.to_string(), now.to_string());
        let point = |attributes: Value, v: u64| json!({"attributes": attributes, "startTimeUnixNano": start, "timeUnixNano": now, "asInt": v.to_string()});
        let sum = |name: &str, unit: &str, desc: &str, points: Vec<Value>| {
            json!({"name": name, "unit": unit, "description": desc,
                   "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": points}})
        };
        let gauge = |name: &str, unit: &str, desc: &str, v: f64| {
            json!({"name": name, "unit": unit, "description": desc,
                   "gauge": {"dataPoints": [{"timeUnixNano": now, "asDouble": v}]}})
        };
        let requests = self
            .series
            .iter()
            .map(|((r, c), s)| point(attrs(&[("request", r), ("client", c)]), s.count))
            .collect();
        let mut errors = Vec::new();
        for ((r, c), s) in &self.series {
            for (k, n) in ErrorKind::ALL.iter().zip(s.errors.iter()) {
                if *n > 0 {
                    errors.push(point(
                        attrs(&[("request", r), ("client", c), ("kind", k.name())]),
                        *n,
                    ));
                }
            }
        }
        let hists: Vec<Value> = self
            .hists
            .iter()
            .map(|(name, h)| {
                let mut d = json!({
                    "attributes": attrs(&[("request", name)]),
                    "startTimeUnixNano": start,
                    "timeUnixNano": now,
                    "count": h.count.to_string(),
                    "sum": h.sum_ms,
                    "bucketCounts": h.buckets.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
                    "explicitBounds": BOUNDS_MS,
                });
                if let Some(m) = h.min_ms {
                    d["min"] = json!(m);
                    d["max"] = json!(h.max_ms);
                }
                d
            })
            .collect();
        let sessions = ["started", "dropped", "paused"]
            .iter()
            .zip(self.sessions)
            .map(|(o, n)| point(attrs(&[("outcome", o)]), n))
            .collect();
        let metrics = vec![
            sum(
                "flashcrowd.requests",
                "{request}",
                "requests sent and answered (or failed)",
                requests,
            ),
            sum(
                "flashcrowd.errors",
                "{request}",
                "failed requests by kind",
                errors,
            ),
            json!({"name": "flashcrowd.request.duration", "unit": "ms",
                   "description": "request latency from the intended start (coordinated-omission free)",
                   "histogram": {"aggregationTemporality": 2, "dataPoints": hists}}),
            sum(
                "flashcrowd.sessions",
                "{session}",
                "sessions started, dropped at max_users, skipped while paused",
                sessions,
            ),
            gauge(
                "flashcrowd.in_flight",
                "{session}",
                "sessions in flight at the end of the second",
                p.in_flight as f64,
            ),
            gauge(
                "flashcrowd.planned_rate",
                "{session}/s",
                "the plan's arrivals (open model) or users (closed) in this second",
                p.planned_rate,
            ),
            gauge(
                "flashcrowd.generator.lag_p99",
                "ms",
                "how late the generator released its arrivals, p99 of the second",
                lag_p99_ms,
            ),
        ];
        let s = &self.spec;
        json!({"resourceMetrics": [{
            "resource": {"attributes": attrs(&[
                ("service.name", "flashcrowd"),
                ("service.version", env!("CARGO_PKG_VERSION")),
                ("flashcrowd.scenario", &s.scenario),
                ("flashcrowd.segment", &s.segment),
                ("flashcrowd.run_id", &s.run_id),
            ])},
            "scopeMetrics": [{"scope": {"name": "flashcrowd", "version": env!("CARGO_PKG_VERSION")}, "metrics": metrics}]
        }]})
        .to_string()
    }

    /// Sends what is queued and stops the thread (at most a few seconds for a slow collector).
    pub fn finish(&mut self) {
        self.tx.take();
        if let Some(h) = self.sender.take() {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                eprintln!(
                    "otlp: the collector at {} is slow; the last export may be lost",
                    self.spec.url
                );
            }
        }
    }
}

impl Drop for Otlp {
    fn drop(&mut self) {
        self.finish();
    }
}

fn send_loop(url: &str, headers: &[(String, String)], rx: mpsc::Receiver<String>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otlp: cannot start: {e}");
            return;
        }
    };
    // reqwest's connector wants the runtime's reactor from the moment it is built.
    let _entered = rt.enter();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("otlp: cannot start: {e}");
            return;
        }
    };
    let mut warned = false;
    while let Ok(body) = rx.recv() {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let result = rt.block_on(req.send());
        let problem = match result {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("answered {}", r.status())),
            // reqwest's message names the URL, never the headers.
            Err(e) => Some(e.to_string()),
        };
        if let (Some(p), false) = (problem, warned) {
            eprintln!("otlp: the collector at {url} {p}; the run goes on (the next export carries the totals)");
            warned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_metrics_path_once() {
        assert_eq!(
            OtlpSpec::metrics_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            OtlpSpec::metrics_url("https://otlp.example/otlp/v1/metrics").unwrap(),
            "https://otlp.example/otlp/v1/metrics"
        );
        assert!(OtlpSpec::metrics_url("127.0.0.1:4318").is_err());
        assert!(OtlpSpec::metrics_url("grpc://x:4317").is_err());
    }

    #[test]
    fn headers_come_from_flags_and_the_otel_variable() {
        let h = OtlpSpec::parse_headers(
            &["Authorization=Bearer abc".into()],
            Some("x-tenant=t1, dd-api-key=k=v"),
        )
        .unwrap();
        assert_eq!(
            h,
            [
                ("Authorization".to_string(), "Bearer abc".to_string()),
                ("x-tenant".to_string(), "t1".to_string()),
                ("dd-api-key".to_string(), "k=v".to_string()),
            ]
        );
        let bad =
            OtlpSpec::parse_headers(&["Authorization: Bearer secret".into()], None).unwrap_err();
        assert!(!bad.contains("secret"), "{bad}");
    }
}
