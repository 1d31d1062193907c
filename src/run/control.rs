//! The run's control loop: waits for the start, launches the engine's shards, and on the calling
//! thread collects their snapshots into seconds, judges abort and stop_when rules on each second,
//! feeds the live view and live operations, hears live control and signals, fires scheduled
//! actions and judges recovery after them, and records all of it in the timeline — until every
//! shard has finished. It returns a [`RunOutcome`]; writing
//! files is the caller's job (the interval hook writes the interval log as seconds complete).

use super::actions::{Action, Scheduler};
use super::live::Live;
use super::outcome::{RunOutcome, Status};
use super::recovery::{ActionReport, RecoverySpec, Tracker};
use super::timeline::{Event, Kind};
use crate::engine::shard::{Control, HARD_STOP, STOPPING};
use crate::engine::{self, LaunchOptions, Program};
use crate::gate::AbortRule;
use crate::metrics::{Collector, Point, Recorder};
use crate::plan::{Plan, Segment};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives each completed interval: its second number, all shards' records merged, its point
/// of the series, and the run's timeline so far (in the order recorded: only ever appended to).
pub type IntervalHook = Box<dyn FnMut(u64, &Recorder, &Point, &[Event])>;

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
    /// Scheduled actions, and how recovery after them is judged.
    pub actions: Vec<Action>,
    pub recovery: Option<RecoverySpec>,
    /// Where `run` actions write their logs (the run directory's `actions/`).
    pub action_logs: Option<std::path::PathBuf>,
    pub redactor: crate::scenario::redact::Redactor,
}

/// A per-second rule's running state (abort rules, `when` actions): how long it has held.
#[derive(Debug, Default)]
pub struct RuleState {
    held_s: f64,
}

impl RuleState {
    /// One second's value of the rule's condition (None: nothing measured). True when the
    /// condition has now held for the rule's `for` (at least one second).
    pub fn second(&mut self, rule: &AbortRule, observed: Option<f64>) -> bool {
        let failing = observed.is_some_and(|v| rule.cond.op.holds(v, rule.cond.value));
        self.held_s = if failing { self.held_s + 1.0 } else { 0.0 };
        failing && self.held_s >= rule.for_.as_secs_f64().max(1.0)
    }

    pub fn held_s(&self) -> f64 {
        self.held_s
    }
}

/// Actions and recovery, carried through the seconds.
struct Drills {
    scheduler: Scheduler,
    tracker: Tracker,
    /// Fired actions: (index, instant it began, what it did).
    fired: Vec<(usize, f64, super::timeline::ActionEvent)>,
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

/// The run's own events (rules, signals, actions) beside live control's, on the same clock;
/// each is shown on the live page too.
struct Timeline {
    start: Instant,
    events: Vec<Event>,
    steer: Arc<crate::ops::Steer>,
}

impl Timeline {
    fn push(&mut self, kind: Kind, detail: String) {
        let t = Instant::now()
            .saturating_duration_since(self.start)
            .as_secs_f64();
        self.record(Event {
            t: (t * 1000.0).round() / 1000.0,
            kind,
            detail,
        });
    }

    fn record(&mut self, e: Event) {
        self.steer.note(e.t, e.kind.name(), &e.detail);
        self.events.push(e);
    }
}

/// Runs the plan against the program's target. Blocks until the run is over.
pub fn run(prog: Arc<Program>, plan: Arc<Plan>, opts: RunOptions) -> Result<RunOutcome, String> {
    let catalog = prog.catalog(&plan);
    let mut ops = opts.live_ops;
    let steer = ops.as_ref().map(|o| o.steer.clone()).unwrap_or_else(|| {
        Arc::new(crate::ops::Steer::new(
            plan.model == crate::plan::Model::Closed,
        ))
    });
    let control: Arc<Control> = steer.control.clone();

    let launcher = engine::Launcher::new(
        prog,
        plan.clone(),
        LaunchOptions {
            threads: opts.threads,
            segment: opts.segment,
            grace: opts.grace,
            control: control.clone(),
        },
    );
    // Signals are counted from here on, so that Ctrl-C cancels a wait for the start too.
    let signals = Signals::install();
    // Wait for the wall-clock start (less the warm-up's budget), start the shards, let them
    // open their first connections (`engine::warm`), then fix the shared monotonic start: run
    // time 0 is the instant asked for, or `SPAWN_LEAD` after the warm-up.
    let mut cancelled = false;
    if let Some(at) = opts.start_at {
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if !opts.quiet && !wait.is_zero() {
            eprintln!("waiting {:.1}s for the start at {at}", wait.as_secs_f64());
        }
        cancelled = wait_for(
            at - chrono::Duration::from_std(SPAWN_LEAD + engine::warm::WARM_MAX)
                .unwrap_or_default(),
            &signals,
        );
    }
    if cancelled {
        // Nothing is sent, nothing opened: the shards start stopped and the report says why.
        control.raise(STOPPING);
    }
    let cpu0 = process_cpu_seconds();
    let running = launcher.launch()?;
    let warm_up = if cancelled {
        engine::warm::WarmUp::default()
    } else {
        running.wait_ready()
    };
    let lead = match opts.start_at {
        Some(at) if !cancelled => (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(1)),
        _ => SPAWN_LEAD,
    };
    // Time 0 in both clocks from one pair read together, so that `run.started_at` is the wall
    // clock of the plan's time 0 (every arrival is due at start + its offset) to the µs.
    let (now, wall) = clock_pair();
    let start = now + lead;
    let started_at = wall + chrono::Duration::from_std(lead).unwrap_or_default();
    steer.set_start(start, started_at);
    running.go(start);
    let threads = running.threads;
    let mut timeline = Timeline {
        start,
        events: Vec::new(),
        steer: steer.clone(),
    };

    let mut live = Live::new(opts.quiet, plan.duration, &plan, opts.segment);
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
    let mut applied_seen = 0usize;
    let mut collector = Collector::new(threads, &running.shape);
    let mut series: Vec<Point> = Vec::new();
    let mut aborts: Vec<(AbortRule, RuleState)> = opts
        .abort
        .iter()
        .map(|r| (r.clone(), RuleState::default()))
        .collect();
    let mut drills = Drills {
        scheduler: Scheduler::start(
            // A run cancelled before its start sends nothing and does nothing.
            if cancelled { Vec::new() } else { opts.actions },
            start,
            steer.clone(),
            opts.action_logs.clone(),
            opts.redactor.clone(),
        ),
        tracker: Tracker::new(opts.recovery),
        fired: Vec::new(),
    };
    let mut status = Status::Completed;
    let mut reason: Option<String> = None;
    if cancelled {
        status = Status::Interrupted;
        reason = Some("interrupted while waiting for the start: no load was sent".into());
        timeline.push(
            Kind::Interrupt {},
            "Ctrl-C or SIGTERM while waiting for the start".into(),
        );
    }
    let mut on_interval = opts.on_interval;
    let mut on_seconds = |done: Vec<(u64, Recorder)>,
                          status: &mut Status,
                          reason: &mut Option<String>,
                          live: &mut Live,
                          timeline: &mut Timeline,
                          drills: &mut Drills| {
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
            for (rule, st) in aborts.iter_mut() {
                let observed = observe(&catalog, &rec, &p, &rule.cond);
                if st.second(rule, observed) && *status == Status::Completed {
                    *status = Status::Aborted;
                    let why = format!(
                        "abort rule `{}` held for {}s (observed {})",
                        rule.cond.source,
                        st.held_s(),
                        rule.cond.metric.format_observed(observed.unwrap_or(0.0))
                    );
                    *reason = Some(why.clone());
                    timeline.push(
                        Kind::Abort {
                            rule: rule.cond.source.clone(),
                        },
                        why,
                    );
                    control.raise(STOPPING);
                }
            }
            if *status == Status::Completed && control.get() < STOPPING {
                drills
                    .scheduler
                    .second(sec, |t| observe(&catalog, &rec, &p, t));
            }
            drills
                .tracker
                .second(&p, |t| observe(&catalog, &rec, &p, t));
            if *status == Status::Completed && reason.is_none() {
                if let Some(rule) = opts.stop_when.iter().find(|t| {
                    observe(&catalog, &rec, &p, t).is_some_and(|v| t.op.holds(v, t.value))
                }) {
                    let why = format!(
                        "stop_when `{}` held in second {} (observed {})",
                        rule.source,
                        sec + 1,
                        rule.metric
                            .format_observed(observe(&catalog, &rec, &p, rule).unwrap_or(0.0))
                    );
                    *reason = Some(why.clone());
                    timeline.push(
                        Kind::StopWhen {
                            rule: rule.source.clone(),
                        },
                        why,
                    );
                    control.raise(STOPPING);
                }
            }
            live.second(&p, &plan, &rec.burst);
            if let Some(f) = on_interval.as_mut() {
                f(sec, &rec, &p, &timeline.events);
            }
            series.push(p);
        }
    };
    let mut ctrl_c_count = signals.count();
    // Every shard has finished (or gone): the collector completes what is pending, and that is
    // the last round.
    let mut shards_done = false;
    loop {
        use std::sync::mpsc::RecvTimeoutError;
        let (done, last) = if shards_done {
            (collector.finish(), true)
        } else {
            match running.snapshots.recv_timeout(Duration::from_millis(200)) {
                Ok(snap) => (collector.add(snap), false),
                Err(RecvTimeoutError::Timeout) => (Vec::new(), false),
                Err(RecvTimeoutError::Disconnected) => (collector.finish(), true),
            }
        };
        on_seconds(
            done,
            &mut status,
            &mut reason,
            &mut live,
            &mut timeline,
            &mut drills,
        );
        if last {
            break;
        }
        // Live control: say what changed; a stop ends the run like Ctrl-C (status interrupted).
        let applied = steer.applied();
        for a in applied.iter().skip(applied_seen) {
            let e = Event::from_applied(a);
            live.note(&format!("t={:.1}s {}: {}", e.t, e.kind.name(), e.detail));
            timeline.events.push(e);
        }
        applied_seen = applied.len();
        if control.get() >= STOPPING {
            drills.scheduler.halt();
        }
        for (i, t, ev) in drills.scheduler.finished() {
            finished_action(
                i,
                t,
                ev,
                &mut drills,
                &mut status,
                &mut reason,
                &mut timeline,
                &live,
                &control,
            );
        }
        if steer.stop_requested() && status == Status::Completed && reason.is_none() {
            // A `steer: stop` action ends the run as planned; any other stop interrupts it.
            let by_action = applied
                .iter()
                .rev()
                .find(|a| a.command == crate::ops::Command::Stop)
                .and_then(|a| a.source.strip_prefix("action "));
            match by_action {
                Some(name) => reason = Some(format!("stopped by the action `{name}`")),
                None => {
                    status = Status::Interrupted;
                    reason = Some("stopped through live control".into());
                }
            }
        }
        let n = signals.count();
        if n > ctrl_c_count {
            ctrl_c_count = n;
            if n == 1 {
                if status == Status::Completed {
                    status = Status::Interrupted;
                    reason = Some("interrupted by a signal".into());
                }
                timeline.push(
                    Kind::Interrupt {},
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
        shards_done = collector.shards_done();
    }
    running.join();
    let Drills {
        scheduler,
        tracker,
        mut fired,
    } = drills;
    let (last, declared) = scheduler.finish();
    for (i, t, ev) in last {
        live.note(&format!(
            "t={t:.1}s action {}: {} → {}",
            ev.name, ev.did, ev.result
        ));
        timeline.record(Event::action(t, ev.clone()));
        fired.push((i, t, ev));
    }
    let actions: Vec<ActionReport> = super::recovery::reports(&declared, &fired, &tracker);
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
    let mut events = timeline.events;
    events.extend(
        steer
            .applied()
            .iter()
            .skip(applied_seen)
            .map(Event::from_applied),
    );
    // Stable: events of the same instant keep the order they were recorded in.
    events.sort_by(|a, b| a.t.total_cmp(&b.t));
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
        timeline: events,
        scrapes,
        monitor_names,
        actions,
        warm_up,
    })
}

/// An action finished: into the timeline and the live view; a failure aborts the run when the
/// action says so.
#[allow(clippy::too_many_arguments)]
fn finished_action(
    i: usize,
    t: f64,
    ev: super::timeline::ActionEvent,
    drills: &mut Drills,
    status: &mut Status,
    reason: &mut Option<String>,
    timeline: &mut Timeline,
    live: &Live,
    control: &Control,
) {
    live.note(&format!(
        "t={t:.1}s action {}: {} → {}",
        ev.name, ev.did, ev.result
    ));
    if !ev.ok && drills.scheduler.aborts_on_failure(i) && *status == Status::Completed {
        *status = Status::Aborted;
        *reason = Some(format!(
            "the action `{}` failed ({}) and has abort_on_failure",
            ev.name, ev.result
        ));
        control.raise(STOPPING);
    }
    timeline.record(Event::action(t, ev.clone()));
    drills.fired.push((i, t, ev));
}

/// A rule's value in one second: a monitor series from the point, anything else from the
/// second's records. (A journal's rebuild judges recovery on its seconds with it too.)
pub fn observe(
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

/// The monotonic clock and the wall clock at one instant: the wall clock read between two
/// monotonic reads, paired with their midpoint; of a few tries, the tightest (a preemption
/// between the reads would otherwise put the two clocks milliseconds apart).
pub(crate) fn clock_pair() -> (Instant, DateTime<Utc>) {
    let mut best: Option<(Duration, Instant, DateTime<Utc>)> = None;
    for _ in 0..5 {
        let before = Instant::now();
        let wall = Utc::now();
        let after = Instant::now();
        let gap = after - before;
        if best.as_ref().is_none_or(|b| gap < b.0) {
            best = Some((gap, before + gap / 2, wall));
        }
        if gap < Duration::from_micros(1) {
            break;
        }
    }
    let (_, at, wall) = best.expect("one try");
    (at, wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_pair_reads_both_clocks_at_one_instant() {
        let (at, wall) = clock_pair();
        let (at2, wall2) = clock_pair();
        let mono = (at2 - at).as_secs_f64();
        let real = (wall2 - wall).num_nanoseconds().unwrap() as f64 / 1e9;
        // Both clocks advance together between two pairs (NTP may slew the wall clock, not by
        // 100 µs between two reads).
        assert!((mono - real).abs() < 100e-6, "{mono} vs {real}");
    }
}
