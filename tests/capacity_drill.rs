//! A step drill against the embedded shop set to a known ceiling finds its capacity: first the
//! shop's real ceiling is measured with a closed-model run (16 users = capacity + queue, no
//! think time), then the drill's `capacity.capacity_rate` must land within 15 % of it; and
//! `flashcrowd capacity` turns it into instances with the arithmetic shown.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{Scenario, Spawned};

const LIMIT: Duration = Duration::from_secs(90);

const JOURNEY: &str = r#"
defaults:
  timeout: 2s
  headers: { X-Load-Test: "flashcrowd" }
journeys:
  buy:
    share: 100%
    steps:
      - post: /api/orders
        name: create-order
        json: { cart: "c1", user: "u1" }
"#;

/// capacity 8, queue 8, 4 ms: 8 / (2 × 4 ms) = 1,000 orders/s by the shop's model.
fn shop() -> flashcrowd::shop::ShopHandle {
    start_background(ShopConfig {
        capacity: 8,
        queue: 8,
        service_us: 4000,
        ..Default::default()
    })
    .expect("start the shop")
}

#[test]
fn a_step_drill_finds_the_shops_capacity() {
    let shop = shop();
    let url = shop.url();

    // The truth: as many users as the shop serves and queues, looping without pause.
    let closed = Scenario::new(&format!(
        "name: ceiling\n{JOURNEY}load:\n  users: [ {{ users: 16, for: 4s }} ]\n"
    ));
    let r = closed.run_passing(&url, &[], LIMIT);
    let ok = r["totals"]["requests"].as_f64().unwrap()
        * (1.0 - r["totals"]["error_rate"].as_f64().unwrap());
    let ceiling = ok / r["run"]["planned_duration_s"].as_f64().unwrap();
    eprintln!("measured ceiling (closed model, 16 users): {ceiling:.0} orders/s (model: 1000/s)");
    assert!((700.0..=1100.0).contains(&ceiling), "ceiling {ceiling}");

    // The drill: 200/s more every 2 s, stopped when the shop turns requests away or slows.
    let drill = Scenario::new(&format!(
        "name: drill\n{JOURNEY}load:\n  steps: {{ start: 200/s, step: 200/s, every: 2s, max: 2400/s, stop_when: [ \"errors > 5%\", \"p99 > 200ms\" ] }}\n  arrivals: uniform\n"
    ));
    let done = drill.run(&url, &[], LIMIT);
    let r = drill.report(&done);
    let cap = &r["capacity"];
    eprintln!("{}", serde_json::to_string_pretty(cap).unwrap());
    eprintln!("{}", done.stdout);
    let found = cap["capacity_rate"].as_f64().expect("a capacity was found");
    let err = (found - ceiling).abs() / ceiling;
    eprintln!(
        "drill capacity {found:.0}/s vs measured ceiling {ceiling:.0}/s: {:.1} % off",
        err * 100.0
    );
    assert!(err <= 0.15, "capacity {found} vs ceiling {ceiling}");
    assert_eq!(
        cap["slo"],
        serde_json::json!(["errors > 5%", "p99 > 200ms"])
    );
    let steps = cap["steps"].as_array().unwrap();
    assert!(steps.len() >= 3 && steps.len() < 12, "{cap}");
    assert_eq!(steps[0]["offered_rate"], 200.0);
    assert!(
        steps.iter().any(|s| s["met_slo"] == false),
        "the drill went past the ceiling"
    );
    assert!(cap["knee_rate"].as_f64().is_some(), "{cap}");
    assert!(done.stdout.contains("capacity "), "{}", done.stdout);
    for f in ["charts/capacity.png", "charts/capacity-p99.png"] {
        assert!(drill.out.join(f).exists(), "{f}");
    }
    let html = std::fs::read_to_string(drill.out.join("report.html")).unwrap();
    assert!(html.contains("chart-capacity") && html.contains("Capacity (step drill)"));

    let plan = Spawned::start(&[
        "capacity",
        drill.out.to_str().unwrap(),
        "--target-peak",
        "583000/s",
        "--headroom",
        "30%",
        "--growth",
        "1.07",
    ])
    .wait(LIMIT);
    assert_eq!(plan.code, Some(0), "{}", plan.output());
    let expect = (583_000.0f64 * 1.3 / found).ceil() as u64;
    assert!(
        plan.stdout.contains(&format!("= {expect}\n")),
        "expected {expect} instances\n{}",
        plan.output()
    );
    eprintln!("{}", plan.stdout);
}

#[test]
fn capacity_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let done = Spawned::start(&[
        "capacity",
        dir.path().to_str().unwrap(),
        "--target-peak",
        "583000/s",
    ])
    .wait(LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.output());
    let done = Spawned::start(&[
        "capacity",
        dir.path().to_str().unwrap(),
        "--target-peak",
        "fast",
    ])
    .wait(LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.output());
}
