//! Coordinated omission: against a server that freezes for 1 s once every 5 s, an open-model run
//! keeps arriving on schedule, so the requests caught in the freeze show up in the latency tail
//! (p99 near 1 s) while the median service time stays that of an unfrozen server. TTFB is
//! reported beside them.

mod support;

use std::time::Duration;
use support::server::{Freeze, TestServer};
use support::{count, num, Scenario};

/// 100 fresh sessions a second for 7 s: one freeze window ([4 s, 5 s) after the first request)
/// falls inside the run, catching about 100 of the 700 requests.
const OPEN_100: &str = r#"
name: co-open
target: http://127.0.0.1:9
journeys:
  item:
    share: 100%
    steps:
      - get: /co/item
load:
  stages:
    - { rate: 100/s, for: 7s }
  arrivals: uniform
"#;

#[test]
fn a_one_second_freeze_shows_in_p99_latency_not_in_median_service_time() {
    let server = TestServer::freezing(Freeze {
        prefix: "/co/",
        period: Duration::from_secs(5),
        from: Duration::from_secs(4),
        len: Duration::from_secs(1),
    });
    let sc = Scenario::new(OPEN_100);
    let report = sc.run_passing(&server.url(), &[], Duration::from_secs(60));
    let requests = count(&report, "/totals/requests");
    assert_eq!(requests, 700, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    assert_eq!(server.count("/co/"), 700);

    let lat = |k: &str| num(&report, &format!("/latency_ms/{k}"));
    let svc = |k: &str| num(&report, &format!("/service_time_ms/{k}"));
    let ttfb = |k: &str| num(&report, &format!("/ttfb_ms/{k}"));
    let summary = format!(
        "latency p50 {} p99 {} max {} · service p50 {} p99 {} · ttfb p50 {} p99 {}",
        lat("p50"),
        lat("p99"),
        lat("max"),
        svc("p50"),
        svc("p99"),
        ttfb("p50"),
        ttfb("p99")
    );
    eprintln!("{summary}");
    // The freeze is in the tail: p99 near 1 s, far above the unfrozen answers.
    assert!(
        (500.0..=2000.0).contains(&lat("p99")),
        "p99 should be near 1 s: {summary}"
    );
    assert!(lat("max") >= 900.0, "{summary}");
    // Most requests did not meet the freeze: the medians are those of a fast server.
    assert!(svc("p50") < 100.0, "{summary}");
    assert!(lat("p50") < 100.0, "{summary}");
    // Latency counts from the intended instant, so it is never below the service time, and
    // the first byte never comes after the last.
    assert!(lat("p99") >= svc("p99") * 0.99, "{summary}");
    assert!(lat("max") >= svc("max") * 0.99, "{summary}");
    assert!(ttfb("p50") > 0.0, "ttfb is reported: {summary}");
    assert!(ttfb("p50") <= svc("p50"), "{summary}");
    // The server holds the head of a frozen answer, so the freeze is in the TTFB tail too.
    assert!(ttfb("p99") >= 500.0, "{summary}");
    // The per-request entry carries the same three distributions.
    let entry = &report["requests"][0];
    for k in ["latency_ms", "service_time_ms", "ttfb_ms"] {
        assert!(entry[k]["p99"].is_number(), "requests[0].{k}: {entry}");
    }
}
