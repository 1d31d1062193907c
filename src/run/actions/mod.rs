//! Scheduled actions (`actions:` in the scenario): contingency drills run under load.
//!
//! An action fires `at` an instant (an offset, or a moment or phase name ± an offset) or `when`
//! a rule holds (like an abort rule; once, unless `repeat`). What it does is one [`ActionKind`],
//! one file each: [`http`] (one request through reqwest, the safety interlock applied),
//! [`command`] (`run:`, a program, only with `--allow-run`) and [`steer`] (the live-control
//! verbs). Adding a kind touches its file and the match in [`compile`]; the scheduler, the
//! timeline and the exporters stay as they are.
//!
//! The [`Scheduler`] fires `at` actions from a timer thread and `when` actions from the control
//! loop's seconds; each action runs on its own thread, so a slow one delays neither the load nor
//! the next. Finished actions come back as typed timeline events ([`ActionEvent`]).

pub mod command;
pub mod http;
pub mod steer;

use super::control::RuleState;
use super::timeline::ActionEvent;
use crate::gate::AbortRule;
use crate::ops::Steer;
use crate::plan::Plan;
use crate::scenario::redact::Redactor;
use crate::scenario::Scenario;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What an action kind needs to do its work.
pub struct Ctx {
    /// The action's name (`db-failover`).
    pub name: String,
    /// The run's live control (steer actions).
    pub steer: Arc<Steer>,
    /// Where `run` actions write `NAME.log` (the run directory's `actions/`).
    pub log_dir: Option<PathBuf>,
    pub redactor: Redactor,
    /// The longest the action may take.
    pub timeout: Duration,
}

/// How an action ended: did it succeed, and its result in a few words (`status 200`, `exit 0`,
/// `timed out after 5s`).
pub struct Done {
    pub ok: bool,
    pub result: String,
}

/// One kind of action.
pub trait ActionKind: Send + Sync {
    /// `http`, `run`, `steer`.
    fn kind(&self) -> &'static str;
    /// What it does, one line for the timeline (`POST http://127.0.0.1:9000/admin/fail`).
    fn describe(&self) -> String;
    /// Does it, within `ctx.timeout`.
    fn perform(&self, ctx: &Ctx) -> Done;
}

/// When an action fires.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Seconds from the run start, and the expression it came from.
    At { t: f64, src: String },
    /// A rule held for its duration.
    When { rule: AbortRule, repeat: bool },
}

impl Trigger {
    /// `at sale+30s`, `when p99 > 500ms for 10s`.
    pub fn describe(&self) -> String {
        match self {
            Trigger::At { src, .. } => format!("at {src}"),
            Trigger::When { rule, repeat } => {
                format!("when {}{}", rule, if *repeat { " (repeat)" } else { "" })
            }
        }
    }
}

/// One compiled action.
pub struct Action {
    pub name: String,
    pub trigger: Trigger,
    pub what: Arc<dyn ActionKind>,
    pub timeout: Duration,
    pub abort_on_failure: bool,
}

/// The default time an action may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How an action may be refused before the run.
pub struct Permissions {
    /// `--allow-run`: `run` actions may execute programs.
    pub allow_run: bool,
    /// `--i-know-this-is-untagged`: the interlock lets untagged calls off loopback through.
    pub untagged_ok: bool,
}

/// Compiles `actions:`; every error names the action and says what to fix. Nothing is called.
/// `target` is the run's target URL (a `/path` action URL is resolved against it).
pub fn compile(
    sc: &Scenario,
    plan: &Plan,
    target: &str,
    perms: &Permissions,
) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    for (i, spec) in sc.actions.iter().enumerate() {
        let at = |m: String| format!("actions[{i}] ({}): {m}", spec.name);
        let trigger = match (&spec.at, &spec.when) {
            (Some(a), None) => Trigger::At {
                t: resolve_at(a, plan).map_err(|e| at(format!("at `{a}`: {e}")))?,
                src: a.clone(),
            },
            (None, Some(w)) => {
                let names = crate::scenario::validate::monitor_names(sc);
                let w = crate::gate::with_monitor_names(w, &names);
                Trigger::When {
                    rule: crate::gate::parse_abort(&w)
                        .map_err(|e| at(format!("when `{w}`: {}", e.message)))?,
                    repeat: spec.repeat,
                }
            }
            _ => {
                return Err(at(
                    "give exactly one of `at` (an offset like 90s, or a moment or phase ± offset like sale+30s) and `when` (a rule like `p99 > 500ms for 10s`)".into(),
                ))
            }
        };
        let what: Arc<dyn ActionKind> = match (&spec.http, &spec.run, &spec.steer) {
            (Some(h), None, None) => {
                Arc::new(http::HttpCall::new(h, sc, target, perms).map_err(at)?)
            }
            (None, Some(r), None) => Arc::new(command::Command::new(r, perms).map_err(at)?),
            (None, None, Some(s)) => Arc::new(steer::SteerAction::new(*s)),
            _ => {
                return Err(at(
                    "give exactly one of `http`, `run` and `steer` to say what the action does"
                        .into(),
                ))
            }
        };
        out.push(Action {
            name: spec.name.clone(),
            trigger,
            what,
            timeout: spec.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT),
            abort_on_failure: spec.abort_on_failure,
        });
    }
    Ok(out)
}

/// The named instants an `at` may start from: a calendar's moments (`sale`: its instant),
/// `sale-start` (a countdown's sale), and each phase's start (`peak`, `stage-2`, a calendar's
/// `sale.peak`), in seconds from the run start.
fn named_instants(plan: &Plan) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = plan
        .moments()
        .iter()
        .map(|m| (m.name.clone(), m.at_s))
        .collect();
    if let Some(s) = plan.sale_start {
        v.push(("sale-start".into(), s));
    }
    for p in &plan.phases {
        if !v.iter().any(|(n, _)| *n == p.name) {
            v.push((p.name.clone(), p.start));
        }
    }
    v
}

/// `90s` (an offset from the run start), `peak`, `peak+2s`, `sale-start-5s`: seconds from the
/// run start. Offsets are scaled by `--time-scale` like the load shape.
pub fn resolve_at(src: &str, plan: &Plan) -> Result<f64, String> {
    let s = src.trim();
    let scaled = |d: Duration| d.as_secs_f64() * plan.time_scale;
    let names = named_instants(plan);
    let lookup = |n: &str| names.iter().find(|(k, _)| k == n).map(|(_, t)| *t);
    let t = if let Ok(d) = crate::scenario::units::parse_duration(s) {
        scaled(d)
    } else if let Some(t) = lookup(s) {
        t
    } else {
        // NAME+OFFSET or NAME-OFFSET; names may hold '-' themselves (`sale-start-5s`).
        let mut found = None;
        for (i, c) in s.char_indices().rev() {
            if c != '+' && c != '-' {
                continue;
            }
            let (name, off) = (s[..i].trim(), s[i + 1..].trim());
            if let (Some(base), Ok(d)) = (lookup(name), crate::scenario::units::parse_duration(off))
            {
                found = Some(if c == '+' {
                    base + scaled(d)
                } else {
                    base - scaled(d)
                });
                break;
            }
        }
        found.ok_or_else(|| {
            let known: Vec<String> = names.iter().map(|(n, _)| format!("`{n}`")).collect();
            format!(
                "not an offset (like 90s) nor a known moment or phase ± offset (like {}+30s); the names are: {}",
                names.first().map(|(n, _)| n.as_str()).unwrap_or("peak"),
                known.join(", ")
            )
        })?
    };
    if !(0.0..=plan.duration).contains(&t) {
        return Err(format!(
            "that is {t:.3}s from the start, outside the plan (0 to {:.3}s)",
            plan.duration
        ));
    }
    Ok(t)
}

/// A fired action's record, sent back from its thread.
struct Finished {
    index: usize,
    event: ActionEvent,
    t: f64,
}

/// Fires the actions and collects what they did.
pub struct Scheduler {
    actions: Arc<Vec<Action>>,
    start: Instant,
    base: Arc<BaseCtx>,
    done_tx: Sender<Finished>,
    done_rx: Receiver<Finished>,
    /// `when` actions: how long each rule has held, and whether it fired (once unless repeat).
    rules: Vec<(RuleState, bool)>,
    timer: Option<std::thread::JoinHandle<()>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    workers: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
    in_flight: Arc<Mutex<Vec<bool>>>,
}

/// What every action's context shares.
struct BaseCtx {
    steer: Arc<Steer>,
    log_dir: Option<PathBuf>,
    redactor: Redactor,
}

impl Scheduler {
    /// Starts the timer for `at` actions; `start` is the run's time 0.
    pub fn start(
        actions: Vec<Action>,
        start: Instant,
        steer: Arc<Steer>,
        log_dir: Option<PathBuf>,
        redactor: Redactor,
    ) -> Scheduler {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let n = actions.len();
        let mut s = Scheduler {
            rules: (0..n).map(|_| (RuleState::default(), false)).collect(),
            actions: Arc::new(actions),
            start,
            base: Arc::new(BaseCtx {
                steer,
                log_dir,
                redactor,
            }),
            done_tx,
            done_rx,
            timer: None,
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            workers: Arc::new(Mutex::new(Vec::new())),
            in_flight: Arc::new(Mutex::new(vec![false; n])),
        };
        let mut due: Vec<(f64, usize)> = s
            .actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a.trigger {
                Trigger::At { t, .. } => Some((t, i)),
                Trigger::When { .. } => None,
            })
            .collect();
        due.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !due.is_empty() {
            let fire = s.firer();
            let stop = s.stop.clone();
            s.timer = std::thread::Builder::new()
                .name("actions".into())
                .spawn(move || {
                    for (t, i) in due {
                        let at = start + Duration::from_secs_f64(t);
                        let (lock, cv) = &*stop;
                        let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                        loop {
                            if *stopped {
                                return;
                            }
                            let now = Instant::now();
                            if now >= at {
                                break;
                            }
                            stopped = cv
                                .wait_timeout(stopped, at - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        drop(stopped);
                        fire(i, t);
                    }
                })
                .ok();
        }
        s
    }

    /// A function that fires action `i` (planned at `t`) on its own thread.
    fn firer(&self) -> impl Fn(usize, f64) + Send + 'static {
        let actions = self.actions.clone();
        let base = self.base.clone();
        let tx = self.done_tx.clone();
        let start = self.start;
        let workers = self.workers.clone();
        let in_flight = self.in_flight.clone();
        move |i, planned| {
            if let Ok(mut f) = in_flight.lock() {
                f[i] = true;
            }
            let actions = actions.clone();
            let base = base.clone();
            let tx = tx.clone();
            let in_flight = in_flight.clone();
            let h = std::thread::Builder::new()
                .name(format!("action-{i}"))
                .spawn(move || {
                    let a = &actions[i];
                    let began = Instant::now();
                    let t = began.saturating_duration_since(start).as_secs_f64();
                    let ctx = Ctx {
                        name: a.name.clone(),
                        steer: base.steer.clone(),
                        log_dir: base.log_dir.clone(),
                        redactor: base.redactor.clone(),
                        timeout: a.timeout,
                    };
                    let done = a.what.perform(&ctx);
                    let event = ActionEvent {
                        name: a.name.clone(),
                        action: a.what.kind().to_string(),
                        trigger: a.trigger.describe(),
                        planned_t: (planned * 1000.0).round() / 1000.0,
                        did: base.redactor.apply(&a.what.describe()),
                        result: base.redactor.apply(&done.result),
                        ok: done.ok,
                        duration_s: (began.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                    };
                    if let Ok(mut f) = in_flight.lock() {
                        f[i] = false;
                    }
                    let _ = tx.send(Finished {
                        index: i,
                        event,
                        t: (t * 1000.0).round() / 1000.0,
                    });
                });
            if let (Ok(h), Ok(mut w)) = (h, workers.lock()) {
                w.push(h);
            }
        }
    }

    /// The `when` actions' rules, judged on one completed second (`observe` gives a rule's value
    /// in it). A rule that held fires its action (once; again after a break with `repeat`).
    pub fn second(&mut self, sec: u64, observe: impl Fn(&crate::gate::Threshold) -> Option<f64>) {
        let fire = self.firer();
        for (i, a) in self.actions.iter().enumerate() {
            let Trigger::When { rule, repeat } = &a.trigger else {
                continue;
            };
            let (st, fired) = &mut self.rules[i];
            if *fired && !repeat {
                continue;
            }
            let busy = self.in_flight.lock().map(|f| f[i]).unwrap_or(true);
            if st.second(rule, observe(&rule.cond)) && !busy {
                *fired = true;
                *st = RuleState::default();
                fire(i, sec as f64 + 1.0);
            }
        }
    }

    /// Actions that finished since the last call: (index, instant it began, what it did).
    pub fn finished(&mut self) -> Vec<(usize, f64, ActionEvent)> {
        self.done_rx
            .try_iter()
            .map(|f| (f.index, f.t, f.event))
            .collect()
    }

    /// Does a failure of action `i` abort the run?
    pub fn aborts_on_failure(&self, i: usize) -> bool {
        self.actions[i].abort_on_failure
    }

    /// The run is stopping: no more `at` actions fire.
    pub fn halt(&self) {
        let (lock, cv) = &*self.stop;
        if let Ok(mut s) = lock.lock() {
            *s = true;
        }
        cv.notify_all();
    }

    /// The run is over: no more actions fire; those in flight finish (each within its timeout).
    pub fn finish(mut self) -> (Vec<(usize, f64, ActionEvent)>, Vec<ActionSummary>) {
        self.halt();
        if let Some(t) = self.timer.take() {
            let _ = t.join();
        }
        let workers = self
            .workers
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        for w in workers {
            let _ = w.join();
        }
        let last = self.finished();
        (last, summaries(&self.actions, &self.base.redactor))
    }
}

/// What each declared action is, in order, its URL or arguments redacted: the rows of those
/// that never fired, in the report and in the journal's header (a rebuilt run lists them too).
pub fn summaries(actions: &[Action], redactor: &Redactor) -> Vec<ActionSummary> {
    actions
        .iter()
        .map(|a| ActionSummary {
            name: a.name.clone(),
            action: a.what.kind().to_string(),
            trigger: a.trigger.describe(),
            planned_t: match a.trigger {
                Trigger::At { t, .. } => Some((t * 1000.0).round() / 1000.0),
                Trigger::When { .. } => None,
            },
            did: redactor.apply(&a.what.describe()),
        })
        .collect()
}

/// What each declared action is, fired or not (for actions that never fired).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionSummary {
    pub name: String,
    pub action: String,
    pub trigger: String,
    pub planned_t: Option<f64>,
    pub did: String,
}
