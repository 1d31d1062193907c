//! Merging the run directories of segments (`flashcrowd run --segment i/n`) into one run, exactly:
//! recorders are added cell by cell (histograms added, never percentiles averaged), interval logs
//! histogram by histogram per (second, tag), the per-second series second by second, and the
//! thresholds are judged again on the whole with their full limits.
//!
//! Intervals are aligned on each shard's anchor — its `--start-at` instant, or its actual start
//! without one — rounded to whole seconds from the earliest: shards given the same `--start-at`
//! align exactly.

use super::hlog;
use super::journal;
use super::model::Report;
use super::state::{self, RunState};
use crate::metrics::recorder::{new_histogram, N_ERROR_KINDS};
use crate::metrics::{ErrorKind, Point, Recorder};
use crate::plan::Segment;
use crate::run::judge::{judge, Evidence};
use crate::run::{FinalStatus, RunResult, ScenarioInfo, Status};
use anyhow::{anyhow, Context};
use base64::Engine;
use chrono::{DateTime, Utc};
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why shards cannot be merged (exit 2), or what could not be read.
#[derive(Debug)]
pub struct MergeError(pub String);

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MergeError {}

fn refuse(msg: String) -> anyhow::Error {
    anyhow::Error::new(MergeError(msg))
}

/// One interval of a latency log: (second, raw tag, histogram).
pub type Interval = (u64, String, Histogram<u64>);

/// One segment's run directory, read.
pub struct Shard {
    pub dir: PathBuf,
    pub state: RunState,
    pub report: Report,
    pub segment: Segment,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub planned_start: Option<DateTime<Utc>>,
    /// (second, tag) → histogram, from latency.hlog.
    pub intervals: Vec<Interval>,
    pub hlog_truncated: bool,
}

fn instant(s: &str, what: &str, dir: &Path) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow!("{}: {what} `{s}` is not an RFC 3339 instant", dir.display()))
}

impl Shard {
    /// Reads a segment's run directory; one whose run was killed before writing state.json and
    /// report.json is rebuilt from its journal (status `incomplete`).
    pub fn read(dir: &Path) -> anyhow::Result<Shard> {
        let finished = dir.join(state::FILE).exists() && dir.join("report.json").exists();
        let (state, report, end) = if finished || !journal::exists(dir) {
            let state = state::read(dir)?;
            let path = dir.join("report.json");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let report: Report = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a flashcrowd report", path.display()))?;
            (state, report, u64::MAX)
        } else {
            let rb = journal::rebuild(dir)?;
            let state = RunState::new(&rb.result, rb.scale, rb.time_scale, &Default::default());
            let end = rb.last_second.map_or(0, |t| t + 1);
            (state, super::json::report(&rb.result), end)
        };
        let segment = Segment::parse(&state.segment)
            .map_err(|e| anyhow!("{}: state.json segment: {e}", dir.display()))?;
        let (mut intervals, hlog_truncated) = read_intervals(dir)?;
        intervals.retain(|(sec, _, _)| *sec < end);
        Ok(Shard {
            started_at: instant(&state.started_at, "started_at", dir)?,
            ended_at: instant(&state.ended_at, "ended_at", dir)?,
            planned_start: match &state.planned_start {
                Some(s) => Some(instant(s, "planned_start", dir)?),
                None => None,
            },
            dir: dir.to_path_buf(),
            state,
            report,
            segment,
            intervals,
            hlog_truncated,
        })
    }

    /// The instant the shard's second 0 starts at, as planned.
    fn anchor(&self) -> DateTime<Utc> {
        self.planned_start.unwrap_or(self.started_at)
    }

    fn name(&self) -> String {
        format!("{} (segment {})", self.dir.display(), self.segment)
    }
}

/// Every interval of `dir/latency.hlog`, unmerged: (second, raw tag, histogram).
fn read_intervals(dir: &Path) -> anyhow::Result<(Vec<Interval>, bool)> {
    let path = dir.join(hlog::FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    let mut truncated = false;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&bytes) {
        let Ok(entry) = entry else {
            truncated = true;
            break;
        };
        let LogEntry::Interval(ih) = entry else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(ih.encoded_histogram())
            .map_err(|e| anyhow!("{}: bad base64 in an interval: {e}", path.display()))?;
        let h: Histogram<u64> = de
            .deserialize(&mut raw.as_slice())
            .map_err(|e| anyhow!("{}: bad histogram in an interval: {e:?}", path.display()))?;
        let tag = ih.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
        let sec = ih.start_timestamp().as_secs_f64().round() as u64;
        out.push((sec, tag, h));
    }
    Ok((out, truncated))
}

/// Checks that the shards are segments of one run: same scenario, same plan, same segment count,
/// no segment twice. Returns the segments missing (1-based `i/n`).
pub fn check(shards: &[Shard]) -> anyhow::Result<Vec<Segment>> {
    let first = shards
        .first()
        .ok_or_else(|| refuse("nothing to merge: name at least one run directory".into()))?;
    for s in &shards[1..] {
        let (a, b) = (&first.state.scenario, &s.state.scenario);
        if a.name != b.name || a.sha256 != b.sha256 {
            return Err(refuse(format!(
                "refusing to merge different scenarios:\n  {} ran `{}` (sha256 {})\n  {} ran `{}` (sha256 {})",
                first.name(),
                a.name,
                &a.sha256[..a.sha256.len().min(12)],
                s.name(),
                b.name,
                &b.sha256[..b.sha256.len().min(12)],
            )));
        }
        if s.segment.count != first.segment.count {
            return Err(refuse(format!(
                "refusing to merge shards split differently: {} is one of {} segments, {} one of {}",
                first.name(),
                first.segment.count,
                s.name(),
                s.segment.count
            )));
        }
        let differs = |what: &str, x: String, y: String| -> anyhow::Result<()> {
            if x == y {
                Ok(())
            } else {
                Err(refuse(format!(
                    "refusing to merge runs of different plans: {what} is {x} in {} but {y} in {}",
                    first.name(),
                    s.name()
                )))
            }
        };
        differs(
            "--scale",
            first.state.scale.to_string(),
            s.state.scale.to_string(),
        )?;
        differs(
            "--time-scale",
            first.state.time_scale.to_string(),
            s.state.time_scale.to_string(),
        )?;
        differs(
            "the seed",
            first.state.seed.to_string(),
            s.state.seed.to_string(),
        )?;
        differs(
            "the thresholds",
            format!("{:?}", first.state.thresholds),
            format!("{:?}", s.state.thresholds),
        )?;
        if first.state.catalog != s.state.catalog {
            return Err(refuse(format!(
                "refusing to merge runs of different plans: the requests, clients or phases of {} \
                 differ from those of {} (a --set override?)",
                first.name(),
                s.name()
            )));
        }
    }
    let mut by_index: BTreeMap<u32, &Shard> = BTreeMap::new();
    for s in shards {
        if let Some(other) = by_index.insert(s.segment.index, s) {
            return Err(refuse(format!(
                "refusing to merge overlapping segments: {} and {} both ran segment {}; \
                 merging them would count its load twice",
                other.dir.display(),
                s.dir.display(),
                s.segment
            )));
        }
    }
    let n = first.segment.count;
    Ok((0..n)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| Segment { index: i, count: n })
        .collect())
}

/// The merged run: its report and interval log, and what to say about it.
pub struct Merged {
    pub report: Report,
    /// latency.hlog, encoded.
    pub hlog: Vec<u8>,
    pub missing: Vec<Segment>,
    pub warnings: Vec<String>,
}

/// The segment field of a merged report: `1/3+2/3+3/3`.
fn segments_text(shards: &[Shard]) -> String {
    let mut segs: Vec<Segment> = shards.iter().map(|s| s.segment).collect();
    segs.sort_by_key(|s| s.index);
    segs.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// Merges `shards`; with segments missing the status is `incomplete` unless `allow_partial`.
pub fn merge(shards: &mut [Shard], allow_partial: bool) -> anyhow::Result<Merged> {
    let missing = check(shards)?;
    shards.sort_by_key(|s| s.segment.index);
    let first = &shards[0];
    let catalog = first.state.catalog.clone();
    let mut warnings = Vec::new();

    // Alignment: whole seconds from the earliest anchor.
    let base = shards.iter().map(|s| s.anchor()).min().expect("one shard");
    let offsets: Vec<u64> = shards
        .iter()
        .map(|s| ((s.anchor() - base).num_milliseconds().max(0) as f64 / 1000.0).round() as u64)
        .collect();

    // Recorders, exactly.
    let mut total: Option<Recorder> = None;
    for s in shards.iter() {
        let r = s
            .state
            .recorder
            .to_recorder(&catalog)
            .with_context(|| format!("{}: state.json", s.dir.display()))?;
        match total.as_mut() {
            Some(t) => t.merge(&r),
            None => total = Some(r),
        }
    }
    let total = total.expect("one shard");

    // Interval logs, histogram by histogram per (second, tag); tags in order of first appearance.
    let mut tags: Vec<String> = Vec::new();
    let mut intervals: BTreeMap<(u64, usize), Histogram<u64>> = BTreeMap::new();
    for (s, off) in shards.iter().zip(&offsets) {
        if s.hlog_truncated {
            warnings.push(format!(
                "{}: latency.hlog ends in a partial line; merged what was complete",
                s.dir.display()
            ));
        }
        for (sec, tag, h) in &s.intervals {
            let ti = match tags.iter().position(|t| t == tag) {
                Some(i) => i,
                None => {
                    tags.push(tag.clone());
                    tags.len() - 1
                }
            };
            let _ = intervals
                .entry((sec + off, ti))
                .or_insert_with(new_histogram)
                .add(h);
        }
    }
    let hlog_bytes = encode_hlog(base, &tags, &intervals)?;
    let mut per_second: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    for ((sec, _), h) in &intervals {
        let _ = per_second.entry(*sec).or_insert_with(new_histogram).add(h);
    }

    // The per-second series: counts summed, percentiles from the merged interval histograms.
    // The live rate factor is each shard's own (one process, one keyboard): the merged second
    // carries their mean over the shards that reported it.
    let mut series: BTreeMap<u64, Point> = BTreeMap::new();
    let mut factors: BTreeMap<u64, (f64, u32)> = BTreeMap::new();
    let mut errors_by_second: BTreeMap<u64, [u64; N_ERROR_KINDS]> = BTreeMap::new();
    for (s, off) in shards.iter().zip(&offsets) {
        for p in &s.report.series {
            let t = p.t + off;
            let m = series.entry(t).or_insert_with(|| Point {
                t,
                ..Default::default()
            });
            m.planned_rate = m.planned_rate.max(p.planned_rate);
            m.sessions_started += p.sessions_started;
            m.requests += p.requests;
            m.errors += p.errors;
            m.in_flight += p.in_flight;
            m.parked += p.parked;
            m.dropped += p.dropped;
            m.paused += p.paused;
            m.unstarted += p.unstarted;
            m.clients.resize(catalog.clients.len(), 0);
            for (name, n) in &p.clients {
                if let Some(i) = catalog.clients.iter().position(|c| c == name) {
                    m.clients[i] += n;
                }
            }
            let f = factors.entry(t).or_insert((0.0, 0));
            f.0 += p.rate_factor;
            f.1 += 1;
            for (kind, n) in &p.errors_by_kind {
                if let Some(k) = ErrorKind::ALL.iter().find(|k| k.name() == kind) {
                    errors_by_second.entry(t).or_insert([0; N_ERROR_KINDS])[*k as usize] += n;
                }
            }
        }
    }
    for (t, p) in series.iter_mut() {
        p.rate_factor = factors.get(t).map_or(1.0, |(sum, n)| sum / *n as f64);
        if let Some(h) = per_second.get(t).filter(|h| !h.is_empty()) {
            p.p50_ms = h.value_at_quantile(0.5) as f64 / 1000.0;
            p.p99_ms = h.value_at_quantile(0.99) as f64 / 1000.0;
        }
    }

    // Times.
    let started_at = shards.iter().map(|s| s.started_at).min().expect("one");
    let ended_at = shards.iter().map(|s| s.ended_at).max().expect("one");
    let duration_s = ((ended_at - started_at).num_microseconds().unwrap_or(0) as f64 / 1e6).max(
        shards
            .iter()
            .map(|s| s.state.duration_s)
            .fold(0.0, f64::max),
    );
    let planned_start = first
        .planned_start
        .filter(|p| shards.iter().all(|s| s.planned_start == Some(*p)));
    if planned_start.is_none() && shards.iter().any(|s| s.planned_start.is_some()) {
        warnings.push(
            "the shards were given different --start-at instants (or some none); their seconds \
             are aligned on their planned starts"
                .into(),
        );
    }

    // Thresholds, judged on the whole: the full limits, shrunk by --scale only (a segment's run
    // also shrank them by its 1/n).
    let scale = first.state.scale;
    let mut thresholds = Vec::new();
    for src in &first.state.thresholds {
        let mut t = crate::gate::parse_threshold(src).map_err(|e| {
            anyhow!(
                "{}: state.json threshold `{src}`: {}",
                first.dir.display(),
                e.message
            )
        })?;
        t.shrink_absolute(scale, crate::gate::scaling_reason(scale, None));
        thresholds.push(t);
    }

    // Status: a shard that was aborted, killed (incomplete) or interrupted makes the whole so; a
    // missing segment makes it incomplete (unless the caller allows a partial merge); else the
    // thresholds.
    let shard_status = |name: &str| shards.iter().any(|s| s.state.status == name);
    let ran = if shard_status("aborted") {
        Status::Aborted
    } else if shard_status("interrupted") {
        Status::Interrupted
    } else {
        Status::Completed
    };
    // Scheduled actions run in the first segment only: its report carries them.
    let actions: Vec<crate::run::recovery::ActionReport> = shards
        .iter()
        .find(|s| s.segment.index == 0)
        .map(|s| s.report.actions.clone())
        .unwrap_or_default();
    let (verdicts, judged) = judge(
        &Evidence {
            catalog: &catalog,
            total: &total,
            duration_s,
            actions: &actions,
        },
        &thresholds,
        ran,
    );
    let killed = ran != Status::Aborted && shard_status("incomplete");
    let lacking = ran == Status::Completed && !missing.is_empty() && !allow_partial;
    let status = if killed || lacking {
        FinalStatus::Incomplete
    } else {
        judged
    };
    let mut reasons: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            s.state
                .reason
                .as_ref()
                .map(|r| format!("segment {}: {r}", s.segment))
        })
        .collect();
    let n = first.segment.count;
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|s| s.to_string()).collect();
        let mut msg = format!(
            "partial merge: covers {} of {n} segments; missing {} — totals and thresholds cover only the segments present",
            shards.len(),
            names.join(", ")
        );
        if !allow_partial {
            msg += "; status incomplete: merge the missing segments too, or pass --allow-partial to judge what is here";
        }
        warnings.push(msg.clone());
        reasons.insert(0, msg);
    }

    let result = RunResult {
        scenario: ScenarioInfo {
            name: first.state.scenario.name.clone(),
            file: first.state.scenario.file.clone(),
            sha256: first.state.scenario.sha256.clone(),
            target: first.state.scenario.target.clone(),
            zone: first.state.scenario.zone.clone(),
        },
        status,
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        started_at,
        planned_start,
        ended_at,
        duration_s,
        segment: Segment::WHOLE,
        seed: first.state.seed,
        threads: shards.iter().map(|s| s.state.threads).sum(),
        catalog,
        total,
        series: series.into_values().collect(),
        verdicts,
        max_error_rate: crate::run::result::DEFAULT_MAX_ERROR_RATE,
        cpu_s: shards.iter().map(|s| s.state.cpu_s).sum(),
        planned_rate: first.state.planned_rate.clone(),
        plan_duration_s: first.state.plan_duration_s,
        errors_by_second,
        timeline: merged_timeline(shards, &offsets),
        // Monitor scrapes stay in each shard's own report.
        scrapes: Vec::new(),
        monitor_names: Vec::new(),
        monitor_every_s: None,
        incomplete: None,
        actions,
        warm_up: None,
        waits: first.report.run.waits.clone(),
    };
    let mut v = super::json::build(&result);
    v["run"]["segment"] = json!(segments_text(shards));
    v["run"]["merged_from"] = json!({
        "segments": n,
        "covered": shards.len(),
        "missing": missing.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "shards": shards.iter().zip(&offsets).map(|(s, off)| json!({
            "dir": s.dir.display().to_string(),
            "segment": s.segment.to_string(),
            "status": s.state.status,
            "started_at": s.state.started_at,
            "start_lag_ms": s.report.run.start_lag_ms,
            "offset_s": off,
            "threads": s.state.threads,
            "requests": s.report.totals.requests,
            "sessions_started": s.report.totals.sessions_started,
            "lag_p99_ms": s.report.generator.lag_ms.p99,
            "burst_max_ms": s.report.generator.burst_ms.max,
        })).collect::<Vec<_>>(),
    });
    let report: Report = serde_json::from_value(v).context("the merged report")?;
    Ok(Merged {
        report,
        hlog: hlog_bytes,
        missing,
        warnings,
    })
}

/// The shards' live-control and rule events on the merged clock, each named by its segment.
fn merged_timeline(shards: &[Shard], offsets: &[u64]) -> Vec<crate::run::timeline::Event> {
    let mut out: Vec<crate::run::timeline::Event> = shards
        .iter()
        .zip(offsets)
        .flat_map(|(s, off)| {
            s.report
                .timeline
                .iter()
                .map(move |e| crate::run::timeline::Event {
                    t: e.t + *off as f64,
                    kind: e.kind.clone(),
                    detail: format!("segment {}: {}", s.segment, e.detail),
                })
        })
        .collect();
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

/// The merged latency.hlog: the same format a run writes.
fn encode_hlog(
    base: DateTime<Utc>,
    tags: &[String],
    intervals: &BTreeMap<(u64, usize), Histogram<u64>>,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let start: std::time::SystemTime = base.into();
    let mut w = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "flashcrowd {} latency log (merged segments): latency from the intended start in microseconds; \
             one histogram per request name × client per second; Tag=NAME|CLIENT, each part percent-escaped (UTF-8)",
            env!("CARGO_PKG_VERSION")
        ))
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(&mut out, &mut ser)?;
    for ((sec, ti), h) in intervals {
        if h.is_empty() {
            continue;
        }
        let tag = Tag::new(&tags[*ti]);
        w.write_histogram(h, Duration::from_secs(*sec), Duration::from_secs(1), tag)
            .map_err(|e| anyhow!("cannot encode an interval histogram: {e}"))?;
    }
    drop(w);
    Ok(out)
}

/// Writes the merged run directory: latency.hlog, then every exporter (as a single run does),
/// and the first shard's scenario.yaml.
pub fn write(m: &Merged, first_shard: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = vec![super::rundir::write_atomic(out, hlog::FILE, &m.hlog)
        .with_context(|| format!("cannot write {}", out.join(hlog::FILE).display()))?];
    let rr = super::RunReport {
        report: m.report.clone(),
        hlog: hlog::read(out)?,
    };
    files.extend(super::render_all(&rr, out)?);
    if let Ok(sc) = std::fs::read(first_shard.join("scenario.yaml")) {
        files.push(super::rundir::write_atomic(out, "scenario.yaml", &sc)?);
    }
    Ok(files)
}
