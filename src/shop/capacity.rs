//! The shop's capacity model: a bounded number of requests in service, a bounded queue in front
//! of them, and a service time that grows with load, so a drill against the shop finds a knee.
//!
//! A request first takes one of `capacity` permits. When none is free it waits in a FIFO queue of
//! at most `queue` requests; a request that finds the queue full is refused at once (the caller
//! answers 503 "system busy, please retry"). While it holds its permit a request "works" for
//!
//! ```text
//! service = base × (1 + (in_flight / capacity)²)
//! ```
//!
//! where `in_flight` counts the permits held, this one included. An idle shop serves in `base`; a
//! saturated one in `2 × base`, so the throughput ceiling is `capacity / (2 × base)`.
//!
//! Waiting costs almost no CPU (the load generator shares the machine): waits of 1 ms or more use
//! `tokio::time::sleep`; shorter ones are handed to one [`FineTimer`] thread that parks on a
//! condition with a timeout and wakes the waiting task at its deadline (about 50–100 µs of
//! precision on Linux), instead of spinning.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Waits shorter than this are not worth a timer: the task yields once instead.
const MIN_WAIT: Duration = Duration::from_micros(20);
/// Waits of at least this long use tokio's own (millisecond) timer.
const TOKIO_WAIT: Duration = Duration::from_millis(1);

/// Permits, queue and service time. Shared by all requests of one shop.
pub(crate) struct Capacity {
    permits: std::sync::Arc<Semaphore>,
    capacity: usize,
    queue: usize,
    waiting: AtomicUsize,
    timer: FineTimer,
}

/// A request's place in service; the permit returns when it is dropped.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// Decrements the queue length even when the waiting request is cancelled (client gone).
struct QueueGuard<'a>(&'a AtomicUsize);

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Capacity {
    pub(crate) fn new(capacity: usize, queue: usize) -> std::io::Result<Capacity> {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Ok(Capacity {
            permits: std::sync::Arc::new(Semaphore::new(capacity)),
            capacity,
            queue,
            waiting: AtomicUsize::new(0),
            timer: FineTimer::start()?,
        })
    }

    /// Takes a permit, waiting in the queue if need be; `None` when the queue is full.
    pub(crate) async fn enter(&self) -> Option<Slot> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => return Some(Slot { _permit: p }),
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {}
        }
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _guard = QueueGuard(&self.waiting);
        if before >= self.queue {
            return None;
        }
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        Some(Slot { _permit: permit })
    }

    /// Requests holding a permit now.
    pub(crate) fn in_flight(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }

    /// Requests waiting for a permit now (may briefly over-count refused ones).
    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire).min(self.queue)
    }

    /// The service time under the current load, for a request whose idle cost is `base`.
    pub(crate) fn service_time(&self, base: Duration) -> Duration {
        let (n, c) = (self.in_flight() as u128, self.capacity as u128);
        let nanos = base.as_nanos() * (c * c + n * n) / (c * c);
        Duration::from_nanos(nanos.min(u64::MAX as u128) as u64)
    }

    /// Works (waits) for the service time of `base` under the current load.
    pub(crate) async fn work(&self, _slot: &Slot, base: Duration) {
        let d = self.service_time(base);
        if d < MIN_WAIT {
            tokio::task::yield_now().await;
        } else if d >= TOKIO_WAIT {
            tokio::time::sleep(d).await;
        } else {
            self.timer.sleep(d).await;
        }
    }
}

struct Due {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A sub-millisecond timer: one thread keeps the deadlines in a heap and parks until the next.
/// The thread ends when the last sender (the shop) is dropped.
pub(crate) struct FineTimer {
    tx: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

impl FineTimer {
    pub(crate) fn start() -> std::io::Result<FineTimer> {
        let (tx, rx) = mpsc::channel::<(Instant, oneshot::Sender<()>)>();
        std::thread::Builder::new()
            .name("shop-timer".into())
            .spawn(move || {
                let mut heap: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
                let mut seq = 0u64;
                loop {
                    let now = Instant::now();
                    while heap.peek().is_some_and(|d| d.0.at <= now) {
                        if let Some(Reverse(d)) = heap.pop() {
                            let _ = d.wake.send(());
                        }
                    }
                    let next = match heap.peek() {
                        Some(d) => match rx.recv_timeout(d.0.at.saturating_duration_since(now)) {
                            Ok(m) => m,
                            Err(mpsc::RecvTimeoutError::Timeout) => continue,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        },
                        None => match rx.recv() {
                            Ok(m) => m,
                            Err(_) => return,
                        },
                    };
                    for (at, wake) in std::iter::once(next).chain(rx.try_iter()) {
                        seq += 1;
                        heap.push(Reverse(Due { at, seq, wake }));
                    }
                }
            })?;
        Ok(FineTimer { tx })
    }

    /// Sleeps for `d` (meant for sub-millisecond waits).
    pub(crate) async fn sleep(&self, d: Duration) {
        let (wake, done) = oneshot::channel();
        if self.tx.send((Instant::now() + d, wake)).is_err() {
            tokio::task::yield_now().await;
            return;
        }
        let _ = done.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn service_time_doubles_at_saturation() {
        rt().block_on(async {
            let c = Capacity::new(4, 0).unwrap();
            let base = Duration::from_micros(1000);
            let s1 = c.enter().await.unwrap();
            assert_eq!(c.in_flight(), 1);
            assert_eq!(
                c.service_time(base),
                Duration::from_micros(1062) + Duration::from_nanos(500)
            );
            let _s: Vec<Slot> = vec![
                c.enter().await.unwrap(),
                c.enter().await.unwrap(),
                c.enter().await.unwrap(),
            ];
            assert_eq!(c.in_flight(), 4);
            assert_eq!(c.service_time(base), Duration::from_micros(2000));
            // Full and no queue: refused at once.
            assert!(c.enter().await.is_none());
            drop(s1);
            assert_eq!(c.in_flight(), 3);
            assert!(c.enter().await.is_some());
        });
    }

    #[test]
    fn queue_admits_up_to_its_length() {
        rt().block_on(async {
            let c = std::sync::Arc::new(Capacity::new(1, 1).unwrap());
            let held = c.enter().await.unwrap();
            let c2 = c.clone();
            let waiter = tokio::spawn(async move { c2.enter().await.is_some() });
            while c.queued() == 0 {
                tokio::task::yield_now().await;
            }
            // Queue (length 1) is full now: the next one is refused.
            assert!(c.enter().await.is_none());
            assert_eq!(c.queued(), 1);
            drop(held);
            assert!(waiter.await.unwrap());
            assert_eq!(c.queued(), 0);
        });
    }

    #[test]
    fn fine_timer_waits_about_the_asked_time() {
        rt().block_on(async {
            let t = FineTimer::start().unwrap();
            let start = Instant::now();
            for _ in 0..5 {
                t.sleep(Duration::from_micros(300)).await;
            }
            let took = start.elapsed();
            assert!(took >= Duration::from_micros(1500), "{took:?}");
            // Generous upper bound: a loaded machine may delay the wake-ups.
            assert!(took < Duration::from_millis(500), "{took:?}");
        });
    }
}
