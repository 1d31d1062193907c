//! `flashcrowd run` and `flashcrowd demo`: flags into settings, the scenario loaded, the run
//! handed to the run core (`crate::run`: compile, preflight, control, judge), and around it the
//! run directory (interval log as the run goes, every exporter at the end), the summary and the
//! exit code.

use super::{Failure, Outcome};
use crate::cli::{DemoArgs, RunArgs, ScenarioOpts};
use crate::metrics::recorder::N_ERROR_KINDS;
use crate::metrics::Catalog;
use crate::plan::{Plan, Segment};
use crate::report::hlog::HlogWriter;
use crate::report::journal;
use crate::report::{rundir, RunReport};
use crate::run::{IntervalHook, Options, Prepared, Refused, RunResult, Settings};
use crate::scenario::units::parse_fraction;
use chrono::{DateTime, Utc};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
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
    /// `--on-calendar`: start at the calendar's `from` by the wall clock.
    pub on_calendar: bool,
    pub threads: usize,
    pub quiet: bool,
    pub untagged_ok: bool,
    /// `--allow-run`: the scenario's `run` actions may execute programs.
    pub allow_run: bool,
    pub source_ips: Vec<std::net::IpAddr>,
    /// How the target's host name is resolved, and how often again (`--hosts`, `--resolve-every`).
    pub resolve: crate::engine::resolve::ResolveOpts,
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The HTTP control token; generated (and printed) when None.
    pub control_token: Option<String>,
    /// The error rate past which the summary warns (`--max-errors`), a fraction.
    pub max_error_rate: f64,
    /// `--otlp`: the collector's metrics URL, headers and encoding.
    pub otlp: Option<crate::ops::otlp::OtlpTarget>,
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::BadInput(msg.into())
}

pub fn run(a: RunArgs) -> Outcome {
    let segment = match &a.segment {
        Some(s) => Segment::parse(s).map_err(|e| bad(format!("--segment: {e}")))?,
        None => segment_from_env(
            std::env::var("JOB_COMPLETION_INDEX").ok(),
            std::env::var("FLASHCROWD_SEGMENTS").ok(),
        )?,
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
    let source_ips = match &a.source_ips {
        Some(spec) => parse_source_ips(spec).map_err(|e| bad(format!("--source-ips: {e}")))?,
        None => Vec::new(),
    };
    let max_error_rate = crate::scenario::units::parse_share(&a.max_errors)
        .map_err(|e| bad(format!("--max-errors: {e}")))?;
    let every = crate::scenario::units::parse_duration(&a.resolve_every).map_err(|e| {
        bad(format!(
            "--resolve-every: {e} (a duration like 30s or 2m; 0s resolves once)"
        ))
    })?;
    if let Some(h) = &a.hosts {
        std::fs::read_to_string(h)
            .map_err(|e| bad(format!("--hosts: cannot read {}: {e}", h.display())))?;
    }
    // The collector: --otlp (or FLASHCROWD_OTLP), else OpenTelemetry's variables: the metrics
    // endpoint as given, or the general endpoint with /v1/metrics added (as the SDKs do).
    let endpoint = match &a.otlp {
        Some(u) => Some((u.clone(), "--otlp")),
        None => match std::env::var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
            Ok(u) if !u.trim().is_empty() => Some((u, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")),
            _ => std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .map(|u| (u, "OTEL_EXPORTER_OTLP_ENDPOINT")),
        },
    };
    if endpoint.is_none() && (a.otlp_protocol.is_some() || !a.otlp_headers.is_empty()) {
        return Err(bad(
            "--otlp-protocol and --otlp-header need a collector: give --otlp URL \
             (or set OTEL_EXPORTER_OTLP_ENDPOINT)"
                .to_string(),
        ));
    }
    let otlp = match &endpoint {
        Some((u, from)) => {
            use crate::ops::otlp::OtlpSpec;
            let url = if *from == "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" {
                OtlpSpec::metrics_url_as_given(u)
            } else {
                OtlpSpec::metrics_url(u)
            }
            .map_err(|e| bad(format!("{from}: {e}")))?;
            let env = std::env::var("OTEL_EXPORTER_OTLP_HEADERS").ok();
            let headers = OtlpSpec::parse_headers(&a.otlp_headers, env.as_deref()).map_err(bad)?;
            // The flag, else OpenTelemetry's variables (the metrics one first), else protobuf.
            let (protocol, from) = match &a.otlp_protocol {
                Some(p) => (Some(p.clone()), "--otlp-protocol"),
                None => match std::env::var("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") {
                    Ok(p) => (Some(p), "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"),
                    Err(_) => (
                        std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").ok(),
                        "OTEL_EXPORTER_OTLP_PROTOCOL",
                    ),
                },
            };
            let protocol = match protocol {
                Some(p) => crate::ops::otlp::Protocol::parse(&p)
                    .map_err(|e| bad(format!("{from}: {e}")))?,
                None => crate::ops::otlp::Protocol::default(),
            };
            Some(crate::ops::otlp::OtlpTarget {
                url,
                headers,
                protocol,
            })
        }
        None => None,
    };
    execute(RunRequest {
        max_error_rate,
        source_ips,
        resolve: crate::engine::resolve::ResolveOpts {
            hosts: a.hosts.clone(),
            every: Some(every),
        },
        scenario: a.scenario,
        opts: a.opts,
        target: a.target,
        out: a.out,
        thresholds: a.thresholds,
        segment,
        start_at,
        on_calendar: a.on_calendar,
        threads,
        quiet: a.quiet,
        untagged_ok: a.untagged_ok,
        allow_run: a.allow_run,
        metrics_listen: a.metrics_listen,
        control_token: a.control_token,
        otlp,
    })
}

/// The segment of a Kubernetes Indexed Job pod: JOB_COMPLETION_INDEX (0-based) of
/// FLASHCROWD_SEGMENTS. Neither set: the whole plan.
fn segment_from_env(index: Option<String>, count: Option<String>) -> Result<Segment, Failure> {
    match (index, count) {
        (Some(i), Some(n)) => {
            let i: u32 = i
                .trim()
                .parse()
                .map_err(|_| bad(format!("JOB_COMPLETION_INDEX=`{i}` is not a whole number")))?;
            let n: u32 = n
                .trim()
                .parse()
                .map_err(|_| bad(format!("FLASHCROWD_SEGMENTS=`{n}` is not a whole number")))?;
            Segment::new(i, n).map_err(|e| {
                bad(format!(
                    "JOB_COMPLETION_INDEX={i} with FLASHCROWD_SEGMENTS={n}: {e}"
                ))
            })
        }
        // Every pod of the Job would run the whole plan: N times the load. Refuse.
        (Some(i), None) => Err(bad(format!(
            "JOB_COMPLETION_INDEX={i} is set (a Kubernetes Indexed Job) but FLASHCROWD_SEGMENTS is not: \
             set FLASHCROWD_SEGMENTS to the Job's completions, or pass --segment 1/1 to run the whole \
             plan in every pod"
        ))),
        (None, Some(_)) | (None, None) => Ok(Segment::WHOLE),
    }
}

/// Parses `127.0.0.2-127.0.0.20`, `10.1.0.0/28` (IPv4) or a comma-separated list of addresses
/// and such ranges.
pub fn parse_source_ips(spec: &str) -> Result<Vec<std::net::IpAddr>, String> {
    use std::net::{IpAddr, Ipv4Addr};
    const MAX: usize = 4096;
    let mut out = Vec::new();
    let v4 = |s: &str| -> Result<u32, String> {
        s.trim()
            .parse::<Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| format!("`{}` is not an IPv4 address", s.trim()))
    };
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((a, b)) = item.split_once('-') {
            let (a, b) = (v4(a)?, v4(b)?);
            if b < a || (b - a) as usize >= MAX {
                return Err(format!(
                    "`{item}`: expected a rising range of at most {MAX} addresses"
                ));
            }
            out.extend((a..=b).map(|x| IpAddr::V4(Ipv4Addr::from(x))));
        } else if let Some((a, bits)) = item.split_once('/') {
            let base = v4(a)?;
            let bits: u32 = bits
                .trim()
                .parse()
                .ok()
                .filter(|b| (20..=32).contains(b))
                .ok_or_else(|| format!("`{item}`: the prefix length must be 20 to 32"))?;
            let size = 1u32 << (32 - bits);
            let net = base & !(size - 1);
            out.extend((0..size).map(|i| IpAddr::V4(Ipv4Addr::from(net + i))));
        } else {
            out.push(
                item.parse::<IpAddr>()
                    .map_err(|_| format!("`{item}` is not an IP address"))?,
            );
        }
    }
    if out.is_empty() {
        return Err(format!("`{spec}` names no address"));
    }
    if out.len() > MAX {
        return Err(format!("{} addresses; at most {MAX}", out.len()));
    }
    Ok(out)
}

/// `--on-calendar`: the calendar's `from`, which must still be ahead.
fn calendar_start(
    sc: &crate::scenario::Scenario,
    file: &Path,
    time_scale: f64,
) -> Result<DateTime<Utc>, Failure> {
    let file = file.display();
    let Some(cal) = &sc.load.calendar else {
        return Err(bad(format!(
            "--on-calendar: {file} has no `load.calendar`: it waits for a calendar's `from`; use --start-at RFC3339 for other loads"
        )));
    };
    let from = crate::plan::calendar::from_instant(cal)
        .map_err(|e| bad(format!("--on-calendar: {file}: {e}")))?
        .ok_or_else(|| {
            bad(format!(
                "--on-calendar: {file}: load.calendar has no `from`: add `from: <RFC 3339 instant>`, the wall-clock time the calendar starts"
            ))
        })?;
    if time_scale != 1.0 {
        return Err(bad(
            "--on-calendar runs the calendar by the wall clock, so --time-scale would move its moments off their instants:              drop --time-scale, or use --start-at to rehearse a compressed calendar",
        ));
    }
    let now = Utc::now();
    if from.with_timezone(&Utc) <= now {
        return Err(bad(format!(
            "--on-calendar: load.calendar.from ({}) is {} ago: the calendar has begun. Set a later `from`,              or run without --on-calendar to start it now",
            from.to_rfc3339(),
            crate::scenario::units::format_duration(
                now.signed_duration_since(from).to_std().unwrap_or_default()
            )
        )));
    }
    Ok(from.with_timezone(&Utc))
}

/// Says how long an `--on-calendar` run waits: the process looks idle until then.
fn say_calendar_wait(from: DateTime<Utc>) {
    let left = (from - Utc::now()).to_std().unwrap_or_default();
    eprintln!(
        "flashcrowd: --on-calendar: waiting {} until load.calendar.from ({}) before sending anything; Ctrl-C cancels",
        crate::scenario::units::format_duration(Duration::from_secs(left.as_secs())),
        from.to_rfc3339()
    );
}

pub fn execute(req: RunRequest) -> Outcome {
    let loaded = crate::scenario::load(&req.scenario, &req.opts.all_sets())
        .map_err(|d| bad(d.to_string()))?;
    let sc = &loaded.scenario;
    let scale = match &req.opts.scale {
        Some(s) => parse_fraction(s).map_err(|e| bad(format!("--scale: {e}")))?,
        None => 1.0,
    };
    let time_scale = match &req.opts.time_scale {
        Some(s) => parse_fraction(s).map_err(|e| bad(format!("--time-scale: {e}")))?,
        None => 1.0,
    };
    let start_at = match req.on_calendar {
        true => Some(calendar_start(sc, &req.scenario, time_scale)?),
        false => req.start_at,
    };
    let start = start_at.unwrap_or_else(Utc::now);
    let mut prepared = Prepared::new(
        &loaded,
        &Settings {
            scale,
            time_scale,
            start,
            strict: req.opts.strict,
            segment: req.segment,
            target: req.target.clone(),
            thresholds: req.thresholds.clone(),
            allow_run: req.allow_run,
            untagged_ok: req.untagged_ok,
            resolve: req.resolve.clone(),
        },
    )
    .map_err(bad)?;
    for w in super::plan::wait_warnings(&loaded, &prepared.plan) {
        eprintln!("{w}");
    }
    prepared
        .preflight(req.untagged_ok, &req.source_ips)
        .map_err(refused)?;
    let dir = req
        .out
        .clone()
        .unwrap_or_else(|| rundir::default_dir(&sc.name, start));
    // The interval log is written as the run goes: find a writable run directory before any load.
    let redactor = rundir::Redactor::new(&loaded);
    let file_catalog = redacted_catalog(&prepared.catalog, &redactor);
    let journal = journal::Header::new(
        &journal::RunInfo {
            loaded: &loaded,
            scenario_file: &req.scenario,
            target: &prepared.target_url,
            segment: req.segment,
            scale,
            time_scale,
            plan: &prepared.plan,
            thresholds: &prepared.thresholds,
            start,
            planned_start: req.start_at,
            threads: req.threads,
            catalog: &prepared.catalog,
            actions: &prepared.actions,
            recovery: prepared.recovery.as_ref(),
        },
        &redactor,
    );
    let begin = |dir: &Path| Recording::start(dir, &file_catalog, start, &journal, &redactor);
    let (dir, recording) = match begin(&dir) {
        Ok(rec) => (dir, rec),
        Err(first) => {
            let fallback = rundir::fallback_dir(&sc.name, start);
            let rec = begin(&fallback).map_err(|second| {
                bad(format!(
                    "{first}\nthe fallback run directory failed too: {second}"
                ))
            })?;
            eprintln!(
                "flashcrowd: {first}\nflashcrowd: this run is written to {} instead",
                fallback.display()
            );
            (fallback, rec)
        }
    };
    // The live page's seconds are kept beside the run's files, not in memory.
    let serve = req.metrics_listen.map(|listen| crate::ops::Serve {
        spill_dir: Some(dir.clone()),
        ..serve_options(
            listen,
            &req,
            sc,
            &prepared.shown_target,
            &prepared.plan,
            &prepared.thresholds,
            &redactor,
        )
    });
    let monitor = prepared.monitor.take();
    let mut live_ops = if serve.is_some() || monitor.is_some() || !req.quiet || req.otlp.is_some() {
        Some(
            crate::ops::LiveOps::start(
                serve,
                monitor,
                prepared.plan.model == crate::plan::Model::Closed,
                !req.quiet,
            )
            .map_err(bad)?,
        )
    } else {
        None
    };
    if let (Some(ops), Some(target)) = (live_ops.as_mut(), &req.otlp) {
        let (url, protocol) = (&target.url, target.protocol);
        let spec = crate::ops::otlp::OtlpSpec {
            url: url.clone(),
            headers: target.headers.clone(),
            protocol,
            scenario: sc.name.clone(),
            segment: req.segment.to_string(),
            run_id: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        ops.otlp = Some(crate::ops::otlp::Otlp::start(spec).map_err(bad)?);
        eprintln!("otlp: sending metrics to {url} once a second ({protocol})");
    }
    // The page's server outlives the load, to show the verdict; stopped below.
    let (board, page_server) = match live_ops.as_mut() {
        Some(ops) => (ops.board(), ops.take_server()),
        None => (None, None),
    };
    if let Some(srv) = &page_server {
        let addr = srv.addr;
        eprintln!("live page: http://{addr}/ · metrics: http://{addr}/metrics");
        match &req.control_token {
            Some(_) => eprintln!("control: POST http://{addr}/control/{{pause,resume,stop,rate?factor=F}} with the token of --control-token"),
            None => eprintln!(
                "control: POST http://{addr}/control/{{pause,resume,stop,rate?factor=F}} with `Authorization: Bearer {}` (this run's control token)",
                live_token(&req)
            ),
        }
    }
    if let (true, Some(from)) = (req.on_calendar, start_at) {
        say_calendar_wait(from);
    }
    let hook = recording.hook();
    let mut result = prepared
        .run(
            Options {
                threads: req.threads,
                start_at,
                quiet: req.quiet,
                live_ops,
                action_logs: Some(dir.join("actions")),
            },
            hook,
        )
        .map_err(refused)?;
    result.errors_by_second = recording.finish();
    result.waits = crate::plan::waits::names(sc);
    result.apply_error_budget(req.max_error_rate, req.opts.strict || in_ci());
    // The exact record `flashcrowd merge` reads (histograms whole, thresholds at full limits).
    if let Err(e) = crate::report::state::write(&dir, &result, scale, time_scale, &redactor) {
        eprintln!("flashcrowd: {e:#} (this run cannot be merged)");
    }
    let verdict = crate::ops::board::Verdict {
        status: result.status.name().to_string(),
        reason: result.reason.as_ref().map(|r| redactor.apply(r)),
        exit_code: result.status.exit_code() as i32,
        dir: Some(dir.display().to_string()),
    };
    let outcome = finish_run_dir(&dir, &result, &loaded);
    if let (Some(b), Some(srv)) = (board, page_server) {
        b.finish(verdict);
        b.linger(Duration::from_secs(3));
        srv.stop();
    }
    outcome
}

/// CI=true (GitHub Actions, GitLab CI and most others set it): be strict about the error rate.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The token generated for this run when --control-token gave none (made once, kept for the
/// message that prints it).
fn live_token(req: &RunRequest) -> String {
    req.control_token
        .clone()
        .unwrap_or_else(|| GENERATED.get_or_init(crate::ops::new_token).clone())
}

static GENERATED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// What the endpoint on --metrics-listen serves: the live page's facts, the thresholds to judge
/// live, the token, and the redactor (with the token added to the secrets it removes).
fn serve_options(
    listen: std::net::SocketAddr,
    req: &RunRequest,
    sc: &crate::scenario::Scenario,
    shown_target: &str,
    plan: &Plan,
    thresholds: &[crate::gate::Threshold],
    redactor: &rundir::Redactor,
) -> crate::ops::Serve {
    let token = live_token(req);
    let secrets = redactor.clone();
    let t = token.clone();
    let mut moments = Vec::new();
    if let Some(at) = plan.sale_start {
        moments.push(("sale start".to_string(), at));
    }
    moments.extend(plan.moments().iter().map(|m| (m.name.clone(), m.at_s)));
    crate::ops::Serve {
        listen,
        token,
        info: crate::ops::board::BoardInfo {
            scenario: sc.name.clone(),
            target: shown_target.to_string(),
            segment: req.segment.to_string(),
            closed: plan.model == crate::plan::Model::Closed,
            duration_s: plan.duration,
            phases: plan
                .phases
                .iter()
                .map(|p| crate::metrics::catalog::PhaseSpan {
                    name: p.name.clone(),
                    start_s: p.start,
                    end_s: p.end,
                })
                .collect(),
            moments,
        },
        thresholds: thresholds.to_vec(),
        redact: Arc::new(move |s: &str| secrets.apply(s).replace(t.as_str(), "[redacted]")),
        spill_dir: None,
    }
}

fn refused(r: Refused) -> Failure {
    match r {
        Refused::BadInput(m) => Failure::BadInput(m),
        Refused::Unreachable(m) => Failure::Aborted(m),
    }
}

/// What the run records as it goes, from each completed interval: latency.hlog, the journal
/// (what a killed run is rebuilt from), and the errors by kind per second for the report's
/// series.
struct Recording {
    state: Rc<RefCell<RecordingState>>,
}

struct RecordingState {
    hlog: Option<HlogWriter>,
    journal: Option<journal::JournalWriter>,
    /// The first failure to append to the log (the run goes on; the report says so).
    failed: Option<String>,
    errors: BTreeMap<u64, [u64; N_ERROR_KINDS]>,
    cpu0: f64,
}

impl Recording {
    fn start(
        dir: &Path,
        catalog: &Catalog,
        start: DateTime<Utc>,
        header: &journal::Header,
        redactor: &rundir::Redactor,
    ) -> Result<Recording, Failure> {
        let cannot = |e: anyhow::Error| {
            bad(format!(
                "cannot start the run directory {}: {e:#}",
                dir.display()
            ))
        };
        let hlog = HlogWriter::create(dir, catalog, start.into()).map_err(cannot)?;
        let journal = journal::JournalWriter::create(dir, header.clone(), redactor.clone())
            .map_err(cannot)?;
        Ok(Recording {
            state: Rc::new(RefCell::new(RecordingState {
                hlog: Some(hlog),
                journal: Some(journal),
                failed: None,
                errors: BTreeMap::new(),
                cpu0: crate::run::control::process_cpu_seconds(),
            })),
        })
    }

    fn hook(&self) -> IntervalHook {
        let state = self.state.clone();
        Box::new(move |sec, rec, point, timeline| {
            let mut st = state.borrow_mut();
            let all = rec.total_where(|_, _, _| true);
            if all.error_count() > 0 {
                st.errors.insert(sec, all.errors);
            }
            if let Some(w) = st.hlog.as_mut() {
                if let Err(e) = w.interval(sec, rec) {
                    st.failed = Some(format!("{e:#}"));
                    st.hlog = None;
                }
            }
            let cpu_s = crate::run::control::process_cpu_seconds() - st.cpu0;
            if let Some(j) = st.journal.as_mut() {
                j.second(sec, rec, point, timeline, cpu_s);
            }
        })
    }

    /// Closes latency.hlog; the errors by second. A log that could not be written is reported
    /// on stderr, and the run's other files are still written.
    fn finish(self) -> BTreeMap<u64, [u64; N_ERROR_KINDS]> {
        let mut st = self.state.borrow_mut();
        if let Some(e) = st.failed.take() {
            eprintln!("flashcrowd: latency.hlog stopped short: {e}");
        }
        if let Some(w) = st.hlog.take() {
            if let Err(e) = w.close() {
                eprintln!("flashcrowd: cannot close latency.hlog: {e:#}");
            }
        }
        if let Some(Err(e)) = st.journal.take().map(journal::JournalWriter::close) {
            eprintln!("flashcrowd: the journal stopped short: {e}");
        }
        std::mem::take(&mut st.errors)
    }
}

/// Writes the run directory. When that fails (a full disk, a vanished directory) the results are
/// not lost: they go to a fallback directory, and stderr names both. Only when neither can be
/// written is it an error (exit 2); the summary is still printed then.
fn finish_run_dir(dir: &Path, r: &RunResult, loaded: &crate::scenario::Loaded) -> Outcome {
    let redactor = rundir::Redactor::new(loaded);
    let mut report = redacted(crate::report::json::report(r), &redactor);
    if let Some(d) = &loaded.scenario.load.steps {
        let tags = crate::compare::intervals::read(dir).unwrap_or_default();
        report.capacity = crate::capacity::analyse(&report, &tags, &d.stop_when);
    }
    let first = match write_run_dir(dir, &report, loaded, &redactor) {
        Ok(()) => {
            print!("{}", crate::report::summary::render(&report, dir));
            return Ok(r.status.exit_code());
        }
        Err(e) => e,
    };
    let fallback = rundir::fallback_dir(&loaded.scenario.name, r.started_at);
    // The interval log was written as the run went: take it along when it can be read.
    let _ = std::fs::create_dir_all(&fallback);
    let _ = std::fs::copy(dir.join("latency.hlog"), fallback.join("latency.hlog"));
    match write_run_dir(&fallback, &report, loaded, &redactor) {
        Ok(()) => {
            eprintln!(
                "flashcrowd: {first}\nflashcrowd: the run directory {} could not be written; \
                 the results were written to {} instead",
                dir.display(),
                fallback.display()
            );
            print!("{}", crate::report::summary::render(&report, &fallback));
            Ok(r.status.exit_code())
        }
        Err(second) => {
            print!("{}", crate::report::summary::render(&report, dir));
            Err(bad(format!(
                "{first}\nthe fallback run directory {} could not be written either: {second}\n\
                 no report was saved; the summary above is all that is left of this run",
                fallback.display()
            )))
        }
    }
}

/// The catalog with secrets removed from its names (they become interval-log tags).
fn redacted_catalog(c: &Catalog, redactor: &rundir::Redactor) -> Catalog {
    let mut c = c.clone();
    for e in c.endpoints.iter_mut() {
        e.name = redactor.apply(&e.name);
    }
    for n in c.journeys.iter_mut().chain(c.clients.iter_mut()) {
        *n = redactor.apply(n);
    }
    c
}

/// The report with every secret the run knows of removed from its text.
fn redacted(
    report: crate::report::model::Report,
    redactor: &rundir::Redactor,
) -> crate::report::model::Report {
    serde_json::to_string(&report)
        .ok()
        .map(|t| redactor.apply(&t))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(report)
}

/// Writes report.json, renders every other exporter from it and latency.hlog (exactly what
/// `flashcrowd report` does) and copies the scenario, secrets removed.
fn write_run_dir(
    dir: &Path,
    report: &crate::report::model::Report,
    loaded: &crate::scenario::Loaded,
    redactor: &rundir::Redactor,
) -> Result<(), String> {
    let written = || -> anyhow::Result<()> {
        let hlog = crate::report::hlog::read(dir)?;
        let rr = RunReport {
            report: report.clone(),
            hlog,
        };
        crate::report::render_all(&rr, dir)?;
        rundir::write_atomic(
            dir,
            "scenario.yaml",
            redactor
                .apply(&rundir::redact_scenario(&loaded.source, &loaded.secrets))
                .as_bytes(),
        )?;
        Ok(())
    };
    written().map_err(|e| format!("cannot write the run directory {}: {e:#}", dir.display()))
}

pub fn demo(a: DemoArgs) -> Outcome {
    let (file, time_scale, scale) = match a.drill {
        true => ("scenarios/double11-night.yaml", "1", "1"),
        false => ("scenarios/double11-countdown.yaml", "1/8", "1/5"),
    };
    let time_scale = a.time_scale.clone().unwrap_or_else(|| time_scale.into());
    let scale = a.scale.clone().unwrap_or_else(|| scale.into());
    let scenario = PathBuf::from(file);
    if !scenario.exists() {
        return Err(bad(format!(
            "{file} not found: run `flashcrowd demo` from the repository root"
        )));
    }
    let shop = crate::shop::start_background(crate::shop::ShopConfig::default())
        .map_err(|e| Failure::Aborted(format!("cannot start the embedded shop: {e}")))?;
    let url = shop.url();
    eprintln!(
        "demo: the embedded shop listens on {url}; running {} at time scale {} and scale {}",
        scenario.display(),
        time_scale,
        scale
    );
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let outcome = execute(RunRequest {
        scenario,
        opts: ScenarioOpts {
            sets: vec![],
            scale: Some(scale),
            time_scale: Some(time_scale),
            strict: false,
            iterations: None,
        },
        target: Some(url),
        out: a.out,
        thresholds: vec![],
        segment: Segment::WHOLE,
        start_at: None,
        on_calendar: false,
        threads,
        quiet: a.quiet,
        untagged_ok: false,
        allow_run: false,
        source_ips: Vec::new(),
        resolve: Default::default(),
        metrics_listen: Some(a.metrics_listen),
        control_token: None,
        otlp: None,
        max_error_rate: crate::run::result::DEFAULT_MAX_ERROR_RATE,
    });
    let stats = shop.stats();
    eprintln!(
        "demo: the shop received {} requests ({} tagged as test traffic), {} orders kept apart as shadow orders, {} turned away as busy, {} failed by a drill",
        stats.requests, stats.tagged, stats.shadow_orders, stats.busy_rejections, stats.drill_failures
    );
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_accept_ranges_prefixes_and_lists() {
        let ips = parse_source_ips("127.0.0.2-127.0.0.4").unwrap();
        assert_eq!(ips.len(), 3);
        assert_eq!(ips[2].to_string(), "127.0.0.4");
        let ips = parse_source_ips("127.0.1.9/30").unwrap();
        let got: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        assert_eq!(got, ["127.0.1.8", "127.0.1.9", "127.0.1.10", "127.0.1.11"]);
        assert_eq!(parse_source_ips("127.0.0.1, ::1").unwrap().len(), 2);
        assert!(parse_source_ips("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_source_ips("10.0.0.0/8").is_err());
        assert!(parse_source_ips("nope").is_err());
        assert!(parse_source_ips(" , ").is_err());
    }

    #[test]
    fn kubernetes_job_index_selects_the_segment() {
        let s = segment_from_env(Some("2".into()), Some("3".into())).unwrap();
        assert_eq!(s.to_string(), "3/3");
        assert_eq!(segment_from_env(None, None).unwrap(), Segment::WHOLE);
        assert!(
            segment_from_env(Some("0".into()), None).is_err(),
            "no silent N-fold load"
        );
        assert!(segment_from_env(Some("3".into()), Some("3".into())).is_err());
        assert!(segment_from_env(Some("x".into()), Some("3".into())).is_err());
    }
}
