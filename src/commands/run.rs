//! `flashcrowd run` and `flashcrowd demo`: load and check the scenario, compile the plan and the
//! program, pass the safety interlock, probe the target, run, write the run directory, print the
//! summary, and turn the outcome into an exit code.

use super::{Failure, Outcome};
use crate::cli::{DemoArgs, RunArgs, ScenarioOpts};
use crate::engine::{self, RunOptions};
use crate::plan::{Plan, PlanOptions, Segment};
use crate::report::result::ScenarioInfo;
use crate::report::{rundir, RunResult};
use crate::scenario::units::parse_fraction;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Everything `run` needs, gathered from flags and the environment.
pub struct RunRequest {
    pub scenario: PathBuf,
    pub opts: ScenarioOpts,
    pub target: Option<String>,
    pub out: Option<PathBuf>,
    pub thresholds: Vec<String>,
    pub segment: Segment,
    pub start_at: Option<DateTime<Utc>>,
    pub threads: usize,
    pub quiet: bool,
    pub untagged_ok: bool,
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::BadInput(msg.into())
}

pub fn run(a: RunArgs) -> Outcome {
    let segment = match &a.segment {
        Some(s) => Segment::parse(s).map_err(|e| bad(format!("--segment: {e}")))?,
        None => Segment::WHOLE,
    };
    let start_at = match &a.start_at {
        Some(s) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    bad(format!(
                        "--start-at: `{s}` is not an RFC 3339 instant like 2026-11-11T00:00:00+08:00"
                    ))
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let threads = match a.threads {
        Some(0) => return Err(bad("--threads: must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    execute(RunRequest {
        scenario: a.scenario,
        opts: a.opts,
        target: a.target,
        out: a.out,
        thresholds: a.thresholds,
        segment,
        start_at,
        threads,
        quiet: a.quiet,
        untagged_ok: a.untagged_ok,
    })
}

/// Is this target on this machine?
fn is_loopback(t: &engine::compile::Target) -> bool {
    t.addr.ip().is_loopback()
}

/// Does every request carry the tag header? (Defaults, or every client.)
fn every_request_tagged(sc: &crate::scenario::Scenario) -> bool {
    let tag = &sc.safety.tag_header;
    let has = |h: &crate::scenario::model::Headers| h.keys().any(|k| k.eq_ignore_ascii_case(tag));
    has(&sc.defaults.headers)
        || (!sc.clients.is_empty() && sc.clients.values().all(|c| has(&c.headers)))
}

/// One GET to the target before any load: a refused or unanswered connection stops the run.
fn probe(url: &str, tag_header: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| e.to_string())?;
        match client
            .get(url)
            .header(tag_header, "flashcrowd-probe")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                Err(msg)
            }
        }
    })
}

pub fn execute(req: RunRequest) -> Outcome {
    let loaded =
        crate::scenario::load(&req.scenario, &req.opts.sets).map_err(|d| bad(d.to_string()))?;
    let sc = &loaded.scenario;
    let scale = match &req.opts.scale {
        Some(s) => parse_fraction(s).map_err(|e| bad(format!("--scale: {e}")))?,
        None => 1.0,
    };
    let time_scale = match &req.opts.time_scale {
        Some(s) => parse_fraction(s).map_err(|e| bad(format!("--time-scale: {e}")))?,
        None => 1.0,
    };
    let mut thresholds = Vec::new();
    for t in sc.thresholds.iter() {
        thresholds.push(crate::gate::parse_threshold(t).map_err(|e| {
            bad(format!(
                "{}: threshold `{t}`: {}",
                req.scenario.display(),
                e.message
            ))
        })?);
    }
    for t in &req.thresholds {
        thresholds.push(
            crate::scenario::check_threshold(&loaded, t)
                .map_err(|e| bad(format!("--threshold {e}")))?,
        );
    }
    // `--scale` shrinks the load, so thresholds on absolute amounts shrink with it.
    for t in thresholds.iter_mut() {
        if matches!(
            t.metric,
            crate::gate::Metric::Rate | crate::gate::Metric::Count
        ) {
            t.value *= scale;
        }
    }
    let abort = sc
        .abort
        .iter()
        .map(|a| {
            crate::gate::parse_abort(a).map_err(|e| {
                bad(format!(
                    "{}: abort rule `{a}`: {}",
                    req.scenario.display(),
                    e.message
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let start = req.start_at.unwrap_or_else(Utc::now);
    let plan = Plan::compile(
        &sc.load,
        &PlanOptions {
            scale,
            time_scale,
            start,
        },
    )
    .map_err(|e| bad(format!("{}: load: {e}", req.scenario.display())))?;
    let target_url = req
        .target
        .clone()
        .or_else(|| sc.target.clone())
        .ok_or_else(|| {
            bad(format!(
                "{}: no target: add `target: http://host:port` to the scenario or pass --target URL",
                req.scenario.display()
            ))
        })?;
    let prog = engine::compile(&loaded, &target_url, &plan)
        .map_err(|e| bad(format!("{}: {e}", req.scenario.display())))?;
    if !is_loopback(&prog.target) && !every_request_tagged(sc) && !req.untagged_ok {
        return Err(bad(format!(
            "refusing to send untagged traffic to {} (not a loopback address).\n\
             Tag test traffic so the target can route it to shadow storage: add `{}: flashcrowd` to \
             defaults.headers (or change safety.tag_header), or pass --i-know-this-is-untagged.",
            target_url, sc.safety.tag_header
        )));
    }
    if let Err(e) = probe(&target_url, &sc.safety.tag_header) {
        return Err(Failure::Aborted(format!(
            "the target {target_url} is unreachable: {e}\nNo load was sent. Start the target, or point --target at it."
        )));
    }
    let catalog = prog.catalog(&plan);
    let plan = Arc::new(plan);
    let outcome = engine::run(
        Arc::new(prog),
        plan.clone(),
        RunOptions {
            threads: req.threads,
            segment: req.segment,
            start_at: req.start_at,
            quiet: req.quiet,
            grace: Duration::from_secs(5),
            abort,
        },
    )
    .map_err(Failure::Aborted)?;
    let info = ScenarioInfo {
        name: sc.name.clone(),
        file: req.scenario.display().to_string(),
        sha256: loaded.sha256.clone(),
        target: target_url.clone(),
    };
    let result = RunResult::new(outcome, catalog, &plan, info, req.segment, &thresholds);
    let dir = req
        .out
        .clone()
        .unwrap_or_else(|| rundir::default_dir(&sc.name, result.started_at));
    let dir = write_with_fallback(&dir, &result, &loaded)?;
    print!("{}", crate::report::summary::render(&result, &dir));
    Ok(result.status.exit_code())
}

/// Writes the run directory. When that fails (an unwritable place, a full disk) the results are
/// not lost: they go to a fallback directory, and stderr names both. Only when neither can be
/// written is it an error (exit 2); the summary is still printed then.
fn write_with_fallback(
    dir: &Path,
    r: &RunResult,
    loaded: &crate::scenario::Loaded,
) -> Result<PathBuf, Failure> {
    let first = match write_run_dir(dir, r, loaded) {
        Ok(()) => return Ok(dir.to_path_buf()),
        Err(e) => e,
    };
    let fallback = rundir::fallback_dir(&loaded.scenario.name, r.started_at);
    match write_run_dir(&fallback, r, loaded) {
        Ok(()) => {
            eprintln!(
                "flashcrowd: {first}\nflashcrowd: the run directory {} could not be written; \
                 the results were written to {} instead",
                dir.display(),
                fallback.display()
            );
            Ok(fallback)
        }
        Err(second) => {
            print!("{}", crate::report::summary::render(r, dir));
            Err(bad(format!(
                "{first}\nthe fallback run directory {} could not be written either: {second}\n\
                 no report was saved; the summary above is all that is left of this run",
                fallback.display()
            )))
        }
    }
}

fn write_run_dir(
    dir: &Path,
    r: &RunResult,
    loaded: &crate::scenario::Loaded,
) -> Result<(), Failure> {
    let json = serde_json::to_vec_pretty(&crate::report::json::build(r))
        .map_err(|e| bad(format!("cannot encode report.json: {e}")))?;
    // Every file passes through the redactor: no secret reaches the run directory.
    let redactor = rundir::Redactor::new(loaded);
    let write = |name: &str, bytes: &[u8]| {
        rundir::write_atomic(dir, name, &redactor.apply_bytes(bytes))
            .map_err(|e| bad(format!("cannot write {} in {}: {e}", name, dir.display())))
    };
    write("report.json", &json)?;
    write(
        "scenario.yaml",
        rundir::redact_scenario(&loaded.source, &loaded.secrets).as_bytes(),
    )?;
    Ok(())
}

pub fn demo(a: DemoArgs) -> Outcome {
    let scenario = PathBuf::from("scenarios/double11-countdown.yaml");
    if !scenario.exists() {
        return Err(bad(
            "scenarios/double11-countdown.yaml not found: run `flashcrowd demo` from the repository root",
        ));
    }
    let shop = crate::shop::start_background(crate::shop::ShopConfig::default())
        .map_err(|e| Failure::Aborted(format!("cannot start the embedded shop: {e}")))?;
    let url = shop.url();
    eprintln!(
        "demo: the embedded shop listens on {url}; running {} at time scale {} and scale {}",
        scenario.display(),
        a.time_scale,
        a.scale
    );
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let outcome = execute(RunRequest {
        scenario,
        opts: ScenarioOpts {
            sets: vec![],
            scale: Some(a.scale.clone()),
            time_scale: Some(a.time_scale.clone()),
        },
        target: Some(url),
        out: a.out,
        thresholds: vec![],
        segment: Segment::WHOLE,
        start_at: None,
        threads,
        quiet: a.quiet,
        untagged_ok: false,
    });
    let stats = shop.stats();
    eprintln!(
        "demo: the shop received {} requests ({} tagged as test traffic), {} orders kept apart as shadow orders, {} turned away as busy",
        stats.requests, stats.tagged, stats.shadow_orders, stats.busy_rejections
    );
    outcome
}
