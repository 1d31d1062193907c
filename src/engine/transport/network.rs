//! Network emulation per connection: what a phone on 4G sees of the target. Between the socket
//! and the transport sit two pump tasks, one per direction, that hold each chunk for half the
//! round trip (plus jitter) and release it no faster than the direction's bandwidth, in order.
//! The TCP handshake pays one round trip before the connection is handed over; a TLS handshake
//! pays its own round trips by running through the pumps like any other bytes.
//!
//! Only clients with `network:` get this layer; the others talk to the socket directly and pay
//! nothing for it (see `transport::connect`).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A client's network: round trip, jitter, and each direction's bandwidth (None: unlimited).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub rtt: Duration,
    /// Each one-way delay varies by up to ± half of this, so round trips spread by ± `jitter`.
    pub jitter: Duration,
    /// Server to client, bits per second.
    pub down_bps: Option<f64>,
    /// Client to server, bits per second.
    pub up_bps: Option<f64>,
}

/// Bytes held in one direction before the pump stops reading (backpressure).
const MAX_QUEUED: usize = 256 * 1024;
/// Largest chunk a pump reads at once: pacing is per chunk.
const CHUNK: usize = 16 * 1024;

/// The stream a transport uses for an emulated connection.
pub type Shaped = DuplexStream;

/// Waits out the TCP handshake's round trip, then puts the pumps between `tcp` and the returned
/// stream.
pub async fn shape(tcp: TcpStream, p: Profile, seed: u64) -> Shaped {
    let mut rng = SmallRng::seed_from_u64(seed);
    tokio::time::sleep(one_way(&p, &mut rng) * 2).await;
    let (near, far) = tokio::io::duplex(CHUNK * 4);
    let (far_r, far_w) = tokio::io::split(far);
    let (tcp_r, tcp_w) = tcp.into_split();
    tokio::spawn(pump(
        far_r,
        tcp_w,
        p,
        p.up_bps,
        SmallRng::seed_from_u64(rng.gen()),
    ));
    tokio::spawn(pump(
        tcp_r,
        far_w,
        p,
        p.down_bps,
        SmallRng::seed_from_u64(rng.gen()),
    ));
    near
}

/// Half the round trip, varied by the jitter.
fn one_way(p: &Profile, rng: &mut SmallRng) -> Duration {
    let half = p.rtt.as_secs_f64() / 2.0;
    let j = p.jitter.as_secs_f64() / 2.0;
    let d = if j > 0.0 {
        half + rng.gen_range(-j..=j)
    } else {
        half
    };
    Duration::from_secs_f64(d.max(0.0))
}

/// Moves bytes from `src` to `dst`: each chunk leaves `src` when the link is free, takes
/// len × 8 / bandwidth to cross, and arrives a one-way delay later (never before the chunk
/// ahead of it). At the end of `src` the queue is delivered and `dst` shut down.
async fn pump<R, W>(mut src: R, mut dst: W, p: Profile, bps: Option<f64>, mut rng: SmallRng)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut queued = 0usize;
    let mut buf = vec![0u8; CHUNK];
    let mut link_free = Instant::now();
    let mut last_arrival = Instant::now();
    let mut eof = false;
    loop {
        if eof && queue.is_empty() {
            let _ = dst.shutdown().await;
            return;
        }
        let due = queue.front().map(|(t, _)| *t);
        tokio::select! {
            r = src.read(&mut buf), if !eof && queued < MAX_QUEUED => match r {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => {
                    let now = Instant::now();
                    let start = link_free.max(now);
                    let cross = bps.map_or(Duration::ZERO, |b| Duration::from_secs_f64(n as f64 * 8.0 / b));
                    link_free = start + cross;
                    let arrival = (link_free + one_way(&p, &mut rng)).max(last_arrival);
                    last_arrival = arrival;
                    queued += n;
                    queue.push_back((arrival, buf[..n].to_vec()));
                }
            },
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let (_, chunk) = queue.pop_front().expect("a chunk is due");
                queued -= chunk.len();
                if dst.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}
