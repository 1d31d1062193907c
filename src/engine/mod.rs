//! The engine: compiles a scenario into a `Program`, starts one shard per thread on its segment
//! of the plan, and runs the collector loop on the calling thread — merging snapshots each
//! second, evaluating abort rules, driving the live view, handling Ctrl-C/SIGTERM — until every
//! shard has finished. It returns a `RunOutcome`; writing files is the reports' job.

pub mod checks;
pub mod compile;
pub mod live;
pub mod resolve;
pub mod session;
pub mod shard;
pub mod tls;
pub mod transport;
pub mod warm;

use crate::gate::AbortRule;
use crate::metrics::{Collector, Point, Recorder, Snapshot};
use crate::plan::{Plan, Segment};
use chrono::{DateTime, Utc};
pub use compile::{compile, compile_with, Program};
use shard::{Control, ShardSpec, HARD_STOP, STOPPING};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Ran to the end (thresholds decide passed/failed later).
    Completed,
    Aborted,
    Interrupted,
}

/// Receives each completed interval: its second number, all shards' records merged, its point
/// of the series, and the run's timeline so far.
pub type IntervalHook = Box<dyn FnMut(u64, &Recorder, &Point, &[crate::ops::TimelineEvent])>;

pub struct RunOptions {
    pub threads: usize,
    pub segment: Segment,
    /// Wall-clock start; now when None.
    pub start_at: Option<DateTime<Utc>>,
    pub quiet: bool,
    pub grace: Duration,
    pub abort: Vec<AbortRule>,
    /// Capacity drills: the first second in which one holds ends the run (not an abort).
    pub stop_when: Vec<crate::gate::Threshold>,
    /// Called with each completed interval (second number, all shards merged), in order, on the
    /// calling thread, as the collector completes it: the interval log is written from here.
    pub on_interval: Option<IntervalHook>,
    /// Live operations (metrics endpoint, control, monitor, keyboard); shut down at the end.
    pub live_ops: Option<crate::ops::LiveOps>,
}

pub struct RunOutcome {
    pub status: Status,
    /// The `--start-at` instant asked for, if any (`started_at` is when the run really began).
    pub planned_start: Option<DateTime<Utc>>,
    /// Why the run stopped early (abort rule or signal).
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub duration_s: f64,
    pub total: Recorder,
    pub series: Vec<Point>,
    pub threads: usize,
    /// Generator CPU seconds (user + sys of this process).
    pub cpu_s: f64,
    /// Live control and rule events, in order.
    pub timeline: Vec<crate::ops::TimelineEvent>,
    /// The monitor's scrapes (empty without a `monitor:` block).
    pub scrapes: Vec<crate::ops::monitor::ScrapeRecord>,
    /// The monitor's series names, in declaration order.
    pub monitor_names: Vec<String>,
    /// Connections opened before time 0, and how long that took.
    pub warm_up: warm::WarmUp,
}

/// An abort rule's running state: how long its condition has held.
struct AbortState {
    rule: AbortRule,
    held_s: f64,
}

/// Raises RLIMIT_NOFILE to its hard limit: every virtual user may hold a socket.
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// User + system CPU seconds of this process so far.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage with a valid pointer to a zeroed struct.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(u.ru_utime) + tv(u.ru_stime)
    }
}

/// Runs the plan against the program's target. Blocks until the run is over.
pub fn run(prog: Arc<Program>, plan: Arc<Plan>, opts: RunOptions) -> Result<RunOutcome, String> {
    raise_fd_limit();
    let threads = opts.threads.max(1);
    let shape = Recorder::new(
        prog.endpoints.len(),
        prog.clients.len(),
        plan.phases.len().max(1),
        prog.journeys.len(),
    );
    let catalog = prog.catalog(&plan);
    let mut ops = opts.live_ops;
    let steer = ops.as_ref().map(|o| o.steer.clone()).unwrap_or_else(|| {
        Arc::new(crate::ops::Steer::new(
            plan.model == crate::plan::Model::Closed,
        ))
    });
    let control: Arc<Control> = steer.control.clone();
    let (tx, rx) = std::sync::mpsc::channel::<Snapshot>();

    // Signals are counted from here on, so that Ctrl-C cancels a wait for the start too.
    let signals = Signals::install();
    // Wait for the wall-clock start (less the warm-up's budget), start the shards, let them
    // open their first connections (`warm.rs`), then fix the shared monotonic start: run time 0
    // is the instant asked for, or `SPAWN_LEAD` after the warm-up.
    let mut cancelled = false;
    if let Some(at) = opts.start_at {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if !opts.quiet && !wait.is_zero() {
            eprintln!("waiting {:.1}s for the start at {at}", wait.as_secs_f64());
        }
        cancelled = wait_for(
            at - chrono::Duration::from_std(SPAWN_LEAD + warm::WARM_MAX).unwrap_or_default(),
            &signals,
        );
    }
    if cancelled {
        // Nothing is sent, nothing opened: the shards start stopped and the report says why.
        control.raise(STOPPING);
    }
    let cpu0 = process_cpu_seconds();
    let starter = Arc::new(warm::Starter::new(threads));
    let mut handles = Vec::new();
    for t in 0..threads {
        let spec = ShardSpec {
            index: t,
            segment: opts.segment.split(t as u32, threads as u32),
            prog: prog.clone(),
            plan: plan.clone(),
            starter: starter.clone(),
            control: control.clone(),
            tx: tx.clone(),
            grace: opts.grace,
            shape: shape.empty_like(),
        };
        match shard::spawn(spec) {
            Ok(h) => handles.push(h),
            Err(e) => {
                // The shards already started must not wait for a start that never comes.
                control.raise(HARD_STOP);
                starter.go(Instant::now());
                return Err(format!("cannot start a shard thread: {e}"));
            }
        }
    }
    drop(tx);
    let warm_up = if cancelled {
        warm::WarmUp::default()
    } else {
        starter.wait_ready(warm::WARM_MAX + Duration::from_secs(1))
    };
    let lead = match opts.start_at {
        Some(at) if !cancelled => (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(1)),
        _ => SPAWN_LEAD,
    };
    let start = Instant::now() + lead;
    let started_at = Utc::now() + chrono::Duration::from_std(lead).unwrap_or_default();
    steer.set_start(start);
    starter.go(start);

    let mut live = live::Live::new(opts.quiet, plan.duration, &plan, opts.segment);
    let mut keyboard = match &ops {
        Some(o) if o.keyboard && live.is_bar() => {
            let k = crate::ops::keyboard::Keyboard::start(steer.clone());
            if k.is_some() {
                live.note("keys: p pause · r resume · + rate ×2 · - rate ×0.5 · s stop");
            }
            k
        }
        _ => None,
    };
    let mut timeline_seen = 0usize;
    let mut collector = Collector::new(threads, &shape);
    let mut series: Vec<Point> = Vec::new();
    let mut aborts: Vec<AbortState> = opts
        .abort
        .iter()
        .map(|r| AbortState {
            rule: r.clone(),
            held_s: 0.0,
        })
        .collect();
    let mut status = Status::Completed;
    let mut reason: Option<String> = None;
    if cancelled {
        status = Status::Interrupted;
        reason = Some("interrupted while waiting for the start: no load was sent".into());
        steer.log(
            "interrupt",
            "Ctrl-C or SIGTERM while waiting for the start".into(),
        );
    }
    let mut on_interval = opts.on_interval;
    let mut on_seconds = |done: Vec<(u64, Recorder)>,
                          status: &mut Status,
                          reason: &mut Option<String>,
                          live: &mut live::Live| {
        for (sec, rec) in done {
            let mut p = Point::from_interval(sec, &rec);
            p.planned_rate = match plan.model {
                crate::plan::Model::Open => plan.expected_arrivals(sec as f64, sec as f64 + 1.0),
                crate::plan::Model::Closed => plan.value_at(sec as f64),
            };
            let steering = control.steering();
            p.rate_factor = if steering.paused {
                0.0
            } else {
                let planned = plan.value_at(sec as f64 + 0.5);
                (steering.factor_at(planned) * 1e4).round() / 1e4
            };
            if let Some(m) = ops.as_ref().and_then(|o| o.monitor.as_ref()) {
                p.monitor = m.current();
            }
            if let Some(o) = ops.as_mut() {
                o.second(
                    &rec,
                    &catalog,
                    &p,
                    plan.phase_index_at(sec as f64 + 0.5),
                    steering,
                );
            }
            for a in aborts.iter_mut() {
                let observed = observe(&catalog, &rec, &p, &a.rule.cond);
                let failing = observed.is_some_and(|v| a.rule.cond.op.holds(v, a.rule.cond.value));
                a.held_s = if failing { a.held_s + 1.0 } else { 0.0 };
                if failing
                    && a.held_s >= a.rule.for_.as_secs_f64().max(1.0)
                    && *status == Status::Completed
                {
                    *status = Status::Aborted;
                    *reason = Some(format!(
                        "abort rule `{}` held for {}s (observed {})",
                        a.rule.cond.source,
                        a.held_s,
                        a.rule.cond.metric.format_observed(observed.unwrap_or(0.0))
                    ));
                    steer.log("abort", reason.clone().unwrap_or_default());
                    control.raise(STOPPING);
                }
            }
            if *status == Status::Completed && reason.is_none() {
                if let Some(rule) = opts.stop_when.iter().find(|t| {
                    observe(&catalog, &rec, &p, t).is_some_and(|v| t.op.holds(v, t.value))
                }) {
                    *reason = Some(format!(
                        "stop_when `{}` held in second {} (observed {})",
                        rule.source,
                        sec + 1,
                        rule.metric
                            .format_observed(observe(&catalog, &rec, &p, rule).unwrap_or(0.0))
                    ));
                    steer.log("stop_when", reason.clone().unwrap_or_default());
                    control.raise(STOPPING);
                }
            }
            live.second(&p, &plan);
            if let Some(f) = on_interval.as_mut() {
                f(sec, &rec, &p, &steer.timeline());
            }
            series.push(p);
        }
    };
    let mut ctrl_c_count = signals.count();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(snap) => {
                let done = collector.add(snap);
                on_seconds(done, &mut status, &mut reason, &mut live);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // Live control: say what changed; a stop ends the run like Ctrl-C (status interrupted).
        let tl = steer.timeline();
        for e in tl.iter().skip(timeline_seen) {
            if matches!(e.event.as_str(), "pause" | "resume" | "rate" | "stop") {
                live.note(&format!("t={:.1}s {}: {}", e.t, e.event, e.detail));
            }
        }
        timeline_seen = tl.len();
        if steer.stop_requested() && status == Status::Completed && reason.is_none() {
            status = Status::Interrupted;
            reason = Some("stopped through live control".into());
        }
        let n = signals.count();
        if n > ctrl_c_count {
            ctrl_c_count = n;
            if n == 1 {
                if status == Status::Completed {
                    status = Status::Interrupted;
                    reason = Some("interrupted by a signal".into());
                }
                steer.log(
                    "interrupt",
                    "Ctrl-C or SIGTERM: finishing requests in flight".into(),
                );
                live.note(
                    "stopping: finishing requests in flight (press Ctrl-C again to stop now)",
                );
                control.raise(STOPPING);
            } else {
                live.note("stopping now");
                control.raise(HARD_STOP);
            }
        }
        live.tick(start.elapsed().as_secs_f64());
        if collector.shards_done() {
            break;
        }
    }
    let done = collector.finish();
    on_seconds(done, &mut status, &mut reason, &mut live);
    for h in handles {
        let _ = h.join();
    }
    if let Some(k) = keyboard.as_mut() {
        k.stop();
    }
    live.finish();
    let (scrapes, monitor_names) = match ops.as_mut() {
        Some(o) => {
            o.shutdown();
            match &o.monitor {
                Some(m) => (
                    m.scrapes(),
                    m.spec.series.iter().map(|(n, _)| n.clone()).collect(),
                ),
                None => (Vec::new(), Vec::new()),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let ended_at = Utc::now();
    Ok(RunOutcome {
        planned_start: opts.start_at,
        status,
        reason,
        started_at,
        ended_at,
        duration_s: start.elapsed().as_secs_f64(),
        total: collector.total,
        series,
        threads,
        cpu_s: process_cpu_seconds() - cpu0,
        timeline: steer.timeline(),
        scrapes,
        monitor_names,
        warm_up,
    })
}

/// A rule's value in one second: a monitor series from the point, anything else from the
/// second's records.
fn observe(
    catalog: &crate::metrics::Catalog,
    rec: &Recorder,
    p: &Point,
    th: &crate::gate::Threshold,
) -> Option<f64> {
    match &th.selector {
        crate::gate::Selector::Monitor(name) => {
            p.monitor.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
        }
        _ => catalog.observe(rec, th, 1.0),
    }
}

/// How long after the warm-up run time 0 comes.
const SPAWN_LEAD: Duration = Duration::from_millis(20);

/// Sleeps until the wall clock reads `at`, in short naps so that a signal ends the wait. True
/// when a signal ended it.
fn wait_for(at: DateTime<Utc>, signals: &Signals) -> bool {
    loop {
        if signals.count() > 0 {
            return true;
        }
        let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Counts SIGINT and SIGTERM without killing the process.
struct Signals {
    count: Arc<std::sync::atomic::AtomicUsize>,
}

impl Signals {
    /// Starts counting; returns once the handlers are in place (or could not be).
    fn install() -> Signals {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let (Ok(mut int), Ok(mut term)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        return;
                    };
                    let _ = ready_tx.send(());
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                        }
                        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            });
        // Dropped unsent when the handlers could not be installed: no need to wait then.
        let _ = ready_rx.recv_timeout(Duration::from_secs(2));
        Signals { count }
    }

    fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}
