//! `load.iterations` and `--iterations N`: a closed model runs N journeys per user, an open model
//! N sessions in all (split over segments by arrival number), and the run ends when they are
//! done instead of at the end of its plan. The shop counts what arrived.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{count, Scenario};

const LIMIT: Duration = Duration::from_secs(60);

/// Item pages the shop served (the run's reachability probe asks for another path).
fn item_pages(shop: &flashcrowd::shop::ShopHandle) -> u64 {
    shop.stats().endpoints["GET /api/items/{id}"]
}

/// Three users for a minute, two requests per journey, 50 ms think time.
const CLOSED: &str = r#"
name: closed-iterations
target: http://127.0.0.1:9
journeys:
  browse:
    share: 100%
    steps:
      - get: /api/items?page=1
      - think: 50ms
      - get: /api/items/1
load:
  users:
    - { users: 3, for: 1m }
  iterations: 4
"#;

/// 50 sessions a second for a minute, one request each.
const OPEN: &str = r#"
name: open-iterations
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/1
load:
  stages:
    - { rate: 50/s, for: 1m }
  arrivals: uniform
"#;

#[test]
fn a_closed_model_runs_each_users_journeys_and_ends_early() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = Scenario::new(CLOSED);
    let r = sc.run_passing(&shop.url(), &[], LIMIT);
    // 3 users × 4 journeys × 2 requests, exactly.
    assert_eq!(count(&r, "/totals/sessions_started"), 12, "{}", r["totals"]);
    assert_eq!(count(&r, "/totals/requests"), 24, "{}", r["totals"]);
    assert_eq!(item_pages(&shop), 12, "one item page per journey");
    assert_eq!(count(&r, "/totals/errors"), 0, "{}", r["totals"]);
    assert_eq!(r["run"]["status"], "completed", "{}", r["run"]);
    // Four journeys of about 100 ms each: the run ends well before its one-minute plan (30 s
    // leaves room for a loaded debug build).
    let took = r["run"]["duration_s"].as_f64().unwrap();
    assert!(
        took < 30.0,
        "the run should end when its iterations are done, took {took}s"
    );
}

#[test]
fn iterations_on_the_command_line_count_sessions_in_all_over_segments() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = Scenario::new(OPEN);
    let whole = sc.run_passing(&shop.url(), &["--iterations", "7"], LIMIT);
    assert_eq!(
        count(&whole, "/totals/sessions_started"),
        7,
        "{}",
        whole["totals"]
    );
    assert_eq!(count(&whole, "/totals/requests"), 7);
    // Seven arrivals at 50/s are out in 140 ms; the plan's minute is not waited for.
    let took = whole["run"]["duration_s"].as_f64().unwrap();
    assert!(took < 30.0, "took {took}s");

    // Segments take arrivals k ≡ i−1 (mod n): 0, 2, 4, 6 and 1, 3, 5.
    let mut parts = vec![];
    for seg in ["1/2", "2/2"] {
        let sc = Scenario::new(OPEN);
        let r = sc.run_passing(&shop.url(), &["--iterations", "7", "--segment", seg], LIMIT);
        parts.push(count(&r, "/totals/sessions_started"));
    }
    assert_eq!(parts, [4, 3]);
    assert_eq!(
        item_pages(&shop),
        14,
        "7 for the whole run, 4 + 3 for its segments"
    );
}

#[test]
fn zero_iterations_is_refused_before_anything_is_sent() {
    let shop = start_background(ShopConfig::default()).expect("start the shop");
    let sc = Scenario::new(OPEN);
    let flag = sc.run(&shop.url(), &["--iterations", "0"], LIMIT);
    assert_eq!(flag.code, Some(2), "{}", flag.output());
    assert!(
        flag.stderr.contains("give a whole number of at least 1"),
        "{}",
        flag.output()
    );
    let key = sc.run(&shop.url(), &["--set", "load.iterations=0"], LIMIT);
    assert_eq!(key.code, Some(2), "{}", key.output());
    assert!(
        key.stderr.contains("iterations must be at least 1"),
        "{}",
        key.output()
    );
    assert_eq!(item_pages(&shop), 0);
}
