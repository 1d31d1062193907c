//! Connections the target closes under the run, against a purpose-built server on 127.0.0.1
//! (`support::closing`):
//!
//! - a connection closed right after the server read the request, before any byte of an answer:
//!   an idempotent request (GET, HEAD, PUT, DELETE) is sent once more on a new
//!   connection and counted as `retried`; a POST or PATCH is counted as a `reset` error and never
//!   sent again (the server may have acted on it);
//! - a server that keeps closing: the retry happens once, then the request fails as `reset`;
//! - a server that closes idle keep-alive connections after 1 s, with 1.5 s think times: the
//!   closed connection is noticed before use, so nothing fails and nothing is resent (POSTs
//!   included).
//!
//! Open-model plans with uniform arrivals make the session counts exact; a failed step ends its
//! session, so a session sends exactly the requests its journey names up to its first failure.
//! One shard (`--threads 1`), so `seq()` numbers every request of the run.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::closing::ClosingServer;
use support::{count, Scenario};

const LIMIT: Duration = Duration::from_secs(60);
/// Sessions: uniform 10/s for 1 s.
const SESSIONS: u64 = 10;

/// One journey of `steps` (YAML list items, indented for `steps:`), SESSIONS sessions, then
/// `tail` of no arrivals for the sessions to finish, with think time `think` (or none).
fn scenario(steps: &str, think: Option<&str>, tail: &str) -> String {
    let think = think
        .map(|t| format!("    think: {{ constant: {t} }}\n"))
        .unwrap_or_default();
    format!(
        r#"
name: retries
target: http://127.0.0.1:9
defaults:
  timeout: 5s
clients:
  only:
    share: 100%
    http: h1
    connection: per-user
{think}journeys:
  walk:
    share: 100%
    steps:
{steps}load:
  stages:
    - {{ rate: {SESSIONS}/s, for: 1s }}
    - {{ rate: 0/s, for: {tail} }}
  arrivals: uniform
"#
    )
}

fn kinds(report: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in report["requests"].as_array().unwrap() {
        for (k, n) in r["errors"].as_object().unwrap() {
            *m.entry(k.clone()).or_insert(0) += n.as_u64().unwrap();
        }
    }
    m
}

/// Every idempotent method a step can send, on a path the server closes the first time: each request is read
/// twice by the server (the first attempt and the one retry), answered the second time, and
/// the run has no error and one `retried` per request.
#[test]
fn idempotent_requests_closed_before_an_answer_are_retried_once() {
    let server = ClosingServer::start();
    let steps = "      - get: /once/{{ seq() }}\n      - head: /once/{{ seq() }}\n      - put: /once/{{ seq() }}\n        body: x\n      - delete: /once/{{ seq() }}\n";
    let sc = Scenario::new(&scenario(steps, None, "2s"));
    let report = sc.run_passing(&server.url(), &["--threads", "1"], LIMIT);
    let n = SESSIONS * 4;
    assert_eq!(count(&report, "/totals/requests"), n, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    assert_eq!(count(&report, "/totals/retried"), n, "{report:#}");
    let per_path = server.per_path();
    assert_eq!(per_path.len() as u64, n, "{per_path:?}");
    assert!(
        per_path.values().all(|&c| c == 2),
        "each request read twice: {per_path:?}"
    );
    let methods: std::collections::BTreeSet<String> =
        server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(
        methods.into_iter().collect::<Vec<_>>(),
        ["DELETE", "GET", "HEAD", "PUT"]
    );
    // The retry went out on a new connection: no connection carried both attempts of a path.
    let seen = server.seen();
    for (path, _) in per_path {
        let conns: Vec<usize> = seen
            .iter()
            .filter(|s| s.path == path)
            .map(|s| s.conn)
            .collect();
        assert_ne!(conns[0], conns[1], "{path}: {seen:?}");
    }
}

/// A server that closes every time: the one retry is all; then the request is a `reset`.
#[test]
fn a_request_is_retried_once_only() {
    let server = ClosingServer::start();
    let sc = Scenario::new(&scenario("      - get: /always/{{ seq() }}\n", None, "2s"));
    let done = sc.run(&server.url(), &["--threads", "1"], LIMIT);
    let report = sc.report(&done);
    assert_eq!(count(&report, "/totals/requests"), SESSIONS, "{report:#}");
    assert_eq!(count(&report, "/totals/retried"), SESSIONS, "{report:#}");
    assert_eq!(
        kinds(&report),
        BTreeMap::from([("reset".to_string(), SESSIONS)]),
        "{report:#}"
    );
    let per_path = server.per_path();
    assert_eq!(per_path.len() as u64, SESSIONS, "{per_path:?}");
    assert!(
        per_path.values().all(|&c| c == 2),
        "read twice, never three times: {per_path:?}"
    );
}

/// POST and PATCH are never resent: each is read once by the server, counted as `reset`, and
/// nothing is `retried`.
#[test]
fn post_and_patch_closed_before_an_answer_are_resets_never_retried() {
    for method in ["post", "patch"] {
        let server = ClosingServer::start();
        let steps =
            format!("      - {method}: /once/{{{{ seq() }}}}\n        json: {{ sku: 1 }}\n");
        let sc = Scenario::new(&scenario(&steps, None, "2s"));
        let done = sc.run(&server.url(), &["--threads", "1"], LIMIT);
        let report = sc.report(&done);
        assert_eq!(count(&report, "/totals/requests"), SESSIONS, "{report:#}");
        assert_eq!(count(&report, "/totals/retried"), 0, "{method}: {report:#}");
        assert_eq!(
            kinds(&report),
            BTreeMap::from([("reset".to_string(), SESSIONS)]),
            "{method}: {report:#}"
        );
        let seen = server.seen();
        assert_eq!(
            seen.len() as u64,
            SESSIONS,
            "{method}: read once each: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|s| s.method == method.to_uppercase() && !s.answered),
            "{seen:?}"
        );
        assert_eq!(server.per_path().len() as u64, SESSIONS);
    }
}

/// The server closes keep-alive connections idle for 1 s; every session thinks 1.5 s between
/// requests, so each of its connections is closed by the time of its next request. The close
/// is seen before use: no error, no retry, GETs and POSTs alike, and every request reaches the
/// server once, each on a connection of its own.
#[test]
fn keep_alive_closed_while_idle_costs_no_error_and_no_retry() {
    let server = ClosingServer::closing_idle_after(Duration::from_secs(1));
    let steps = "      - get: /a\n      - post: /b\n        json: { sku: 1 }\n      - get: /c\n";
    let sc = Scenario::new(&scenario(steps, Some("1.5s"), "5s"));
    let report = sc.run_passing(&server.url(), &["--threads", "1"], LIMIT);
    let n = SESSIONS * 3;
    assert_eq!(count(&report, "/totals/requests"), n, "{report:#}");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    assert_eq!(count(&report, "/totals/retried"), 0, "{report:#}");
    let seen = server.seen();
    assert_eq!(seen.len() as u64, n, "each request read once: {seen:?}");
    let conns: std::collections::BTreeSet<usize> = seen.iter().map(|s| s.conn).collect();
    assert_eq!(
        conns.len() as u64,
        n,
        "the server closed each connection while it was idle: {seen:?}"
    );
}
