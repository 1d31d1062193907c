//! A countdown run follows its plan: the sessions started in each phase, summed from the
//! per-second series, are exactly the arrivals the plan puts in the phase (a session counts in
//! the second it was planned in, even when the generator runs late), and those match the
//! integral of the planned rate over the phase within ±5 %.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{count, named, num, Scenario};

/// Phases fall on whole seconds so that the series' seconds split cleanly between them:
/// before [0,2) · rise [2,4) · peak [4,6) · decay [6,8) · after [8,10).
const COUNTDOWN: &str = r#"
name: countdown-small
target: http://127.0.0.1:9
journeys:
  browse:
    share: 100%
    steps:
      - get: /api/items?page=1
load:
  countdown:
    sale_start: 2s
    before: 50/s
    peak: 400/s
    rise: 2s
    hold: 2s
    decay: 2s
    after: 100/s
    end: 10s
  arrivals: uniform
"#;

const BEFORE: f64 = 50.0;
const PEAK: f64 = 400.0;
const AFTER: f64 = 100.0;

/// The planned sessions of each phase, from the design's formulas rather than the engine's code:
/// constant, linear, constant, exponential after + (peak − after)·e^(−t/τ) with τ = decay/5,
/// constant.
fn planned() -> Vec<(&'static str, u64, u64, f64)> {
    let tau = 2.0 / 5.0;
    let decay = AFTER * 2.0 + (PEAK - AFTER) * tau * (1.0 - (-2.0f64 / tau).exp());
    vec![
        ("before", 0, 2, BEFORE * 2.0),
        ("rise", 2, 4, (BEFORE + PEAK) / 2.0 * 2.0),
        ("peak", 4, 6, PEAK * 2.0),
        ("decay", 6, 8, decay),
        ("after", 8, 10, AFTER * 2.0),
    ]
}

/// The arrivals the plan itself places in each second (`flashcrowd::plan`, the whole segment).
fn plan_per_second() -> Vec<u64> {
    use flashcrowd::plan::{Plan, PlanOptions, Segment};
    let loaded = flashcrowd::scenario::load_str("countdown.yaml", COUNTDOWN, &[])
        .expect("the scenario validates");
    let plan = Plan::compile(&loaded.scenario.load, &PlanOptions::for_scenario(&loaded))
        .expect("the plan compiles");
    let mut per = vec![0u64; 10];
    for a in plan.arrivals(Segment::WHOLE) {
        per[a.t as usize] += 1;
    }
    per
}

#[test]
fn countdown_series_follows_the_plan_per_phase_exactly() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(COUNTDOWN);
    let report = sc.run_passing(&shop.url(), &[], Duration::from_secs(60));
    let exact = plan_per_second();
    let series = report["series"].as_array().expect("a series array");
    let started_in = |from: u64, to: u64| -> u64 {
        series
            .iter()
            .filter(|p| (from..to).contains(&p["t"].as_u64().unwrap()))
            .map(|p| p["sessions_started"].as_u64().unwrap())
            .sum()
    };
    let mut table = String::new();
    let mut planned_total = 0.0;
    let mut failures = Vec::new();
    for (name, from, to, want) in planned() {
        planned_total += want;
        let phase = named(&report, "phases", name);
        assert_eq!(num(phase, "/start_s"), from as f64, "{phase}");
        assert_eq!(num(phase, "/end_s"), to as f64, "{phase}");
        // Every second of this run falls inside one phase, so no partial second is skipped.
        let got = started_in(from, to);
        let placed: u64 = exact[from as usize..to as usize].iter().sum();
        table +=
            &format!("{name:>7} [{from},{to}) planned {want:7.1} placed {placed} started {got}\n");
        // The plan places its arrivals as the rate integrates (within 5 % of the formula), and
        // every one of them started in its own phase.
        if (placed as f64 - want).abs() > 0.05 * want || got != placed {
            failures.push(name);
        }
    }
    eprintln!("{table}");
    assert!(
        failures.is_empty(),
        "phases off the plan: {failures:?}\n{table}"
    );
    // Not one planned arrival was left unstarted (the generator kept within a second of the plan).
    assert_eq!(count(&report, "/totals/sessions_unstarted"), 0, "{table}");
    // The series accounts for every session, and the total matches the plan within 1 %.
    let total = count(&report, "/totals/sessions_started");
    assert_eq!(started_in(0, u64::MAX), total, "{table}");
    assert!(
        (total as f64 - planned_total).abs() <= 0.01 * planned_total,
        "started {total}, planned {planned_total:.1}\n{table}"
    );
    // The series carries the plan beside what happened: 400/s through the peak's seconds.
    for p in series
        .iter()
        .filter(|p| matches!(p["t"].as_u64(), Some(4 | 5)))
    {
        let r = num(p, "/planned_rate");
        assert!(
            (r - PEAK).abs() < 1.0,
            "planned_rate {r} during the peak: {p}"
        );
    }
}
