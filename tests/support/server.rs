//! A purpose-built HTTP/1.1 server for the engine's tests: keep-alive, answers `200 ok` at once
//! (`/bytes/N`: N bytes of `x`), records the instant each request's head arrived (per path), and
//! can freeze on a schedule.
//!
//! It runs on its own thread with a current-thread tokio runtime and stops when dropped.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A freeze schedule: the clock starts at the first request whose path starts with `prefix`
/// (so the engine's reachability probe does not start it). In every `period`, from `from` to
/// `from + len`, the server is frozen: every request that arrives then is answered when the
/// window ends, as a stop-the-world pause would. A closed-loop tool sends one request per user
/// into such a window and so hides it; an open-model tool keeps arriving and shows it.
#[derive(Debug, Clone, Copy)]
pub struct Freeze {
    pub prefix: &'static str,
    pub period: Duration,
    pub from: Duration,
    pub len: Duration,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The connection it came on: its number in `TestServer::accepts`.
    #[allow(dead_code)]
    pub conn: usize,
}

struct State {
    hits: Mutex<Vec<Hit>>,
    /// The instant each connection was accepted.
    accepted: Mutex<Vec<Instant>>,
    freeze: Option<Freeze>,
    epoch: OnceLock<Instant>,
}

impl State {
    /// How long a request arriving now must wait.
    fn hold(&self, path: &str, now: Instant) -> Duration {
        let Some(f) = self.freeze else {
            return Duration::ZERO;
        };
        if !path.starts_with(f.prefix) {
            return Duration::ZERO;
        }
        let epoch = *self.epoch.get_or_init(|| now);
        let into = now.duration_since(epoch).as_nanos() % f.period.as_nanos();
        let into = Duration::from_nanos(into as u64);
        if into >= f.from && into < f.from + f.len {
            f.from + f.len - into
        } else {
            Duration::ZERO
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    _server: super::ServerThread,
}

impl TestServer {
    /// A server that answers every request at once.
    pub fn start() -> TestServer {
        Self::with(None)
    }

    /// A server that freezes on `freeze`'s schedule.
    pub fn freezing(freeze: Freeze) -> TestServer {
        Self::with(Some(freeze))
    }

    fn with(freeze: Option<Freeze>) -> TestServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            hits: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            freeze,
            epoch: OnceLock::new(),
        });
        let served = state.clone();
        let server = super::ServerThread::start("test-server", move |stop_rx| {
            serve(listener, served, stop_rx)
        });
        TestServer {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The instants at which requests to exactly `path` arrived, in order.
    pub fn arrivals(&self, path: &str) -> Vec<Instant> {
        let hits = self.state.hits.lock().unwrap();
        hits.iter()
            .filter(|h| h.path == path)
            .map(|h| h.at)
            .collect()
    }

    /// The instants connections were accepted, in order.
    #[allow(dead_code)]
    pub fn accepts(&self) -> Vec<Instant> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// Every request seen so far, in arrival order.
    #[allow(dead_code)]
    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Requests received to paths starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        let hits = self.state.hits.lock().unwrap();
        hits.iter().filter(|h| h.path.starts_with(prefix)).count()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(_) => continue,
            },
        };
        let conn = {
            let mut accepted = state.accepted.lock().unwrap();
            accepted.push(Instant::now());
            accepted.len() - 1
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { answer(&state, conn, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
    conns.abort_all();
}

async fn answer(
    state: &State,
    conn: usize,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let now = Instant::now();
    let path = req.uri().path().to_string();
    let hold = state.hold(&path, now);
    let target = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_string());
    state.hits.lock().unwrap().push(Hit {
        path: path.clone(),
        at: now,
        method: req.method().to_string(),
        target,
        conn,
    });
    if !hold.is_zero() {
        tokio::time::sleep_until((now + hold).into()).await;
    }
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return Ok(Response::new(Full::new(Bytes::from(vec![
            b'x';
            n.min(1 << 24)
        ]))));
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}
