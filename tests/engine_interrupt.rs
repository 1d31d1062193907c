//! Ctrl-C during a run: arrivals stop, requests in flight get their grace period, and the run
//! still leaves a parseable report.json with status "interrupted" (exit code 3) — promptly, also
//! when the signal comes while the plan has nothing due for a long while.

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::{Duration, Instant};
use support::server::{Freeze, TestServer};
use support::{count, num, wait_for, Scenario};

const LONG: &str = r#"
name: long-run
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/7
load:
  stages:
    - { rate: 50/s, for: 60s }
  arrivals: uniform
"#;

/// A burst, then a long stretch with no arrivals due: nothing in the generator has a reason to
/// wake up during it, yet a Ctrl-C must still stop the run at once.
const BURST_THEN_IDLE: &str = r#"
name: burst-then-idle
target: http://127.0.0.1:9
journeys:
  read:
    share: 100%
    steps:
      - get: /api/items/7
load:
  stages:
    - { rate: 20/s, for: 1s }
    - { rate: 0/s, for: 30s }
  arrivals: uniform
"#;

/// Steady arrivals against a target that stops answering a second into the run: requests pile
/// up in flight, so the first Ctrl-C waits for them (the grace period) and the second must not.
const INTO_A_HUNG_TARGET: &str = r#"
name: hung-target
target: http://127.0.0.1:9
defaults:
  timeout: 60s
journeys:
  read:
    share: 100%
    steps:
      - get: /hang/item
load:
  stages:
    - { rate: 20/s, for: 30s }
  arrivals: uniform
"#;

/// Starts `yaml` against a fresh shop, sends SIGINT once the shop has seen `after` requests, and
/// returns the report, the requests the shop saw, and how long the run took to stop.
fn interrupt(yaml: &str, after: u64) -> (serde_json::Value, u64, Duration) {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(yaml);
    let run = sc.spawn(&shop.url(), &[]);
    wait_for("load to reach the shop", Duration::from_secs(30), || {
        shop.stats().requests >= after
    });
    run.signal(libc::SIGINT);
    let signalled = Instant::now();
    let done = run.wait(Duration::from_secs(90));
    let stop_took = signalled.elapsed();
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(
        stop_took < Duration::from_secs(8),
        "stopped {:.1}s after SIGINT\n{}",
        stop_took.as_secs_f64(),
        done.output()
    );
    let report = sc.report(&done);
    assert_eq!(
        report["run"]["status"], "interrupted",
        "{:#}",
        report["run"]
    );
    let seen = shop.stats().endpoints["GET /api/items/{id}"];
    (report, seen, stop_took)
}

#[test]
fn sigint_leaves_a_report_with_status_interrupted() {
    // About two seconds of load (100 requests at 50/s) before the signal.
    let (report, seen, _) = interrupt(LONG, 100);
    let requests = count(&report, "/totals/requests");
    assert!(requests >= 100, "{requests} requests counted: {report:#}");
    assert!(requests <= seen, "counted {requests}, the shop saw {seen}");
    assert!(
        requests < 50 * 30,
        "arrivals went on after the signal: {requests}"
    );
    assert!(
        num(&report, "/run/duration_s") < 30.0,
        "{:#}",
        report["run"]
    );
}

#[test]
fn sigint_while_no_arrival_is_due_stops_the_run_at_once() {
    // All 20 requests of the burst are done before the signal; 30 s of nothing would follow.
    let (report, seen, took) = interrupt(BURST_THEN_IDLE, 20);
    assert_eq!(count(&report, "/totals/requests"), 20, "{report:#}");
    assert_eq!(seen, 20);
    eprintln!("stopped {:.2}s after SIGINT", took.as_secs_f64());
}

#[test]
fn a_second_sigint_stops_without_waiting_for_requests_in_flight() {
    // From 1 s after the first request, the server holds every answer for 100 s.
    let server = TestServer::freezing(Freeze {
        prefix: "/hang/",
        period: Duration::from_secs(1000),
        from: Duration::from_secs(1),
        len: Duration::from_secs(100),
    });
    let sc = Scenario::new(INTO_A_HUNG_TARGET);
    let run = sc.spawn(&server.url(), &[]);
    // 20 answered, then at least 10 hanging.
    wait_for("requests to hang", Duration::from_secs(30), || {
        server.count("/hang/") >= 30
    });
    // SAFETY (both calls): kill(2) on the pid of a child we started and have not yet reaped.
    run.signal(libc::SIGINT);
    // A person pressing Ctrl-C twice; the first press has started the grace period by now.
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGINT);
    let second = Instant::now();
    let done = run.wait(Duration::from_secs(90));
    let took = second.elapsed();
    assert_eq!(done.code, Some(3), "{}", done.output());
    eprintln!("stopped {:.2}s after the second SIGINT", took.as_secs_f64());
    assert!(
        took < Duration::from_millis(2500),
        "stopped {:.1}s after the second SIGINT: it waited out the grace period\n{}",
        took.as_secs_f64(),
        done.output()
    );
    let report = sc.report(&done);
    assert_eq!(
        report["run"]["status"], "interrupted",
        "{:#}",
        report["run"]
    );
    assert!(count(&report, "/totals/requests") >= 20, "{report:#}");
}
