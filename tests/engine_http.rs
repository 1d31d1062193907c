//! The engine's HTTP layer end to end, against a connection-counting server on 127.0.0.1: TLS with
//! a private CA generated at test time, `insecure`, a certificate that cannot be verified,
//! HTTP/2 over TLS (ALPN) and prior-knowledge h2c, and the three connection modes (`per-user`,
//! `fresh`, `shared`) counted at the server.
//!
//! Most runs are open-model with uniform arrivals, so the number of sessions is exact: 20/s for
//! 1 s starts 20 sessions, each walking a journey of `K` GETs under `/t/`. The engine's
//! reachability probe (one GET to `/`) opens a connection of its own; connections are told apart
//! by the paths they carried.

mod support;

use std::time::Duration;
use support::counting::{ConnRec, CountingServer, Proto};
use support::tls::TestPki;
use support::{count, Scenario};

/// Sessions started by the open-model plans below (uniform 20/s for 1 s).
const SESSIONS: u64 = 20;
/// Requests in each session's journey.
const K: u64 = 3;
const LIMIT: Duration = Duration::from_secs(60);

/// A scenario with one client (`http`, `connection`), `defaults.tls` set to `tls` (YAML flow
/// mapping, or "" for none), and one journey of `K` GETs; open model, `SESSIONS` sessions.
fn open_scenario(http: &str, connection: &str, tls: &str) -> String {
    let tls = if tls.is_empty() {
        String::new()
    } else {
        format!("  tls: {tls}\n")
    };
    format!(
        r#"
name: http-layer
target: http://127.0.0.1:9
defaults:
  timeout: 5s
{tls}clients:
  only:
    share: 100%
    http: {http}
    connection: {connection}
journeys:
  walk:
    share: 100%
    steps:
      - get: /t/one
      - get: /t/two
      - get: /t/three
load:
  stages:
    - {{ rate: {SESSIONS}/s, for: 1s }}
  arrivals: uniform
"#
    )
}

/// Runs `yaml` against `server` on one shard, expects a passing run with `SESSIONS` sessions,
/// `SESSIONS * K` requests and no error; returns the engine's connections as the server saw
/// them.
fn run_clean(server: &CountingServer, sc: &Scenario) -> Vec<ConnRec> {
    let report = sc.run_passing(&server.url(), &["--threads", "1"], LIMIT);
    assert_eq!(
        count(&report, "/totals/sessions_started"),
        SESSIONS,
        "{report:#}"
    );
    assert_eq!(
        count(&report, "/totals/requests"),
        SESSIONS * K,
        "{report:#}"
    );
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    let conns = server.connections_under("/t/");
    let served: usize = conns.iter().map(|c| c.paths.len()).sum();
    assert_eq!(
        served as u64,
        SESSIONS * K,
        "the server saw every request the report counts\n{}",
        server.describe()
    );
    assert_all(&conns, server, "naming the host in every request", |c| {
        c.hostless == 0
    });
    conns
}

fn assert_all(
    conns: &[ConnRec],
    server: &CountingServer,
    what: &str,
    ok: impl Fn(&ConnRec) -> bool,
) {
    assert!(
        conns.iter().all(ok),
        "every engine connection should be {what}\n{}",
        server.describe()
    );
}

fn tls_server(pki: &TestPki) -> CountingServer {
    CountingServer::tls(pki.server_config(&["h2", "http/1.1"]))
}

/// HTTP/1.1 over TLS, verified against the private CA named in `defaults.tls.ca` (a path
/// relative to the scenario file).
#[test]
fn h1_over_tls_with_a_private_ca() {
    let pki = TestPki::generate();
    let server = tls_server(&pki);
    let sc = Scenario::new(&open_scenario("h1", "per-user", "{ ca: certs/ca.pem }"));
    std::fs::create_dir(sc.dir.path().join("certs")).unwrap();
    pki.write_ca(&sc.dir.path().join("certs"), "ca.pem");
    let conns = run_clean(&server, &sc);
    assert_all(
        &conns,
        &server,
        "TLS with ALPN http/1.1, served as HTTP/1.1",
        |c| c.tls_ok && c.alpn.as_deref() == Some("http/1.1") && c.proto == Proto::H1,
    );
    assert_eq!(conns.len() as u64, SESSIONS, "{}", server.describe());
}

/// HTTP/2 over TLS: the client offers h2 by ALPN and the server serves HTTP/2.
#[test]
fn h2_over_tls_negotiates_h2_by_alpn() {
    let pki = TestPki::generate();
    let server = tls_server(&pki);
    let sc = Scenario::new(&open_scenario("h2", "per-user", "{ ca: ca.pem }"));
    pki.write_ca(sc.dir.path(), "ca.pem");
    let conns = run_clean(&server, &sc);
    assert_all(&conns, &server, "TLS with ALPN h2, served as HTTP/2", |c| {
        c.tls_ok && c.alpn.as_deref() == Some("h2") && c.proto == Proto::H2
    });
    assert_eq!(conns.len() as u64, SESSIONS, "{}", server.describe());
    assert_all(&conns, &server, "carrying its session's K requests", |c| {
        c.paths.len() as u64 == K
    });
}

/// An `http: h2` client against a TLS server that negotiates no ALPN protocol at all (as
/// servers without ALPN support do) gets HTTP/1.1; its requests must then be proper HTTP/1.1
/// requests, each with a `Host` header.
#[test]
fn h2_client_falls_back_to_h1_when_the_server_has_no_alpn() {
    let pki = TestPki::generate();
    let server = CountingServer::tls(pki.server_config(&[]));
    let sc = Scenario::new(&open_scenario("h2", "per-user", "{ ca: ca.pem }"));
    pki.write_ca(sc.dir.path(), "ca.pem");
    let conns = run_clean(&server, &sc);
    assert_all(
        &conns,
        &server,
        "TLS without ALPN, served as HTTP/1.1",
        |c| c.tls_ok && c.alpn.is_none() && c.proto == Proto::H1,
    );
    assert_eq!(conns.len() as u64, SESSIONS, "{}", server.describe());
}

/// `http: h2` to an `http://` target is prior-knowledge HTTP/2 (h2c).
#[test]
fn h2_to_a_plain_target_is_prior_knowledge_h2c() {
    let server = CountingServer::plain();
    let sc = Scenario::new(&open_scenario("h2", "per-user", ""));
    let conns = run_clean(&server, &sc);
    assert_all(&conns, &server, "plain-text HTTP/2", |c| {
        !c.tls_ok && !c.tls_failed && c.proto == Proto::H2
    });
    assert_eq!(conns.len() as u64, SESSIONS, "{}", server.describe());
}

/// `insecure: true` accepts a certificate no configured root vouches for.
#[test]
fn insecure_accepts_an_unverifiable_certificate() {
    let pki = TestPki::generate();
    let server = tls_server(&pki);
    let sc = Scenario::new(&open_scenario("h1", "per-user", "{ insecure: true }"));
    let conns = run_clean(&server, &sc);
    assert_all(&conns, &server, "TLS, HTTP/1.1", |c| {
        c.tls_ok && c.proto == Proto::H1
    });
}

/// Without `ca` or `insecure` the private CA is unknown (only the public roots are trusted):
/// every request fails with error kind `tls_unknown_ca` — not `connect`, not a panic — and the run still
/// writes its report.
#[test]
fn an_unverifiable_certificate_fails_every_request_as_tls() {
    let pki = TestPki::generate();
    for http in ["h1", "h2"] {
        let server = tls_server(&pki);
        let sc = Scenario::new(&open_scenario(http, "per-user", ""));
        let done = sc.run(&server.url(), &["--threads", "1"], LIMIT);
        assert!(
            !done.stderr.contains("panicked"),
            "no panic\n{}",
            done.output()
        );
        let report = sc.report(&done);
        // Each session fails at its first step and ends there.
        assert_eq!(
            count(&report, "/totals/sessions_started"),
            SESSIONS,
            "{report:#}"
        );
        assert_eq!(count(&report, "/totals/requests"), SESSIONS, "{report:#}");
        assert_eq!(count(&report, "/totals/errors"), SESSIONS, "{report:#}");
        let req = &report["requests"][0];
        assert_eq!(
            req["errors"]["tls_unknown_ca"].as_u64(),
            Some(SESSIONS),
            "every error is `tls_unknown_ca` ({http}): {report:#}"
        );
        assert_eq!(
            req["errors"].as_object().map(|o| o.len()),
            Some(1),
            "and no other kind ({http}): {report:#}"
        );
        // The server saw the handshakes fail and never a request from the engine.
        let conns = server.connections();
        let failed = conns.iter().filter(|c| c.tls_failed).count() as u64;
        assert_eq!(failed, SESSIONS, "{}", server.describe());
        assert!(
            server.connections_under("/t/").is_empty(),
            "{}",
            server.describe()
        );
    }
}

/// A `defaults.tls.ca` file that holds no certificate is bad input: exit code 2 with a
/// message naming the setting and the file, and no request from the engine.
#[test]
fn a_ca_file_without_a_certificate_is_bad_input() {
    let pki = TestPki::generate();
    let server = tls_server(&pki);
    let sc = Scenario::new(&open_scenario("h1", "per-user", "{ ca: ca.pem }"));
    std::fs::write(sc.dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    let done = sc.run(&server.url(), &["--threads", "1"], LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.output());
    assert!(
        done.stderr.contains("defaults.tls.ca") && done.stderr.contains("ca.pem"),
        "the error names the setting and the file\n{}",
        done.output()
    );
    assert!(
        server.connections_under("/t/").is_empty(),
        "{}",
        server.describe()
    );
}

/// `per-user`: each session opens one connection and sends its K requests on it.
#[test]
fn per_user_opens_one_keep_alive_connection_per_session() {
    let server = CountingServer::plain();
    let sc = Scenario::new(&open_scenario("h1", "per-user", ""));
    let conns = run_clean(&server, &sc);
    assert_eq!(conns.len() as u64, SESSIONS, "{}", server.describe());
    assert_all(
        &conns,
        &server,
        "HTTP/1.1 carrying K requests in order",
        |c| c.proto == Proto::H1 && c.paths == ["/t/one", "/t/two", "/t/three"],
    );
    assert_eq!(
        server.connections().len() as u64,
        SESSIONS + 1,
        "no other connection but the probe's\n{}",
        server.describe()
    );
}

/// `fresh`: one connection per request, for HTTP/1.1 and HTTP/2 alike.
#[test]
fn fresh_opens_one_connection_per_request() {
    for http in ["h1", "h2"] {
        let server = CountingServer::plain();
        let sc = Scenario::new(&open_scenario(http, "fresh", ""));
        let conns = run_clean(&server, &sc);
        assert_eq!(
            conns.len() as u64,
            SESSIONS * K,
            "{http}: {}",
            server.describe()
        );
        let want = if http == "h2" { Proto::H2 } else { Proto::H1 };
        assert_all(&conns, &server, "carrying exactly one request", |c| {
            c.proto == want && c.paths.len() == 1
        });
    }
}

/// `shared` with HTTP/1.1: sessions take a pooled connection per request and give it back,
/// so connections outlive sessions. Sessions arrive 50 ms apart and their requests take a few
/// milliseconds, so few are ever in flight at once; the bound asserted is a quarter of the
/// sessions (at most 5 connections for 20 sessions and 60 requests), and at least one
/// connection must carry requests of more than one session (more than K requests).
#[test]
fn shared_h1_reuses_connections_across_sessions() {
    let server = CountingServer::plain();
    let sc = Scenario::new(&open_scenario("h1", "shared", ""));
    let conns = run_clean(&server, &sc);
    assert_all(&conns, &server, "HTTP/1.1", |c| c.proto == Proto::H1);
    assert!(
        (conns.len() as u64) <= SESSIONS / 4,
        "shared h1: {} connections for {SESSIONS} sessions, want at most {}\n{}",
        conns.len(),
        SESSIONS / 4,
        server.describe()
    );
    assert!(
        conns.iter().any(|c| c.paths.len() as u64 > K),
        "a connection carries more than one session's requests\n{}",
        server.describe()
    );
}

/// `shared` with HTTP/2 (over TLS): one multiplexed connection per shard carries the
/// requests. One shard here; a second connection is tolerated only for a session that arrived
/// while the first was still handshaking, so the bound is 2, and the busiest connection must
/// carry at least 90 % of the requests.
#[test]
fn shared_h2_multiplexes_one_connection() {
    let pki = TestPki::generate();
    let server = tls_server(&pki);
    let sc = Scenario::new(&open_scenario("h2", "shared", "{ ca: ca.pem }"));
    pki.write_ca(sc.dir.path(), "ca.pem");
    let conns = run_clean(&server, &sc);
    assert_all(&conns, &server, "HTTP/2 over TLS", |c| {
        c.tls_ok && c.proto == Proto::H2
    });
    assert!(
        conns.len() <= 2,
        "shared h2: {} connections, want 1 (at most 2)\n{}",
        conns.len(),
        server.describe()
    );
    let busiest = conns.iter().map(|c| c.paths.len()).max().unwrap_or(0) as u64;
    assert!(
        busiest * 10 >= SESSIONS * K * 9,
        "one connection carries nearly all requests\n{}",
        server.describe()
    );
}

/// TLS handshakes: a closed-model run of 5 users looping a journey for 2 s (think 50 ms, so
/// each user sends dozens of requests) does one TLS handshake per user, not one per request —
/// and none beyond those and the probe's.
#[test]
fn per_user_tls_handshakes_once_per_user() {
    let pki = TestPki::generate();
    let server = tls_server(&pki);
    let users = 5u64;
    let sc = Scenario::new(&format!(
        r#"
name: tls-handshakes
target: http://127.0.0.1:9
defaults:
  timeout: 5s
  tls: {{ ca: ca.pem }}
clients:
  only:
    share: 100%
    http: h1
    connection: per-user
    think: {{ constant: 50ms }}
journeys:
  walk:
    share: 100%
    steps:
      - get: /t/one
      - get: /t/two
load:
  users:
    - {{ users: {users}, for: 2s }}
"#
    ));
    pki.write_ca(sc.dir.path(), "ca.pem");
    let report = sc.run_passing(&server.url(), &["--threads", "1"], LIMIT);
    let requests = count(&report, "/totals/requests");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    assert!(
        requests >= 4 * users,
        "each user sends several requests: {requests}\n{report:#}"
    );
    let conns = server.connections_under("/t/");
    assert_eq!(conns.len() as u64, users, "{}", server.describe());
    assert_all(&conns, &server, "TLS, HTTP/1.1", |c| {
        c.tls_ok && c.proto == Proto::H1
    });
    let served: u64 = conns.iter().map(|c| c.paths.len() as u64).sum();
    assert!(
        served >= requests,
        "the server saw the requests the report counts ({served} < {requests})\n{}",
        server.describe()
    );
    let handshakes = server.connections().iter().filter(|c| c.tls_ok).count() as u64;
    assert_eq!(
        handshakes,
        users + 1,
        "one handshake per user plus the probe's\n{}",
        server.describe()
    );
}
