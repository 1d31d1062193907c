//! A virtual user's session: picks a client and a journey, then walks the steps — render the
//! request from bound templates, send it on the session's connection, record one `Sample`,
//! check expectations, capture values, think. Latency counts from each step's intended start.

use super::compile::{BodyProg, HeaderTpl, Program, RequestProg, StepProg};
use super::http::{self, Conn, ReqBody};
use super::shard::ShardCtx;
use crate::metrics::recorder::Sample;
use crate::metrics::ErrorKind;
use crate::scenario::model::ConnectionMode;
use crate::template::{Escape, Values};
use ::http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use bytes::Bytes;
use http_body_util::Full;
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

pub struct Session {
    ctx: Rc<ShardCtx>,
    prog: Arc<Program>,
    index: u64,
    client: usize,
    rng: SmallRng,
    vars: Vec<String>,
    rows: Vec<usize>,
    conn: Option<Conn>,
    buf: Vec<u8>,
    /// The lean path's serialized request, and the kept response body.
    wire: Vec<u8>,
    body: Vec<u8>,
    /// A shared-pool slot held while a request uses a pooled connection.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
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

/// How a step ended.
enum StepEnd {
    Ok,
    Failed,
    Stopped,
}

impl Session {
    fn new(ctx: &Rc<ShardCtx>, index: u64, phase: usize) -> Session {
        let prog = ctx.prog.clone();
        let mut rng = SmallRng::seed_from_u64(mix(ctx.plan.seed ^ mix(index)));
        let client = pick(&prog.client_pick[phase], rng.gen::<f64>());
        Session {
            ctx: ctx.clone(),
            index,
            client,
            rng,
            vars: Vec::new(),
            rows: vec![usize::MAX; prog.data.len()],
            conn: None,
            buf: Vec::new(),
            wire: Vec::new(),
            body: Vec::new(),
            permit: None,
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
            self.ctx.rec.borrow_mut().session_ended(journey, false, 0);
            return Some(false);
        }
        let mut intended = arrived;
        // The instant a wait or rendezvous released this session, until its next request.
        let mut released: Option<Instant> = None;
        for step in &jp.steps {
            if self.ctx.stopping() {
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
                    let at = self.ctx.start + Duration::from_secs_f64(*s);
                    if Instant::now() < at {
                        if !self.ctx.sleep_on_time(at).await {
                            return None;
                        }
                        // Nobody can buy before the sale opens: the last stretch is waited
                        // out (well under 2 ms, once per session).
                        while Instant::now() < at {
                            tokio::task::yield_now().await;
                        }
                        intended = at;
                        released = Some(at);
                    }
                }
                StepProg::Rendezvous { id, users, timeout } => {
                    match self.ctx.rendezvous(*id, *users, *timeout).await {
                        Some(at) => {
                            intended = intended.max(at);
                            released = Some(at);
                        }
                        None => return None,
                    }
                }
                StepProg::Request(r) => {
                    let (end, t_end) = self.request(r, intended, released.take()).await;
                    match end {
                        StepEnd::Ok => {}
                        StepEnd::Failed => {
                            self.ctx.rec.borrow_mut().session_ended(journey, false, 0);
                            return Some(false);
                        }
                        StepEnd::Stopped => return None,
                    }
                    intended = t_end;
                    let think = prog.clients[self.client].think.as_ref().map(|t| {
                        let ts = self.ctx.plan.time_scale;
                        t.sample(&mut self.rng, ts)
                    });
                    if let Some(d) = think {
                        if !d.is_zero() {
                            intended = t_end + d;
                            if !self.ctx.sleep_on_time(intended).await {
                                return None;
                            }
                        }
                    }
                }
            }
        }
        let took = Instant::now().saturating_duration_since(arrived);
        self.ctx
            .rec
            .borrow_mut()
            .session_ended(journey, true, took.as_micros() as u64);
        Some(true)
    }

    fn build(&mut self, r: &RequestProg) -> Result<(::http::Request<ReqBody>, u64), ErrorKind> {
        let prog = self.prog.clone();
        let client = &prog.clients[self.client];
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if self.conn.as_ref().is_some_and(Conn::is_h2)
            || client.http == crate::scenario::model::HttpVersion::H2
        {
            buf.extend_from_slice(if prog.target.https {
                b"https://"
            } else {
                b"http://"
            });
            buf.extend_from_slice(prog.target.authority.as_bytes());
        }
        self.render_target(r, &mut buf);
        let uri = ::http::Uri::from_maybe_shared(Bytes::copy_from_slice(&buf));
        self.buf = buf;
        let uri = uri.map_err(|_| ErrorKind::Protocol)?;
        let body: Bytes = match &r.body {
            BodyProg::None => Bytes::new(),
            _ => {
                let mut out = Vec::with_capacity(128);
                self.render_body(r, &mut out);
                out.into()
            }
        };
        let mut req = ::http::Request::new(Full::new(body.clone()));
        *req.method_mut() = r.method.clone();
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.reserve(client.headers.len() + r.headers.len() + 3);
        if client.http != crate::scenario::model::HttpVersion::H2 {
            h.insert(HOST, prog.target_host_header.clone());
        }
        let mut tmp = Vec::new();
        for (name, v) in client.headers.iter().chain(r.headers.iter()) {
            let value = match v {
                HeaderTpl::Static(v) => v.clone(),
                HeaderTpl::Dynamic(b) => {
                    tmp.clear();
                    b.render(self, Escape::None, &mut tmp);
                    HeaderValue::from_bytes(&tmp).map_err(|_| ErrorKind::Protocol)?
                }
            };
            h.insert(name.clone(), value);
        }
        if !h.contains_key(USER_AGENT) {
            h.insert(
                USER_AGENT,
                HeaderValue::from_static(concat!("flashcrowd/", env!("CARGO_PKG_VERSION"))),
            );
        }
        if let Some(ct) = &r.content_type {
            if !h.contains_key(CONTENT_TYPE) {
                h.insert(CONTENT_TYPE, ct.clone());
            }
        }
        if !body.is_empty() {
            h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok((req, body.len() as u64))
    }

    async fn obtain(&mut self) -> Result<Conn, ErrorKind> {
        let client = &self.prog.clients[self.client];
        let dial = self.ctx.dial(self.client);
        match client.connection {
            ConnectionMode::PerUser => match self.conn.take() {
                Some(c) if c.is_open() => Ok(c),
                _ => http::connect(&self.prog, client.http, client.lean, dial).await,
            },
            ConnectionMode::Fresh => {
                http::connect(&self.prog, client.http, client.lean, dial).await
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
                http::connect(&self.prog, client.http, client.lean, dial).await
            }
        }
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

    /// Appends the request target: the path (base path included) and the query, URL-encoded.
    fn render_target(&mut self, r: &RequestProg, out: &mut Vec<u8>) {
        let start = out.len();
        r.path.render(self, Escape::None, out);
        let mut has_q = out[start..].contains(&b'?');
        for (k, v) in &r.query {
            out.push(if has_q { b'&' } else { b'?' });
            has_q = true;
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            v.render(self, Escape::Url, out);
        }
    }

    /// Appends the request body: JSON, a URL-encoded form, or raw text.
    fn render_body(&mut self, r: &RequestProg, out: &mut Vec<u8>) {
        match &r.body {
            BodyProg::None => {}
            BodyProg::Json(j) => j.render(self, out),
            BodyProg::Raw(b) => b.render(self, Escape::None, out),
            BodyProg::Form(fields) => {
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(b'&');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    v.render(self, Escape::Url, out);
                }
            }
        }
    }

    /// Serializes a request for the lean path into `out` (unless it is fully pre-serialized).
    fn build_wire(&mut self, r: &RequestProg, out: &mut Vec<u8>) -> Result<(), ErrorKind> {
        let w = &r.wire[self.client];
        out.clear();
        out.extend_from_slice(r.method.as_str().as_bytes());
        out.push(b' ');
        let line_start = out.len();
        self.render_target(r, out);
        // A rendered value must not break the request line (no request smuggling).
        if out[line_start..]
            .iter()
            .any(|b| *b == b' ' || *b == b'\r' || *b == b'\n')
        {
            return Err(ErrorKind::Protocol);
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(&w.head);
        for (name, b) in &w.dynamic {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            let at = out.len();
            b.render(self, Escape::None, out);
            if out[at..].iter().any(|b| *b == b'\r' || *b == b'\n') {
                return Err(ErrorKind::Protocol);
            }
            out.extend_from_slice(b"\r\n");
        }
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        self.render_body(r, &mut body);
        super::compile::finish_head(out, &r.method, &body);
        self.body = body;
        Ok(())
    }

    async fn request(
        &mut self,
        r: &RequestProg,
        intended: Instant,
        released: Option<Instant>,
    ) -> (StepEnd, Instant) {
        let phase = self.ctx.plan.phase_index_at(
            intended
                .saturating_duration_since(self.ctx.start)
                .as_secs_f64(),
        );
        let lean = self.prog.clients[self.client].lean;
        // Serialize before the clock starts: rendering is the generator's work, not the target's.
        let mut wire = std::mem::take(&mut self.wire);
        let full = r.wire.get(self.client).and_then(|w| w.full.as_ref());
        let (built, bytes_out): (Result<Option<::http::Request<ReqBody>>, ErrorKind>, u64) = if lean
        {
            match full {
                Some(f) => (Ok(None), f.len() as u64),
                None => match self.build_wire(r, &mut wire) {
                    Ok(()) => (Ok(None), wire.len() as u64),
                    Err(k) => (Err(k), 0),
                },
            }
        } else {
            match self.build(r) {
                Ok((req, n)) => (Ok(Some(req)), n),
                Err(k) => (Err(k), 0),
            }
        };
        let t_send = Instant::now();
        // An arrival may leave a little early (see `shard::Waker`): it is measured from when it
        // was sent, never from a later plan instant.
        let intended = intended.min(t_send);
        let mut sample = Sample {
            request: r.endpoint,
            client: self.client,
            phase,
            latency_us: 0,
            service_us: 0,
            ttfb_us: None,
            status: None,
            error: None,
            bytes_in: 0,
            bytes_out,
        };
        let failed = |kind| http::Failed {
            kind,
            head_at: None,
            status: None,
            bytes_in: 0,
        };
        let keep = r.needs_body;
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let outcome: Result<(u16, Instant, u64), http::Failed> = match built {
            Err(k) => Err(failed(k)),
            Ok(req) => {
                let max_body = self.prog.max_body;
                let stop = self.ctx.clone();
                let is_head = r.method == ::http::Method::HEAD;
                let bytes: &[u8] = match full {
                    Some(f) => f,
                    None => &wire,
                };
                let fut = async {
                    let mut conn = self.obtain().await.map_err(failed)?;
                    let res = match (&mut conn, req) {
                        (Conn::Lean(c), None) => {
                            let reused = c.used > 0;
                            let mut res = c
                                .exchange(bytes, is_head, keep.then_some(&mut body), max_body)
                                .await;
                            // A kept-alive connection the server closed while idle: reconnect
                            // once, as any client would, and send again.
                            if let Err(f) = &res {
                                if reused && f.kind == ErrorKind::Reset && f.head_at.is_none() {
                                    conn = self.reconnect().await.map_err(failed)?;
                                    if let Conn::Lean(c) = &mut conn {
                                        body.clear();
                                        res = c
                                            .exchange(
                                                bytes,
                                                is_head,
                                                keep.then_some(&mut body),
                                                max_body,
                                            )
                                            .await;
                                    }
                                }
                            }
                            res.map(|rep| (rep.status, rep.head_at, rep.bytes_in))
                        }
                        (c, Some(req)) => http::exchange(c, req, keep, max_body).await.map(|rep| {
                            if let Some(b) = rep.body {
                                body = b;
                            }
                            (rep.status, rep.head_at, rep.bytes_in)
                        }),
                        (_, None) => Err(failed(ErrorKind::Protocol)),
                    };
                    if res.is_ok() {
                        self.release(conn);
                    }
                    res
                };
                tokio::select! {
                    res = tokio::time::timeout(r.timeout, fut) => match res {
                        Ok(r) => r,
                        Err(_) => Err(failed(ErrorKind::Timeout)),
                    },
                    _ = stop.hard_stopped() => {
                        self.wire = wire;
                        self.body = body;
                        return (StepEnd::Stopped, Instant::now());
                    }
                }
            }
        };
        self.wire = wire;
        // The pooled connection is back in the pool (or gone): free its slot.
        self.permit = None;
        let t_end = Instant::now();
        sample.latency_us = t_end.saturating_duration_since(intended).as_micros() as u64;
        sample.service_us = t_end.saturating_duration_since(t_send).as_micros() as u64;
        let lag = t_send.saturating_duration_since(intended).as_micros() as u64;
        let ok = match outcome {
            Err(f) => {
                self.conn = None;
                sample.error = Some(f.kind);
                sample.status = f.status;
                sample.bytes_in = f.bytes_in;
                sample.ttfb_us = f
                    .head_at
                    .map(|h| h.saturating_duration_since(t_send).as_micros() as u64);
                false
            }
            Ok((status, head_at, bytes_in)) => {
                sample.status = Some(status);
                sample.bytes_in = bytes_in;
                sample.ttfb_us = Some(head_at.saturating_duration_since(t_send).as_micros() as u64);
                sample.error = self.check(r, status, keep.then_some(body.as_slice()));
                sample.error.is_none()
            }
        };
        self.body = body;
        {
            let mut rec = self.ctx.rec.borrow_mut();
            rec.record(&sample);
            rec.record_lag(lag);
            if let Some(at) = released {
                let _ = rec
                    .burst
                    .record((t_send.saturating_duration_since(at).as_micros() as u64).max(1));
            }
        }
        (if ok { StepEnd::Ok } else { StepEnd::Failed }, t_end)
    }

    /// A new connection for this session's client, replacing a stale one.
    async fn reconnect(&mut self) -> Result<Conn, ErrorKind> {
        let client = &self.prog.clients[self.client];
        let dial = self.ctx.dial(self.client);
        http::connect(&self.prog, client.http, client.lean, dial).await
    }

    /// Status, expectations and captures; the error kind if any fails.
    fn check(&mut self, r: &RequestProg, status: u16, body: Option<&[u8]>) -> Option<ErrorKind> {
        let status_kind = || {
            if status >= 500 {
                ErrorKind::Http5xx
            } else if status >= 400 {
                ErrorKind::Http4xx
            } else {
                ErrorKind::ExpectFailed
            }
        };
        match &r.expect.status {
            Some(codes) => {
                if !codes.contains(&status) {
                    return Some(status_kind());
                }
            }
            None => {
                if status >= 400 {
                    return Some(status_kind());
                }
            }
        }
        if !r.needs_body {
            return None;
        }
        let body = body.unwrap_or(&[]);
        if let Some(c) = &r.expect.contains {
            let needle = c.as_bytes();
            if !needle.is_empty() && !body.windows(needle.len()).any(|w| w == needle) {
                return Some(ErrorKind::ExpectFailed);
            }
        }
        if r.expect.json.is_empty() && r.captures.is_empty() {
            return None;
        }
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Some(if r.expect.json.is_empty() {
                ErrorKind::CaptureFailed
            } else {
                ErrorKind::ExpectFailed
            });
        };
        for (path, want) in &r.expect.json {
            let got = path.query(&doc);
            let matches = match got.first() {
                Some(v) => v == want || json_loose_eq(v, want),
                None => false,
            };
            if !matches {
                return Some(ErrorKind::ExpectFailed);
            }
        }
        for (idx, path) in &r.captures {
            match path.query(&doc).first() {
                Some(serde_json::Value::String(s)) => self.vars[*idx] = s.clone(),
                Some(v) => self.vars[*idx] = v.to_string(),
                None => return Some(ErrorKind::CaptureFailed),
            }
        }
        None
    }
}

/// `expect: { json: { $.id: "42" } }` matches 42 too: YAML authors rarely mean the type.
fn json_loose_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(n), String(s)) | (String(s), Number(n)) => n.to_string() == *s,
        (Bool(x), String(s)) | (String(s), Bool(x)) => x.to_string() == *s,
        _ => false,
    }
}

/// An open-model arrival: one session, one journey.
pub async fn arrival(ctx: Rc<ShardCtx>, index: u64, due: Instant) {
    let mut guard = InFlight::new(&ctx);
    // Woken a little early (see `shard::Waker`): the session starts now, not at a later instant.
    let due = due.min(Instant::now());
    let phase = ctx
        .plan
        .phase_index_at(due.saturating_duration_since(ctx.start).as_secs_f64());
    let mut s = Session::new(&ctx, index, phase);
    let j = s.pick_journey(phase);
    if s.journey(j, due).await.is_some() {
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
        .phase_index_at(now.saturating_duration_since(ctx.start).as_secs_f64());
    let mut s = Session::new(&ctx, index, phase);
    let mut next = now;
    loop {
        if retired.get() || ctx.stopping() {
            guard.done = true;
            return;
        }
        let phase = ctx
            .plan
            .phase_index_at(next.saturating_duration_since(ctx.start).as_secs_f64());
        let j = s.pick_journey(phase);
        match s.journey(j, next).await {
            None => return,
            Some(true) => next = Instant::now(),
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
