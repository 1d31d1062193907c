//! Live operations: what a running drill shows and takes from outside.
//!
//! - `exporter`: a Prometheus endpoint (`--metrics-listen`), fed once per second by the collector.
//! - `board`: the live page's record of the whole run (and each second's interval histograms
//!   for `flashcrowd watch`), fed by the same second.
//! - `page`: the live page itself (`GET /`), one self-contained HTML file.
//! - `server`: the HTTP server behind them, which also takes live control (`/control/...`,
//!   only with the control token).
//! - `watch`: `flashcrowd watch`, one exact view merged from many generators' endpoints.
//! - `otlp`: the same seconds as OTLP/HTTP (protobuf, or JSON) to an OpenTelemetry collector
//!   (`--otlp`).
//! - `monitor`: scrapes the target's own Prometheus endpoints (`monitor:` in the scenario).
//! - `keyboard`: p/r/+/-/s in the live view when stdin is a terminal.
//!
//! Control goes through [`Steer`], which sets the engine's shared `Control` atomics (the shards
//! read them per arrival, no lock) and remembers every command it applied ([`Applied`]); the run
//! core (`crate::run`) turns those into its timeline. Arrows: ops drives the engine's `Control`
//! and knows nothing of the run core above it.

pub mod board;
pub mod exporter;
pub mod keyboard;
pub mod monitor;
pub mod otlp;
pub mod page;
pub mod server;
pub mod spill;
pub mod watch;

use crate::engine::shard::{Control, STOPPING};
use crate::metrics::{Catalog, Point, Recorder};
use chrono::{DateTime, Utc};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// One line of the live page's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveEvent {
    pub t: f64,
    pub event: String,
    pub detail: String,
}

/// A command [`Steer`] applied: when, what (a `Scale` is recorded as the `Factor` it set), from
/// where (`http`, `keyboard`), and the change as one line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Seconds since the run started.
    pub t: f64,
    pub command: Command,
    pub source: String,
    pub detail: String,
}

/// A live-control command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// The factor relative to the plan (1 = the plan as written).
    Factor(f64),
    /// Multiplies the factor in force (the keyboard's + and -).
    Scale(f64),
    /// A fixed rate (open model: arrivals/s) or user count (closed model).
    Set(f64),
    Stop,
}

/// Applies commands to the run and remembers them.
pub struct Steer {
    pub control: Arc<Control>,
    start: OnceLock<(Instant, DateTime<Utc>)>,
    applied: Mutex<Vec<Applied>>,
    /// What the live page lists: the commands applied and the run core's notes (rules,
    /// signals, actions), in order.
    live: Mutex<Vec<LiveEvent>>,
    stop_requested: AtomicBool,
    /// Closed model: `set` counts users, not arrivals/s.
    closed: bool,
}

/// The largest factor or set value accepted (a typo of 1000 for 10 should not melt the target).
pub const MAX_FACTOR: f64 = 100.0;

impl Steer {
    pub fn new(closed: bool) -> Steer {
        Steer {
            control: Arc::new(Control::default()),
            start: OnceLock::new(),
            applied: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            stop_requested: AtomicBool::new(false),
            closed,
        }
    }

    /// The run's time 0: its monotonic instant (the timeline counts from it) and its wall clock
    /// (`run.started_at`), one pair read together.
    pub fn set_start(&self, at: Instant, wall: DateTime<Utc>) {
        let _ = self.start.set((at, wall));
    }

    /// The wall clock of time 0, once the run has started.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.start.get().map(|s| s.1)
    }

    /// Seconds since the run started (0 before it starts).
    pub fn elapsed_s(&self) -> f64 {
        self.now_s()
    }

    fn now_s(&self) -> f64 {
        self.start
            .get()
            .map(|s| Instant::now().saturating_duration_since(s.0).as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Seconds since the run's start, to the millisecond (the timeline's clock).
    pub fn t(&self) -> f64 {
        (self.now_s() * 1000.0).round() / 1000.0
    }

    /// Every command applied so far, in order.
    pub fn applied(&self) -> Vec<Applied> {
        self.applied.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Adds a line to the live page's timeline (the run core's rules, signals and actions).
    pub fn note(&self, t: f64, event: &str, detail: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.push(LiveEvent {
                t,
                event: event.to_string(),
                detail: detail.to_string(),
            });
        }
    }

    /// The live page's timeline so far.
    pub fn timeline(&self) -> Vec<LiveEvent> {
        self.live.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Was the run stopped through live control?
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Relaxed)
    }

    /// Applies a command from `source` (`http`, `keyboard`); the change as one line of text.
    pub fn apply(&self, cmd: Command, source: &str) -> Result<String, String> {
        let unit = if self.closed { "users" } else { "arrivals/s" };
        let check = |v: f64, what: &str| {
            if !v.is_finite() || v < 0.0 {
                Err(format!("{what} must be a number ≥ 0, got {v}"))
            } else {
                Ok(v)
            }
        };
        let (command, detail) = match cmd {
            Command::Pause => {
                self.control.set_paused(true);
                (cmd, "new arrivals paused".to_string())
            }
            Command::Resume => {
                self.control.set_paused(false);
                (cmd, "arrivals resumed".to_string())
            }
            Command::Factor(f) => {
                let f = check(f, "factor")?;
                if f > MAX_FACTOR {
                    return Err(format!("factor {f} is above the limit of {MAX_FACTOR}"));
                }
                self.control.set_factor(f);
                (cmd, format!("factor {} of the plan", fmt_num(f)))
            }
            Command::Scale(m) => {
                let m = check(m, "scale")?;
                let s = self.control.steering();
                let base = s.factor;
                let f = (base * m).min(MAX_FACTOR);
                self.control.set_factor(f);
                (
                    Command::Factor(f),
                    format!("factor {} of the plan (×{})", fmt_num(f), fmt_num(m)),
                )
            }
            Command::Set(v) => {
                let v = check(v, "set")?;
                self.control.set_rate(v);
                (cmd, format!("set to {} {unit}", fmt_num(v)))
            }
            Command::Stop => {
                self.stop_requested.store(true, Ordering::Relaxed);
                self.control.raise(STOPPING);
                (cmd, "stopped: finishing requests in flight".to_string())
            }
        };
        let detail = format!("{detail} ({source})");
        let t = self.t();
        let name = match command {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Stop => "stop",
            _ => "rate",
        };
        self.note(t, name, &detail);
        if let Ok(mut log) = self.applied.lock() {
            log.push(Applied {
                t,
                command,
                source: source.to_string(),
                detail: detail.clone(),
            });
        }
        Ok(detail)
    }
}

pub fn fmt_num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// What the endpoint on `--metrics-listen` serves besides /metrics: the live page and control.
pub struct Serve {
    pub listen: SocketAddr,
    /// The control token: POST /control/... answers 401 without it.
    pub token: String,
    pub info: board::BoardInfo,
    /// The run's thresholds, judged live on the run so far.
    pub thresholds: Vec<crate::gate::Threshold>,
    /// Removes the run's secrets (and the token) from every text served.
    pub redact: board::Redact,
    /// Where the board keeps the run's seconds (the run directory; None: in memory).
    pub spill_dir: Option<std::path::PathBuf>,
}

/// A new control token: 128 random bits, hex.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The live page's feed: the board, and the run so far for judging thresholds.
struct PageFeed {
    board: Arc<board::Board>,
    thresholds: Vec<crate::gate::Threshold>,
    total: Option<Recorder>,
    redact: board::Redact,
}

/// Everything live operations need for one run, started before the load.
pub struct LiveOps {
    pub steer: Arc<Steer>,
    pub exporter: Option<Arc<exporter::Exporter>>,
    server: Option<server::Server>,
    page: Option<PageFeed>,
    pub monitor: Option<monitor::Monitor>,
    /// `--otlp`: metrics to an OpenTelemetry collector.
    pub otlp: Option<otlp::Otlp>,
    /// Read keys from the terminal (p r + - s).
    pub keyboard: bool,
}

impl LiveOps {
    /// Binds the metrics address (when given) and starts the monitor (when the scenario has
    /// one). A bind failure is an error before any load is sent.
    pub fn start(
        serve: Option<Serve>,
        monitor: Option<monitor::MonitorSpec>,
        closed: bool,
        keyboard: bool,
    ) -> Result<LiveOps, String> {
        let steer = Arc::new(Steer::new(closed));
        let (exporter, server, page) = match serve {
            Some(sv) => {
                let ex = Arc::new(exporter::Exporter::new(closed));
                let board = Arc::new(board::Board::new(
                    sv.info,
                    Some(steer.clone()),
                    sv.redact.clone(),
                ));
                if let Some(d) = &sv.spill_dir {
                    board.spill_to(d);
                }
                let srv = server::Server::start(
                    sv.listen,
                    server::Routes {
                        exporter: Some(ex.clone()),
                        steer: Some(steer.clone()),
                        board: board.clone(),
                        token: Some(sv.token),
                        redact: sv.redact.clone(),
                    },
                )?;
                let feed = PageFeed {
                    board,
                    thresholds: sv.thresholds,
                    total: None,
                    redact: sv.redact,
                };
                (Some(ex), Some(srv), Some(feed))
            }
            None => (None, None, None),
        };
        let monitor = monitor.map(monitor::Monitor::start).transpose()?;
        Ok(LiveOps {
            steer,
            exporter,
            server,
            page,
            monitor,
            otlp: None,
            keyboard,
        })
    }

    /// The address the metrics endpoint listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// The live page's board.
    pub fn board(&self) -> Option<Arc<board::Board>> {
        self.page.as_ref().map(|p| p.board.clone())
    }

    /// Takes the server out, so it outlives the load and shows the verdict; the caller stops it.
    pub fn take_server(&mut self) -> Option<server::Server> {
        self.server.take()
    }

    /// One completed second (all shards merged): the exporter and the live page.
    pub fn second(
        &mut self,
        rec: &Recorder,
        cat: &Catalog,
        p: &Point,
        phase: usize,
        steering: crate::engine::shard::Steering,
    ) {
        if let Some(ex) = &self.exporter {
            ex.second(rec, cat, p, phase, steering);
        }
        if let Some(o) = self.otlp.as_mut() {
            o.second(rec, cat, p);
        }
        let Some(feed) = self.page.as_mut() else {
            return;
        };
        if p.t == 0 {
            if let Some(at) = self.steer.started_at() {
                feed.board.set_started_at(at);
            }
        }
        feed.board.push(second_of(rec, cat, p, phase, &feed.redact));
        let total = feed.total.get_or_insert_with(|| rec.empty_like());
        total.merge(rec);
        let duration = (p.t + 1) as f64;
        let live = feed
            .thresholds
            .iter()
            .map(|t| {
                let observed = cat.observe(total, t, duration);
                board::LiveThreshold {
                    source: t.source.clone(),
                    observed: observed.map(|v| t.metric.format_observed(v)),
                    pass: observed.is_some_and(|v| t.op.holds(v, t.value)),
                }
            })
            .collect();
        feed.board.set_thresholds(live);
    }

    /// Stops the server and the monitor (the run is over).
    pub fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        if let Some(m) = self.monitor.as_mut() {
            m.stop();
        }
        if let Some(o) = self.otlp.as_mut() {
            o.finish();
        }
    }
}

/// A second of the run as the board keeps it: the point's numbers, and one latency histogram
/// per request name × client (names redacted, then tagged as in latency.hlog).
fn second_of(
    rec: &Recorder,
    cat: &Catalog,
    p: &Point,
    phase: usize,
    redact: &board::Redact,
) -> board::Second {
    let all = rec.total_where(|_, _, _| true);
    let mut hists: Vec<(String, hdrhistogram::Histogram<u64>)> = Vec::new();
    for (e, c, _ph, s) in rec.iter() {
        if s.latency.is_empty() {
            continue;
        }
        let tag =
            crate::report::hlog::tag(&redact(&cat.endpoints[e].name), &redact(&cat.clients[c]));
        match hists.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, h)) => {
                let _ = h.add(&s.latency);
            }
            None => {
                let mut h = crate::metrics::recorder::new_recording_histogram();
                let _ = h.add(&s.latency);
                hists.push((tag, h));
            }
        }
    }
    board::Second {
        t: p.t,
        planned: p.planned_rate,
        started: p.sessions_started,
        requests: p.requests,
        errors: all.errors,
        in_flight: p.in_flight,
        dropped: p.dropped,
        paused: p.paused,
        lag_p99_ms: (!rec.lag.is_empty()).then(|| rec.lag.value_at_quantile(0.99) as f64 / 1000.0),
        rate_factor: p.rate_factor,
        phase,
        monitor: p.monitor.clone(),
        latency: all.latency,
        hists,
        burst: rec.burst.clone(),
    }
}

impl Drop for LiveOps {
    fn drop(&mut self) {
        self.shutdown();
    }
}
