//! The engine: compiles a scenario into a `Program` and starts one shard per thread on its
//! segment of the plan ([`Launcher`]). Each shard sends one snapshot per second; the run core
//! (`crate::run`) collects them, judges rules and steers through the shared `Control`. The
//! engine reads the scenario, the plan and the metrics types and nothing above them.

pub mod checks;
pub mod compile;
pub mod resolve;
pub mod session;
pub mod shard;
pub mod timer;
pub mod tls;
pub mod transport;
pub mod warm;

use crate::metrics::{Recorder, Snapshot};
use crate::plan::{Plan, Segment};
pub use compile::{compile, compile_with, Program};
use shard::{Control, ShardSpec};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to start the shards.
pub struct LaunchOptions {
    pub threads: usize,
    pub segment: Segment,
    /// How long in-flight requests may finish after a stop.
    pub grace: Duration,
    /// The flags every shard reads (stop, pause, rate).
    pub control: Arc<Control>,
}

/// Shards at work: they warm up (`warm.rs`), then wait for [`Running::go`] to fix time 0; their
/// snapshots arrive on `snapshots` (one per shard per second); the channel closes when every
/// shard has finished.
pub struct Running {
    pub threads: usize,
    starter: Arc<warm::Starter>,
    pub snapshots: Receiver<Snapshot>,
    /// An empty recorder of the program's shape (endpoints × clients × phases × journeys).
    pub shape: Recorder,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Waits until every shard has opened its first connections (at most `warm::WARM_MAX` and a
    /// second), and says what the warm-up did.
    pub fn wait_ready(&self) -> warm::WarmUp {
        self.starter
            .wait_ready(warm::WARM_MAX + Duration::from_secs(1))
    }

    /// Fixes time 0 of the plan at `start` and releases the shards.
    pub fn go(&self, start: Instant) {
        self.starter.go(start);
    }

    /// Waits for every shard thread to end.
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
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

/// Shards ready to start: the file-descriptor limit raised and the recorder shape allocated, so
/// that [`Launcher::launch`] does nothing slow between a `--start-at` instant and time 0.
pub struct Launcher {
    prog: Arc<Program>,
    plan: Arc<Plan>,
    opts: LaunchOptions,
    shape: Recorder,
}

impl Launcher {
    pub fn new(prog: Arc<Program>, plan: Arc<Plan>, opts: LaunchOptions) -> Launcher {
        raise_fd_limit();
        let shape = Recorder::new(
            prog.endpoints.len(),
            prog.clients.len(),
            plan.phases.len().max(1),
            prog.journeys.len(),
        );
        Launcher {
            prog,
            plan,
            opts,
            shape,
        }
    }

    /// Starts one shard per thread; each warms up and then waits for [`Running::go`].
    pub fn launch(self) -> Result<Running, String> {
        let threads = self.opts.threads.max(1);
        let (tx, rx) = std::sync::mpsc::channel::<Snapshot>();
        let starter = Arc::new(warm::Starter::new(threads));
        let mut handles = Vec::new();
        for t in 0..threads {
            let spec = ShardSpec {
                index: t,
                segment: self.opts.segment.split(t as u32, threads as u32),
                prog: self.prog.clone(),
                plan: self.plan.clone(),
                starter: starter.clone(),
                control: self.opts.control.clone(),
                tx: tx.clone(),
                grace: self.opts.grace,
                shape: self.shape.empty_like(),
            };
            match shard::spawn(spec) {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The shards already started must not wait for a start that never comes.
                    self.opts.control.raise(shard::HARD_STOP);
                    starter.go(Instant::now());
                    return Err(format!("cannot start a shard thread: {e}"));
                }
            }
        }
        Ok(Running {
            threads,
            starter,
            snapshots: rx,
            shape: self.shape,
            handles,
        })
    }
}
