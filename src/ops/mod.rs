//! Live operations: what a running drill shows and takes from outside.
//!
//! - `exporter`: a Prometheus endpoint (`--metrics-listen`), fed once per second by the collector.
//! - `server`: the HTTP server behind it, which also takes live control (`/control/...`).
//! - `monitor`: scrapes the target's own Prometheus endpoints (`monitor:` in the scenario).
//! - `keyboard`: p/r/+/-/s in the live view when stdin is a terminal.
//!
//! Control goes through [`Steer`], which sets the engine's shared `Control` atomics (the shards
//! read them per arrival, no lock) and logs every change in the run's timeline.

pub mod exporter;
pub mod keyboard;
pub mod monitor;
pub mod server;

use crate::engine::shard::{Control, STOPPING};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// One entry of report.json's `timeline`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelineEvent {
    /// Seconds since the run started.
    pub t: f64,
    /// pause | resume | rate | stop | abort | stop_when | interrupt
    pub event: String,
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
    start: OnceLock<Instant>,
    timeline: Mutex<Vec<TimelineEvent>>,
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
            timeline: Mutex::new(Vec::new()),
            stop_requested: AtomicBool::new(false),
            closed,
        }
    }

    /// The run's monotonic start (the timeline counts from it).
    pub fn set_start(&self, at: Instant) {
        let _ = self.start.set(at);
    }

    fn now_s(&self) -> f64 {
        self.start
            .get()
            .map(|s| Instant::now().saturating_duration_since(*s).as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Adds an event to the timeline at the current instant.
    pub fn log(&self, event: &str, detail: String) {
        let t = (self.now_s() * 1000.0).round() / 1000.0;
        if let Ok(mut tl) = self.timeline.lock() {
            tl.push(TimelineEvent {
                t,
                event: event.to_string(),
                detail,
            });
        }
    }

    pub fn timeline(&self) -> Vec<TimelineEvent> {
        self.timeline.lock().map(|t| t.clone()).unwrap_or_default()
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
        let (event, detail) = match cmd {
            Command::Pause => {
                self.control.set_paused(true);
                ("pause", "new arrivals paused".to_string())
            }
            Command::Resume => {
                self.control.set_paused(false);
                ("resume", "arrivals resumed".to_string())
            }
            Command::Factor(f) => {
                let f = check(f, "factor")?;
                if f > MAX_FACTOR {
                    return Err(format!("factor {f} is above the limit of {MAX_FACTOR}"));
                }
                self.control.set_factor(f);
                ("rate", format!("factor {} of the plan", fmt_num(f)))
            }
            Command::Scale(m) => {
                let m = check(m, "scale")?;
                let s = self.control.steering();
                let base = s.factor;
                let f = (base * m).min(MAX_FACTOR);
                self.control.set_factor(f);
                (
                    "rate",
                    format!("factor {} of the plan (×{})", fmt_num(f), fmt_num(m)),
                )
            }
            Command::Set(v) => {
                let v = check(v, "set")?;
                self.control.set_rate(v);
                ("rate", format!("set to {} {unit}", fmt_num(v)))
            }
            Command::Stop => {
                self.stop_requested.store(true, Ordering::Relaxed);
                self.control.raise(STOPPING);
                ("stop", "stopped: finishing requests in flight".to_string())
            }
        };
        let detail = format!("{detail} ({source})");
        self.log(event, detail.clone());
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

/// Everything live operations need for one run, started before the load.
pub struct LiveOps {
    pub steer: Arc<Steer>,
    pub exporter: Option<Arc<exporter::Exporter>>,
    server: Option<server::Server>,
    pub monitor: Option<monitor::Monitor>,
    /// Read keys from the terminal (p r + - s).
    pub keyboard: bool,
}

impl LiveOps {
    /// Binds the metrics address (when given) and starts the monitor (when the scenario has
    /// one). A bind failure is an error before any load is sent.
    pub fn start(
        listen: Option<SocketAddr>,
        monitor: Option<monitor::MonitorSpec>,
        closed: bool,
        keyboard: bool,
    ) -> Result<LiveOps, String> {
        let steer = Arc::new(Steer::new(closed));
        let (exporter, server) = match listen {
            Some(addr) => {
                let ex = Arc::new(exporter::Exporter::new(closed));
                let srv = server::Server::start(addr, ex.clone(), steer.clone())?;
                (Some(ex), Some(srv))
            }
            None => (None, None),
        };
        let monitor = monitor.map(monitor::Monitor::start).transpose()?;
        Ok(LiveOps {
            steer,
            exporter,
            server,
            monitor,
            keyboard,
        })
    }

    /// The address the metrics endpoint listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// Stops the server and the monitor (the run is over).
    pub fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        if let Some(m) = self.monitor.as_mut() {
            m.stop();
        }
    }
}

impl Drop for LiveOps {
    fn drop(&mut self) {
        self.shutdown();
    }
}
