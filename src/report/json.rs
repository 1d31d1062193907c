//! report.json, schema_version 1 (docs/report-schema.md): the complete, machine-readable
//! record of a run. Latencies in milliseconds; error rates as fractions.
//!
//! `build` turns the engine's outcome into the typed `Report` once, at the end of a run; the
//! exporter writes a `Report` back out, so `flashcrowd report` rewrites it unchanged.

use super::model::Report;
use super::{Exporter, RunReport};
use crate::metrics::recorder::RequestStats;
use crate::metrics::ErrorKind;
use crate::run::RunResult;
use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

pub const SCHEMA_VERSION: u32 = 1;

fn ms(v: u64) -> f64 {
    (v as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// Percentiles of a µs histogram, in ms.
pub fn latency(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"p50": null, "p90": null, "p95": null, "p99": null, "p99_9": null, "max": null, "mean": null});
    }
    json!({
        "p50": ms(h.value_at_quantile(0.5)),
        "p90": ms(h.value_at_quantile(0.9)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p99_9": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": ((h.mean() / 1000.0) * 1000.0).round() / 1000.0,
    })
}

fn errors_by_kind(s: &RequestStats) -> Value {
    kinds(&s.errors)
}

fn kinds(errors: &[u64; crate::metrics::recorder::N_ERROR_KINDS]) -> Value {
    let mut m = Map::new();
    for k in ErrorKind::ALL {
        let n = errors[k as usize];
        if n > 0 {
            m.insert(k.name().into(), json!(n));
        }
    }
    Value::Object(m)
}

fn status_counts(s: &RequestStats) -> Value {
    let mut v = s.status.clone();
    v.sort();
    Value::Object(
        v.into_iter()
            .map(|(c, n)| (c.to_string(), json!(n)))
            .collect(),
    )
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        0.0
    } else {
        ((n as f64 / secs) * 100.0).round() / 100.0
    }
}

fn frac(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A stream step's row: what flowed after the open (WebSocket messages, SSE events).
fn stream_row(st: &crate::metrics::recorder::StreamStats, dur: f64) -> Value {
    let mut codes = st.close_codes.clone();
    codes.sort();
    json!({
        "received": st.received,
        "received_per_s": rate(st.received, dur),
        "sent": st.sent,
        "sent_per_s": rate(st.sent, dur),
        "first_event_ms": latency(&st.first_event),
        "gap_ms": latency(&st.gap),
        "duration_ms": latency(&st.duration),
        "close_codes": Value::Object(codes.into_iter().map(|(c, n)| (c.to_string(), json!(n))).collect()),
    })
}

/// `{client: requests}` of the clients that sent any, in the catalog's order (`counts` by
/// client index).
fn client_counts(names: &[String], counts: &[u64]) -> Value {
    Value::Object(
        names
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| (name.clone(), json!(n)))
            .collect(),
    )
}

/// The typed report of a finished run.
pub fn report(r: &RunResult) -> Report {
    serde_json::from_value(build(r)).expect("report.json and its typed model agree")
}

/// Writes `report.json`.
pub struct Json;

impl Exporter for Json {
    fn name(&self) -> &'static str {
        "report.json"
    }

    fn write(
        &self,
        r: &RunReport,
        dir: &std::path::Path,
    ) -> anyhow::Result<Vec<std::path::PathBuf>> {
        let mut bytes =
            serde_json::to_vec_pretty(&r.report).context("cannot encode report.json")?;
        bytes.push(b'\n');
        Ok(vec![super::rundir::write_atomic(
            dir,
            "report.json",
            &bytes,
        )?])
    }
}

/// report.json as a JSON value (the order of keys is the schema's).
pub fn build(r: &RunResult) -> Value {
    let rec = &r.total;
    let cat = &r.catalog;
    let dur = r.duration_s.max(1e-9);
    let all = rec.total_where(|_, _, _| true);

    // Per request name × client, merged over journeys and phases.
    let mut rows: Vec<(String, usize, RequestStats)> = Vec::new();
    for (e, c, _p, s) in rec.iter() {
        let name = &cat.endpoints[e].name;
        match rows.iter_mut().find(|(n, cc, _)| n == name && *cc == c) {
            Some(row) => row.2.merge(s),
            None => {
                let mut t = RequestStats::default();
                t.merge(s);
                rows.push((name.clone(), c, t));
            }
        }
    }
    let requests: Vec<Value> = rows
        .iter()
        .map(|(name, c, s)| {
            let mut row = json!({
                "name": name,
                "client": cat.clients[*c],
                "count": s.count,
                "rate": rate(s.count, dur),
                "errors": errors_by_kind(s),
                "status": status_counts(s),
                "bytes_in": s.bytes_in,
                "bytes_out": s.bytes_out,
                "latency_ms": latency(&s.latency),
                "service_time_ms": latency(&s.service),
                "ttfb_ms": latency(&s.ttfb),
            });
            if let Some(st) = &s.stream {
                row["stream"] = stream_row(st, dur);
            }
            row
        })
        .collect();

    let journeys: Vec<Value> = rec
        .journeys
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let empty = crate::metrics::recorder::new_histogram();
            let mut row = json!({
                "name": cat.journeys[i],
                "sessions": j.sessions,
                "completed": j.completed,
                "errors": j.errors,
                "latency_ms": latency(j.latency.as_deref().unwrap_or(&empty)),
            });
            if let Some(h) = j.from_release.as_deref() {
                row["from_release_ms"] = latency(h);
            }
            row
        })
        .collect();

    let clients: Vec<Value> = rec
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut row =
                json!({"name": cat.clients[i], "sessions": c.sessions, "requests": c.requests});
            if let Some(Some(net)) = cat.networks.get(i) {
                row["network"] = json!(net);
            }
            row
        })
        .collect();

    let phases: Vec<Value> = cat
        .phases
        .iter()
        .enumerate()
        .map(|(p, ph)| {
            let s = rec.total_where(|_, _, pp| pp == p);
            let len = (ph.end_s.min(r.duration_s) - ph.start_s).max(0.0);
            let mut row = json!({
                "name": ph.name,
                "start_s": ph.start_s,
                "end_s": ph.end_s,
                "planned_rate": (r.planned_rate.get(p).copied().unwrap_or(0.0) * 100.0).round() / 100.0,
                "requests": s.count,
                "rate": rate(s.count, len),
                "error_rate": frac(s.error_count(), s.count),
                "latency_ms": latency(&s.latency),
            });
            // The client mix as it came out: each client's requests in this phase.
            let mut by_client = vec![0u64; cat.clients.len()];
            for (_, c, pp, cell) in rec.iter() {
                if pp == p {
                    by_client[c] += cell.count;
                }
            }
            row["clients"] = client_counts(&cat.clients, &by_client);
            // The target's water level in this phase: the mean of each monitor series over the
            // phase's seconds that had a value.
            if !r.monitor_names.is_empty() {
                let mut means = serde_json::Map::new();
                for name in &r.monitor_names {
                    let vals: Vec<f64> = r
                        .series
                        .iter()
                        .filter(|pt| (pt.t as f64) >= ph.start_s && (pt.t as f64) < ph.end_s)
                        .filter_map(|pt| pt.monitor.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
                        .collect();
                    let mean = (!vals.is_empty())
                        .then(|| (vals.iter().sum::<f64>() / vals.len() as f64 * 1e4).round() / 1e4);
                    means.insert(name.clone(), json!(mean));
                }
                row["monitor_mean"] = Value::Object(means);
            }
            row
        })
        .collect();

    let series: Vec<Value> = r
        .series
        .iter()
        .map(|p| {
            let mut pt = json!({
                "t": p.t,
                "planned_rate": (p.planned_rate * 100.0).round() / 100.0,
                "sessions_started": p.sessions_started,
                "requests": p.requests,
                "errors": p.errors,
                "in_flight": p.in_flight,
                "parked": p.parked,
                "dropped": p.dropped,
                "p50_ms": p.p50_ms,
                "p99_ms": p.p99_ms,
                "errors_by_kind": r.errors_by_second.get(&p.t).map(kinds).unwrap_or_else(|| json!({})),
                "paused": p.paused,
                "unstarted": p.unstarted,
                "rate_factor": p.rate_factor,
                "clients": client_counts(&cat.clients, &p.clients),
            });
            if !r.monitor_names.is_empty() {
                let m: serde_json::Map<String, Value> = p
                    .monitor
                    .iter()
                    .map(|(n, v)| (n.clone(), json!((v * 1e6).round() / 1e6)))
                    .collect();
                pt["monitor"] = Value::Object(m);
            }
            pt
        })
        .collect();

    let thresholds: Vec<Value> = r
        .verdicts
        .iter()
        .map(|v| {
            let mut row = json!({
                "expr": v.threshold.source,
                "passed": v.passed,
                "observed": v.observed,
                "observed_text": v.observed.map(|o| v.threshold.metric.format_observed(o)),
                "limit": v.threshold.value,
                "limit_text": v.threshold.metric.format_observed(v.threshold.value),
            });
            if let Some(s) = v.threshold.scaled_text() {
                row["scaled_from"] = json!(s);
            }
            row
        })
        .collect();

    let lag = &rec.lag;
    let monitor = (!r.monitor_names.is_empty()).then(|| {
        json!({
            "every_s": r.monitor_every_s,
            "series": r.monitor_names,
            "scrapes": r.scrapes,
        })
    });
    let mut report = json!({
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "flashcrowd", "version": env!("CARGO_PKG_VERSION")},
        "scenario": {
            "name": r.scenario.name,
            "file": r.scenario.file,
            "sha256": r.scenario.sha256,
            "target": r.scenario.target,
            "zone": r.scenario.zone,
        },
        "run": {
            "started_at": r.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "ended_at": r.ended_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "duration_s": (r.duration_s * 1000.0).round() / 1000.0,
            "planned_duration_s": r.plan_duration_s,
            "status": r.status.name(),
            "reason": r.reason,
            "max_error_rate": r.max_error_rate,
            "segment": r.segment.to_string(),
            "seed": r.seed,
            "threads": r.threads,
            "planned_start": r.planned_start.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "start_lag_ms": r.planned_start.map(|p| {
                ((r.started_at - p).num_microseconds().unwrap_or(0) as f64 / 1000.0 * 1000.0).round() / 1000.0
            }),
        },
        "totals": {
            "requests": all.count,
            "errors": all.error_count(),
            "error_rate": frac(all.error_count(), all.count),
            "rate": rate(all.count, dur),
            "bytes_in": all.bytes_in,
            "bytes_out": all.bytes_out,
            "sessions_started": rec.sessions_started,
            "sessions_dropped": rec.sessions_dropped,
            "sessions_interrupted": rec.sessions_interrupted,
            "sessions_unstarted": rec.sessions_unstarted,
            "sessions_dropped_parked": rec.sessions_dropped_parked,
            "sessions_left_parked": rec.sessions_left_parked,
            "retried": rec.retried,
            "errors_by_kind": errors_by_kind(&all),
            "status": status_counts(&all),
        },
        "latency_ms": latency(&all.latency),
        "service_time_ms": latency(&all.service),
        "ttfb_ms": latency(&all.ttfb),
        "requests": requests,
        "journeys": journeys,
        "clients": clients,
        "phases": phases,
        "series": series,
        "thresholds": thresholds,
        "generator": {
            "lag_ms": if lag.is_empty() { json!({"p50": null, "p99": null, "max": null}) } else { json!({
                "p50": ms(lag.value_at_quantile(0.5)),
                "p99": ms(lag.value_at_quantile(0.99)),
                "max": ms(lag.max()),
            })},
            "burst_ms": {
                "count": rec.burst.len(),
                "p50": (!rec.burst.is_empty()).then(|| ms(rec.burst.value_at_quantile(0.5))),
                "p99": (!rec.burst.is_empty()).then(|| ms(rec.burst.value_at_quantile(0.99))),
                "max": (!rec.burst.is_empty()).then(|| ms(rec.burst.max())),
            },
            "warm_up": r.warm_up.map(|w| json!({
                "ms": (w.took_s * 1e6).round() / 1000.0,
                "connections": w.connections,
            })),
            "dropped": rec.sessions_dropped,
            "overloaded": r.overloaded(),
            "cpu_s": (r.cpu_s * 1000.0).round() / 1000.0,
        },
        "timeline": r.timeline,
        "actions": r.actions,
    });
    if let Some(m) = monitor {
        report["monitor"] = m;
    }
    if !r.waits.is_empty() {
        report["run"]["waits"] = json!(r.waits);
    }
    if let Some(inc) = &r.incomplete {
        report["run"]["incomplete"] = json!(inc);
    }
    report
}
