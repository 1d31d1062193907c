//! Shared helpers for the engine's integration tests: run the `flashcrowd` binary under a time
//! bound and read its report, and purpose-built HTTP servers (see `server`) that record when each
//! request arrived or freeze on a schedule.
//!
//! Every test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod closing;
pub mod counting;
pub mod endpoint;
pub mod goaway;
pub mod hostile;
pub mod python;
pub mod server;
pub mod tls;

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How late, in ms, users released together at a wait may reach a test's server: these tests
/// run debug builds on a 2-core machine that may be busy with other builds and tests, where a
/// generator thread can wait 100 ms for a core. The release itself is measured tightly in
/// bench/ (release build, `generator.burst_ms`), not here.
pub const BURST_SLACK_MS: f64 = 250.0;

/// How long this machine kept threads of the test process from running: a thread that sleeps
/// 1 ms at a time and notes each wake-up that came more than 2 ms late. The generators a test
/// spawns run at the same nice level, beside the same builds and CPU hogs, so what this thread
/// lost they lost too. A test that bounds how late a crowd reached its server adds the time lost
/// around the release to `BURST_SLACK_MS`: on a quiet machine that is about nothing (the bound
/// stays 250 ms and still catches a release gone wrong); on one where the suite runs at nice 10
/// beside `stress-ng --cpu 2`, it is what the machine took. Measured apart from the generator,
/// so a release bug cannot widen its own tolerance.
pub struct Starvation {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    late: std::sync::Arc<std::sync::Mutex<Vec<(Instant, Duration)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Starvation {
    pub fn watch() -> Starvation {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let late = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), late.clone());
        let thread = std::thread::spawn(move || {
            let tick = Duration::from_millis(1);
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                std::thread::sleep(tick);
                let over = t.elapsed().saturating_sub(tick);
                if over > Duration::from_millis(2) {
                    l.lock().unwrap().push((Instant::now(), over));
                }
            }
        });
        Starvation {
            stop,
            late,
            thread: Some(thread),
        }
    }

    /// Time lost, ms: the lateness of the wake-ups that came within `[from, to]`, summed.
    pub fn lost_ms(&self, from: Instant, to: Instant) -> f64 {
        self.late
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .map(|(_, d)| d.as_secs_f64() * 1000.0)
            .sum()
    }

    /// `BURST_SLACK_MS` plus the time lost from `release - 0.5 s` to `release + 2 s`.
    pub fn burst_slack_ms(&self, release: Instant) -> f64 {
        let from = release
            .checked_sub(Duration::from_millis(500))
            .unwrap_or(release);
        BURST_SLACK_MS + self.lost_ms(from, release + Duration::from_secs(2))
    }
}

impl Drop for Starvation {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A `flashcrowd` process running in the background, its output collected by two threads.
pub struct Spawned {
    child: Child,
    started: Instant,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
    what: String,
}

/// A finished process: exit code, output, and how long it ran.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// Both streams, for assertion messages.
    pub fn output(&self) -> String {
        format!(
            "exit {:?} after {:.1}s\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

impl Spawned {
    /// Sends `sig` (libc::SIGINT, SIGTERM…) to the running flashcrowd.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we started and have not yet reaped.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "send signal {sig}");
    }

    /// Starts `flashcrowd ARGS…`. CI is removed from its environment (CI=true makes a run
    /// strict about its error rate): a test says what it wants, the machine it runs on does not.
    pub fn start(args: &[&str]) -> Spawned {
        Spawned::start_with_env(args, &[])
    }

    /// Starts `flashcrowd ARGS…` with these environment variables set (and CI removed unless
    /// one of them sets it).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashcrowd"));
        cmd.env_remove("CI");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flashcrowd");
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        Spawned {
            child,
            started: Instant::now(),
            out: Some(out),
            err: Some(err),
            what: format!("flashcrowd {}", args.join(" ")),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the process to exit; kills it and fails the test if it runs past `limit`
    /// (counted from its start).
    pub fn wait(mut self, limit: Duration) -> Finished {
        let deadline = self.started + limit;
        let status = loop {
            match self.child.try_wait().expect("poll flashcrowd") {
                Some(s) => break Some(s),
                None if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let elapsed = self.started.elapsed();
        let done = Finished {
            code: status.and_then(|s| s.code()),
            stdout: self.out.take().unwrap().join().unwrap_or_default(),
            stderr: self.err.take().unwrap().join().unwrap_or_default(),
            elapsed,
        };
        assert!(
            status.is_some(),
            "`{}` ran past {limit:?} and was killed\n{}",
            self.what,
            done.output()
        );
        done
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A test that panics before `wait` must not leave a load generator running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A scenario written to a temporary directory, with a run directory beside it.
pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub out: PathBuf,
}

impl Scenario {
    pub fn new(yaml: &str) -> Scenario {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("scenario.yaml");
        std::fs::write(&file, yaml).expect("write the scenario");
        let out = dir.path().join("run");
        Scenario { dir, file, out }
    }

    /// `flashcrowd run SCENARIO --target TARGET --out DIR --quiet EXTRA…`, started.
    pub fn spawn(&self, target: &str, extra: &[&str]) -> Spawned {
        let mut args = vec![
            "run",
            self.file.to_str().unwrap(),
            "--target",
            target,
            "--out",
            self.out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        Spawned::start(&args)
    }

    /// Runs to the end (bounded by `limit`) and returns the outcome.
    pub fn run(&self, target: &str, extra: &[&str], limit: Duration) -> Finished {
        self.spawn(target, extra).wait(limit)
    }

    /// Runs, expects exit code 0 and returns the parsed report.json.
    pub fn run_passing(&self, target: &str, extra: &[&str], limit: Duration) -> Value {
        let done = self.run(target, extra, limit);
        assert_eq!(done.code, Some(0), "the run should pass\n{}", done.output());
        self.report(&done)
    }

    /// The run directory's report.json, parsed; fails with the process output if it is not.
    pub fn report(&self, done: &Finished) -> Value {
        read_report(&self.out, done)
    }
}

pub fn read_report(dir: &Path, done: &Finished) -> Value {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}\n{}", path.display(), done.output()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()));
    assert_eq!(v["schema_version"], 1, "{text}");
    python::assert_valid_report(dir);
    v
}

/// Fails unless the report carries every field of the schema_version 1 contract this suite
/// relies on (more fields are fine).
pub fn assert_report_shape(v: &Value) {
    let dist = ["p50", "p90", "p95", "p99", "p99_9", "max", "mean"];
    let mut want: Vec<String> = Vec::new();
    for k in ["status", "started_at", "ended_at", "duration_s", "threads"] {
        want.push(format!("/run/{k}"));
    }
    for k in [
        "requests",
        "errors",
        "error_rate",
        "rate",
        "bytes_in",
        "bytes_out",
        "sessions_started",
        "sessions_dropped",
    ] {
        want.push(format!("/totals/{k}"));
    }
    for d in ["latency_ms", "service_time_ms", "ttfb_ms"] {
        want.extend(dist.iter().map(|p| format!("/{d}/{p}")));
        want.push(format!("/requests/0/{d}"));
    }
    for k in ["name", "client", "count", "rate", "errors", "status"] {
        want.push(format!("/requests/0/{k}"));
    }
    for k in ["name", "sessions", "completed", "errors"] {
        want.push(format!("/journeys/0/{k}"));
    }
    for k in ["name", "sessions", "requests"] {
        want.push(format!("/clients/0/{k}"));
    }
    for k in [
        "name",
        "start_s",
        "end_s",
        "planned_rate",
        "requests",
        "rate",
        "error_rate",
        "latency_ms",
    ] {
        want.push(format!("/phases/0/{k}"));
    }
    for k in [
        "t",
        "planned_rate",
        "sessions_started",
        "requests",
        "errors",
        "in_flight",
        "dropped",
        "p50_ms",
        "p99_ms",
    ] {
        want.push(format!("/series/0/{k}"));
    }
    for k in [
        "lag_ms/p50",
        "lag_ms/p99",
        "lag_ms/max",
        "dropped",
        "overloaded",
        "cpu_s",
    ] {
        want.push(format!("/generator/{k}"));
    }
    want.push("/thresholds".into());
    let missing: Vec<&String> = want.iter().filter(|p| v.pointer(p).is_none()).collect();
    assert!(missing.is_empty(), "report.json lacks {missing:?}");
}

/// The number at a JSON pointer (`/totals/requests`); fails naming the pointer if missing.
pub fn num(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("report has no number at {pointer}: {v:#}"))
}

/// The count at a JSON pointer.
pub fn count(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("report has no count at {pointer}: {v:#}"))
}

/// The entry of an array (`requests`, `journeys`, `phases`…) whose `name` is `name`.
pub fn named<'a>(v: &'a Value, array: &str, name: &str) -> &'a Value {
    v[array]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("report has no {array} entry named {name:?}: {:#}", v[array]))
}

/// Polls `cond` every few milliseconds until it holds; fails after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A test server's thread: its own current-thread runtime serving until stopped; dropping it
/// stops the server and joins the thread.
pub struct ServerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve(stop)` on a thread named `name`; `stop` resolves when the server is dropped.
    pub fn start<F, Fut>(name: &str, serve: F) -> ServerThread
    where
        F: FnOnce(tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(serve(stop_rx));
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn the server thread");
        ServerThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
