//! The run core: one run from a checked scenario to its judged [`RunResult`].
//!
//! - [`Prepared::new`] compiles what the run needs (plan, program, thresholds, rules) and refuses
//!   bad input before anything is sent;
//! - [`preflight`]: the safety interlock, the probe of the target, the port budget;
//! - [`control`]: the control loop (start, seconds, abort and stop_when rules, live control,
//!   signals) and the [`live`] view; its events are the typed [`timeline`];
//! - [`actions`]: scheduled actions (one file per kind) and their scheduler; [`recovery`]
//!   judges the SLO per second and how long the target took to recover after each action;
//! - [`outcome`] and [`judge`]: how the run ended, and one `judge()` for a run and for
//!   `flashcrowd merge`; [`result`] is the finished run the exporters read.
//!
//! Arrows go one way: scenario → plan → engine → metrics below; `ops` (live operations) drives
//! the engine's `Control` and is driven by this core; exporters (`crate::report`) read the
//! finished [`RunResult`] and never the engine. Writing the run directory is the caller's job
//! (`commands::run`): this core calls an interval hook and returns values.

pub mod actions;
pub mod control;
pub mod judge;
pub mod live;
pub mod outcome;
pub mod preflight;
pub mod recovery;
pub mod result;
pub mod timeline;

use crate::engine::{self, Program};
use crate::gate::{AbortRule, Threshold};
use crate::metrics::Catalog;
use crate::plan::{Plan, PlanOptions, Segment};
use crate::scenario::Loaded;
use chrono::{DateTime, Utc};
pub use control::{IntervalHook, RunOptions};
pub use outcome::{RunOutcome, Status};
pub use result::{FinalStatus, RunResult, ScenarioInfo, Verdict};
use std::sync::Arc;
use std::time::Duration;

/// Why a run did not happen, or stopped before it could begin.
#[derive(Debug)]
pub enum Refused {
    /// Bad input (scenario, flags, an address the interlock refuses): exit 2, nothing sent.
    BadInput(String),
    /// The target did not answer the probe: exit 3, nothing sent.
    Unreachable(String),
}

/// What the command line adds to the scenario.
pub struct Settings {
    pub scale: f64,
    pub time_scale: f64,
    /// `--strict`: the plan's doubts are errors (see `PlanOptions::strict`).
    pub strict: bool,
    /// What run time 0 stands for (the plan's calendar).
    pub start: DateTime<Utc>,
    pub segment: Segment,
    /// `--target`, over the scenario's `target`.
    pub target: Option<String>,
    /// `--threshold` expressions, beside the scenario's.
    pub thresholds: Vec<String>,
    /// `--allow-run`: `run` actions may execute programs.
    pub allow_run: bool,
    /// `--i-know-this-is-untagged`: the interlock lets untagged traffic off loopback through.
    pub untagged_ok: bool,
    /// How the target's host name is resolved, and how often again (`--hosts`, `--resolve-every`).
    pub resolve: crate::engine::resolve::ResolveOpts,
}

/// A run ready to start: everything compiled and checked, nothing sent yet.
pub struct Prepared<'a> {
    pub loaded: &'a Loaded,
    pub thresholds: Vec<Threshold>,
    pub abort: Vec<AbortRule>,
    pub stop_when: Vec<Threshold>,
    pub plan: Plan,
    pub prog: Program,
    pub catalog: Catalog,
    pub target_url: String,
    /// The target as messages may show it (no user-info).
    pub shown_target: String,
    pub monitor: Option<crate::ops::monitor::MonitorSpec>,
    pub segment: Segment,
    /// Scheduled actions (the first segment runs them; the others none).
    pub actions: Vec<actions::Action>,
    pub recovery: Option<recovery::RecoverySpec>,
}

impl<'a> Prepared<'a> {
    /// Compiles the run; every error names the scenario file and says what to fix.
    pub fn new(loaded: &'a Loaded, s: &Settings) -> Result<Prepared<'a>, String> {
        let sc = &loaded.scenario;
        let file = loaded.file.display().to_string();
        let mut thresholds = Vec::new();
        for t in sc.thresholds.iter() {
            thresholds.push(
                crate::gate::parse_threshold(t)
                    .map_err(|e| format!("{file}: threshold `{t}`: {}", e.message))?,
            );
        }
        for t in &s.thresholds {
            thresholds.push(
                crate::scenario::check_threshold(loaded, t)
                    .map_err(|e| format!("--threshold {e}"))?,
            );
        }
        // `--scale` shrinks the load, and a segment runs its 1/n share of it: thresholds on
        // absolute amounts shrink with them (`flashcrowd merge` judges the whole against the
        // full values).
        let why =
            crate::gate::scaling_reason(s.scale, Some((s.segment.index + 1, s.segment.count)));
        for t in thresholds.iter_mut() {
            t.shrink_absolute(s.scale / s.segment.count as f64, why.clone());
        }
        let monitor_names = crate::scenario::validate::monitor_names(sc);
        let abort = sc
            .abort
            .iter()
            .map(|a| {
                let a = &crate::gate::with_monitor_names(a, &monitor_names);
                crate::gate::parse_abort(a)
                    .map_err(|e| format!("{file}: abort rule `{a}`: {}", e.message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stop_when = match &sc.load.steps {
            Some(d) => d
                .stop_when
                .iter()
                .map(|w| {
                    let w = &crate::gate::with_monitor_names(w, &monitor_names);
                    crate::gate::parse_stop_when(w)
                        .map_err(|e| format!("{file}: stop_when `{w}`: {}", e.message))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let plan = Plan::compile(
            &sc.load,
            &PlanOptions {
                scale: s.scale,
                time_scale: s.time_scale,
                start: s.start,
                strict: s.strict,
                ..PlanOptions::for_scenario(loaded)
            },
        )
        .map_err(|e| format!("{file}: load: {e}"))?;
        for n in &plan.notes {
            eprintln!("{n}");
        }
        let target_url = s
            .target
            .clone()
            .or_else(|| sc.target.clone())
            .ok_or_else(|| {
                format!(
                    "{file}: no target: add `target: http://host:port` to the scenario or pass --target URL"
                )
            })?;
        // What messages may show of the target: never its user-info.
        let shown_target = crate::scenario::redact::redact_url_userinfo(&target_url);
        let prog = engine::compile_with(loaded, &target_url, &plan, &s.resolve)
            .map_err(|e| crate::scenario::redact::redact_url_userinfo(&format!("{file}: {e}")))?;
        let monitor = match &sc.monitor {
            Some(m) => Some(
                crate::ops::monitor::MonitorSpec::from_scenario(
                    m,
                    (&sc.safety.tag_header, "flashcrowd-monitor"),
                )
                .map_err(|e| format!("{file}: {e}"))?,
            ),
            None => None,
        };
        let catalog = prog.catalog(&plan);
        // Every action is checked in every segment (a refused one stops them all), but only the
        // first segment runs them: one failover, not one per machine.
        let mut actions = actions::compile(
            sc,
            &plan,
            &target_url,
            &actions::Permissions {
                allow_run: s.allow_run,
                untagged_ok: s.untagged_ok,
            },
        )
        // An action's error may quote its URL or arguments: never their secrets.
        .map_err(|e| {
            crate::scenario::redact::Redactor::new(loaded).apply(&format!("{file}: {e}"))
        })?;
        if s.segment.index != 0 {
            actions.clear();
        }
        let recovery = match &sc.recovery {
            Some(r) => Some(
                recovery::RecoverySpec::compile(
                    &r.slo,
                    r.stable
                        .map_or(recovery::DEFAULT_STABLE_S, |d| d.0.as_secs_f64())
                        * s.time_scale,
                )
                .map_err(|e| format!("{file}: {e}"))?,
            ),
            None => None,
        };
        Ok(Prepared {
            loaded,
            thresholds,
            abort,
            stop_when,
            plan,
            prog,
            catalog,
            target_url,
            shown_target,
            monitor,
            segment: s.segment,
            actions,
            recovery,
        })
    }

    /// The safety interlock and the probe, then the port budget (a warning on stderr).
    pub fn preflight(
        &mut self,
        untagged_ok: bool,
        source_ips: &[std::net::IpAddr],
    ) -> Result<(), Refused> {
        let sc = &self.loaded.scenario;
        preflight::target_interlock(sc, &self.prog.target, &self.shown_target, untagged_ok)
            .map_err(Refused::BadInput)?;
        if let Err((e, timed_out)) =
            preflight::probe(&self.target_url, &self.prog.target, &sc.safety.tag_header)
        {
            // An answer that is not HTTP is a wrong port or scheme, not a target that is down (a
            // target that said nothing in 5 s is not asked again).
            let sniffed = (!timed_out)
                .then(|| {
                    engine::transport::sniff::not_speaking_http(
                        &self.target_url,
                        &sc.safety.tag_header,
                        Duration::from_secs(2),
                    )
                })
                .flatten();
            let shown = &self.shown_target;
            let said = match sniffed {
                Some(why) => format!(
                    "the target {shown} is not speaking HTTP: {why}\nNo load was sent. Check --target's scheme and port."
                ),
                None => format!(
                    "the target {shown} is unreachable: {e}\nNo load was sent. Start the target, or point --target at it."
                ),
            };
            return Err(Refused::Unreachable(
                crate::scenario::redact::redact_url_userinfo(&said),
            ));
        }
        self.prog.source_ips = source_ips.to_vec();
        let loopback = preflight::is_loopback(&self.prog.target);
        if let Some(w) = preflight::port_warning(sc, &self.plan, source_ips.len(), loopback) {
            eprintln!("{w}");
        }
        Ok(())
    }

    /// Runs it: the control loop runs to the end (with the live operations the caller started,
    /// if any), and the outcome is judged.
    pub fn run(self, opts: Options, on_interval: IntervalHook) -> Result<RunResult, Refused> {
        let sc = &self.loaded.scenario;
        let plan = Arc::new(self.plan);
        let prog = Arc::new(self.prog);
        // Re-resolves the target's name during the run (`--resolve-every`); stops when dropped.
        let refresher = engine::resolve::Refresher::start(prog.target.addrs.clone());
        let outcome = control::run(
            prog,
            plan.clone(),
            RunOptions {
                threads: opts.threads,
                segment: self.segment,
                start_at: opts.start_at,
                quiet: opts.quiet,
                grace: Duration::from_secs(5),
                abort: self.abort,
                stop_when: self.stop_when,
                on_interval: Some(on_interval),
                live_ops: opts.live_ops,
                actions: self.actions,
                recovery: self.recovery,
                action_logs: opts.action_logs,
                redactor: crate::scenario::redact::Redactor::new(self.loaded),
            },
        )
        .map_err(Refused::Unreachable)?;
        drop(refresher);
        let info = ScenarioInfo {
            name: sc.name.clone(),
            file: self.loaded.file.display().to_string(),
            sha256: self.loaded.sha256.clone(),
            target: self.target_url.clone(),
            zone: sc.load.zone().map(|z| z.to_string()),
        };
        let mut result = outcome::finish(
            outcome,
            self.catalog,
            &plan,
            info,
            self.segment,
            &self.thresholds,
        );
        result.monitor_every_s = sc
            .monitor
            .as_ref()
            .map(|m| m.every.map(|d| d.0.as_secs_f64()).unwrap_or(5.0));
        Ok(result)
    }
}

/// How to run (flags that do not change what is run).
pub struct Options {
    pub threads: usize,
    /// `--start-at`: wait for this wall-clock instant.
    pub start_at: Option<DateTime<Utc>>,
    pub quiet: bool,
    /// Live operations (metrics, live page, control, monitor, keyboard), started by the caller
    /// before any load; shut down at the end of the control loop.
    pub live_ops: Option<crate::ops::LiveOps>,
    /// Where `run` actions write `NAME.log` (the run directory's `actions/`).
    pub action_logs: Option<std::path::PathBuf>,
}
