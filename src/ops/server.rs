//! The HTTP server on `--metrics-listen`: `GET /metrics` (Prometheus), `GET /control` (the
//! steering in force, JSON) and `POST /control/{pause,resume,stop,rate}`. Its own OS thread and
//! current-thread runtime (axum), so a slow scraper never delays a shard or the collector.

use super::exporter::Exporter;
use super::{Command, Steer};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
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

#[derive(Clone)]
struct AppState {
    exporter: Arc<Exporter>,
    steer: Arc<Steer>,
}

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.exporter.render())
}

async fn status(State(s): State<AppState>) -> impl IntoResponse {
    let st = s.steer.control.steering();
    axum::Json(serde_json::json!({
        "paused": st.paused,
        "factor": st.factor,
        "set": st.set,
        "stopping": s.steer.control.get() > 0,
    }))
}

fn answer(r: Result<String, String>) -> (StatusCode, String) {
    match r {
        Ok(msg) => (StatusCode::OK, format!("{msg}\n")),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

async fn pause(State(s): State<AppState>) -> impl IntoResponse {
    answer(s.steer.apply(Command::Pause, "http"))
}

async fn resume(State(s): State<AppState>) -> impl IntoResponse {
    answer(s.steer.apply(Command::Resume, "http"))
}

async fn stop(State(s): State<AppState>) -> impl IntoResponse {
    answer(s.steer.apply(Command::Stop, "http"))
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
    answer(cmd.and_then(|c| s.steer.apply(c, "http")))
}

impl Server {
    /// Binds `addr` now (an error names it) and serves on a thread of its own.
    pub fn start(
        addr: SocketAddr,
        exporter: Arc<Exporter>,
        steer: Arc<Steer>,
    ) -> Result<Server, String> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("--metrics-listen {addr}: cannot listen: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/control", get(status))
            .route("/control/pause", post(pause))
            .route("/control/resume", post(resume))
            .route("/control/stop", post(stop))
            .route("/control/rate", post(rate))
            .with_state(AppState { exporter, steer });
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
