//! Properties every shape shares: the segment split, Poisson arrivals, laziness.

use super::countdown::tests::design_countdown;
use super::{Arrival, Plan, PlanOptions, Segment};
use crate::scenario::model::{Arrivals, Load, Stage};
use crate::scenario::units::{Dur, Rate};
use std::time::Duration;

fn countdown(arrivals: Arrivals) -> Plan {
    Plan::compile(&design_countdown(arrivals), &PlanOptions::default()).unwrap()
}

/// A short plan with every piece kind: 20 s of the countdown compressed 1/24 in time, 1/10 in rate.
fn small_countdown(arrivals: Arrivals) -> Plan {
    let opts = PlanOptions {
        scale: 0.1,
        time_scale: 1.0 / 24.0,
        ..PlanOptions::default()
    };
    Plan::compile(&design_countdown(arrivals), &opts).unwrap()
}

fn constant(rate: f64, secs: u64, arrivals: Arrivals) -> Plan {
    let load = Load {
        stages: Some(vec![Stage {
            rate: Some(Rate(rate)),
            for_: Some(Dur(Duration::from_secs(secs))),
            ..Stage::default()
        }]),
        arrivals,
        seed: Some(7),
        ..Load::default()
    };
    Plan::compile(&load, &PlanOptions::default()).unwrap()
}

fn union_of_segments(plan: &Plan, n: u32) -> Vec<Arrival> {
    let mut all: Vec<Arrival> = (0..n)
        .flat_map(|i| plan.arrivals(Segment::new(i, n).unwrap()))
        .collect();
    all.sort_by_key(|a| a.index);
    all
}

#[test]
fn segments_union_equals_whole_run_uniform() {
    let plan = small_countdown(Arrivals::Uniform);
    let whole: Vec<Arrival> = plan.arrivals(Segment::WHOLE).collect();
    // 930687.1695 · 0.1 / 24 = 3877.86…, so arrivals 0…3877
    assert_eq!(whole.len(), 3878);
    for n in 1..=7 {
        assert_eq!(union_of_segments(&plan, n), whole, "n = {n}");
    }
}

#[test]
fn segments_union_equals_whole_run_poisson() {
    let plan = small_countdown(Arrivals::Poisson);
    let whole: Vec<Arrival> = plan.arrivals(Segment::WHOLE).collect();
    for n in 1..=7 {
        assert_eq!(union_of_segments(&plan, n), whole, "n = {n}");
    }
}

#[test]
fn segment_arrivals_are_in_time_order_and_owned() {
    for arrivals in [Arrivals::Uniform, Arrivals::Poisson] {
        let plan = small_countdown(arrivals);
        let seg = Segment::new(2, 5).unwrap();
        let mine: Vec<Arrival> = plan.arrivals(seg).collect();
        assert!(mine.iter().all(|a| seg.owns(a.index)));
        assert!(mine.windows(2).all(|w| w[0].t <= w[1].t));
        assert!(mine.iter().all(|a| a.t >= 0.0 && a.t < plan.duration));
    }
}

#[test]
fn poisson_arrivals_are_deterministic_for_a_seed() {
    let a: Vec<Arrival> = constant(500.0, 4, Arrivals::Poisson)
        .arrivals(Segment::WHOLE)
        .collect();
    let b: Vec<Arrival> = constant(500.0, 4, Arrivals::Poisson)
        .arrivals(Segment::WHOLE)
        .collect();
    assert_eq!(a, b);
    let mut load = design_countdown(Arrivals::Poisson);
    load.seed = Some(12);
    let other = Plan::compile(&load, &PlanOptions::default()).unwrap();
    let c: Vec<f64> = other
        .arrivals(Segment::WHOLE)
        .take(5)
        .map(|a| a.t)
        .collect();
    let d: Vec<f64> = countdown(Arrivals::Poisson)
        .arrivals(Segment::WHOLE)
        .take(5)
        .map(|a| a.t)
        .collect();
    assert_ne!(c, d, "another seed, other instants");
}

/// A Poisson count with mean λ has standard deviation √λ; with a fixed seed the test is
/// deterministic, and ±3σ is the stated bound.
fn within_3_sigma(count: usize, mean: f64) -> bool {
    (count as f64 - mean).abs() <= 3.0 * mean.sqrt()
}

#[test]
fn poisson_counts_are_within_three_sigma_of_the_integral() {
    let plan = countdown(Arrivals::Poisson);
    let mut per_phase = [0usize; 5];
    let mut total = 0;
    for a in plan.arrivals(Segment::WHOLE) {
        per_phase[plan.phase_index_at(a.t)] += 1;
        total += 1;
    }
    for (i, ph) in plan.phases.iter().enumerate() {
        let mean = plan.expected_arrivals(ph.start, ph.end);
        assert!(
            within_3_sigma(per_phase[i], mean),
            "{}: {} arrivals, expected {mean}",
            ph.name,
            per_phase[i]
        );
    }
    assert!(within_3_sigma(
        total,
        plan.expected_arrivals(0.0, plan.duration)
    ));

    let flat = constant(500.0, 4, Arrivals::Poisson);
    let n = flat.arrivals(Segment::WHOLE).count();
    assert!(within_3_sigma(n, 2000.0), "{n}");
}

#[test]
fn poisson_gaps_have_the_mean_of_the_rate() {
    // 1000/s for 60 s: the mean gap is 1 ms within ±3σ/√n (σ of an exponential gap = its mean).
    let plan = constant(1000.0, 60, Arrivals::Poisson);
    let ts: Vec<f64> = plan.arrivals(Segment::WHOLE).map(|a| a.t).collect();
    let gaps = ts.len() - 1;
    let mean = (ts[gaps] - ts[0]) / gaps as f64;
    assert!(
        (mean - 0.001).abs() < 3.0 * 0.001 / (gaps as f64).sqrt(),
        "{mean}"
    );
}

#[test]
fn arrivals_are_lazy() {
    // 50 000/s for a day would be 4.32 billion arrivals; taking three must not generate them.
    let plan = constant(50_000.0, 86_400, Arrivals::Uniform);
    let first: Vec<f64> = plan.arrivals(Segment::WHOLE).take(3).map(|a| a.t).collect();
    assert_eq!(first, [0.0, 0.00002, 0.00004]);
    let seg = Segment::new(1, 4).unwrap();
    let idx: Vec<u64> = plan.arrivals(seg).take(3).map(|a| a.index).collect();
    assert_eq!(idx, [1, 5, 9]);
}

#[test]
fn uniform_segment_counts_add_up_for_a_fractional_total() {
    // 2.5 arrivals/s for 3 s: Λ = 7.5, so arrivals 0…7 exist (8 in all).
    let plan = constant(2.5, 3, Arrivals::Uniform);
    assert_eq!(plan.arrivals(Segment::WHOLE).count(), 8);
    for n in 1..=7u32 {
        let sum: usize = (0..n)
            .map(|i| plan.arrivals(Segment::new(i, n).unwrap()).count())
            .sum();
        assert_eq!(sum, 8);
    }
}

#[test]
fn phase_index_clamps_outside_the_plan() {
    let plan = countdown(Arrivals::Uniform);
    assert_eq!(plan.phase_index_at(-1.0), 0);
    assert_eq!(plan.phase_index_at(0.0), 0);
    assert_eq!(plan.phase_index_at(146.0), 2);
    assert_eq!(plan.phase_index_at(480.0), 4);
    assert_eq!(plan.phase_index_at(1e9), 4);
}

#[test]
fn bad_options_and_shapes_are_errors_not_panics() {
    let load = design_countdown(Arrivals::Uniform);
    for (scale, time_scale) in [
        (0.0, 1.0),
        (1.0, -1.0),
        (f64::NAN, 1.0),
        (1.0, f64::INFINITY),
    ] {
        let opts = PlanOptions {
            scale,
            time_scale,
            ..PlanOptions::default()
        };
        assert!(Plan::compile(&load, &opts).is_err());
    }
    assert!(Plan::compile(&Load::default(), &PlanOptions::default())
        .unwrap_err()
        .contains("no load shape"));
    let mut two = design_countdown(Arrivals::Uniform);
    two.stages = Some(vec![]);
    assert!(Plan::compile(&two, &PlanOptions::default())
        .unwrap_err()
        .contains("more than one"));
}

#[test]
fn seed_defaults_to_one() {
    let mut load = design_countdown(Arrivals::Poisson);
    load.seed = None;
    assert_eq!(
        Plan::compile(&load, &PlanOptions::default()).unwrap().seed,
        1
    );
}
