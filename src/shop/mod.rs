//! The embedded demo shop (`flashcrowd shop`): a small axum service with the endpoints the
//! bundled scenarios use and a capacity model, so a drill has something real to push against.
//!
//! API CONTRACT: `ShopConfig`, `serve(listener, config)`, `start_background(config)`.

use std::net::SocketAddr;

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

/// A shop running on its own threads; stops when dropped.
pub struct ShopHandle {
    pub addr: SocketAddr,
}

/// Serves the shop on `listener` until the process ends.
pub async fn serve(_listener: tokio::net::TcpListener, _config: ShopConfig) -> anyhow::Result<()> {
    unimplemented!()
}

/// Starts the shop on 127.0.0.1 with a free port, on a runtime of its own.
pub fn start_background(_config: ShopConfig) -> anyhow::Result<ShopHandle> {
    unimplemented!()
}
