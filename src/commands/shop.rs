//! `flashcrowd shop`: serve the embedded demo shop on a loopback address until Ctrl-C (or
//! SIGTERM). It refuses any non-loopback address: the shop is a practice target, not a service.

use super::{Failure, Outcome};
use crate::shop::{self, ShopConfig};
use std::net::{SocketAddr, ToSocketAddrs};

pub fn shop(a: crate::cli::ShopArgs) -> Outcome {
    let addr = loopback(&a.listen)?;
    if a.capacity == 0 {
        return Err(Failure::BadInput(
            "shop: --capacity must be at least 1".into(),
        ));
    }
    let config = ShopConfig {
        capacity: a.capacity,
        queue: a.queue,
        service_us: a.service_us,
        redpackets: a.redpackets,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("flashcrowd-shop")
        .build()
        .map_err(|e| Failure::BadInput(format!("shop: cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::BadInput(format!("shop: cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr().unwrap_or(addr);
        print_banner(bound, &config);
        shop::serve_until(listener, config, stop_signal())
            .await
            .map_err(|e| Failure::Aborted(format!("shop: {e:#}")))?;
        println!("shop stopped");
        Ok(0)
    })
}

/// Resolves `listen` and insists that it is a loopback address.
fn loopback(listen: &str) -> Result<SocketAddr, Failure> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| {
            Failure::BadInput(format!(
                "shop: --listen {listen:?} is not an address like 127.0.0.1:8080 ({e})"
            ))
        })?
        .collect();
    match addrs.iter().find(|a| a.ip().is_loopback()) {
        Some(a) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(*a),
        _ => Err(Failure::BadInput(format!(
            "shop: refusing to listen on {listen}: the demo shop listens on loopback only \
             (127.0.0.1 or [::1]), e.g. --listen 127.0.0.1:8080"
        ))),
    }
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn print_banner(addr: SocketAddr, c: &ShopConfig) {
    let ceiling = if c.service_us == 0 {
        "unbounded".to_string()
    } else {
        format!(
            "{:.0} orders/s",
            c.capacity as f64 / (2.0 * c.service_us as f64 * 1e-6)
        )
    };
    println!("flashcrowd shop listening on http://{addr}");
    println!(
        "capacity {} in service, queue {}, service time {} µs (×1 to ×2 with load), \
         {} red packets; ceiling {ceiling}",
        c.capacity, c.queue, c.service_us, c.redpackets
    );
    println!("endpoints:");
    for line in [
        "GET  /health",
        "GET  /api/items?page=N",
        "GET  /api/items/{id}",
        "POST /api/cart              {\"sku\":ID,\"qty\":N}",
        "POST /api/orders            {\"cart\":\"c…\",\"user\":\"u…\"}",
        "POST /api/redpacket/grab    {\"user\":\"u…\"}",
        "POST /api/presale/deposit   {\"sku\":ID,\"user\":\"u…\"}",
        "GET  /stats                 POST /stats/reset",
    ] {
        println!("  {line}");
    }
    println!("press Ctrl-C to stop");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_must_be_loopback() {
        assert_eq!(
            loopback("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(loopback("[::1]:0").is_ok());
        for bad in ["0.0.0.0:8080", "10.1.2.3:80", "nonsense", "127.0.0.1"] {
            let e = loopback(bad).unwrap_err();
            assert_eq!(e.code(), 2, "{bad}");
        }
        assert!(loopback("0.0.0.0:8080")
            .unwrap_err()
            .to_string()
            .contains("loopback only"));
    }
}
