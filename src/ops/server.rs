//! The HTTP server on `--metrics-listen` (and `flashcrowd watch --listen`):
//!
//! - `GET /` the live page, `GET /api/state?from=N` its data (the seconds from N on),
//!   `GET /api/intervals?from=N` each second's interval histograms for watchers,
//!   `GET /report.html` the run's report once it is written;
//! - `GET /metrics` (Prometheus), `GET /control` (the steering in force, JSON);
//! - `POST /control/{pause,resume,stop,rate}`: only with the control token
//!   (`Authorization: Bearer TOKEN`), 401 without it. Reading needs no token.
//!
//! Every text served passes the run's redactor. Its own OS thread and current-thread runtime
//! (axum), so a slow reader never delays a shard or the collector.

use super::board::{Board, Redact};
use super::exporter::Exporter;
use super::{Command, Steer};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What one server serves. A watcher has no exporter and no steering (nothing to control).
#[derive(Clone)]
pub struct Routes {
    pub exporter: Option<Arc<Exporter>>,
    pub steer: Option<Arc<Steer>>,
    pub board: Arc<Board>,
    pub token: Option<String>,
    pub redact: Redact,
}

type AppState = Routes;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(s): State<AppState>) -> Response {
    match &s.exporter {
        Some(ex) => (
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            (s.redact)(&ex.render()),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no metrics here: this is a watcher\n",
        )
            .into_response(),
    }
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The page is self-contained: forbid it any other origin.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
            ),
        ],
        super::page::HTML,
    )
}

fn from_of(q: &HashMap<String, String>) -> usize {
    q.get("from").and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn json(text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

async fn state(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    json(s.board.state(from_of(&q)))
}

async fn intervals(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    json(s.board.intervals(from_of(&q)))
}

async fn report(State(s): State<AppState>) -> Response {
    let file = s
        .board
        .verdict()
        .and_then(|v| v.dir)
        .map(|d| std::path::Path::new(&d).join("report.html"));
    match file.and_then(|f| std::fs::read_to_string(f).ok()) {
        Some(html) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            (s.redact)(&html),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no report yet: the run is not over\n",
        )
            .into_response(),
    }
}

async fn status(State(s): State<AppState>) -> Response {
    let Some(steer) = &s.steer else {
        return (StatusCode::NOT_FOUND, "nothing to control here\n").into_response();
    };
    let st = steer.control.steering();
    axum::Json(serde_json::json!({
        "paused": st.paused,
        "factor": st.factor,
        "set": st.set,
        "stopping": steer.control.get() > 0,
    }))
    .into_response()
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Is the request's `Authorization: Bearer …` the token?
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (scheme, cred) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| cred.trim())
        })
        .any(|cred| same(cred.as_bytes(), token.as_bytes()))
}

/// Control needs the token: 401 (and nothing changes) without it.
async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match &s.token {
        Some(t) if authorized(req.headers(), t) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"flashcrowd control\"")],
            "control needs the run's token: send `Authorization: Bearer TOKEN` (the token is printed \
             when the run starts, or set with --control-token)\n",
        )
            .into_response(),
    }
}

fn answer(r: Result<String, String>) -> (StatusCode, String) {
    match r {
        Ok(msg) => (StatusCode::OK, format!("{msg}\n")),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

fn apply(s: &AppState, cmd: Result<Command, String>) -> (StatusCode, String) {
    match &s.steer {
        Some(steer) => answer(cmd.and_then(|c| steer.apply(c, "http"))),
        None => (StatusCode::NOT_FOUND, "nothing to control here\n".into()),
    }
}

async fn pause(State(s): State<AppState>) -> impl IntoResponse {
    apply(&s, Ok(Command::Pause))
}

async fn resume(State(s): State<AppState>) -> impl IntoResponse {
    apply(&s, Ok(Command::Resume))
}

async fn stop(State(s): State<AppState>) -> impl IntoResponse {
    apply(&s, Ok(Command::Stop))
}

/// `?factor=0.5` (relative to the plan), `?scale=2` (times the factor in force), `?set=300`
/// (arrivals/s, or users in a closed model).
async fn rate(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let num = |k: &str| -> Option<Result<f64, String>> {
        q.get(k).map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{k}={v}` is not a number"))
        })
    };
    let cmd = match (num("factor"), num("scale"), num("set")) {
        (Some(f), None, None) => f.map(Command::Factor),
        (None, Some(m), None) => m.map(Command::Scale),
        (None, None, Some(v)) => v.map(Command::Set),
        _ => Err("give exactly one of factor=F (of the plan), scale=M (times the current factor) or set=N (arrivals/s; users in a closed model)".to_string()),
    };
    apply(&s, cmd)
}

impl Server {
    /// Binds `addr` now (an error names it) and serves on a thread of its own.
    pub fn start(addr: SocketAddr, routes: Routes) -> Result<Server, String> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("--metrics-listen {addr}: cannot listen: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let control = Router::new()
            .route("/control/pause", post(pause))
            .route("/control/resume", post(resume))
            .route("/control/stop", post(stop))
            .route("/control/rate", post(rate))
            .route_layer(axum::middleware::from_fn_with_state(
                routes.clone(),
                require_token,
            ));
        let app = Router::new()
            .route("/", get(page))
            .route("/api/state", get(state))
            .route("/api/intervals", get(intervals))
            .route("/report.html", get(report))
            .route("/metrics", get(metrics))
            .route("/control", get(status))
            .merge(control)
            .with_state(routes);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    eprintln!("flashcrowd: the metrics endpoint could not start a runtime");
                    return;
                };
                rt.block_on(async move {
                    let Ok(l) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // At the end, stop at once: a scraper's keep-alive connection must not hold
                    // the run open (dropping the runtime cancels the connection tasks).
                    tokio::select! {
                        _ = axum::serve(l, app) => {}
                        _ = rx => {}
                    }
                });
            })
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(Server {
            addr: local,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `--metrics-listen` and `--listen`: `ADDR:PORT`, or a bare `PORT` / `:PORT` on loopback.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let t = s.trim();
    let port = t.strip_prefix(':').unwrap_or(t);
    if let Ok(p) = port.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
    }
    t.parse::<SocketAddr>().map_err(|_| {
        format!("`{s}` is not a listen address: give PORT (on 127.0.0.1), or ADDR:PORT like 127.0.0.1:9464")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback_only() {
        assert_eq!(parse_listen("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(parse_listen(":0").unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(
            parse_listen("0.0.0.0:9464").unwrap().to_string(),
            "0.0.0.0:9464"
        );
        assert!(parse_listen("localhost").is_err());
    }

    #[test]
    fn only_the_bearer_token_authorizes() {
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "abc123"));
        h.insert(header::AUTHORIZATION, "Bearer abc124".parse().unwrap());
        assert!(!authorized(&h, "abc123"));
        h.insert(header::AUTHORIZATION, "Basic abc123".parse().unwrap());
        assert!(!authorized(&h, "abc123"));
        h.insert(header::AUTHORIZATION, "bearer  abc123".parse().unwrap());
        assert!(authorized(&h, "abc123"));
    }
}
