//! A shard: one OS thread, one current-thread tokio runtime, one segment of the plan. It owns
//! its sessions, connections and recorder, and talks to the rest of the run only through the
//! `Control` flags it reads and the one snapshot per second it sends.

use super::compile::Program;
use super::session;
use super::timer::{Precise, RELEASE_WINDOW};
use super::transport::Conn;
use crate::metrics::{Recorder, Snapshot};
use crate::plan::{Model, Plan, Segment};
use crate::scenario::model::ConnectionMode;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long a `connection: shared` connection may sit idle in its shard's pool before the
/// generator closes it: 90 s, the idle timeout of hyper's and reqwest's client pools.
pub const POOL_IDLE: Duration = Duration::from_secs(90);

pub const RUNNING: u8 = 0;
/// Stop arrivals; let in-flight requests finish within the grace period.
pub const STOPPING: u8 = 1;
/// Stop now.
pub const HARD_STOP: u8 = 2;

/// Flags shared by the collector and all shards. Raising the state also wakes every shard's
/// watcher, so sessions asleep (think, wait, rendezvous, the gap before a sparse arrival) hear of
/// a stop at once instead of when they next wake.
///
/// Live steering (pause, a rate factor, a set rate; see `crate::ops`) lives here too, as plain
/// atomics the shards read once per arrival (open model) or per 10 ms tick (closed model): no
/// lock on the hot path. A change is announced through the same watch channel.
#[derive(Debug)]
pub struct Control {
    state: AtomicU8,
    /// The rate factor relative to the plan, as f64 bits (1.0 = the plan as written).
    factor: AtomicU64,
    /// A set rate (open: arrivals/s; closed: users) as f64 bits; negative = none (follow the plan).
    set: AtomicU64,
    paused: AtomicBool,
    wake: tokio::sync::watch::Sender<u8>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            state: AtomicU8::new(RUNNING),
            factor: AtomicU64::new(1.0f64.to_bits()),
            set: AtomicU64::new((-1.0f64).to_bits()),
            paused: AtomicBool::new(false),
            wake: tokio::sync::watch::Sender::new(RUNNING),
        }
    }
}

/// The live steering in force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steering {
    /// Multiplies the plan (ignored while `set` is given).
    pub factor: f64,
    /// A fixed rate (open: arrivals/s over the whole run; closed: users) instead of the plan.
    pub set: Option<f64>,
    pub paused: bool,
}

impl Steering {
    /// No steering: the plan as written.
    pub const PLAN: Steering = Steering {
        factor: 1.0,
        set: None,
        paused: false,
    };

    /// The factor to apply at a point of the plan whose planned value is `planned`.
    pub fn factor_at(&self, planned: f64) -> f64 {
        match self.set {
            Some(v) if planned > 0.0 => v / planned,
            Some(_) => 0.0,
            None => self.factor,
        }
    }
}

impl Control {
    pub fn get(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }
    /// Raises the state (never lowers it) and wakes the shards.
    pub fn raise(&self, to: u8) {
        let now = self.state.fetch_max(to, Ordering::Relaxed).max(to);
        self.wake.send_replace(now);
    }
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u8> {
        self.wake.subscribe()
    }

    pub fn steering(&self) -> Steering {
        let set = f64::from_bits(self.set.load(Ordering::Relaxed));
        Steering {
            factor: f64::from_bits(self.factor.load(Ordering::Relaxed)),
            set: (set >= 0.0).then_some(set),
            paused: self.paused.load(Ordering::Relaxed),
        }
    }

    /// Follows the plan times `factor` (clears a set rate).
    pub fn set_factor(&self, factor: f64) {
        self.factor
            .store(factor.max(0.0).to_bits(), Ordering::Relaxed);
        self.set.store((-1.0f64).to_bits(), Ordering::Relaxed);
        self.announce();
    }

    /// Holds a fixed rate (open) or user count (closed) instead of the plan.
    pub fn set_rate(&self, value: f64) {
        self.set.store(value.max(0.0).to_bits(), Ordering::Relaxed);
        self.announce();
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
        self.announce();
    }

    fn announce(&self) {
        self.wake.send_replace(self.get());
    }
}

struct RvState {
    count: u64,
    generation: u64,
    first_at: Option<Instant>,
    /// When the last batch was let go: the release instant its waiters measure from.
    released_at: Option<Instant>,
    notify: Rc<Notify>,
}

/// An instant sessions of this shard wait for (`wait: sale-start`, a moment): one timer and one
/// notifier for all of them, opened by `open_gate`.
struct Gate {
    at: Instant,
    notify: Rc<Notify>,
    /// The requests its waiters lent it, in the order they came: written at the instant.
    sends: Vec<Rc<PreSend>>,
}

/// What a session parked at a wait lends the release: its kept-alive connection and the
/// request it armed, so that at the instant the gate writes every waiter's request in one loop,
/// in arrival order, before it wakes anyone. Waking ten thousand tasks first and letting each
/// write costs a task switch, a timer and the session's state brought back into the cache
/// between two writes, and the run queue they are woken into grows meanwhile; a loop of writes
/// costs what the kernel does per write. The session takes both back when it wakes, with `sent`,
/// and reads and records the answer as any request's.
pub struct PreSend {
    pub conn: RefCell<Option<Conn>>,
    pub wire: RefCell<Vec<u8>>,
    /// When the gate began writing the request and how many of its bytes it wrote (the session
    /// writes the rest). None: nothing written (the connection was closed while idle, or the
    /// socket took nothing); the session sends as it would have.
    pub sent: Cell<Option<(Instant, usize)>>,
}

impl PreSend {
    fn send_now(&self) {
        let mut conn = self.conn.borrow_mut();
        let Some(Conn::Lean(c)) = conn.as_mut() else {
            return;
        };
        let t = Instant::now();
        if let Some(n) = c.write_now(&self.wire.borrow()) {
            if n > 0 {
                self.sent.set(Some((t, n)));
            }
        }
    }
}

pub struct ShardCtx {
    pub prog: Arc<Program>,
    pub plan: Arc<Plan>,
    pub segment: Segment,
    /// Time 0 of the plan, fixed after the warm-up (`start()`).
    start: Cell<Instant>,
    pub rec: RefCell<Recorder>,
    pub in_flight: Cell<u64>,
    /// Sessions parked at a wait or rendezvous (see `session::Parked`).
    pub parked: Cell<u64>,
    pub seq: Cell<u64>,
    pub data_counters: Vec<Cell<u64>>,
    control: Arc<Control>,
    stopping: Cell<bool>,
    hard: Cell<bool>,
    stop_notify: Notify,
    /// Per client: the idle `connection: shared` connections, each with the instant it came
    /// back, least recently used first (sessions take from the end).
    shared: Vec<RefCell<Vec<(Conn, Instant)>>>,
    /// Per client: permits for `connection: shared` HTTP/1.1 connections (the `pool` cap).
    pub pools: Vec<Arc<tokio::sync::Semaphore>>,
    /// Per client: held while a `connection: shared` HTTP/2 connection is being opened, so that
    /// sessions arriving together wait for it and share it instead of each opening their own.
    pub h2_opening: Vec<tokio::sync::Mutex<()>>,
    source_rr: Cell<usize>,
    /// The next of the target's addresses to connect to, in turn.
    addr_rr: Cell<usize>,
    /// The address set's generation the shared pools were filled under.
    pool_generation: Cell<u64>,
    /// Emulated-network connections opened (shard number in the top bits): their jitter seeds.
    net_seq: Cell<u64>,
    /// How late the timer fires, µs (a running mean; see `sleep_on_time`).
    timer_late_us: Cell<f64>,
    /// How long a connection opened ahead of a replayed arrival took to open, µs: a decaying
    /// maximum (see `connect_lead`).
    connect_us: Cell<f64>,
    rendezvous: RefCell<Vec<RvState>>,
    gates: RefCell<Vec<Gate>>,
    /// Seconds of the per-second series cut so far: the next second the ticker cuts.
    cut: Cell<u64>,
    /// Open model: every planned arrival of a second before this one has been handed to its
    /// session or given up (`u64::MAX` once the open loop is done, and for a closed plan).
    frontier: Cell<u64>,
    /// Arrivals handed to a session task that has not run yet (see `Planned`).
    unpolled: Cell<u64>,
    /// Wakes the ticker waiting to cut a second (the frontier moved, an arrival started).
    cut_ready: Notify,
    /// Wakes the open loop waiting for the previous second to be cut.
    cut_done: Notify,
}

impl ShardCtx {
    /// Time 0 of the plan.
    pub fn start(&self) -> Instant {
        self.start.get()
    }

    /// Has a stop been requested? Reads the shared flag; on a change (to stopping, then to a
    /// hard stop) wakes this shard's sleepers.
    pub fn stopping(&self) -> bool {
        if !self.hard.get() {
            let s = self.control.get();
            let was = (self.stopping.get(), self.hard.get());
            if s >= STOPPING {
                self.stopping.set(true);
            }
            if s >= HARD_STOP {
                self.hard.set(true);
            }
            if (self.stopping.get(), self.hard.get()) != was {
                self.stop_notify.notify_waiters();
            }
        }
        self.stopping.get()
    }

    /// Sleeps until `at`; false if a stop came first.
    pub async fn sleep_until(&self, at: Instant) -> bool {
        if self.stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => !self.stopping(),
            _ = self.stop_notify.notified() => false,
        }
    }

    /// Sleeps until about `at`, waking early by how late the timer has been firing, so the
    /// sleeper leaves centred on `at` rather than 1-2 ms after it. False on a stop.
    ///
    /// The timer wheel rounds a deadline up to its next 1 ms tick and its park timeout up again,
    /// and every arrival or think-time step woken late would carry that lateness into its
    /// latency (latency counts from the planned instant). A running mean of the lateness per
    /// shard (starting at 1.5 ms) sets the early margin; there is no busy waiting. A request sent
    /// early is measured from its send (see `Session::request`), so earliness never shortens a
    /// latency.
    pub async fn sleep_on_time(&self, at: Instant) -> bool {
        let early = Duration::from_micros(self.timer_late_us.get() as u64);
        let now = Instant::now();
        if at <= now + early / 2 {
            return !self.stopping();
        }
        let deadline = at - early;
        if deadline <= now {
            return !self.stopping();
        }
        if !self.sleep_until(deadline).await {
            return false;
        }
        let late = Instant::now()
            .saturating_duration_since(deadline)
            .as_micros() as f64;
        let mean = self.timer_late_us.get();
        self.timer_late_us
            .set((0.9 * mean + 0.1 * late).clamp(0.0, 5000.0));
        true
    }

    /// The open loop's sleep until an arrival's instant `at`: while arrivals are `sparse`, to the
    /// microsecond on a timerfd (`timer.rs`), an arrival due within `RELEASE_WINDOW` of now
    /// released at once with the ones before it; on tokio's wheel (`sleep_on_time`) when they
    /// are dense (a wake per arrival would cost more CPU than the precision is worth there) or
    /// where there is no timerfd. False on a stop.
    pub async fn sleep_precise(&self, timer: &Precise, at: Instant, sparse: bool) -> bool {
        if !sparse || !timer.is_precise() {
            return self.sleep_on_time(at).await;
        }
        if at <= Instant::now() + RELEASE_WINDOW || self.stopping() {
            return !self.stopping();
        }
        tokio::select! {
            _ = timer.sleep_until(at) => !self.stopping(),
            _ = self.stop_notify.notified() => false,
        }
    }

    /// How long before a replayed arrival's instant its `per-user` or `fresh` connection starts
    /// to open (see `open_arrivals`): twice the longest recent open (a maximum that decays by
    /// half in about 700 opens), within `LEAD_MIN`..`LEAD_MAX`.
    pub fn connect_lead(&self) -> Duration {
        Duration::from_micros((2.0 * self.connect_us.get()) as u64).clamp(LEAD_MIN, LEAD_MAX)
    }

    /// A connection opened ahead took `took` (from its start, the wait for this thread included).
    pub fn note_connect(&self, took: Duration) {
        let us = took.as_micros() as f64;
        self.connect_us
            .set(us.max(self.connect_us.get() * (1.0 - 1.0 / 1024.0)));
    }

    /// Holds the session until `at`, then lets it go with every other session of this shard
    /// waiting for the same instant; false on a stop. One timer per instant and shard (not one
    /// per session), woken early by the timer's lateness like `sleep_on_time`, then waiting out
    /// the last stretch alone; at the instant one notifier wakes this shard's waiters in the
    /// order they came, and each only writes the request it armed. Every shard has its own gate:
    /// no lock or notifier is shared between threads.
    ///
    /// A session may lend the gate its armed request (`lend`): the gate then writes it at the
    /// instant, before waking anyone (see `PreSend`).
    pub async fn release_at(self: &Rc<Self>, at: Instant, lend: Option<Rc<PreSend>>) -> bool {
        if Instant::now() >= at {
            return !self.stopping();
        }
        let notify = {
            let mut gates = self.gates.borrow_mut();
            let i = match gates.iter().position(|g| g.at == at) {
                Some(i) => i,
                None => {
                    let notify = Rc::new(Notify::new());
                    gates.push(Gate {
                        at,
                        notify: notify.clone(),
                        sends: Vec::new(),
                    });
                    tokio::task::spawn_local(open_gate(self.clone(), at, notify));
                    gates.len() - 1
                }
            };
            let g = &mut gates[i];
            g.sends.extend(lend);
            g.notify.clone()
        };
        // A `Notified` hears `notify_waiters` from its creation on, polled or not.
        let woken = notify.notified();
        tokio::select! {
            _ = woken => !self.stopping(),
            _ = self.stop_notify.notified() => false,
        }
    }

    /// Resolves when a hard stop is requested.
    pub async fn hard_stopped(&self) {
        loop {
            let woken = self.stop_notify.notified();
            self.stopping();
            if self.hard.get() {
                return;
            }
            woken.await;
        }
    }

    /// How to dial the next connection for `client`: the next source address in turn.
    pub fn dial(&self, client: usize) -> super::transport::Dial {
        let ips = &self.prog.source_ips;
        let source = if ips.is_empty() {
            None
        } else {
            let i = self.source_rr.get();
            self.source_rr.set(i.wrapping_add(1));
            Some(ips[i % ips.len()])
        };
        let c = &self.prog.clients[client];
        let network = c.network.map(|p| {
            let n = self.net_seq.get();
            self.net_seq.set(n + 1);
            (p, super::session::mix(self.plan.seed ^ n))
        });
        let i = self.addr_rr.get();
        self.addr_rr.set(i.wrapping_add(1));
        super::transport::Dial {
            source,
            linger0: c.linger0,
            network,
            to: Some(self.prog.target.addrs.pick(i)),
        }
    }

    /// The generation of the target's address set (see `resolve.rs`).
    pub fn addr_generation(&self) -> u64 {
        self.prog.target.addrs.generation()
    }

    /// After the target's addresses changed, the pooled connections (to the old set) go.
    fn retire_stale_pools(&self) {
        let g = self.addr_generation();
        if g != self.pool_generation.get() {
            self.pool_generation.set(g);
            for p in &self.shared {
                p.borrow_mut().clear();
            }
        }
    }

    pub fn take_shared(&self, client: usize) -> Option<Conn> {
        self.retire_stale_pools();
        let mut pool = self.shared[client].borrow_mut();
        while let Some((mut c, _)) = pool.pop() {
            if c.still_open() {
                if let Some(h2) = c.clone_h2() {
                    // Multiplexed: in use from now on, however long it was pooled.
                    pool.push((c, Instant::now()));
                    return Some(h2);
                }
                return Some(c);
            }
        }
        None
    }

    /// A `connection: shared` connection is free again. Connections idle for [`POOL_IDLE`]
    /// are closed here: after a stall the pool has grown to as many connections as were busy
    /// at once (up to `pool`), and without this the extra ones would sit idle, each with its
    /// buffers, for the rest of the run.
    pub fn put_shared(&self, client: usize, conn: Conn) {
        self.retire_stale_pools();
        let mut pool = self.shared[client].borrow_mut();
        pool.retain(|(c, _)| c.is_open());
        let now = Instant::now();
        let idle = pool
            .iter()
            .take_while(|(_, since)| now.saturating_duration_since(*since) >= POOL_IDLE)
            .count();
        pool.drain(..idle);
        if conn.is_h2() && !pool.is_empty() {
            return; // one multiplexed connection is enough
        }
        pool.push((conn, now));
    }

    /// Waits at rendezvous `id` until this segment's share of `users` has gathered, or `timeout`
    /// after the first of this batch arrived. Returns the release instant, or None on a stop.
    pub async fn rendezvous(&self, id: usize, users: u64, timeout: Duration) -> Option<Instant> {
        let share = self.segment.share_of(users).max(1);
        let (notify, generation, deadline) = {
            let mut rvs = self.rendezvous.borrow_mut();
            let rv = &mut rvs[id];
            let now = Instant::now();
            let first = *rv.first_at.get_or_insert(now);
            rv.count += 1;
            if rv.count >= share {
                rv.count = 0;
                rv.first_at = None;
                rv.generation += 1;
                rv.released_at = Some(now);
                rv.notify.notify_waiters();
                return Some(now);
            }
            (rv.notify.clone(), rv.generation, first + timeout)
        };
        let notified = notify.notified();
        let released = || self.rendezvous.borrow()[id].released_at;
        tokio::select! {
            _ = notified => Some(released().unwrap_or_else(Instant::now)),
            _ = tokio::time::sleep_until(deadline.into()) => {
                let mut rvs = self.rendezvous.borrow_mut();
                let rv = &mut rvs[id];
                if rv.generation == generation {
                    rv.count = 0;
                    rv.first_at = None;
                    rv.generation += 1;
                    rv.released_at = Some(Instant::now());
                    rv.notify.notify_waiters();
                }
                Some(rv.released_at.unwrap_or_else(Instant::now))
            }
            _ = self.stop_notify.notified() => None,
        }
    }
}

/// Opens the gate at `at` (see `ShardCtx::release_at`): sleeps to just before it, waits out the
/// last stretch (well under 2 ms, one task per shard), then wakes every waiter at once. On a stop
/// the waiters hear the stop themselves.
async fn open_gate(ctx: Rc<ShardCtx>, at: Instant, notify: Rc<Notify>) {
    let mut open = ctx.sleep_on_time(at).await;
    if open {
        while Instant::now() < at {
            tokio::task::yield_now().await;
        }
        open = !ctx.stopping();
    }
    let sends = {
        let mut gates = ctx.gates.borrow_mut();
        let i = gates.iter().position(|g| g.at == at);
        i.map(|i| gates.swap_remove(i).sends).unwrap_or_default()
    };
    if open {
        // Every lent request written in one loop, in the order the waiters came, then the wake.
        for p in &sends {
            p.send_now();
        }
    }
    drop(sends);
    notify.notify_waiters();
}

pub struct ShardSpec {
    pub index: usize,
    pub segment: Segment,
    pub prog: Arc<Program>,
    pub plan: Arc<Plan>,
    /// Fixes time 0 once every shard has warmed up (`warm.rs`).
    pub starter: Arc<super::warm::Starter>,
    pub control: Arc<Control>,
    pub tx: Sender<Snapshot>,
    /// How long in-flight sessions may finish after the plan ends or a stop.
    pub grace: Duration,
    pub shape: Recorder,
}

pub fn spawn(spec: ShardSpec) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("shard-{}", spec.index))
        .spawn(move || run(spec))
}

fn run(spec: ShardSpec) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flashcrowd: shard {} could not start: {e}", spec.index);
            spec.starter.ready_then_wait(0);
            let _ = spec.tx.send(Snapshot {
                shard: spec.index,
                second: 0,
                recorder: spec.shape.empty_like(),
                last: true,
            });
            return;
        }
    };
    let ctx = Rc::new(ShardCtx {
        data_counters: (0..spec.prog.data.len()).map(|_| Cell::new(0)).collect(),
        shared: (0..spec.prog.clients.len())
            .map(|_| RefCell::new(Vec::new()))
            .collect(),
        pools: spec
            .prog
            .clients
            .iter()
            .map(|c| Arc::new(tokio::sync::Semaphore::new(c.pool)))
            .collect(),
        h2_opening: (0..spec.prog.clients.len())
            .map(|_| tokio::sync::Mutex::new(()))
            .collect(),
        source_rr: Cell::new(spec.index),
        addr_rr: Cell::new(spec.index),
        pool_generation: Cell::new(0),
        net_seq: Cell::new((spec.index as u64) << 48),
        timer_late_us: Cell::new(1500.0),
        connect_us: Cell::new(0.0),
        rendezvous: RefCell::new(
            (0..spec.prog.rendezvous.len())
                .map(|_| RvState {
                    count: 0,
                    generation: 0,
                    first_at: None,
                    released_at: None,
                    notify: Rc::new(Notify::new()),
                })
                .collect(),
        ),
        prog: spec.prog.clone(),
        plan: spec.plan.clone(),
        segment: spec.segment,
        start: Cell::new(Instant::now()),
        rec: RefCell::new(spec.shape.empty_like()),
        in_flight: Cell::new(0),
        parked: Cell::new(0),
        seq: Cell::new(0),
        control: spec.control.clone(),
        stopping: Cell::new(false),
        hard: Cell::new(false),
        stop_notify: Notify::new(),
        gates: RefCell::new(Vec::new()),
        cut: Cell::new(0),
        frontier: Cell::new(match spec.plan.model {
            Model::Open => 0,
            Model::Closed => u64::MAX,
        }),
        unpolled: Cell::new(0),
        cut_ready: Notify::new(),
        cut_done: Notify::new(),
    });
    let local = tokio::task::LocalSet::new();
    let opened = local.block_on(&rt, super::warm::open(&ctx));
    ctx.start.set(spec.starter.ready_then_wait(opened));
    local.block_on(&rt, drive(ctx.clone(), &spec));
    // Sessions still running are dropped here and count as interrupted; arrivals whose session
    // never ran, as unstarted.
    drop(local);
    let mut rec = ctx.rec.replace(spec.shape.empty_like());
    rec.in_flight = 0;
    let _ = spec.tx.send(Snapshot {
        shard: spec.index,
        second: ctx.cut.get(),
        recorder: rec,
        last: true,
    });
    drop(rt);
}

async fn drive(ctx: Rc<ShardCtx>, spec: &ShardSpec) {
    let watcher = {
        let ctx = ctx.clone();
        let mut rx = spec.control.subscribe();
        tokio::task::spawn_local(async move {
            while rx.changed().await.is_ok() {
                ctx.stopping();
            }
        })
    };
    let ticker = {
        let ctx = ctx.clone();
        let tx = spec.tx.clone();
        let shard = spec.index;
        let shape = spec.shape.empty_like();
        tokio::task::spawn_local(async move {
            loop {
                let k = ctx.cut.get();
                let at = ctx.start() + Duration::from_secs(k + 1);
                wait_for_cut(&ctx, k, at).await;
                let mut rec = ctx.rec.replace(shape.empty_like());
                rec.in_flight = ctx.in_flight.get();
                rec.parked = ctx.parked.get();
                ctx.cut.set(k + 1);
                ctx.cut_done.notify_waiters();
                // A collector gone (the run is ending) takes no more snapshots, but the seconds
                // are still cut: the open loop waits for them.
                let _ = tx.send(Snapshot {
                    shard,
                    second: k,
                    recorder: rec,
                    last: false,
                });
            }
        })
    };
    let end = ctx.start() + Duration::from_secs_f64(ctx.plan.duration);
    let iterations_done = match ctx.plan.model {
        Model::Open => open_loop(&ctx).await,
        Model::Closed => closed_loop(&ctx, end).await,
    };
    // The plan is over (or stopped, or its iterations are done): wait for the tail of the
    // sessions. Sessions spawned last count themselves in flight when first polled: let them
    // start before counting.
    tokio::task::yield_now().await;
    if !iterations_done {
        ctx.sleep_until(end).await;
    }
    let grace_end = Instant::now() + spec.grace;
    while ctx.in_flight.get() + ctx.unpolled.get() > 0 && Instant::now() < grace_end {
        ctx.stopping();
        if ctx.hard.get() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ticker.abort();
    watcher.abort();
}

/// How long past its end the ticker holds a second open for arrivals planned in it that have
/// not started yet (the open loop running late under a CPU hog) before cutting it anyway. An
/// arrival whose second was cut without it is not started (counted `unstarted`).
pub const CUT_WAIT: Duration = Duration::from_secs(1);

/// Sleeps until the end of second `k` (`at`), then until every arrival planned in it has
/// started, at most `CUT_WAIT` more: a session counts in the second it was planned in.
///
/// The sleep wakes early by the timer's lateness and waits out the last stretch (a few yields,
/// as `open_gate` does), so that the cut falls on the second and an arrival planned just after
/// it, which waits for the cut, is not held up by the timer's rounding.
async fn wait_for_cut(ctx: &ShardCtx, k: u64, at: Instant) {
    let early = Duration::from_micros(ctx.timer_late_us.get() as u64);
    if let Some(wake) = at.checked_sub(early) {
        tokio::time::sleep_until(wake.into()).await;
    }
    while Instant::now() < at {
        tokio::task::yield_now().await;
    }
    let limit = at + CUT_WAIT;
    loop {
        let ready = ctx.cut_ready.notified();
        if ctx.frontier.get() > k && ctx.unpolled.get() == 0 {
            return;
        }
        tokio::select! {
            _ = ready => {}
            _ = tokio::time::sleep_until(limit.into()) => return,
        }
    }
}

/// A planned arrival handed to its session task, with the second of the plan it belongs to.
/// The session takes it when it first runs (`start`); an arrival dropped untaken (a hard stop,
/// the end of the run) or taken after its second was cut never started and is counted
/// `unstarted`. While it waits to be taken the ticker holds its second open.
pub struct Planned {
    ctx: Rc<ShardCtx>,
    second: u64,
    taken: bool,
}

impl Planned {
    fn new(ctx: &Rc<ShardCtx>, second: u64) -> Self {
        ctx.unpolled.set(ctx.unpolled.get() + 1);
        Planned {
            ctx: ctx.clone(),
            second,
            taken: false,
        }
    }

    /// Called by the session before it counts itself started: false if it must not start (its
    /// second is already cut; it is counted `unstarted`).
    pub fn start(mut self) -> bool {
        self.taken = true;
        let ok = self.second >= self.ctx.cut.get();
        self.settle(ok);
        ok
    }

    fn settle(&self, started: bool) {
        self.ctx.unpolled.set(self.ctx.unpolled.get() - 1);
        if !started {
            self.ctx.rec.borrow_mut().sessions_unstarted += 1;
        }
        self.ctx.cut_ready.notify_one();
    }
}

impl Drop for Planned {
    fn drop(&mut self) {
        if !self.taken {
            self.settle(false);
        }
    }
}

/// Releases the planned arrivals. True when it ended because `load.iterations` sessions (over
/// all segments: arrival numbers are global) were released.
async fn open_loop(ctx: &Rc<ShardCtx>) -> bool {
    let done = open_arrivals(ctx).await;
    ctx.frontier.set(u64::MAX);
    ctx.cut_ready.notify_one();
    done
}

/// The second of the plan an arrival at `t` s belongs to.
fn second_of(t: f64) -> u64 {
    t.max(0.0) as u64
}

/// A planned arrival the open loop has pulled from the plan, and the connection it began
/// opening ahead of the arrival's instant, if any.
struct Queued {
    a: crate::plan::Arrival,
    due: Instant,
    ahead: Option<session::Ahead>,
}

/// Does this program open connections ahead of its arrivals' instants? A replay (arrivals that
/// carry their own request) with a `per-user` or `fresh` client: a replayed record's instant is
/// when its request reached the server, so its connection is opened before it (see
/// `open_arrivals`). A generated arrival is a user who arrives at its instant and connects then,
/// as a real one does: its first request's latency includes the connect.
fn connects_ahead(prog: &Program) -> bool {
    prog.fixed.is_some()
        && prog
            .clients
            .iter()
            .any(|c| c.connection != ConnectionMode::Shared)
}

/// Starts opening `a`'s connection if it needs one of its own: a replayed request of a
/// `per-user` or `fresh` client, within `load.iterations`, not paused.
fn open_ahead(ctx: &Rc<ShardCtx>, a: &crate::plan::Arrival) -> Option<session::Ahead> {
    let fixed = a.fixed.as_deref()?;
    if ctx.plan.iterations.is_some_and(|i| a.index >= i) || ctx.control.steering().paused {
        return None;
    }
    // The phase as `session::arrival` takes it, from the same instant.
    let phase = ctx
        .plan
        .phase_index_at(Duration::from_secs_f64(a.t).as_secs_f64());
    let client = session::client_of(ctx, a.index, phase, Some(fixed));
    if ctx.prog.clients[client].connection == ConnectionMode::Shared {
        return None;
    }
    Some(session::Ahead::open(ctx, client))
}

/// Releases the planned arrivals, each at its instant, as a session task (see `Planned`).
///
/// A replay's `per-user` and `fresh` arrivals have their connection opened ahead
/// (`connects_ahead`): the loop pulls arrivals up to `ShardCtx::connect_lead` before their
/// instant (at most `MAX_AHEAD` at once) and starts opening each one's connection then; at the
/// instant it hands the arrival to its session exactly as any other, and the session writes its
/// request on the open connection (or waits for it, on its clock, if it is still opening). The
/// session, its counts (`Planned`, in flight, the second it counts in, `unstarted`, dropped)
/// and its latency all begin at the instant, as without a lead; only the connect moved. The
/// latency is still measured from the planned instant: a connect slower than the lead is waited
/// for on the request's clock and shows in its latency (coordinated-omission free). A connection
/// opened for an arrival that then does not start (a stop, `max_users`, steering) is closed
/// unused. Generated arrivals (not a replay) connect at their instant, as before.
async fn open_arrivals(ctx: &Rc<ShardCtx>) -> bool {
    let cap = ctx.plan.max_users.map(|m| ctx.segment.share_of(m).max(1));
    let mut acc = 0.0f64;
    let mut arrivals = ctx.plan.arrivals(ctx.segment);
    let timer = Precise::new();
    let mut density = Density::default();
    let mut n = 0u64;
    let ahead_on = connects_ahead(&ctx.prog);
    // Pulled arrivals in time order; the first `looked` have been looked at for a connection
    // ahead (those due within the lead).
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let mut looked = 0usize;
    let mut exhausted = false;
    let pull = |arrivals: &mut Box<dyn Iterator<Item = crate::plan::Arrival> + Send>,
                exhausted: &mut bool| {
        let a = arrivals.next();
        *exhausted = a.is_none();
        a.map(|a| Queued {
            due: ctx.start() + Duration::from_secs_f64(a.t),
            a,
            ahead: None,
        })
    };
    loop {
        let mut lead = Duration::ZERO;
        if ahead_on {
            let now = Instant::now();
            lead = ctx.connect_lead();
            // Pulled until one is beyond the lead (its instant tells when to wake next).
            while !exhausted
                && queue.len() < MAX_AHEAD
                && queue.back().is_none_or(|q| q.due <= now + lead)
            {
                queue.extend(pull(&mut arrivals, &mut exhausted));
            }
            while let Some(q) = queue.get_mut(looked).filter(|q| q.due <= now + lead) {
                q.ahead = open_ahead(ctx, &q.a);
                looked += 1;
            }
        } else if queue.is_empty() && !exhausted {
            queue.extend(pull(&mut arrivals, &mut exhausted));
        }
        let Some(front) = queue.front() else {
            return false;
        };
        // The next connection to open ahead, before the next instant: wake for it first.
        let open_next = queue
            .get(looked)
            .and_then(|q| q.due.checked_sub(lead))
            .filter(|at| *at < front.due);
        if let Some(at) = open_next {
            if !ctx.sleep_precise(&timer, at, density.sparse).await || ctx.stopping() {
                count_overdue(ctx, queue.into_iter().map(|q| q.a).chain(arrivals));
                return false;
            }
            continue;
        }
        let Some(Queued { a, due, ahead }) = queue.pop_front() else {
            return false;
        };
        looked = looked.saturating_sub(1);
        let mut ahead = ahead;
        n += 1;
        if ctx.plan.iterations.is_some_and(|i| a.index >= i) {
            return true;
        }
        // Every arrival before this one has been handed out: the seconds before its own may be
        // cut.
        let second = second_of(a.t);
        if second > ctx.frontier.get() {
            ctx.frontier.set(second);
            ctx.cut_ready.notify_one();
        }
        // Overdue arrivals are started back to back; yield now and then so that sessions, the
        // per-second snapshot and stop requests still run when the plan outpaces the machine.
        if n.is_multiple_of(64) {
            tokio::task::yield_now().await;
        }
        let sparse = density.note(a.t);
        if !ctx.sleep_precise(&timer, due, sparse).await || ctx.stopping() {
            let rest = std::iter::once(a).chain(queue.into_iter().map(|q| q.a));
            count_overdue(ctx, rest.chain(arrivals));
            return false;
        }
        // Woken a little early for the first arrival of a second: it starts once the second
        // before is cut, so that it counts in its own.
        while ctx.cut.get() < second {
            let cut = ctx.cut_done.notified();
            tokio::select! {
                _ = cut => {}
                _ = ctx.stop_notify.notified() => {}
            }
            if ctx.stopping() {
                let rest = std::iter::once(a).chain(queue.into_iter().map(|q| q.a));
                count_overdue(ctx, rest.chain(arrivals));
                return false;
            }
        }
        // Live steering: thin or multiply the planned arrivals deterministically. Each planned
        // arrival adds the factor to an accumulator and starts floor(acc) sessions, so ×0.5 starts
        // every other one and ×2 two at each instant. Paused: none start, counted as `paused`.
        let steer = ctx.control.steering();
        if steer.paused {
            ctx.rec.borrow_mut().sessions_paused += 1;
            continue;
        }
        let factor = if steer == Steering::PLAN {
            1.0
        } else {
            steer.factor_at(ctx.plan.value_at(a.t))
        };
        acc += factor.min(MAX_PER_ARRIVAL);
        let starts = acc.floor();
        acc -= starts;
        if second < ctx.cut.get() {
            // Its second was cut without it (the loop was more than `CUT_WAIT` behind): started
            // now it would count in a later second.
            ctx.rec.borrow_mut().sessions_unstarted += starts as u64;
            continue;
        }
        for k in 0..starts as u64 {
            if let Some(c) = cap.filter(|c| ctx.in_flight.get() >= *c) {
                let mut rec = ctx.rec.borrow_mut();
                rec.sessions_dropped += 1;
                if ctx.parked.get() * 2 >= c {
                    rec.sessions_dropped_parked += 1;
                }
                continue;
            }
            // Extra sessions of a multiplied arrival get numbers of their own, past the plan's.
            let index = a.index + (k << 40);
            let planned = Planned::new(ctx, second);
            tokio::task::spawn_local(session::arrival(
                ctx.clone(),
                planned,
                index,
                due,
                a.fixed.clone(),
                ahead.take(),
            ));
        }
    }
}

/// On a stop: the arrivals in `rest` (in time order, the first the one the loop was at) that
/// were already due when the stop came were planned but never started; they are counted
/// `unstarted`. Arrivals not yet due are not (the run ended before their instant).
fn count_overdue(ctx: &ShardCtx, rest: impl Iterator<Item = crate::plan::Arrival>) {
    let now = Instant::now()
        .saturating_duration_since(ctx.start())
        .as_secs_f64();
    if ctx.control.steering().paused {
        return;
    }
    let within = |a: &crate::plan::Arrival| ctx.plan.iterations.is_none_or(|i| a.index < i);
    let overdue = rest.take_while(|a| a.t <= now && within(a)).count() as u64;
    ctx.rec.borrow_mut().sessions_unstarted += overdue;
}

/// The open loop sleeps on the timerfd while its arrivals are sparse, on tokio's wheel while
/// they are dense: at a high rate the timerfd's wakes (one per arrival more than
/// `RELEASE_WINDOW` past the last: a timerfd arm, a reactor wake and a read each) cost 3-4 µs
/// of CPU per request at 20,000/s (docs/performance.md), where the wheel's 1 ms tick batches
/// them; at a replay's rates the wheel would put every arrival up to a millisecond off.
///
/// The choice follows a running mean of the planned gap between arrivals (the mean of the
/// first 128 gaps, then an exponential mean over about 128; the first 128 arrivals stay on the
/// timerfd) with hysteresis: dense once the mean
/// falls below `DENSE_GAP` (above 10,000/s), sparse again once it is back at `SPARSE_GAP` or
/// more (5,000/s and below). A single threshold on a short mean flipped back and forth near it
/// (a replay at 4,000/s has Poisson gaps whose 10-arrival mean crossed 200 µs again and again:
/// stretches of such a run were released on the wheel, up to 0.8 ms early); between the two
/// the loop keeps the clock it has. The running mean of Poisson gaps has a standard deviation
/// of about 6 % of the mean gap: at 4,000/s (250 µs) or 20,000/s (50 µs) it stays far from the
/// other threshold, and at 7,000/s (143 µs) 5-6 deviations from either.
#[derive(Debug, Clone, Copy)]
struct Density {
    /// The running mean of the gap, s.
    mean: f64,
    gaps: u64,
    last: Option<f64>,
    sparse: bool,
}

impl Default for Density {
    fn default() -> Self {
        Density {
            mean: 0.0,
            gaps: 0,
            last: None,
            sparse: true,
        }
    }
}

impl Density {
    /// Takes the next arrival's instant (s) and says whether to sleep on the timerfd for it.
    fn note(&mut self, t: f64) -> bool {
        if let Some(last) = self.last {
            self.gaps += 1;
            let w = (1.0 / self.gaps as f64).max(1.0 / GAP_WINDOW);
            self.mean += w * ((t - last).max(0.0) - self.mean);
            if self.gaps < GAP_WINDOW as u64 {
                // A mean of a few gaps says little: the first ones stay on the timerfd.
            } else if self.sparse && self.mean < DENSE_GAP {
                self.sparse = false;
            } else if !self.sparse && self.mean >= SPARSE_GAP {
                self.sparse = true;
            }
        }
        self.last = Some(t);
        self.sparse
    }
}

/// Back to the timerfd once the mean planned gap is at least this (s; 5,000/s and below).
const SPARSE_GAP: f64 = 200e-6;
/// Onto the wheel once the mean planned gap is below this (s; above 10,000/s).
const DENSE_GAP: f64 = 100e-6;
/// The running mean's window, in arrivals.
const GAP_WINDOW: f64 = 128.0;

/// At most this many arrivals of a shard have their connection opened ahead at once: a crowd
/// denser than `MAX_AHEAD` per lead gets less lead (the rest open as earlier ones go), never
/// thousands of idle connections.
const MAX_AHEAD: usize = 256;
/// The least and the most a replayed arrival's connection is opened before its instant.
pub const LEAD_MIN: Duration = Duration::from_millis(5);
pub const LEAD_MAX: Duration = Duration::from_millis(100);

/// At most this many sessions start at one planned arrival, whatever the factor.
const MAX_PER_ARRIVAL: f64 = 1000.0;

/// Keeps the planned number of users running. True when it ended because every user the plan
/// has ever has run its `load.iterations` journeys.
async fn closed_loop(ctx: &Rc<ShardCtx>, end: Instant) -> bool {
    let mut users: Vec<Rc<Cell<bool>>> = Vec::new();
    let tick = Duration::from_millis(10);
    // With iterations, a user that has run its journeys leaves (and retires its own flag); the
    // run is done once the plan's largest count of users has been started and all have left.
    let most = ctx.plan.iterations.map(|_| {
        ctx.segment
            .share_of((ctx.plan.peak().0 + 1e-9).floor() as u64) as usize
    });
    loop {
        let now = Instant::now();
        if now >= end || ctx.stopping() {
            break;
        }
        if most.is_some_and(|m| users.len() >= m && users.iter().all(|f| f.get())) {
            return true;
        }
        let t = now.saturating_duration_since(ctx.start()).as_secs_f64();
        let steer = ctx.control.steering();
        let planned = ctx.plan.users_at(t, ctx.segment);
        let target = if steer.paused {
            0
        } else if steer == Steering::PLAN {
            planned as usize
        } else if let Some(set) = steer.set {
            ctx.segment.share_of(set.round() as u64) as usize
        } else {
            (planned as f64 * steer.factor).round() as usize
        };
        while users.len() < target {
            let j = users.len() as u64;
            let flag = Rc::new(Cell::new(false));
            tokio::task::spawn_local(session::user(
                ctx.clone(),
                ctx.segment.global(j),
                flag.clone(),
            ));
            users.push(flag);
        }
        if users.len() > target {
            for f in users.drain(target..) {
                f.set(true);
            }
        }
        if !ctx.sleep_until(now + tick).await {
            break;
        }
    }
    for f in users {
        f.set(true);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Poisson arrivals at `rate`/s for `secs` s (xorshift, fixed seed), fed to `d`: how many
    /// times the clock choice changed after the first second, and the choice at the end.
    fn feed(d: &mut Density, rate: f64, from: f64, secs: f64, seed: u64) -> (u32, bool) {
        let mut x = seed;
        let mut t = from;
        let mut flips = 0;
        let mut was = None;
        while t < from + secs {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            t += -(1.0 - u).ln() / rate;
            let s = d.note(t);
            if t > from + 1.0 {
                if was.is_some_and(|w| w != s) {
                    flips += 1;
                }
                was = Some(s);
            }
        }
        (flips, d.sparse)
    }

    #[test]
    fn the_open_loops_clock_choice_is_stable_near_the_switch() {
        // A replay at 200 %: 4,000/s, a mean gap of 250 µs, near the 200 µs switch. With one
        // threshold on a 10-arrival mean it went back and forth; now it stays on the timerfd.
        let mut d = Density::default();
        assert_eq!(feed(&mut d, 4_000.0, 0.0, 20.0, 7), (0, true));
        // 20,000/s: the wheel, and nothing else once there.
        let mut d = Density::default();
        assert_eq!(feed(&mut d, 20_000.0, 0.0, 10.0, 9), (0, false));
        // Between the two thresholds (7,000/s) the loop keeps the clock it has.
        let mut from_sparse = Density::default();
        assert_eq!(feed(&mut from_sparse, 7_000.0, 0.0, 10.0, 11), (0, true));
        let mut from_dense = Density::default();
        feed(&mut from_dense, 20_000.0, 0.0, 2.0, 13);
        assert_eq!(feed(&mut from_dense, 7_000.0, 2.0, 10.0, 15), (0, false));
        // And it does change when the rate does: dense back to sparse at 1,000/s.
        assert_eq!(feed(&mut from_dense, 1_000.0, 12.0, 5.0, 17), (0, true));
    }

    #[test]
    fn the_first_arrival_does_not_decide_the_clock() {
        // A replay's first record is at 0 s: no gap from "before the run" counts.
        let mut d = Density::default();
        assert!(d.note(0.0));
        assert!(d.note(0.01));
        assert!((d.mean - 0.01).abs() < 1e-12);
    }
}
