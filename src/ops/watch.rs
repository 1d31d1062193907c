//! `flashcrowd watch URL...`: one live view over many generators. It polls each segment's
//! `/api/intervals?from=N` twice a second, decodes each completed second's interval histograms
//! (latency.hlog's encoding) and counters, aligns the segments on their common start (each
//! segment's start, rounded to whole seconds from the earliest) and adds them exactly: merged
//! HdrHistograms, summed counts — no averaged percentiles. A merged second is published once
//! every segment that answers has completed it; a segment that stops answering is marked
//! missing (shown on the page and the terminal), not dropped silently, and the view goes on
//! without it. The merged seconds feed a `Board`, so the watcher serves the same live page.

use super::board::{Board, BoardInfo, Second};
use crate::metrics::catalog::PhaseSpan;
use crate::metrics::recorder::{new_histogram, N_ERROR_KINDS};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One second of one segment, decoded.
struct Interval {
    planned: f64,
    started: u64,
    requests: u64,
    errors: [u64; N_ERROR_KINDS],
    in_flight: u64,
    dropped: u64,
    paused: u64,
    lag_p99: Option<f64>,
    factor: f64,
    phase: usize,
    hists: Vec<(String, Histogram<u64>)>,
    /// The second's burst spread (releases), µs.
    burst: Option<Histogram<u64>>,
}

/// What the watcher knows of one segment.
pub struct Segment {
    pub url: String,
    pub label: Option<String>,
    started_at: Option<DateTime<Utc>>,
    /// The next second to ask for (its own numbering).
    next: usize,
    pending: BTreeMap<u64, Interval>,
    pub done: bool,
    pub missing: bool,
    /// When it last answered.
    last_ok: Option<Instant>,
    /// When it first failed to answer in the current outage.
    missing_since: Option<Instant>,
    pub verdict: Option<String>,
    /// Seconds received.
    pub seconds: usize,
    info: Option<Value>,
    pub last_error: Option<String>,
}

impl Segment {
    fn new(url: &str) -> Segment {
        Segment {
            url: url.trim_end_matches('/').to_string(),
            label: None,
            started_at: None,
            next: 0,
            pending: BTreeMap::new(),
            done: false,
            missing: false,
            last_ok: None,
            missing_since: None,
            verdict: None,
            seconds: 0,
            info: None,
            last_error: None,
        }
    }

    /// Takes one `/api/intervals` answer.
    fn take(&mut self, v: &Value) -> Result<(), String> {
        let from = v["from"].as_u64().ok_or("no `from`")? as usize;
        if from != self.next {
            return Err(format!("asked from {}, got from {from}", self.next));
        }
        if self.info.is_none() {
            self.info = Some(v.clone());
            self.label = v["segment"].as_str().map(str::to_string);
        }
        if self.started_at.is_none() {
            self.started_at = v["started_at"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc));
        }
        for it in v["intervals"].as_array().ok_or("no `intervals`")? {
            let t = it["t"].as_u64().ok_or("an interval without `t`")?;
            let mut errors = [0u64; N_ERROR_KINDS];
            for (e, x) in errors
                .iter_mut()
                .zip(it["errors"].as_array().into_iter().flatten())
            {
                *e = x.as_u64().unwrap_or(0);
            }
            let mut hists = Vec::new();
            for h in it["hists"].as_array().into_iter().flatten() {
                let tag = h["tag"].as_str().ok_or("a histogram without a tag")?;
                let hist = crate::report::state::decode_histogram(
                    h["hist"].as_str().ok_or("a histogram without data")?,
                )
                .map_err(|e| format!("second {t}, {tag}: {e}"))?;
                hists.push((tag.to_string(), hist));
            }
            let burst = match it["burst"].as_str() {
                Some(b) => Some(
                    crate::report::state::decode_histogram(b)
                        .map_err(|e| format!("second {t}, burst: {e}"))?,
                ),
                None => None,
            };
            let n = |k: &str| it[k].as_u64().unwrap_or(0);
            self.pending.insert(
                t,
                Interval {
                    planned: it["planned"].as_f64().unwrap_or(0.0),
                    started: n("started"),
                    requests: n("requests"),
                    errors,
                    in_flight: n("in_flight"),
                    dropped: n("dropped"),
                    paused: n("paused"),
                    lag_p99: it["lag_p99"].as_f64(),
                    factor: it["factor"].as_f64().unwrap_or(1.0),
                    phase: n("phase") as usize,
                    hists,
                    burst,
                },
            );
            self.next += 1;
            self.seconds += 1;
        }
        self.done = v["done"].as_bool().unwrap_or(false);
        self.verdict = v["verdict"]["status"].as_str().map(str::to_string);
        Ok(())
    }
}

/// The merged view of many segments.
pub struct Watch {
    pub segments: Vec<Segment>,
    pub board: Arc<Board>,
    /// The next merged second to publish.
    merged: u64,
    info_set: bool,
    client: reqwest::Client,
    /// A segment is missing once it has not answered for this long.
    missing_after: Duration,
}

/// The board's fixed facts, from the first segment that answered.
fn info_of(v: &Value) -> BoardInfo {
    BoardInfo {
        scenario: v["scenario"].as_str().unwrap_or("").to_string(),
        target: String::new(),
        segment: "watch".to_string(),
        closed: v["closed"].as_bool().unwrap_or(false),
        duration_s: v["duration_s"].as_f64().unwrap_or(0.0),
        phases: serde_json::from_value::<Vec<PhaseSpan>>(v["phases"].clone()).unwrap_or_default(),
        moments: serde_json::from_value(v["moments"].clone()).unwrap_or_default(),
    }
}

impl Watch {
    pub fn new(urls: &[String]) -> Result<Watch, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(900))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Watch {
            segments: urls.iter().map(|u| Segment::new(u)).collect(),
            board: Arc::new(Board::new(
                BoardInfo::default(),
                None,
                Arc::new(|s: &str| s.to_string()),
            )),
            merged: 0,
            info_set: false,
            client,
            missing_after: Duration::from_millis(1500),
        })
    }

    /// Asks every segment for its new seconds (concurrently), then publishes what is complete.
    pub async fn poll(&mut self) {
        let client = &self.client;
        let asks = self.segments.iter().map(|s| {
            let url = format!("{}/api/intervals?from={}", s.url, s.next);
            async move {
                let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
                if !r.status().is_success() {
                    return Err(format!("HTTP {}", r.status()));
                }
                r.json::<Value>().await.map_err(|e| e.to_string())
            }
        });
        let answers = futures_join_all(asks).await;
        let now = Instant::now();
        for (s, a) in self.segments.iter_mut().zip(answers) {
            match a.and_then(|v| s.take(&v)) {
                Ok(()) => {
                    s.last_ok = Some(now);
                    s.missing = false;
                    s.missing_since = None;
                    s.last_error = None;
                }
                Err(e) => {
                    s.last_error = Some(e);
                    if !s.done {
                        let since = *s.missing_since.get_or_insert(now);
                        if now.duration_since(since) >= self.missing_after || s.last_ok.is_some() {
                            s.missing = true;
                        }
                    }
                }
            }
        }
        self.publish();
    }

    /// Each segment's offset in whole seconds from the earliest start.
    fn offsets(&self) -> Option<Vec<u64>> {
        let starts: Vec<Option<DateTime<Utc>>> =
            self.segments.iter().map(|s| s.started_at).collect();
        let first = starts.iter().flatten().min()?;
        Some(
            starts
                .iter()
                .map(|s| {
                    s.map(|t| {
                        ((t - *first).num_milliseconds() as f64 / 1000.0)
                            .round()
                            .max(0.0) as u64
                    })
                    .unwrap_or(0)
                })
                .collect(),
        )
    }

    fn publish(&mut self) {
        if self.segments.iter().all(|s| s.info.is_none()) {
            return;
        }
        if !self.info_set {
            if let Some(v) = self.segments.iter().find_map(|s| s.info.as_ref()) {
                self.board.set_info(info_of(v));
                self.info_set = true;
            }
        }
        loop {
            // Wait for every segment that answers and has not started yet.
            if self
                .segments
                .iter()
                .any(|s| !s.missing && !s.done && s.started_at.is_none())
            {
                break;
            }
            let Some(offsets) = self.offsets() else { break };
            let t = self.merged;
            let mut ready = true;
            let mut any = false;
            for (s, off) in self.segments.iter().zip(&offsets) {
                if s.missing || t < *off {
                    continue;
                }
                let own = t - off;
                if s.pending.contains_key(&own) {
                    any = true;
                } else if !(s.done && own as usize >= s.next) {
                    ready = false;
                }
            }
            if !ready || !any {
                break;
            }
            let mut sec = Second {
                t,
                planned: 0.0,
                started: 0,
                requests: 0,
                errors: [0; N_ERROR_KINDS],
                in_flight: 0,
                dropped: 0,
                paused: 0,
                lag_p99_ms: None,
                rate_factor: 0.0,
                phase: 0,
                monitor: Vec::new(),
                latency: new_histogram(),
                hists: Vec::new(),
                burst: new_histogram(),
            };
            let mut n = 0.0f64;
            for (s, off) in self.segments.iter_mut().zip(&offsets) {
                if t < *off {
                    continue;
                }
                let Some(iv) = s.pending.remove(&(t - off)) else {
                    continue;
                };
                n += 1.0;
                sec.planned += iv.planned;
                sec.started += iv.started;
                sec.requests += iv.requests;
                for (a, b) in sec.errors.iter_mut().zip(iv.errors.iter()) {
                    *a += b;
                }
                sec.in_flight += iv.in_flight;
                sec.dropped += iv.dropped;
                sec.paused += iv.paused;
                // The worst generator's lag: lag is each generator's own.
                sec.lag_p99_ms = match (sec.lag_p99_ms, iv.lag_p99) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                sec.rate_factor += iv.factor;
                if let Some(b) = &iv.burst {
                    let _ = sec.burst.add(b);
                }
                sec.phase = sec.phase.max(iv.phase);
                for (tag, h) in iv.hists {
                    let _ = sec.latency.add(&h);
                    match sec.hists.iter_mut().find(|(x, _)| *x == tag) {
                        Some((_, m)) => {
                            let _ = m.add(&h);
                        }
                        None => sec.hists.push((tag, h)),
                    }
                }
            }
            sec.rate_factor /= n.max(1.0);
            self.board.push(sec);
            self.merged += 1;
        }
        if self.merged == 1 || self.board.seconds() == 1 {
            if let Some(first) = self
                .offsets()
                .and_then(|_| self.segments.iter().filter_map(|s| s.started_at).min())
            {
                self.board.set_started_at(first);
            }
        }
        self.board.set_extra("segments", self.segments_json());
    }

    pub fn segments_json(&self) -> Value {
        json!(self
            .segments
            .iter()
            .map(|s| json!({
                "url": s.url,
                "segment": s.label,
                "missing": s.missing,
                "done": s.done,
                "seconds": s.seconds,
                "verdict": s.verdict,
                "error": s.last_error,
            }))
            .collect::<Vec<_>>())
    }

    /// Is the watch over: every segment finished, or finished or missing for `give_up`?
    pub fn over(&self, give_up: Duration) -> bool {
        let now = Instant::now();
        let settled = self.segments.iter().all(|s| {
            s.done
                || (s.missing
                    && s.missing_since
                        .is_some_and(|t| now.duration_since(t) >= give_up))
        });
        settled
            && self.segments.iter().any(|s| s.done)
            && self
                .segments
                .iter()
                .all(|s| s.missing || s.pending.is_empty())
    }

    /// The whole view's totals: requests, errors, and latency from the merged histograms
    /// (report.json's latency fields), and the burst spread of releases as report.json's
    /// `generator.burst_ms`.
    pub fn summary(&self) -> Value {
        let (requests, h, errors) = self.board.totals();
        let b = self.board.burst();
        let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "seconds": self.board.seconds(),
            "segments": self.segments_json(),
            "complete": self.segments.iter().all(|s| s.done && !s.missing),
            "totals": {
                "requests": requests,
                "errors": errors.iter().sum::<u64>(),
                "latency_ms": crate::report::json::latency(&h),
                "burst_ms": {
                    "count": b.len(),
                    "p50": (!b.is_empty()).then(|| ms(b.value_at_quantile(0.5))),
                    "p99": (!b.is_empty()).then(|| ms(b.value_at_quantile(0.99))),
                    "max": (!b.is_empty()).then(|| ms(b.max())),
                },
            },
        })
    }
}

/// Awaits every future, polled together on this task; the outputs in order.
async fn futures_join_all<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut handles: Vec<_> = futs.map(Box::pin).collect();
    let mut done: Vec<Option<T>> = (0..handles.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (h, d) in handles.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                match h.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *d = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
