//! Network emulation per client, end to end against a loopback server: with `rtt: 100ms` a
//! request on a fresh connection pays the TCP handshake and its own round trip (≥ 200 ms), a
//! kept-alive one its round trip (≈ 100 ms); `down: 1Mbit/s` paces a 125,000-byte body to 1 s;
//! a client without `network` in the same run stays at loopback latency, and the report states
//! each client's network.
//!
//! Tolerances (debug build, loaded 2-core machine): the emulated figures are lower bounds by
//! construction (the pumps never release a chunk early); the upper margins are 10 % for the
//! fresh connection and the paced body and 15 % for the kept-alive request, whose 100 ms is
//! paid in two timer hops per request.

mod support;

use std::time::Duration;
use support::server::TestServer;
use support::{named, Scenario};

const SCENARIO: &str = r#"
name: networks
defaults: { timeout: 10s }
clients:
  far-fresh: { share: 25%, connection: fresh, network: { rtt: 100ms } }
  far-kept: { share: 25%, network: { rtt: 100ms } }
  narrow: { share: 25%, network: { rtt: 0ms, down: 1Mbit/s } }
  near: { share: 25% }
journeys:
  fresh: { share: 25%, clients: [far-fresh], steps: [ { get: /ok, name: fresh }, { get: /ok, name: fresh } ] }
  kept:
    share: 25%
    clients: [far-kept]
    steps:
      - { get: /ok, name: open }
      - { get: /ok, name: kept }
      - { get: /ok, name: kept }
      - { get: /ok, name: kept }
  big: { share: 25%, clients: [narrow], steps: [ { get: /bytes/125000, name: big } ] }
  near: { share: 25%, clients: [near], steps: [ { get: /ok, name: near } ] }
load:
  stages: [ { rate: 12/s, for: 3s } ]
  arrivals: uniform
"#;

fn p50(report: &serde_json::Value, name: &str) -> f64 {
    let rows = report["requests"].as_array().expect("request rows");
    let row = rows
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row `{name}` in {report:#}"));
    assert_eq!(row["errors"], serde_json::json!({}), "{row:#}");
    row["latency_ms"]["p50"].as_f64().expect("a p50")
}

#[test]
fn emulated_networks_pay_their_round_trips_and_bandwidth_and_others_pay_nothing() {
    let server = TestServer::start();
    let sc = Scenario::new(SCENARIO);
    let report = sc.run_passing(&server.url(), &["--threads", "1"], Duration::from_secs(60));
    let fresh = p50(&report, "fresh");
    assert!(
        (200.0..=220.0).contains(&fresh),
        "fresh connection p50 {fresh} ms: TCP handshake + request round trip = 200 ms"
    );
    let kept = p50(&report, "kept");
    assert!(
        (100.0..=115.0).contains(&kept),
        "kept-alive p50 {kept} ms: one round trip = 100 ms"
    );
    let big = p50(&report, "big");
    assert!(
        (1000.0..=1100.0).contains(&big),
        "125,000 bytes at 1 Mbit/s p50 {big} ms: 1 s"
    );
    let near = p50(&report, "near");
    assert!(
        near < 50.0,
        "no network: loopback latency, got p50 {near} ms"
    );

    let net = |client: &str| named(&report, "clients", client)["network"].clone();
    assert_eq!(
        net("far-kept"),
        "rtt 100ms, jitter 0s, down unlimited, up unlimited"
    );
    assert_eq!(
        net("narrow"),
        "rtt 0s, jitter 0s, down 1Mbit/s, up unlimited"
    );
    assert!(net("near").is_null(), "{report:#}");
}
