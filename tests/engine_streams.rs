//! Stream steps end to end against the embedded shop on 127.0.0.1.
//!
//! SSE: the assistant answers `tokens` events 20 ms apart after a 200 ms think (grown by
//! `(streams/32)²`, under 1 % at the few streams here): the events are counted exactly, time to
//! first event and the gaps land near the plan, and an answer broken off mid-way counts as a
//! `stream_cut` error of its own, exactly once per session, with exactly the events before it.
//!
//! Tolerances (debug build, loaded 2-core machine): time to first event p50 in
//! [200 ms, 200 ms + service time + 15 ms], gap p50 in [15 ms, 25 ms].

mod support;

use flashcrowd::shop::{start_background, ShopConfig};
use std::time::Duration;
use support::{count, named, num, Scenario};

const LIMIT: Duration = Duration::from_secs(60);
/// Sessions of the open-model plans below (uniform 5/s for 2 s).
const SESSIONS: u64 = 10;
const TOKENS: u64 = 20;

fn scenario(until: &str, query: &str) -> String {
    format!(
        r#"
name: assistant
defaults: {{ timeout: 5s }}
journeys:
  ask:
    share: 100%
    steps:
      - sse: /api/assistant?q=jacket&tokens={TOKENS}&think_ms=200&every_ms=20{query}
        name: ask
        until: {until}
        expect: {{ first: {{ $.i: 0 }} }}
        capture: {{ first_token: $.token }}
      - get: /api/items/1
load:
  stages: [ {{ rate: 5/s, for: 2s }} ]
  arrivals: uniform
"#
    )
}

#[test]
fn sse_events_are_counted_exactly_with_first_event_and_gaps_near_the_plan() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(&scenario("{ event: done }", ""));
    let report = sc.run_passing(&shop.url(), &["--threads", "1"], LIMIT);
    let ask = named(&report, "requests", "ask");
    assert_eq!(count(ask, "/count"), SESSIONS, "{ask:#}");
    assert_eq!(ask["errors"], serde_json::json!({}), "{ask:#}");
    let st = &ask["stream"];
    // Every token and the `done` event of every answer.
    assert_eq!(count(st, "/received"), SESSIONS * (TOKENS + 1), "{st:#}");
    let stats = shop.stats();
    assert_eq!(stats.streams.assistant_answers, SESSIONS);
    assert_eq!(stats.streams.assistant_tokens, SESSIONS * TOKENS);
    let first = num(st, "/first_event_ms/p50");
    let service = num(ask, "/service_time_ms/p50");
    assert!(
        (200.0..=200.0 + service + 15.0).contains(&first),
        "time to first event p50 {first} ms (service {service} ms)"
    );
    let gap = num(st, "/gap_ms/p50");
    assert!((15.0..=25.0).contains(&gap), "gap p50 {gap} ms");
    let duration = num(st, "/duration_ms/p50");
    assert!(
        duration >= 200.0 + 20.0 * TOKENS as f64 - 20.0,
        "duration p50 {duration} ms"
    );
    // The step after the stream ran once per session.
    assert_eq!(
        count(&report, "/totals/requests"),
        2 * SESSIONS,
        "{report:#}"
    );
}

#[test]
fn an_answer_broken_off_mid_stream_is_a_stream_cut_counted_once_per_session() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(&scenario("{ event: done }", "&break_after=5"));
    let done = sc.run(&shop.url(), &["--threads", "1"], LIMIT);
    let report = sc.report(&done);
    let ask = named(&report, "requests", "ask");
    assert_eq!(count(ask, "/count"), SESSIONS, "{ask:#}");
    assert_eq!(count(ask, "/errors/stream_cut"), SESSIONS, "{ask:#}");
    assert_eq!(
        ask["errors"].as_object().map(|m| m.len()),
        Some(1),
        "{ask:#}"
    );
    assert_eq!(count(&ask["stream"], "/received"), SESSIONS * 5, "{ask:#}");
    assert_eq!(shop.stats().streams.assistant_breaks, SESSIONS);
    // A failed stream ends the session: the step after it never ran.
    assert_eq!(count(&report, "/totals/requests"), SESSIONS, "{report:#}");
}

/// The same break with no gap between the events: all of them and the cut are ready at once.
/// Every event written before the cut still reaches the client (the shop flushes them before
/// it cuts; before it did, hyper dropped them with the connection and 0 of 5 arrived).
#[test]
fn events_ready_together_with_the_cut_all_arrive_before_it() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(&scenario("{ event: done }", "&break_after=5&every_ms=0"));
    let done = sc.run(&shop.url(), &["--threads", "1"], LIMIT);
    let report = sc.report(&done);
    let ask = named(&report, "requests", "ask");
    assert_eq!(count(ask, "/errors/stream_cut"), SESSIONS, "{ask:#}");
    assert_eq!(count(&ask["stream"], "/received"), SESSIONS * 5, "{ask:#}");
    assert_eq!(shop.stats().streams.assistant_tokens, SESSIONS * 5);
}

#[test]
fn until_events_stops_reading_at_exactly_that_many() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let sc = Scenario::new(&scenario("{ events: 7 }", ""));
    let report = sc.run_passing(&shop.url(), &["--threads", "1"], LIMIT);
    let ask = named(&report, "requests", "ask");
    assert_eq!(count(&ask["stream"], "/received"), SESSIONS * 7, "{ask:#}");
    assert_eq!(ask["errors"], serde_json::json!({}), "{ask:#}");
}

#[test]
fn merged_segments_keep_every_stream_figure() {
    let shop = start_background(ShopConfig::default()).expect("the shop starts");
    let yaml = scenario("{ event: done }", "");
    let root = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut received = 0;
    for seg in ["1/2", "2/2"] {
        let sc = Scenario::new(&yaml);
        let r = sc.run_passing(&shop.url(), &["--threads", "1", "--segment", seg], LIMIT);
        received += count(&named(&r, "requests", "ask")["stream"], "/received");
        let dir = root.path().join(seg.replace('/', "-of-"));
        std::fs::rename(&sc.out, &dir).unwrap();
        dirs.push(dir.display().to_string());
    }
    // The segments' arrivals add up to the whole plan's.
    assert_eq!(received, SESSIONS * (TOKENS + 1));
    let out = root.path().join("merged");
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(dirs.iter().map(String::as_str));
    args.extend(["--out", out.to_str().unwrap()]);
    let done = support::Spawned::start(&args).wait(LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.output());
    let merged = support::read_report(&out, &done);
    let st = &named(&merged, "requests", "ask")["stream"];
    assert_eq!(count(st, "/received"), received, "{st:#}");
    assert_eq!(count(st, "/sent"), 0, "{st:#}");
    // The histograms came through whole: the same plan timing as one run.
    let first = num(st, "/first_event_ms/p50");
    assert!(first >= 200.0, "time to first event p50 {first} ms");
    let gap = num(st, "/gap_ms/p50");
    assert!((15.0..=25.0).contains(&gap), "gap p50 {gap} ms");
}
