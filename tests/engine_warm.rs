//! Warm start, seen from the server: before time 0 a run opens the `connection: shared`
//! connections its first phase needs, so they are all accepted before the first planned request
//! arrives, and report.json says how many and how long that took.

mod support;

use std::time::Duration;
use support::server::TestServer;
use support::{count, num, Scenario};

/// An open model of one GET at `rate` for `for_` on `connection` connections, one shard.
fn open(connection: &str, rate: &str, for_: &str) -> String {
    format!(
        r#"
name: warm-open
target: http://127.0.0.1:9
clients:
  app: {{ share: 100%, http: h1, connection: {connection}, pool: 64 }}
journeys:
  get:
    share: 100%
    steps:
      - get: /w/item
load:
  stages: [ {{ rate: {rate}, for: {for_} }} ]
  arrivals: uniform
"#
    )
}

#[test]
fn an_open_model_opens_its_first_connections_before_time_zero_and_reports_it() {
    let server = TestServer::start();
    let sc = Scenario::new(&open("shared", "1000/s", "2s"));
    let done = sc.run(&server.url(), &["--threads", "1"], Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    assert_eq!(count(&report, "/totals/requests"), 2000, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    let warm = &report["generator"]["warm_up"];
    let conns = count(warm, "/connections");
    let ms = num(warm, "/ms");
    // Little's law with headroom, at least 4, at most the pool.
    assert!((4..=64).contains(&conns), "warm_up {warm}");
    // Bounded by the warm-up's 3 s budget (and the second the engine allows past it).
    assert!(ms > 0.0 && ms < 4500.0, "warm_up {warm}");
    let first = server.arrivals("/w/item");
    assert_eq!(first.len(), 2000);
    let first = *first.iter().min().unwrap();
    let accepts = server.accepts();
    let before = accepts.iter().filter(|a| **a < first).count() as u64;
    eprintln!(
        "warm start: {conns} connections in {ms:.1} ms; the server accepted {before} before the \
         first planned request, {} in all",
        accepts.len()
    );
    // Every warm connection (and the run's reachability probe's) was open before time 0.
    assert!(
        before > conns,
        "{before} accepted before the first request, warm_up {warm}"
    );
    assert!(
        done.stdout
            .contains(&format!("warm-up    {conns} connections opened in")),
        "the summary names the warm-up:\n{}",
        done.output()
    );
}

/// `per-user` connections open with their users (a crowd of new phones): nothing ahead.

#[test]
fn per_user_connections_are_not_opened_ahead() {
    let server = TestServer::start();
    let sc = Scenario::new(&open("per-user", "100/s", "1s"));
    let done = sc.run(&server.url(), &["--threads", "1"], Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    assert_eq!(count(&report, "/totals/requests"), 100, "{report:#}");
    assert_eq!(count(&report, "/generator/warm_up/connections"), 0);
    // A warm-up that opened nothing is not a line of the summary.
    assert!(!done.stdout.contains("warm-up"), "{}", done.output());
}
