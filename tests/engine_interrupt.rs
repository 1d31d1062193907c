//! Ctrl-C during a run: arrivals stop, requests in flight get their grace period, and the run
//! still leaves a parseable report.json with status "interrupted" (exit code 3).

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::{Duration, Instant};
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

#[test]
fn sigint_leaves_a_report_with_status_interrupted() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(LONG);
    let run = sc.spawn(&shop.url(), &[]);
    // About two seconds of load (100 requests at 50/s) before the signal.
    wait_for("load to reach the shop", Duration::from_secs(30), || {
        shop.stats().requests >= 100
    });
    // SAFETY: kill(2) on the pid of a child we started and have not yet reaped.
    let rc = unsafe { libc::kill(run.pid(), libc::SIGINT) };
    assert_eq!(rc, 0, "send SIGINT");
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
    let requests = count(&report, "/totals/requests");
    let seen = shop.stats().endpoints["GET /api/items/{id}"];
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
