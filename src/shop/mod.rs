//! The embedded demo shop (`flashcrowd shop`): a small axum service with the endpoints the
//! bundled scenarios use and a capacity model, so a drill has something real to push against.
//! This module owns the public API (`ShopConfig`, `serve`, `serve_until`, `start_background`,
//! `ShopHandle`); the endpoints live in `routes`, the capacity model in `capacity`, the counters
//! behind `/stats` in `stats`.
//!
//! Endpoints (all bodies JSON; SKU ids 1..=10000, as integers or strings of digits):
//!
//! | request | answer |
//! |---|---|
//! | `GET /health` | 200 `ok` |
//! | `GET /api/items?page=N` | 200 `{"page":N,"items":[{"id","name","price"} ×20]}` |
//! | `GET /api/items/{id}` | 200 `{"id","name","price","stock"}`; 404 `{"error":"no such item"}` |
//! | `POST /api/cart` `{"sku","qty"}` | 200 `{"cart":{"id":"c…","sku","qty"}}` |
//! | `POST /api/orders` `{"cart":"c…","user"}` | 201 `{"status":"created","order":{"id":"o…","shadow":bool}}` |
//! | `POST /api/redpacket/grab` `{"user"}` | 200 `{"status":"won","amount":CENTS}`, then 410 `{"status":"sold_out"}` |
//! | `POST /api/presale/deposit` `{"sku","user"}` | 201 `{"status":"deposited","deposit":{"id":"d…"}}` |
//! | `GET /api/assistant?q=…&tokens=N` | 200 `text/event-stream`: N `token` events, then `done` (see `streams`) |
//! | `GET /live/{room}` (WebSocket) | `{"type":"welcome","room","members"}`, then every member's `like`/`comment`, broadcast (see `streams`) |
//! | `GET /stats` | 200 [`ShopStats`] |
//! | `POST /stats/reset` | 200 `{"status":"reset"}`: zeroes the counters, restocks red packets |
//! | `POST /admin/fail?for=10s` | 200; every API request answers 503 `{"error":"system busy"}` for that long |
//! | `POST /admin/slow?ms=200` | 200; every API request takes that much longer |
//! | `POST /admin/recover` | 200; both drill switches off (see `admin`) |
//!
//! A bad body is a 400 `{"error":"…"}`; a full shop a 503 `{"error":"system busy, please retry"}`.
//! Requests with an `X-Load-Test` header are tagged; their orders and deposits are shadow orders.
//!
//! Capacity model (see `capacity`): `capacity` requests in service, `queue` more waiting, the rest
//! refused with 503. Orders, carts, deposits and red-packet grabs take `service_us`, item reads a
//! tenth of it, both times `1 + (in_flight/capacity)²`. The ceiling is therefore
//! `capacity / (2 × service_us)` writes per second: with the defaults (256, 1024, 200 µs) that is
//! 640,000 orders/s (6.4 M item reads/s), far beyond what one 2-core machine can offer, so the
//! defaults show a healthy shop. To find a knee in a drill, shrink it:
//! `--capacity 16 --service-us 4000` tops out at 16 / 8 ms = 2,000 orders/s.

mod admin;
mod capacity;
mod routes;
mod stats;
mod streams;

pub use routes::{ITEMS, PAGE_SIZE, TAG_HEADER};
pub use stats::{ShopStats, MAX_USER_AGENTS, NO_USER_AGENT, OTHER};
pub use streams::{LiveStats, StreamStats};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ShopConfig {
    /// Requests served at once; beyond it requests queue.
    pub capacity: usize,
    /// Requests that may wait in the queue; beyond it the shop answers 503 "system busy".
    pub queue: usize,
    /// Base service time of an order, in microseconds.
    pub service_us: u64,
    /// Red packets in stock before "sold out".
    pub redpackets: u64,
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            capacity: 256,
            queue: 1024,
            service_us: 200,
            redpackets: 1000,
        }
    }
}

/// How long a stopping shop lets in-flight requests finish before it drops them.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A shop running on its own thread and runtime; stops when dropped (or with [`ShopHandle::stop`]).
pub struct ShopHandle {
    pub addr: SocketAddr,
    shop: Arc<routes::Shop>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ShopHandle {
    /// The shop's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters, as `GET /stats` would answer now.
    pub fn stats(&self) -> ShopStats {
        self.shop.stats()
    }

    /// Zeroes the counters and restocks red packets, as `POST /stats/reset` does.
    pub fn reset(&self) {
        self.shop.reset()
    }

    /// Stops the server and waits for its thread (at most about [`STOP_GRACE`]).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ShopHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for ShopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Serves the shop on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: ShopConfig) -> anyhow::Result<()> {
    serve_until(listener, config, std::future::pending()).await
}

/// Serves the shop on `listener` until `stop` completes, then lets in-flight requests finish
/// (for at most a couple of seconds).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    config: ShopConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shop = Arc::new(routes::Shop::new(config)?);
    run(listener, shop, stop).await
}

async fn run(
    listener: tokio::net::TcpListener,
    shop: Arc<routes::Shop>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let app = routes::router(shop);
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = drain_rx.await;
    });
    let mut server = tokio::spawn(async move { server.await });
    tokio::select! {
        r = &mut server => return Ok(r??),
        _ = stop => {}
    }
    let _ = drain_tx.send(());
    match tokio::time::timeout(STOP_GRACE, &mut server).await {
        Ok(r) => Ok(r??),
        Err(_) => {
            server.abort();
            Ok(())
        }
    }
}

/// Starts the shop on 127.0.0.1 with a free port, on a thread with a current-thread runtime of
/// its own (so it takes one core at most from a load generator in the same process).
pub fn start_background(config: ShopConfig) -> anyhow::Result<ShopHandle> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let shop = Arc::new(routes::Shop::new(config)?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let served = shop.clone();
    let thread = std::thread::Builder::new()
        .name("flashcrowd-shop".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let stop = async {
                    let _ = stop_rx.await;
                };
                if let Err(e) = run(listener, served, stop).await {
                    eprintln!("flashcrowd shop: {e:#}");
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => anyhow::bail!("the shop thread ended before it started serving"),
    }
    Ok(ShopHandle {
        addr,
        shop,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}
