//! Warm start: before time 0 each shard opens the `connection: shared` connections its first
//! phase needs, so that the first second of a run measures the target, not the generator's cold
//! start (a pool opening hundreds of connections while arrivals pile up behind it).
//!
//! How many: Little's law per client and shard, the first phase's highest planned rate (open
//! model) times the latency of a probe — the open of the first connection, which on the target's
//! path costs about what an exchange does (TCP, and TLS and the HTTP/2 handshake when there are
//! any) — with headroom for jitter, capped by the client's `pool`; for a closed model the first
//! phase's highest user count, capped the same way. HTTP/2 shares one multiplexed connection.
//! `per-user` connections open with their user and `fresh` ones with each request, as a real
//! crowd of new phones does: nothing is opened before time 0 for them. (A replay's are opened a
//! few ms before each record's instant instead, so that the request reaches the target at the
//! instant: `shard::open_arrivals`.)
//!
//! `Starter` is the handshake with the engine: each shard says when it is warm, and the engine
//! then fixes time 0 for all of them (the warm-up is not in the run's clock, and its time is
//! reported).

use super::compile::Program;
use super::shard::ShardCtx;
use super::transport::{self, Conn};
use crate::plan::{Model, Plan};
use crate::scenario::model::{ConnectionMode, HttpVersion};
use std::rc::Rc;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest a warm-up may take; connections not open by then open on demand during the run.
pub const WARM_MAX: Duration = Duration::from_secs(3);

/// Headroom over Little's law: arrivals are bursty (Poisson) and latency jitters.
const HEADROOM: f64 = 4.0;
/// At least this many connections for a client with any planned load on this shard.
const MIN_CONNS: usize = 4;

/// What the warm-up did, over all shards.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WarmUp {
    /// From the shards' start to the last one warm, seconds.
    pub took_s: f64,
    /// Connections opened before time 0.
    pub connections: u64,
}

#[derive(Default)]
struct StartState {
    ready: usize,
    connections: u64,
    start: Option<Instant>,
}

/// The engine's side of the warm-up: shards report ready, then wait for time 0.
pub struct Starter {
    shards: usize,
    began: Instant,
    state: Mutex<StartState>,
    cond: Condvar,
}

impl Starter {
    pub fn new(shards: usize) -> Starter {
        Starter {
            shards,
            began: Instant::now(),
            state: Mutex::new(StartState::default()),
            cond: Condvar::new(),
        }
    }

    /// A shard is warm (with `connections` open), then waits for time 0. A shard that could not
    /// start reports ready with none.
    pub fn ready_then_wait(&self, connections: u64) -> Instant {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.ready += 1;
        s.connections += connections;
        self.cond.notify_all();
        loop {
            if let Some(at) = s.start {
                return at;
            }
            s = self.cond.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until every shard is warm, at most `limit` (a shard that is slower starts with what
    /// it has). Returns what the warm-up did.
    pub fn wait_ready(&self, limit: Duration) -> WarmUp {
        let deadline = Instant::now() + limit;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.ready < self.shards {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .cond
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        WarmUp {
            took_s: self.began.elapsed().as_secs_f64(),
            connections: s.connections,
        }
    }

    /// Fixes time 0 and lets every shard go.
    pub fn go(&self, start: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.start = Some(start);
        self.cond.notify_all();
    }
}

/// The first phase's highest planned value on this shard (open: arrivals/s; closed: users).
fn first_phase_peak(plan: &Plan, ctx: &ShardCtx) -> f64 {
    let Some(p) = plan.phases.first() else {
        return 0.0;
    };
    let steps = 64;
    let peak = (0..=steps)
        .map(|k| plan.value_at(p.start + (p.end - p.start) * k as f64 / steps as f64))
        .fold(0.0f64, f64::max);
    peak / ctx.segment.count.max(1) as f64
}

/// How many connections to open for `client` given the probe latency.
fn wanted(prog: &Program, plan: &Plan, ctx: &ShardCtx, client: usize, probe: Duration) -> usize {
    let c = &prog.clients[client];
    if c.connection != ConnectionMode::Shared {
        return 0;
    }
    if c.http == HttpVersion::H2 {
        return 1;
    }
    let cum = prog.client_pick.first().map(Vec::as_slice).unwrap_or(&[]);
    let share = match client {
        0 => cum.first().copied().unwrap_or(1.0),
        k => cum.get(k).copied().unwrap_or(1.0) - cum.get(k - 1).copied().unwrap_or(0.0),
    };
    let peak = first_phase_peak(plan, ctx) * share.clamp(0.0, 1.0);
    if peak <= 0.0 {
        return 0;
    }
    let n = match plan.model {
        Model::Open => (peak * probe.as_secs_f64() * HEADROOM).ceil() as usize,
        Model::Closed => peak.ceil() as usize,
    };
    n.max(MIN_CONNS).min(c.pool)
}

/// Opens this shard's connections for its first phase into its shared pools, within
/// `WARM_MAX`. Returns how many it opened.
pub async fn open(ctx: &Rc<ShardCtx>) -> u64 {
    let prog = ctx.prog.clone();
    let plan = ctx.plan.clone();
    let deadline = Instant::now() + WARM_MAX;
    let mut opened = 0u64;
    if ctx.stopping() {
        return 0;
    }
    for client in 0..prog.clients.len() {
        let c = &prog.clients[client];
        if c.connection != ConnectionMode::Shared
            || wanted(&prog, &plan, ctx, client, Duration::ZERO) == 0
        {
            continue;
        }
        // The probe: the first connection's open.
        let t0 = Instant::now();
        let first = tokio::time::timeout_at(
            deadline.into(),
            transport::connect(&prog, c.http, c.lean, ctx.dial(client)),
        )
        .await;
        let Ok(Ok(first)) = first else {
            continue; // unreachable or too slow: the run opens them on demand and says why
        };
        let probe = t0.elapsed();
        let mut conns: Vec<Conn> = vec![first];
        let want = wanted(&prog, &plan, ctx, client, probe);
        // Opened 16 at a time: no connection storm, and a far target is not opened one by one.
        while conns.len() < want && Instant::now() < deadline {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..(want - conns.len()).min(16) {
                let dial = ctx.dial(client);
                let prog = prog.clone();
                let (http, lean) = (c.http, c.lean);
                batch.spawn_local(async move { transport::connect(&prog, http, lean, dial).await });
            }
            let before = conns.len();
            while let Ok(Some(done)) =
                tokio::time::timeout_at(deadline.into(), batch.join_next()).await
            {
                if let Ok(Ok(conn)) = done {
                    conns.push(conn);
                }
            }
            if conns.len() == before {
                break;
            }
        }
        opened += conns.len() as u64;
        for conn in conns {
            ctx.put_shared(client, conn);
        }
    }
    opened
}
