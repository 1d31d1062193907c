//! state.json: the exact record of a finished run that `flashcrowd merge` reads — the catalog,
//! the segment, the scale, the thresholds as written (full limits, before a segment's or the
//! scale's shrinking) and the final `Recorder` with every histogram serialized whole (HdrHistogram
//! V2 + deflate, base64). Percentiles cannot be merged; histograms can, exactly.
//!
//! Not a stable interface: written and read by the same flashcrowd version.
//!
//! Secrets: names (endpoints, journeys, clients, target, reason) go through the run's
//! `Redactor` one by one; the base64 blobs do not, since replacing a short secret that happens
//! to occur inside random base64 would corrupt a histogram without protecting anything.

use super::rundir::{self, Redactor};
use crate::metrics::recorder::{
    new_recording_histogram, ClientStats, JourneyStats, RequestStats, StreamStats,
};
use crate::metrics::{Catalog, ErrorKind, Recorder};
use crate::run::RunResult;
use anyhow::{anyhow, Context};
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FILE: &str = "state.json";
pub const STATE_VERSION: u32 = 1;

/// One histogram: V2 deflate, base64.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing a histogram into memory does not fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// One histogram: V2 without deflate, base64 — about three times the deflated form's size for an
/// eighth of its CPU, the right trade for the journal's small per-second histograms, encoded on
/// second boundaries when a countdown's burst fires. [`decode_histogram`] reads both forms.
pub fn encode_histogram_plain(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    hdrhistogram::serialization::V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serializing a histogram into memory does not fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_histogram(s: &str) -> anyhow::Result<Histogram<u64>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| anyhow!("bad base64 in a histogram: {e}"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut raw.as_slice())
        .map_err(|e| anyhow!("bad histogram: {e:?}"))?;
    // Shaped like the recorder's own histograms (the recording range up front, growing past it),
    // so that adding never drops a value and a decoded recorder equals the one encoded.
    let mut out = new_recording_histogram();
    out.add(&h)
        .map_err(|e| anyhow!("histogram out of range: {e:?}"))?;
    Ok(out)
}

/// One used (endpoint, client, phase) cell of the recorder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub endpoint: usize,
    pub client: usize,
    pub phase: usize,
    pub count: u64,
    /// By error kind name (`timeout`, `http_5xx`, …); kinds with no errors are left out.
    pub errors: IndexMap<String, u64>,
    /// Status code → count.
    pub status: BTreeMap<u16, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency: String,
    pub service: String,
    pub ttfb: String,
    /// A WebSocket or SSE step's stream statistics (left out for plain requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamCell>,
}

/// `StreamStats`, serialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamCell {
    pub first_event: String,
    pub gap: String,
    pub duration: String,
    pub received: u64,
    pub sent: u64,
    /// Close code → count.
    pub close_codes: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journey {
    pub sessions: u64,
    pub completed: u64,
    pub errors: u64,
    pub latency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_release: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub sessions: u64,
    pub requests: u64,
}

/// A `Recorder`, serialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecorderState {
    pub cells: Vec<Cell>,
    pub journeys: Vec<Journey>,
    pub clients: Vec<Client>,
    pub lag: String,
    pub burst: String,
    pub sessions_started: u64,
    pub sessions_dropped: u64,
    pub sessions_interrupted: u64,
    #[serde(default)]
    pub sessions_dropped_parked: u64,
    #[serde(default)]
    pub sessions_left_parked: u64,
    /// Absent in states written before retries were counted.
    #[serde(default)]
    pub retried: u64,
    /// Absent in states written before unstarted arrivals were counted.
    #[serde(default)]
    pub sessions_unstarted: u64,
    pub in_flight: u64,
}

impl RecorderState {
    pub fn from_recorder(r: &Recorder) -> RecorderState {
        Self::encode(r, encode_histogram)
    }

    /// The recorder with each histogram encoded by `enc`.
    pub fn encode(r: &Recorder, enc: fn(&Histogram<u64>) -> String) -> RecorderState {
        let cells = r
            .iter()
            .map(|(e, c, p, s)| Cell {
                endpoint: e,
                client: c,
                phase: p,
                count: s.count,
                errors: ErrorKind::ALL
                    .iter()
                    .filter(|k| s.errors[**k as usize] > 0)
                    .map(|k| (k.name().to_string(), s.errors[*k as usize]))
                    .collect(),
                status: s.status.iter().copied().collect(),
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                latency: enc(&s.latency),
                service: enc(&s.service),
                ttfb: enc(&s.ttfb),
                stream: s.stream.as_ref().map(|t| StreamCell {
                    first_event: enc(&t.first_event),
                    gap: enc(&t.gap),
                    duration: enc(&t.duration),
                    received: t.received,
                    sent: t.sent,
                    close_codes: t.close_codes.iter().copied().collect(),
                }),
            })
            .collect();
        RecorderState {
            cells,
            journeys: r
                .journeys
                .iter()
                .map(|j| Journey {
                    sessions: j.sessions,
                    completed: j.completed,
                    errors: j.errors,
                    latency: j.latency.as_deref().map(enc),
                    from_release: j.from_release.as_deref().map(enc),
                })
                .collect(),
            clients: r
                .clients
                .iter()
                .map(|c| Client {
                    sessions: c.sessions,
                    requests: c.requests,
                })
                .collect(),
            lag: enc(&r.lag),
            burst: enc(&r.burst),
            sessions_started: r.sessions_started,
            sessions_dropped: r.sessions_dropped,
            sessions_interrupted: r.sessions_interrupted,
            sessions_dropped_parked: r.sessions_dropped_parked,
            sessions_left_parked: r.sessions_left_parked,
            retried: r.retried,
            sessions_unstarted: r.sessions_unstarted,
            in_flight: r.in_flight,
        }
    }

    /// The recorder back, shaped by `catalog`; an error when a cell or list does not fit it.
    pub fn to_recorder(&self, catalog: &Catalog) -> anyhow::Result<Recorder> {
        let mut r = Recorder::new(
            catalog.endpoints.len(),
            catalog.clients.len(),
            catalog.phases.len().max(1),
            catalog.journeys.len(),
        );
        for c in &self.cells {
            if c.endpoint >= r.n_requests || c.client >= r.n_clients || c.phase >= r.n_phases {
                return Err(anyhow!(
                    "a cell ({}, {}, {}) lies outside the catalog",
                    c.endpoint,
                    c.client,
                    c.phase
                ));
            }
            let mut s = RequestStats {
                latency: decode_histogram(&c.latency)?,
                service: decode_histogram(&c.service)?,
                ttfb: decode_histogram(&c.ttfb)?,
                count: c.count,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                status: c.status.iter().map(|(k, v)| (*k, *v)).collect(),
                stream: match &c.stream {
                    Some(t) => Some(Box::new(StreamStats {
                        first_event: decode_histogram(&t.first_event)?,
                        gap: decode_histogram(&t.gap)?,
                        duration: decode_histogram(&t.duration)?,
                        received: t.received,
                        sent: t.sent,
                        close_codes: t.close_codes.iter().map(|(k, v)| (*k, *v)).collect(),
                    })),
                    None => None,
                },
                ..Default::default()
            };
            for (name, n) in &c.errors {
                let k = ErrorKind::ALL
                    .iter()
                    .find(|k| k.name() == name)
                    .ok_or_else(|| anyhow!("unknown error kind `{name}`"))?;
                s.errors[*k as usize] = *n;
            }
            let i = r.index(c.endpoint, c.client, c.phase);
            r.requests[i] = Some(Box::new(s));
        }
        if self.journeys.len() != r.journeys.len() || self.clients.len() != r.clients.len() {
            return Err(anyhow!("journeys or clients do not match the catalog"));
        }
        for (a, b) in r.journeys.iter_mut().zip(&self.journeys) {
            *a = JourneyStats {
                sessions: b.sessions,
                completed: b.completed,
                errors: b.errors,
                latency: match &b.latency {
                    Some(h) => Some(Box::new(decode_histogram(h)?)),
                    None => None,
                },
                from_release: match &b.from_release {
                    Some(h) => Some(Box::new(decode_histogram(h)?)),
                    None => None,
                },
            };
        }
        for (a, b) in r.clients.iter_mut().zip(&self.clients) {
            *a = ClientStats {
                sessions: b.sessions,
                requests: b.requests,
            };
        }
        r.lag = decode_histogram(&self.lag)?;
        r.burst = decode_histogram(&self.burst)?;
        r.sessions_started = self.sessions_started;
        r.sessions_dropped = self.sessions_dropped;
        r.sessions_interrupted = self.sessions_interrupted;
        r.sessions_dropped_parked = self.sessions_dropped_parked;
        r.sessions_left_parked = self.sessions_left_parked;
        r.retried = self.retried;
        r.sessions_unstarted = self.sessions_unstarted;
        r.in_flight = self.in_flight;
        Ok(r)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioState {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// What a run leaves for `flashcrowd merge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub state_version: u32,
    pub tool_version: String,
    pub scenario: ScenarioState,
    /// 1-based `i/n`, as on the command line.
    pub segment: String,
    pub scale: f64,
    pub time_scale: f64,
    pub seed: u64,
    /// Threshold expressions as written (scenario, then `--threshold`): the full limits.
    pub thresholds: Vec<String>,
    pub status: String,
    pub reason: Option<String>,
    pub started_at: String,
    pub ended_at: String,
    pub planned_start: Option<String>,
    pub duration_s: f64,
    pub plan_duration_s: f64,
    pub threads: usize,
    pub cpu_s: f64,
    /// Planned mean rate per phase of the whole plan (not this segment's share).
    pub planned_rate: Vec<f64>,
    pub catalog: Catalog,
    pub recorder: RecorderState,
}

impl RunState {
    pub fn new(r: &RunResult, scale: f64, time_scale: f64, redactor: &Redactor) -> RunState {
        let red = |s: &str| rundir::redact_url_userinfo(&redactor.apply(s));
        let mut catalog = r.catalog.clone();
        for e in catalog.endpoints.iter_mut() {
            e.name = red(&e.name);
        }
        for n in catalog
            .journeys
            .iter_mut()
            .chain(catalog.clients.iter_mut())
        {
            *n = red(n);
        }
        for p in catalog.phases.iter_mut() {
            p.name = red(&p.name);
        }
        RunState {
            state_version: STATE_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: ScenarioState {
                name: red(&r.scenario.name),
                file: red(&r.scenario.file),
                sha256: r.scenario.sha256.clone(),
                target: red(&r.scenario.target),
                zone: r.scenario.zone.clone(),
            },
            segment: r.segment.to_string(),
            scale,
            time_scale,
            seed: r.seed,
            thresholds: r
                .verdicts
                .iter()
                .map(|v| red(&v.threshold.source))
                .collect(),
            status: r.status.name().to_string(),
            reason: r.reason.as_deref().map(red),
            started_at: r
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ended_at: r
                .ended_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            planned_start: r
                .planned_start
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            duration_s: r.duration_s,
            plan_duration_s: r.plan_duration_s,
            threads: r.threads,
            cpu_s: r.cpu_s,
            planned_rate: r.planned_rate.clone(),
            catalog,
            recorder: RecorderState::from_recorder(&r.total),
        }
    }
}

/// Writes `dir/state.json` (atomically).
pub fn write(
    dir: &Path,
    r: &RunResult,
    scale: f64,
    time_scale: f64,
    redactor: &Redactor,
) -> anyhow::Result<PathBuf> {
    let st = RunState::new(r, scale, time_scale, redactor);
    let mut bytes = serde_json::to_vec(&st).context("cannot encode state.json")?;
    bytes.push(b'\n');
    rundir::write_atomic(dir, FILE, &bytes)
        .with_context(|| format!("cannot write {}", dir.join(FILE).display()))
}

/// Reads `dir/state.json`.
pub fn read(dir: &Path) -> anyhow::Result<RunState> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (runs write it since flashcrowd 0.x; a run killed before its end has none)",
            path.display()
        )
    })?;
    let st: RunState = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a flashcrowd state file", path.display()))?;
    if st.state_version != STATE_VERSION {
        return Err(anyhow!(
            "{}: state_version {} is not supported (this flashcrowd reads {STATE_VERSION})",
            path.display(),
            st.state_version
        ));
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::{EndpointName, PhaseSpan};
    use crate::metrics::recorder::Sample;

    #[test]
    fn a_recorder_round_trips_exactly() {
        let cat = Catalog {
            networks: vec![],
            endpoints: vec![
                EndpointName {
                    name: "a".into(),
                    journey: 0,
                },
                EndpointName {
                    name: "b".into(),
                    journey: 0,
                },
            ],
            journeys: vec!["j".into()],
            clients: vec!["x".into(), "y".into()],
            phases: vec![PhaseSpan {
                name: "p".into(),
                start_s: 0.0,
                end_s: 1.0,
            }],
        };
        let mut r = Recorder::new(2, 2, 1, 1);
        for i in 0..1000u64 {
            r.record(&Sample {
                request: (i % 2) as usize,
                client: (i % 3 == 0) as usize,
                phase: 0,
                latency_us: 100 + i * 37,
                service_us: 50 + i,
                ttfb_us: (i % 5 != 0).then_some(10 + i),
                status: Some(if i % 7 == 0 { 503 } else { 200 }),
                error: (i % 7 == 0).then_some(ErrorKind::Http5xx),
                bytes_in: 10,
                bytes_out: 3,
            });
            r.record_lag(i);
        }
        {
            let st = r.stream(1, 0, 0);
            let _ = st.first_event.record(4_200);
            let _ = st.gap.record(900);
            let _ = st.duration.record(61_000);
            st.received = 17;
            st.sent = 3;
            st.close_codes.push((1011, 2));
        }
        r.session_started(0, 1);
        r.session_ended(0, true, 12_345, Some(2_345));
        let _ = r.burst.record(777);
        let st = RecorderState::from_recorder(&r);
        let text = serde_json::to_string(&st).unwrap();
        let back: RecorderState = serde_json::from_str(&text).unwrap();
        let b = back.to_recorder(&cat).unwrap();
        for (x, y) in r.requests.iter().zip(&b.requests) {
            match (x, y) {
                (Some(x), Some(y)) => {
                    assert_eq!(x.latency, y.latency);
                    assert_eq!(x.service, y.service);
                    assert_eq!(x.ttfb, y.ttfb);
                    assert_eq!((x.count, x.errors), (y.count, y.errors));
                    match (&x.stream, &y.stream) {
                        (Some(a), Some(b)) => {
                            assert_eq!(a.first_event, b.first_event);
                            assert_eq!(a.gap, b.gap);
                            assert_eq!(a.duration, b.duration);
                            assert_eq!((a.received, a.sent), (b.received, b.sent));
                            assert_eq!(a.close_codes, b.close_codes);
                        }
                        (None, None) => {}
                        _ => panic!("stream statistics were lost or invented"),
                    }
                    let (mut s1, mut s2) = (x.status.clone(), y.status.clone());
                    s1.sort();
                    s2.sort();
                    assert_eq!(s1, s2);
                }
                (None, None) => {}
                _ => panic!("a cell was lost or invented"),
            }
        }
        assert!(b.requests.iter().flatten().any(|s| s.stream.is_some()));
        assert_eq!(r.lag, b.lag);
        assert_eq!(r.burst, b.burst);
        assert_eq!(r.journeys[0].latency, b.journeys[0].latency);
        assert_eq!(r.journeys[0].from_release, b.journeys[0].from_release);
        assert!(b.journeys[0].from_release.is_some());
        assert_eq!(b.clients[1].sessions, 1);
        assert_eq!(b.sessions_started, 1);
    }
}
