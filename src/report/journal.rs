//! journal.jsonl: what a run keeps beside latency.hlog so that a generator killed without warning
//! (`kill -9`, the OOM killer, an evicted pod, a vanished node) loses at most its last second.
//!
//! One JSON object per line. The first line (`"k": "start"`) holds what the report needs that
//! no second carries: the scenario, segment, scale, seed, thresholds at their full limits, the
//! catalog, the planned rates and the scenario text, all redacted. Then, for every second the
//! collector completes, one `"k": "second"` line: the series point and that second's recorder
//! delta — every used cell's counts, errors, statuses and histograms (latency, service time,
//! time to first byte), journeys, lag and burst — so the sum of the deltas is exactly the run's
//! recorder up to that second (a checkpoint every second, a few kB). Timeline events (live
//! control, rules, signals, scheduled actions) go in `"k": "event"` lines as they happen; the
//! header holds the declared actions and `recovery:`, so a rebuild has report.json `actions[]`
//! with each fired action's recovery judged on the journaled seconds.
//!
//! Lines are encoded and appended on a thread of their own (the collector only clones the
//! second's recorder) at nice 10 and 100 ms after the second's boundary, out of the way of a burst
//! released on it; each batch is written and flushed at once (a `kill -9` keeps what was
//! written), and a second thread fdatasyncs after each batch (so does a machine that loses
//! power), coalescing when the disk is slow: a slow disk delays the sync, never the next line,
//! and never the run.
//!
//! [`rebuild`] reads it back: the run's result up to its last complete second, with status
//! `incomplete`. `flashcrowd report DIR` writes every file of the run directory from it, and
//! `flashcrowd merge` reads a killed segment through it.

use super::model::Incomplete;
use super::rundir::Redactor;
use super::state::{encode_histogram_plain, RecorderState, ScenarioState};
use crate::metrics::{Catalog, Point, Recorder};
use crate::plan::Segment;
use crate::run::actions::ActionSummary;
use crate::run::judge::{judge, Evidence};
use crate::run::recovery::{RecoverySpec, Tracker};
use crate::run::timeline::{Event as TimelineEvent, Kind};
use crate::run::{FinalStatus, RunResult, ScenarioInfo};
use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

pub const FILE: &str = "journal.jsonl";
pub const JOURNAL_VERSION: u32 = 1;

/// The journal's first line: what a rebuilt report needs beyond the seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub journal_version: u32,
    pub tool_version: String,
    pub scenario: ScenarioState,
    /// 1-based `i/n`.
    pub segment: String,
    pub scale: f64,
    pub time_scale: f64,
    pub seed: u64,
    /// Threshold expressions as written (full limits, before a segment's or the scale's
    /// shrinking), as in state.json.
    pub thresholds: Vec<String>,
    /// The instant second 0 stands for (RFC 3339), as latency.hlog's `#[StartTime]`.
    pub started_at: String,
    pub planned_start: Option<String>,
    pub plan_duration_s: f64,
    pub threads: usize,
    /// Planned mean rate per phase.
    pub planned_rate: Vec<f64>,
    pub catalog: Catalog,
    pub monitor_names: Vec<String>,
    pub monitor_every_s: Option<f64>,
    /// The scenario as run, secrets removed (scenario.yaml of a rebuilt directory).
    pub scenario_yaml: String,
    /// The actions this segment runs, as declared (URLs and arguments redacted): a rebuilt
    /// report lists those that never fired too.
    #[serde(default)]
    pub actions: Vec<ActionSummary>,
    /// `recovery:` as run: its SLO as written and `stable` in seconds (time-scaled), so a
    /// rebuild judges each fired action's recovery on the journaled seconds.
    #[serde(default)]
    pub recovery: Option<RecoveryHeader>,
}

/// `recovery:` in the journal's header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryHeader {
    pub slo: Vec<String>,
    pub stable_s: f64,
}

/// What a run knows before it starts, for [`Header::new`].
pub struct RunInfo<'a> {
    pub loaded: &'a crate::scenario::Loaded,
    pub scenario_file: &'a Path,
    pub target: &'a str,
    pub segment: Segment,
    pub scale: f64,
    pub time_scale: f64,
    pub plan: &'a crate::plan::Plan,
    pub thresholds: &'a [crate::gate::Threshold],
    /// The instant second 0 stands for.
    pub start: DateTime<Utc>,
    pub planned_start: Option<DateTime<Utc>>,
    pub threads: usize,
    pub catalog: &'a Catalog,
    /// The actions this segment runs, and how recovery after them is judged.
    pub actions: &'a [crate::run::actions::Action],
    pub recovery: Option<&'a RecoverySpec>,
}

impl Header {
    /// The header of a run about to start, every name and text redacted.
    pub fn new(r: &RunInfo<'_>, redactor: &Redactor) -> Header {
        let red = |s: &str| redactor.apply(s);
        let sc = &r.loaded.scenario;
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
        Header {
            journal_version: JOURNAL_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: ScenarioState {
                name: red(&sc.name),
                file: red(&r.scenario_file.display().to_string()),
                sha256: r.loaded.sha256.clone(),
                target: red(r.target),
                zone: sc.load.zone().map(|z| z.to_string()),
            },
            segment: r.segment.to_string(),
            scale: r.scale,
            time_scale: r.time_scale,
            seed: r.plan.seed,
            thresholds: r.thresholds.iter().map(|t| red(&t.source)).collect(),
            started_at: r.start.to_rfc3339(),
            planned_start: r.planned_start.map(|t| t.to_rfc3339()),
            plan_duration_s: r.plan.duration,
            threads: r.threads,
            planned_rate: crate::run::result::planned_rates(r.plan),
            catalog,
            monitor_names: sc
                .monitor
                .as_ref()
                .map(|m| m.series.keys().map(|k| red(k)).collect())
                .unwrap_or_default(),
            monitor_every_s: sc
                .monitor
                .as_ref()
                .map(|m| m.every.map(|d| d.0.as_secs_f64()).unwrap_or(5.0)),
            scenario_yaml: red(&super::rundir::redact_scenario(
                &r.loaded.source,
                &r.loaded.secrets,
            )),
            actions: crate::run::actions::summaries(r.actions, redactor)
                .into_iter()
                .map(|a| ActionSummary {
                    name: red(&a.name),
                    trigger: red(&a.trigger),
                    ..a
                })
                .collect(),
            recovery: r.recovery.map(|spec| RecoveryHeader {
                slo: spec.slo.iter().map(|t| red(&t.source)).collect(),
                stable_s: spec.stable_s,
            }),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Line {
    Start(Box<Header>),
    Second {
        t: u64,
        /// Generator CPU seconds since the journal started.
        cpu_s: f64,
        point: Point,
        rec: Box<RecorderState>,
    },
    Event(TimelineEvent),
}

enum Msg {
    Second {
        t: u64,
        cpu_s: f64,
        point: Point,
        rec: Box<Recorder>,
    },
    Event(TimelineEvent),
}

/// Appends the journal as the run goes (see the module doc).
pub struct JournalWriter {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Timeline events already sent.
    events: usize,
    redactor: Redactor,
    /// The first write failure (the run goes on; `close` reports it).
    failed: Arc<Mutex<Option<String>>>,
}

fn encode(line: &Line) -> Vec<u8> {
    let mut b = serde_json::to_vec(line).expect("journal lines encode");
    b.push(b'\n');
    b
}

impl JournalWriter {
    /// Creates `dir/journal.jsonl` with its header line, written and synced before the run.
    pub fn create(dir: &Path, header: Header, redactor: Redactor) -> anyhow::Result<Self> {
        let path = dir.join(FILE);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&encode(&Line::Start(Box::new(header))))
            .and_then(|_| file.sync_data())
            .with_context(|| format!("cannot write {}", path.display()))?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let failed = Arc::new(Mutex::new(None));
        let fail = failed.clone();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                yield_to_the_run();
                append(file, path, rx, fail)
            })
            .context("cannot start the journal thread")?;
        Ok(JournalWriter {
            tx: Some(tx),
            thread: Some(thread),
            events: 0,
            redactor,
            failed,
        })
    }

    /// Journals second `t`: the timeline events not yet written, then the point and the
    /// second's recorder. `cpu_s`: generator CPU seconds since the start.
    pub fn second(
        &mut self,
        t: u64,
        rec: &Recorder,
        point: &Point,
        timeline: &[TimelineEvent],
        cpu_s: f64,
    ) {
        let Some(tx) = &self.tx else { return };
        for e in timeline.iter().skip(self.events) {
            // Every text of the event redacted (an action's URL and result too), not only its
            // sentence.
            let e = serde_json::to_string(e)
                .ok()
                .and_then(|t| serde_json::from_str(&self.redactor.apply(&t)).ok())
                .unwrap_or_else(|| TimelineEvent {
                    detail: self.redactor.apply(&e.detail),
                    ..e.clone()
                });
            let _ = tx.send(Msg::Event(e));
        }
        self.events = self.events.max(timeline.len());
        let mut point = point.clone();
        for (name, _) in point.monitor.iter_mut() {
            *name = self.redactor.apply(name);
        }
        let _ = tx.send(Msg::Second {
            t,
            cpu_s,
            point,
            rec: Box::new(rec.clone()),
        });
    }

    /// Writes what is queued, syncs and closes; the first failure to write, if any.
    pub fn close(mut self) -> Result<(), String> {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match self.failed.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the journal waits after a second's boundary before encoding it.
const BURST_CLEARANCE: std::time::Duration = std::time::Duration::from_millis(100);

/// Lowers the calling thread's scheduling priority (nice 10; Linux threads have their own): the
/// journal's work falls on second boundaries, which is when a countdown's burst fires, and it
/// must not take a core from the shards then.
fn yield_to_the_run() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority on the calling thread; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// The journal thread: writes and flushes each batch of queued lines, and hands the syncing to
/// a thread of its own, so that a slow fdatasync (a disk busy with other writes) never holds
/// back the next second's line.
fn append(
    file: std::fs::File,
    path: PathBuf,
    rx: mpsc::Receiver<Msg>,
    failed: Arc<Mutex<Option<String>>>,
) {
    let fail = |e: std::io::Error| {
        failed
            .lock()
            .unwrap()
            .get_or_insert(format!("cannot append to {}: {e}", path.display()));
    };
    let (sync_tx, sync_rx) = mpsc::channel::<()>();
    let syncer = file.try_clone().map(|f| {
        std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || {
                yield_to_the_run();
                while sync_rx.recv().is_ok() {
                    sync_rx.try_iter().for_each(drop);
                    if f.sync_data().is_err() {
                        return;
                    }
                }
            })
    });
    let mut out = std::io::BufWriter::new(file);
    let mut ok = true;
    while let Ok(first) = rx.recv() {
        // A second arrives just after its boundary, which is when a countdown's burst fires:
        // stay off the CPU until the burst has gone out.
        std::thread::sleep(BURST_CLEARANCE);
        let batch = std::iter::once(first).chain(rx.try_iter());
        if !ok {
            batch.for_each(drop);
            continue;
        }
        let mut written = Ok(());
        for m in batch {
            let line = match m {
                Msg::Event(e) => Line::Event(e),
                Msg::Second {
                    t,
                    cpu_s,
                    point,
                    rec,
                } => Line::Second {
                    t,
                    cpu_s,
                    point,
                    rec: Box::new(RecorderState::encode(&rec, encode_histogram_plain)),
                },
            };
            written = written.and_then(|_| out.write_all(&encode(&line)));
        }
        match written.and_then(|_| out.flush()) {
            Ok(()) => {
                let _ = sync_tx.send(());
            }
            Err(e) => {
                fail(e);
                ok = false;
            }
        }
    }
    drop(sync_tx);
    if let Ok(Ok(t)) = syncer {
        let _ = t.join();
    }
    if let Err(e) = out.get_ref().sync_data() {
        fail(e);
    }
}

/// One line back. Not through serde's internally tagged enums: their buffering cannot read the
/// status codes' integer map keys back from JSON strings.
fn decode(raw: &[u8]) -> serde_json::Result<Line> {
    use serde::de::Error;
    let v: serde_json::Value = serde_json::from_slice(raw)?;
    let kind = v.get("k").and_then(|k| k.as_str()).unwrap_or_default();
    Ok(match kind {
        "start" => Line::Start(serde_json::from_value(v)?),
        "second" => {
            #[derive(Deserialize)]
            struct Second {
                t: u64,
                cpu_s: f64,
                point: Point,
                rec: Box<RecorderState>,
            }
            let s: Second = serde_json::from_value(v)?;
            Line::Second {
                t: s.t,
                cpu_s: s.cpu_s,
                point: s.point,
                rec: s.rec,
            }
        }
        "event" => Line::Event(serde_json::from_value(v)?),
        k => return Err(serde_json::Error::custom(format!("unknown kind `{k}`"))),
    })
}

/// A journal read back.
pub struct Journal {
    pub header: Header,
    /// (second, cpu_s, point, that second's recorder state), in order.
    seconds: Vec<(u64, f64, Point, RecorderState)>,
    pub events: Vec<TimelineEvent>,
    /// The last line was cut short (the process died while writing it) and was left out.
    pub truncated: bool,
}

/// Does `dir` hold a journal?
pub fn exists(dir: &Path) -> bool {
    dir.join(FILE).is_file()
}

/// Reads `dir/journal.jsonl`. Only its last line may be incomplete (a write the process did
/// not finish); any other bad line is an error naming it.
pub fn read(dir: &Path) -> anyhow::Result<Journal> {
    let path = dir.join(FILE);
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("{} is not a flashcrowd journal", path.display()))
}

fn parse(bytes: &[u8]) -> anyhow::Result<Journal> {
    let mut header = None;
    let mut seconds = Vec::new();
    let mut events = Vec::new();
    let mut truncated = false;
    let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let parsed =
            decode(raw)
                .map_err(|e| e.to_string())
                .and_then(|l| match raw.ends_with(b"\n") {
                    true => Ok(l),
                    false => Err("it ends without a newline".to_string()),
                });
        let line = match parsed {
            Ok(l) => l,
            Err(_) if last => {
                truncated = true;
                break;
            }
            Err(e) => return Err(anyhow!("line {}: {e}", i + 1)),
        };
        match line {
            Line::Start(h) if i == 0 => header = Some(*h),
            Line::Start(_) => return Err(anyhow!("line {}: a second start line", i + 1)),
            _ if header.is_none() => return Err(anyhow!("line 1 is not the start line")),
            Line::Second {
                t,
                cpu_s,
                point,
                rec,
            } => seconds.push((t, cpu_s, point, *rec)),
            Line::Event(e) => events.push(e),
        }
    }
    let header = header.ok_or_else(|| anyhow!("it is empty: the run stopped before starting"))?;
    if header.journal_version != JOURNAL_VERSION {
        return Err(anyhow!(
            "journal_version {} is not supported (this flashcrowd reads {JOURNAL_VERSION})",
            header.journal_version
        ));
    }
    Ok(Journal {
        header,
        seconds,
        events,
        truncated,
    })
}

/// A killed run, rebuilt from its journal.
pub struct Rebuilt {
    pub result: RunResult,
    pub scale: f64,
    pub time_scale: f64,
    pub scenario_yaml: String,
    /// The last second journaled (None: none was).
    pub last_second: Option<u64>,
}

fn instant(s: &str, what: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| anyhow!("{what} `{s}` is not an RFC 3339 instant"))
}

impl Journal {
    /// The run as recorded: every journaled second added up, thresholds judged on them, status
    /// `incomplete`, and how much of the plan is missing.
    pub fn rebuild(self) -> anyhow::Result<Rebuilt> {
        let h = self.header;
        let segment = Segment::parse(&h.segment).map_err(|e| anyhow!("segment: {e}"))?;
        let cat = &h.catalog;
        let mut total = Recorder::new(
            cat.endpoints.len(),
            cat.clients.len(),
            cat.phases.len().max(1),
            cat.journeys.len(),
        );
        let mut series = Vec::with_capacity(self.seconds.len());
        let mut errors_by_second = std::collections::BTreeMap::new();
        let mut cpu_s = 0.0f64;
        let mut last_second = None;
        // Recovery after the actions, judged on each journaled second as the run judged it.
        let mut tracker = Tracker::new(match &h.recovery {
            Some(r) => Some(RecoverySpec::compile(&r.slo, r.stable_s).map_err(|e| anyhow!(e))?),
            None => None,
        });
        for (t, cpu, point, st) in &self.seconds {
            let rec = st.to_recorder(cat).with_context(|| format!("second {t}"))?;
            let all = rec.total_where(|_, _, _| true);
            if all.error_count() > 0 {
                errors_by_second.insert(*t, all.errors);
            }
            tracker.second(point, |th| {
                crate::run::control::observe(cat, &rec, point, th)
            });
            total.merge(&rec);
            series.push(point.clone());
            cpu_s = cpu_s.max(*cpu);
            last_second = Some(*t);
        }
        let recorded_s = last_second.map_or(0.0, |t| t as f64 + 1.0);
        let missing_s = (h.plan_duration_s - recorded_s).max(0.0);
        let mut thresholds = Vec::new();
        for src in &h.thresholds {
            let mut t = crate::gate::parse_threshold(src)
                .map_err(|e| anyhow!("threshold `{src}`: {}", e.message))?;
            t.shrink_absolute(
                h.scale / segment.count as f64,
                crate::gate::scaling_reason(h.scale, Some((segment.index + 1, segment.count))),
            );
            thresholds.push(t);
        }
        // The actions that fired, from their timeline events (the declared index by name),
        // with their recovery and impact over the journaled seconds; then those that did not.
        let fired: Vec<(usize, f64, crate::run::timeline::ActionEvent)> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::Action(ev) => Some((
                    h.actions
                        .iter()
                        .position(|a| a.name == ev.name)
                        .unwrap_or(usize::MAX),
                    e.t,
                    ev.clone(),
                )),
                _ => None,
            })
            .collect();
        let actions = crate::run::recovery::reports(&h.actions, &fired, &tracker);
        let (verdicts, _) = judge(
            &Evidence {
                catalog: cat,
                total: &total,
                duration_s: recorded_s,
                actions: &actions,
            },
            &thresholds,
            crate::run::Status::Completed,
        );
        let started_at = instant(&h.started_at, "started_at")?;
        let planned_start = match &h.planned_start {
            Some(s) => Some(instant(s, "planned_start")?),
            None => None,
        };
        let recorded = match last_second {
            Some(t) => format!(
                "seconds 0-{t} were recorded ({recorded_s:.0} of {:.0} s planned, {missing_s:.0} s missing)",
                h.plan_duration_s
            ),
            None => "no second was recorded".to_string(),
        };
        let reason = format!(
            "the generator stopped without writing its report (killed, or its machine went away); \
             rebuilt from {FILE} and latency.hlog: {recorded}; thresholds judged on what was recorded"
        );
        let result = RunResult {
            scenario: ScenarioInfo {
                name: h.scenario.name,
                file: h.scenario.file,
                sha256: h.scenario.sha256,
                target: h.scenario.target,
                zone: h.scenario.zone,
            },
            status: FinalStatus::Incomplete,
            reason: Some(reason),
            started_at,
            planned_start,
            ended_at: started_at
                + chrono::Duration::milliseconds((recorded_s * 1000.0).round() as i64),
            duration_s: recorded_s,
            segment,
            seed: h.seed,
            threads: h.threads,
            catalog: h.catalog,
            total,
            series,
            verdicts,
            cpu_s,
            planned_rate: h.planned_rate,
            plan_duration_s: h.plan_duration_s,
            errors_by_second,
            timeline: self.events,
            scrapes: Vec::new(),
            monitor_names: h.monitor_names,
            monitor_every_s: h.monitor_every_s,
            max_error_rate: crate::run::result::DEFAULT_MAX_ERROR_RATE,
            actions,
            warm_up: None,
            waits: Vec::new(),
            incomplete: Some(Incomplete {
                last_complete_second: last_second,
                recorded_s,
                planned_s: h.plan_duration_s,
                missing_s,
                journal_truncated: self.truncated,
            }),
        };
        Ok(Rebuilt {
            result,
            scale: h.scale,
            time_scale: h.time_scale,
            scenario_yaml: h.scenario_yaml,
            last_second,
        })
    }
}

/// `read(dir)?.rebuild()`.
pub fn rebuild(dir: &Path) -> anyhow::Result<Rebuilt> {
    read(dir)?.rebuild()
}

impl Rebuilt {
    /// The report as the exporters see it: report.json's model and the seconds of
    /// latency.hlog that the journal holds.
    pub fn run_report(&self, dir: &Path) -> anyhow::Result<super::RunReport> {
        let end = self.last_second.map_or(0, |t| t + 1);
        Ok(super::RunReport {
            report: super::json::report(&self.result),
            hlog: super::hlog::read_before(dir, end)?,
        })
    }

    /// Writes what the run would have left beside report.json: state.json (so the directory
    /// can be merged) and scenario.yaml. The journal's text is redacted already.
    pub fn write_records(&self, dir: &Path) -> anyhow::Result<()> {
        super::state::write(
            dir,
            &self.result,
            self.scale,
            self.time_scale,
            &Redactor::default(),
        )?;
        super::rundir::write_atomic(dir, "scenario.yaml", self.scenario_yaml.as_bytes())
            .with_context(|| format!("cannot write {}", dir.join("scenario.yaml").display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::catalog::{EndpointName, PhaseSpan};
    use crate::metrics::recorder::Sample;

    fn catalog() -> Catalog {
        Catalog {
            endpoints: vec![EndpointName {
                name: "GET /a".into(),
                journey: 0,
            }],
            journeys: vec!["j".into()],
            clients: vec!["c".into()],
            phases: vec![PhaseSpan {
                name: "p".into(),
                start_s: 0.0,
                end_s: 10.0,
            }],
            networks: vec![],
        }
    }

    fn header() -> Header {
        Header {
            journal_version: JOURNAL_VERSION,
            tool_version: "test".into(),
            scenario: ScenarioState {
                name: "s".into(),
                file: "s.yaml".into(),
                sha256: "00".into(),
                target: "http://127.0.0.1:1".into(),
                zone: None,
            },
            segment: "1/1".into(),
            scale: 1.0,
            time_scale: 1.0,
            seed: 7,
            thresholds: vec!["count >= 30".into(), "p99 < 1s".into()],
            started_at: "2026-11-11T00:00:00+00:00".into(),
            planned_start: None,
            plan_duration_s: 10.0,
            threads: 1,
            planned_rate: vec![10.0],
            catalog: catalog(),
            monitor_names: vec![],
            monitor_every_s: None,
            scenario_yaml: "name: s\n".into(),
            actions: vec![],
            recovery: None,
        }
    }

    fn second(n: u64, latency_us: u64) -> Recorder {
        let mut r = Recorder::new(1, 1, 1, 1);
        for _ in 0..n {
            r.record(&Sample {
                request: 0,
                client: 0,
                phase: 0,
                latency_us,
                service_us: latency_us / 2,
                ttfb_us: Some(latency_us / 3),
                status: Some(200),
                error: None,
                bytes_in: 5,
                bytes_out: 1,
            });
        }
        r
    }

    #[test]
    fn the_journaled_seconds_add_up_to_the_run_and_a_cut_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(dir.path(), header(), Redactor::default()).unwrap();
        let mut whole = Recorder::new(1, 1, 1, 1);
        let timeline = vec![TimelineEvent {
            t: 1.5,
            kind: crate::run::timeline::Kind::Pause {
                source: "http".into(),
            },
            detail: "paused".into(),
        }];
        for t in 0..4u64 {
            let rec = second(10 + t, 1000 * (t + 1));
            whole.merge(&rec);
            let p = Point::from_interval(t, &rec);
            w.second(
                t,
                &rec,
                &p,
                if t >= 1 { &timeline } else { &[] },
                0.1 * t as f64,
            );
        }
        w.close().unwrap();
        // The process died while appending another line.
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(br#"{"k":"second","t":4,"cpu_s":0.5,"poi"#);
        std::fs::write(&path, &bytes).unwrap();

        let r = rebuild(dir.path()).unwrap();
        assert_eq!(r.last_second, Some(3));
        let res = &r.result;
        assert_eq!(res.status, FinalStatus::Incomplete);
        let (a, b) = (
            res.total.total_where(|_, _, _| true),
            whole.total_where(|_, _, _| true),
        );
        assert_eq!(a.count, 46);
        assert_eq!(a.latency, b.latency, "histograms are exact");
        assert_eq!(a.service, b.service);
        assert_eq!(res.series.len(), 4);
        assert_eq!(res.series[3].requests, 13);
        assert_eq!(res.timeline.len(), 1, "each event once");
        let inc = res.incomplete.as_ref().unwrap();
        assert_eq!(inc.last_complete_second, Some(3));
        assert_eq!((inc.recorded_s, inc.missing_s), (4.0, 6.0));
        assert!(inc.journal_truncated);
        assert!(res.reason.as_deref().unwrap().contains("seconds 0-3"));
        // Judged on what was recorded: 46 requests meet `count >= 30`; p99 4 ms < 1 s.
        assert!(res.verdicts.iter().all(|v| v.passed));
    }

    #[test]
    fn a_bad_line_before_the_last_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = JournalWriter::create(dir.path(), header(), Redactor::default()).unwrap();
        w.close().unwrap();
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(
            b"garbage\n{\"k\":\"event\",\"t\":1,\"event\":\"x\",\"detail\":\"\"}\n",
        );
        std::fs::write(&path, &bytes).unwrap();
        let e = format!("{:#}", rebuild(dir.path()).err().unwrap());
        assert!(e.contains("line 2"), "{e}");
    }
}
