//! Targets that fail the way production targets fail under a flash crowd: connections reset,
//! accepted and never answered, bodies trickled or endless, invalid HTTP, heads cut short, wrong
//! Content-Length, refused connections. Every run must complete in bounded time, write a
//! parseable report.json, classify every request's error, end no request later than its timeout
//! plus a margin, and keep its memory bounded.
//!
//! Each run: 20 arrivals/s for 2 s (exactly 40 single-request sessions), `timeout: 1s`,
//! `max_body: 65536`, and `--threshold "errors < 1%"`, so a run whose requests all fail exits 1.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use support::hostile::{refused_port, wait_with_peak_rss, Fault, HostileServer};
use support::{count, num, Finished, Scenario};

const PLANNED: u64 = 40;
const TIMEOUT_MS: f64 = 1000.0;
/// How far past its timeout a request may end on a loaded 2-core machine in a debug build.
const MARGIN_MS: f64 = 1000.0;
/// Plan (2 s) + timeout (1 s) + slack for a loaded machine. The 5 s grace period is not needed:
/// the timeout ends every request in flight.
const RUN_LIMIT: Duration = Duration::from_secs(12);
/// Peak RSS of the generator while a target sends endless bodies.
const RSS_LIMIT: u64 = 200 << 20;

fn yaml(max_body: Option<u64>) -> String {
    let max_body = max_body
        .map(|b| format!("  max_body: {b}\n"))
        .unwrap_or_default();
    format!(
        r#"
name: hostile-target
target: http://127.0.0.1:9
defaults:
  timeout: 1s
{max_body}journeys:
  read:
    share: 100%
    steps:
      - get: /item
load:
  stages:
    - {{ rate: 20/s, for: 2s }}
  arrivals: uniform
"#
    )
}

struct Outcome {
    done: Finished,
    report: Value,
    peak_rss: u64,
    /// Error kind → count, over every request name and client.
    kinds: BTreeMap<String, u64>,
}

/// Runs the standard plan against `server` with `max_body`, and checks what every hostile run
/// must do: finish in time, no panic, a parseable report with the planned request count.
fn run_against(server: &HostileServer, max_body: Option<u64>) -> Outcome {
    let sc = Scenario::new(&yaml(max_body));
    let run = sc.spawn(&server.url(), &["--threshold", "errors < 1%"]);
    let (done, peak_rss) = wait_with_peak_rss(run, RUN_LIMIT);
    assert!(
        !done.stderr.contains("panicked") && !done.stdout.contains("panicked"),
        "{}",
        done.output()
    );
    let report = sc.report(&done);
    support::assert_report_shape(&report);
    assert_eq!(
        count(&report, "/totals/requests"),
        PLANNED,
        "every planned arrival sends its one request\n{}",
        done.output()
    );
    let mut kinds = BTreeMap::new();
    for r in report["requests"].as_array().unwrap() {
        for (k, n) in r["errors"].as_object().unwrap() {
            *kinds.entry(k.clone()).or_insert(0) += n.as_u64().unwrap();
        }
    }
    let max = num(&report, "/latency_ms/max");
    assert!(
        max <= TIMEOUT_MS + MARGIN_MS,
        "a request took {max} ms, past its 1 s timeout + margin\n{}",
        done.output()
    );
    eprintln!(
        "outcome: exit {:?} in {:.1}s, errors {:?}, latency max {max} ms, peak RSS {} MiB",
        done.code,
        done.elapsed.as_secs_f64(),
        kinds,
        peak_rss >> 20
    );
    Outcome {
        done,
        report,
        peak_rss,
        kinds,
    }
}

/// Every request failed, each with one of `allowed`; the gate failed (exit 1).
fn all_failed_as(o: &Outcome, allowed: &[&str]) {
    assert_eq!(
        count(&o.report, "/totals/errors"),
        PLANNED,
        "every request should fail: {:?}\n{}",
        o.kinds,
        o.done.output()
    );
    let total: u64 = o.kinds.values().sum();
    assert_eq!(total, PLANNED, "{:?}", o.kinds);
    for k in o.kinds.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "error kind `{k}` where {allowed:?} was expected: {:?}\n{}",
            o.kinds,
            o.done.output()
        );
    }
    assert_eq!(
        o.done.code,
        Some(1),
        "`errors < 1%` fails: exit 1\n{}",
        o.done.output()
    );
    assert_eq!(o.report["run"]["status"], "failed");
}

#[test]
fn a_target_that_resets_every_connection_gives_reset_errors() {
    let s = HostileServer::start(Fault::Reset);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["reset"]);
}

#[test]
fn a_target_that_accepts_and_never_answers_gives_timeouts() {
    let s = HostileServer::start(Fault::Hang);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["timeout"]);
    // Each ended at its timeout, not before.
    assert!(num(&o.report, "/latency_ms/p50") >= TIMEOUT_MS * 0.95);
}

#[test]
fn a_target_that_trickles_one_byte_per_100ms_gives_timeouts() {
    let s = HostileServer::start(Fault::Trickle);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["timeout"]);
}

#[test]
fn an_endless_chunked_body_is_cut_at_max_body_with_bounded_memory() {
    let s = HostileServer::start(Fault::EndlessChunked);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["body"]);
    assert!(o.peak_rss > 0, "VmHWM was read");
    assert!(o.peak_rss < RSS_LIMIT, "peak RSS {} MiB", o.peak_rss >> 20);
}

#[test]
fn an_endless_content_length_body_is_cut_at_max_body_with_bounded_memory() {
    let s = HostileServer::start(Fault::EndlessLength);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["body"]);
    assert!(o.peak_rss > 0, "VmHWM was read");
    assert!(o.peak_rss < RSS_LIMIT, "peak RSS {} MiB", o.peak_rss >> 20);
}

#[test]
fn an_endless_body_under_the_default_10mib_limit_is_cut_with_bounded_memory() {
    // Bodies are counted, not kept (no capture/expect): 40 × 10 MiB must not be buffered.
    let s = HostileServer::start(Fault::EndlessChunked);
    let o = run_against(&s, None);
    // Loopback delivers 10 MiB well within the 1 s timeout, but a loaded machine may not.
    all_failed_as(&o, &["body", "timeout"]);
    assert!(o.peak_rss < RSS_LIMIT, "peak RSS {} MiB", o.peak_rss >> 20);
}

#[test]
fn an_answer_that_is_not_http_gives_not_http_errors_and_says_so() {
    let s = HostileServer::start(Fault::Garbage);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["not_http"]);
    assert!(
        o.done.stdout.contains(
            "DIAGNOSIS: 40 of 40 requests got an answer that is not HTTP (not_http): the target is \
             not speaking HTTP on this port"
        ),
        "{}",
        o.done.output()
    );
}

#[test]
fn a_head_cut_short_gives_a_classified_error() {
    let s = HostileServer::start(Fault::CloseMidHeaders);
    let o = run_against(&s, Some(65536));
    // An incomplete head is a broken exchange: `protocol` or `reset`, never a success.
    all_failed_as(&o, &["protocol", "reset"]);
}

#[test]
fn a_body_shorter_than_its_content_length_gives_body_errors() {
    let s = HostileServer::start(Fault::ShortBody);
    let o = run_against(&s, Some(65536));
    all_failed_as(&o, &["body", "reset"]);
}

#[test]
fn extra_bytes_after_a_content_length_body_are_not_a_crash() {
    // The declared 5 bytes make a complete, correct response; the bytes after it can only be
    // noticed if the connection is reused (they are not a valid response). Each arrival here is
    // a new session with its own connection, so every request succeeds; what matters is that
    // nothing hangs or panics and the run passes its gate.
    let s = HostileServer::start(Fault::LongBody);
    let o = run_against(&s, Some(65536));
    for k in o.kinds.keys() {
        assert!(
            ["protocol", "reset"].contains(&k.as_str()),
            "{:?}\n{}",
            o.kinds,
            o.done.output()
        );
    }
    let expected = if o.kinds.is_empty() { 0 } else { 1 };
    assert_eq!(o.done.code, Some(expected), "{}", o.done.output());
}

#[test]
fn extra_bytes_after_a_body_on_a_reused_connection_are_classified() {
    // A closed-model user reuses its connection: the second response on it starts with the
    // stray bytes of the first.
    let s = HostileServer::start(Fault::LongBody);
    let sc = Scenario::new(
        r#"
name: reused-connection
target: http://127.0.0.1:9
defaults:
  timeout: 1s
journeys:
  read:
    share: 100%
    steps:
      - get: /a
      - get: /b
load:
  users:
    - { users: 2, for: 2s }
"#,
    );
    let done = sc.run(&s.url(), &[], RUN_LIMIT);
    assert!(!done.stderr.contains("panicked"), "{}", done.output());
    let report = sc.report(&done);
    let mut kinds = BTreeMap::new();
    for r in report["requests"].as_array().unwrap() {
        for (k, n) in r["errors"].as_object().unwrap() {
            *kinds.entry(k.clone()).or_insert(0u64) += n.as_u64().unwrap();
        }
    }
    eprintln!(
        "outcome: exit {:?}, requests {}, errors {:?}",
        done.code, report["totals"]["requests"], kinds
    );
    assert!(count(&report, "/totals/requests") > 0);
    for k in kinds.keys() {
        assert!(
            ["protocol", "reset", "body"].contains(&k.as_str()),
            "{kinds:?}\n{}",
            done.output()
        );
    }
    assert!(num(&report, "/latency_ms/max") <= TIMEOUT_MS + MARGIN_MS);
}

#[test]
fn a_target_that_refuses_connections_stops_the_run_at_the_probe() {
    let port = refused_port();
    let sc = Scenario::new(&yaml(Some(65536)));
    let done = sc.run(&format!("http://127.0.0.1:{port}"), &[], RUN_LIMIT);
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(done.stderr.contains(&format!("127.0.0.1:{port}")));
    assert!(!done.stderr.contains("panicked"), "{}", done.output());
    assert!(!sc.out.join("report.json").exists(), "no load, no report");
}

#[test]
fn a_target_that_never_answers_even_the_probe_stops_the_run_at_the_probe() {
    let s = HostileServer::start(Fault::Silent);
    let sc = Scenario::new(&yaml(Some(65536)));
    let done = sc.run(&s.url(), &[], Duration::from_secs(20));
    assert_eq!(done.code, Some(3), "{}", done.output());
    assert!(done.stderr.contains("unreachable"), "{}", done.output());
    // The probe gives up after its own 5 s bound.
    assert!(done.elapsed < Duration::from_secs(15), "{}", done.output());
    assert_eq!(s.requests(), 1, "the probe only: no load was sent");
}

#[test]
fn a_target_that_starts_refusing_after_the_probe_gives_connect_errors() {
    let s = HostileServer::start(Fault::RefuseAfterFirst);
    let o = run_against(&s, Some(65536));
    assert_eq!(s.probes(), 1);
    all_failed_as(&o, &["connect"]);
    assert!(
        o.done.stdout.contains(
            "DIAGNOSIS: 40 of 40 requests could not connect (connect): the target refused \
             connections or could not be reached"
        ),
        "{}",
        o.done.output()
    );
    assert!(!o.done.stdout.contains("not HTTP"), "{}", o.done.output());
}
