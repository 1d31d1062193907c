//! Merges shard snapshots: a second is complete once every shard has reported it (or finished),
//! then it is added to the run totals and handed back to the caller as one interval.

use super::recorder::{Recorder, Snapshot};
use std::collections::BTreeMap;

/// One second of the run, all shards merged.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub t: u64,
    pub planned_rate: f64,
    pub sessions_started: u64,
    pub requests: u64,
    pub errors: u64,
    pub in_flight: u64,
    /// Of `in_flight`, the sessions parked at a wait or rendezvous.
    pub parked: u64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Planned arrivals skipped while paused (live control).
    pub paused: u64,
    /// Planned arrivals of this second that never started (a stop, the generator far behind).
    #[serde(default)]
    pub unstarted: u64,
    /// The live rate factor at the end of the second (1 unless steered; see `ops`).
    pub rate_factor: f64,
    /// Monitor series (the target's water level): the latest scraped value of each, by name.
    pub monitor: Vec<(String, f64)>,
    /// Of `requests`, each client's, by the catalog's client index (the client mix this second).
    #[serde(default)]
    pub clients: Vec<u64>,
}

impl Point {
    pub fn from_interval(t: u64, rec: &Recorder) -> Point {
        let all = rec.total_where(|_, _, _| true);
        // Requests recorded this second, by client: they add up to `requests`.
        let clients = rec.clients.iter().map(|c| c.requests).collect();
        let q = |p: f64| {
            if all.latency.is_empty() {
                0.0
            } else {
                all.latency.value_at_quantile(p) as f64 / 1000.0
            }
        };
        Point {
            t,
            planned_rate: 0.0,
            sessions_started: rec.sessions_started,
            requests: all.count,
            errors: all.error_count(),
            in_flight: rec.in_flight,
            parked: rec.parked,
            dropped: rec.sessions_dropped,
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            paused: rec.sessions_paused,
            unstarted: rec.sessions_unstarted,
            rate_factor: 1.0,
            monitor: Vec::new(),
            clients,
        }
    }
}

pub struct Collector {
    n_shards: usize,
    /// Per shard: the next second it has not reported yet (u64::MAX once finished).
    next: Vec<u64>,
    pending: BTreeMap<u64, Recorder>,
    /// Everything so far.
    pub total: Recorder,
}

impl Collector {
    pub fn new(n_shards: usize, shape: &Recorder) -> Self {
        Collector {
            n_shards,
            next: vec![0; n_shards],
            pending: BTreeMap::new(),
            total: shape.empty_like(),
        }
    }

    /// Adds a snapshot; returns the seconds that became complete, in order.
    pub fn add(&mut self, snap: Snapshot) -> Vec<(u64, Recorder)> {
        let shard = snap.shard;
        let second = snap.second;
        self.next[shard] = if snap.last {
            u64::MAX
        } else {
            self.next[shard].max(second + 1)
        };
        match self.pending.get_mut(&second) {
            Some(r) => r.merge(&snap.recorder),
            None => {
                self.pending.insert(second, snap.recorder);
            }
        }
        self.drain(false)
    }

    /// Completes every pending second (after all shards stopped, or when giving up on them).
    pub fn finish(&mut self) -> Vec<(u64, Recorder)> {
        self.drain(true)
    }

    pub fn shards_done(&self) -> bool {
        self.next.iter().all(|n| *n == u64::MAX)
    }

    fn drain(&mut self, all: bool) -> Vec<(u64, Recorder)> {
        let complete_below = if all {
            u64::MAX
        } else {
            self.next.iter().copied().min().unwrap_or(u64::MAX)
        };
        let mut out = Vec::new();
        while let Some((&s, _)) = self.pending.iter().next() {
            if s >= complete_below {
                break;
            }
            let rec = self.pending.remove(&s).expect("present");
            self.total.merge(&rec);
            out.push((s, rec));
        }
        let _ = self.n_shards;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(shard: usize, second: u64, started: u64, last: bool) -> Snapshot {
        let mut recorder = Recorder::new(1, 1, 1, 1);
        recorder.sessions_started = started;
        Snapshot {
            shard,
            second,
            recorder,
            last,
        }
    }

    #[test]
    fn a_second_completes_when_every_shard_reported_it() {
        let shape = Recorder::new(1, 1, 1, 1);
        let mut c = Collector::new(2, &shape);
        assert!(c.add(snap(0, 0, 3, false)).is_empty());
        assert!(c.add(snap(0, 1, 4, false)).is_empty());
        let done = c.add(snap(1, 0, 5, false));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].0, 0);
        assert_eq!(done[0].1.sessions_started, 8);
        // Shard 1 finishes during second 1: second 1 completes.
        let done = c.add(snap(1, 1, 1, true));
        assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(done[0].1.sessions_started, 5);
        let done = c.add(snap(0, 2, 2, true));
        assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), vec![2]);
        assert!(c.shards_done());
        assert_eq!(c.total.sessions_started, 15);
    }
}
