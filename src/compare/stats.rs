//! The statistics behind `compare`'s verdicts: a seeded bootstrap over whole seconds.
//!
//! A run is a sequence of one-second interval histograms (latency.hlog). Seconds are the unit of
//! resampling because requests within one second share their noise (a GC pause, a busy
//! neighbour), while whole seconds are close to exchangeable. One resample draws as many seconds
//! as the run has, with replacement, sums their histograms and recomputes the statistic (a
//! percentile, a rate). Doing that for both runs 1,000 times gives the distribution of the
//! change; the 2.5th and 97.5th percentiles of it are a 95 % confidence interval.
//!
//! A change is *significant* when that interval excludes zero, and it *matters* when its point
//! estimate also exceeds a practical threshold (10 % in `compare`): both are needed before a row
//! is called better or worse, so run-to-run noise does not cry wolf.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Resamples per comparison.
pub const RESAMPLES: usize = 1000;
/// The confidence of the intervals.
pub const CONFIDENCE: f64 = 0.95;
/// The seed every bootstrap starts from: the same two runs always compare the same way.
pub const SEED: u64 = 0x5EED_F1A5;

/// One second's latencies as (bucket index into [`Buckets::values`], count) pairs, sorted by
/// bucket, plus the second's error count when known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Second {
    pub counts: Vec<(u32, u64)>,
    pub total: u64,
    pub max_us: u64,
    pub errors: u64,
}

/// The value (µs, highest equivalent) of every bucket any second uses, ascending; shared by both
/// runs of a comparison so their seconds can be summed into one dense array.
#[derive(Debug, Clone, Default)]
pub struct Buckets {
    pub values: Vec<u64>,
}

impl Buckets {
    pub fn index(&self, v: u64) -> u32 {
        match self.values.binary_search(&v) {
            Ok(i) => i as u32,
            Err(i) => i.min(self.values.len().saturating_sub(1)) as u32,
        }
    }
}

/// What is measured on a set of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A latency quantile (0.5, 0.9, 0.99), ms.
    Quantile(f64),
    /// The largest latency, ms.
    Max,
    /// Requests per second (mean over the seconds).
    Rate,
    /// Errors / requests, a fraction.
    ErrorRate,
}

/// Sums `seconds[picks]` into `dense` (cleared first) and evaluates `stat`.
fn eval(
    stat: Stat,
    b: &Buckets,
    seconds: &[Second],
    picks: &[usize],
    dense: &mut [u64],
) -> Option<f64> {
    match stat {
        Stat::Rate => {
            if picks.is_empty() {
                return None;
            }
            let n: u64 = picks.iter().map(|&i| seconds[i].total).sum();
            Some(n as f64 / picks.len() as f64)
        }
        Stat::ErrorRate => {
            let n: u64 = picks.iter().map(|&i| seconds[i].total).sum();
            let e: u64 = picks.iter().map(|&i| seconds[i].errors).sum();
            (n > 0).then(|| e as f64 / n as f64)
        }
        Stat::Max => picks
            .iter()
            .map(|&i| seconds[i].max_us)
            .max()
            .filter(|_| picks.iter().any(|&i| seconds[i].total > 0))
            .map(|m| m as f64 / 1000.0),
        Stat::Quantile(q) => {
            dense.iter_mut().for_each(|c| *c = 0);
            let mut total = 0u64;
            for &i in picks {
                for &(k, c) in &seconds[i].counts {
                    dense[k as usize] += c;
                }
                total += seconds[i].total;
            }
            if total == 0 {
                return None;
            }
            // The smallest value with at least ceil(q × total) requests at or below it (as
            // HdrHistogram's value_at_quantile).
            let want = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut cum = 0u64;
            for (k, c) in dense.iter().enumerate() {
                cum += c;
                if cum >= want {
                    return Some(b.values[k] as f64 / 1000.0);
                }
            }
            b.values.last().map(|v| *v as f64 / 1000.0)
        }
    }
}

/// The statistic over every second.
pub fn point(stat: Stat, b: &Buckets, seconds: &[Second]) -> Option<f64> {
    let picks: Vec<usize> = (0..seconds.len()).collect();
    let mut dense = vec![0u64; b.values.len()];
    eval(stat, b, seconds, &picks, &mut dense)
}

/// How a change is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// new / base − 1 (latency, rate).
    Relative,
    /// new − base (error rate, as a fraction).
    Absolute,
}

/// A change and its bootstrap confidence interval, in the units of its [`Scale`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub base: f64,
    pub new: f64,
    pub delta: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Change {
    /// The interval excludes zero and has a width: every resample giving one value (a phase of
    /// one second, one request) measures no noise at all, which is no evidence of a change.
    pub fn significant(&self) -> bool {
        self.hi > self.lo && (self.lo > 0.0 || self.hi < 0.0)
    }
}

fn delta(scale: Scale, base: f64, new: f64) -> Option<f64> {
    match scale {
        Scale::Absolute => Some(new - base),
        Scale::Relative if base > 0.0 => Some(new / base - 1.0),
        Scale::Relative if new == 0.0 => Some(0.0),
        Scale::Relative => None,
    }
}

/// Bootstraps the change of `stat` from `base` to `new` ([`RESAMPLES`] resamples of whole
/// seconds, seeded with `seed`). None when either run has no second with data.
pub fn bootstrap(
    stat: Stat,
    scale: Scale,
    b: &Buckets,
    base: &[Second],
    new: &[Second],
    seed: u64,
) -> Option<Change> {
    let mut dense = vec![0u64; b.values.len()];
    let all = |n: usize| (0..n).collect::<Vec<_>>();
    let pb = eval(stat, b, base, &all(base.len()), &mut dense)?;
    let pn = eval(stat, b, new, &all(new.len()), &mut dense)?;
    let d = delta(scale, pb, pn)?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut ds = Vec::with_capacity(RESAMPLES);
    let (mut ib, mut inn) = (vec![0; base.len()], vec![0; new.len()]);
    for _ in 0..RESAMPLES {
        ib.iter_mut()
            .for_each(|i| *i = rng.gen_range(0..base.len()));
        inn.iter_mut()
            .for_each(|i| *i = rng.gen_range(0..new.len()));
        let (Some(x), Some(y)) = (
            eval(stat, b, base, &ib, &mut dense),
            eval(stat, b, new, &inn, &mut dense),
        ) else {
            continue;
        };
        if let Some(v) = delta(scale, x, y) {
            ds.push(v);
        }
    }
    if ds.is_empty() {
        return None;
    }
    ds.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ds[((q * (ds.len() - 1) as f64).round() as usize).min(ds.len() - 1)];
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Some(Change {
        base: pb,
        new: pn,
        delta: d,
        lo: at(tail),
        hi: at(1.0 - tail),
    })
}

/// better / same / worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Better,
    Same,
    Worse,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Same => "same",
            Verdict::Worse => "worse",
        }
    }
}

/// The verdict on a change: better or worse only when its interval excludes zero *and* lies
/// wholly beyond `practical` (same units as the change) — a change confidently at least that
/// large, not just a point estimate that happens to be. `higher_is_worse`: latency and errors
/// (true), rate (false).
pub fn verdict(c: &Change, practical: f64, higher_is_worse: bool) -> Verdict {
    let up = c.significant() && c.delta > 0.0 && c.lo >= practical;
    let down = c.significant() && c.delta < 0.0 && c.hi <= -practical;
    match (up, down) {
        (true, _) if higher_is_worse => Verdict::Worse,
        (true, _) => Verdict::Better,
        (_, true) if higher_is_worse => Verdict::Better,
        (_, true) => Verdict::Worse,
        _ => Verdict::Same,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, LogNormal};

    /// `n` seconds of `per_s` requests with lognormal latencies around `median_us`.
    fn run(n: usize, per_s: usize, median_us: f64, seed: u64) -> Vec<Vec<u64>> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let d = LogNormal::new(median_us.ln(), 0.3).unwrap();
        (0..n)
            .map(|_| (0..per_s).map(|_| d.sample(&mut rng) as u64).collect())
            .collect()
    }

    /// Builds shared buckets (values rounded to 3 significant digits, like the histograms).
    fn to_seconds(runs: &[&Vec<Vec<u64>>]) -> (Buckets, Vec<Vec<Second>>) {
        let round = |v: u64| {
            let h = crate::metrics::recorder::new_histogram();
            h.highest_equivalent(v.max(1))
        };
        let mut values: Vec<u64> = runs
            .iter()
            .flat_map(|r| r.iter().flatten().map(|v| round(*v)))
            .collect();
        values.sort();
        values.dedup();
        let b = Buckets { values };
        let out = runs
            .iter()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        let mut m = std::collections::BTreeMap::new();
                        for v in s {
                            *m.entry(b.index(round(*v))).or_insert(0u64) += 1;
                        }
                        Second {
                            counts: m.into_iter().collect(),
                            total: s.len() as u64,
                            max_us: s.iter().copied().max().unwrap_or(0),
                            errors: 0,
                        }
                    })
                    .collect()
            })
            .collect();
        (b, out)
    }

    #[test]
    fn identical_runs_are_the_same() {
        let a = run(20, 200, 5000.0, 1);
        let (b, s) = to_seconds(&[&a, &a]);
        for stat in [Stat::Quantile(0.5), Stat::Quantile(0.99), Stat::Rate] {
            let c = bootstrap(stat, Scale::Relative, &b, &s[0], &s[1], SEED).unwrap();
            assert_eq!(c.delta, 0.0);
            assert!(c.lo <= 0.0 && c.hi >= 0.0, "{stat:?}: {c:?}");
            assert_eq!(verdict(&c, 0.05, true), Verdict::Same);
        }
    }

    #[test]
    fn two_samples_of_one_distribution_are_the_same() {
        let a = run(20, 200, 5000.0, 1);
        let n = run(20, 200, 5000.0, 2);
        let (b, s) = to_seconds(&[&a, &n]);
        for q in [0.5, 0.9, 0.99] {
            let c = bootstrap(Stat::Quantile(q), Scale::Relative, &b, &s[0], &s[1], SEED).unwrap();
            assert_eq!(verdict(&c, 0.05, true), Verdict::Same, "p{q}: {c:?}");
        }
    }

    #[test]
    fn a_twenty_percent_shift_is_worse_and_its_reverse_better() {
        let a = run(20, 200, 5000.0, 1);
        let n = run(20, 200, 6000.0, 2);
        let (b, s) = to_seconds(&[&a, &n]);
        for q in [0.5, 0.9, 0.99] {
            let c = bootstrap(Stat::Quantile(q), Scale::Relative, &b, &s[0], &s[1], SEED).unwrap();
            assert!(c.delta > 0.15 && c.delta < 0.25, "p{q}: {c:?}");
            assert!(c.lo > 0.0, "p{q}: {c:?}");
            assert_eq!(verdict(&c, 0.05, true), Verdict::Worse);
            let r = bootstrap(Stat::Quantile(q), Scale::Relative, &b, &s[1], &s[0], SEED).unwrap();
            assert!(r.delta < 0.0 && r.hi < 0.0, "{r:?}");
            assert_eq!(verdict(&r, 0.05, true), Verdict::Better);
        }
    }

    #[test]
    fn a_significant_but_tiny_change_is_the_same() {
        let c = Change {
            base: 10.0,
            new: 10.2,
            delta: 0.02,
            lo: 0.01,
            hi: 0.03,
        };
        assert!(c.significant());
        assert_eq!(verdict(&c, 0.05, true), Verdict::Same);
        assert_eq!(
            verdict(
                &Change {
                    delta: 0.1,
                    lo: -0.01,
                    ..c
                },
                0.05,
                true
            ),
            Verdict::Same
        );
        assert_eq!(
            verdict(
                &Change {
                    delta: -0.1,
                    lo: -0.2,
                    hi: -0.05,
                    ..c
                },
                0.05,
                false
            ),
            Verdict::Worse
        );
    }

    #[test]
    fn the_bootstrap_is_deterministic_with_its_seed() {
        let a = run(10, 100, 5000.0, 3);
        let n = run(10, 100, 5200.0, 4);
        let (b, s) = to_seconds(&[&a, &n]);
        let x = bootstrap(
            Stat::Quantile(0.99),
            Scale::Relative,
            &b,
            &s[0],
            &s[1],
            SEED,
        )
        .unwrap();
        let y = bootstrap(
            Stat::Quantile(0.99),
            Scale::Relative,
            &b,
            &s[0],
            &s[1],
            SEED,
        )
        .unwrap();
        assert_eq!(x, y);
        let z = bootstrap(
            Stat::Quantile(0.99),
            Scale::Relative,
            &b,
            &s[0],
            &s[1],
            SEED + 1,
        )
        .unwrap();
        assert_eq!(x.delta, z.delta);
        assert!(
            x.lo != z.lo || x.hi != z.hi,
            "another seed, another interval"
        );
    }

    #[test]
    fn error_rates_compare_in_points() {
        let mk = |e: u64| Second {
            counts: vec![(0, 100)],
            total: 100,
            max_us: 1000,
            errors: e,
        };
        let b = Buckets { values: vec![1000] };
        let base: Vec<Second> = (0..20).map(|i| mk(i % 2)).collect();
        let new: Vec<Second> = (0..20).map(|i| mk(5 + i % 2)).collect();
        let c = bootstrap(Stat::ErrorRate, Scale::Absolute, &b, &base, &new, SEED).unwrap();
        assert!((c.delta - 0.05).abs() < 1e-9, "{c:?}");
        assert_eq!(verdict(&c, 0.001, true), Verdict::Worse);
    }
}
