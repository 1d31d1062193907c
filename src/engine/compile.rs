//! Turns a validated scenario into a `Program`: everything the hot path needs, resolved once —
//! templates bound to indices, header names parsed, JSONPaths compiled, data files read, client
//! and journey picks as cumulative tables, request names numbered for the recorder.

use crate::plan::Plan;
use crate::scenario::model::{ConnectionMode, HttpVersion, Pick, Step, Think};
use crate::scenario::validate::{during_entry, journey_during};
use crate::scenario::Loaded;
use crate::template::{Bound, BoundJson, JsonBody, Scope, Template};
use http::header::{HeaderName, HeaderValue};
use http::Method;
use rand::Rng;
use serde_json_path::JsonPath;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Where requests go: resolved once before the run.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub https: bool,
    /// Host header value (`host` or `host:port`).
    pub authority: String,
    /// Host name for TLS server name.
    pub host: String,
    /// The first address the host resolved to before the run.
    pub addr: SocketAddr,
    /// Every address it resolves to, now (re-resolved during the run: `resolve.rs`).
    pub addrs: Arc<super::resolve::Addrs>,
    /// Path prefix of the target URL, without a trailing slash ("" for none).
    pub base_path: String,
}

impl Target {
    /// Parses the URL and resolves its host (again during the run when `opts` says so).
    pub fn resolve(url: &str, opts: &super::resolve::ResolveOpts) -> Result<Target, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("target `{url}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "target `{url}` must start with http:// or https://"
                ))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("target `{url}` has no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_string())
            .unwrap_or_default();
        let addrs = super::resolve::Addrs::resolve(&host, port, opts)?;
        let addr = addrs.pick(0);
        let base_path = uri.path().trim_end_matches('/').to_string();
        Ok(Target {
            url: url.to_string(),
            https,
            authority,
            host,
            addr,
            addrs: Arc::new(addrs),
            base_path,
        })
    }
}

#[derive(Debug, Clone)]
pub enum ThinkDist {
    Constant(Duration),
    Uniform(Duration, Duration),
    /// ln X ~ N(mu, sigma), in seconds.
    Lognormal {
        mu: f64,
        sigma: f64,
    },
}

impl ThinkDist {
    fn from_model(t: &Think) -> ThinkDist {
        match t {
            Think::Constant(d) => ThinkDist::Constant(d.0),
            Think::Uniform([a, b]) => ThinkDist::Uniform(a.0.min(b.0), a.0.max(b.0)),
            Think::Lognormal { median, p90 } => {
                let mu = median.as_secs_f64().max(1e-6).ln();
                let sigma = ((p90.as_secs_f64().max(1e-6).ln() - mu) / 1.281_551_565_5).max(0.0);
                ThinkDist::Lognormal { mu, sigma }
            }
        }
    }

    pub fn sample(&self, rng: &mut impl Rng, time_scale: f64) -> Duration {
        let secs = match self {
            ThinkDist::Constant(d) => d.as_secs_f64(),
            ThinkDist::Uniform(a, b) => rng.gen_range(a.as_secs_f64()..=b.as_secs_f64()),
            ThinkDist::Lognormal { mu, sigma } => {
                let n: f64 = rng.sample(rand_distr::StandardNormal);
                (mu + sigma * n).exp().min(3600.0)
            }
        };
        Duration::from_secs_f64((secs * time_scale).max(0.0))
    }
}

pub struct ClientProg {
    pub name: String,
    pub http: HttpVersion,
    pub connection: ConnectionMode,
    pub headers: Vec<(HeaderName, HeaderTpl)>,
    pub think: Option<ThinkDist>,
    /// Plain-text HTTP/1.1: requests go through the lean path (`h1.rs`), not hyper.
    pub lean: bool,
    /// `connection: shared` over HTTP/1.1: most connections per shard.
    pub pool: usize,
    /// Close connections with SO_LINGER 0.
    pub linger0: bool,
    /// The emulated network its connections cross (`transport::network`); None: none.
    pub network: Option<super::transport::network::Profile>,
    /// That network as the report states it.
    pub network_text: Option<String>,
    /// Per phase, the journeys this client may take there: (journey index, cumulative share
    /// 0..=1). A journey limited by `during` is in the lists of its phases only.
    pub journeys: Vec<Vec<(usize, f64)>>,
}

pub enum BodyProg {
    None,
    Json(BoundJson),
    Form(Vec<(String, Bound)>),
    Raw(Bound),
}

pub struct ExpectProg {
    pub status: Option<Vec<u16>>,
    pub json: Vec<(JsonPath, serde_json::Value)>,
    pub contains: Option<String>,
}

pub struct RequestProg {
    /// Recorder index: one per (journey, request name).
    pub endpoint: usize,
    pub method: Method,
    /// Path and any query written in the URL template (base path included).
    pub path: Bound,
    pub query: Vec<(String, Bound)>,
    pub headers: Vec<(HeaderName, HeaderTpl)>,
    pub body: BodyProg,
    pub content_type: Option<HeaderValue>,
    pub timeout: Duration,
    pub captures: Vec<(usize, JsonPath)>,
    pub expect: ExpectProg,
    /// The body must be kept (for capture or expect), not only counted.
    pub needs_body: bool,
    /// For the lean HTTP/1.1 path: the serialized head per client (empty for other clients).
    pub wire: Vec<WireHead>,
}

impl RequestProg {
    /// Does the request, as `client` sends it, read the wall clock (`now_ms()` anywhere)? Then it
    /// is rendered as it is sent, not armed ahead of a release.
    pub fn reads_clock(&self, client: &ClientProg) -> bool {
        let header = |h: &HeaderTpl| matches!(h, HeaderTpl::Dynamic(b) if b.reads_clock());
        self.path.reads_clock()
            || self.query.iter().any(|(_, b)| b.reads_clock())
            || self
                .headers
                .iter()
                .chain(&client.headers)
                .any(|(_, h)| header(h))
            || match &self.body {
                BodyProg::None => false,
                BodyProg::Json(j) => j.reads_clock(),
                BodyProg::Form(f) => f.iter().any(|(_, b)| b.reads_clock()),
                BodyProg::Raw(b) => b.reads_clock(),
            }
    }
}

/// A request head pre-serialized for one client: everything after the request line that does not
/// change between requests, the headers that do, and — when nothing changes at all — the whole
/// request.
#[derive(Default)]
pub struct WireHead {
    /// `Host`, static headers, `User-Agent`, `Content-Type`, each ending in CRLF.
    pub head: Vec<u8>,
    pub dynamic: Vec<(HeaderName, Bound)>,
    /// The complete request bytes when the path, headers and body are all fixed.
    pub full: Option<Vec<u8>>,
}

/// When an SSE step is done reading.
#[derive(Debug, Clone, PartialEq)]
pub enum UntilProg {
    /// When the server ends the stream.
    End,
    Event(String),
    Events(u64),
    For(Duration),
}

/// A stream step: its opening request (GET, path, query, headers, timeout, `expect.status`;
/// `expect.first` is held in `req.expect.json` and, with the captures, applies to the first
/// message or event), and what the stream does after the open.
pub struct StreamProg {
    pub kind: crate::scenario::model::StreamKind,
    pub req: RequestProg,
    /// WebSocket: the message sent on open and every `every`.
    pub send: Option<Bound>,
    pub every: Option<Duration>,
    /// WebSocket: how long to stay connected (None: until the server closes).
    pub hold: Option<Duration>,
    pub until: UntilProg,
    /// `expect.first` or captures: the first message or event is parsed as JSON and checked.
    pub checks_first: bool,
}

pub enum StepProg {
    Request(Box<RequestProg>),
    Stream(Box<StreamProg>),
    Think(Duration),
    /// `wait: sale-start` or `wait: MOMENT`: hold until this many seconds into the run.
    WaitUntil(f64),
    Rendezvous {
        id: usize,
        users: u64,
        timeout: Duration,
    },
}

pub struct JourneyProg {
    pub name: String,
    pub steps: Vec<StepProg>,
    pub n_vars: usize,
    /// Data sets the journey's templates use.
    pub data_sets: Vec<usize>,
}

pub struct DataTable {
    pub name: String,
    pub columns: Vec<String>,
    pub n_rows: usize,
    pub cells: Vec<String>,
    pub pick: Pick,
}

impl DataTable {
    #[inline]
    pub fn cell(&self, row: usize, col: usize) -> &str {
        &self.cells[row * self.columns.len() + col]
    }
}

/// A request name as reported: the name and the journey it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub name: String,
    pub journey: usize,
}

pub struct Program {
    pub scenario_name: String,
    pub target: Target,
    pub clients: Vec<ClientProg>,
    /// Per phase: cumulative client shares.
    pub client_pick: Vec<Vec<f64>>,
    pub journeys: Vec<JourneyProg>,
    pub endpoints: Vec<Endpoint>,
    pub phases: Vec<String>,
    pub data: Vec<DataTable>,
    pub rendezvous: Vec<String>,
    pub max_body: u64,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub tls_h2: Option<Arc<rustls::ClientConfig>>,
    /// Host header value for HTTP/1.1.
    pub target_host_header: HeaderValue,
    /// Local addresses to connect from, in turn (`--source-ips`); empty: the kernel chooses.
    pub source_ips: Vec<std::net::IpAddr>,
    /// Requests a load source fixes (a replay): recorded under the `replay` journey.
    pub fixed: Option<FixedProg>,
}

/// Where a load source's fixed requests are recorded, and how long they may take.
pub struct FixedProg {
    /// The `replay` journey's index.
    pub journey: usize,
    /// The endpoint of `Plan::fixed_names[0]`; the others follow in order.
    pub endpoint_base: usize,
    pub timeout: Duration,
}

/// A load source's fixed request, compiled for `client`: literal path, body and headers (the
/// client's headers first, the recorded ones over them), no expectations beyond the status.
pub fn fixed_request(
    prog: &Program,
    fixed: &FixedProg,
    client: usize,
    f: &crate::plan::FixedRequest,
) -> Result<RequestProg, crate::metrics::ErrorKind> {
    use crate::template::Part;
    let bad = crate::metrics::ErrorKind::Protocol;
    let scope = JourneyScope {
        data: &prog.data,
        vars: &[],
    };
    let literal = |text: String| {
        Template {
            parts: vec![Part::Lit(text)],
        }
        .bind(&scope)
        .map_err(|_| bad)
    };
    let method = Method::from_bytes(f.method.as_bytes()).map_err(|_| bad)?;
    let headers = f
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderTpl::Static(HeaderValue::from_str(v).ok()?),
            ))
        })
        .collect();
    let body = if f.body.is_empty() {
        BodyProg::None
    } else {
        BodyProg::Raw(literal(String::from_utf8_lossy(&f.body).into_owned())?)
    };
    let mut r = RequestProg {
        endpoint: fixed.endpoint_base + f.name as usize,
        method,
        path: literal(format!("{}{}", prog.target.base_path, f.target))?,
        query: Vec::new(),
        headers,
        body,
        content_type: None,
        timeout: fixed.timeout,
        captures: Vec::new(),
        expect: ExpectProg {
            status: None,
            json: Vec::new(),
            contains: None,
        },
        needs_body: false,
        wire: Vec::new(),
    };
    let c = &prog.clients[client];
    if c.lean {
        r.wire = (0..prog.clients.len())
            .map(|_| WireHead::default())
            .collect();
        r.wire[client] = wire_head(c, &r, &prog.target);
    }
    Ok(r)
}

impl Program {
    /// The names behind the recorder's indices.
    pub fn catalog(&self, plan: &Plan) -> crate::metrics::Catalog {
        use crate::metrics::catalog::{EndpointName, PhaseSpan};
        crate::metrics::Catalog {
            endpoints: self
                .endpoints
                .iter()
                .map(|e| EndpointName {
                    name: e.name.clone(),
                    journey: e.journey,
                })
                .collect(),
            journeys: self.journeys.iter().map(|j| j.name.clone()).collect(),
            clients: self.clients.iter().map(|c| c.name.clone()).collect(),
            networks: self
                .clients
                .iter()
                .map(|c| c.network_text.clone())
                .collect(),
            phases: plan
                .phases
                .iter()
                .map(|p| PhaseSpan {
                    name: p.name.clone(),
                    start_s: p.start,
                    end_s: p.end,
                })
                .collect(),
        }
    }
}

/// Connections per shard for `connection: shared` (HTTP/1.1) unless a client sets `pool`.
pub const DEFAULT_POOL: usize = 256;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_BODY: u64 = 10 * 1024 * 1024;

struct JourneyScope<'a> {
    data: &'a [DataTable],
    vars: &'a [String],
}

impl Scope for JourneyScope<'_> {
    fn data_column(&self, set: &str, column: &str) -> Option<(usize, usize)> {
        let s = self.data.iter().position(|d| d.name == set)?;
        let c = self.data[s].columns.iter().position(|c| c == column)?;
        Some((s, c))
    }
    fn var(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v == name)
    }
}

fn compile_t(src: &str, scope: &JourneyScope, what: &str) -> Result<Bound, String> {
    let t = Template::compile(src).map_err(|e| format!("{what}: {}", e.message))?;
    t.bind(scope).map_err(|e| format!("{what}: {e}"))
}

/// A header value: fixed at compile time, or rendered per request.
#[derive(Clone)]
pub enum HeaderTpl {
    Static(HeaderValue),
    Dynamic(Bound),
}

fn header_tpl(
    k: &str,
    v: &str,
    scope: &JourneyScope,
    what: &str,
) -> Result<(HeaderName, HeaderTpl), String> {
    let name = HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| format!("{what}: `{k}` is not a valid header name"))?;
    let b = compile_t(v, scope, &format!("{what}.{k}"))?;
    let t = match b.literal() {
        Some(lit) => HeaderTpl::Static(
            HeaderValue::from_bytes(lit)
                .map_err(|_| format!("{what}.{k}: the value is not a valid header value"))?,
        ),
        None => HeaderTpl::Dynamic(b),
    };
    Ok((name, t))
}

fn header_list(
    list: &[(&String, &String)],
    scope: &JourneyScope,
) -> Result<Vec<(HeaderName, HeaderTpl)>, String> {
    list.iter()
        .map(|(k, v)| header_tpl(k, v, scope, "headers"))
        .collect()
}

/// Loads the CSV files the scenario names.
fn load_data(loaded: &Loaded) -> Result<Vec<DataTable>, String> {
    let mut out = Vec::new();
    for (name, ds) in &loaded.scenario.data {
        let path = loaded.base_dir.join(&ds.csv);
        let mut rdr = csv::Reader::from_path(&path)
            .map_err(|e| format!("data `{name}`: cannot read {}: {e}", path.display()))?;
        let columns: Vec<String> = rdr
            .headers()
            .map_err(|e| format!("data `{name}`: {}: {e}", path.display()))?
            .iter()
            .map(|s| s.trim().to_string())
            .collect();
        let mut cells = Vec::new();
        let mut n_rows = 0;
        for (i, rec) in rdr.records().enumerate() {
            let rec =
                rec.map_err(|e| format!("data `{name}`: {} row {}: {e}", path.display(), i + 2))?;
            if rec.len() != columns.len() {
                return Err(format!(
                    "data `{name}`: {} line {} has {} fields, the header has {}",
                    path.display(),
                    i + 2,
                    rec.len(),
                    columns.len()
                ));
            }
            cells.extend(rec.iter().map(str::to_string));
            n_rows += 1;
        }
        if n_rows == 0 {
            return Err(format!("data `{name}`: {} has no rows", path.display()));
        }
        out.push(DataTable {
            name: name.clone(),
            columns,
            n_rows,
            cells,
            pick: ds.pick,
        });
    }
    Ok(out)
}

/// Compiles the scenario for one run. `plan` supplies phase names and the time scale.
pub fn compile(loaded: &Loaded, target_url: &str, plan: &Plan) -> Result<Program, String> {
    compile_with(loaded, target_url, plan, &Default::default())
}

/// `compile`, with the target's name resolved as `resolve` says.
pub fn compile_with(
    loaded: &Loaded,
    target_url: &str,
    plan: &Plan,
    resolve: &super::resolve::ResolveOpts,
) -> Result<Program, String> {
    let sc = &loaded.scenario;
    let target = Target::resolve(target_url, resolve)?;
    let data = load_data(loaded)?;
    let phases: Vec<String> = plan.phases.iter().map(|p| p.name.clone()).collect();
    let default_timeout = sc.defaults.timeout.map(|d| d.0).unwrap_or(DEFAULT_TIMEOUT);

    // Clients: an implicit `default` client when none is declared.
    let client_defs: Vec<(String, Option<&crate::scenario::model::Client>)> =
        if sc.clients.is_empty() {
            vec![("default".to_string(), None)]
        } else {
            sc.clients
                .iter()
                .map(|(n, c)| (n.clone(), Some(c)))
                .collect()
        };

    let mut endpoints: Vec<Endpoint> = Vec::new();
    let mut rendezvous: Vec<String> = Vec::new();
    let mut journeys = Vec::new();
    for (ji, (jname, j)) in sc.journeys.iter().enumerate() {
        let vars: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for s in &j.steps {
                for k in s.capture.keys() {
                    if !v.contains(k) {
                        v.push(k.clone());
                    }
                }
            }
            v
        };
        let scope = JourneyScope {
            data: &data,
            vars: &vars,
        };
        let mut steps = Vec::new();
        let used_sets = std::cell::RefCell::new(Vec::new());
        for (si, s) in j.steps.iter().enumerate() {
            let where_ = format!("journeys.{jname}.steps[{si}]");
            let step = compile_step(
                s,
                &scope,
                &where_,
                &target,
                default_timeout,
                ji,
                &mut endpoints,
                &mut rendezvous,
                &used_sets,
                &vars,
                plan,
            )?;
            steps.push(step);
        }
        journeys.push(JourneyProg {
            name: jname.clone(),
            steps,
            n_vars: vars.len(),
            data_sets: used_sets.into_inner(),
        });
    }

    let fixed = (!plan.fixed_names.is_empty()).then(|| {
        journeys.push(JourneyProg {
            name: "replay".into(),
            steps: Vec::new(),
            n_vars: 0,
            data_sets: Vec::new(),
        });
        let journey = journeys.len() - 1;
        let endpoint_base = endpoints.len();
        endpoints.extend(plan.fixed_names.iter().map(|n| Endpoint {
            name: n.clone(),
            journey,
        }));
        FixedProg {
            journey,
            endpoint_base,
            timeout: default_timeout,
        }
    });
    if fixed.is_none() && journeys.is_empty() {
        return Err("the scenario has no journeys".into());
    }
    let empty = JourneyScope {
        data: &data,
        vars: &[],
    };
    let default_headers: Vec<(&String, &String)> = sc.defaults.headers.iter().collect();
    let mut clients = Vec::new();
    for (name, c) in &client_defs {
        let mut hdrs = default_headers.clone();
        if let Some(c) = c {
            for (k, v) in &c.headers {
                hdrs.retain(|(dk, _)| !dk.eq_ignore_ascii_case(k));
                hdrs.push((k, v));
            }
        }
        // Journeys this client may take in each phase, shares renormalized among them.
        let journeys_cum = phases
            .iter()
            .map(|phase| {
                let allowed: Vec<(usize, f64)> = sc
                    .journeys
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, j))| {
                        j.clients.as_ref().is_none_or(|cs| cs.contains(name))
                            && journey_during(j.during.as_deref(), phase)
                    })
                    .map(|(i, (_, j))| (i, j.share.0))
                    .collect();
                let sum: f64 = allowed.iter().map(|a| a.1).sum();
                let mut acc = 0.0;
                allowed
                    .iter()
                    .map(|(i, s)| {
                        acc += s / sum;
                        (*i, acc)
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        if journeys_cum.iter().all(Vec::is_empty) && !sc.journeys.is_empty() {
            return Err(format!("client `{name}` may take no journey"));
        }
        let network = c
            .and_then(|c| c.network.as_ref())
            .map(|n| n.figures())
            .map(|f| super::transport::network::Profile {
                rtt: f.rtt,
                jitter: f.jitter,
                down_bps: f.down_bps,
                up_bps: f.up_bps,
            });
        clients.push(ClientProg {
            name: name.clone(),
            http: c.map(|c| c.http).unwrap_or_default(),
            connection: c.map(|c| c.connection).unwrap_or_default(),
            headers: header_list(&hdrs, &empty)?,
            think: c.and_then(|c| c.think.as_ref()).map(ThinkDist::from_model),
            // An emulated network sits between the socket and the transport: hyper's HTTP/1.1
            // takes the shaped stream, and the lean path stays tied to a bare socket.
            lean: !target.https
                && c.map(|c| c.http).unwrap_or_default() == HttpVersion::H1
                && network.is_none(),
            network_text: c.and_then(|c| c.network.as_ref()).map(|n| n.describe()),
            network,
            pool: c
                .and_then(|c| c.pool)
                .map(|p| p as usize)
                .unwrap_or(DEFAULT_POOL)
                .max(1),
            linger0: c.is_some_and(|c| c.reset_on_close),
            journeys: journeys_cum,
        });
    }

    for j in journeys.iter_mut() {
        for step in j.steps.iter_mut() {
            if let StepProg::Request(r) = step {
                r.wire = clients
                    .iter()
                    .map(|c| {
                        if c.lean {
                            wire_head(c, r, &target)
                        } else {
                            WireHead::default()
                        }
                    })
                    .collect();
            }
        }
    }

    let client_pick = phases
        .iter()
        .map(|p| {
            let shares: Vec<f64> = client_defs
                .iter()
                .map(|(_, c)| match c {
                    None => 1.0,
                    Some(c) => during_entry(&c.during, p).unwrap_or(&c.share).0,
                })
                .collect();
            let sum: f64 = shares.iter().sum::<f64>().max(1e-12);
            let mut acc = 0.0;
            shares
                .iter()
                .map(|s| {
                    acc += s / sum;
                    acc
                })
                .collect()
        })
        .collect();

    let needs_tls = target.https;
    let (tls, tls_h2) = if needs_tls {
        (
            Some(super::tls::client_config(loaded, &["http/1.1"])?),
            Some(super::tls::client_config(loaded, &["h2", "http/1.1"])?),
        )
    } else {
        (None, None)
    };

    let target_host_header = HeaderValue::from_str(&target.authority)
        .map_err(|_| format!("target `{}` has an invalid host", target.url))?;
    Ok(Program {
        fixed,
        source_ips: Vec::new(),
        target_host_header,
        scenario_name: sc.name.clone(),
        target,
        clients,
        client_pick,
        journeys,
        endpoints,
        phases,
        data,
        rendezvous,
        max_body: sc.defaults.max_body.unwrap_or(DEFAULT_MAX_BODY),
        tls,
        tls_h2,
    })
}

/// Remembers which data sets a journey's templates use (rows are picked per session).
fn note_sets(t: &Template, scope: &JourneyScope, used_sets: &std::cell::RefCell<Vec<usize>>) {
    for e in t.exprs() {
        if let crate::template::Expr::Data { set, .. } = e {
            if let Some(i) = scope.data.iter().position(|d| &d.name == set) {
                let mut u = used_sets.borrow_mut();
                if !u.contains(&i) {
                    u.push(i);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn compile_step(
    s: &Step,
    scope: &JourneyScope,
    where_: &str,
    target: &Target,
    default_timeout: Duration,
    journey: usize,
    endpoints: &mut Vec<Endpoint>,
    rendezvous: &mut Vec<String>,
    used_sets: &std::cell::RefCell<Vec<usize>>,
    vars: &[String],
    plan: &Plan,
) -> Result<StepProg, String> {
    let (time_scale, scale) = (plan.time_scale, plan.scale);
    if let Some(d) = s.think {
        return Ok(StepProg::Think(d.0.mul_f64(time_scale)));
    }
    if let Some(w) = &s.wait {
        return match plan.wait_instant(w) {
            Some(at) => Ok(StepProg::WaitUntil(at)),
            None => Err(format!("{where_}: unknown wait `{w}`")),
        };
    }
    if let Some(r) = &s.rendezvous {
        let id = match rendezvous.iter().position(|n| n == &r.name) {
            Some(i) => i,
            None => {
                rendezvous.push(r.name.clone());
                rendezvous.len() - 1
            }
        };
        return Ok(StepProg::Rendezvous {
            id,
            users: ((r.users as f64 * scale).round() as u64).max(1),
            timeout: r.timeout.0.mul_f64(time_scale),
        });
    }
    let stream = s.stream();
    let Some((method, url)) = s.request().or(stream.map(|(_, u)| ("GET", u))) else {
        return Err(format!(
            "{where_}: a step needs a request, a stream, think, wait or rendezvous"
        ));
    };
    let name = crate::scenario::request_name(s).unwrap_or_else(|| format!("{method} {url}"));
    let endpoint = match endpoints
        .iter()
        .position(|e| e.name == name && e.journey == journey)
    {
        Some(i) => i,
        None => {
            endpoints.push(Endpoint { name, journey });
            endpoints.len() - 1
        }
    };
    let full_url = if url.starts_with('/') {
        format!("{}{url}", target.base_path)
    } else {
        format!("{}/{url}", target.base_path)
    };
    let tc = |src: &str, what: &str| -> Result<Bound, String> {
        let t = Template::compile(src).map_err(|e| format!("{where_}.{what}: {}", e.message))?;
        note_sets(&t, scope, used_sets);
        t.bind(scope).map_err(|e| format!("{where_}.{what}: {e}"))
    };
    let path = tc(&full_url, "url")?;
    let query = s
        .query
        .iter()
        .map(|(k, v)| Ok((k.clone(), tc(v, "query")?)))
        .collect::<Result<Vec<_>, String>>()?;
    let mut headers = Vec::new();
    for (k, v) in &s.headers {
        let t = Template::compile(v).map_err(|e| format!("{where_}.headers.{k}: {}", e.message))?;
        note_sets(&t, scope, used_sets);
        headers.push(header_tpl(k, v, scope, &format!("{where_}.headers"))?);
    }
    let (body, content_type) = if let Some(j) = &s.json {
        let jb = JsonBody::compile(j).map_err(|e| format!("{where_}.json: {}", e.message))?;
        for t in jb.templates() {
            note_sets(t, scope, used_sets);
        }
        let b = jb.bind(scope).map_err(|e| format!("{where_}.json: {e}"))?;
        (
            BodyProg::Json(b),
            Some(HeaderValue::from_static("application/json")),
        )
    } else if let Some(f) = &s.form {
        let fields = f
            .iter()
            .map(|(k, v)| Ok((k.clone(), tc(v, "form")?)))
            .collect::<Result<Vec<_>, String>>()?;
        (
            BodyProg::Form(fields),
            Some(HeaderValue::from_static(
                "application/x-www-form-urlencoded",
            )),
        )
    } else if let Some(b) = &s.body {
        (BodyProg::Raw(tc(b, "body")?), None)
    } else {
        (BodyProg::None, None)
    };
    let captures = s
        .capture
        .iter()
        .map(|(var, path)| {
            let p = JsonPath::parse(path)
                .map_err(|e| format!("{where_}.capture.{var}: `{path}` is not JSONPath: {e}"))?;
            let idx = vars.iter().position(|v| v == var).expect("var collected");
            Ok((idx, p))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let expect = match &s.expect {
        None => ExpectProg {
            status: None,
            json: vec![],
            contains: None,
        },
        Some(e) => ExpectProg {
            status: e.status.as_ref().map(|s| s.codes()),
            // A stream step has no body: its `expect.first` is checked on the first message.
            json: (if stream.is_some() { &e.first } else { &e.json })
                .iter()
                .map(|(p, v)| {
                    let jp = JsonPath::parse(p).map_err(|err| {
                        format!("{where_}.expect.json: `{p}` is not JSONPath: {err}")
                    })?;
                    let jv = serde_json::to_value(v)
                        .map_err(|err| format!("{where_}.expect.json.{p}: {err}"))?;
                    Ok((jp, jv))
                })
                .collect::<Result<Vec<_>, String>>()?,
            contains: e.contains.clone(),
        },
    };
    let needs_body = stream.is_none()
        && (!captures.is_empty() || !expect.json.is_empty() || expect.contains.is_some());
    let checks_first = stream.is_some() && (!captures.is_empty() || !expect.json.is_empty());
    let req = RequestProg {
        endpoint,
        method: Method::from_bytes(method.as_bytes()).expect("known method"),
        path,
        query,
        headers,
        body,
        content_type,
        timeout: s.timeout.map(|d| d.0).unwrap_or(default_timeout),
        captures,
        expect,
        needs_body,
        wire: Vec::new(),
    };
    let Some((kind, _)) = stream else {
        return Ok(StepProg::Request(Box::new(req)));
    };
    let until = match &s.until {
        None => UntilProg::End,
        Some(u) => match (&u.event, u.events, u.for_) {
            (Some(e), _, _) => UntilProg::Event(e.clone()),
            (None, Some(n), _) => UntilProg::Events(n),
            (None, None, Some(d)) => UntilProg::For(d.0.mul_f64(time_scale)),
            (None, None, None) => UntilProg::End,
        },
    };
    let send = s.send.as_deref().map(|m| tc(m, "send")).transpose()?;
    Ok(StepProg::Stream(Box::new(StreamProg {
        kind,
        req,
        send,
        every: s.every.map(|d| d.0.mul_f64(time_scale)),
        hold: s.hold.map(|d| d.0.mul_f64(time_scale)),
        until,
        checks_first,
    })))
}

/// Serializes what it can of a request for a lean client, once.
fn wire_head(c: &ClientProg, r: &RequestProg, target: &Target) -> WireHead {
    let mut merged: Vec<(HeaderName, HeaderTpl)> = c
        .headers
        .iter()
        .filter(|(n, _)| !r.headers.iter().any(|(sn, _)| sn == n))
        .cloned()
        .collect();
    merged.extend(r.headers.iter().cloned());
    let mut head = Vec::with_capacity(128);
    head.extend_from_slice(b"Host: ");
    head.extend_from_slice(target.authority.as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut dynamic = Vec::new();
    for (name, v) in &merged {
        match v {
            HeaderTpl::Static(v) => {
                head.extend_from_slice(name.as_str().as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(v.as_bytes());
                head.extend_from_slice(b"\r\n");
            }
            HeaderTpl::Dynamic(b) => dynamic.push((name.clone(), b.clone())),
        }
    }
    if !merged.iter().any(|(n, _)| n == http::header::USER_AGENT) {
        head.extend_from_slice(
            concat!("user-agent: flashcrowd/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes(),
        );
    }
    if let Some(ct) = &r.content_type {
        if !merged.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
            head.extend_from_slice(b"content-type: ");
            head.extend_from_slice(ct.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    let body_fixed: Option<Vec<u8>> = match &r.body {
        BodyProg::None => Some(Vec::new()),
        BodyProg::Json(j) => j.literal().map(<[u8]>::to_vec),
        BodyProg::Raw(b) => b.literal().map(<[u8]>::to_vec),
        BodyProg::Form(_) => None,
    };
    let full = match (
        r.path.literal(),
        r.query.is_empty(),
        dynamic.is_empty(),
        body_fixed,
    ) {
        (Some(path), true, true, Some(body)) => {
            let mut out = Vec::with_capacity(head.len() + path.len() + body.len() + 64);
            write_request_line(&mut out, &r.method, path);
            out.extend_from_slice(&head);
            finish_head(&mut out, &r.method, &body);
            Some(out)
        }
        _ => None,
    };
    WireHead {
        head,
        dynamic,
        full,
    }
}

/// `METHOD path HTTP/1.1\r\n`
pub fn write_request_line(out: &mut Vec<u8>, method: &Method, path: &[u8]) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// Content-Length (when there is a body, or the method usually has one), the blank line, the body.
pub fn finish_head(out: &mut Vec<u8>, method: &Method, body: &[u8]) {
    if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}
