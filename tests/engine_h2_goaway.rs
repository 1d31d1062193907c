//! HTTP/2 servers that go away and reset streams, per RFC 9113, against a purpose-built h2c
//! server on 127.0.0.1 (`support::goaway`):
//!
//! - a server that sends GOAWAY after every 500 streams of a connection (finishing the streams
//!   it took, refusing those past the limit): no request is lost — each is answered exactly once,
//!   GETs and POSTs alike — and the requests refused by a connection going away are sent again on
//!   a new one and counted as `retried`;
//! - the same server advertising a limit of 16 concurrent streams, with bursts of 120: the
//!   requests past the limit wait in the generator (never parked in hyper, where a GOAWAY would
//!   drop them unsent and unretryable), the server never sees more than 16 at once, and the ones
//!   still waiting when the connection goes away are sent on the next: none lost;
//! - RST_STREAM `REFUSED_STREAM` (the server did not process it): sent again, even a POST, and
//!   counted as `retried`; RST_STREAM `INTERNAL_ERROR`: an error of its own kind,
//!   `stream_reset`, never resent.
//!
//! Open model with uniform arrivals (exact session counts), one shard, `seq()` paths so each
//! request is told apart at the server.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::goaway::GoawayServer;
use support::{count, Scenario};

const LIMIT: Duration = Duration::from_secs(90);

fn scenario(connection: &str, steps: &str, rate: u64, secs: u64) -> String {
    format!(
        r#"
name: h2-goaway
target: http://127.0.0.1:9
defaults:
  timeout: 10s
clients:
  only:
    share: 100%
    http: h2
    connection: {connection}
journeys:
  walk:
    share: 100%
    steps:
{steps}load:
  stages:
    - {{ rate: {rate}/s, for: {secs}s }}
    - {{ rate: 0/s, for: 3s }}
  arrivals: uniform
"#
    )
}

/// The server answered `n` distinct requests, each exactly once.
fn each_answered_once(server: &GoawayServer, n: u64) {
    let streams = server.streams();
    let mut answered: BTreeMap<&str, usize> = BTreeMap::new();
    for s in streams.iter().filter(|s| s.answered) {
        *answered.entry(s.path.as_str()).or_insert(0) += 1;
    }
    assert_eq!(answered.len() as u64, n, "every request was answered");
    assert!(
        answered.values().all(|&c| c == 1),
        "exactly once: {:?}",
        answered
            .iter()
            .filter(|(_, c)| **c != 1)
            .collect::<Vec<_>>()
    );
}

/// 1,200 sessions (200/s for 6 s) gather in rendezvous batches of 120 and then send a GET and a
/// POST each on one shared HTTP/2 connection: bursts of 120 streams, 2,400 in all, against a
/// server that goes away after 500 streams of a connection — in the middle of a burst, so the
/// rest of that burst is refused and must be sent again on a new connection. Nothing is lost:
/// each request is answered exactly once; the retries are counted, one per refused stream or
/// per request caught in the client's queue when the GOAWAY came.
#[test]
fn goaway_every_500_streams_loses_no_request() {
    let server = GoawayServer::start(500, Duration::from_millis(20));
    let steps = "      - rendezvous: { name: burst, users: 120, timeout: 10s }\n      - get: /g/{{ seq() }}\n      - post: /p/{{ seq() }}\n        json: { sku: 1 }\n";
    let sc = Scenario::new(&scenario("shared", steps, 200, 6));
    let report = sc.run_passing(&server.url(), &["--threads", "1"], LIMIT);
    let n = 2400;
    assert_eq!(
        count(&report, "/totals/sessions_started"),
        n / 2,
        "{report:#}"
    );
    assert_eq!(count(&report, "/totals/requests"), n, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    each_answered_once(&server, n);
    let (goaways, refused) = (server.goaways(), server.refused_past_limit() as u64);
    let retried = count(&report, "/totals/retried");
    eprintln!(
        "GOAWAYs {goaways}, connections {}, refused past the limit {refused}, retried {retried}",
        server.connections()
    );
    assert!(
        goaways >= 3,
        "2,400 streams, 500 a connection: GOAWAYs {goaways}"
    );
    assert!(
        refused >= 1,
        "a burst straddles the limit: {refused} refused"
    );
    assert!(
        retried >= refused && retried < n,
        "every refused stream was retried (and requests queued at a GOAWAY): {retried} retried, {refused} refused"
    );
}

/// Each burst of 120 is 7.5 times the server's stream limit of 16, so at every GOAWAY about a
/// hundred requests are waiting for a stream. None is lost and none is sent twice: those that
/// never left the generator go out on the next connection (a hyper that parked them would have
/// failed them with "dispatch gone", and a POST cannot be resent on that answer).
#[test]
fn goaway_at_the_stream_limit_loses_no_waiting_request() {
    let server = GoawayServer::start_limited(500, Duration::from_millis(20), Some(16));
    let steps = "      - rendezvous: { name: burst, users: 120, timeout: 10s }\n      - get: /g/{{ seq() }}\n      - post: /p/{{ seq() }}\n        json: { sku: 1 }\n";
    let sc = Scenario::new(&scenario("shared", steps, 200, 6));
    let report = sc.run_passing(&server.url(), &["--threads", "1"], LIMIT);
    let n = 2400;
    assert_eq!(count(&report, "/totals/requests"), n, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    each_answered_once(&server, n);
    assert!(
        server.most_in_flight() <= 16,
        "the server's limit holds: {} streams at once",
        server.most_in_flight()
    );
    // 2,400 answered streams at 500 a connection need at least 5 connections, 4 GOAWAYs.
    assert!(server.goaways() >= 4, "GOAWAYs {}", server.goaways());
    eprintln!(
        "GOAWAYs {}, connections {}, refused past the limit {}, retried {}, most in flight {}",
        server.goaways(),
        server.connections(),
        server.refused_past_limit(),
        count(&report, "/totals/retried"),
        server.most_in_flight()
    );
}

/// REFUSED_STREAM: the POST is sent again (the server said it did not process it) and answered;
/// INTERNAL_ERROR: `stream_reset`, not resent.
#[test]
fn refused_streams_are_retried_and_other_resets_are_stream_reset() {
    let server = GoawayServer::start(usize::MAX, Duration::ZERO);
    let steps = "      - post: /refuse-once/{{ seq() }}\n        json: { sku: 1 }\n      - get: /rst/{{ seq() }}\n";
    let sc = Scenario::new(&scenario("per-user", steps, 10, 1));
    let done = sc.run(&server.url(), &["--threads", "1"], LIMIT);
    let report = sc.report(&done);
    let sessions = 10;
    assert_eq!(
        count(&report, "/totals/requests"),
        2 * sessions,
        "{report:#}"
    );
    assert_eq!(count(&report, "/totals/retried"), sessions, "{report:#}");
    let kinds: BTreeMap<String, u64> = report["totals"]["errors_by_kind"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([("stream_reset".to_string(), sessions)]),
        "{report:#}"
    );
    let streams = server.streams();
    let refused: Vec<_> = streams
        .iter()
        .filter(|s| s.path.starts_with("/refuse-once/"))
        .collect();
    assert_eq!(
        refused.len() as u64,
        2 * sessions,
        "refused, then answered: {streams:?}"
    );
    assert_eq!(
        refused.iter().filter(|s| s.answered).count() as u64,
        sessions
    );
    let rst = streams
        .iter()
        .filter(|s| s.path.starts_with("/rst/"))
        .count() as u64;
    assert_eq!(rst, sessions, "a reset stream is not resent: {streams:?}");
}
