//! OpenTelemetry out (`run --otlp URL`): once a second, the run's metrics as OTLP/HTTP to a
//! collector (an OpenTelemetry Collector, Grafana Cloud, Datadog, Honeycomb...), so that the
//! night's numbers sit beside the target's own dashboards. The body is an
//! `ExportMetricsServiceRequest`, encoded as protobuf (`application/x-protobuf`, OTLP/HTTP's
//! default and the OpenTelemetry SDKs': `http/protobuf`) or as OTLP's JSON mapping
//! (`application/json`, `--otlp-protocol http/json`). The protobuf is written by hand here
//! ([`pb`]): varints, length-delimited fields, fixed64 and doubles, in field-number order and
//! without proto3 defaults (what protobuf's own serializers write), so no code generator is
//! built for it.
//!
//! What is sent, every point cumulative from the run's start (temporality CUMULATIVE, so a lost
//! export loses nothing but a second of freshness):
//! - `flashcrowd.requests` (sum, `request`, `client`) and `flashcrowd.errors` (sum, `request`,
//!   `client`, `kind`);
//! - `flashcrowd.request.duration` (histogram, ms, from the intended start, per `request`),
//!   with explicit bucket bounds; count and sum are exact, the buckets counted from the run's
//!   HdrHistograms;
//! - `flashcrowd.sessions` (sum, `outcome` started | dropped | paused | unstarted), and the gauges
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
use std::fmt;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds of the latency buckets, ms (the last bucket is everything above).
pub const BOUNDS_MS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// How an export is encoded: the `http/…` values of OpenTelemetry's `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `http/protobuf`: the default, as in OpenTelemetry's SDKs and collectors.
    #[default]
    Protobuf,
    /// `http/json`: OTLP's JSON mapping of the same message.
    Json,
}

impl Protocol {
    /// `http/protobuf` (or `protobuf`), `http/json` (or `json`); `grpc` is refused with a
    /// way out.
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" | "protobuf" => Ok(Protocol::Protobuf),
            "http/json" | "json" => Ok(Protocol::Json),
            "grpc" => Err("`grpc` is not supported: flashcrowd sends OTLP over HTTP; use http/protobuf (the default) and the collector's OTLP/HTTP port (4318)".to_string()),
            other => Err(format!("`{other}` is not an OTLP protocol: use http/protobuf (the default) or http/json")),
        }
    }

    /// The Content-Type of a body.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Protobuf => "application/x-protobuf",
            Protocol::Json => "application/json",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Protobuf => "http/protobuf",
            Protocol::Json => "http/json",
        })
    }
}

/// What `--otlp` and its flags asked for: where, with which headers, in which encoding.
#[derive(Debug, Clone)]
pub struct OtlpTarget {
    /// The metrics URL (`…/v1/metrics`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub protocol: Protocol,
}

/// Where to send and what to say about the run.
#[derive(Debug, Clone)]
pub struct OtlpSpec {
    /// The metrics URL (`…/v1/metrics`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// How the body is encoded.
    pub protocol: Protocol,
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

    /// A metrics URL taken as it is (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: nothing is added),
    /// checked like `metrics_url`.
    pub fn metrics_url_as_given(endpoint: &str) -> Result<String, String> {
        Self::metrics_url(endpoint)?;
        Ok(endpoint.trim().to_string())
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
    sessions: [u64; 4],
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    sender: Option<std::thread::JoinHandle<()>>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn attrs(kv: &[(String, String)]) -> Value {
    Value::Array(
        kv.iter()
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect(),
    )
}

/// One export: `ExportMetricsServiceRequest` with one resource and one scope.
struct Request {
    resource: Vec<(String, String)>,
    metrics: Vec<Metric>,
}

struct Metric {
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    data: Data,
}

enum Data {
    /// Monotonic, cumulative.
    Sum(Vec<Number>),
    Gauge(Vec<Number>),
    /// Explicit buckets ([`BOUNDS_MS`]), cumulative.
    Histogram(Vec<HistPoint>),
}

struct Number {
    attributes: Vec<(String, String)>,
    /// Carries the run's start as its start time (sums; a gauge has none).
    cumulative: bool,
    value: Num,
}

enum Num {
    Int(u64),
    Double(f64),
}

struct HistPoint {
    attributes: Vec<(String, String)>,
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
    min_max: Option<(f64, f64)>,
}

/// AGGREGATION_TEMPORALITY_CUMULATIVE.
const CUMULATIVE: u64 = 2;

impl Request {
    /// OTLP's JSON mapping (64-bit integers as strings, camelCase names, enums as numbers).
    fn to_json(&self, start: u64, now: u64) -> Value {
        let (start, now) = (start.to_string(), now.to_string());
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                let number = |n: &Number| {
                    let mut d = json!({"attributes": attrs(&n.attributes)});
                    if n.cumulative {
                        d["startTimeUnixNano"] = json!(start);
                    }
                    d["timeUnixNano"] = json!(now);
                    match n.value {
                        Num::Int(v) => d["asInt"] = json!(v.to_string()),
                        Num::Double(v) => d["asDouble"] = json!(v),
                    }
                    if n.attributes.is_empty() {
                        if let Some(o) = d.as_object_mut() {
                            o.remove("attributes");
                        }
                    }
                    d
                };
                let mut v = json!({"name": m.name, "unit": m.unit, "description": m.description});
                match &m.data {
                    Data::Sum(points) => {
                        v["sum"] = json!({"aggregationTemporality": CUMULATIVE, "isMonotonic": true,
                                          "dataPoints": points.iter().map(number).collect::<Vec<_>>()})
                    }
                    Data::Gauge(points) => {
                        v["gauge"] =
                            json!({"dataPoints": points.iter().map(number).collect::<Vec<_>>()})
                    }
                    Data::Histogram(points) => {
                        let points: Vec<Value> = points
                            .iter()
                            .map(|h| {
                                let mut d = json!({
                                    "attributes": attrs(&h.attributes),
                                    "startTimeUnixNano": start,
                                    "timeUnixNano": now,
                                    "count": h.count.to_string(),
                                    "sum": h.sum,
                                    "bucketCounts": h.buckets.iter().map(|b| b.to_string()).collect::<Vec<_>>(),
                                    "explicitBounds": BOUNDS_MS,
                                });
                                if let Some((lo, hi)) = h.min_max {
                                    d["min"] = json!(lo);
                                    d["max"] = json!(hi);
                                }
                                d
                            })
                            .collect();
                        v["histogram"] =
                            json!({"aggregationTemporality": CUMULATIVE, "dataPoints": points})
                    }
                }
                v
            })
            .collect();
        json!({"resourceMetrics": [{
            "resource": {"attributes": attrs(&self.resource)},
            "scopeMetrics": [{"scope": {"name": "flashcrowd", "version": env!("CARGO_PKG_VERSION")}, "metrics": metrics}]
        }]})
    }

    /// The protobuf encoding, field numbers from opentelemetry-proto's
    /// `collector/metrics/v1/metrics_service.proto`, `metrics/v1/metrics.proto`,
    /// `resource/v1/resource.proto` and `common/v1/common.proto`.
    fn to_protobuf(&self, start: u64, now: u64) -> Vec<u8> {
        use pb::*;
        let key_values = |out: &mut Vec<u8>, field: u32, kv: &[(String, String)]| {
            for (k, v) in kv {
                // KeyValue { key = 1; AnyValue value = 2 }, AnyValue { string_value = 1 }
                message(out, field, |m| {
                    string(m, 1, k);
                    message(m, 2, |a| string(a, 1, v));
                });
            }
        };
        let number = |out: &mut Vec<u8>, n: &Number| {
            // NumberDataPoint: start_time_unix_nano = 2, time_unix_nano = 3, as_double = 4,
            // as_int = 6 (sfixed64), attributes = 7.
            message(out, 1, |d| {
                if n.cumulative {
                    fixed64(d, 2, start);
                }
                fixed64(d, 3, now);
                match n.value {
                    Num::Double(v) => double(d, 4, v),
                    Num::Int(v) => fixed64(d, 6, v),
                }
                key_values(d, 7, &n.attributes);
            })
        };
        let mut out = Vec::new();
        // ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1 }
        message(&mut out, 1, |rm| {
            // ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2 }
            message(rm, 1, |r| key_values(r, 1, &self.resource));
            message(rm, 2, |sm| {
                // ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2 }
                message(sm, 1, |sc| {
                    string(sc, 1, "flashcrowd");
                    string(sc, 2, env!("CARGO_PKG_VERSION"));
                });
                for m in &self.metrics {
                    // Metric { name = 1; description = 2; unit = 3; gauge = 5; sum = 7;
                    // histogram = 9 }
                    message(sm, 2, |mm| {
                        string(mm, 1, m.name);
                        string(mm, 2, m.description);
                        string(mm, 3, m.unit);
                        match &m.data {
                            Data::Gauge(points) => message(mm, 5, |g| {
                                for n in points {
                                    number(g, n);
                                }
                            }),
                            // Sum { data_points = 1; aggregation_temporality = 2;
                            // is_monotonic = 3 }
                            Data::Sum(points) => message(mm, 7, |s| {
                                for n in points {
                                    number(s, n);
                                }
                                uint(s, 2, CUMULATIVE);
                                uint(s, 3, 1);
                            }),
                            // Histogram { data_points = 1; aggregation_temporality = 2 }
                            Data::Histogram(points) => message(mm, 9, |h| {
                                for p in points {
                                    // HistogramDataPoint: start = 2, time = 3, count = 4
                                    // (fixed64), sum = 5, bucket_counts = 6 (packed fixed64),
                                    // explicit_bounds = 7 (packed double), attributes = 9,
                                    // min = 11, max = 12.
                                    message(h, 1, |d| {
                                        fixed64(d, 2, start);
                                        fixed64(d, 3, now);
                                        if p.count > 0 {
                                            fixed64(d, 4, p.count);
                                        }
                                        double(d, 5, p.sum);
                                        packed_fixed64(d, 6, p.buckets.iter().copied());
                                        packed_fixed64(d, 7, BOUNDS_MS.iter().map(|b| b.to_bits()));
                                        key_values(d, 9, &p.attributes);
                                        if let Some((lo, hi)) = p.min_max {
                                            double(d, 11, lo);
                                            double(d, 12, hi);
                                        }
                                    })
                                }
                                uint(h, 2, CUMULATIVE);
                            }),
                        }
                    });
                }
            });
        });
        out
    }
}

/// Protocol Buffers' wire format, the little of it OTLP metrics need. Scalars that proto3 has
/// no presence for are left out when they are zero or empty, as protobuf's own serializers do;
/// fields of a `oneof` or marked `optional` (as_int, as_double, sum, min, max) are always
/// written.
pub mod pb {
    /// A base-128 varint.
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire_type));
    }

    /// A varint field (uint64, enum, bool); nothing when it is 0 (the default).
    pub fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
        if v != 0 {
            key(out, field, 0);
            varint(out, v);
        }
    }

    /// A fixed64 / sfixed64 field, little-endian, written even when 0 (a `oneof` member or
    /// `optional`; callers leave out a plain field's 0 themselves).
    pub fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
        key(out, field, 1);
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// A double field.
    pub fn double(out: &mut Vec<u8>, field: u32, v: f64) {
        fixed64(out, field, v.to_bits());
    }

    /// A length-delimited field.
    pub fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
        key(out, field, 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    /// A string field; nothing when it is empty (the default).
    pub fn string(out: &mut Vec<u8>, field: u32, s: &str) {
        if !s.is_empty() {
            bytes(out, field, s.as_bytes());
        }
    }

    /// An embedded message, written by `f` (always written, even when empty: presence).
    pub fn message(out: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
        let mut m = Vec::new();
        f(&mut m);
        bytes(out, field, &m);
    }

    /// A packed repeated fixed64 or double field (8 bytes each); nothing when empty.
    pub fn packed_fixed64(out: &mut Vec<u8>, field: u32, vs: impl Iterator<Item = u64>) {
        let mut m = Vec::new();
        for v in vs {
            m.extend_from_slice(&v.to_le_bytes());
        }
        if !m.is_empty() {
            bytes(out, field, &m);
        }
    }
}

impl Otlp {
    /// Starts the sending thread. Nothing is sent until the first second.
    pub fn start(spec: OtlpSpec) -> Result<Otlp, String> {
        // At most a few payloads queue behind a slow collector; past that a second is skipped
        // (the next one is cumulative, so nothing is lost but freshness).
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let url = spec.url.clone();
        let headers = spec.headers.clone();
        let content_type = spec.protocol.content_type();
        let sender = std::thread::Builder::new()
            .name("flashcrowd-otlp".into())
            .spawn(move || send_loop(&url, content_type, &headers, rx))
            .map_err(|e| format!("--otlp: cannot start the sending thread: {e}"))?;
        Ok(Otlp {
            spec,
            start_ns: now_ns(),
            series: Vec::new(),
            hists: Vec::new(),
            sessions: [0; 4],
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
        self.sessions[3] += rec.sessions_unstarted;
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

    /// The totals so far as one ExportMetricsServiceRequest.
    fn request(&self, p: &Point, lag_p99_ms: f64) -> Request {
        let owned = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let counter = |kv: &[(&str, &str)], v: u64| Number {
            attributes: owned(kv),
            cumulative: true,
            value: Num::Int(v),
        };
        let gauge =
            |name: &'static str, unit: &'static str, description: &'static str, v: f64| Metric {
                name,
                unit,
                description,
                data: Data::Gauge(vec![Number {
                    attributes: Vec::new(),
                    cumulative: false,
                    value: Num::Double(v),
                }]),
            };
        let requests = self
            .series
            .iter()
            .map(|((r, c), s)| counter(&[("request", r), ("client", c)], s.count))
            .collect();
        let mut errors = Vec::new();
        for ((r, c), s) in &self.series {
            for (k, n) in ErrorKind::ALL.iter().zip(s.errors.iter()) {
                if *n > 0 {
                    errors.push(counter(
                        &[("request", r), ("client", c), ("kind", k.name())],
                        *n,
                    ));
                }
            }
        }
        let hists = self
            .hists
            .iter()
            .map(|(name, h)| HistPoint {
                attributes: owned(&[("request", name)]),
                count: h.count,
                sum: h.sum_ms,
                buckets: h.buckets.to_vec(),
                min_max: h.min_ms.map(|m| (m, h.max_ms)),
            })
            .collect();
        let sessions = ["started", "dropped", "paused", "unstarted"]
            .iter()
            .zip(self.sessions)
            .map(|(o, n)| counter(&[("outcome", o)], n))
            .collect();
        let metrics = vec![
            Metric {
                name: "flashcrowd.requests",
                unit: "{request}",
                description: "requests sent and answered (or failed)",
                data: Data::Sum(requests),
            },
            Metric {
                name: "flashcrowd.errors",
                unit: "{request}",
                description: "failed requests by kind",
                data: Data::Sum(errors),
            },
            Metric {
                name: "flashcrowd.request.duration",
                unit: "ms",
                description: "request latency from the intended start (coordinated-omission free)",
                data: Data::Histogram(hists),
            },
            Metric {
                name: "flashcrowd.sessions",
                unit: "{session}",
                description: "sessions started, dropped at max_users, skipped while paused, planned but never started",
                data: Data::Sum(sessions),
            },
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
        Request {
            resource: owned(&[
                ("service.name", "flashcrowd"),
                ("service.version", env!("CARGO_PKG_VERSION")),
                ("flashcrowd.scenario", &s.scenario),
                ("flashcrowd.segment", &s.segment),
                ("flashcrowd.run_id", &s.run_id),
            ]),
            metrics,
        }
    }

    /// The body of the totals so far, in the spec's encoding.
    fn payload(&self, p: &Point, lag_p99_ms: f64, now: u128) -> Vec<u8> {
        let req = self.request(p, lag_p99_ms);
        let (start, now) = (self.start_ns as u64, now as u64); // ns since 1970: u64 until 2554
        match self.spec.protocol {
            Protocol::Protobuf => req.to_protobuf(start, now),
            Protocol::Json => req.to_json(start, now).to_string().into_bytes(),
        }
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

fn send_loop(
    url: &str,
    content_type: &str,
    headers: &[(String, String)],
    rx: mpsc::Receiver<Vec<u8>>,
) {
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
            .header("content-type", content_type)
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
    fn protobuf_wire_pieces() {
        let mut v = Vec::new();
        pb::varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        // KeyValue { key: "a", value: AnyValue { string_value: "b" } } as attribute field 7.
        let mut v = Vec::new();
        pb::message(&mut v, 7, |m| {
            pb::string(m, 1, "a");
            pb::message(m, 2, |a| pb::string(a, 1, "b"));
        });
        assert_eq!(
            v,
            [0x3a, 0x08, 0x0a, 0x01, b'a', 0x12, 0x03, 0x0a, 0x01, b'b']
        );
        let mut v = Vec::new();
        pb::double(&mut v, 5, 1.5);
        assert_eq!(v[0], 5 << 3 | 1);
        assert_eq!(v[1..], 1.5f64.to_le_bytes());
        let mut v = Vec::new();
        pb::packed_fixed64(&mut v, 6, [1u64, 2].into_iter());
        assert_eq!(v[..2], [6 << 3 | 2, 16]);
        assert_eq!(v.len(), 18);
        let mut v = Vec::new();
        pb::uint(&mut v, 3, 0);
        pb::string(&mut v, 1, "");
        assert!(v.is_empty(), "proto3 defaults are left out");
    }

    #[test]
    fn protocols_follow_otel_exporter_otlp_protocol() {
        assert_eq!(Protocol::default(), Protocol::Protobuf);
        assert_eq!(Protocol::parse("http/protobuf"), Ok(Protocol::Protobuf));
        assert_eq!(Protocol::parse("JSON"), Ok(Protocol::Json));
        assert_eq!(
            Protocol::parse("http/json").unwrap().to_string(),
            "http/json"
        );
        assert!(Protocol::parse("grpc").unwrap_err().contains("4318"));
        assert!(Protocol::parse("thrift").is_err());
        assert_eq!(Protocol::Protobuf.content_type(), "application/x-protobuf");
    }

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
