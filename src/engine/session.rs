//! A virtual user's session: picks a client and a journey, then walks the steps. A request step
//! is prepare (render the templates, off the clock; `prepare.rs`) → send (timeout, hard stop) →
//! exchange (a connection from the session or the pool, the transport, the retry policy) →
//! record (one `Sample`, after `checks`). Latency counts from each step's intended start.

mod prepare;
mod stream;

use super::checks;
use super::compile::{Program, RequestProg, StepProg};
use super::shard::{PreSend, ShardCtx};
use super::transport::{self, Conn, Failed, Outgoing, Reply};
use crate::metrics::recorder::Sample;
use crate::metrics::ErrorKind;
use crate::scenario::model::ConnectionMode;
use crate::template::Values;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// splitmix64: decorrelates per-session seeds derived from consecutive indices.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Counts a session as in flight while it lives; one dropped before `finish` was interrupted.
struct InFlight {
    ctx: Rc<ShardCtx>,
    done: bool,
}

impl InFlight {
    fn new(ctx: &Rc<ShardCtx>) -> Self {
        ctx.in_flight.set(ctx.in_flight.get() + 1);
        InFlight {
            ctx: ctx.clone(),
            done: false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.ctx.in_flight.set(self.ctx.in_flight.get() - 1);
        if !self.done {
            self.ctx.rec.borrow_mut().sessions_interrupted += 1;
        }
    }
}

/// Counts a session as parked while it waits at a `wait` or `rendezvous`; one dropped before
/// `release` (the run ended first) was left parked.
struct Parked {
    ctx: Rc<ShardCtx>,
    released: bool,
}

impl Parked {
    fn new(ctx: &Rc<ShardCtx>) -> Self {
        ctx.parked.set(ctx.parked.get() + 1);
        Parked {
            ctx: ctx.clone(),
            released: false,
        }
    }

    fn release(mut self) {
        self.released = true;
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.ctx.parked.set(self.ctx.parked.get() - 1);
        if !self.released {
            self.ctx.rec.borrow_mut().sessions_left_parked += 1;
        }
    }
}

pub struct Session {
    ctx: Rc<ShardCtx>,
    prog: Arc<Program>,
    index: u64,
    client: usize,
    rng: SmallRng,
    vars: Vec<String>,
    rows: Vec<usize>,
    conn: Option<Conn>,
    /// The target address set's generation when the per-user connection was opened: one opened
    /// under an older set is retired, so the load follows a DNS change.
    conn_generation: u64,
    buf: Vec<u8>,
    /// The lean path's serialized request, and the kept response body.
    wire: Vec<u8>,
    body: Vec<u8>,
    /// A shared-pool slot held while a request uses a pooled connection.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The request after a wait or rendezvous, rendered before the release (`arm`).
    armed: Option<Armed>,
    /// The request timeout's timer, kept from one request to the next (see `send`).
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// The armed request a release wrote (when, bytes written): the next request goes on from
    /// there instead of writing it (see `shard::PreSend`).
    presented: Option<(Instant, usize)>,
    /// When the last journey that completed ended.
    ended: Instant,
    /// The connection the open loop began opening before this arrival's instant (see
    /// [`Ahead`]): a `per-user` or `fresh` replayed request's first connection.
    ahead: Option<Ahead>,
}

/// A connection opened ahead of a replayed arrival's instant, so that its request is written at
/// the instant instead of after a connect (`shard::open_arrivals` starts it up to
/// `ShardCtx::connect_lead` early). The task that opens it is aborted if the arrival drops it
/// unused (a stop, `max_users`, steering, a second already cut): nothing is sent on it.
pub struct Ahead {
    client: usize,
    task: tokio::task::JoinHandle<Option<(Conn, u64)>>,
}

impl Ahead {
    /// Starts opening a connection for `client` (TCP, and TLS and the HTTP handshake when there
    /// are any), timing it for the shard's lead.
    pub fn open(ctx: &Rc<ShardCtx>, client: usize) -> Ahead {
        let ctx = ctx.clone();
        let task = tokio::task::spawn_local(async move {
            let t0 = Instant::now();
            let generation = ctx.addr_generation();
            let dial = ctx.dial(client);
            let prog = ctx.prog.clone();
            let c = &prog.clients[client];
            let conn = tokio::select! {
                r = transport::connect(&prog, c.http, c.lean, dial) => r.ok(),
                _ = ctx.hard_stopped() => None,
            };
            ctx.note_connect(t0.elapsed());
            conn.map(|c| (c, generation))
        });
        Ahead { client, task }
    }

    /// The connection and the address set's generation it was opened under, once open (it may
    /// still be opening at the arrival's instant: the request waits for it on its own clock);
    /// None if it failed (the request then connects itself, and counts what fails).
    async fn take(mut self) -> Option<(Conn, u64)> {
        (&mut self.task).await.ok().flatten()
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The client a session numbered `index` that starts in `phase` plays: a fixed request's own
/// client, or one picked by share with the session's seed, as `Session::new` and
/// `Session::fixed` pick it.
pub fn client_of(
    ctx: &ShardCtx,
    index: u64,
    phase: usize,
    fixed: Option<&crate::plan::FixedRequest>,
) -> usize {
    let prog = &ctx.prog;
    if let Some(c) = fixed.and_then(|f| f.client) {
        if (c as usize) < prog.clients.len() {
            return c as usize;
        }
    }
    let mut rng = seeded(ctx, index);
    pick(&prog.client_pick[phase], rng.gen::<f64>())
}

/// A session's own random generator: decorrelated per session, the same every run.
fn seeded(ctx: &ShardCtx, index: u64) -> SmallRng {
    SmallRng::seed_from_u64(mix(ctx.plan.seed ^ mix(index)))
}

/// A request rendered ahead of its send, for the step (endpoint) it was rendered for.
enum Armed {
    /// Serialized into the session's `wire` buffer, or fully fixed at compile time (`full`).
    Wire { endpoint: usize, full: bool, n: u64 },
    Hyper {
        endpoint: usize,
        req: Box<::http::Request<transport::ReqBody>>,
        n: u64,
    },
}

impl Values for Session {
    fn data(&self, set: usize, column: usize) -> &str {
        let row = self.rows[set];
        if row == usize::MAX {
            return "";
        }
        self.prog.data[set].cell(row, column)
    }
    fn var(&self, index: usize) -> &str {
        &self.vars[index]
    }
    fn user(&self) -> u64 {
        self.index
    }
    fn client(&self) -> &str {
        &self.prog.clients[self.client].name
    }
    fn next_seq(&mut self) -> u64 {
        let s = self.ctx.seq.get();
        self.ctx.seq.set(s + 1);
        self.ctx.segment.global(s)
    }
    fn random(&mut self, lo: i64, hi: i64) -> i64 {
        if lo >= hi {
            lo
        } else {
            self.rng.gen_range(lo..=hi)
        }
    }
    fn random_u128(&mut self) -> u128 {
        self.rng.gen()
    }
}

fn pick(cum: &[f64], x: f64) -> usize {
    cum.iter().position(|c| x < *c).unwrap_or(cum.len() - 1)
}

/// The instants a request step is measured by.
#[derive(Clone, Copy)]
struct Times {
    /// The planned start (latency counts from here).
    intended: Instant,
    sent: Instant,
    ended: Instant,
    /// When a wait or rendezvous released the session, for its first request after it.
    released: Option<Instant>,
}

/// How a step ended.
enum StepEnd {
    Ok,
    Failed,
    Stopped,
}

impl Session {
    fn new(ctx: &Rc<ShardCtx>, index: u64, phase: usize) -> Session {
        let prog = ctx.prog.clone();
        let mut rng = seeded(ctx, index);
        let client = pick(&prog.client_pick[phase], rng.gen::<f64>());
        Session {
            ctx: ctx.clone(),
            index,
            client,
            rng,
            vars: Vec::new(),
            rows: vec![usize::MAX; prog.data.len()],
            conn: None,
            conn_generation: 0,
            buf: Vec::new(),
            wire: Vec::new(),
            body: Vec::new(),
            permit: None,
            armed: None,
            timer: None,
            presented: None,
            ended: ctx.start(),
            ahead: None,
            prog,
        }
    }

    /// Picks the journey of a session that starts in `phase`, among those its client may take
    /// there (validation sees to it that there is one; failing that, any of the client's).
    fn pick_journey(&mut self, phase: usize) -> usize {
        let x: f64 = self.rng.gen();
        let all = &self.prog.clients[self.client].journeys;
        let js = match all.get(phase) {
            Some(js) if !js.is_empty() => js,
            _ => all
                .iter()
                .find(|js| !js.is_empty())
                .expect("a client has journeys"),
        };
        js.iter()
            .find(|(_, c)| x < *c)
            .or(js.last())
            .map(|(j, _)| *j)
            .expect("a client has journeys")
    }

    /// Picks this iteration's data rows. False when a `unique` set has run out.
    fn pick_rows(&mut self, journey: usize) -> bool {
        for &set in &self.prog.journeys[journey].data_sets {
            let table = &self.prog.data[set];
            let n = table.n_rows as u64;
            self.rows[set] = match table.pick {
                crate::scenario::model::Pick::Random => self.rng.gen_range(0..table.n_rows),
                crate::scenario::model::Pick::Sequential => {
                    let c = &self.ctx.data_counters[set];
                    let k = c.get();
                    c.set(k + 1);
                    (self.ctx.segment.global(k) % n) as usize
                }
                crate::scenario::model::Pick::Unique => {
                    let c = &self.ctx.data_counters[set];
                    let k = c.get();
                    c.set(k + 1);
                    let row = self.ctx.segment.global(k);
                    if row >= n {
                        return false;
                    }
                    row as usize
                }
            };
        }
        true
    }

    /// Runs one journey from `intended` (the arrival instant). Returns whether it completed.
    async fn journey(&mut self, journey: usize, arrived: Instant) -> Option<bool> {
        let prog = self.prog.clone();
        let jp = &prog.journeys[journey];
        self.ctx
            .rec
            .borrow_mut()
            .session_started(journey, self.client);
        self.vars.clear();
        self.vars.resize(jp.n_vars, String::new());
        if !self.pick_rows(journey) {
            self.ctx
                .rec
                .borrow_mut()
                .session_ended(journey, false, 0, None);
            return Some(false);
        }
        let mut intended = arrived;
        // The instant a wait or rendezvous released this session, until its next request.
        let mut released: Option<Instant> = None;
        // The last such instant, for the session's time from its release.
        let mut last_release: Option<Instant> = None;
        // The end of the last step when nothing has happened since (no think, no wait): the
        // session's end without another read of the clock.
        let mut ended: Option<Instant> = None;
        for (i, step) in jp.steps.iter().enumerate() {
            ended = None;
            // A request a release already wrote is finished and recorded, stop or not.
            if self.presented.is_none() && self.ctx.stopping() {
                return None;
            }
            match step {
                StepProg::Think(d) => {
                    intended = Instant::now().max(intended) + *d;
                    if !self.ctx.sleep_on_time(intended).await {
                        return None;
                    }
                }
                StepProg::WaitUntil(s) => {
                    let at = self.ctx.start() + Duration::from_secs_f64(*s);
                    if Instant::now() < at {
                        let parked = Parked::new(&self.ctx);
                        self.arm(jp.steps.get(i + 1)).await;
                        // Nobody can buy before the sale opens: the shard lets its waiters go
                        // together at the instant, writing the requests they lent it first
                        // (see `ShardCtx::release_at`).
                        let lent = self.lend(jp.steps.get(i + 1));
                        let go = self.ctx.release_at(at, lent.clone()).await;
                        if let Some(p) = lent {
                            self.take_back(&p);
                        }
                        if !go && self.presented.is_none() {
                            return None;
                        }
                        parked.release();
                        intended = at;
                        released = Some(at);
                    }
                }
                StepProg::Rendezvous { id, users, timeout } => {
                    let parked = Parked::new(&self.ctx);
                    self.arm(jp.steps.get(i + 1)).await;
                    match self.ctx.rendezvous(*id, *users, *timeout).await {
                        Some(at) => {
                            parked.release();
                            intended = intended.max(at);
                            released = Some(at);
                        }
                        None => return None,
                    }
                }
                StepProg::Request(_) | StepProg::Stream(_) => {
                    last_release = released.or(last_release);
                    let (end, t_end) = self.send_step(step, intended, released.take()).await;
                    match end {
                        StepEnd::Ok => {}
                        StepEnd::Failed => {
                            self.ctx
                                .rec
                                .borrow_mut()
                                .session_ended(journey, false, 0, None);
                            return Some(false);
                        }
                        StepEnd::Stopped => return None,
                    }
                    intended = t_end;
                    ended = Some(t_end);
                    let think = prog.clients[self.client].think.as_ref().map(|t| {
                        let ts = self.ctx.plan.time_scale;
                        t.sample(&mut self.rng, ts)
                    });
                    if let Some(d) = think {
                        if !d.is_zero() {
                            ended = None;
                            intended = t_end + d;
                            if !self.ctx.sleep_on_time(intended).await {
                                return None;
                            }
                        }
                    }
                }
            }
        }
        let end = ended.unwrap_or_else(Instant::now);
        self.ended = end;
        let took = end.saturating_duration_since(arrived);
        self.ctx.rec.borrow_mut().session_ended(
            journey,
            true,
            took.as_micros() as u64,
            last_release.map(|r| end.saturating_duration_since(r).as_micros() as u64),
        );
        Some(true)
    }

    /// Sends the one request a load source fixed for this arrival, as its client (or the one
    /// picked by share), recorded under the `replay` journey. Returns whether it succeeded.
    async fn fixed(&mut self, f: &crate::plan::FixedRequest, arrived: Instant) -> Option<bool> {
        let prog = self.prog.clone();
        let fp = prog.fixed.as_ref()?;
        if let Some(c) = f.client {
            if (c as usize) < prog.clients.len() {
                self.client = c as usize;
            }
        }
        self.ctx
            .rec
            .borrow_mut()
            .session_started(fp.journey, self.client);
        let ok = match super::compile::fixed_request(&prog, fp, self.client, f) {
            Ok(r) => match self.request(&r, arrived, None).await.0 {
                StepEnd::Ok => true,
                StepEnd::Failed => false,
                StepEnd::Stopped => return None,
            },
            Err(_) => false,
        };
        let took = Instant::now().saturating_duration_since(arrived);
        self.ctx
            .rec
            .borrow_mut()
            .session_ended(fp.journey, ok, took.as_micros() as u64, None);
        Some(ok)
    }

    async fn obtain(&mut self) -> Result<Conn, ErrorKind> {
        // A replayed request's connection opened ahead of its instant, if it opened (and under
        // the address set in force); one for another client is not this session's.
        if let Some(a) = self.ahead.take().filter(|a| a.client == self.client) {
            if let Some((mut c, generation)) = a.take().await {
                if generation == self.ctx.addr_generation() && c.still_open() {
                    self.conn_generation = generation;
                    return Ok(c);
                }
            }
        }
        let client = &self.prog.clients[self.client];
        // The dial (the next source and target address in turn) is taken only for a connection
        // that is opened: a kept-alive one costs no look at the shared address set.
        match client.connection {
            ConnectionMode::PerUser => {
                let generation = self.ctx.addr_generation();
                if let Some(mut c) = self.conn.take() {
                    if c.still_open() && self.conn_generation == generation {
                        return Ok(c);
                    }
                }
                self.conn_generation = generation;
                let dial = self.ctx.dial(self.client);
                transport::connect(&self.prog, client.http, client.lean, dial).await
            }
            ConnectionMode::Fresh => {
                let dial = self.ctx.dial(self.client);
                transport::connect(&self.prog, client.http, client.lean, dial).await
            }
            ConnectionMode::Shared => {
                if client.http == crate::scenario::model::HttpVersion::H1 {
                    // At most `pool` connections in use per shard: wait for one to come back.
                    let permit = self.ctx.pools[self.client]
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| ErrorKind::Connect)?;
                    self.permit = Some(permit);
                }
                if let Some(c) = self.ctx.take_shared(self.client) {
                    return Ok(c);
                }
                if client.http == crate::scenario::model::HttpVersion::H2 {
                    return self.open_shared_h2().await;
                }
                let dial = self.ctx.dial(self.client);
                transport::connect(&self.prog, client.http, client.lean, dial).await
            }
        }
    }

    /// Opens the shard's shared HTTP/2 connection for this client, or waits for the session
    /// already opening it and takes a handle to that one. The new connection goes into the pool
    /// at once, before its first exchange, so a burst of sessions multiplexes onto it.
    async fn open_shared_h2(&mut self) -> Result<Conn, ErrorKind> {
        let ctx = self.ctx.clone();
        let _opening = ctx.h2_opening[self.client].lock().await;
        if let Some(c) = ctx.take_shared(self.client) {
            return Ok(c);
        }
        let client = &self.prog.clients[self.client];
        let dial = ctx.dial(self.client);
        let c = transport::connect(&self.prog, client.http, client.lean, dial).await?;
        if let Some(h) = c.clone_h2() {
            ctx.put_shared(self.client, h);
        }
        Ok(c)
    }

    /// Gets the step after a wait or rendezvous ready before the release: for a `per-user`
    /// connection the connection open, and the request rendered (unless it reads the clock), so
    /// that at the release the session only writes. Whatever fails here is left to the request,
    /// which connects or renders again and records what fails. `shared` and `fresh` connections
    /// are taken or opened at the send, as they would be without a wait.
    async fn arm(&mut self, next: Option<&StepProg>) {
        let Some(StepProg::Request(r)) = next else {
            return;
        };
        let prog = self.prog.clone();
        let client = &prog.clients[self.client];
        if client.connection == ConnectionMode::PerUser
            && !self.conn.as_ref().is_some_and(Conn::is_open)
        {
            self.conn_generation = self.ctx.addr_generation();
            let dial = self.ctx.dial(self.client);
            let stop = self.ctx.clone();
            let open = transport::connect(&prog, client.http, client.lean, dial);
            tokio::select! {
                c = tokio::time::timeout(r.timeout, open) => self.conn = c.ok().and_then(Result::ok),
                _ = stop.hard_stopped() => return,
            }
        }
        if r.reads_clock(client) {
            return;
        }
        let mut wire = std::mem::take(&mut self.wire);
        let endpoint = r.endpoint;
        // `prepare` hands out a fully fixed request as compiled, without touching `wire`.
        let full = r.wire.get(self.client).is_some_and(|w| w.full.is_some());
        self.armed = match self.prepare(r, &mut wire) {
            Ok((Outgoing::Hyper(req), n)) => Some(Armed::Hyper { endpoint, req, n }),
            Ok((Outgoing::Wire(_), n)) => Some(Armed::Wire { endpoint, full, n }),
            Err(_) => None,
        };
        self.wire = wire;
    }

    /// Lends the release this session's armed request and kept-alive lean connection (see
    /// `shard::PreSend`); None when there is nothing the gate could write for it (no armed
    /// request, hyper, a connection not open or opened under an older address set).
    fn lend(&mut self, next: Option<&StepProg>) -> Option<Rc<PreSend>> {
        let Some(StepProg::Request(r)) = next else {
            return None;
        };
        let Some(Armed::Wire { endpoint, full, .. }) = &self.armed else {
            return None;
        };
        if *endpoint != r.endpoint
            || !matches!(&self.conn, Some(c @ Conn::Lean(_)) if c.is_open())
            || self.conn_generation != self.ctx.addr_generation()
        {
            return None;
        }
        let mut wire = std::mem::take(&mut self.wire);
        if *full {
            // A fully fixed request is sent as compiled; the gate gets its own copy.
            let bytes = r.wire.get(self.client).and_then(|w| w.full.as_ref())?;
            wire.clear();
            wire.extend_from_slice(bytes);
        }
        Some(Rc::new(PreSend {
            conn: std::cell::RefCell::new(self.conn.take()),
            wire: std::cell::RefCell::new(wire),
            sent: Cell::new(None),
        }))
    }

    /// Takes back what `lend` lent, with what the gate wrote.
    fn take_back(&mut self, p: &PreSend) {
        self.conn = p.conn.borrow_mut().take();
        self.wire = std::mem::take(&mut *p.wire.borrow_mut());
        self.presented = p.sent.get();
    }

    fn release(&mut self, conn: Conn) {
        if !conn.is_open() {
            return;
        }
        match self.prog.clients[self.client].connection {
            ConnectionMode::PerUser => self.conn = Some(conn),
            ConnectionMode::Fresh => {}
            ConnectionMode::Shared => self.ctx.put_shared(self.client, conn),
        }
    }

    /// A request or stream step.
    async fn send_step(
        &mut self,
        step: &StepProg,
        intended: Instant,
        released: Option<Instant>,
    ) -> (StepEnd, Instant) {
        match step {
            StepProg::Request(r) => self.request(r, intended, released).await,
            StepProg::Stream(sp) => match sp.kind {
                // Boxed: a stream step's state is large and rare; a request's future stays small.
                crate::scenario::model::StreamKind::Sse => {
                    Box::pin(self.sse(sp, intended, released)).await
                }
                crate::scenario::model::StreamKind::Ws => {
                    Box::pin(self.ws(sp, intended, released)).await
                }
            },
            _ => (StepEnd::Ok, intended),
        }
    }

    /// The plan phase an instant falls in.
    fn phase_at(&self, at: Instant) -> usize {
        let since_start = at.saturating_duration_since(self.ctx.start());
        self.ctx.plan.phase_index_at(since_start.as_secs_f64())
    }

    /// One request step: prepare (off the clock), send, exchange, record. Returns how the step
    /// ended and when.
    async fn request(
        &mut self,
        r: &RequestProg,
        intended: Instant,
        released: Option<Instant>,
    ) -> (StepEnd, Instant) {
        let phase = self.phase_at(intended);
        // Serialize before the clock starts: rendering is the generator's work, not the target's.
        // A request armed before a release was rendered then.
        let mut wire = std::mem::take(&mut self.wire);
        let prepared = match self.armed.take() {
            Some(Armed::Wire { endpoint, full, n }) if endpoint == r.endpoint => {
                match (full, r.wire.get(self.client).and_then(|w| w.full.as_ref())) {
                    (true, Some(bytes)) => Ok((Outgoing::Wire(bytes), n)),
                    _ => Ok((Outgoing::Wire(&wire), n)),
                }
            }
            Some(Armed::Hyper { endpoint, req, n }) if endpoint == r.endpoint => {
                Ok((Outgoing::Hyper(req), n))
            }
            _ => self.prepare(r, &mut wire),
        };
        // Sent when a release wrote it (see `shard::PreSend`), or now.
        let t_send = match self.presented {
            Some((t, _)) => t,
            None => Instant::now(),
        };
        // An arrival may leave a little early (see `shard::Waker`): it is measured from when it
        // was sent, never from a later plan instant.
        let intended = intended.min(t_send);
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let (bytes_out, outcome) = match prepared {
            Err(kind) => (0, Err(Failed::early(kind))),
            Ok((out, n)) => match self.send(r, out, t_send, &mut body).await {
                Some(res) => (n, res),
                None => {
                    self.wire = wire;
                    self.body = body;
                    return (StepEnd::Stopped, Instant::now());
                }
            },
        };
        self.wire = wire;
        // The pooled connection is back in the pool (or gone): free its slot.
        self.permit = None;
        let t_end = match &outcome {
            Ok(Reply {
                ended_at: Some(t), ..
            }) => *t,
            _ => Instant::now(),
        };
        let times = Times {
            intended,
            sent: t_send,
            ended: t_end,
            released,
        };
        let ok = self.record(r, phase, times, bytes_out, outcome, &body);
        self.body = body;
        (if ok { StepEnd::Ok } else { StepEnd::Failed }, t_end)
    }

    /// Exchanges within the step's timeout; None when a hard stop came first.
    async fn send(
        &mut self,
        r: &RequestProg,
        out: Outgoing<'_>,
        sent: Instant,
        body: &mut Vec<u8>,
    ) -> Option<Result<Reply, Failed>> {
        let stop = self.ctx.clone();
        let keep = r.needs_body.then_some(body);
        let head = r.method == ::http::Method::HEAD;
        let idempotent = idempotent(&r.method);
        // The session's one timer, moved to this request's deadline: a registered timer pushed
        // later is one atomic update, where a new timeout per request would be a timer-wheel
        // insert and removal (two locks) each time.
        // The timeout counts from the send (no second read of the clock).
        let deadline = tokio::time::Instant::from_std(sent) + r.timeout;
        let mut timer = match self.timer.take() {
            Some(mut t) => {
                t.as_mut().reset(deadline);
                t
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let res = tokio::select! {
            biased;
            res = self.exchange(out, head, idempotent, keep) => Some(res),
            _ = &mut timer => Some(Err(Failed::early(ErrorKind::Timeout))),
            _ = stop.hard_stopped() => None,
        };
        self.timer = Some(timer);
        res
    }

    /// Takes a connection, exchanges on it and gives it back. The retry policy lives here, as
    /// browsers have it: a kept-alive connection the server closed while idle is noticed before
    /// use and replaced (nothing was sent: no retry); a request whose connection then closed
    /// before any byte of the answer is sent once more on a new connection when its method is
    /// idempotent (a POST or PATCH is counted as `reset`, never resent: the server may have
    /// acted on it); a request an HTTP/2 server refused unprocessed (GOAWAY, REFUSED_STREAM) is
    /// sent again whatever its method, up to `MAX_UNPROCESSED_RESENDS` times (a stream refused
    /// on a connection that then goes away is refused twice). Each resend is counted as
    /// `retried`.
    async fn exchange(
        &mut self,
        out: Outgoing<'_>,
        head: bool,
        idempotent: bool,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<Reply, Failed> {
        let max_body = self.prog.max_body;
        // A request a release already began writing goes on on the connection it was lent with.
        let written = self.presented.take().map(|(_, n)| n);
        let mut conn = match (written, self.conn.take()) {
            (Some(_), Some(c)) => c,
            (_, c) => {
                self.conn = c;
                self.obtain().await.map_err(Failed::early)?
            }
        };
        let again = out.again();
        let mut res = conn
            .exchange(
                out,
                head,
                keep.as_deref_mut(),
                max_body,
                written.unwrap_or(0),
            )
            .await;
        let mut resends = 0;
        while let Err(f) = &res {
            let resend = (f.unprocessed && resends < MAX_UNPROCESSED_RESENDS)
                || (resends == 0 && idempotent && f.closed_before_response());
            if !resend {
                break;
            }
            resends += 1;
            self.ctx.rec.borrow_mut().retried += 1;
            conn = self.reconnect().await.map_err(Failed::early)?;
            if let Some(k) = keep.as_deref_mut() {
                k.clear();
            }
            res = conn
                .exchange(again.again(), head, keep.as_deref_mut(), max_body, 0)
                .await;
        }
        if res.is_ok() {
            self.release(conn);
        }
        res
    }

    /// Turns the outcome into one `Sample` (status, expectations and captures checked) and
    /// records it with the scheduler lag and burst spread. True when the step passed.
    fn record(
        &mut self,
        r: &RequestProg,
        phase: usize,
        t: Times,
        bytes_out: u64,
        outcome: Result<Reply, Failed>,
        body: &[u8],
    ) -> bool {
        let since = |at: Instant| at.saturating_duration_since(t.sent).as_micros() as u64;
        let mut sample = Sample {
            request: r.endpoint,
            client: self.client,
            phase,
            latency_us: t.ended.saturating_duration_since(t.intended).as_micros() as u64,
            service_us: since(t.ended),
            ttfb_us: None,
            status: None,
            error: None,
            bytes_in: 0,
            bytes_out,
        };
        match outcome {
            Err(f) => {
                self.conn = None;
                sample.error = Some(f.kind);
                sample.status = f.status;
                sample.bytes_in = f.bytes_in;
                sample.ttfb_us = f.head_at.map(since);
            }
            Ok(rep) => {
                sample.status = Some(rep.status);
                sample.bytes_in = rep.bytes_in;
                sample.ttfb_us = Some(since(rep.head_at));
                let kept = r.needs_body.then_some(body);
                sample.error = checks::check(r, rep.status, kept, &mut self.vars);
            }
        }
        let lag = t.sent.saturating_duration_since(t.intended).as_micros() as u64;
        let mut rec = self.ctx.rec.borrow_mut();
        rec.record(&sample);
        rec.record_lag(lag);
        if let Some(at) = t.released {
            // Sent after the release: send − release (never `since`, which counts from the send).
            let _ = rec
                .burst
                .record((t.sent.saturating_duration_since(at).as_micros() as u64).max(1));
        }
        sample.error.is_none()
    }
    /// A new connection for this session's client, replacing one that failed (a shared HTTP/2
    /// connection is replaced once for all the sessions that were using it).
    async fn reconnect(&mut self) -> Result<Conn, ErrorKind> {
        let client = &self.prog.clients[self.client];
        if client.connection == ConnectionMode::Shared
            && client.http == crate::scenario::model::HttpVersion::H2
        {
            return self.open_shared_h2().await;
        }
        self.conn_generation = self.ctx.addr_generation();
        let dial = self.ctx.dial(self.client);
        transport::connect(&self.prog, client.http, client.lean, dial).await
    }
}

/// How many times one request the server did not process (HTTP/2 GOAWAY past its stream,
/// REFUSED_STREAM) is sent again. A stream refused past the server's limit goes again on the
/// same connection, which may then be going away; the next one is new. Three covers both with
/// one to spare, and bounds a server that refuses everything.
const MAX_UNPROCESSED_RESENDS: u32 = 3;

/// Methods a client may send again without changing what the server did (RFC 9110 9.2.2).
fn idempotent(m: &::http::Method) -> bool {
    use ::http::Method as M;
    matches!(
        *m,
        M::GET | M::HEAD | M::PUT | M::DELETE | M::OPTIONS | M::TRACE
    )
}

/// An open-model arrival: one session, one journey — or the one request its source fixed, on
/// the connection opened `ahead` for it when there is one.
pub async fn arrival(
    ctx: Rc<ShardCtx>,
    planned: super::shard::Planned,
    index: u64,
    due: Instant,
    fixed: Option<Arc<crate::plan::FixedRequest>>,
    ahead: Option<Ahead>,
) {
    // Not started if its second of the plan was cut before this task first ran.
    if !planned.start() {
        return;
    }
    let mut guard = InFlight::new(&ctx);
    // The phase (the client mix, the journeys) is the plan's at the planned instant, even for an
    // arrival woken a little before it (see `shard::Waker`) just ahead of a phase boundary.
    let phase = ctx
        .plan
        .phase_index_at(due.saturating_duration_since(ctx.start()).as_secs_f64());
    // Woken a little early: the session starts now, not at a later instant.
    let due = due.min(Instant::now());
    let mut s = Session::new(&ctx, index, phase);
    s.ahead = ahead;
    let done = match fixed {
        Some(f) => s.fixed(&f, due).await,
        None => {
            let j = s.pick_journey(phase);
            s.journey(j, due).await
        }
    };
    if done.is_some() {
        guard.done = true;
    }
}

/// How long a closed-model user waits after a failed journey before the next.
pub const FAILED_ITERATION_PAUSE: Duration = Duration::from_millis(10);

/// A closed-model user: loops journeys until retired or the run stops.
pub async fn user(ctx: Rc<ShardCtx>, index: u64, retired: Rc<Cell<bool>>) {
    let mut guard = InFlight::new(&ctx);
    let now = Instant::now();
    let phase = ctx
        .plan
        .phase_index_at(now.saturating_duration_since(ctx.start()).as_secs_f64());
    let mut s = Session::new(&ctx, index, phase);
    let mut next = now;
    let mut journeys = 0u64;
    loop {
        if retired.get() || ctx.stopping() {
            guard.done = true;
            return;
        }
        if ctx.plan.iterations.is_some_and(|n| journeys >= n) {
            // Its journeys are run: the user leaves, and says so on its flag.
            retired.set(true);
            guard.done = true;
            return;
        }
        journeys += 1;
        let phase = ctx
            .plan
            .phase_index_at(next.saturating_duration_since(ctx.start()).as_secs_f64());
        let j = s.pick_journey(phase);
        match s.journey(j, next).await {
            None => return,
            // The next journey starts where this one ended.
            Some(true) => next = s.ended,
            Some(false) => {
                // A failed iteration pauses briefly, so a dead target is not hammered by a tight
                // connect-fail loop (millions of errors a second measure nothing).
                next = Instant::now() + FAILED_ITERATION_PAUSE;
                if !ctx.sleep_until(next).await {
                    guard.done = true;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output_size<F, A, B, C, D, E, R>(_: &F) -> usize
    where
        F: FnOnce(A, B, C, D, E) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// The request path's futures are moved on every request and kept by every parked user:
    /// the opening of a connection, hyper's exchange and stream steps stay boxed out of them.
    #[test]
    fn a_request_future_stays_small() {
        let exchange = output_size(&Session::exchange);
        let request = {
            fn of<F, A, B, C, D, R>(_: &F) -> usize
            where
                F: FnOnce(A, B, C, D) -> R,
            {
                std::mem::size_of::<R>()
            }
            of(&Session::request)
        };
        eprintln!("Session::exchange future: {exchange} bytes, Session::request: {request} bytes");
        assert!(
            exchange <= 1024,
            "Session::exchange's future is {exchange} bytes"
        );
        assert!(
            request <= 2048,
            "Session::request's future is {request} bytes"
        );
    }
}
