//! The names behind a recorder's dense indices, and evaluation of a threshold expression
//! (`gate::Threshold`) against a recorder: the single place where selectors, phases and metrics
//! turn into a number, used for thresholds at the end and abort rules every second.

use super::recorder::Recorder;
use crate::gate::{Metric, Selector, Threshold};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointName {
    pub name: String,
    pub journey: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// What the indices of a `Recorder` mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub endpoints: Vec<EndpointName>,
    pub journeys: Vec<String>,
    pub clients: Vec<String>,
    pub phases: Vec<PhaseSpan>,
    /// Per client: the network it emulated, described (None: the machine's own).
    #[serde(default)]
    pub networks: Vec<Option<String>>,
}

impl Catalog {
    /// Does (endpoint, client) match the selector?
    pub fn selects(&self, sel: &Selector, endpoint: usize, client: usize) -> bool {
        match sel {
            Selector::All => true,
            Selector::Request(n) => self.endpoints[endpoint].name == *n,
            Selector::Journey(j) => self.journeys[self.endpoints[endpoint].journey] == *j,
            Selector::Client(c) => self.clients[client] == *c,
            // A monitor series is no request's: the engine reads it from the second's point.
            Selector::Monitor(_) => false,
            // Nor is an action's recovery: the run core judges it from the actions.
            Selector::Action(_) => false,
        }
    }

    /// The phases `during NAME` means: every stretch called so, or all phases of a calendar
    /// moment (see `scenario::validate::phases_named`).
    fn phases_named(&self, name: &str) -> Vec<usize> {
        crate::scenario::validate::phases_named(self.phases.iter().map(|p| p.name.as_str()), name)
    }

    /// The value of the threshold's metric over `rec`, which covers `duration_s` seconds (used
    /// for `rate` when the threshold names no phase). None when there is nothing to measure
    /// (no requests matched, or an unknown phase).
    pub fn observe(&self, rec: &Recorder, th: &Threshold, duration_s: f64) -> Option<f64> {
        let phase = match &th.phase {
            Some(p) => Some(self.phases_named(p)).filter(|ps| !ps.is_empty()),
            None => None,
        };
        if th.phase.is_some() && phase.is_none() {
            return None;
        }
        match th.metric {
            Metric::Dropped => return Some(rec.sessions_dropped as f64),
            Metric::LagP99 => {
                return (!rec.lag.is_empty())
                    .then(|| rec.lag.value_at_quantile(0.99) as f64 / 1000.0)
            }
            _ => {}
        }
        let s = rec.total_where(|e, c, p| {
            phase.as_ref().is_none_or(|ph| ph.contains(&p)) && self.selects(&th.selector, e, c)
        });
        let dur = match &phase {
            Some(ps) => ps
                .iter()
                .map(|&p| self.phases[p].end_s - self.phases[p].start_s)
                .sum::<f64>()
                .min(duration_s),
            None => duration_s,
        }
        .max(1e-9);
        let h = &s.latency;
        match th.metric {
            Metric::Count => Some(s.count as f64),
            Metric::Rate => Some(s.count as f64 / dur),
            _ if s.count == 0 => None,
            Metric::Errors => Some(s.error_count() as f64 / s.count as f64),
            Metric::Max => Some(h.max() as f64 / 1000.0),
            Metric::Mean => Some(h.mean() / 1000.0),
            m => m.quantile().map(|q| h.value_at_quantile(q) as f64 / 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::recorder::Sample;

    fn catalog() -> Catalog {
        Catalog {
            networks: vec![],
            endpoints: vec![
                EndpointName {
                    name: "browse".into(),
                    journey: 0,
                },
                EndpointName {
                    name: "create-order".into(),
                    journey: 1,
                },
            ],
            journeys: vec!["browse".into(), "flash-buy".into()],
            clients: vec!["mobile".into(), "pc".into()],
            phases: vec![
                PhaseSpan {
                    name: "before".into(),
                    start_s: 0.0,
                    end_s: 10.0,
                },
                PhaseSpan {
                    name: "peak".into(),
                    start_s: 10.0,
                    end_s: 12.0,
                },
            ],
        }
    }

    fn rec() -> Recorder {
        let mut r = Recorder::new(2, 2, 2, 2);
        let mut s = Sample {
            request: 0,
            client: 0,
            phase: 0,
            latency_us: 10_000,
            service_us: 1,
            ttfb_us: None,
            status: Some(200),
            error: None,
            bytes_in: 0,
            bytes_out: 0,
        };
        for _ in 0..10 {
            r.record(&s);
        }
        s.request = 1;
        s.phase = 1;
        s.client = 1;
        s.latency_us = 500_000;
        for _ in 0..4 {
            r.record(&s);
        }
        s.error = Some(crate::metrics::ErrorKind::Http5xx);
        r.record(&s);
        r
    }

    #[test]
    fn selectors_and_phases_pick_their_requests() {
        let c = catalog();
        let r = rec();
        let th = |src: &str| crate::gate::parse_threshold(src).unwrap();
        assert_eq!(c.observe(&r, &th("count > 0"), 100.0), Some(15.0));
        assert_eq!(
            c.observe(&r, &th("create-order count > 0"), 100.0),
            Some(5.0)
        );
        assert_eq!(
            c.observe(&r, &th("journey:browse count > 0"), 100.0),
            Some(10.0)
        );
        assert_eq!(c.observe(&r, &th("client:pc count > 0"), 100.0), Some(5.0));
        assert_eq!(
            c.observe(&r, &th("errors < 1% during peak"), 100.0),
            Some(0.2)
        );
        // rate during a phase divides by the phase's length (2 s), not the run's.
        assert_eq!(
            c.observe(&r, &th("rate > 1/s during peak"), 100.0),
            Some(2.5)
        );
        assert_eq!(c.observe(&r, &th("rate > 1/s"), 100.0), Some(0.15));
        let p99 = c.observe(&r, &th("browse p99 < 1s"), 100.0).unwrap();
        assert!((p99 - 10.0).abs() < 0.01, "{p99}");
        let max = c.observe(&r, &th("max < 1s"), 100.0).unwrap();
        assert!((max - 500.0).abs() < 0.5, "{max}");
        assert_eq!(c.observe(&r, &th("client:nobody p99 < 1s"), 100.0), None);
    }

    #[test]
    fn during_a_moment_or_a_repeated_phase_means_all_its_stretches() {
        let span = |name: &str, start_s: f64, end_s: f64| PhaseSpan {
            name: name.into(),
            start_s,
            end_s,
        };
        let mut c = catalog();
        c.phases = vec![
            span("base", 0.0, 10.0),
            span("sale.rise", 10.0, 12.0),
            span("sale.peak", 12.0, 20.0),
            span("base", 20.0, 30.0),
        ];
        let mut r = Recorder::new(2, 2, 4, 2);
        let mut s = Sample {
            request: 0,
            client: 0,
            phase: 0,
            latency_us: 1_000,
            service_us: 1,
            ttfb_us: None,
            status: Some(200),
            error: None,
            bytes_in: 0,
            bytes_out: 0,
        };
        for (phase, n) in [(0, 3), (1, 5), (2, 40), (3, 7)] {
            s.phase = phase;
            for _ in 0..n {
                r.record(&s);
            }
        }
        let th = |src: &str| crate::gate::parse_threshold(src).unwrap();
        // `base` comes back after the sale: both stretches count, over their 20 s.
        assert_eq!(
            c.observe(&r, &th("count > 0 during base"), 30.0),
            Some(10.0)
        );
        assert_eq!(
            c.observe(&r, &th("rate > 0/s during base"), 30.0),
            Some(0.5)
        );
        // A moment means all its phases.
        assert_eq!(
            c.observe(&r, &th("count > 0 during sale"), 30.0),
            Some(45.0)
        );
        assert_eq!(
            c.observe(&r, &th("rate > 0/s during sale"), 30.0),
            Some(4.5)
        );
        assert_eq!(
            c.observe(&r, &th("count > 0 during sale.rise"), 30.0),
            Some(5.0)
        );
        assert_eq!(c.observe(&r, &th("count > 0 during presale"), 30.0), None);
    }
}
