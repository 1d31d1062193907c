//! The target's name is resolved again during the run (`--resolve-every`), here from a hosts
//! file the test owns (`--hosts`; the machine's /etc/hosts is never touched), with two
//! purpose-built servers on the same port of two loopback addresses, 127.0.0.1 and 127.0.0.2:
//!
//! - the name moves from one address to the other mid-run: traffic follows within the
//!   re-resolution interval (kept-alive connections to the old address are retired), with no
//!   error at all (the old server stays up, so requests in flight there finish);
//! - the name lists both addresses: connections are spread over them in turn.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};
use support::closing::ClosingServer;
use support::{count, Scenario};

const LIMIT: Duration = Duration::from_secs(90);

/// Two servers on one port: 127.0.0.1:P and 127.0.0.2:P.
fn two_servers() -> (ClosingServer, ClosingServer, u16) {
    let two: IpAddr = "127.0.0.2".parse().unwrap();
    let one: IpAddr = "127.0.0.1".parse().unwrap();
    for _ in 0..50 {
        let b = ClosingServer::start_on(two, 0).expect("bind 127.0.0.2");
        let port = b.addr.port();
        if let Ok(a) = ClosingServer::start_on(one, port) {
            return (a, b, port);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

/// Replaces the hosts file at once (a reader never sees half of it).
fn write_hosts(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn scenario(port: u16, connection: &str, rate: u64, secs: u64, think: &str) -> String {
    format!(
        r#"
name: dns-move
target: http://shop.test:{port}
defaults:
  timeout: 5s
clients:
  only:
    share: 100%
    http: h1
    connection: {connection}
    think: {{ constant: {think} }}
journeys:
  walk:
    share: 100%
    steps:
      - get: /a
      - get: /b
      - get: /c
      - get: /d
load:
  stages:
    - {{ rate: {rate}/s, for: {secs}s }}
    - {{ rate: 0/s, for: 2s }}
  arrivals: uniform
"#
    )
}

/// 30 sessions/s for 8 s, four GETs each 200 ms apart on one kept-alive connection per user.
/// Once 127.0.0.1 has served 60 requests the hosts file moves `shop.test` to 127.0.0.2. With a
/// 1 s interval, 127.0.0.1 sees no request later than the interval plus 1.5 s after the move
/// (the margin covers a loaded machine: the refresher's wake-up, a session's think time, a
/// request in flight), 127.0.0.2 serves the rest, and nothing fails.
#[test]
fn traffic_follows_a_name_that_moves_within_the_interval() {
    let (a, b, port) = two_servers();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    write_hosts(&hosts, "127.0.0.1 shop.test\n");
    let sc = Scenario::new(&scenario(port, "per-user", 30, 8, "200ms"));
    let run = sc.spawn(
        &format!("http://shop.test:{port}"),
        &[
            "--threads",
            "1",
            "--resolve-every",
            "1s",
            "--hosts",
            hosts.to_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.seen().len() < 60 {
        assert!(
            Instant::now() < deadline,
            "127.0.0.1 never served 60 requests"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    write_hosts(&hosts, "127.0.0.2 shop.test\n");
    let moved = Instant::now();
    let done = run.wait(LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.output());
    let report = sc.report(&done);
    let (sa, sb) = (a.seen(), b.seen());
    let requests = count(&report, "/totals/requests");
    assert_eq!(count(&report, "/totals/errors"), 0, "{report:#}");
    assert_eq!(
        (sa.len() + sb.len()) as u64,
        requests,
        "the two servers saw every request"
    );
    assert_eq!(requests, 30 * 8 * 4, "{report:#}");
    let last_a = sa.iter().map(|s| s.at).max().unwrap();
    let after = last_a.saturating_duration_since(moved);
    eprintln!(
        "last request at 127.0.0.1 {after:?} after the move; 127.0.0.1 {} requests, 127.0.0.2 {}",
        sa.len(),
        sb.len()
    );
    assert!(
        after <= Duration::from_millis(2500),
        "127.0.0.1 still served {:?} after the move ({} of its {} requests came after it)",
        after,
        sa.iter().filter(|s| s.at > moved).count(),
        sa.len()
    );
    assert!(
        sb.len() >= 300,
        "127.0.0.2 served the rest: {} of {requests}",
        sb.len()
    );
    assert!(
        sb.iter().all(|s| s.at > moved),
        "nothing reached 127.0.0.2 before the move"
    );
}

/// `shop.test` names both addresses: a fresh connection per request, taken in turn, splits the
/// requests evenly (one shard: exactly, within one).
#[test]
fn connections_are_spread_over_every_address_of_the_name() {
    let (a, b, port) = two_servers();
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    write_hosts(&hosts, "127.0.0.1 shop.test\n127.0.0.2 shop.test\n");
    let sc = Scenario::new(&scenario(port, "fresh", 20, 1, "10ms"));
    let report = sc.run_passing(
        &format!("http://shop.test:{port}"),
        &["--threads", "1", "--hosts", hosts.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(count(&report, "/totals/requests"), 80, "{report:#}");
    let (na, nb) = (a.seen().len() as i64, b.seen().len() as i64);
    assert_eq!(na + nb, 80);
    assert!((na - nb).abs() <= 1, "127.0.0.1 {na}, 127.0.0.2 {nb}");
}
