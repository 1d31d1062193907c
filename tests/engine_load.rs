//! The load model's guard rails end to end: an abort rule stops a run (exit 3, status aborted,
//! report written), `max_users` caps sessions in flight and counts the rest as dropped, a closed
//! model holds its planned users, and `pick: unique` rows are used once across shards.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::server::{Freeze, TestServer};
use support::{count, num, Scenario};

#[test]
fn an_abort_rule_stops_the_run_with_exit_3_and_a_report() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    // Every request is a 404: 100 % errors from the first second.
    let sc = Scenario::new(
        r#"
name: abort-me
journeys:
  missing: { share: 100%, steps: [ { get: /api/items/999999 } ] }
load:
  stages: [ { rate: 50/s, for: 30s } ]
  arrivals: uniform
abort:
  - errors > 30% for 2s
"#,
    );
    let began = Instant::now();
    let done = sc.run(&shop.url(), &["--threads", "1"], Duration::from_secs(30));
    let took = began.elapsed();
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(took < Duration::from_secs(15), "the abort took {took:?}");
    let report = sc.report(&done);
    assert_eq!(report["run"]["status"], "aborted", "{report:#}");
    let reason = report["run"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("errors > 30% for 2s"), "{reason}");
    assert!(num(&report, "/run/duration_s") < 10.0, "{report:#}");
    assert!(count(&report, "/totals/requests") >= 100, "{report:#}");
    assert_eq!(
        count(&report, "/totals/errors"),
        count(&report, "/totals/requests")
    );
}

#[test]
fn max_users_caps_sessions_in_flight_and_counts_the_rest_as_dropped() {
    // Every request in the first 3 s is held until 3 s: the first ten sessions fill the cap.
    let server = TestServer::freezing(Freeze {
        prefix: "/slow",
        period: Duration::from_secs(1000),
        from: Duration::ZERO,
        len: Duration::from_secs(3),
    });
    let sc = Scenario::new(
        r#"
name: capped
journeys:
  slow: { share: 100%, steps: [ { get: /slow } ] }
load:
  stages: [ { rate: 100/s, for: 2s } ]
  arrivals: uniform
  max_users: 10
"#,
    );
    let report = sc.run_passing(&server.url(), &["--threads", "1"], Duration::from_secs(30));
    assert_eq!(count(&report, "/totals/sessions_started"), 10, "{report:#}");
    assert_eq!(
        count(&report, "/totals/sessions_dropped"),
        190,
        "{report:#}"
    );
    assert_eq!(count(&report, "/generator/dropped"), 190, "{report:#}");
    assert_eq!(server.count("/slow"), 10);
}

#[test]
fn a_closed_model_holds_its_planned_users() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(
        r#"
name: closed
journeys:
  loop: { share: 100%, steps: [ { get: /api/items/1 }, { think: 50ms } ] }
load:
  users: [ { users: 8, for: 3s } ]
"#,
    );
    let report = sc.run_passing(&shop.url(), &["--threads", "2"], Duration::from_secs(30));
    let series = report["series"].as_array().expect("a series");
    // Snapshots at the end of seconds 1 and 2 see all eight users busy (in flight).
    for p in &series[..2] {
        assert_eq!(p["in_flight"], 8, "{p}");
    }
    // Each user loops about every 50 ms: 8 users × 3 s ÷ ~50 ms ≈ 480 requests; allow for a slow
    // debug build on a loaded machine, but not for a missing or doubled user.
    let requests = count(&report, "/totals/requests");
    assert!((200..=500).contains(&requests), "{requests} requests");
    assert_eq!(shop.stats().endpoints["GET /api/items/{id}"], requests);
}

#[test]
fn unique_rows_are_used_once_across_shards_and_run_out_cleanly() {
    let server = TestServer::start();
    let sc = Scenario::new(
        r#"
name: unique
data:
  users: { csv: users.csv, pick: unique }
journeys:
  one: { share: 100%, steps: [ { get: "/u/{{ users.id }}" } ] }
load:
  stages: [ { rate: 120/s, for: 1s } ]
  arrivals: uniform
"#,
    );
    let rows: String = std::iter::once("id\n".to_string())
        .chain((0..100).map(|i| format!("u{i:03}\n")))
        .collect();
    std::fs::write(sc.dir.path().join("users.csv"), rows).unwrap();
    let report = sc.run_passing(&server.url(), &["--threads", "2"], Duration::from_secs(30));
    let paths: Vec<String> = server
        .hits()
        .into_iter()
        .map(|h| h.path)
        .filter(|p| p.starts_with("/u/"))
        .collect();
    let distinct: HashSet<&String> = paths.iter().collect();
    assert_eq!(paths.len(), 100, "each of the 100 rows once");
    assert_eq!(distinct.len(), 100, "no row twice");
    // 120 arrivals, 100 rows: the last 20 sessions have no row and fail as journeys.
    assert_eq!(
        count(&report, "/totals/sessions_started"),
        120,
        "{report:#}"
    );
    assert_eq!(count(&report, "/journeys/0/errors"), 20, "{report:#}");
    assert_eq!(count(&report, "/journeys/0/completed"), 100, "{report:#}");
}

#[test]
fn a_stop_when_rule_ends_a_step_drill_early() {
    // At most 4 orders at once, 4 waiting, ~5 ms each: the shop tops out near 400 orders/s and
    // answers 503 beyond it.
    let shop = start_background(ShopConfig {
        capacity: 4,
        queue: 4,
        service_us: 5000,
        ..ShopConfig::default()
    })
    .expect("the shop starts");
    let sc = Scenario::new(
        r#"
name: drill
journeys:
  buy: { share: 100%, steps: [ { post: /api/cart, json: { sku: 1, qty: 1 } } ] }
load:
  steps: { start: 200/s, step: 200/s, every: 1s, max: 4000/s, stop_when: [ "errors > 1%" ] }
  arrivals: uniform
"#,
    );
    let began = Instant::now();
    let report = sc.run_passing(&shop.url(), &["--threads", "1"], Duration::from_secs(60));
    let reason = report["run"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("stop_when `errors > 1%`"), "{report:#}");
    // The plan is 20 steps of 1 s; the drill must end well before.
    assert!(num(&report, "/run/duration_s") < 15.0, "{report:#}");
    assert!(began.elapsed() < Duration::from_secs(30));
    assert!(count(&report, "/totals/errors") > 0, "{report:#}");
}
